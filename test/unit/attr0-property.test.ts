/**
 * attr0-property.test.ts - properties of the attr0 codec (fast-check): the
 *                          streaming decoder against a whole-buffer reference,
 *                          whatever the chunking; encode then decode gives the
 *                          list back; numbers and base64 as Postfix reads them.
 * Owns: the reference splitter (independent of src/protocol/attr0.ts), the
 *       chunkings (1 byte to 9 KiB, so that both the small-chunk tail and
 *       queued big chunks are met, and several pushes between next() calls),
 *       the bookkeeping invariants (pendingBytes, atListBoundary).
 * Not here: fixed cases and bounds (unit/attr0.test.ts); the daemon over a
 *           socket (robustness/fuzz-socket.test.ts).
 * See also: src/protocol/attr0.ts, src/protocol/attr0-scan.ts,
 *           postfix/src/util/attr_scan0.c
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Attr0Decoder, attr0Encode } from "../../src/protocol/attr0.js";
import type { Attr0Event, Attr0Limits } from "../../src/protocol/attr0.js";
import { attr0DecodeBase64, attr0ParseInt } from "../../src/protocol/attr0-scan.js";
import { modelData, modelInt } from "../helpers/reply-model.js";

/** An event as compared: lists as [name, value(latin1)] pairs. */
type Ev = { kind: "list"; attrs: [string, string][] } | { kind: "trigger" } | { kind: "error"; reason: string; request?: string };

const safe = (s: string) => s.replace(/[^\x20-\x7e]/g, "?").slice(0, 100);

/**
 * reference - the events of INPUT read whole, and the bytes not yet part of
 * an event at the end: names and values end at NUL, a lone NUL ends a list,
 * "W" first on the connection is a trigger, a token longer than its limit
 * (seen as limit+1 bytes without NUL) or one attribute too many is an error.
 */
function reference(input: Buffer, lim: Attr0Limits): { events: Ev[]; pending: number } {
  const events: Ev[] = [];
  let attrs: [string, string][] = [];
  let pos = 0;
  let listStart = 0;
  const error = (reason: string): { events: Ev[]; pending: number } => {
    const first = attrs[0];
    events.push(first && first[0] === "request" ? { kind: "error", reason, request: first[1] } : { kind: "error", reason });
    return { events, pending: 0 };
  };
  for (;;) {
    const ne = input.indexOf(0, pos);
    if (ne < 0) {
      if (input.length - pos > lim.nameLimit) return error(`attribute name exceeds limit ${lim.nameLimit}`);
      return { events, pending: input.length - listStart };
    }
    if (ne - pos > lim.nameLimit) return error(`attribute name exceeds limit ${lim.nameLimit}`);
    const name = input.toString("latin1", pos, ne);
    pos = ne + 1;
    if (name === "") {
      events.push({ kind: "list", attrs });
      attrs = [];
      listStart = pos;
      continue;
    }
    if (!events.some((e) => e.kind === "list") && attrs.length === 0 && name === "W") {
      events.push({ kind: "trigger" });
      listStart = pos;
      continue;
    }
    if (attrs.length >= lim.countLimit) return error(`attribute count exceeds limit ${lim.countLimit}`);
    const ve = input.indexOf(0, pos);
    if (ve < 0) {
      if (input.length - pos > lim.valueLimit) return error(`value of attribute ${safe(name)} exceeds limit ${lim.valueLimit}`);
      return { events, pending: input.length - listStart };
    }
    if (ve - pos > lim.valueLimit) return error(`value of attribute ${safe(name)} exceeds limit ${lim.valueLimit}`);
    attrs.push([name, input.toString("latin1", pos, ve)]);
    pos = ve + 1;
  }
}

const asEv = (e: Attr0Event): Ev =>
  e.kind === "list"
    ? { kind: "list", attrs: e.attrs.map((a) => [a.name, a.value.toString("latin1")]) }
    : e.kind === "trigger"
      ? { kind: "trigger" }
      : e.request === undefined ? { kind: "error", reason: e.reason } : { kind: "error", reason: e.reason, request: e.request };

/** feed - push INPUT in the given chunk sizes, calling next() only after the pushes `drainAfter` marks. */
function feed(input: Buffer, sizes: number[], drainAfter: boolean[], lim: Attr0Limits): { events: Ev[]; d: Attr0Decoder } {
  const d = new Attr0Decoder(lim);
  const events: Ev[] = [];
  const drain = () => {
    for (let e = d.next(); e !== undefined; e = d.next()) events.push(asEv(e));
  };
  let at = 0;
  let i = 0;
  while (at < input.length) {
    const n = Math.min(sizes.length ? sizes[i % sizes.length]! : input.length, input.length - at);
    // Each chunk is a fresh copy, as a socket gives: the decoder must not depend on the caller's buffer.
    d.push(Buffer.from(input.subarray(at, at + n)));
    at += n;
    if (drainAfter.length === 0 || drainAfter[i % drainAfter.length]) drain();
    i++;
  }
  drain();
  return { events, d };
}

