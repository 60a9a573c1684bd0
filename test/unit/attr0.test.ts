/**
 * attr0.test.ts - the attr0 decoder and encoder: every request split at
 * every byte boundary, bounds, malformed forms, strict scanning.
 * See also: src/protocol/attr0.ts, src/protocol/attr0-scan.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Attr0Decoder, attr0Encode, ATTR0_DEFAULT_LIMITS } from "../../src/protocol/attr0.js";
import type { Attr0Event } from "../../src/protocol/attr0.js";
import { attr0DecodeBase64, attr0ParseInt, attr0ScanStrict } from "../../src/protocol/attr0-scan.js";

const REQUESTS: Buffer[] = [
  Buffer.from("request\0seed\0size\x0032\0\0", "latin1"),
  Buffer.from("request\0policy\0cache_type\0smtpd\0\0", "latin1"),
  Buffer.from("request\0lookup\0cache_type\0smtp\0cache_id\0smtp&[127.0.0.1]:25&x\0\0", "latin1"),
  Buffer.from(`request\0update\0cache_type\0smtpd\0cache_id\0abc\0session\0${Buffer.alloc(300, 7).toString("base64")}\0\0`, "latin1"),
  Buffer.from("request\0delete\0cache_type\0smtpd\0cache_id\0abc\0\0", "latin1"),
  Buffer.from("request\0tktkey\0keyname\0\0\0", "latin1"),
];

function drain(d: Attr0Decoder): Attr0Event[] {
  const out: Attr0Event[] = [];
  for (let e = d.next(); e !== undefined; e = d.next()) out.push(e);
  return out;
}

function asPairs(e: Attr0Event): [string, string][] {
  assert.equal(e.kind, "list");
  return e.kind === "list" ? e.attrs.map((a) => [a.name, a.value.toString("latin1")]) : [];
}

test("every request split at every byte boundary decodes to the same list", () => {
  for (const req of REQUESTS) {
    const whole = new Attr0Decoder();
    whole.push(req);
    const expected = drain(whole).map(asPairs);
    assert.equal(expected.length, 1);
    for (let cut = 0; cut <= req.length; cut++) {
      const d = new Attr0Decoder();
      d.push(req.subarray(0, cut));
      const first = drain(d);
      d.push(req.subarray(cut));
      const events = [...first, ...drain(d)];
      assert.deepEqual(events.map(asPairs), expected, `cut at ${cut}`);
      assert.ok(d.atListBoundary);
    }
  }
});

test("one byte at a time, all requests back to back (pipelined)", () => {
  const all = Buffer.concat(REQUESTS);
  const d = new Attr0Decoder();
  const events: Attr0Event[] = [];
  for (let i = 0; i < all.length; i++) {
    d.push(all.subarray(i, i + 1));
    events.push(...drain(d));
  }
  assert.equal(events.length, REQUESTS.length);
  assert.deepEqual(
    events.map((e) => asPairs(e)[0]),
    ["seed", "policy", "lookup", "update", "delete", "tktkey"].map((r) => ["request", r]),
  );
});

test("random chunkings of pipelined requests (property)", () => {
  const all = Buffer.concat(REQUESTS);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: all.length }), { maxLength: 20 }), (cuts) => {
      const points = [...new Set(cuts)].sort((a, b) => a - b);
      const d = new Attr0Decoder();
      const events: Attr0Event[] = [];
      let at = 0;
      for (const p of [...points, all.length]) {
        d.push(all.subarray(at, p));
        events.push(...drain(d));
        at = p;
      }
      return events.length === REQUESTS.length && events.every((e) => e.kind === "list");
    }),
  );
});

test("master trigger: W NUL, also when split", () => {
  for (const chunks of [["W\0"], ["W", "\0"]]) {
    const d = new Attr0Decoder();
    const events: Attr0Event[] = [];
    for (const c of chunks) {
      d.push(Buffer.from(c, "latin1"));
      events.push(...drain(d));
    }
    assert.deepEqual(events, [{ kind: "trigger", code: 0x57 }]);
  }
});

test("a lone NUL is an empty list", () => {
  const d = new Attr0Decoder();
  d.push(Buffer.from([0]));
  assert.deepEqual(drain(d), [{ kind: "list", attrs: [] }]);
});

test("a name over the bound fails without waiting for its end", () => {
  const d = new Attr0Decoder({ ...ATTR0_DEFAULT_LIMITS, nameLimit: 8 });
  d.push(Buffer.from("request\0lookup\0abcdefghij", "latin1"));
  const ev = drain(d);
  assert.equal(ev.length, 1);
  assert.deepEqual(ev[0], { kind: "error", reason: "attribute name exceeds limit 8", request: "lookup" });
  d.push(Buffer.from("\0\0"));
  assert.deepEqual(drain(d), [], "decoder stays failed");
});

test("a value over the bound fails, also when it arrives in small chunks", () => {
  const d = new Attr0Decoder({ ...ATTR0_DEFAULT_LIMITS, valueLimit: 100 });
  d.push(Buffer.from("request\0update\0cache_type\0smtpd\0cache_id\0x\0session\0", "latin1"));
  let ev: Attr0Event[] = [];
  for (let i = 0; i < 20 && ev.length === 0; i++) {
    d.push(Buffer.alloc(10, 0x41));
    ev = drain(d);
  }
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!.kind, "error");
  assert.match((ev[0] as { reason: string }).reason, /value of attribute session exceeds limit 100/);
});

test("a value of exactly the bound is accepted", () => {
  const d = new Attr0Decoder({ ...ATTR0_DEFAULT_LIMITS, valueLimit: 8 });
  d.push(Buffer.from("request\0abcdefgh\0\0", "latin1"));
  assert.deepEqual(drain(d).map(asPairs), [[["request", "abcdefgh"]]]);
});

test("too many attributes fail", () => {
  const d = new Attr0Decoder({ ...ATTR0_DEFAULT_LIMITS, countLimit: 3 });
  d.push(Buffer.from("request\0x\0a\0b\0c\0d\0e\0f\0\0", "latin1"));
  const ev = drain(d);
  assert.deepEqual(ev, [{ kind: "error", reason: "attribute count exceeds limit 3", request: "x" }]);
});

test("an error before the request name carries no request", () => {
  const d = new Attr0Decoder({ ...ATTR0_DEFAULT_LIMITS, nameLimit: 4 });
  d.push(Buffer.from("requestx\0", "latin1"));
  assert.deepEqual(drain(d), [{ kind: "error", reason: "attribute name exceeds limit 4" }]);
});

test("encoder writes Postfix's forms: unsigned ints, base64 data, list end", () => {
  assert.equal(
    attr0Encode([
      ["status", -1],
      ["session", Buffer.from("hi")],
    ]),
    "status\x004294967295\0session\0aGk=\0\0",
  );
  assert.equal(attr0Encode([["status", -2]]), "status\x004294967294\0\0");
  assert.equal(attr0Encode([["status", 0], ["seed", Buffer.alloc(0)]]), "status\x000\0seed\0\0\0");
  assert.equal(attr0Encode([["protocol", "tlsmgr_protocol"]]), "protocol\0tlsmgr_protocol\0\0");
});

test("integers: both forms of negative numbers, junk refused", () => {
  const p = (s: string) => attr0ParseInt(Buffer.from(s, "latin1"));
  assert.equal(p("0"), 0);
  assert.equal(p("255"), 255);
  assert.equal(p("4294967295"), -1);
  assert.equal(p("4294967294"), -2);
  assert.equal(p("-1"), -1);
  assert.equal(p("+7"), 7);
  for (const bad of ["", "-", "12x", "x12", " 1", "1 ", "99999999999", "0x10", "1.5"]) assert.equal(p(bad), undefined, bad);
});

test("base64: strict alphabet, length and padding", () => {
  const d = (s: string) => attr0DecodeBase64(Buffer.from(s, "latin1"));
  assert.deepEqual(d(""), Buffer.alloc(0));
  assert.deepEqual(d("aGk="), Buffer.from("hi"));
  assert.deepEqual(d("aGVsbG8h"), Buffer.from("hello!"));
  for (const bad of ["aGk", "aG=k", "a*k=", "aGk=aGk=x", "====", "aGk=\n"]) assert.equal(d(bad), undefined, bad);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const b = Buffer.from(bytes);
      return attr0DecodeBase64(Buffer.from(b.toString("base64"), "latin1"))!.equals(b);
    }),
  );
});

test("strict scan: missing, out of order, extra, malformed", () => {
  const list = (s: string) => {
    const dec = new Attr0Decoder();
    dec.push(Buffer.from(s, "latin1"));
    const e = dec.next();
    assert.ok(e && e.kind === "list");
    return e.attrs;
  };
  const spec = [
    ["cache_type", "str"],
    ["cache_id", "str"],
  ] as const;
  const ok = attr0ScanStrict(list("request\0lookup\0cache_type\0smtpd\0cache_id\0id\0\0"), 1, spec, "peer");
  assert.deepEqual(ok, { ok: true, values: ["smtpd", "id"] });
  const swapped = attr0ScanStrict(list("request\0lookup\0cache_id\0id\0cache_type\0smtpd\0\0"), 1, spec, "peer");
  assert.deepEqual(swapped, { ok: false, warning: "unexpected attribute cache_id from peer (expecting: cache_type)" });
  const missing = attr0ScanStrict(list("request\0lookup\0cache_type\0smtpd\0\0"), 1, spec, "peer");
  assert.deepEqual(missing, { ok: false, warning: "missing attribute cache_id in input from peer" });
  const extra = attr0ScanStrict(list("request\0lookup\0cache_type\0smtpd\0cache_id\0id\0x\0y\0\0"), 1, spec, "peer");
  assert.deepEqual(extra, {
    ok: true,
    values: ["smtpd", "id"],
    warning: "unexpected attribute x from peer (expecting: (list terminator))",
  });
  const badInt = attr0ScanStrict(list("request\0seed\0size\x0012x\0\0"), 1, [["size", "int"]], "peer");
  assert.equal(badInt.ok, false);
  assert.match((badInt as { warning: string }).warning, /^malformed numerical data from peer/);
  const badData = attr0ScanStrict(list("request\0tktkey\0keyname\0@@@@\0\0"), 1, [["keyname", "data"]], "peer");
  assert.equal(badData.ok, false);
  assert.match((badData as { warning: string }).warning, /^malformed base64 data from peer/);
});

test("peer text in warnings is made printable and cut", () => {
  const dec = new Attr0Decoder();
  dec.push(Buffer.from(`request\0lookup\0${"\x01".repeat(150)}\0x\0\0`, "latin1"));
  const e = dec.next();
  assert.ok(e && e.kind === "list");
  const r = attr0ScanStrict(e.attrs, 1, [["cache_type", "str"]], "peer");
  assert.equal(r.ok, false);
  assert.equal((r as { warning: string }).warning, `unexpected attribute ${"?".repeat(100)} from peer (expecting: cache_type)`);
});

test("W NUL after a list is no trigger: master's trigger is only the first thing on a connection", () => {
  const d = new Attr0Decoder();
  d.push(Buffer.from("\0W\0x\0\0", "latin1"));
  assert.deepEqual(drain(d).map(asPairs), [[], [["W", "x"]]]);
});
