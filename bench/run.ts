/**
 * run.ts - `npm run bench`: this project's tlsmgr and Postfix's own, measured
 *          side by side in one run, and optionally the 1M-entry sweep run.
 * Owns: the order of a run (start every implementation and pre-fill it, then
 *       load runs interleaved: per repetition, per client count, each
 *       implementation in turn; the median repetition is reported), printing
 *       the tables, and writing the results (JSON, PNG plots) when asked.
 * Not here: options (bench/options.ts), the load (bench/load.ts), the daemons (bench/targets.ts), the
 *           sweep run (bench/sweep.ts), the plot (bench/png-chart.ts).
 * See also: docs/benchmarks.md
 *
 * Usage: npm run bench -- [--clients 1,8,64] [--duration 10] [--warmup 2]
 *   [--prefill 20000] [--mix lookup=60,update=25,tktkey=10,seed=5]
 *   [--impl ours,postfix] [--session-size 1024-4096] [--seed 1]
 *   [--sweep] [--sweep-only] [--sweep-entries 1000000] [--sweep-timeout 180]
 *   [--sweep-clients 8] [--repeat 1] [--tmp DIR] [--json FILE] [--plot FILE]
 *   [--sweep-plot FILE] [--cpu-prof DIR] [--metrics off|on|both] [--baseline TREE]
 * --metrics both runs our daemon twice, interleaved: without and with
 * /metrics, the latter scraped every second during its load runs (a
 * harsher rate than Prometheus's usual 15 s); --baseline adds our daemon
 * from another build. Every run is bounded in time; only unix sockets (and Postfix's loopback
 * smtpd, which the run does not use) are opened.
 */

