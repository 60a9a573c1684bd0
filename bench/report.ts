/**
 * report.ts - the benchmark's tables: per request kind, per run, and ours
 *             against Postfix's tlsmgr with the ratio, as Markdown tables
 *             (readable in a terminal and pasted into docs/benchmarks.md).
 * Owns: the summary of a load run (rates, percentiles, CPU per request), the
 *       JSON form of results, number formatting.
 * Not here: measuring (bench/load.ts), the plot (bench/png-chart.ts).
 * See also: bench/run.ts, docs/benchmarks.md
 */

import { REQUEST_KINDS, type RequestKind } from "./mix.js";
import type { LoadResult } from "./load.js";
import type { ProcMemory } from "./proc-stats.js";

/** The figures of one load run of one implementation at one client count. */
export interface RunSummary {
  impl: string;
  label: string;
  clients: number;
  windowSec: number;
  requests: number;
  reqPerSec: number;
  errors: number;
  p50us: number;
  p99us: number;
  p999us: number;
  maxus: number;
  /** daemon CPU per request, us (undefined when the pid was not found) */
  daemonCpuUsPerReq: number | undefined;
  /** daemon CPU as a share of one core over the window */
  daemonCpuCores: number | undefined;
  genCpuUsPerReq: number;
  genCpuCores: number;
  /** CPU used by everything else on the machine over the window, in cores (noise from other work) */
  otherCpuCores: number;
  daemonMem: ProcMemory | undefined;
  /** with --repeat: req/s of every repetition (this summary is the median one) */
  repeats?: number[];
  byKind: Partial<Record<RequestKind, {
    reqPerSec: number; ok: number; miss: number; errors: number; p50us: number; p99us: number; p999us: number;
  }>>;
  failures: string[];
}

/** summarize - a LoadResult as the figures reported */
export function summarize(impl: string, label: string, r: LoadResult, mem: ProcMemory | undefined): RunSummary {
  const byKind: RunSummary["byKind"] = {};
  for (const k of REQUEST_KINDS) {
    const s = r.byKind[k];
    if (!s) continue;
    const n = s.ok + s.miss + s.errors;
    byKind[k] = {
      reqPerSec: n / r.windowSec,
      ok: s.ok,
      miss: s.miss,
      errors: s.errors,
      p50us: s.hist.percentile(50),
      p99us: s.hist.percentile(99),
      p999us: s.hist.percentile(99.9),
    };
  }
  const n = Math.max(1, r.requests);
  return {
    impl,
    label,
    clients: r.clients,
    windowSec: r.windowSec,
    requests: r.requests,
    reqPerSec: r.requests / r.windowSec,
    errors: r.errors,
    p50us: r.all.percentile(50),
    p99us: r.all.percentile(99),
    p999us: r.all.percentile(99.9),
    maxus: r.all.max,
    daemonCpuUsPerReq: r.daemonCpuSec === undefined ? undefined : (r.daemonCpuSec * 1e6) / n,
    daemonCpuCores: r.daemonCpuSec === undefined ? undefined : r.daemonCpuSec / r.windowSec,
    genCpuUsPerReq: (r.genCpuSec * 1e6) / n,
    genCpuCores: r.genCpuSec / r.windowSec,
    otherCpuCores: Math.max(0, (r.machineBusySec - (r.daemonCpuSec ?? 0) - r.genCpuSec) / r.windowSec),
    daemonMem: mem,
    byKind,
    failures: [...new Set(r.failures)].slice(0, 5),
  };
}

/** medianRun - of repeated runs, the one with the median req/s, carrying every repetition's req/s */
export function medianRun(runs: RunSummary[]): RunSummary {
  if (runs.length === 0) throw new Error("medianRun: no runs");
  const sorted = [...runs].sort((a, b) => a.reqPerSec - b.reqPerSec);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return { ...mid, repeats: runs.map((r) => r.reqPerSec) };
}

/** fmtInt - 12345.6 -> "12,346" */
export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** fmtUs - microseconds as "850 us" or "1.31 ms" */
export function fmtUs(us: number): string {
  if (us < 1000) return `${us < 10 ? us.toFixed(1) : Math.round(us)} us`;
  if (us < 100_000) return `${(us / 1000).toFixed(2)} ms`;
  return `${(us / 1000).toFixed(0)} ms`;
}

/** fmtRatio - a / b as "3.12x", or "-" */
export function fmtRatio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !(b > 0)) return "-";
  return `${(a / b).toFixed(2)}x`;
}

/** fmtMiB - KiB as MiB */
export function fmtMiB(kib: number | undefined): string {
  return kib === undefined ? "-" : `${(kib / 1024).toFixed(1)} MiB`;
}

/** table - a Markdown table */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => "| " + cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ") + " |";
  return [line(head), "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|", ...rows.map(line)].join("\n");
}

/** kindTable - one run's figures per request kind */
export function kindTable(s: RunSummary): string {
  const rows: string[][] = [];
  for (const k of REQUEST_KINDS) {
    const b = s.byKind[k];
    if (!b) continue;
    rows.push([k, fmtInt(b.reqPerSec), fmtUs(b.p50us), fmtUs(b.p99us), fmtUs(b.p999us),
      fmtInt(b.ok), fmtInt(b.miss), fmtInt(b.errors)]);
  }
  rows.push(["all", fmtInt(s.reqPerSec), fmtUs(s.p50us), fmtUs(s.p99us), fmtUs(s.p999us),
    "", "", fmtInt(s.errors)]);
  return table(["request", "req/s", "p50", "p99", "p99.9", "status 0", "status -1", "errors"], rows);
}