/** Input made of the pieces attr0 is made of: NULs, short tokens, "W", "request", runs near the limits. */
const pieces = (lim: Attr0Limits) =>
  fc.array(
    fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom("\0", "\0\0", "W", "request", "lookup", "x", "cache_id", "\xff\n") },
      { weight: 3, arbitrary: fc.string({ maxLength: 12 }) },
      { weight: 1, arbitrary: fc.integer({ min: lim.nameLimit - 1, max: lim.nameLimit + 1 }).map((n) => "n".repeat(n)) },
      { weight: 1, arbitrary: fc.integer({ min: lim.valueLimit - 1, max: lim.valueLimit + 1 }).map((n) => "v".repeat(n)) },
      { weight: 1, arbitrary: fc.integer({ min: 4000, max: 9000 }).map((n) => "b".repeat(n)) },
    ),
    { maxLength: 60 },
  ).map((p) => Buffer.from(p.join(""), "latin1"));

const limitsArb = fc.record({
  nameLimit: fc.integer({ min: 1, max: 12 }),
  valueLimit: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 5000, max: 20000 })),
  countLimit: fc.integer({ min: 1, max: 6 }),
});

const chunking = fc.record({
  sizes: fc.array(fc.oneof(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 100, max: 5000 }), fc.constant(9000)), { maxLength: 8 }),
  drainAfter: fc.array(fc.boolean(), { maxLength: 5 }),
});

test("decoder = whole-buffer reference, for any input, limits and chunking; pendingBytes and atListBoundary agree", () => {
  fc.assert(
    fc.property(
      limitsArb.chain((lim) => fc.tuple(fc.constant(lim), pieces(lim), chunking)),
      ([lim, input, how]) => {
        const want = reference(input, lim);
        const { events, d } = feed(input, how.sizes, how.drainAfter, lim);
        assert.deepEqual(events, want.events);
        assert.equal(d.pendingBytes, want.pending, "pendingBytes");
        // After an error the decoder is spent (the connection closes): no boundary to speak of.
        if (!want.events.some((e) => e.kind === "error")) assert.equal(d.atListBoundary, want.pending === 0, "atListBoundary");
      },
    ),
    { numRuns: 3000 },
  );
});

test("values handed out stay intact while the decoder goes on (no buffer is reused under them)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 300 })), { minLength: 1, maxLength: 5 }),
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 5 }),
      (attrs, sizes) => {
        const clean = attrs.map(([n, v]) => [`a${n.replace(/\0/g, "")}`, v.replace(/\0/g, "")] as [string, string]);
        const one = Buffer.from(attr0Encode(clean), "latin1");
        const input = Buffer.concat(Array.from({ length: 20 }, () => one));
        const d = new Attr0Decoder({ nameLimit: 64, valueLimit: 1000, countLimit: 8 });
        const lists: Attr0Event[] = [];
        let at = 0;
        for (let i = 0; at < input.length; i++) {
          const n = Math.min(sizes[i % sizes.length]!, input.length - at);
          d.push(Buffer.from(input.subarray(at, at + n)));
          at += n;
          for (let e = d.next(); e !== undefined; e = d.next()) lists.push(e);
        }
        assert.equal(lists.length, 20);
        for (const e of lists) assert.deepEqual(asEv(e), { kind: "list", attrs: clean });
      },
    ),
    { numRuns: 500 },
  );
});

test("attr0Encode then decode: strings, unsigned 32-bit integers, base64 data come back", () => {
  const value = fc.oneof(
    fc.string().map((s) => s.replace(/[\0\u0100-\uffff]/g, "")),
    fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }),
    fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.stringMatching(/^[a-z_]{1,10}$/), value), { maxLength: 6 }), (attrs) => {
      const d = new Attr0Decoder({ nameLimit: 16, valueLimit: 1000, countLimit: 8 });
      d.push(Buffer.from("x\0y\0\0", "latin1")); // a list first: a later "W" name is no trigger
      d.next();
      d.push(Buffer.from(attr0Encode(attrs), "latin1"));
      const e = d.next();
      assert.ok(e && e.kind === "list");
      assert.equal(e.attrs.length, attrs.length);
      e.attrs.forEach((a, i) => {
        const [name, v] = attrs[i]!;
        assert.equal(a.name, name);
        if (typeof v === "number") assert.equal(attr0ParseInt(a.value), v | 0);
        else if (typeof v === "string") assert.equal(a.value.toString("latin1"), v);
        else assert.deepEqual(attr0DecodeBase64(a.value), v);
      });
      assert.ok(d.atListBoundary);
    }),
    { numRuns: 1000 },
  );
});

test("numbers and base64 as Postfix reads them: the scanner agrees with an independent model", () => {
  const text = fc.oneof(
    fc.stringMatching(/^[+-]?[0-9]{0,22}$/),
    fc.string({ maxLength: 12 }),
    fc.bigInt({ min: -(2n ** 33n), max: 2n ** 33n }).map(String),
  );
  fc.assert(
    fc.property(text, (t) => {
      const b = Buffer.from(t, "latin1");
      assert.equal(attr0ParseInt(b), modelInt(b), JSON.stringify(t));
    }),
    { numRuns: 3000 },
  );
  const b64 = fc.oneof(
    fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a).toString("base64")),
    fc.stringMatching(/^[A-Za-z0-9+/=]{0,16}$/),
    fc.string({ maxLength: 16 }),
  );
  fc.assert(
    fc.property(b64, (t) => {
      const b = Buffer.from(t, "latin1");
      assert.deepEqual(attr0DecodeBase64(b), modelData(b), JSON.stringify(t));
    }),
    { numRuns: 3000 },
  );
});