import { mkdir, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { get } from "node:http";
import { formatMix } from "./mix.js";
import { prefill, runLoad } from "./load.js";
import { parseBenchArgs, type BenchOptions } from "./options.js";
import { machineInfo, procMemory } from "./proc-stats.js";
import {
  compareTable, fmtInt, fmtRatio, kindTable, medianRun, runLine, summarize, summaryTable, tailTable, type RunSummary,
} from "./report.js";
import { startTarget, type BenchTarget, type ImplName } from "./targets.js";
import { makeKeyspace, makeSessionPool, type Keyspace, type SessionPool } from "./workload.js";
import { runSweepBench, sweepTable, type SweepSummary } from "./sweep.js";
import { loadAverage, runFarm } from "./farm.js";
import { plotRuns, plotSweep } from "./png-chart.js";
import { attributeTail, traceTable, type SlowRun } from "./trace-summary.js";

/** With --trace, requests at least this slow (us) are kept for the tail attribution: all of them. */
const TRACE_SLOW_US = 0;

// log - progress on stderr, results on stdout
function log(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

/** One daemon to measure: an implementation, and for ours, /metrics on or another build. */
interface Variant {
  impl: ImplName;
  metrics: boolean;
  baseline: string | undefined;
}

interface ImplState {
  impl: ImplName;
  /** the implementation and its variant, unique per state ("ours", "ours+metrics", "ours@baseline") */
  key: string;
  target: BenchTarget;
  label: string;
  keyspace: Keyspace;
  bytesPerEntryPrefill: number;
  bytesPerEntryEnd: number;
  prefillRate: number;
  /** entries stored by load runs beyond the pre-fill (updates of new ids) */
  added: number;
  runs: Map<number, RunSummary[]>;
  /** with --trace: the daemon's trace file, written when it stops, and the slow requests of each run */
  traceFile: string | undefined;
  slowRuns: SlowRun[];
}

export interface ImplResult {
  label: string;
  /** median run per client count */
  runs: RunSummary[];
  /** cache files on disk (allocated) per pre-filled entry, right after the pre-fill */
  bytesPerEntry: number;
  /** the same at the end of all load runs, per entry then cached (pre-fill + updates of new ids) */
  bytesPerEntryEnd: number;
  /** entries cached at the end */
  entriesEnd: number;
  prefillRate: number;
}

/** variantsOf - the daemons a run measures: each implementation, ours as --metrics and --baseline ask */
function variantsOf(o: BenchOptions): Variant[] {
  const out: Variant[] = [];
  for (const impl of o.impls) {
    const ours = impl === "ours" || impl === "ours-memory";
    if (!ours) {
      out.push({ impl, metrics: false, baseline: undefined });
      continue;
    }
    if (o.baseline !== undefined) out.push({ impl, metrics: false, baseline: o.baseline });
    if (o.metrics !== "on") out.push({ impl, metrics: false, baseline: undefined });
    if (o.metrics !== "off") out.push({ impl, metrics: true, baseline: undefined });
  }
  return out;
}

/** variantKey - the key of a variant in the results */
function variantKey(v: Variant): string {
  return v.impl + (v.baseline !== undefined ? "@baseline" : "") + (v.metrics ? "+metrics" : "");
}

/** startAndFill - start an implementation and pre-fill its caches */
async function startAndFill(v: Variant, o: BenchOptions, sessions: SessionPool): Promise<ImplState> {
  const impl = v.impl;
  const traceFile = o.trace !== undefined && impl.startsWith("ours") ? join(o.trace, `${variantKey(v)}-${process.pid}.json`) : undefined;
  if (traceFile !== undefined) await mkdir(o.trace!, { recursive: true });
  const target = await startTarget(impl, {
    cacheTimeout: 3600,
    baseDir: o.tmp,
    ...(v.metrics ? { metrics: true } : {}),
    ...(v.baseline !== undefined ? { daemonMain: join(v.baseline, "dist", "src", "main.js") } : {}),
    ...(o.cpuProf !== undefined && (impl.startsWith("ours") || impl === "node-floor") ? { cpuProfDir: o.cpuProf } : {}),
    ...(traceFile !== undefined ? { traceFile } : {}),
    ...(o.nodeArgs.length > 0 && impl.startsWith("ours") ? { nodeArgs: o.nodeArgs } : {}),
  });
  try {
    log(`${target.label}: listening on ${target.socket}`);
    const keyspace = makeKeyspace(o.prefill, o.seed);
    const before = target.cacheBytes();
    const pf = await prefill(target.socket, keyspace, 0, o.prefill, sessions, 16, o.seed);
    const after = target.cacheBytes();
    const bytesPerEntry = o.prefill > 0 ? (after.allocated - before.allocated) / o.prefill : 0;
    log(`${target.label}: pre-filled ${pf.entries} entries in ${pf.seconds.toFixed(1)} s `
      + `(${Math.round(pf.entries / pf.seconds)} updates/s, ${pf.errors} errors); cache files `
      + `${(after.allocated / 1048576).toFixed(1)} MiB, ${Math.round(bytesPerEntry)} bytes/entry`);
    return {
      impl, key: variantKey(v), target, label: target.label, keyspace, bytesPerEntryPrefill: bytesPerEntry, bytesPerEntryEnd: 0,
      prefillRate: pf.entries / pf.seconds, added: 0, runs: new Map(), traceFile, slowRuns: [],
    };
  } catch (e) {
    await target.stop();
    throw e;
  }
}

/**
 * scrapeEverySecond - GET url once a second until stopped, as Prometheus
 * would (more often); the scrapes that answered 200, and those that did not.
 */
function scrapeEverySecond(url: string): () => { ok: number; failed: number } {
  const n = { ok: 0, failed: 0 };
  const timer = setInterval(() => {
    get(url, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? n.ok++ : n.failed++));
    }).on("error", () => n.failed++);
  }, 1000);
  return () => {
    clearInterval(timer);
    return n;
  };
}

/** loadRun - one measured run of one implementation at one client count */
async function loadRun(st: ImplState, clients: number, rep: number, o: BenchOptions, sessions: SessionPool): Promise<RunSummary> {
  const stopScraping = st.target.metricsUrl !== undefined ? scrapeEverySecond(st.target.metricsUrl) : undefined;
  const r = await runLoad({
    socket: st.target.socket, clients, durationSec: o.durationSec, warmupSec: o.warmupSec, mix: o.mix,
    keyspace: st.keyspace, sessions, seed: o.seed + clients * 101 + rep, daemonPid: () => st.target.daemonPid(),
    ...(st.traceFile !== undefined ? { slowUs: TRACE_SLOW_US } : {}),
  });
  if (stopScraping) {
    const n = stopScraping();
    log(`${st.label}, ${clients} clients: ${n.ok} scrapes of /metrics answered${n.failed > 0 ? `, ${n.failed} failed` : ""}`);
    if (n.ok === 0) process.exitCode = 1;
  }
  st.added += r.freshUpdates;
  const pid = st.target.daemonPid();
  const s = summarize(st.impl, st.label, r, pid === undefined ? undefined : procMemory(pid));
  if (st.traceFile !== undefined) {
    st.slowRuns.push({
      label: `${st.label}, ${clients} client${clients === 1 ? "" : "s"}${o.repeat > 1 ? `, repetition ${rep + 1}` : ""}`,
      slow: r.slow, windowMonoUs: r.windowMonoUs, requests: r.requests,
      thresholds: [["p99", s.p99us], ["p99.9", s.p999us]],
    });
  }
  return s;
}