/** runLine - the one-line figures of a run (CPU and memory) */
export function runLine(s: RunSummary): string {
  const d = s.daemonCpuUsPerReq === undefined ? "daemon CPU -"
    : `daemon CPU ${s.daemonCpuUsPerReq.toFixed(1)} us/req (${(s.daemonCpuCores! * 100).toFixed(0)}% of a core)`;
  const g = `generator CPU ${s.genCpuUsPerReq.toFixed(1)} us/req (${(s.genCpuCores * 100).toFixed(0)}% of a core)`;
  const m = s.daemonMem ? `daemon peak RSS ${fmtMiB(s.daemonMem.vmHwmKiB)} (anon ${fmtMiB(s.daemonMem.rssAnonKiB)})` : "";
  const bound = s.genCpuCores > 0.9 ? "  ** generator-bound: the generator used more than 90% of its core **" : "";
  const other = `other processes ${(s.otherCpuCores * 100).toFixed(0)}% of a core`;
  const reps = s.repeats && s.repeats.length > 1 ? `; req/s of the ${s.repeats.length} repetitions: ${s.repeats.map(fmtInt).join(", ")} (median shown)` : "";
  return `${d}; ${g}; ${other}; ${m}${bound}${reps}`;
}

/** summaryTable - every run of every implementation, one row each */
export function summaryTable(runs: RunSummary[]): string {
  return table(
    ["implementation", "clients", "req/s", "p50", "p99", "p99.9", "errors", "daemon CPU/req", "daemon CPU", "gen CPU/req", "gen CPU", "other CPU", "peak RSS"],
    runs.map((s) => [
      s.label, String(s.clients), fmtInt(s.reqPerSec), fmtUs(s.p50us), fmtUs(s.p99us), fmtUs(s.p999us), fmtInt(s.errors),
      s.daemonCpuUsPerReq === undefined ? "-" : `${s.daemonCpuUsPerReq.toFixed(1)} us`,
      s.daemonCpuCores === undefined ? "-" : `${(s.daemonCpuCores * 100).toFixed(0)}%`,
      `${s.genCpuUsPerReq.toFixed(1)} us`,
      `${(s.genCpuCores * 100).toFixed(0)}%`,
      `${(s.otherCpuCores * 100).toFixed(0)}%`,
      fmtMiB(s.daemonMem?.vmHwmKiB),
    ]),
  );
}

/** compareTable - ours against a reference implementation at each client count, with the ratios */
export function compareTable(ours: RunSummary[], ref: RunSummary[]): string {
  const rows: string[][] = [];
  for (const o of ours) {
    const r = ref.find((x) => x.clients === o.clients);
    if (!r) continue;
    rows.push([
      String(o.clients),
      fmtInt(o.reqPerSec), fmtInt(r.reqPerSec), fmtRatio(o.reqPerSec, r.reqPerSec),
      fmtUs(o.p99us), fmtUs(r.p99us), fmtRatio(o.p99us, r.p99us),
      o.daemonCpuUsPerReq === undefined ? "-" : o.daemonCpuUsPerReq.toFixed(1),
      r.daemonCpuUsPerReq === undefined ? "-" : r.daemonCpuUsPerReq.toFixed(1),
      fmtRatio(o.daemonCpuUsPerReq, r.daemonCpuUsPerReq),
    ]);
  }
  const a = ours[0]?.label ?? "ours";
  const b = ref[0]?.label ?? "reference";
  return `${a} vs ${b} (ratio = ours / theirs)\n\n` + table(
    ["clients", "req/s ours", "req/s theirs", "ratio", "p99 ours", "p99 theirs", "ratio", "CPU/req ours (us)", "CPU/req theirs (us)", "ratio"],
    rows,
  );
}

/** median - the middle value (the lower of the two middle ones for an even count); 0 when empty */
export function median(values: number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

/**
 * tailTable - with repetitions: per implementation and client count, the
 * median over the repetitions of p50, p99 and p99.9 (each taken alone, not
 * the median run's), their range, and, against `ref`, in how many of the
 * interleaved repetitions (run next to each other in time, so under nearly
 * the same load of the machine) ours had the lower p99 and p99.9.
 */
export function tailTable(byImpl: Array<{ label: string; runs: Map<number, RunSummary[]> }>, ref?: string): string {
  const refImpl = byImpl.find((b) => b.label === ref);
  const rows: string[][] = [];
  for (const b of byImpl) {
    for (const [clients, runs] of [...b.runs].sort((x, y) => x[0] - y[0])) {
      const p99 = runs.map((r) => r.p99us);
      const p999 = runs.map((r) => r.p999us);
      const other = runs.map((r) => r.otherCpuCores * 100);
      let wins = "-";
      const theirs = refImpl && refImpl !== b ? refImpl.runs.get(clients) : undefined;
      if (theirs !== undefined) {
        const n = Math.min(theirs.length, runs.length);
        let w99 = 0;
        let w999 = 0;
        for (let i = 0; i < n; i++) {
          if (runs[i]!.p99us <= theirs[i]!.p99us) w99++;
          if (runs[i]!.p999us <= theirs[i]!.p999us) w999++;
        }
        wins = `${w99}/${n}, ${w999}/${n}`;
      }
      rows.push([b.label, String(clients), String(runs.length), fmtUs(median(runs.map((r) => r.p50us))),
        `${fmtUs(median(p99))} (${fmtUs(Math.min(...p99))}-${fmtUs(Math.max(...p99))})`,
        `${fmtUs(median(p999))} (${fmtUs(Math.min(...p999))}-${fmtUs(Math.max(...p999))})`,
        `${Math.round(median(other))}%`, wins]);
    }
  }
  return table(["implementation", "clients", "reps", "p50 median", "p99 median (range)", "p99.9 median (range)",
    "other CPU median", `p99, p99.9 <= ${ref ?? "reference"} in`], rows);
}
