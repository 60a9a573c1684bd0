/**
 * skip.ts - the one way a test file says it cannot run here: the programs
 *           it needs, and when their absence is a skip (told once, loudly)
 *           rather than a failure.
 * Owns: programPath() (a program by absolute path, PATH and the sbin
 *       directories searched, so tests need no particular PATH),
 *       SYSTEM_DEPS_MARKER and skipReason().
 * Not here: what each group of tests needs (postfix-instance.ts
 *           postfixSkipReason, redis-server.ts redisSkipReason); installing
 *           the programs (scripts/ensure-system-deps.sh).
 * See also: node:test (the skip option), README.md "Run the tests"
 *
 * A missing program is a skip only when scripts/ensure-system-deps.sh
 * recorded that it could not install the system packages (not root, no
 * apt-get): without that record the tests run and fail, naming what is
 * missing, so a machine where the install went wrong does not pass by
 * skipping.
 */

import { existsSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The system directories searched after PATH. */
export const SBIN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * Where scripts/ensure-system-deps.sh records that it could not install
 * (not root, or no apt-get): a property of this machine and user, so it lives
 * in the temporary directory, keyed by uid, and survives `npm ci`.
 */
export const SYSTEM_DEPS_MARKER = join(tmpdir(), `tlsmgr-ts-system-deps-missing.${process.getuid?.() ?? 0}`);

/** programPath - the full path of a program on PATH or in the sbin directories, or undefined. */
export function programPath(name: string): string | undefined {
  const dirs = `${process.env["PATH"] ?? ""}:${SBIN_PATH}:/usr/local/bin`.split(":").filter((d) => d !== "");
  for (const d of dirs) {
    const p = join(d, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Reasons already told on stderr by this process. */
const told = new Set<string>();

/**
 * skipReason - undefined when the tests of `what` must run; else why they
 * are skipped, told once on stderr. `problem` says what stops them here
 * ("redis-server not installed"), undefined when nothing does. A problem
 * is a skip only with ensure-system-deps.sh's record (see the header).
 */
export function skipReason(what: string, problem: string | undefined): string | undefined {
  if (problem === undefined || !existsSync(SYSTEM_DEPS_MARKER)) return undefined;
  const why = readFileSync(SYSTEM_DEPS_MARKER, "utf8").trim();
  const reason = `${problem}: ${why || "scripts/ensure-system-deps.sh could not install it"}`;
  if (!told.has(reason)) {
    told.add(reason);
    process.stderr.write(`\n*** warning: SKIPPING ${what} tests: ${reason} ***\n\n`);
  }
  return reason;
}
