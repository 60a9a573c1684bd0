#!/usr/bin/env bash
# ensure-system-deps.sh - make sure the programs the real-client tests use are
#                         installed: postfix (postconf, sendmail), postfix-lmdb,
#                         openssl, swaks, redis-server, strace; and, when the Postfix
#                         release sources are there (../shared/postfix-src or
#                         $TLSMGR_POSTFIX_SRC), what building them needs: gcc,
#                         make, m4, libdb5.3-dev, libssl-dev.
# Owns: the check (fast, silent when all is there) and the apt-get install.
# Not here: running the tests (scripts/test.sh runs this first).
# See also: test/helpers/skip.ts (SYSTEM_DEPS_MARKER, skipReason),
#           test/helpers/postfix-releases.ts (the release builds)
#
# Root and all present: exit 0 at once, and remove a stale marker.
# Missing, root, apt-get: install them (apt-get update first when needed);
#   when that fails, say so with `error:` and exit 1.
# Not root (a private Postfix must be started by root, and apt-get needs it),
#   or missing with no apt-get: a loud `warning:`, write the marker file that
#   lets the Postfix tests skip (loudly), exit 0.

set -u

marker="${TMPDIR:-/tmp}/tlsmgr-ts-system-deps-missing.$(id -u)"
release_src="${TLSMGR_POSTFIX_SRC:-$(cd "$(dirname "$0")/.." && pwd)/../shared/postfix-src}"
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}"

# missing_packages - the Debian packages whose programs are absent
missing_packages() {
  local missing=()
  if ! command -v postfix >/dev/null || ! command -v postconf >/dev/null \
     || ! command -v sendmail >/dev/null; then
    missing+=(postfix)
  fi
  # lmdb is a dynamic map type: postconf -m lists it once postfix-lmdb is there
  if ! command -v postconf >/dev/null || ! postconf -m 2>/dev/null | grep -qx lmdb; then
    missing+=(postfix-lmdb)
  fi
  command -v openssl >/dev/null || missing+=(openssl)
  command -v swaks >/dev/null || missing+=(swaks)
  command -v redis-server >/dev/null || missing+=(redis-server)
  # the socket test shows the daemon makes no chmod/chown of a path (test/integration/socket-dir.test.ts)
  command -v strace >/dev/null || missing+=(strace)
  # building the Postfix releases of the test matrix (postfix-releases.ts)
  if [ -d "$release_src" ]; then
    command -v gcc >/dev/null || missing+=(gcc)
    command -v make >/dev/null || missing+=(make)
    command -v m4 >/dev/null || missing+=(m4)
    [ -f /usr/include/db.h ] || missing+=(libdb5.3-dev)
    [ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
  fi
  echo "${missing[@]}"
}

# cannot - say loudly why the real-Postfix tests cannot run here, leave the marker, exit 0
cannot() {
  {
    echo "************************************************************************"
    if [ -n "$missing" ]; then
      echo "ensure-system-deps: warning: missing system packages: $missing"
      echo "ensure-system-deps: warning: cannot install them: $1"
      echo "ensure-system-deps: warning: to run them: sudo apt-get install -y $missing"
    else
      echo "ensure-system-deps: warning: $1"
    fi
    echo "ensure-system-deps: warning: the tests against a real Postfix will be SKIPPED"
    echo "************************************************************************"
  } >&2
  echo "$1${missing:+ (missing: $missing)}" >"$marker"
  exit 0
}

missing="$(missing_packages)"
if [ "$(id -u)" != 0 ]; then
  # a private Postfix instance is started by root (master(8) drops to mail_owner)
  [ -n "$missing" ] && cannot "not running as root"
  cannot "not running as root: a private Postfix instance must be started by root"
fi
if [ -z "$missing" ]; then
  rm -f "$marker"
  exit 0
fi

command -v apt-get >/dev/null || cannot "no apt-get on this machine"

echo "ensure-system-deps: installing $missing" >&2
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086 # one word per package
if ! apt-get install -y -q $missing >/dev/null 2>&1; then
  apt-get update -q >/dev/null 2>&1 || true
  # shellcheck disable=SC2086
  if ! apt-get install -y -q $missing; then
    echo "ensure-system-deps: error: apt-get install $missing failed" >&2
    exit 1
  fi
fi

missing="$(missing_packages)"
if [ -n "$missing" ]; then
  echo "ensure-system-deps: error: still missing after apt-get install: $missing" >&2
  exit 1
fi
rm -f "$marker"
echo "ensure-system-deps: installed" >&2
exit 0
