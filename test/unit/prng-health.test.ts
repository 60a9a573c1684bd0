/**
 * prng-health.test.ts - SP 800-90B continuous health tests on source bytes.
 * See also: src/prng/health.ts
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { aptCutoff, rctCutoff, SourceHealth } from "../../src/prng/health.js";

test("cutoffs match SP 800-90B (RCT formula, APT table 2 for W = 512)", () => {
  assert.equal(rctCutoff(1), 21);
  assert.equal(rctCutoff(2), 11);
  assert.equal(rctCutoff(8), 4);
  // SP 800-90B table 2, non-binary (W = 512), alpha = 2^-20.
  assert.equal(aptCutoff(0.5), 410);
  assert.equal(aptCutoff(1), 311);
  assert.equal(aptCutoff(2), 177);
  assert.equal(aptCutoff(4), 62);
  assert.equal(aptCutoff(8), 13);
});

test("an all-zero read fails the repetition count test", () => {
  const h = new SourceHealth();
  assert.deepEqual(h.check(Buffer.alloc(32)), { ok: false, failed: "repetition count" });
  assert.deepEqual(h.check(Buffer.alloc(32)), { ok: false, failed: "repetition count" }, "still stuck, still failing");
});

test("the tests are continuous across reads", () => {
  const h = new SourceHealth(); // RCT cutoff 11
  assert.equal(h.check(Buffer.from([1, 2, 3, 9, 9, 9, 9, 9, 9])).ok, true);
  assert.deepEqual(h.check(Buffer.from([9, 9, 9, 9, 9])), { ok: false, failed: "repetition count" });
  assert.equal(h.check(Buffer.from([4, 5, 6])).ok, true, "a changing source passes again");
});

test("a biased source without long runs fails the adaptive proportion test", () => {
  const h = new SourceHealth(); // APT cutoff 177 of 512
  const biased = Buffer.alloc(512);
  for (let i = 0; i < biased.length; i++) biased[i] = i % 2 === 0 ? 0x41 : randomBytes(1)[0]! | 0x80;
  assert.deepEqual(h.check(biased), { ok: false, failed: "adaptive proportion" });
});

test("operating system randomness passes (1 MiB in source-sized reads)", () => {
  const h = new SourceHealth();
  const data = randomBytes(1 << 20);
  for (let off = 0; off < data.length; off += 255) {
    assert.equal(h.check(data.subarray(off, off + 255)).ok, true, `read at ${off}`);
  }
});

test("a bad min-entropy claim is refused", () => {
  assert.throws(() => new SourceHealth({ minEntropy: 0 }), RangeError);
  assert.throws(() => new SourceHealth({ minEntropy: 9 }), RangeError);
});
