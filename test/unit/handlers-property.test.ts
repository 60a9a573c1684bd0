/**
 * handlers-property.test.ts - properties of request handling (fast-check):
 *                             any sequence of attribute lists, well-formed or
 *                             not, gets the replies the independent model
 *                             says, and no warning carries raw client bytes.
 * Owns: in-process runs of server/handlers.ts over real session caches
 *       (cache/scache.ts on memory backends) and real ticket keys, checked
 *       by test/helpers/reply-model.ts; the text of every warning.
 * Not here: framing and the socket (unit/attr0-property.test.ts,
 *           robustness/fuzz-socket.test.ts); fixed cases
 *           (integration/daemon-replies.test.ts).
 * See also: src/server/handlers.ts, src/protocol/attr0-scan.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { handleRequest } from "../../src/server/handlers.js";
import type { TlsmgrState } from "../../src/server/handlers.js";
import type { Attr0Attr } from "../../src/protocol/attr0.js";
import { SessionCache } from "../../src/cache/scache.js";
import { MemoryBackend } from "../../src/cache/backends/memory.js";
import { MemoryTicketKeys } from "../../src/tickets/ticket-keys.js";
import { attr0ListSplit } from "../helpers/raw-conn.js";
import { ReplyModel, show } from "../helpers/reply-model.js";

/** A fresh daemon state: smtpd and smtp caches on, lmtp off, every timeout 3600 s. */
function freshState(): TlsmgrState {
  const caches = {
    smtpd: new SessionCache({ label: "smtpd", backend: new MemoryBackend("memory", "smtpd"), timeout: 3600 }),
    smtp: new SessionCache({ label: "smtp", backend: new MemoryBackend("memory", "smtp"), timeout: 3600 }),
  };
  return {
    caches: { get: (type) => (type === "lmtp" ? undefined : caches[type]), timeout: () => 3600 },
    tickets: new MemoryTicketKeys(),
    prng: { generate: (n) => randomBytes(n) },
  };
}

const freshModel = () =>
  new ReplyModel({
    nameLimit: 256,
    valueLimit: 1 << 20,
    countLimit: 16,
    policy: { smtpd: ["1", "3600"], smtp: ["1", "3600"], lmtp: ["0", "3600"] },
    enabled: ["smtpd", "smtp"],
  });

const bytes = (s: string) => Buffer.from(s, "latin1");
const nulFree = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a.map((b) => (b === 0 ? 0x20 : b))));

const cacheType = fc.constantFrom("smtpd", "smtp", "lmtp", "pop3", "", "SMTPD").map(bytes);
const cacheId = fc.oneof(fc.constantFrom("a", "b", "smtp&[127.0.0.1]:25&x", "").map(bytes), nulFree(30));
const session = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((a) => bytes(Buffer.from(a).toString("base64"))),
  fc.constantFrom("", "!!!!", "AAA", "AA=A", "====").map(bytes),
);
const intText = fc.oneof(
  fc.integer({ min: -300, max: 300 }).map(String),
  fc.constantFrom("4294967295", "4294967296", "+32", "032", "12x", "", " 32", "99999999999999999999"),
).map(bytes);
const keyname = fc.oneof(
  fc.constantFrom(0, 16, 16, 5).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })).map((a) => bytes(Buffer.from(a).toString("base64"))),
  fc.constantFrom("", "!!!!").map(bytes),
);
const anyName = fc.oneof(
  fc.constantFrom("request", "cache_type", "cache_id", "session", "size", "keyname", "x").map(bytes),
  nulFree(12),
);
const anyValue = fc.oneof(cacheType, cacheId, session, intText, keyname, nulFree(40));

type Pair = [Buffer, Buffer];
const req = (name: string, ...rest: Pair[]): Pair[] => [[bytes("request"), bytes(name)], ...rest];
const A = (n: string, v: Buffer): Pair => [bytes(n), v];

/** One list: a well-formed request, a request with odd attributes, or odd attributes alone. */
const anyList: fc.Arbitrary<Pair[]> = fc.oneof(
  cacheType.map((t) => req("policy", A("cache_type", t))),
  fc.tuple(cacheType, cacheId).map(([t, i]) => req("lookup", A("cache_type", t), A("cache_id", i))),
  fc.tuple(cacheType, cacheId, session).map(([t, i, s]) => req("update", A("cache_type", t), A("cache_id", i), A("session", s))),
  fc.tuple(cacheType, cacheId).map(([t, i]) => req("delete", A("cache_type", t), A("cache_id", i))),
  intText.map((n) => req("seed", A("size", n))),
  keyname.map((k) => req("tktkey", A("keyname", k))),
  fc.tuple(fc.constantFrom("lookup", "update", "delete", "seed", "policy", "tktkey", "nope", ""),
    fc.array(fc.tuple(anyName, anyValue), { maxLength: 5 })).map(([r, rest]) => req(r, ...rest)),
  fc.array(fc.tuple(anyName, anyValue), { maxLength: 6 }),
);

test("any sequence of lists: each reply is one list, as the model says, and warnings hold no raw client bytes", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(anyList, { minLength: 1, maxLength: 30 }), async (lists) => {
      const state = freshState();
      const model = freshModel();
      const warnings: string[] = [];
      for (const list of lists) {
        const attrs: Attr0Attr[] = list.map(([n, v]) => ({ name: n.toString("latin1"), value: v }));
        const check = model.serve(list.map(([n, v]) => [n.toString("latin1"), v]));
        const reply = await handleRequest(state, attrs, "test client #1", (w) => warnings.push(w));
        const { lists: got, rest } = attr0ListSplit(Buffer.from(reply, "latin1"));
        assert.equal(rest.length, 0, "the reply is whole lists only");
        assert.equal(got.length, 1, `one reply list, got ${got.map(show).join(" ")}`);
        const why = check(got[0]!);
        if (why !== undefined) assert.fail(`${show(list.map(([n, v]) => [n.toString("latin1"), v.toString("latin1")]))}: ${why}`);
      }
      for (const w of warnings) assert.doesNotMatch(w, /[^\x20-\x7e]/, `warning with raw bytes: ${JSON.stringify(w)}`);
      await state.tickets.close();
    }),
    { numRuns: 1500 },
  );
});
