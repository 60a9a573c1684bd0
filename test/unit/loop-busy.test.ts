/**
 * loop-busy.test.ts - the event-loop utilisation gauge: its answer from an
 *                     injected source and clock (no timing), the window, and
 *                     the real source of an idle and a saturated loop.
 * See also: src/util/loop-busy.ts, src/cache/backends/lmdb.ts (its user)
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { LOOP_BUSY_WINDOW_MS, LoopBusyGauge } from "../../src/util/loop-busy.js";

describe("LoopBusyGauge", () => {
  it("answers from the last full window: busy at or above the threshold", () => {
    let now = 0;
    const util = { idle: 0, active: 0 };
    const g = new LoopBusyGauge(0.8, () => ({ ...util }), () => now);
    assert.equal(g.busy(), false, "nothing measured yet");
    util.active += 90;
    util.idle += 10;
    now += LOOP_BUSY_WINDOW_MS - 1;
    assert.equal(g.busy(), false, "the window is not full: the last answer stands");
    now += 1;
    assert.equal(g.busy(), true, "90 % busy over the window");
    util.active += 79;
    util.idle += 21;
    now += LOOP_BUSY_WINDOW_MS;
    assert.equal(g.busy(), false, "79 % over the next window");
    util.active += 80;
    util.idle += 20;
    now += LOOP_BUSY_WINDOW_MS;
    assert.equal(g.busy(), true, "exactly the threshold counts as busy");
    now += LOOP_BUSY_WINDOW_MS;
    assert.equal(g.busy(), true, "a window without loop time keeps the answer");
  });

  it("reads the real loop: idle while sleeping, busy while spinning", async () => {
    const g = new LoopBusyGauge(0.8);
    await sleep(LOOP_BUSY_WINDOW_MS * 3);
    g.busy();
    await sleep(LOOP_BUSY_WINDOW_MS * 3);
    assert.equal(g.busy(), false, "a sleeping loop is not busy");
    // spin across several turns without waiting for I/O (setImmediate keeps the poll phase from blocking)
    const end = performance.now() + LOOP_BUSY_WINDOW_MS * 3;
    while (performance.now() < end) await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(g.busy(), true, "a spinning loop is busy");
  });
});
