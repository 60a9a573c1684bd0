/**
 * hostile-clients.test.ts - clients that try to make the daemon lose
 *                           requests or write what they choose into its log.
 * Owns: pipelined requests followed by a half-close (every complete request
 *       answered, in order, then the close); client bytes in every kind of
 *       warning (escaped: no new line, no escape sequence reaches the log);
 *       warnings repeated by one client (a few logged, then a count of the
 *       rest, Postfix's "N more" style), stray NULs included; many clients
 *       each holding an unfinished request (the total held stays bounded).
 * Not here: slow, stuck and many clients (robustness/faults.test.ts); random
 *           input against a model (robustness/fuzz-socket.test.ts); the
 *           escaping of each sink (unit/msg-sanitize.test.ts).
 * See also: src/server/connection.ts, src/server/client-warnings.ts,
 *           src/protocol/attr0.ts, src/log/msg.ts (printable)
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startDaemon } from "../helpers/daemon.js";
import type { RunningDaemon } from "../helpers/daemon.js";
import { attr0ListSplit, openAnnounced, rawTestInstance } from "../helpers/raw-conn.js";
import type { RawTestInstance } from "../helpers/raw-conn.js";
import { inputBudgetBytes } from "../../src/server/input-budget.js";

const OK = "status\x000\0\0";
const POLICY_REQ = "request\0policy\0cache_type\0smtpd\0\0";
const POLICY_SMTPD = "status\x000\0cachable\x001\0timeout\x003600\0\0";
/** A 200 KiB session, as the adversarial run stored it. */
const SESSION = Buffer.alloc(200 * 1024, 0x5a);
const LOOKUP = "request\0lookup\0cache_type\0smtpd\0cache_id\0big\0\0";
const SEED = "request\0seed\0size\x0032\0\0";
const VALUE_LIMIT = 400_000;

let inst: RawTestInstance;
let daemon: RunningDaemon;

before(async () => {
  inst = rawTestInstance("hostile", [
    "smtpd_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache",
    `tlsmgr_attr_value_limit = ${VALUE_LIMIT}`,
  ]);
  daemon = await startDaemon({ configDir: inst.dir, socket: inst.socket });
  const c = await openAnnounced(daemon.socket);
  const req = `request\0update\0cache_type\0smtpd\0cache_id\0big\0session\0${SESSION.toString("base64")}\0\0`;
  assert.equal(await c.exchange(req, OK), OK);
  c.close();
});

after(async () => {
  const code = await daemon?.stop();
  inst?.cleanup();
  assert.equal(code, 0, "the daemon stops cleanly on SIGTERM");
});

/** logSince - the daemon's stderr lines written after `mark` characters. */
const logSince = (mark: number): string[] => daemon.stderr().slice(mark).split("\n").filter((l) => l !== "");

