/**
 * farm.ts - the farm benchmark (`npm run bench -- --hosts 1,2,4 ...`): N
 *           daemons, each its own configuration as N MX hosts, sharing one
 *           store (ours-redis: a redis-server; ours-redis-cluster: a
 *           three-node Redis Cluster; ours-valkey...) or each keeping its own
 *           cache (ours: LMDB per host; postfix: one Postfix instance per
 *           host), the load spread over them; and the degradation run
 *           (--pause-store S: the store stopped under load for S seconds).
 * Owns: the order of a farm run (per host count, per implementation: store,
 *       hosts, pre-fill spread over the hosts, the load runs, teardown), the
 *       per-host and total tables, the share of lookups that hit entries
 *       another host wrote, the store's CPU per request, the degradation
 *       figures (answers later than the table's timeout, time until hits
 *       come back), the farm plot.
 * Not here: the load (bench/load.ts), the daemons (bench/targets.ts), the
 *           store (bench/redis-store.ts), the plot drawing (bench/png-chart.ts).
 * See also: docs/benchmarks.md ("Farm"), bench/run.ts
 *
 * --clients are the TOTAL client count, spread round-robin over the hosts
 * (64 clients on 4 hosts: 16 each). Each host pre-fills its share of the key
 * space with sessions tagged by its index (workload.ts); lookups draw from the
 * whole key space, so on a shared store most hits are of entries another host
 * wrote, and with a cache per host most lookups of other hosts' ids miss.
 * Every run is bounded in time; the store listens on 127.0.0.1 only.
 */

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { keygen } from "../src/tools/keygen.js";
import { LatencyHistogram } from "./histogram.js";
import { MONO_BASE_US, prefill, runLoad, type LoadHost, type LoadResult } from "./load.js";
import { REQUEST_KINDS } from "./mix.js";
import type { BenchOptions } from "./options.js";
import { chart, type Series } from "./png-chart.js";
import { fmtInt, fmtRatio, fmtUs, table } from "./report.js";
import { startRedisStore, type RedisStore } from "./redis-store.js";
import { traceTable } from "./trace-summary.js";
import { implStore, startTarget, type BenchTarget, type ImplName } from "./targets.js";
import { makeKeyspace, makeSessionPool, type Keyspace, type SessionPool } from "./workload.js";

