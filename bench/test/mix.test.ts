/**
 * mix.test.ts - the request mix: parsing, proportions of the picker,
 * and the seeded PRNG (repeatable, uniform enough).
 * See also: bench/mix.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_MIX, formatMix, MixPicker, parseMix, REQUEST_KINDS, Rng, type RequestKind } from "../mix.js";

test("parseMix reads kind=weight lists and formatMix writes them back", () => {
  assert.deepEqual(parseMix("lookup=60,update=25,tktkey=10,seed=5"), DEFAULT_MIX);
  assert.deepEqual(parseMix(" lookup = 1 , delete=0.5,"), { lookup: 1, delete: 0.5 });
  assert.equal(formatMix(DEFAULT_MIX), "lookup=60,update=25,tktkey=10,seed=5");
  assert.equal(formatMix({ policy: 1, lookup: 0 }), "policy=1");
});

test("parseMix refuses unknown kinds, bad weights, repeats and an all-zero mix", () => {
  assert.throws(() => parseMix("lookup"), /expected kind=weight/);
  assert.throws(() => parseMix("fetch=3"), /unknown request kind/);
  assert.throws(() => parseMix("lookup=-1"), /weight must be a number >= 0/);
  assert.throws(() => parseMix("lookup=x"), /weight must be a number/);
  assert.throws(() => parseMix("lookup="), /weight must be a number/);
  assert.throws(() => parseMix("lookup=1,lookup=2"), /given twice/);
  assert.throws(() => parseMix("lookup=0,seed=0"), /add up to 0/);
  assert.throws(() => parseMix(""), /add up to 0/);
});

test("the picker maps [0,1) onto kinds in proportion to the weights", () => {
  const p = new MixPicker(DEFAULT_MIX);
  assert.deepEqual(p.kinds, ["lookup", "update", "tktkey", "seed"]);
  assert.equal(p.pick(0), "lookup");
  assert.equal(p.pick(0.5999), "lookup");
  assert.equal(p.pick(0.6), "update");
  assert.equal(p.pick(0.8499), "update");
  assert.equal(p.pick(0.85), "tktkey");
  assert.equal(p.pick(0.95), "seed");
  assert.equal(p.pick(0.999999), "seed");
  // a grid over [0,1) gives the exact shares
  const counts: Partial<Record<RequestKind, number>> = {};
  const n = 100_000;
  for (let i = 0; i < n; i++) {
    const k = p.pick(i / n);
    counts[k] = (counts[k] ?? 0) + 1;
  }
  assert.deepEqual(counts, { lookup: 60_000, update: 25_000, tktkey: 10_000, seed: 5_000 });
});

test("a kind of weight 0 is never picked; unnormalised weights work", () => {
  const p = new MixPicker({ lookup: 3, update: 0, seed: 1 });
  assert.deepEqual(p.kinds, ["lookup", "seed"]);
  assert.equal(p.pick(0.74), "lookup");
  assert.equal(p.pick(0.76), "seed");
  assert.throws(() => new MixPicker({}), /no request kind/);
});

test("with the PRNG, 200,000 picks of the default mix come within 1 point of each share", () => {
  const p = new MixPicker(DEFAULT_MIX);
  const rng = new Rng(42);
  const counts = new Map<RequestKind, number>();
  const n = 200_000;
  for (let i = 0; i < n; i++) {
    const k = p.pick(rng.next());
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  for (const k of REQUEST_KINDS) {
    const want = (DEFAULT_MIX[k] ?? 0) / 100;
    const got = (counts.get(k) ?? 0) / n;
    assert.ok(Math.abs(got - want) < 0.01, `${k}: ${got} vs ${want}`);
  }
});

test("Rng: same seed same sequence, other seed other sequence, values in range", () => {
  const a = new Rng(7);
  const b = new Rng(7);
  const c = new Rng(8);
  const sa = Array.from({ length: 50 }, () => a.u32());
  const sb = Array.from({ length: 50 }, () => b.u32());
  const sc = Array.from({ length: 50 }, () => c.u32());
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, sc);
  const r = new Rng(1);
  const buckets = new Array(10).fill(0);
  for (let i = 0; i < 100_000; i++) {
    const u = r.next();
    assert.ok(u >= 0 && u < 1);
    buckets[Math.floor(u * 10)]++;
    const k = r.int(7);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 7);
  }
  for (const n of buckets) assert.ok(n > 9_500 && n < 10_500, `bucket count ${n}`);
});
