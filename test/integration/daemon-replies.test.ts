/**
 * daemon-replies.test.ts - the built daemon as a separate process on a
 * temporary socket: every request, good and bad, answered byte for byte as
 * Postfix answers it (and, where Postfix 3.7 hangs, answered at once).
 * See also: src/server/handlers.ts, postfix/src/tlsmgr/tlsmgr.c, postfix/src/tls/tls_mgr.c
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon } from "../helpers/daemon.js";
import type { RunningDaemon } from "../helpers/daemon.js";
import { Raw } from "../helpers/raw-conn.js";

const ANNOUNCE = "protocol\0tlsmgr_protocol\0\0";
const FAIL = "status\x004294967294\0\0";
const b64 = (b: Buffer) => b.toString("base64");

let dir: string;
let daemon: RunningDaemon;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "tlsmgr-replies-"));
  mkdirSync(join(dir, "data"), { mode: 0o700 });
  writeFileSync(
    join(dir, "main.cf"),
    [
      `queue_directory = ${dir}/queue`,
      `data_directory = ${dir}/data`,
      `mail_owner = root`,
      `smtpd_tls_session_cache_database = lmdb:\${data_directory}/smtpd_scache`,
      `smtp_tls_session_cache_database = lmdb:\${data_directory}/smtp_scache`,
      `smtp_tls_session_cache_timeout = 60s`,
      `tls_random_exchange_name = \${data_directory}/prng_exch`,
      `tlsmgr_attr_value_limit = 4096`,
      "",
    ].join("\n"),
  );
  daemon = await startDaemon({ configDir: dir, socket: join(dir, "tlsmgr.sock") });
});

after(async () => {
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function session(): Promise<Raw> {
  const raw = await Raw.open(daemon.socket);
  assert.equal(await raw.take(ANNOUNCE.length), ANNOUNCE, "server speaks first");
  return raw;
}

test("policy: enabled, disabled-by-default lmtp, bogus type", async () => {
  const c = await session();
  const smtpd = "status\x000\0cachable\x001\0timeout\x003600\0\0";
  assert.equal(await c.exchange("request\0policy\0cache_type\0smtpd\0\0", smtpd), smtpd);
  const smtp = "status\x000\0cachable\x001\0timeout\x00120\0\0";
  assert.equal(await c.exchange("request\0policy\0cache_type\0smtp\0\0", smtp), smtp, "60s sanitised to 120");
  const lmtp = "status\x000\0cachable\x000\0timeout\x003600\0\0";
  assert.equal(await c.exchange("request\0policy\0cache_type\0lmtp\0\0", lmtp), lmtp);
  const bogus = "status\x004294967294\0cachable\x000\0timeout\x000\0\0";
  assert.equal(await c.exchange("request\0policy\0cache_type\0pop3\0\0", bogus), bogus);
  c.close();
  await waitForLog(/warning: bogus cache type "pop3" in "policy" request/);
});

test("update, lookup, delete: round trip of binary bytes, misses, disabled cache", async () => {
  const c = await session();
  const id = "smtp&[127.0.0.1]:2526&127.0.0.1&127.0.0.1&&" + "ab".repeat(32);
  const sess = Buffer.from(Array.from({ length: 1500 }, (_, i) => (i * 7) & 0xff));
  const miss = "status\x004294967295\0session\0\0\0";
  assert.equal(await c.exchange(`request\0lookup\0cache_type\0smtp\0cache_id\0${id}\0\0`, miss), miss);
  const ok = "status\x000\0\0";
  assert.equal(await c.exchange(`request\0update\0cache_type\0smtp\0cache_id\0${id}\0session\0${b64(sess)}\0\0`, ok), ok);
  const hit = `status\x000\0session\0${b64(sess)}\0\0`;
  assert.equal(await c.exchange(`request\0lookup\0cache_type\0smtp\0cache_id\0${id}\0\0`, hit), hit);
  const empty = "status\x000\0session\0\0\0";
  assert.equal(await c.exchange(`request\0update\0cache_type\0smtpd\0cache_id\0e\0session\0\0\0`, ok), ok);
  assert.equal(await c.exchange(`request\0lookup\0cache_type\0smtpd\0cache_id\0e\0\0`, empty), empty, "empty session stored");
  assert.equal(await c.exchange(`request\0delete\0cache_type\0smtp\0cache_id\0${id}\0\0`, ok), ok);
  const gone = "status\x004294967295\0\0";
  assert.equal(await c.exchange(`request\0delete\0cache_type\0smtp\0cache_id\0${id}\0\0`, gone), gone);
  assert.equal(await c.exchange(`request\0lookup\0cache_type\0smtp\0cache_id\0${id}\0\0`, miss), miss);
  const disabled = "status\x004294967294\0session\0\0\0";
  assert.equal(await c.exchange(`request\0lookup\0cache_type\0lmtp\0cache_id\0x\0\0`, disabled), disabled);
  assert.equal(await c.exchange(`request\0update\0cache_type\0lmtp\0cache_id\0x\0session\0AA==\0\0`, FAIL), FAIL);
  assert.equal(await c.exchange(`request\0delete\0cache_type\0lmtp\0cache_id\0x\0\0`, FAIL), FAIL);
  const bogus = "status\x004294967294\0session\0\0\0";
  assert.equal(await c.exchange(`request\0lookup\0cache_type\0x\0cache_id\0y\0\0`, bogus), bogus);
  c.close();
});

test("seed: sizes 1 and 255 give that many fresh bytes; 0, 256 and junk are refused", async () => {
  const c = await session();
  for (const n of [1, 32, 255]) {
    const r = await c.reply(`request\0seed\0size\0${n}\0\0`);
    const m = /^status\x000\0seed\0([A-Za-z0-9+/=]*)\0\0$/.exec(r);
    assert.ok(m, JSON.stringify(r));
    assert.equal(Buffer.from(m[1]!, "base64").length, n);
  }
  const a = await c.reply(`request\0seed\0size\x0032\0\0`);
  const b = await c.reply(`request\0seed\0size\x0032\0\0`);
  assert.notEqual(a, b, "two seeds differ");
  const refused = "status\x004294967294\0seed\0\0\0";
  for (const bad of ["0", "256", "-1", "4294967295", "12x", ""])
    assert.equal(await c.exchange(`request\0seed\0size\0${bad}\0\0`, refused), refused, bad);
  c.close();
  await waitForLog(/warning: bogus seed length "256" in "seed" request/);
  await waitForLog(/warning: malformed numerical data from .* while reading input attribute value: 12x/);
});

test("tktkey: current key, by name, unknown name, bad name length", async () => {
  const c = await session();
  const r = await c.reply("request\0tktkey\0keyname\0\0\0");
  const m = /^status\x000\0keybuf\0([A-Za-z0-9+/=]+)\0\0$/.exec(r);
  assert.ok(m, JSON.stringify(r));
  const rec = Buffer.from(m[1]!, "base64");
  assert.equal(rec.length, 88);
  const tout = Number(rec.readBigInt64LE(80));
  const now = Math.floor(Date.now() / 1000);
  assert.ok(tout >= now + 1800 - 1 - 5 && tout <= now + 1800 - 1, `tout ${tout} vs now ${now}`);
  const name = rec.subarray(0, 16);
  assert.equal(await c.reply("request\0tktkey\0keyname\0\0\0"), r, "same current key again");
  assert.equal(await c.reply(`request\0tktkey\0keyname\0${b64(name)}\0\0`), r, "found by name");
  const unknown = Buffer.alloc(16, 0xee);
  const miss = `status\x004294967295\0keybuf\0${b64(unknown)}\0\0`;
  assert.equal(await c.exchange(`request\0tktkey\0keyname\0${b64(unknown)}\0\0`, miss), miss, "name echoed");
  // a bad length: -2 with an empty keybuf, as Postfix 3.5-3.11 (3.12 snapshots echo the name)
  const five = Buffer.from("abcde");
  const bad = "status\x004294967294\0keybuf\0\0\0";
  assert.equal(await c.exchange(`request\0tktkey\0keyname\0${b64(five)}\0\0`, bad), bad);
  const badb64 = "status\x004294967294\0keybuf\0\0\0";
  assert.equal(await c.exchange(`request\0tktkey\0keyname\0!!!!\0\0`, badb64), badb64);
  c.close();
  await waitForLog(/warning: invalid session ticket key name length: 5/);
});

test("protocol faults: unknown request, empty list, first attribute not request, strict order, missing, extra", async () => {
  const c = await session();
  assert.equal(await c.exchange("request\0frobnicate\0\0", FAIL), FAIL, "unknown request answered at once");
  assert.equal(await c.exchange("\0", FAIL), FAIL, "empty list answered");
  assert.equal(await c.exchange("size\x0032\0\0", FAIL), FAIL);
  const lookupFail = "status\x004294967294\0session\0\0\0";
  assert.equal(await c.exchange("request\0lookup\0cache_id\0x\0cache_type\0smtpd\0\0", lookupFail), lookupFail, "order is strict");
  assert.equal(await c.exchange("request\0lookup\0cache_type\0smtpd\0\0", lookupFail), lookupFail, "missing cache_id");
  const policy = "status\x000\0cachable\x001\0timeout\x003600\0\0";
  assert.equal(await c.exchange("request\0policy\0cache_type\0smtpd\0junk\0x\0\0", policy), policy, "extra attribute ignored");
  // The connection is still in step after all that:
  assert.equal(await c.exchange("request\0policy\0cache_type\0smtpd\0\0", policy), policy);
  c.close();
  await waitForLog(/warning: unknown request "frobnicate" from /);
  await waitForLog(/warning: unexpected attribute cache_id from .* \(expecting: cache_type\)/);
  await waitForLog(/warning: missing attribute cache_id in input from /);
});

test("pipelined requests in one write are all answered, in order", async () => {
  const c = await session();
  const reqs =
    "request\0update\0cache_type\0smtpd\0cache_id\0p\0session\0AQID\0\0" +
    "request\0lookup\0cache_type\0smtpd\0cache_id\0p\0\0" +
    "request\0policy\0cache_type\0lmtp\0\0" +
    "request\0nope\0\0" +
    "request\0delete\0cache_type\0smtpd\0cache_id\0p\0\0" +
    "request\0lookup\0cache_type\0smtpd\0cache_id\0p\0\0";
  const expected =
    "status\x000\0\0" +
    "status\x000\0session\0AQID\0\0" +
    "status\x000\0cachable\x000\0timeout\x003600\0\0" +
    FAIL +
    "status\x000\0\0" +
    "status\x004294967295\0session\0\0\0";
  assert.equal(await c.exchange(reqs, expected), expected);
  c.close();
});

test("a request split into single bytes is answered once, whole", async () => {
  const c = await session();
  const req = Buffer.from("request\0policy\0cache_type\0smtpd\0\0", "latin1");
  for (let i = 0; i < req.length; i++) {
    c.sock.write(req.subarray(i, i + 1));
    await new Promise((r) => setImmediate(r));
  }
  const policy = "status\x000\0cachable\x001\0timeout\x003600\0\0";
  assert.equal(await c.take(policy.length), policy);
  c.close();
});

test("master wakeup trigger: connection closed, no reply", async () => {
  const c = await session();
  c.sock.write(Buffer.from("W\0", "latin1"));
  await c.until(() => c.closed, "close");
  assert.equal(c.received.length, 0);
});

test("input over a bound: status -2 shaped for the request, then the connection is closed", async () => {
  const c = await session();
  const big = "A".repeat(8000);
  c.sock.write(Buffer.from(`request\0update\0cache_type\0smtpd\0cache_id\0big\0session\0${big}\0\0`, "latin1"));
  await c.until(() => c.closed, "close");
  assert.equal(c.received.toString("latin1"), FAIL);
  await waitForLog(/warning: value of attribute session exceeds limit 4096 in input from /);
  // The daemon keeps serving others.
  const d = await session();
  const policy = "status\x000\0cachable\x001\0timeout\x003600\0\0";
  assert.equal(await d.exchange("request\0policy\0cache_type\0smtpd\0\0", policy), policy);
  d.close();
});

test("many connections at once", async () => {
  const conns = await Promise.all(Array.from({ length: 50 }, () => session()));
  const policy = "status\x000\0cachable\x001\0timeout\x003600\0\0";
  const replies = await Promise.all(conns.map((c) => c.exchange("request\0policy\0cache_type\0smtpd\0\0", policy)));
  assert.deepEqual(replies, conns.map(() => policy));
  for (const c of conns) c.close();
});

test("the log never holds session bytes", async () => {
  const marker = Buffer.from("SECRET-SESSION-BYTES-0123456789");
  const c = await session();
  await c.reply(`request\0update\0cache_type\0zzz\0cache_id\0id\0session\0${b64(marker)}\0\0`);
  c.close();
  await waitForLog(/bogus cache type "zzz" in "update" request/);
  assert.ok(!daemon.stderr().includes(marker.toString()));
  assert.ok(!daemon.stderr().includes(b64(marker)));
});

async function waitForLog(re: RegExp): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!re.test(daemon.stderr())) {
    if (Date.now() > deadline) assert.fail(`no log line ${re} in:\n${daemon.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