/** waitForLog - until a line after `mark` matches (the daemon's stderr comes through a pipe, later than socket events). */
async function waitForLog(mark: number, re: RegExp, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!logSince(mark).some((l) => re.test(l))) {
    if (Date.now() > deadline) assert.fail(`no log line ${re} in:\n${logSince(mark).join("\n")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stillServing(): Promise<void> {
  const c = await openAnnounced(daemon.socket);
  assert.equal(await c.exchange(POLICY_REQ, POLICY_SMTPD), POLICY_SMTPD);
  c.close();
}

test("50 pipelined 200 KiB lookups and a seed, then shutdown(SHUT_WR): all 51 answered in order, then the close", async () => {
  const mark = daemon.stderr().length;
  const c = await openAnnounced(daemon.socket);
  try {
    c.sock.end(Buffer.from(LOOKUP.repeat(50) + SEED, "latin1"));
    await c.waitClosed(30_000);
    const { lists, rest } = attr0ListSplit(c.received);
    assert.equal(rest.length, 0, "nothing after the last whole reply");
    assert.equal(lists.length, 51, `replies to 51 requests, got ${lists.length}`);
    const b64 = SESSION.toString("base64");
    lists.slice(0, 50).forEach((l, i) => {
      assert.deepEqual(l, [["status", "0"], ["session", b64]], `lookup reply ${i + 1}`);
    });
    const seed = lists[50]!;
    assert.equal(seed[0]?.[1], "0", "seed status");
    assert.equal(Buffer.from(seed[1]?.[1] ?? "", "base64").length, 32, "32 seed bytes");
  } finally {
    c.close();
  }
  assert.deepEqual(logSince(mark).filter((l) => /premature end-of-input|warning/.test(l)), [],
    "whole requests then EOF are not a premature end");
});

test("complete requests, then half a request and shutdown(SHUT_WR): the complete ones answered, one warning", async () => {
  const mark = daemon.stderr().length;
  const c = await openAnnounced(daemon.socket);
  try {
    c.sock.end(Buffer.from(POLICY_REQ.repeat(3) + LOOKUP.repeat(2) + "request\0lookup\0cache_ty", "latin1"));
    await c.waitClosed(30_000);
    const { lists, rest } = attr0ListSplit(c.received);
    assert.equal(rest.length, 0);
    assert.equal(lists.length, 5, "3 policy and 2 lookup replies");
  } finally {
    c.close();
  }
  await stillServing();
  await waitForLog(mark, /premature end-of-input/);
  const warnings = logSince(mark).filter((l) => l.includes("warning:"));
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0]!, /warning: premature end-of-input from .* while reading request$/);
});

/** A string a client chooses: a forged log line and terminal escapes. */
const FORGED = "\nfatal: forged by a client\x1b[2J\r\x07";

/** The ways a client string reaches a warning, each as a request and what the line must say. */
const INJECTIONS: Array<{ what: string; input: string; closes: boolean }> = [
  {
    what: "attribute name in an over-long value",
    input: `request\0update\0cache_type\0smtpd\0cache_id\0x\0${FORGED}\0${"A".repeat(VALUE_LIMIT + 1)}`,
    closes: true,
  },
  { what: "unexpected attribute name", input: `request\0lookup\0${FORGED}\0smtpd\0\0`, closes: false },
  { what: "first attribute not request", input: `${FORGED}\0x\0\0`, closes: false },
  { what: "unknown request name", input: `request\0${FORGED}\0\0`, closes: false },
  { what: "bogus cache type", input: `request\0lookup\0cache_type\0${FORGED}\0cache_id\0x\0\0`, closes: false },
  { what: "bogus policy cache type", input: `request\0policy\0cache_type\0${FORGED}\0\0`, closes: false },
  { what: "malformed number", input: `request\0seed\0size\0${FORGED}\0\0`, closes: false },
  { what: "malformed base64", input: `request\0tktkey\0keyname\0${FORGED}\0\0`, closes: false },
  { what: "extra attribute", input: `request\0seed\0size\x0016\0${FORGED}\0x\0\0`, closes: false },
];

for (const inj of INJECTIONS) {
  test(`a client string in a warning is escaped: ${inj.what}`, async () => {
    const mark = daemon.stderr().length;
    const c = await openAnnounced(daemon.socket);
    try {
      c.sock.write(Buffer.from(inj.input, "latin1"));
      if (inj.closes) await c.waitClosed(10_000);
      else await c.until(() => attr0ListSplit(c.received).lists.length >= 1, "a reply");
    } finally {
      c.close();
    }
    await stillServing();
    await waitForLog(mark, /\?fatal: forged by a client\?/);
    const lines = logSince(mark);
    assert.ok(lines.length >= 1, "a warning was logged");
    for (const l of lines) {
      assert.match(l, /^tlsmgr\[\d+\]: warning: /, `every line is the daemon's own: ${JSON.stringify(l)}`);
      assert.doesNotMatch(l, /[\x00-\x1f\x7f]/, `no control character: ${JSON.stringify(l)}`);
    }
    assert.ok(lines.some((l) => l.includes("?fatal: forged by a client?[2J??")), `the name shown escaped:\n${lines.join("\n")}`);
  });
}

