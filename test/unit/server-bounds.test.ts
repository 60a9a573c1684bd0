/**
 * server-bounds.test.ts - the bounds the server puts on one client and on
 *                         all of them, each on its own: warnings per client,
 *                         work per event-loop turn, unfinished request bytes.
 * Owns: clientWarnings (burst, interval, the "N more" summary, with a test
 *       clock), TurnBudget (units per turn, the slice, first-come order),
 *       InputBudget (the total, who is dropped, who is not).
 * Not here: the same bounds against the real daemon
 *           (robustness/hostile-clients.test.ts, accept-under-load.test.ts).
 * See also: src/server/client-warnings.ts, src/server/turn-budget.ts,
 *           src/server/input-budget.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CLIENT_WARN_BURST, CLIENT_WARN_INTERVAL_MS, clientWarnings } from "../../src/server/client-warnings.js";
import { TurnBudget, turnCost, TURN_UNIT_BYTES } from "../../src/server/turn-budget.js";
import { InputBudget, inputBudgetBytes, INPUT_BUDGET_MIN_BYTES } from "../../src/server/input-budget.js";
import type { InputHolder } from "../../src/server/input-budget.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";

const lines = captureMsgsEach();

test("client warnings: a burst, then counted; one line per interval with the count; the rest when the client leaves", () => {
  let t = 1_000_000;
  const w = clientWarnings("sock client #7", () => t);
  for (let i = 0; i < 100; i++) w.warn(`bad ${i}`);
  assert.deepEqual(lines, Array.from({ length: CLIENT_WARN_BURST }, (_, i) => `warning: bad ${i}`));
  t += CLIENT_WARN_INTERVAL_MS;
  w.warn("bad 100");
  assert.deepEqual(lines.slice(CLIENT_WARN_BURST), [
    `warning: sock client #7: ${100 - CLIENT_WARN_BURST} more warnings not logged`,
    "warning: bad 100",
  ]);
  w.warn("bad 101");
  w.close();
  assert.equal(lines.at(-1), "warning: sock client #7: 1 more warning not logged");
  w.close();
  assert.equal(lines.filter((l) => l.includes("more warning")).length, 2, "nothing more to tell");
});

test("client warnings: a well-behaved client's few warnings are all logged, no summary", () => {
  const w = clientWarnings("c");
  w.warn("one");
  w.warn("two");
  w.close();
  assert.deepEqual(lines, ["warning: one", "warning: two"]);
});

test("turn budget: the units of a turn, then the waiting in arrival order, a later turn starting afresh", async () => {
  const b = new TurnBudget(10, 4);
  assert.equal(turnCost(0), 1);
  assert.equal(turnCost(TURN_UNIT_BYTES * 3 + 5), 4);
  b.spend(6);
  assert.equal(b.left, 4);
  b.spend(5);
  assert.equal(b.left, 0, "spent");
  const order: string[] = [];
  b.later(() => order.push("a"));
  b.later(() => {
    order.push("b");
    b.spend(10); // takes the whole next turn
  });
  b.later(() => order.push("c"));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ["a", "b"], "c waits: b used the turn");
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ["a", "b", "c"], "c keeps its place and runs in the next turn");
  assert.equal(b.left, 10);
});

const holder = (dropped: string[], name: string): InputHolder => ({
  bytes: 0,
  partial: false,
  drop: (bytes) => dropped.push(`${name}:${bytes}`),
});

test("input budget: past the total, the largest unfinished request goes; whole requests waiting are never dropped", () => {
  assert.equal(inputBudgetBytes({ nameLimit: 256, valueLimit: 1 << 20, countLimit: 16 }), INPUT_BUDGET_MIN_BYTES);
  assert.equal(inputBudgetBytes({ nameLimit: 256, valueLimit: 8 << 20, countLimit: 16 }), 2 * (16 * (256 + (8 << 20) + 2) + 1));
  const dropped: string[] = [];
  const ib = new InputBudget(100);
  const a = holder(dropped, "a");
  const b = holder(dropped, "b");
  const c = holder(dropped, "c");
  ib.update(a, 40, true);
  ib.update(b, 50, false); // a backlog of whole requests
  assert.deepEqual(dropped, []);
  ib.update(c, 30, true);
  assert.deepEqual(dropped, ["a:40"], "the largest unfinished one");
  assert.equal(ib.total, 80);
  ib.update(c, 200, false);
  assert.deepEqual(dropped, ["a:40"], "only whole requests: nobody is dropped (their connections stop reading)");
  assert.ok(ib.over);
  ib.remove(c);
  ib.remove(b);
  assert.equal(ib.total, 0);
});
