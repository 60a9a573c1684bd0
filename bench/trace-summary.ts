/**
 * trace-summary.ts - the figures bench/daemon-trace.ts wrote, as a table:
 *                    how often each kind of event-loop-holding work ran in
 *                    the daemon, and how long it held the loop.
 * Owns: reading the trace JSON, the table.
 * Not here: taking the trace (bench/daemon-trace.ts, bench/targets.ts).
 * See also: docs/benchmarks.md ("The tail at one client")
 *
 * Usage (also called by bench/run.ts with --trace): node dist/bench/trace-summary.js FILE.json
 */

import { readFileSync } from "node:fs";
import { LatencyHistogram, type HistogramJson } from "./histogram.js";
import { fmtUs, table } from "./report.js";

/** Numbers per event in the "events" array of a trace file: kind, start, duration, writes, CPU (bench/daemon-trace.ts). */
export const EVENT_FIELDS = 5;

interface TraceJson {
  seconds: number;
  flush: HistogramJson;
  flushWrites: HistogramJson;
  flushCpu?: HistogramJson;
  seed: HistogramJson;
  gc: Record<string, HistogramJson>;
  eld?: { mean: number; p99: number; p999: number; max: number };
}

/** traceTable - one row per kind of work: count, per second, p50/p99/max duration, total share of the time */
export function traceTable(file: string): string {
  const t = JSON.parse(readFileSync(file, "utf8")) as TraceJson;
  const rows: string[][] = [];
  const row = (name: string, j: HistogramJson, note = "") => {
    const h = LatencyHistogram.fromJSON(j);
    if (h.count === 0) return;
    rows.push([name, String(h.count), (h.count / t.seconds).toFixed(1), fmtUs(h.percentile(50)), fmtUs(h.percentile(99)),
      fmtUs(h.max), `${((h.sum / 1e6 / t.seconds) * 100).toFixed(2)}%`, note]);
  };
  const writes = LatencyHistogram.fromJSON(t.flushWrites);
  row("LMDB flush", t.flush, writes.count > 0 ? `${writes.mean().toFixed(1)} writes per flush` : "");
  if (t.flushCpu) row("LMDB flush, CPU time", t.flushCpu, "(getrusage: no preemption)");
  row("seed generate", t.seed);
  for (const [kind, j] of Object.entries(t.gc)) row(`GC ${kind}`, j);
  const eld = t.eld ? `\nevent-loop delay (1 ms sampler): mean ${fmtUs(t.eld.mean)}, p99 ${fmtUs(t.eld.p99)}, p99.9 ${fmtUs(t.eld.p999)}, max ${fmtUs(t.eld.max)}\n` : "";
  return `${t.seconds.toFixed(1)} s of daemon life\n\n`
    + table(["work", "count", "per s", "p50", "p99", "max", "share of time", ""], rows) + "\n" + eld;
}

if (process.argv[1]?.endsWith("trace-summary.js")) {
  for (const f of process.argv.slice(2)) process.stdout.write(`${f}\n${traceTable(f)}\n`);
}

/** The work a request can overlap, in the order of TRACE_KINDS (bench/daemon-trace.ts). */
const CAUSES = ["LMDB flush", "GC", "seed block"];

export interface SlowRun {
  label: string;
  /** [start us, latency us, kind] triplets of the window's requests (bench/load.ts LoadResult.slow) */
  slow: number[];
  windowMonoUs: [number, number];
  /** requests in the window */
  requests: number;
  /** thresholds to attribute at, e.g. the run's p99 and p99.9 */
  thresholds: Array<[string, number]>;
}

/**
 * attributeTail - which daemon work (the trace's events) overlapped the
 * requests of a run: for all requests (the base rate) and for those slower
 * than each threshold, the share that overlapped each kind of work and the
 * mean time they overlapped it. Work that causes the tail overlaps the slow
 * requests far more often than requests in general; work that is merely
 * frequent overlaps both alike.
 */
export function attributeTail(file: string, run: SlowRun): string {
  const t = JSON.parse(readFileSync(file, "utf8")) as { events?: number[] };
  const ev = t.events ?? [];
  const [w0, w1] = run.windowMonoUs;
  const list: Array<[number, number, number]> = [];
  // flushes in the window by their writes: [count, CPU us] per class 1, 2-4, 5-16, 17+
  const classes = [[0, 0], [0, 0], [0, 0], [0, 0]] as Array<[number, number]>;
  const classOf = (n: number) => (n <= 1 ? 0 : n <= 4 ? 1 : n <= 16 ? 2 : 3);
  for (let i = 0; i + EVENT_FIELDS - 1 < ev.length; i += EVENT_FIELDS) {
    const s0 = ev[i + 1]!;
    if (s0 + ev[i + 2]! >= w0 - 100_000 && s0 <= w1) list.push([ev[i]!, s0, ev[i + 2]!]);
    if (ev[i] === 0 && s0 >= w0 && s0 <= w1) {
      const c = classes[classOf(ev[i + 3]!)]!;
      c[0]++;
      c[1] += ev[i + 4]!;
    }
  }
  list.sort((a, b) => a[1] - b[1]);
  const maxDur = list.reduce((m, e) => Math.max(m, e[2]), 0);
  // overlaps - us of each kind of work inside [start, start + lat]
  const overlaps = (start: number, lat: number): number[] => {
    const end = start + lat;
    const out = [0, 0, 0];
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]![1] <= end) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo - 1; i >= 0 && list[i]![1] + maxDur >= start; i--) {
      const [k, s0, d] = list[i]!;
      const o = Math.min(end, s0 + d) - Math.max(start, s0);
      if (o > 0) out[k]! += o;
    }
    return out;
  };
  const sets: Array<[string, number]> = [["all requests", 0], ...run.thresholds.map(([n, us]) => [`> ${n} (${fmtUs(us)})`, us] as [string, number])];
  const rows = sets.map(([name, us]) => {
    let n = 0;
    const hit = [0, 0, 0];
    const sum = [0, 0, 0];
    let none = 0;
    for (let i = 0; i + 2 < run.slow.length; i += 3) {
      if (run.slow[i + 1]! < us) continue;
      n++;
      const o = overlaps(run.slow[i]!, run.slow[i + 1]!);
      let any = false;
      for (let k = 0; k < 3; k++) if (o[k]! > 0) { hit[k]!++; sum[k]! += o[k]!; any = true; }
      if (!any) none++;
    }
    const pct = (c: number) => (n === 0 ? "-" : `${((c / n) * 100).toFixed(c / n < 0.1 ? 2 : 0)}%`);
    return [name, String(n), ...hit.map((c, k) => (c === 0 ? pct(0) : `${pct(c)}, ${fmtUs(sum[k]! / c)}`)), pct(none)];
  });
  const seconds = (w1 - w0) / 1e6;
  const counts = CAUSES.map((c, k) => `${c} ${list.filter((e) => e[0] === k && e[1] >= w0 && e[1] <= w1).length}`);
  const flushes = ["1 write", "2-4", "5-16", "17 or more"].map((name, i) =>
    `${name}: ${classes[i]![0]}${classes[i]![0] > 0 ? ` (${fmtUs(classes[i]![1] / classes[i]![0])} CPU each)` : ""}`);
  return `${run.label}: share of requests that overlapped daemon work, and the mean time overlapped\n\n`
    + table(["requests", "count", ...CAUSES, "none of these"], rows)
    + `\n\nin the ${seconds.toFixed(1)} s window: ${counts.join(", ")}; LMDB flushes by writes: ${flushes.join(", ")}\n`;
}
