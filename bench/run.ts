/**
 * run.ts - `npm run bench`: this project's tlsmgr and Postfix's own, measured
 *          side by side in one run, and optionally the 1M-entry sweep run.
 * Owns: the command line, the order of a run (per implementation: start,
 *       pre-fill, one load run per client count, stop), printing the tables,
 *       and writing the results (JSON, PNG plot) when asked.
 * Not here: the load (bench/load.ts), the daemons (bench/targets.ts), the
 *           sweep run (bench/sweep.ts), the plot (bench/png-chart.ts).
 * See also: docs/benchmarks.md
 *
 * Usage: npm run bench -- [--clients 1,8,64] [--duration 10] [--warmup 2]
 *   [--prefill 20000] [--mix lookup=60,update=25,tktkey=10,seed=5]
 *   [--impl ours,postfix] [--session-size 1024-4096] [--seed 1]
 *   [--sweep] [--sweep-only] [--sweep-entries 1000000] [--sweep-timeout 120]
 *   [--sweep-clients 8] [--json FILE] [--plot FILE] [--cpu-prof DIR]
 * Every run is bounded in time; only unix sockets (and Postfix's loopback
 * smtpd, which the run does not use) are opened.
 */

import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { formatMix, parseMix, DEFAULT_MIX, type Mix } from "./mix.js";
import { prefill, runLoad } from "./load.js";
import { machineInfo, procMemory } from "./proc-stats.js";
import { compareTable, kindTable, runLine, summarize, summaryTable, type RunSummary } from "./report.js";
import { IMPLS, isImplName, startTarget, type BenchTarget, type ImplName } from "./targets.js";
import { makeKeyspace, makeSessionPool } from "./workload.js";
import { runSweepBench, sweepTable, type SweepSummary } from "./sweep.js";
import { plotRuns } from "./png-chart.js";

export interface BenchOptions {
  clients: number[];
  durationSec: number;
  warmupSec: number;
  prefill: number;
  mix: Mix;
  impls: ImplName[];
  sessionMin: number;
  sessionMax: number;
  seed: number;
  sweep: boolean;
  sweepOnly: boolean;
  sweepEntries: number;
  sweepTimeout: number;
  sweepClients: number;
  json: string | undefined;
  plot: string | undefined;
  cpuProf: string | undefined;
}

const USAGE = "usage: npm run bench -- [--clients 1,8,64] [--duration 10] [--warmup 2] [--prefill 20000]\n"
  + "  [--mix lookup=60,update=25,tktkey=10,seed=5] [--impl ours,postfix] [--session-size 1024-4096] [--seed 1]\n"
  + "  [--sweep] [--sweep-only] [--sweep-entries 1000000] [--sweep-timeout 120] [--sweep-clients 8]\n"
  + "  [--json FILE] [--plot FILE] [--cpu-prof DIR]\n"
  + `  implementations: ${IMPLS.join(", ")}`;

/** parseBenchArgs - the command line to options; throws with the usage on a mistake */
export function parseBenchArgs(argv: string[]): BenchOptions {
  const o: BenchOptions = {
    clients: [1, 8, 64], durationSec: 10, warmupSec: 2, prefill: 20_000, mix: DEFAULT_MIX,
    impls: ["ours", "postfix"], sessionMin: 1024, sessionMax: 4096, seed: 1,
    sweep: false, sweepOnly: false, sweepEntries: 1_000_000, sweepTimeout: 120, sweepClients: 8,
    json: undefined, plot: undefined, cpuProf: undefined,
  };
  const num = (name: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (v === undefined || v === "" || !Number.isFinite(n) || n < min || n > max)
      throw new Error(`bad value for --${name}: ${v ?? "(none)"} (expected ${min}..${max})\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let val: string | undefined;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) {
      val = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const take = (): string => {
      if (val !== undefined) return val;
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
      return v;
    };
    switch (arg) {
      case "--clients":
        o.clients = take().split(",").map((c) => num("clients", c.trim(), 1, 4096));
        break;
      case "--duration": o.durationSec = num("duration", take(), 0.1, 3600); break;
      case "--warmup": o.warmupSec = num("warmup", take(), 0, 600); break;
      case "--prefill": o.prefill = num("prefill", take(), 0, 10_000_000); break;
      case "--mix": o.mix = parseMix(take()); break;
      case "--impl": {
        const names = take().split(",").map((s) => s.trim()).filter((s) => s !== "");
        for (const n of names) if (!isImplName(n)) throw new Error(`unknown implementation "${n}"\n${USAGE}`);
        o.impls = names as ImplName[];
        break;
      }
      case "--session-size": {
        const m = /^(\d+)-(\d+)$/.exec(take());
        if (!m) throw new Error(`bad --session-size (expected MIN-MAX bytes)\n${USAGE}`);
        o.sessionMin = Number(m[1]);
        o.sessionMax = Number(m[2]);
        if (o.sessionMax < o.sessionMin) throw new Error(`bad --session-size: MAX < MIN\n${USAGE}`);
        break;
      }
      case "--seed": o.seed = num("seed", take(), 0, 2 ** 31); break;
      case "--sweep": o.sweep = true; break;
      case "--sweep-only": o.sweep = true; o.sweepOnly = true; break;
      case "--sweep-entries": o.sweepEntries = num("sweep-entries", take(), 1000, 10_000_000); break;
      case "--sweep-timeout": o.sweepTimeout = num("sweep-timeout", take(), 120, 8_640_000); break;
      case "--sweep-clients": o.sweepClients = num("sweep-clients", take(), 1, 4096); break;
      case "--json": o.json = take(); break;
      case "--plot": o.plot = take(); break;
      case "--cpu-prof": o.cpuProf = take(); break;
      case "--help": case "-h": throw new Error(USAGE);
      default: throw new Error(`unknown option ${arg}\n${USAGE}`);
    }
  }
  return o;
}

// log - progress on stderr, results on stdout
function log(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

/** benchImpl - one implementation: start, pre-fill, a load run per client count, stop */
async function benchImpl(impl: ImplName, o: BenchOptions): Promise<{ runs: RunSummary[]; bytesPerEntry: number; prefillRate: number; label: string }> {
  const target: BenchTarget = await startTarget(impl, {
    cacheTimeout: 3600,
    ...(o.cpuProf !== undefined && impl.startsWith("ours") ? { cpuProfDir: o.cpuProf } : {}),
  });
  const runs: RunSummary[] = [];
  try {
    log(`${target.label}: listening on ${target.socket}`);
    const ks = makeKeyspace(o.prefill, o.seed);
    const sessions = makeSessionPool(512, o.sessionMin, o.sessionMax, o.seed);
    const before = target.cacheBytes();
    const pf = await prefill(target.socket, ks, 0, o.prefill, sessions, 16, o.seed);
    const after = target.cacheBytes();
    const bytesPerEntry = o.prefill > 0 ? (after.allocated - before.allocated) / o.prefill : 0;
    const prefillRate = pf.entries / pf.seconds;
    log(`${target.label}: pre-filled ${pf.entries} entries in ${pf.seconds.toFixed(1)} s `
      + `(${Math.round(prefillRate)} updates/s, ${pf.errors} errors); cache files ${(after.allocated / 1048576).toFixed(1)} MiB, `
      + `${Math.round(bytesPerEntry)} bytes/entry`);
    for (const clients of o.clients) {
      const r = await runLoad({
        socket: target.socket, clients, durationSec: o.durationSec, warmupSec: o.warmupSec, mix: o.mix,
        keyspace: ks, sessions, seed: o.seed + clients, daemonPid: () => target.daemonPid(),
      });
      const pid = target.daemonPid();
      const s = summarize(impl, target.label, r, pid === undefined ? undefined : procMemory(pid));
      runs.push(s);
      process.stdout.write(`\n### ${target.label}, ${clients} client${clients === 1 ? "" : "s"}\n\n${kindTable(s)}\n\n${runLine(s)}\n`);
      if (s.failures.length > 0) process.stdout.write(`connection failures: ${s.failures.join("; ")}\n`);
    }
    return { runs, bytesPerEntry, prefillRate, label: target.label };
  } finally {
    await target.stop();
  }
}

