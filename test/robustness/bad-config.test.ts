/**
 * bad-config.test.ts - the daemon started on a main.cf with one bad value:
 *                      it must refuse to run, cleanly.
 * Owns: for each bad value, one `fatal:` line that names the parameter and
 *       main.cf, exit status 1, no stack trace (a crash is not a diagnosis),
 *       and no socket left behind.
 * Not here: the conversion rules themselves (unit/config-*.test.ts); bad
 *           stored state (robustness/stored-state.test.ts).
 * See also: src/config/params.ts, src/cache/cache-set.ts, src/master/multi-server.ts,
 *           postfix/src/global/mail_conf_{int,time,str}.c (the fatal texts)
 *
 * The daemon is spawned directly (startDaemon waits for a socket that must
 * never appear), from the instance directory so that nothing can land in the
 * repository.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { daemonExitProblems, daemonRunToExit, rawTestInstance } from "../helpers/raw-conn.js";

interface BadCase {
  /** What is wrong, for the test name. */
  what: string;
  /** main.cf lines after the instance's own. */
  lines: string[];
  /** The parameter the fatal line must name. */
  param: string;
  /** More daemon arguments. */
  args?: string[];
}

const CACHE = "smtpd_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache";

const CASES: BadCase[] = [
  { what: "time of zero below its minimum", lines: ["ipc_timeout = 0"], param: "ipc_timeout" },
  { what: "unknown time unit", lines: ["ipc_timeout = 10x"], param: "ipc_timeout" },
  { what: "negative time", lines: ["daemon_timeout = -5s"], param: "daemon_timeout" },
  { what: "time beyond C int", lines: ["daemon_timeout = 99999999999999999999s"], param: "daemon_timeout" },
  { what: "cache timeout above 100 days", lines: [CACHE, "smtpd_tls_session_cache_timeout = 9000000"], param: "smtpd_tls_session_cache_timeout" },
  { what: "integer that is text", lines: ["tls_random_bytes = abc"], param: "tls_random_bytes" },
  { what: "integer with a fraction", lines: ["tlsmgr_attr_value_limit = 1.5"], param: "tlsmgr_attr_value_limit" },
  { what: "integer of zero below its minimum", lines: ["tlsmgr_attr_value_limit = 0"], param: "tlsmgr_attr_value_limit" },
  { what: "negative count limit", lines: ["tlsmgr_attr_count_limit = -3"], param: "tlsmgr_attr_count_limit" },
  { what: "integer beyond C int", lines: ["tlsmgr_attr_name_limit = 2147483648"], param: "tlsmgr_attr_name_limit" },
  { what: "empty mail_owner", lines: ["mail_owner ="], param: "mail_owner" },
  { what: "recursive $name expansion", lines: ["data_directory = ${data_directory}/x"], param: "data_directory" },
  { what: "unknown syslog facility", lines: ["syslog_facility = nonesuch"], param: "syslog_facility" },
  { what: "unsupported cache map type", lines: ["smtpd_tls_session_cache_database = nosuchtype:/tmp/x"], param: "smtpd_tls_session_cache_database" },
  { what: "cache database without type:name form", lines: ["smtpd_tls_session_cache_database = lmdb:"], param: "smtpd_tls_session_cache_database" },
  {
    what: "cache database in a directory that does not exist",
    lines: ["smtpd_tls_session_cache_database = lmdb:/nonexistent-tlsmgr-dir/smtpd_scache"],
    param: "smtpd_tls_session_cache_database",
  },
  {
    what: "two caches naming one database",
    lines: [CACHE, "smtp_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache"],
    param: "smtp_tls_session_cache_database",
  },
  { what: "unsupported ticket key store", lines: ["tlsmgr_ticket_key_database = nosuch:/x"], param: "tlsmgr_ticket_key_database" },
  { what: "mail_owner with no such account, with -u", lines: ["mail_owner = nosuchuser-tlsmgr"], param: "mail_owner", args: ["-u"] },
];

for (const c of CASES) {
  test(`bad main.cf: ${c.what} (${c.param})`, async () => {
    const inst = rawTestInstance("badcf", c.lines);
    try {
      const exit = await daemonRunToExit(inst.dir, inst.socket, { args: c.args ?? [] });
      assert.deepEqual(daemonExitProblems(exit, inst.socket, [c.param, inst.mainCf]), [], `stderr:\n${exit.stderr}`);
    } finally {
      inst.cleanup();
    }
  });
}