// log - progress on stderr
function log(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

/** loadAverage - the 1-minute load average now (/proc/loadavg) */
export function loadAverage(): number {
  try {
    return Number(readFileSync("/proc/loadavg", "latin1").split(" ")[0]);
  } catch {
    return 0;
  }
}

/** The figures of one host in one farm run. */
export interface FarmHostSummary {
  host: number;
  clients: number;
  reqPerSec: number;
  requests: number;
  errors: number;
  p50us: number;
  p99us: number;
  p999us: number;
  daemonCpuUsPerReq: number | undefined;
  lookups: number;
  hits: number;
  hitsOther: number;
  byKind: Record<string, { reqPerSec: number; p50us: number; p99us: number; p999us: number; ok: number; miss: number; errors: number }>;
}

/** The figures of one farm run: an implementation at a host count and a total client count. */
export interface FarmRun {
  impl: ImplName;
  label: string;
  hosts: number;
  clients: number;
  windowSec: number;
  reqPerSec: number;
  requests: number;
  errors: number;
  p50us: number;
  p99us: number;
  p999us: number;
  maxus: number;
  /** every daemon's CPU over the window / requests */
  daemonCpuUsPerReq: number | undefined;
  /** the store's CPU over the window / requests */
  storeCpuUsPerReq: number | undefined;
  genCpuCores: number;
  otherCpuCores: number;
  loadAvg: number;
  lookups: number;
  hits: number;
  hitsOther: number;
  byKind: FarmHostSummary["byKind"];
  perHost: FarmHostSummary[];
  /** with repetitions (farmMedians): every repetition's req/s */
  repeats?: number[];
}

/** kindFigures - a kind's stats as reported */
function kindFigures(s: { ok: number; miss: number; errors: number; hist: LatencyHistogram }, windowSec: number) {
  const n = s.ok + s.miss + s.errors;
  return { reqPerSec: n / windowSec, p50us: s.hist.percentile(50), p99us: s.hist.percentile(99), p999us: s.hist.percentile(99.9),
    ok: s.ok, miss: s.miss, errors: s.errors };
}

/** summarizeFarm - a farm LoadResult as the figures reported */
export function summarizeFarm(impl: ImplName, label: string, hosts: number, r: LoadResult, loadAvg: number): FarmRun {
  const perHost: FarmHostSummary[] = r.perHost.map((h, i) => {
    const byKind: FarmHostSummary["byKind"] = {};
    for (const k of REQUEST_KINDS) {
      const s = h.byKind[k];
      if (s) byKind[k] = kindFigures(s, r.windowSec);
    }
    const l = h.byKind.lookup;
    return {
      host: i, clients: Math.floor(r.clients / hosts) + (i < r.clients % hosts ? 1 : 0),
      reqPerSec: h.requests / r.windowSec, requests: h.requests, errors: h.errors,
      p50us: h.all.percentile(50), p99us: h.all.percentile(99), p999us: h.all.percentile(99.9),
      daemonCpuUsPerReq: h.daemonCpuSec === undefined ? undefined : (h.daemonCpuSec * 1e6) / Math.max(1, h.requests),
      lookups: l ? l.ok + l.miss + l.errors : 0, hits: l?.ok ?? 0, hitsOther: h.hitsOther, byKind,
    };
  });
  const byKind: FarmHostSummary["byKind"] = {};
  for (const k of REQUEST_KINDS) {
    const s = r.byKind[k];
    if (s) byKind[k] = kindFigures(s, r.windowSec);
  }
  const n = Math.max(1, r.requests);
  const used = (r.daemonCpuSec ?? 0) + r.genCpuSec + (r.storeCpuSec ?? 0);
  return {
    impl, label, hosts, clients: r.clients, windowSec: r.windowSec, reqPerSec: r.requests / r.windowSec,
    requests: r.requests, errors: r.errors, p50us: r.all.percentile(50), p99us: r.all.percentile(99),
    p999us: r.all.percentile(99.9), maxus: r.all.max,
    daemonCpuUsPerReq: r.daemonCpuSec === undefined ? undefined : (r.daemonCpuSec * 1e6) / n,
    storeCpuUsPerReq: r.storeCpuSec === undefined ? undefined : (r.storeCpuSec * 1e6) / n,
    genCpuCores: r.genCpuSec / r.windowSec,
    otherCpuCores: Math.max(0, (r.machineBusySec - used) / r.windowSec),
    loadAvg,
    lookups: perHost.reduce((a, h) => a + h.lookups, 0),
    hits: perHost.reduce((a, h) => a + h.hits, 0),
    hitsOther: perHost.reduce((a, h) => a + h.hitsOther, 0),
    byKind, perHost,
  };
}

const pct = (a: number, b: number): string => (b > 0 ? `${((a / b) * 100).toFixed(1)}%` : "-");
const us1 = (v: number | undefined): string => (v === undefined ? "-" : `${v.toFixed(1)} us`);

/** farmRunTables - one farm run: per host and kind, the hosts, and the totals */
export function farmRunTables(f: FarmRun): string {
  const kinds = Object.keys(f.byKind);
  const rows: string[][] = [];
  for (const h of f.perHost) {
    for (const k of kinds) {
      const b = h.byKind[k];
      if (b) rows.push([`host ${h.host + 1}`, k, fmtInt(b.reqPerSec), fmtUs(b.p50us), fmtUs(b.p99us), fmtUs(b.p999us), fmtInt(b.ok), fmtInt(b.miss), fmtInt(b.errors)]);
    }
  }
  for (const k of kinds) {
    const b = f.byKind[k]!;
    rows.push(["all hosts", k, fmtInt(b.reqPerSec), fmtUs(b.p50us), fmtUs(b.p99us), fmtUs(b.p999us), fmtInt(b.ok), fmtInt(b.miss), fmtInt(b.errors)]);
  }
  const kindT = table(["host", "request", "req/s", "p50", "p99", "p99.9", "status 0", "status -1", "errors"], rows);
  const hostT = table(["host", "clients", "req/s", "p50", "p99", "p99.9", "errors", "daemon CPU/req", "lookup hits", "hits written by another host"], [
    ...f.perHost.map((h) => [`host ${h.host + 1}`, String(h.clients), fmtInt(h.reqPerSec), fmtUs(h.p50us), fmtUs(h.p99us), fmtUs(h.p999us),
      fmtInt(h.errors), us1(h.daemonCpuUsPerReq), pct(h.hits, h.lookups), pct(h.hitsOther, h.hits)]),
    ["total", String(f.clients), fmtInt(f.reqPerSec), fmtUs(f.p50us), fmtUs(f.p99us), fmtUs(f.p999us), fmtInt(f.errors),
      us1(f.daemonCpuUsPerReq), pct(f.hits, f.lookups), pct(f.hitsOther, f.hits)],
  ]);
  return `${kindT}\n\n${hostT}\n\nstore CPU ${us1(f.storeCpuUsPerReq)}/req; generator ${(f.genCpuCores * 100).toFixed(0)}% of a core; `
    + `other processes ${(f.otherCpuCores * 100).toFixed(0)}% of a core; load average ${f.loadAvg.toFixed(2)}; max ${fmtUs(f.maxus)}\n`;
}

/** farmSummaryTable - every farm run, one row each */
export function farmSummaryTable(runs: FarmRun[]): string {
  return table(["implementation", "hosts", "clients", "req/s", "p50", "p99", "p99.9", "errors", "daemon CPU/req", "store CPU/req",
    "lookup hits", "hits by another host", "other CPU", "load avg"], runs.map((f) => [
    f.label, String(f.hosts), String(f.clients),
    fmtInt(f.reqPerSec) + (f.repeats && f.repeats.length > 1 ? ` (${f.repeats.map(fmtInt).join(", ")})` : ""),
    fmtUs(f.p50us), fmtUs(f.p99us), fmtUs(f.p999us), fmtInt(f.errors),
    us1(f.daemonCpuUsPerReq), us1(f.storeCpuUsPerReq), pct(f.hits, f.lookups), pct(f.hitsOther, f.hits),
    `${(f.otherCpuCores * 100).toFixed(0)}%`, f.loadAvg.toFixed(2),
  ]));
}

/** farmTargets - the issue's farm targets, from the runs of one farm invocation (4 hosts x 16 clients against Postfix at 1 x 64) */
export function farmTargets(runs: FarmRun[]): string {
  const pf = runs.find((f) => f.impl.startsWith("postfix") && f.hosts === 1 && f.clients === 64);
  const redis = runs.find((f) => f.impl === "ours-redis" && f.hosts === 4 && f.clients === 64);
  const cluster = runs.find((f) => f.impl === "ours-redis-cluster" && f.hosts === 4 && f.clients === 64);
  if (!redis) return "";
  const rows: string[][] = [];
  if (pf) {
    rows.push(["total req/s >= Postfix's (1 host, 64 clients)", `${fmtInt(redis.reqPerSec)} vs ${fmtInt(pf.reqPerSec)} (${fmtRatio(redis.reqPerSec, pf.reqPerSec)})`,
      redis.reqPerSec >= pf.reqPerSec ? "yes" : "no"]);
    rows.push(["p99 <= 0.5x Postfix's", `${fmtUs(redis.p99us)} vs ${fmtUs(pf.p99us)} (${fmtRatio(redis.p99us, pf.p99us)})`,
      redis.p99us <= pf.p99us / 2 ? "yes" : "no"]);
  }
  rows.push(["0 errors", fmtInt(redis.errors), redis.errors === 0 ? "yes" : "no"]);
  rows.push(["lookups hit entries another host wrote", pct(redis.hitsOther, redis.hits) + " of the hits", redis.hitsOther > 0 ? "yes" : "no"]);
  if (cluster) {
    rows.push(["Redis Cluster within 20 % of one Redis (req/s)", `${fmtInt(cluster.reqPerSec)} vs ${fmtInt(redis.reqPerSec)} (${fmtRatio(cluster.reqPerSec, redis.reqPerSec)})`,
      cluster.reqPerSec >= 0.8 * redis.reqPerSec ? "yes" : "no"]);
  }
  return table(["target (4 hosts x 16 clients on one redis-server)", "measured", "met"], rows);
}

/** plotFarm - total req/s and p99 against host count, a line per implementation (at one client count), as PNG */
export function plotFarm(runs: FarmRun[], subtitle: string): Buffer {
  const hostCounts = [...new Set(runs.map((r) => r.hosts))].sort((a, b) => a - b);
  const labels = [...new Set(runs.map((r) => r.label))];
  const series = (f: (r: FarmRun) => number): Series[] => labels.map((label) => ({
    name: label,
    points: hostCounts.map((h, i) => {
      const r = runs.find((x) => x.label === label && x.hosts === h);
      return [i, r === undefined ? undefined : f(r)] as [number, number | undefined];
    }),
  }));
  const cats = hostCounts.map(String);
  return chart(`tlsmgr farm: total throughput and p99 (${subtitle})`, [
    { title: "total throughput", yLabel: "requests/s", xLabel: "hosts", xCategories: cats, series: series((r) => r.reqPerSec) },
    { title: "p99 latency (log scale)", yLabel: "ms", xLabel: "hosts", xCategories: cats, yLog: true, series: series((r) => r.p99us / 1000) },
  ]).png();
}

/** A farm set up: the store (if any), the hosts, their sessions, the key space. */
interface Farm {
  impl: ImplName;
  label: string;
  store: RedisStore | undefined;
  targets: BenchTarget[];
  hosts: LoadHost[];
  keyspace: Keyspace;
  stop(): Promise<void>;
}

/** startFarm - the store, n hosts of impl, and the pre-fill spread over them (host h stores its slice of the key space) */
async function startFarm(impl: ImplName, n: number, o: BenchOptions, keyWrapFile: string): Promise<Farm> {
  const need = implStore(impl);
  const store = need === undefined ? undefined : await startRedisStore({ ...need, baseDir: o.tmp });
  const targets: BenchTarget[] = [];
  const traces: string[] = [];
  const stop = async () => {
    for (const t of targets) await t.stop().catch((e: Error) => log(`${t.label}: stop: ${e.message}`));
    await store?.stop();
    traces.forEach((f, h) => {
      if (existsSync(f)) process.stdout.write(`\n#### host ${h + 1} of ${n}: work that held its event loop (bench/daemon-trace.ts, pre-fill included)\n\n${traceTable(f)}`);
    });
  };
  try {
    if (store) log(`${store.label}: ${store.servers}`);
    if (o.trace !== undefined && impl.startsWith("ours")) await mkdir(o.trace, { recursive: true });
    for (let h = 0; h < n; h++) {
      const traceFile = o.trace !== undefined && impl.startsWith("ours") ? join(o.trace, `farm-${impl}-${n}-host${h + 1}-${process.pid}.json`) : undefined;
      if (traceFile !== undefined) traces.push(traceFile);
      targets.push(await startTarget(impl, {
        ...(traceFile !== undefined ? { traceFile } : {}),
        cacheTimeout: 3600, baseDir: o.tmp,
        ...(store ? { store, keyWrapFile } : {}),
        ...(o.redisTimeout !== undefined ? { redisTimeout: o.redisTimeout } : {}),
        ...(o.nodeArgs.length > 0 && impl.startsWith("ours") ? { nodeArgs: o.nodeArgs } : {}),
      }));
    }
    const label = targets[0]!.label;
    const keyspace = makeKeyspace(o.prefill, o.seed);
    const sessions: SessionPool[] = targets.map((_, h) => makeSessionPool(512, o.sessionMin, o.sessionMax, o.seed + h, h));
    const t0 = performance.now();
    const fills = await Promise.all(targets.map((t, h) => prefill(t.socket, keyspace,
      Math.floor((h * o.prefill) / n), Math.floor(((h + 1) * o.prefill) / n), sessions[h]!, Math.max(2, Math.floor(16 / n)), o.seed + h)));
    const errs = fills.reduce((a, f) => a + f.errors, 0);
    log(`${label} x ${n}: pre-filled ${o.prefill} entries in ${((performance.now() - t0) / 1000).toFixed(1)} s (${errs} errors)`
      + (store ? `; ${await store.keys()} keys in the store` : ""));
    const hosts: LoadHost[] = targets.map((t, h) => ({ socket: t.socket, sessions: sessions[h]!, daemonPid: () => t.daemonPid() }));
    return { impl, label, store, targets, hosts, keyspace, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** farmLoad - one measured load on a farm */
function farmLoad(farm: Farm, clients: number, o: BenchOptions, extra: Partial<Parameters<typeof runLoad>[0]> = {}): Promise<LoadResult> {
  return runLoad({
    socket: farm.hosts[0]!.socket, sessions: farm.hosts[0]!.sessions, hosts: farm.hosts,
    clients, durationSec: o.durationSec, warmupSec: o.warmupSec, mix: o.mix, keyspace: farm.keyspace,
    seed: o.seed + clients * 101, trackOrigin: true,
    ...(farm.store ? { storePids: () => farm.store!.pids() } : {}),
    ...extra,
  });
}

/** timeoutMs - a table timeout text ("50ms", "1s", "50") in ms; the table's default 50 ms when absent */
function timeoutMs(text: string | undefined): number {
  if (text === undefined) return 50;
  const m = /^([0-9]+)(ms|s)?$/.exec(text);
  return m ? Number(m[1]) * (m[2] === "s" ? 1000 : 1) : 50;
}

/** The degradation run's figures. */
export interface PauseRun {
  label: string;
  hosts: number;
  clients: number;
  pauseSec: number;
  timeoutMs: number;
  requests: number;
  errors: number;
  overTimeout: number;
  overTimeout5: number;
  /** of overTimeout5, those sent outside the pause (from SIGSTOP - timeout to SIGCONT): stalls of the machine, not of the store */
  overTimeout5Outside: number;
  maxus: number;
  /** lookup hit share before the pause, during it, and the ms from SIGCONT until a 100 ms slot hit 90 % of "before" again */
  hitBefore: number;
  hitDuring: number;
  recoveryMs: number | undefined;
  /** req/s before, during, after */
  rates: [number, number, number];
  /** requests over timeout + 5 ms sent during the pause: [ms since the pause began, latency ms, kind] (at most 30) */
  worst: Array<[number, number, string]>;
  /** [s since the pause, req/s, p99 ms, hit share] per slot, for the plot */
  series: Array<[number, number, number, number]>;
}

/** SLOT_MS - the degradation run's series interval */
const SLOT_MS = 100;

/**
 * pauseRun - the store stopped under load: after the warm-up and BEFORE_SEC
 * of load, SIGSTOP every server for pauseSec, SIGCONT, then AFTER_SEC more.
 * Every request over the table's timeout is kept (slowUs).
 */
async function pauseRun(farm: Farm, clients: number, o: BenchOptions): Promise<PauseRun> {
  const BEFORE_SEC = 5;
  const AFTER_SEC = 15;
  const pauseSec = o.pauseStore!;
  const tms = timeoutMs(o.redisTimeout);
  const store = farm.store!;
  let pausedAt = 0;
  let resumedAt = 0;
  const warm = o.warmupSec;
  let r: LoadResult;
  try {
    r = await farmLoad(farm, clients, o, {
      durationSec: BEFORE_SEC + pauseSec + AFTER_SEC, seriesIntervalMs: SLOT_MS, slowUs: tms * 1000,
      actions: [
        [warm + BEFORE_SEC, () => { pausedAt = performance.now(); store.pause(); log(`${store.label}: SIGSTOP`); }],
        [warm + BEFORE_SEC + pauseSec, () => { store.resume(); resumedAt = performance.now(); log(`${store.label}: SIGCONT`); }],
      ],
    });
  } finally {
    store.resume();
  }
  const t0 = r.t0;
  const slotOf = (t: number) => Math.floor((t - t0) / SLOT_MS);
  const pauseSlot = slotOf(pausedAt);
  const resumeSlot = slotOf(resumedAt);
  const hitShare = (from: number, to: number): number => {
    let a = 0;
    let b = 0;
    for (let i = Math.max(0, from); i < to && i < r.seriesLookups.length; i++) {
      const l = r.seriesLookups[i];
      if (l) { a += l[0]; b += l[1]; }
    }
    return a > 0 ? b / a : 0;
  };
  const rate = (from: number, to: number): number => {
    let n = 0;
    for (let i = Math.max(0, from); i < to && i < r.series.length; i++) n += r.series[i]!.count;
    return to > from ? n / (((to - from) * SLOT_MS) / 1000) : 0;
  };
  const warmSlots = Math.ceil((warm * 1000) / SLOT_MS);
  const hitBefore = hitShare(warmSlots, pauseSlot);
  let recoveryMs: number | undefined;
  for (let i = resumeSlot + 1; i < r.seriesLookups.length; i++) {
    const l = r.seriesLookups[i];
    if (l && l[0] > 0 && l[1] / l[0] >= 0.9 * hitBefore) {
      recoveryMs = t0 + i * SLOT_MS - resumedAt;
      break;
    }
  }
  // slow requests start on the monotonic clock; pausedAt is this process's performance.now()
  const monoPaused = MONO_BASE_US + pausedAt * 1000;
  const over: Array<[number, number, string]> = [];
  let overTimeout = 0;
  let overTimeout5 = 0;
  let overTimeout5Outside = 0;
  for (let i = 0; i + 2 < r.slow.length; i += 3) {
    const lat = r.slow[i + 1]! / 1000;
    if (lat > tms) overTimeout++;
    if (lat > tms + 5) {
      overTimeout5++;
      const sentMs = (r.slow[i]! - monoPaused) / 1000;
      if (sentMs < -tms || sentMs > pauseSec * 1000) overTimeout5Outside++;
      else if (over.length < 30) over.push([sentMs, lat, REQUEST_KINDS[r.slow[i + 2]!] ?? "?"]);
    }
  }
  const series: PauseRun["series"] = r.series.map((p, i) => {
    const l = r.seriesLookups[i];
    return [(t0 + i * SLOT_MS - pausedAt) / 1000, p.count / (SLOT_MS / 1000), p.p99 / 1000, l && l[0] > 0 ? l[1] / l[0] : 0];
  });
  return {
    label: farm.label, hosts: farm.hosts.length, clients, pauseSec, timeoutMs: tms, requests: r.requests, errors: r.errors,
    overTimeout, overTimeout5, overTimeout5Outside, maxus: r.all.max, hitBefore, hitDuring: hitShare(pauseSlot + 1, resumeSlot), recoveryMs,
    rates: [rate(warmSlots, pauseSlot), rate(pauseSlot + 1, resumeSlot), rate(resumeSlot + 1, r.series.length - 1)],
    worst: over, series,
  };
}

/** pauseTable - the degradation runs */
export function pauseTable(runs: PauseRun[]): string {
  return table(["implementation", "hosts", "clients", "paused", "timeout", "requests", "errors", "> timeout", "> timeout + 5 ms (sent outside the pause)", "max",
    "req/s before / paused / after", "lookup hits before / paused", "hits back after SIGCONT"], runs.map((p) => [
    p.label, String(p.hosts), String(p.clients), `${p.pauseSec} s`, `${p.timeoutMs} ms`, fmtInt(p.requests), fmtInt(p.errors),
    fmtInt(p.overTimeout), `${fmtInt(p.overTimeout5)} (${fmtInt(p.overTimeout5Outside)})`, fmtUs(p.maxus), p.rates.map(fmtInt).join(" / "),
    `${(p.hitBefore * 100).toFixed(1)}% / ${(p.hitDuring * 100).toFixed(1)}%`,
    p.recoveryMs === undefined ? "not within the run" : `${Math.max(0, Math.round(p.recoveryMs))} ms`,
  ]));
}

/** plotPause - req/s, p99 and the lookup hit share around the pause, as PNG */
export function plotPause(runs: PauseRun[]): Buffer {
  const marks: Array<[number, string]> = runs.length > 0 ? [[0, "SIGSTOP"], [runs[0]!.pauseSec, "SIGCONT"]] : [];
  return chart("store paused under load (time 0 = SIGSTOP)", [
    { title: "throughput", yLabel: "requests/s", xLabel: "seconds", xMarks: marks,
      series: runs.map((p) => ({ name: p.label, markers: false, points: p.series.map(([t, q]) => [t, q] as [number, number]) })) },
    { title: "p99 latency (log scale)", yLabel: "ms", xLabel: "seconds", yLog: true, xMarks: marks,
      series: runs.map((p) => ({ name: p.label, markers: false, points: p.series.map(([t, , q]) => [t, q] as [number, number]) })) },
    { title: "lookup hits", yLabel: "share", xLabel: "seconds", xMarks: marks,
      series: runs.map((p) => ({ name: p.label, markers: false, points: p.series.map(([t, , , h]) => [t, h] as [number, number]) })) },
  ], 1500).png();
}

/** runFarm - the farm benchmark as the options ask; the runs (and degradation runs) for JSON */
export async function runFarm(o: BenchOptions): Promise<{ runs: FarmRun[]; pauses: PauseRun[] }> {
  const runs: FarmRun[] = [];
  const pauses: PauseRun[] = [];
  const keyDir = await mkdtemp(join(o.tmp, "tlsmgr-bench-keywrap-"));
  const keyWrapFile = join(keyDir, "key-wrap");
  keygen(keyWrapFile);
  try {
    for (const n of o.hosts!) {
      // every implementation's farm of n hosts at once, so that repetitions interleave (the machine's load drifts)
      const farms: Farm[] = [];
      try {
        for (const impl of o.impls) {
          if (o.pauseStore !== undefined && implStore(impl) === undefined) {
            log(`${impl}: no shared store to pause: left out of the degradation run`);
            continue;
          }
          try {
            farms.push(await startFarm(impl, n, o, keyWrapFile));
          } catch (e) {
            log(`${impl} x ${n}: ${(e as Error).message}`);
            process.exitCode = 1;
          }
        }
        for (let rep = 0; rep < (o.pauseStore !== undefined ? 1 : o.repeat); rep++) {
          for (const clients of o.clients) {
            if (clients < n) {
              if (rep === 0) log(`${n} hosts: ${clients} clients are fewer than the hosts: skipped`);
              continue;
            }
            for (const farm of farms) {
              try {
                if (o.pauseStore !== undefined) {
                  const p = await pauseRun(farm, clients, o);
                  pauses.push(p);
                  process.stdout.write(`\n### ${p.label}, ${n} host${n === 1 ? "" : "s"}, ${clients} clients: store paused ${p.pauseSec} s\n\n${pauseTable([p])}\n`
                    + (p.worst.length > 0 ? `\nsent during the pause and answered later than timeout + 5 ms (sent, ms since SIGSTOP; latency ms; request): ${p.worst.map(([t, l, k]) => `${t.toFixed(0)} ${l.toFixed(1)} ${k}`).join("; ")}\n` : ""));
                  continue;
                }
                const la = loadAverage();
                const r = await farmLoad(farm, clients, o, { seed: o.seed + clients * 101 + rep });
                const f = summarizeFarm(farm.impl, farm.label, n, r, la);
                runs.push(f);
                process.stdout.write(`\n### ${f.label}, ${n} host${n === 1 ? "" : "s"}, ${clients} clients${o.repeat > 1 ? `, repetition ${rep + 1}` : ""}\n\n${farmRunTables(f)}`);
                if (r.failures.length > 0) process.stdout.write(`connection failures: ${[...new Set(r.failures)].slice(0, 5).join("; ")}\n`);
              } catch (e) {
                log(`${farm.label} x ${n}, ${clients} clients: ${(e as Error).message}`);
                process.exitCode = 1;
              }
            }
          }
        }
      } finally {
        for (const farm of farms) await farm.stop();
      }
    }
  } finally {
    await rm(keyDir, { recursive: true, force: true });
  }
  const medians = farmMedians(runs);
  if (runs.length > 0) {
    process.stdout.write(`\n## Farm summary${o.repeat > 1 ? ` (median of ${o.repeat} interleaved repetitions by req/s)` : ""}\n\n${farmSummaryTable(medians)}\n`);
    const t = farmTargets(medians);
    if (t !== "") process.stdout.write(`\n${t}\n`);
    if (o.plot !== undefined) {
      await mkdir(dirname(o.plot), { recursive: true });
      const clients = [...new Set(runs.map((r) => r.clients))];
      await writeFile(o.plot, plotFarm(medians.filter((r) => r.clients === clients[clients.length - 1]),
        `${clients[clients.length - 1]} clients in all, spread over the hosts`));
      log(`farm plot written to ${o.plot}`);
    }
  }
  if (pauses.length > 0) {
    process.stdout.write(`\n## Store paused under load\n\n${pauseTable(pauses)}\n`);
    if (o.pausePlot !== undefined) {
      await mkdir(dirname(o.pausePlot), { recursive: true });
      await writeFile(o.pausePlot, plotPause(pauses));
      log(`degradation plot written to ${o.pausePlot}`);
    }
  }
  return { runs, pauses };
}

/** farmMedians - per implementation, host count and client count, the repetition with the median req/s, carrying every repetition's req/s */
export function farmMedians(runs: FarmRun[]): FarmRun[] {
  const groups = new Map<string, FarmRun[]>();
  for (const r of runs) {
    const k = `${r.impl}\0${r.hosts}\0${r.clients}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups.values()].map((g) => {
    const sorted = [...g].sort((a, b) => a.reqPerSec - b.reqPerSec);
    return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, repeats: g.map((r) => r.reqPerSec) };
  }).sort((a, b) => a.hosts - b.hosts || a.clients - b.clients);
}
