/**
 * fuzz-socket.test.ts - random bytes and random attribute lists sent to one
 *                       running daemon over its real socket.
 * Owns: the generators (token soup, lists of random and well-formed requests,
 *       huge and binary values, random write chunking, half-close), held
 *       against an independent model of what the daemon must answer
 *       (test/helpers/reply-model.ts): one reply per complete list, in order,
 *       shaped for its request, with the status each request must get (the
 *       cache contents and the current ticket key are tracked), no reply to a
 *       trigger, and a close after a trigger or a bound exceeded.
 * Not here: slow, stuck and many clients (robustness/faults.test.ts); the
 *           exact wording of each reply (integration/daemon-replies.test.ts).
 * See also: src/protocol/attr0.ts (the bounds), src/server/connection.ts,
 *           src/server/handlers.ts, postfix/src/tls/tls_mgr.c, postfix/src/util/attr_scan0.c
 *
 * After every case the daemon must still be running and answer `policy` on a
 * new connection. The input of a case that must end in a close is cut where
 * the daemon has seen enough to decide (the end of the trigger, or one byte
 * past a bound): bytes after that would sit unread in the daemon's socket,
 * and the kernel would then reset the connection and could throw away the
 * replies before this test read them.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { startDaemon } from "../helpers/daemon.js";
import type { RunningDaemon } from "../helpers/daemon.js";
import { attr0ListSplit, openAnnounced, rawTestInstance } from "../helpers/raw-conn.js";
import type { RawTestInstance } from "../helpers/raw-conn.js";
import { ReplyModel, show } from "../helpers/reply-model.js";

const NAME_LIMIT = 256;
const VALUE_LIMIT = 65536;
const COUNT_LIMIT = 16;
const OK = "0";
const ERR = "4294967295";
const FAIL = "4294967294";
const POLICY_SMTPD = "status\x000\0cachable\x001\0timeout\x003600\0\0";
/** policy answers of the instance below: [cachable, timeout] */
const POLICY: Record<string, [string, string]> = { smtpd: ["1", "3600"], smtp: ["1", "120"], lmtp: ["0", "3600"] };

let inst: RawTestInstance;
let daemon: RunningDaemon;

before(async () => {
  inst = rawTestInstance("fuzz", [
    "smtpd_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache",
    "smtp_tls_session_cache_database = lmdb:${data_directory}/smtp_scache",
    "smtp_tls_session_cache_timeout = 60s",
    `tlsmgr_attr_name_limit = ${NAME_LIMIT}`,
    `tlsmgr_attr_value_limit = ${VALUE_LIMIT}`,
    `tlsmgr_attr_count_limit = ${COUNT_LIMIT}`,
  ]);
  daemon = await startDaemon({ configDir: inst.dir, socket: inst.socket });
});

after(async () => {
  const code = await daemon?.stop();
  inst?.cleanup();
  assert.equal(code, 0, "the daemon stops cleanly on SIGTERM after the fuzzing");
});

// ---------------------------------------------------------------------------
// The model (test/helpers/reply-model.ts)

const model = new ReplyModel({
  nameLimit: NAME_LIMIT,
  valueLimit: VALUE_LIMIT,
  countLimit: COUNT_LIMIT,
  policy: POLICY,
  enabled: ["smtpd", "smtp"],
});

// ---------------------------------------------------------------------------
// Generators (values print small: huge runs are {fill, len}, not bytes)

/** A piece of input: latin1 text, raw bytes, or `len` copies of byte `fill`. */
type Piece = string | Uint8Array | { fill: number; len: number };

const pieceBytes = (p: Piece): Buffer =>
  typeof p === "string" ? Buffer.from(p, "latin1") : p instanceof Uint8Array ? Buffer.from(p) : Buffer.alloc(p.len, p.fill);

const WORDS = [
  "request", "lookup", "update", "delete", "seed", "policy", "tktkey", "frobnicate", "cache_type", "cache_id",
  "session", "size", "keyname", "status", "smtpd", "smtp", "lmtp", "W", "AAAA", "AA==", "=", "32", "-1", "255",
  "256", "4294967295", "0",
];

