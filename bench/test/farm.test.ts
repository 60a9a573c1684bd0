/**
 * farm.test.ts - the farm report: the targets decided from the runs
 * (4 hosts x 16 clients on one Redis against Postfix at 1 x 64), the summary
 * rows, and the plots as PNGs. Figures are made up: no daemons here (the
 * load across hosts is bench/test/load.test.ts).
 * See also: bench/farm.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { farmSummaryTable, farmTargets, plotFarm, plotPause, type FarmRun, type PauseRun } from "../farm.js";

/** run - a farm run with the figures the report reads */
function run(impl: string, hosts: number, reqPerSec: number, p99us: number, extra: Partial<FarmRun> = {}): FarmRun {
  return {
    impl, label: impl, hosts, clients: 64, windowSec: 10, reqPerSec, requests: reqPerSec * 10, errors: 0,
    p50us: p99us / 4, p99us, p999us: p99us * 2, maxus: p99us * 3, daemonCpuUsPerReq: 20, storeCpuUsPerReq: 5,
    genCpuCores: 0.5, otherCpuCores: 0.1, loadAvg: 3, lookups: 1000, hits: 900, hitsOther: 600, byKind: {}, perHost: [],
    ...extra,
  } as FarmRun;
}

test("the targets: throughput and p99 against Postfix, errors, hits of other hosts' entries, Cluster within 20 %", () => {
  const good = farmTargets([run("postfix", 1, 10_000, 13_000), run("ours-redis", 4, 25_000, 6_000), run("ours-redis-cluster", 4, 21_000, 7_000)]);
  assert.equal((good.match(/\| yes \|/g) ?? []).length, 5, good);
  const bad = farmTargets([run("postfix", 1, 10_000, 13_000), run("ours-redis", 4, 9_000, 7_000, { errors: 3, hitsOther: 0 }),
    run("ours-redis-cluster", 4, 7_000, 8_000)]);
  assert.equal((bad.match(/\| no +\|/g) ?? []).length, 5, bad);
  assert.equal(farmTargets([run("postfix", 1, 1, 1)]), "", "no Redis run at 4 hosts: nothing to decide");
});

test("the summary has a row per run with the store's CPU and the share of hits written by another host", () => {
  const t = farmSummaryTable([run("ours", 2, 30_000, 2000, { storeCpuUsPerReq: undefined }), run("ours-redis", 2, 40_000, 1500)]);
  const rows = t.split("\n").slice(2);
  assert.equal(rows.length, 2);
  assert.match(rows[0]!, /\| ours +\| 2 +\| 64 +\| 30,000 .*\| - +\| 90\.0% +\| 66\.7% /);
  assert.match(rows[1]!, /5\.0 us/);
});

test("plotFarm and plotPause make PNGs", () => {
  const png = plotFarm([run("a", 1, 100, 100), run("a", 4, 300, 200), run("b", 1, 50, 300)], "t");
  assert.equal(png.subarray(1, 4).toString("latin1"), "PNG");
  const pause: PauseRun = {
    label: "x", hosts: 4, clients: 64, pauseSec: 10, timeoutMs: 50, requests: 1, errors: 0, overTimeout: 0, overTimeout5: 0,
    overTimeout5Outside: 0, maxus: 1, hitBefore: 0.9, hitDuring: 0, recoveryMs: 50, rates: [1, 1, 1], worst: [],
    series: [[-1, 100, 1, 0.9], [0, 10, 50, 0], [10, 100, 1, 0.9]],
  };
  assert.equal(plotPause([pause]).subarray(1, 4).toString("latin1"), "PNG");
});
