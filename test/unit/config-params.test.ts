/**
 * config-params.test.ts - loadConfig(): defaults (= postconf -d), main.cf, -o overrides,
 * typed values and the fatal diagnostics for bad start-up configuration.
 * See also: src/config/params.ts, test/fixtures/config/{typed,postconf-d.ref}
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { FatalError } from "../../src/log/msg.js";
import {
  SCACHE_PARAMS, TLSMGR_NEWER_POSTFIX_PARAMS, TLSMGR_OWN_PARAMS, TLSMGR_PARAMS, loadConfig, type TlsmgrConfig,
} from "../../src/config/params.js";
import { captureMsgs } from "../helpers/msg-capture.js";

const FIXTURES = fileURLToPath(new URL("../../../test/fixtures/config/", import.meta.url));

/** withMainCf - a temporary config directory holding TEXT as main.cf. */
function withMainCf<T>(text: string, fn: (dir: string, path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "tlsmgr-params-"));
  try {
    writeFileSync(join(dir, "main.cf"), text);
    return fn(dir, join(dir, "main.cf"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** fatalOf - the fatal text loading TEXT (with OVERRIDES) gives; also checks it was logged. */
function fatalOf(text: string, overrides: string[] = []): { message: string; path: string } {
  return withMainCf(text, (configDir, path) => {
    const { error, lines } = captureMsgs(() => loadConfig({ configDir, overrides }));
    assert.ok(error instanceof FatalError, `expected a fatal error for ${JSON.stringify(text)}`);
    assert.equal(lines[lines.length - 1], `fatal: ${error.message}`);
    return { message: error.message, path };
  });
}

function findPostconf(): string | undefined {
  for (const cmd of ["/usr/sbin/postconf", "postconf"]) {
    if (spawnSync(cmd, ["-d", "mail_version"], { encoding: "utf8" }).status === 0) return cmd;
  }
  return undefined;
}
const POSTCONF = findPostconf();
const POSTFIX_NAMES = TLSMGR_PARAMS.map((p) => p.name)
  .filter((n) => !TLSMGR_OWN_PARAMS.has(n) && !TLSMGR_NEWER_POSTFIX_PARAMS.has(n) && n !== "process_name");

const defaultsOnly = (configDir = "/nonexistent/postfix"): TlsmgrConfig =>
  loadConfig({ configDir, allowMissingMainCf: true });

// ----------------------------------------------------------------- defaults

test("defaults: typed values with no main.cf", () => {
  const c = defaultsOnly();
  assert.equal(c.main_cf_path, "");
  assert.equal(c.config_directory, "/nonexistent/postfix");
  assert.equal(c.queue_directory, "/var/spool/postfix");
  assert.equal(c.data_directory, "/var/lib/postfix");
  assert.equal(c.mail_owner, "postfix");
  assert.equal(c.tlsmgr_service_name, "tlsmgr");
  assert.equal(c.daemon_timeout, 18000);
  assert.equal(c.ipc_timeout, 3600);
  assert.equal(c.max_idle, 100);
  assert.equal(c.max_use, 100);
  assert.equal(c.syslog_facility, "mail");
  assert.equal(c.syslog_name, "postfix");
  assert.equal(c.maillog_file, "");
  assert.equal(c.maillog_file_prefixes, "/var, /dev/stdout");
  assert.equal(c.postlog_service_name, "postlog");
  assert.match(c.import_environment, /^MAIL_CONFIG MAIL_DEBUG /);
  for (const svc of ["smtpd", "smtp", "lmtp"] as const) {
    assert.equal(c[`${svc}_tls_session_cache_database`], "");
    assert.equal(c[`${svc}_tls_session_cache_timeout`], 3600);
    assert.equal(c[`${svc}_tls_loglevel`], "0");
  }
  assert.equal(c.tls_random_source, "dev:/dev/urandom");
  assert.equal(c.tls_random_bytes, 32);
  assert.equal(c.tls_random_exchange_name, "/var/lib/postfix/prng_exch");
  assert.equal(c.tls_random_reseed_period, 3600);
  assert.equal(c.tls_random_prng_update_period, 3600);
  assert.equal(c.tlsmgr_ticket_key_database, "");
  assert.equal(c.tlsmgr_attr_name_limit, 256);
  assert.equal(c.tlsmgr_attr_value_limit, 1048576);
  assert.equal(c.tlsmgr_attr_count_limit, 16);
  assert.equal(c.lookup("process_name"), "tlsmgr");
  assert.equal(c.lookup("no_such_parameter"), undefined);
});

test("defaults: the table matches the recorded postconf -d of Postfix 3.7", () => {
  const ref = readFileSync(join(FIXTURES, "postconf-d.ref"), "utf8").split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  const ours = POSTFIX_NAMES.map((n) => `${n} = ${TLSMGR_PARAMS.find((p) => p.name === n)!.def}`.trimEnd());
  assert.deepEqual(ours, ref);
});

test("defaults: equal to the installed postconf -d, raw and expanded", { skip: POSTCONF === undefined && "postconf not installed" }, () => {
  const raw = spawnSync(POSTCONF!, ["-d", ...POSTFIX_NAMES], { encoding: "utf8" });
  assert.equal(raw.status, 0, raw.stderr);
  const ours = POSTFIX_NAMES.map((n) => `${n} = ${TLSMGR_PARAMS.find((p) => p.name === n)!.def}`.trimEnd());
  assert.deepEqual(ours, raw.stdout.trimEnd().split("\n"));
  const expanded = spawnSync(POSTCONF!, ["-d", "-x", "-h", ...POSTFIX_NAMES], { encoding: "utf8" });
  assert.equal(expanded.status, 0, expanded.stderr);
  const c = defaultsOnly("/etc/postfix");
  assert.deepEqual(POSTFIX_NAMES.map((n) => c.lookup(n)), expanded.stdout.split("\n").slice(0, POSTFIX_NAMES.length));
});

test("defaults: syslog_name follows multi_instance_name", () => {
  const c = loadConfig({ configDir: "/nonexistent", allowMissingMainCf: true, overrides: ["multi_instance_name=postfix-out"] });
  assert.equal(c.syslog_name, "postfix-out");
});

test("defaults option replaces built-in defaults of the names it gives", () => {
  const c = loadConfig({
    configDir: "/home/x/var",
    allowMissingMainCf: true,
    defaults: { data_directory: "/home/x/var/data", smtpd_tls_session_cache_database: "memory:smtpd", mail_owner: "x" },
  });
  assert.equal(c.config_directory, "/home/x/var");
  assert.equal(c.tls_random_exchange_name, "/home/x/var/data/prng_exch"); // a default referring to another one
  assert.equal(c.smtpd_tls_session_cache_database, "memory:smtpd");
  assert.equal(c.mail_owner, "x");
  assert.equal(c.queue_directory, "/var/spool/postfix"); // untouched built-in
});

test("missing main.cf is fatal unless allowed", () => {
  const dir = mkdtempSync(join(tmpdir(), "tlsmgr-params-"));
  try {
    const { error } = captureMsgs(() => loadConfig({ configDir: dir }));
    assert.equal((error as FatalError).message, `open ${join(dir, "main.cf")}: No such file or directory`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// -------------------------------------------------------- main.cf and -o

test("typed fixture: units, $name references, loglevel words", () => {
  const dir = join(FIXTURES, "typed");
  const c = loadConfig({ configDir: dir });
  assert.equal(c.main_cf_path, join(dir, "main.cf"));
  assert.equal(c.config_directory, dir);
  assert.equal(c.smtpd_tls_session_cache_database, "lmdb:/var/lib/postfix/smtpd_scache");
  assert.equal(c.smtpd_tls_session_cache_timeout, 7200);
  assert.equal(c.smtp_tls_session_cache_database, "btree:/var/lib/postfix/smtp_scache");
  assert.equal(c.smtp_tls_session_cache_timeout, 86400);
  assert.equal(c.lmtp_tls_session_cache_timeout, 3600);
  // text as written: tls-log-mask.ts reads it where it is used, as Postfix's tls_log_mask()
  assert.equal(c.smtpd_tls_loglevel, "2");
  assert.equal(c.smtp_tls_loglevel, "routine");
  assert.equal(c.lmtp_tls_loglevel, "1, cache");
  assert.equal(c.tls_random_bytes, 64);
  assert.equal(c.tls_random_reseed_period, 1800);
  assert.equal(c.syslog_name, "postfix-out");
  assert.equal(c.lookup("smtp_tls_session_cache_database"), "btree:/var/lib/postfix/smtp_scache");
  // The per-cache record holds the same values, and the parameters' names.
  assert.deepEqual(c.caches.smtpd, {
    database: "lmdb:/var/lib/postfix/smtpd_scache",
    timeout: 7200,
    loglevel: "2",
    param: { database: "smtpd_tls_session_cache_database", timeout: "smtpd_tls_session_cache_timeout", loglevel: "smtpd_tls_loglevel" },
  });
  assert.deepEqual(c.caches.smtp.param, SCACHE_PARAMS.smtp);
  assert.deepEqual([c.caches.smtp.database, c.caches.smtp.timeout, c.caches.smtp.loglevel], ["btree:/var/lib/postfix/smtp_scache", 86400, "routine"]);
  assert.deepEqual([c.caches.lmtp.database, c.caches.lmtp.timeout, c.caches.lmtp.loglevel], ["", 3600, "1, cache"]);
  // Typed by the table's kinds (a compile-time check as much as a run-time one).
  const seconds: number = c.daemon_timeout;
  const owner: string = c.mail_owner;
  assert.equal(typeof seconds, "number");
  assert.equal(typeof owner, "string");
});

test("main.cf values are expanded against each other, -o values and defaults", () => {
  const text = "data_directory = /srv/pf\nmy_cache = btree:$data_directory/c\nsmtp_tls_session_cache_database = $my_cache\n";
  withMainCf(text, (configDir) => {
    const c = loadConfig({ configDir, overrides: ["data_directory = /o/pf"] });
    assert.equal(c.data_directory, "/o/pf");
    assert.equal(c.smtp_tls_session_cache_database, "btree:/o/pf/c");
    assert.equal(c.tls_random_exchange_name, "/o/pf/prng_exch");
    assert.equal(c.lookup("my_cache"), "btree:/o/pf/c");
  });
});

test("-o overrides win over main.cf; the last one wins; values are trimmed", () => {
  withMainCf("smtpd_tls_session_cache_timeout = 1h\ntls_random_bytes = 64\n", (configDir) => {
    const c = loadConfig({
      configDir,
      overrides: ["smtpd_tls_session_cache_timeout=10m", "tls_random_bytes = 16", "tls_random_bytes=  8  "],
    });
    assert.equal(c.smtpd_tls_session_cache_timeout, 600);
    assert.equal(c.tls_random_bytes, 8);
    const empty = loadConfig({ configDir, overrides: ["smtpd_tls_session_cache_database="] });
    assert.equal(empty.smtpd_tls_session_cache_database, "");
  });
});

test("a bad -o value is fatal in multi_server's words", () => {
  const { message } = fatalOf("", ["no_equals_sign"]);
  assert.equal(message, `invalid "-o no_equals_sign" option value: missing '=' after attribute name`);
  assert.equal(fatalOf("", ["=x"]).message, `invalid "-o =x" option value: missing attribute name`);
});

// ------------------------------------------------------------------ fatals

test("fatal: bad time value names file and parameter", () => {
  const { message, path } = fatalOf("smtpd_tls_session_cache_timeout = 3x\n");
  assert.equal(message, `${path}: parameter smtpd_tls_session_cache_timeout: bad time value or unit: 3x`);
  const neg = fatalOf("tls_random_reseed_period = -5\n");
  assert.equal(neg.message, `${neg.path}: parameter tls_random_reseed_period: bad time value or unit: -5`);
  const viaO = fatalOf("", ["lmtp_tls_session_cache_timeout=1y"]);
  assert.equal(viaO.message, `${viaO.path}: parameter lmtp_tls_session_cache_timeout: bad time value or unit: 1y`);
});

test("fatal: time out of the parameter's range", () => {
  const big = fatalOf("smtp_tls_session_cache_timeout = 8640001\n");
  assert.equal(big.message, `${big.path}: invalid smtp_tls_session_cache_timeout: 8640001 (max 8640000)`);
  const weeks = fatalOf("smtpd_tls_session_cache_timeout = 15w\n");
  assert.equal(weeks.message, `${weeks.path}: invalid smtpd_tls_session_cache_timeout: 9072000 (max 8640000)`);
  const zero = fatalOf("tls_random_prng_update_period = 0\n");
  assert.equal(zero.message, `${zero.path}: invalid tls_random_prng_update_period: 0 (min 1)`);
  const ok = withMainCf("smtpd_tls_session_cache_timeout = 100d\nsmtp_tls_session_cache_timeout = 0\n", (configDir) =>
    loadConfig({ configDir }));
  assert.equal(ok.smtpd_tls_session_cache_timeout, 8640000); // the maximum itself is fine
  assert.equal(ok.smtp_tls_session_cache_timeout, 0); // 0 disables the cache; sanitising is not done here
});

test("fatal: integers", () => {
  const bad = fatalOf("tls_random_bytes = 3k\n");
  assert.equal(bad.message, `${bad.path}: bad numerical configuration: tls_random_bytes = 3k`);
  const low = fatalOf("tls_random_bytes = 0\n");
  assert.equal(low.message, `${low.path}: invalid tls_random_bytes parameter value 0 < 1`);
  const ours = fatalOf("tlsmgr_attr_count_limit = -1\n");
  assert.equal(ours.message, `${ours.path}: invalid tlsmgr_attr_count_limit parameter value -1 < 1`);
  const huge = fatalOf("max_use = 4294967296\n");
  assert.equal(huge.message, `${huge.path}: bad numerical configuration: max_use = 4294967296`);
});

test("fatal: required strings must not be empty", () => {
  const { message, path } = fatalOf("mail_owner =\n");
  assert.equal(message, `${path}: bad string length 0 < 1: mail_owner = `);
});

test("an unknown TLS log level word is not fatal (tls-log-mask.ts warns where the value is used)", () => {
  withMainCf("smtpd_tls_loglevel = 1,trace\nsmtp_tls_loglevel = 10\n", (configDir) => {
    const { error, lines } = captureMsgs(() => loadConfig({ configDir }));
    assert.equal(error, undefined);
    assert.deepEqual(lines, []);
  });
});

test("fatal: expansion loop and syntax errors name file and parameter", () => {
  const loop = fatalOf("a = $b\nb = ${a}\ntls_random_source = x$a\n");
  assert.equal(loop.message, `${loop.path}: parameter tls_random_source: unreasonable macro call nesting: "a" (loop: a -> b -> a)`);
  const self = fatalOf("data_directory = $data_directory/x\n");
  assert.equal(self.message, `${self.path}: parameter data_directory: unreasonable macro call nesting: "data_directory" (loop: data_directory -> data_directory)`);
  const syntax = fatalOf("tls_random_source = ${oops\n");
  assert.equal(syntax.message, `${syntax.path}: parameter tls_random_source: truncated macro reference: "\${oops"`);
});

test("fatal: a loop met later by lookup() is fatal too", () => {
  withMainCf("x = $y\ny = $x\n", (configDir) => {
    const c = loadConfig({ configDir });
    const { error } = captureMsgs(() => c.lookup("x"));
    assert.ok(error instanceof FatalError);
    assert.match(error.message, /main\.cf: parameter x: unreasonable macro call nesting/);
  });
});
