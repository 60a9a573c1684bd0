/**
 * prng-schedule.test.ts - Postfix's randomised schedule: period * r / 255.
 * See also: src/prng/schedule.ts
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { RandomSchedule, SCHEDULE_MAX_PERIOD, scheduleDelay, type Timers } from "../../src/prng/schedule.js";

test("delay is floor(period * r / 255)", () => {
  assert.equal(scheduleDelay(3600, 0), 0);
  assert.equal(scheduleDelay(3600, 1), 14);
  assert.equal(scheduleDelay(3600, 128), 1807);
  assert.equal(scheduleDelay(3600, 255), 3600);
  assert.equal(scheduleDelay(100, 254), 99);
});

test("the period is capped at INT_MAX / 255 as in Postfix", () => {
  assert.equal(SCHEDULE_MAX_PERIOD, 8421504);
  assert.equal(scheduleDelay(10 ** 9, 255), SCHEDULE_MAX_PERIOD);
});

/** fakeTimers - records timers; the test fires them */
function fakeTimers() {
  const pending = new Map<number, { fn: () => void; ms: number }>();
  let next = 1;
  const timers: Timers = {
    setTimeout(fn, ms) {
      const id = next++;
      pending.set(id, { fn, ms });
      return id;
    },
    clearTimeout(h) {
      pending.delete(h as number);
    },
  };
  return { timers, pending };
}

test("each run draws a fresh random byte for the next delay", async () => {
  const { timers, pending } = fakeTimers();
  const bytes = [51, 255, 0];
  let runs = 0;
  const delays: number[] = [];
  const s = new RandomSchedule(
    3600,
    async () => {
      runs++;
    },
    { timers, randomByte: () => bytes.shift()!, onScheduled: (d) => delays.push(d) },
  );
  s.start();
  assert.equal(pending.size, 1);
  assert.equal([...pending.values()][0]!.ms, 720_000);
  for (let i = 0; i < 2; i++) {
    const [id, t] = [...pending.entries()][0]!;
    pending.delete(id);
    t.fn();
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(runs, 2);
  assert.deepEqual(delays, [720, 3600, 0]);
  await s.stop();
  assert.equal(pending.size, 0, "stop cancels the pending timer");
});

test("a failing task does not stop the schedule", async () => {
  const { timers, pending } = fakeTimers();
  const s = new RandomSchedule(
    10,
    async () => {
      throw new Error("boom");
    },
    { timers, randomByte: () => 255 },
  );
  s.start();
  const [id, t] = [...pending.entries()][0]!;
  pending.delete(id);
  t.fn();
  await new Promise((r) => setImmediate(r));
  assert.equal(pending.size, 1);
  await s.stop();
});