export async function main(argv: string[]): Promise<void> {
  const o = parseBenchArgs(argv);
  const m = machineInfo();
  process.stdout.write(`# tlsmgr benchmark\n\nmachine: ${m.nproc} CPUs (${m.cpuModel}), ${m.memTotalMiB} MiB, Linux ${m.kernel}; `
    + `node ${m.node}; postfix ${m.postfix}\n`
    + `command: npm run bench -- ${argv.join(" ")}\n`
    + `mix ${formatMix(o.mix)}; pre-fill ${o.prefill} entries; sessions ${o.sessionMin}-${o.sessionMax} bytes; `
    + `${o.durationSec} s per run after ${o.warmupSec} s warm-up\n`);

  const results: Record<string, { runs: RunSummary[]; bytesPerEntry: number; prefillRate: number; label: string }> = {};
  if (!o.sweepOnly) {
    for (const impl of o.impls) {
      try {
        results[impl] = await benchImpl(impl, o);
      } catch (e) {
        log(`${impl}: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    }
    const all = Object.values(results).flatMap((r) => r.runs);
    process.stdout.write(`\n## Summary\n\n${summaryTable(all)}\n`);
    const oursKey = Object.keys(results).find((k) => k.startsWith("ours"));
    if (oursKey !== undefined) {
      for (const ref of Object.keys(results).filter((k) => k.startsWith("postfix"))) {
        process.stdout.write(`\n${compareTable(results[oursKey]!.runs, results[ref]!.runs)}\n`);
      }
    }
    process.stdout.write(`\ncache files on disk per entry after pre-fill, and pre-fill rate:\n\n`);
    for (const r of Object.values(results)) {
      process.stdout.write(`- ${r.label}: ${Math.round(r.bytesPerEntry)} bytes/entry, ${Math.round(r.prefillRate)} updates/s\n`);
    }
    if (o.plot !== undefined && all.length > 0) {
      await mkdir(dirname(o.plot), { recursive: true });
      await writeFile(o.plot, plotRuns(all, `tlsmgr: ${formatMix(o.mix)}, ${o.prefill} entries`));
      log(`plot written to ${o.plot}`);
    }
  }

  const sweeps: SweepSummary[] = [];
  if (o.sweep) {
    for (const impl of o.impls) {
      try {
        sweeps.push(await runSweepBench(impl, {
          entries: o.sweepEntries, timeout: o.sweepTimeout, clients: o.sweepClients, mix: o.mix,
          sessionMin: o.sessionMin, sessionMax: o.sessionMax, seed: o.seed, log,
        }));
      } catch (e) {
        log(`${impl} sweep: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    }
    if (sweeps.length > 0) process.stdout.write(`\n## Sweep\n\n${sweepTable(sweeps)}\n`);
  }

  if (o.json !== undefined) {
    await mkdir(dirname(o.json), { recursive: true });
    await writeFile(o.json, JSON.stringify({ machine: m, options: { ...o, mix: formatMix(o.mix) }, results, sweeps,
      date: new Date().toISOString() }, null, 2) + "\n");
    log(`results written to ${o.json}`);
  }
}

main(process.argv.slice(2)).catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exitCode = 2;
});
