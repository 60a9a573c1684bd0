/**
 * stats-counters.test.ts - the counters' own rules: histogram buckets,
 *                          reply status read from the attr0 text, request
 *                          tallies (now and when a reply settles), ticket key
 *                          counters of the in-memory and file stores under a
 *                          manual clock (made, rotated, found, stale, not
 *                          found), and the helpers of the stats table.
 * See also: src/stats/counters.ts, src/tickets/ticket-keys.ts, src/stats/stats-table.ts
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { describe, it } from "node:test";
import { attr0Encode } from "../../src/protocol/attr0.js";
import {
  Histogram, LATENCY_BUCKETS, REQ_LOOKUP, REQ_SEED, RequestCounters, replyStatusSlot,
} from "../../src/stats/counters.js";
import { hitRate, histogramSnapshot } from "../../src/stats/stats-snapshot.js";
import { bytesText, quantileBound, uptimeText } from "../../src/stats/stats-table.js";
import { fileTicketKeysOpen } from "../../src/tickets/file-keys.js";
import { MemoryTicketKeys } from "../../src/tickets/ticket-keys.js";
import { manualClock } from "../../src/util/clock.js";
import { tempDir } from "../helpers/temp-dir.js";

const tmp = tempDir("tlsmgr-stats-counters-");

describe("Histogram", () => {
  it("puts each value in the first bucket whose bound it does not pass, +Inf last", () => {
    const h = new Histogram([0.001, 0.01, 0.1]);
    for (const v of [0, 0.001, 0.0011, 0.01, 0.05, 0.1, 0.2, 5]) h.observe(v);
    assert.deepEqual([...h.counts], [2, 2, 2, 2]);
    assert.deepEqual(h.cumulative(), [2, 4, 6, 8]);
    assert.equal(h.count, 8);
    assert.ok(Math.abs(h.sum - 5.3621) < 1e-9);
    const snap = histogramSnapshot(h);
    assert.deepEqual(snap.le, [0.001, 0.01, 0.1]);
    assert.equal(quantileBound(snap, 0.5), "<= 10.0 ms");
    assert.equal(quantileBound(snap, 1), "> 100.0 ms");
  });

  it("observeSince takes a performance.now() start, in milliseconds", () => {
    const h = new Histogram(LATENCY_BUCKETS);
    h.observeSince(performance.now() - 2);
    assert.equal(h.count, 1);
    assert.ok(h.sum >= 0.002 && h.sum < 1, String(h.sum));
  });
});

describe("request counters", () => {
  it("read the status from the reply's attr0 text: 0, -1, -2", () => {
    for (const [status, slot] of [[0, 0], [-1, 1], [-2, 2]] as const) {
      assert.equal(replyStatusSlot(attr0Encode([["status", status], ["session", Buffer.from("x")]])), slot);
      assert.equal(replyStatusSlot(attr0Encode([["status", status]])), slot);
    }
  });

  it("tally replies now, and promised ones when they settle, passing them through", async () => {
    const r = new RequestCounters();
    const ok = attr0Encode([["status", 0]]);
    const err = attr0Encode([["status", -1]]);
    assert.equal(r.tally(REQ_SEED, ok), ok);
    assert.equal(r.tally(REQ_SEED, ok), ok);
    const later = r.tally(REQ_LOOKUP, Promise.resolve(err));
    assert.equal(r.get("lookup", "err"), 0, "not before it settles");
    assert.equal(await later, err);
    assert.deepEqual([r.get("seed", "ok"), r.get("seed", "err"), r.get("lookup", "err"), r.get("lookup", "ok")], [2, 0, 1, 0]);
  });

  it("hit rate: hits over every lookup, none before the first", () => {
    assert.equal(hitRate({ hit: 0, miss: 0, expired: 0, error: 0 }), null);
    assert.equal(hitRate({ hit: 3, miss: 1, expired: 0, error: 0 }), 0.75);
    assert.equal(hitRate({ hit: 1, miss: 1, expired: 1, error: 1 }), 0.25);
  });
});

describe("ticket key counters", () => {
  const T = 3600;
  const half = T / 2;

  it("in memory: made, rotated, and look-ups by name found, stale, not found", () => {
    const clock = manualClock();
    const keys = new MemoryTicketKeys({ clock });
    const c = keys.counters;
    assert.equal(keys.inUse(), undefined);
    const k1 = keys.tktkey(undefined, T)!;
    assert.deepEqual(keys.inUse(), { name: k1.name.toString("hex"), expires: k1.tout, shared: false });
    assert.equal(keys.tktkey(undefined, T), k1, "still current: nothing made");
    assert.deepEqual([c.made, c.rotated], [1, 0]);

    assert.equal(keys.tktkey(k1.name, T), k1);
    assert.equal(keys.tktkey(randomBytes(16), T), undefined);
    clock.advance(half); // k1 no longer encrypts: a new one is made, k1 still decrypts
    assert.equal(keys.inUse(), undefined, "no valid current key until one is asked for");
    const k2 = keys.tktkey(undefined, T)!;
    assert.notEqual(k2, k1);
    assert.equal(keys.tktkey(k1.name, T), k1);
    clock.advance(half); // k1 is past its decryption deadline
    assert.equal(keys.tktkey(k1.name, T), undefined);
    assert.deepEqual([c.made, c.rotated, c.found, c.notFound, c.stale], [2, 1, 2, 1, 1]);
  });

  it("in a file: the same counts", async () => {
    const clock = manualClock();
    const keys = await fileTicketKeysOpen(join(tmp, "keys"), "test", { clock });
    const c = keys.counters;
    const k1 = (await keys.tktkey(undefined, T))!;
    assert.deepEqual(keys.inUse(), { name: k1.name.toString("hex"), expires: k1.tout, shared: false });
    clock.advance(half);
    await keys.tktkey(undefined, T);
    assert.ok(await keys.tktkey(k1.name, T));
    clock.advance(half);
    assert.equal(await keys.tktkey(k1.name, T), undefined);
    assert.equal(await keys.tktkey(randomBytes(16), T), undefined);
    assert.deepEqual([c.made, c.rotated, c.found, c.notFound, c.stale], [2, 1, 1, 1, 1]);
    await keys.close();
  });
});

describe("stats table helpers", () => {
  it("format bytes and uptimes", () => {
    assert.deepEqual([bytesText(0), bytesText(1023), bytesText(1536), bytesText(3 * 1024 * 1024)], ["0 B", "1023 B", "1.5 KiB", "3.0 MiB"]);
    assert.deepEqual([uptimeText(5), uptimeText(3661), uptimeText(2 * 86400 + 61)], ["00:00:05", "01:01:01", "2d 00:01:01"]);
  });
});