/** Runs just around each bound (and harmless long ones). */
const hugeRun = fc.record({
  fill: fc.constantFrom(0x41, 0x78, 0xff),
  len: fc.oneof(
    fc.integer({ min: NAME_LIMIT - 2, max: NAME_LIMIT + 2 }),
    fc.integer({ min: VALUE_LIMIT - 4, max: VALUE_LIMIT + 4 }),
    fc.integer({ min: 1000, max: 20000 }),
  ),
});

const nulFreeBytes = (maxLength: number) =>
  fc.uint8Array({ maxLength }).map((a) => a.map((b) => (b === 0 ? 1 : b)));

/** Token soup: words, NULs, random bytes (with NULs), runs near the bounds. */
const soupInput: fc.Arbitrary<Piece[]> = fc.oneof(
  fc.uint8Array({ maxLength: 600 }).map((a) => [a] as Piece[]),
  fc.array(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom<Piece>(...WORDS, "\0", "\0", "\0\0") },
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 24 }) as fc.Arbitrary<Piece> },
      { weight: 1, arbitrary: hugeRun as fc.Arbitrary<Piece> },
    ),
    { maxLength: 40 },
  ),
);

const cacheType = fc.constantFrom("smtpd", "smtp", "lmtp", "pop3", "", "SMTPD");
const cacheId = fc.oneof(
  fc.constantFrom("a", "b", "smtp&[127.0.0.1]:25&x", ""),
  nulFreeBytes(40),
  fc.record({ fill: fc.constant(0x69), len: fc.integer({ min: 1020, max: 1100 }) }),
);
const sessionData: fc.Arbitrary<Piece> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a).toString("base64")),
  // 40..49 KB of "AAAA...": valid base64 of zero bytes, below the value bound
  fc.integer({ min: 10000, max: 12250 }).map((k) => ({ fill: 0x41, len: 4 * k })),
  fc.constantFrom("", "!!!!", "AAA", "AA=A", "===="),
);
const intText = fc.oneof(
  fc.integer({ min: -300, max: 300 }).map(String),
  fc.constantFrom("4294967295", "4294967296", "-4294967295", "+32", "032", "12x", "", " 32", "99999999999999999999"),
);
const keyname = fc.oneof(
  fc.constantFrom(0, 16, 16, 5, 32).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })).map((a) => Buffer.from(a).toString("base64")),
  fc.constantFrom("", "!!!!"),
);

/** Any value: the kinds above, NUL-free binary, and runs near the value bound. */
const anyValue: fc.Arbitrary<Piece> = fc.oneof(
  cacheType,
  intText,
  sessionData,
  nulFreeBytes(64) as fc.Arbitrary<Piece>,
  hugeRun as fc.Arbitrary<Piece>,
);
const anyName: fc.Arbitrary<Piece> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom<Piece>("request", "cache_type", "cache_id", "session", "size", "keyname", "W", "x") },
  { weight: 1, arbitrary: nulFreeBytes(20) as fc.Arbitrary<Piece> },
  {
    weight: 1,
    arbitrary: fc.record({ fill: fc.constant(0x6e), len: fc.integer({ min: NAME_LIMIT - 1, max: NAME_LIMIT + 1 }) }) as fc.Arbitrary<Piece>,
  },
);

type AttrPiece = [Piece, Piece];
const req = (name: string, ...rest: AttrPiece[]): AttrPiece[] => [["request", name], ...rest];

/** One list: a well-formed request, a request with random attributes, or random attributes. */
const anyList: fc.Arbitrary<AttrPiece[]> = fc.oneof(
  cacheType.map((t) => req("policy", ["cache_type", t])),
  fc.tuple(cacheType, cacheId).map(([t, i]) => req("lookup", ["cache_type", t], ["cache_id", i])),
  fc.tuple(cacheType, cacheId, sessionData).map(([t, i, s]) =>
    req("update", ["cache_type", t], ["cache_id", i], ["session", s])),
  fc.tuple(cacheType, cacheId).map(([t, i]) => req("delete", ["cache_type", t], ["cache_id", i])),
  intText.map((n) => req("seed", ["size", n])),
  keyname.map((k) => req("tktkey", ["keyname", k])),
  fc.tuple(
    fc.constantFrom("lookup", "update", "delete", "seed", "policy", "tktkey", "nope", ""),
    fc.array(fc.tuple(anyName, anyValue), { maxLength: 5 }),
  ).map(([r, rest]) => req(r, ...rest)),
  fc.array(fc.tuple(anyName, anyValue), { maxLength: COUNT_LIMIT + 2 }),
);