/** main - one benchmark run as the command line asks */
export async function main(argv: string[]): Promise<void> {
  const o = parseBenchArgs(argv);
  const m = machineInfo();
  process.stdout.write(`# tlsmgr benchmark\n\nmachine: ${m.nproc} CPUs (${m.cpuModel}), ${m.memTotalMiB} MiB, Linux ${m.kernel}; `
    + `node ${m.node}; postfix ${m.postfix}\n`
    + `command: npm run bench -- ${argv.join(" ")}\n`
    + `mix ${formatMix(o.mix)}; pre-fill ${o.prefill} entries; sessions ${o.sessionMin}-${o.sessionMax} bytes; `
    + `${o.durationSec} s per run after ${o.warmupSec} s warm-up; ${o.repeat} repetition(s), interleaved; `
    + `temporary files under ${o.tmp}; load average ${loadAverage().toFixed(2)} at the start\n`);

  const results: Record<string, ImplResult> = {};
  if (o.hosts !== undefined) {
    const farm = await runFarm(o);
    if (o.json !== undefined) {
      await mkdir(dirname(o.json), { recursive: true });
      await writeFile(o.json, JSON.stringify({ machine: m, argv, options: { ...o, mix: formatMix(o.mix) }, farm, date: new Date().toISOString() }, null, 2) + "\n");
      log(`results written to ${o.json}`);
    }
    return;
  }
  if (!o.sweepOnly) {
    const sessions = makeSessionPool(512, o.sessionMin, o.sessionMax, o.seed);
    const states: ImplState[] = [];
    try {
      for (const v of variantsOf(o)) {
        try {
          states.push(await startAndFill(v, o, sessions));
        } catch (e) {
          log(`${variantKey(v)}: ${(e as Error).message}`);
          process.exitCode = 1;
        }
      }
      // interleaved: each repetition runs every client count on every implementation in turn
      for (let rep = 0; rep < o.repeat; rep++) {
        for (const clients of o.clients) {
          for (const st of states) {
            try {
              const s = await loadRun(st, clients, rep, o, sessions);
              const list = st.runs.get(clients) ?? [];
              list.push(s);
              st.runs.set(clients, list);
              process.stdout.write(`\n### ${st.label}, ${clients} client${clients === 1 ? "" : "s"}`
                + `${o.repeat > 1 ? `, repetition ${rep + 1}` : ""}\n\n${kindTable(s)}\n\n${runLine(s)}\n`);
              if (s.failures.length > 0) process.stdout.write(`connection failures: ${s.failures.join("; ")}\n`);
            } catch (e) {
              log(`${st.label}, ${clients} clients: ${(e as Error).message}`);
              process.exitCode = 1;
            }
          }
        }
      }
    } finally {
      for (const st of states) {
        st.bytesPerEntryEnd = st.target.cacheBytes().allocated / Math.max(1, o.prefill + st.added);
        await st.target.stop().catch((e: Error) => log(`${st.label}: stop: ${e.message}`));
        if (st.traceFile !== undefined && existsSync(st.traceFile))
          process.stdout.write(`\n### ${st.label}: work that held the event loop (bench/daemon-trace.ts, pre-fill included)\n\n${traceTable(st.traceFile)}`
            + st.slowRuns.map((r) => `\n${attributeTail(st.traceFile!, r)}`).join(""));
      }
    }
    for (const st of states) {
      results[st.key] = {
        label: st.label,
        runs: o.clients.filter((c) => st.runs.has(c)).map((c) => medianRun(st.runs.get(c)!)),
        bytesPerEntry: st.bytesPerEntryPrefill,
        bytesPerEntryEnd: st.bytesPerEntryEnd,
        entriesEnd: o.prefill + st.added,
        prefillRate: st.prefillRate,
      };
    }
    const all = Object.values(results).flatMap((r) => r.runs);
    process.stdout.write(`\n## Summary${o.repeat > 1 ? ` (median of ${o.repeat} repetitions by req/s)` : ""}\n\n${summaryTable(all)}\n`);
    if (o.repeat > 1) {
      const ref = states.find((st) => st.impl.startsWith("postfix"))?.label;
      process.stdout.write(`\n### Latency over the ${o.repeat} repetitions\n\n${tailTable(states, ref)}\n`);
    }
    const oursKey = Object.keys(results).find((k) => k === "ours") ?? Object.keys(results).find((k) => k.startsWith("ours"));
    if (oursKey !== undefined) {
      for (const ref of Object.keys(results).filter((k) => k !== oursKey)) {
        process.stdout.write(`\n${compareTable(results[oursKey]!.runs, results[ref]!.runs)}\n`);
      }
    }
    process.stdout.write(`\ncache files (bytes allocated) per cached entry, after the pre-fill and at the end of the load runs; pre-fill rate (16 connections):\n\n`);
    const ref = Object.values(results).find((r) => r.label.includes("(btree)"));
    for (const r of Object.values(results)) {
      if (r.bytesPerEntry === 0 && r.bytesPerEntryEnd === 0) continue;
      const vs = ref && ref !== r ? ` (${fmtRatio(r.bytesPerEntry, ref.bytesPerEntry)} and ${fmtRatio(r.bytesPerEntryEnd, ref.bytesPerEntryEnd)} of btree)` : "";
      process.stdout.write(`- ${r.label}: ${Math.round(r.bytesPerEntry)} bytes/entry after pre-fill, `
        + `${Math.round(r.bytesPerEntryEnd)} at the end (${fmtInt(r.entriesEnd)} entries)${vs}; ${Math.round(r.prefillRate)} updates/s\n`);
    }
    if (o.plot !== undefined && all.length > 0) {
      await mkdir(dirname(o.plot), { recursive: true });
      await writeFile(o.plot, plotRuns(all, `default mix, ${o.prefill} entries of ${o.sessionMin}-${o.sessionMax} bytes`));
      log(`plot written to ${o.plot}`);
    }
  }

  const sweeps: SweepSummary[] = [];
  if (o.sweep) {
    for (const impl of o.impls) {
      if (impl === "node-floor") {
        log("node-floor has no expiry sweep: left out of the sweep run");
        continue;
      }
      try {
        sweeps.push(await runSweepBench(impl, {
          entries: o.sweepEntries, timeout: o.sweepTimeout, clients: o.sweepClients, mix: o.mix,
          sessionMin: o.sessionMin, sessionMax: o.sessionMax, seed: o.seed, baseDir: o.tmp, log,
          ...(o.cpuProf !== undefined && impl.startsWith("ours") ? { cpuProfDir: o.cpuProf } : {}),
        }));
      } catch (e) {
        log(`${impl} sweep: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    }
    if (sweeps.length > 0) process.stdout.write(`\n## Sweep\n\n${sweepTable(sweeps)}\n`);
    if (o.sweepPlot !== undefined && sweeps.length > 0) {
      await mkdir(dirname(o.sweepPlot), { recursive: true });
      await writeFile(o.sweepPlot, plotSweep(
        sweeps.map((s) => ({ label: s.label, points: s.series, sweepFrom: 0, ...(s.sweepTo !== undefined ? { sweepTo: s.sweepTo } : {}) })),
        `${o.sweepEntries} entries, half expired, ${o.sweepClients} clients, time 0 = sweep start`,
      ));
      log(`sweep plot written to ${o.sweepPlot}`);
    }
  }

  if (o.json !== undefined) {
    await mkdir(dirname(o.json), { recursive: true });
    await writeFile(o.json, JSON.stringify({ machine: m, argv, options: { ...o, mix: formatMix(o.mix) }, results, sweeps,
      date: new Date().toISOString() }, null, 2) + "\n");
    log(`results written to ${o.json}`);
  }
}

main(process.argv.slice(2)).catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exitCode = 2;
});