test("a client that repeats bad requests: a few warnings, then one count of the rest when it leaves", async () => {
  const mark = daemon.stderr().length;
  const c = await openAnnounced(daemon.socket);
  const N = 500;
  try {
    c.sock.write(Buffer.from(`request\0frobnicate\0\0`.repeat(N), "latin1"));
    await c.until(() => attr0ListSplit(c.received).lists.length >= N, `${N} replies`, 20_000);
    assert.equal(attr0ListSplit(c.received).lists.length, N, "every bad request still answered");
  } finally {
    c.sock.end();
    await c.waitClosed(10_000);
  }
  await stillServing();
  await waitForLog(mark, /more warnings? not logged$/);
  const lines = logSince(mark);
  const each = lines.filter((l) => /warning: unknown request "frobnicate" from /.test(l));
  const more = lines.filter((l) => /warning: .* client #\d+: \d+ more warnings? not logged$/.test(l));
  assert.ok(each.length >= 1 && each.length <= 10, `a few warnings logged, not ${each.length}`);
  assert.equal(more.length, 1, `one summary:\n${lines.join("\n")}`);
  assert.equal(Number(/: (\d+) more/.exec(more[0]!)![1]) + each.length, N, "logged + counted = sent");
});

test("stray NULs (empty requests): each answered, a few warnings and one count of the rest", async () => {
  const mark = daemon.stderr().length;
  const c = await openAnnounced(daemon.socket);
  const N = 2000;
  try {
    // After a first whole request: a lone NUL first on a connection is a trigger.
    c.sock.write(Buffer.from(POLICY_REQ + "\0".repeat(N), "latin1"));
    await c.until(() => attr0ListSplit(c.received).lists.length >= N + 1, `${N + 1} replies`, 20_000);
  } finally {
    c.sock.end();
    await c.waitClosed(10_000);
  }
  await waitForLog(mark, /more warnings? not logged$/);
  const lines = logSince(mark);
  const each = lines.filter((l) => /warning: empty request from /.test(l));
  const more = lines.filter((l) => /more warnings? not logged$/.test(l));
  assert.ok(each.length >= 1 && each.length <= 10, `a few warnings logged, not ${each.length}`);
  assert.equal(more.length, 1, lines.join("\n"));
  assert.equal(Number(/: (\d+) more/.exec(more[0]!)![1]) + each.length, N);
});

test("clients that each hold an unfinished 5.6 MB request: the total held stays under the bound, the largest are dropped", async () => {
  const limit = inputBudgetBytes({ nameLimit: 256, valueLimit: VALUE_LIMIT, countLimit: 16 });
  const mark = daemon.stderr().length;
  const value = "A".repeat(VALUE_LIMIT);
  let partial = "request\0update\0";
  for (let i = 0; i < 14; i++) partial += `x${i}\0${value}\0`;
  const bytes = Buffer.from(partial, "latin1");
  const n = Math.ceil((1.5 * limit) / bytes.length);
  const conns = await Promise.all(Array.from({ length: n }, () => openAnnounced(daemon.socket)));
  try {
    await Promise.all(conns.map((c) => new Promise<void>((resolve) => {
      c.sock.write(bytes, () => resolve());
      c.sock.once("close", () => resolve());
    })));
    await conns[0]!.until(() => logSince(mark).filter((l) => l.includes("unfinished requests")).length >= 1, "a drop", 20_000);
    await new Promise((r) => setTimeout(r, 500));
    const open = conns.filter((c) => !c.closed).length;
    const drops = logSince(mark).filter((l) => /warning: .* client #\d+: unfinished requests of all clients hold \d+ bytes, more than \d+: closing this client, which held \d+$/.test(l));
    assert.ok(open * bytes.length <= limit, `${open} clients of ${bytes.length} bytes each still held (limit ${limit})`);
    assert.equal(drops.length, n - open, "one warning per dropped client");
    assert.ok(open >= Math.floor(limit / bytes.length) - 1, `the others keep their connection: ${open} of ${n}`);
    await stillServing();
  } finally {
    for (const c of conns) c.close();
  }
});