const listPieces = (lists: AttrPiece[][]): Piece[] =>
  lists.flatMap((l) => [...l.flatMap(([n, v]): Piece[] => [n, "\0", v, "\0"]), "\0"]);

/** How the input is written: cut points (as fractions of the length) and a final half-close. */
const delivery = fc.record({
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
  end: fc.boolean(),
});

// ---------------------------------------------------------------------------
// Running one case

const WELL_FORMED_STATUS = new Set([OK, ERR, FAIL]);

// runCase - send input to a fresh connection and hold every byte received against the model
async function runCase(input: Buffer, how: { cuts: number[]; end: boolean }): Promise<void> {
  const want = model.run(input, how.end);
  const send = want.cut === undefined ? input : input.subarray(0, want.cut);
  const c = await openAnnounced(daemon.socket);
  try {
    const points = [...new Set(how.cuts.map((f) => Math.floor(f * send.length)))].sort((a, b) => a - b);
    let at = 0;
    for (const p of [...points, send.length]) {
      if (p > at) c.sock.write(send.subarray(at, p));
      at = Math.max(at, p);
      await new Promise((r) => setImmediate(r));
    }
    if (how.end) c.sock.end();

    const what = `${want.checks.length} replies${want.closes ? " and a close" : ""} to ${send.length} bytes`;
    await c.until(
      () => c.closed || (!want.closes && attr0ListSplit(c.received).lists.length >= want.checks.length),
      what,
    );
    const { lists, rest } = attr0ListSplit(c.received);
    for (const l of lists) {
      assert.ok(l.length >= 1 && l[0]![0] === "status" && WELL_FORMED_STATUS.has(l[0]![1]), `reply not status first: ${show(l)}`);
    }
    assert.equal(rest.length, 0, `bytes after the last whole reply: ${JSON.stringify(rest.subarray(0, 80).toString("latin1"))}`);
    assert.equal(lists.length, want.checks.length, `reply count: got ${lists.map(show).join(" ")}`);
    lists.forEach((l, i) => {
      const why = want.checks[i]!(l);
      if (why !== undefined) assert.fail(`reply ${i + 1} of ${lists.length}: ${why}`);
    });

    // The daemon still serves a new client; and the fuzzed connection got nothing more meanwhile.
    const probe = await openAnnounced(daemon.socket);
    assert.equal(await probe.exchange("request\0policy\0cache_type\0smtpd\0\0", POLICY_SMTPD), POLICY_SMTPD);
    probe.close();
    if (!want.closes) {
      assert.equal(attr0ListSplit(c.received).lists.length, want.checks.length, "no reply beyond the model");
      assert.equal(c.closed, false, "the connection stays open after whole lists or a partial one");
    }
    assert.equal(daemon.proc.exitCode, null, "daemon running");
    assert.equal(daemon.proc.signalCode, null, "daemon running");
  } finally {
    c.close();
  }
}

const FC_PARAMS = { endOnFailure: true, interruptAfterTimeLimit: 12_000, markInterruptAsFailure: false } as const;

test("token soup and random bytes: every reply well-formed and as the model says, daemon keeps serving", async () => {
  await fc.assert(
    fc.asyncProperty(soupInput, delivery, async (pieces, how) => {
      await runCase(Buffer.concat(pieces.map(pieceBytes)), how);
    }),
    { ...FC_PARAMS, numRuns: 400 },
  );
});

test("sequences of lists (well-formed requests, random attributes, huge and binary values): replies in count and order", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(anyList, { minLength: 1, maxLength: 12 }), delivery, async (lists, how) => {
      await runCase(Buffer.concat(listPieces(lists).map(pieceBytes)), how);
    }),
    { ...FC_PARAMS, numRuns: 400 },
  );
});

test("the daemon logged no fatal error, panic or failed request while fuzzed", () => {
  const bad = daemon.stderr().split("\n").filter((l) => /: (fatal|panic): |request from .* failed/.test(l));
  assert.deepEqual(bad, []);
});
