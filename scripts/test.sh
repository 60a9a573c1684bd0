#!/usr/bin/env bash
# test.sh - the whole test suite, as `npm test` runs it (README, .ci/run).
# Installs what the tests need when it can (Postfix, openssl, redis-server
# through apt-get when root), compiles, and runs node's test runner over the
# project's tests (test/) and the benchmark's (bench/test/), whose closing
# lines give the counts.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f scripts/ensure-system-deps.sh ]; then bash scripts/ensure-system-deps.sh; fi
node scripts/prepare.mjs
exec node --test --test-reporter=spec dist/test/ dist/bench/test/
