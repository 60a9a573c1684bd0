/**
 * loop-busy.test.ts - the saturation gauge: its answer from an injected CPU
 *                     source and clock (no timing), the window, and the real
 *                     process sleeping and spinning.
 * See also: src/util/loop-busy.ts, src/cache/backends/lmdb.ts (its user)
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { LOOP_BUSY_WINDOW_MS, LoopBusyGauge } from "../../src/util/loop-busy.js";

describe("LoopBusyGauge", () => {
  it("answers from the CPU share of the last full window: busy at or above the threshold", () => {
    let now = 0;
    let cpuUs = 0;
    const g = new LoopBusyGauge(0.9, () => cpuUs, () => now);
    assert.equal(g.busy(), false, "nothing measured yet");
    cpuUs += 0.95 * LOOP_BUSY_WINDOW_MS * 1000;
    now += LOOP_BUSY_WINDOW_MS - 1;
    assert.equal(g.busy(), false, "the window is not full: the last answer stands");
    now += 1;
    assert.equal(g.busy(), true, "95 % of a CPU over the window");
    cpuUs += 0.6 * LOOP_BUSY_WINDOW_MS * 1000;
    now += LOOP_BUSY_WINDOW_MS;
    assert.equal(g.busy(), false, "60 % over the next window (a process waiting for its clients)");
    cpuUs += 0.9 * 2 * LOOP_BUSY_WINDOW_MS * 1000;
    now += 2 * LOOP_BUSY_WINDOW_MS;
    assert.equal(g.busy(), true, "exactly the threshold, over a longer window, counts as busy");
    now += LOOP_BUSY_WINDOW_MS;
    assert.equal(g.busy(), false, "no CPU used: not busy, whatever the wall clock says");
  });

  it("reads the real process: idle while sleeping, busy while spinning", async () => {
    const g = new LoopBusyGauge(0.5);
    await sleep(LOOP_BUSY_WINDOW_MS * 3);
    g.busy();
    await sleep(LOOP_BUSY_WINDOW_MS * 3);
    assert.equal(g.busy(), false, "a sleeping process is not busy");
    // spin until the process has used a window's worth of CPU (so a busy machine only makes this slower)
    const start = process.cpuUsage();
    for (;;) {
      const u = process.cpuUsage(start);
      if (u.user + u.system >= LOOP_BUSY_WINDOW_MS * 3 * 1000) break;
    }
    assert.equal(g.busy(), true, "a spinning process is busy");
  });
});
