/**
 * histogram.test.ts - the load generator's latency histogram: bucket
 * bounds, nearest-rank percentiles within half a bucket of the exact ones,
 * merging, and the JSON round trip.
 * See also: bench/histogram.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { exactPercentile, HISTOGRAM_BUCKETS, LatencyHistogram } from "../histogram.js";

const REL = 0.0051; // half a 1 % bucket, plus rounding

function within(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= expected * REL + 1e-9,
    `${what}: ${actual} is not within ${REL * 100}% of ${expected}`);
}

test("exactPercentile is nearest rank", () => {
  const s = [5, 1, 4, 2, 3];
  assert.equal(exactPercentile(s, 50), 3);
  assert.equal(exactPercentile(s, 20), 1);
  assert.equal(exactPercentile(s, 21), 2);
  assert.equal(exactPercentile(s, 100), 5);
  assert.equal(exactPercentile([], 50), 0);
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(exactPercentile(hundred, 99), 99);
  assert.equal(exactPercentile(hundred, 99.9), 100);
});

test("1..10000 us: p50, p99, p99.9 within half a bucket of the exact values", () => {
  const h = new LatencyHistogram();
  const samples: number[] = [];
  for (let v = 1; v <= 10_000; v++) {
    h.record(v);
    samples.push(v);
  }
  assert.equal(h.count, 10_000);
  assert.equal(h.min, 1);
  assert.equal(h.max, 10_000);
  within(h.mean(), 5000.5, "mean");
  for (const p of [50, 90, 99, 99.9]) within(h.percentile(p), exactPercentile(samples, p), `p${p}`);
  assert.equal(h.percentile(100), 10_000);
});

test("percentiles of arbitrary samples stay within half a bucket and inside [min, max]", () => {
  fc.assert(fc.property(
    fc.array(fc.double({ min: 0.5, max: 5e7, noNaN: true }), { minLength: 1, maxLength: 400 }),
    fc.constantFrom(1, 25, 50, 75, 90, 99, 99.9, 100),
    (samples, p) => {
      const h = new LatencyHistogram();
      for (const s of samples) h.record(s);
      const got = h.percentile(p);
      const want = exactPercentile(samples, p);
      assert.ok(got >= h.min && got <= h.max);
      if (want >= 1) within(got, want, `p${p}`);
    },
  ));
});

test("a value below 1 us and a huge one land in the first and last buckets", () => {
  assert.equal(LatencyHistogram.bucketOf(0), 0);
  assert.equal(LatencyHistogram.bucketOf(0.3), 0);
  assert.equal(LatencyHistogram.bucketOf(1), 1);
  assert.equal(LatencyHistogram.bucketOf(1e12), HISTOGRAM_BUCKETS - 1);
  const h = new LatencyHistogram();
  h.record(0.2);
  h.record(1e12);
  assert.ok(h.percentile(50) < 1, "the first bucket answers below 1 us");
  assert.equal(h.percentile(100), 1e12);
});

test("bucket i holds [1.01^(i-1), 1.01^i)", () => {
  for (const i of [1, 2, 100, 1000, 1800]) {
    const lo = Math.pow(1.01, i - 1);
    assert.equal(LatencyHistogram.bucketOf(lo * 1.0001), i);
    assert.equal(LatencyHistogram.bucketOf(lo * 1.0099), i);
  }
});

test("merge equals recording everything in one histogram; JSON round trip keeps it", () => {
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  const all = new LatencyHistogram();
  for (let i = 0; i < 5000; i++) {
    const v = ((i * 7919) % 10007) + 0.5;
    (i % 3 === 0 ? a : b).record(v);
    all.record(v);
  }
  const m = new LatencyHistogram().merge(a).merge(b);
  assert.equal(m.count, all.count);
  assert.equal(m.min, all.min);
  assert.equal(m.max, all.max);
  assert.ok(Math.abs(m.sum - all.sum) < 1e-6);
  assert.deepEqual([...m.counts], [...all.counts]);
  const back = LatencyHistogram.fromJSON(JSON.parse(JSON.stringify(m.toJSON())));
  for (const p of [50, 99, 99.9]) assert.equal(back.percentile(p), m.percentile(p));
  assert.equal(back.count, m.count);
});

test("an empty histogram answers 0 and rejects a bad percentile", () => {
  const h = new LatencyHistogram();
  assert.equal(h.percentile(99), 0);
  assert.equal(h.mean(), 0);
  assert.deepEqual(h.toJSON(), { count: 0, min: 0, max: 0, sum: 0, buckets: [] });
  h.record(10);
  assert.throws(() => h.percentile(0), RangeError);
  assert.throws(() => h.percentile(101), RangeError);
});
