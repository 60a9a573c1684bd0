/**
 * bad-config.test.ts - the daemon started on a main.cf with one bad value:
 *                      it refuses to run, cleanly, where Postfix's tlsmgr
 *                      does; it serves, saying why, where Postfix's serves.
 * Owns: for each fatal value, one `fatal:` line that names the parameter and
 *       main.cf, exit status 1, no stack trace (a crash is not a diagnosis),
 *       and no socket left behind; for each value that only costs a cache or
 *       the ticket key store (man/tlsmgr.8 DIAGNOSTICS), one `error:` line
 *       that names it and the cause, no `fatal:`, and the answers Postfix
 *       3.7's tlsmgr gives (an unavailable cache is cachable; lookups miss;
 *       ticket keys come from memory).
 * Not here: the conversion rules themselves (unit/config-*.test.ts); bad
 *           stored state (robustness/stored-state.test.ts).
 * See also: src/config/params.ts, src/cache/cache-set.ts, src/master/multi-server.ts,
 *           src/cache/unavailable-cache.ts, src/tickets/key-fallback.ts,
 *           postfix/src/global/mail_conf_{int,time,str}.c (the fatal texts)
 *
 * The daemon is spawned directly (startDaemon waits for a socket that must
 * never appear), from the instance directory so that nothing can land in the
 * repository.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { daemonExitProblems, daemonRunToExit, rawTestInstance } from "../helpers/raw-conn.js";
import { startDaemon, tlsmgrRequest, type Attr } from "../helpers/daemon.js";

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
  {
    what: "two caches naming one database",
    lines: [CACHE, "smtp_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache"],
    param: "smtp_tls_session_cache_database",
  },
  { what: "mail_owner with no such account, with -u", lines: ["mail_owner = nosuchuser-tlsmgr"], param: "mail_owner", args: ["-u"] },
  {
    what: "a cache that cannot be opened, with daemon_table_open_error_is_fatal = yes",
    lines: ["smtpd_tls_session_cache_database = nosuchtype:/tmp/x", "daemon_table_open_error_is_fatal = yes"],
    param: "smtpd_tls_session_cache_database",
  },
];

/** A mistake Postfix's tlsmgr survives: the daemon says why once (error:) and serves. */
interface SoftCase {
  what: string;
  lines: string[];
  /** The one error line must match this. */
  error: RegExp;
  /** What the daemon still answers (requests as tlsmgr-client takes them), and how. */
  serves: [request: Attr[], reply: RegExp][];
}

const policy = (type: string): Attr[] => [["request", "policy"], ["cache_type", type]];
const lookup = (type: string): Attr[] => [["request", "lookup"], ["cache_type", type], ["cache_id", "x"]];
const TKTKEY: Attr[] = [["request", "tktkey"], ["keyname", ""]];
/** Postfix 3.7's answers for a cache it could not open (its surrogate), and a miss. */
const UNAVAILABLE = "status=0 cachable=1 timeout=3600";
const MISS = "status=4294967295";

const SOFT: SoftCase[] = [
  {
    what: "unsupported cache map type",
    lines: ["smtpd_tls_session_cache_database = nosuchtype:/tmp/x"],
    error: /parameter smtpd_tls_session_cache_database: unsupported dictionary type: nosuchtype$/,
    serves: [[policy("smtpd"), new RegExp(`^${UNAVAILABLE}`)], [lookup("smtpd"), new RegExp(`^${MISS}`)]],
  },
  {
    what: "cache database without type:name form",
    lines: ["smtpd_tls_session_cache_database = lmdb:"],
    error: /parameter smtpd_tls_session_cache_database: open dictionary: expecting "type:name" form instead of "lmdb:"$/,
    serves: [[policy("smtpd"), new RegExp(`^${UNAVAILABLE}`)]],
  },
  {
    what: "cache database in a directory that does not exist",
    lines: ["smtpd_tls_session_cache_database = lmdb:/nonexistent-tlsmgr-dir/smtpd_scache"],
    error: /parameter smtpd_tls_session_cache_database: cannot open lmdb:\/nonexistent-tlsmgr-dir\/smtpd_scache: No such file or directory$/,
    serves: [[policy("smtpd"), new RegExp(`^${UNAVAILABLE}`)], [lookup("smtpd"), new RegExp(`^${MISS}`)]],
  },
  {
    what: "redis: cache table file that does not exist",
    lines: ["smtp_tls_session_cache_database = redis:/nonexistent-tlsmgr-dir/tls-redis.cf"],
    error: /open redis table \/nonexistent-tlsmgr-dir\/tls-redis\.cf: No such file or directory$/,
    serves: [[policy("smtp"), new RegExp(`^${UNAVAILABLE}`)], [lookup("smtp"), new RegExp(`^${MISS}`)]],
  },
  {
    what: "unsupported ticket key store",
    lines: ["tlsmgr_ticket_key_database = nosuch:/x"],
    error: /parameter tlsmgr_ticket_key_database: unsupported key store type "nosuch"/,
    serves: [[TKTKEY, /^status=0 keybuf=/]],
  },
  {
    what: "ticket key file in a directory that does not exist",
    lines: ["tlsmgr_ticket_key_database = /nonexistent-tlsmgr-dir/keys"],
    error: /parameter tlsmgr_ticket_key_database: cannot open session ticket key file \/nonexistent-tlsmgr-dir\/keys: No such file or directory$/,
    serves: [[TKTKEY, /^status=0 keybuf=/]],
  },
];

for (const c of SOFT) {
  test(`bad main.cf, served as Postfix serves it: ${c.what}`, async () => {
    const inst = rawTestInstance("softcf", [CACHE, ...c.lines]);
    const d = await startDaemon({ configDir: inst.dir, socket: inst.socket });
    try {
      for (const [req, re] of c.serves) {
        const reply = await tlsmgrRequest(inst.socket, req);
        assert.match([...reply].map(([k, v]) => `${k}=${v}`).join(" "), re, JSON.stringify(req));
      }
      const errors = d.stderr().split("\n").filter((l) => /^tlsmgr\[\d+\]: error: /.test(l));
      assert.equal(errors.length, 1, d.stderr());
      assert.match(errors[0]!, c.error);
      assert.ok(errors[0]!.includes(inst.mainCf) || !/parameter/.test(c.error.source), `names ${inst.mainCf}: ${errors[0]}`);
      assert.doesNotMatch(d.stderr(), /fatal: |\n\s+at .+:\d+:\d+\)?\n/);
    } finally {
      assert.equal(await d.stop(), 0);
      inst.cleanup();
    }
  });
}

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
