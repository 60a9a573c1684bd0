/**
 * sweep.ts - the expiry sweep benchmark: a cache of (default) 1,000,000
 *            entries of which half are expired, load applied while the
 *            periodic sweep walks it; the same for every implementation.
 * Owns: the timeline that makes half the entries expired with the daemons'
 *       own clocks (no debug hooks: Postfix has none), probe entries that
 *       show when a sweep starts and ends, and the figures with and without
 *       the sweep running.
 * Not here: the load itself (bench/load.ts), the daemons (bench/targets.ts).
 * See also: postfix/src/tlsmgr/tlsmgr.c (tlsmgr_cache_run_event, tlsmgr_loop),
 *           src/cache/scache.ts, docs/benchmarks.md
 *
 * Timeline, T = the session cache timeout (default 180 s; Postfix's minimum
 * is 120 s), t0 = the daemon's start (its first sweep, of an empty cache,
 * runs then; the next ones at t0 + T, t0 + 2T, ...):
 *   t0            store 5,000 throw-away entries to estimate the fill rate
 *   .. t0+T-10 s  store the "old" half, finishing 10 s before t0 + T: it is
 *                 expired at the sweep at t0 + 2T, and not before the sweep
 *                 at t0 + T has had T - (fill time) seconds to walk it
 *   (t0+T, ...)   store the "fresh" half (the sweep at t0 + T walks the old
 *                 half meanwhile and deletes nothing), wait until the daemon
 *                 is idle (that sweep has ended), then measure the load with
 *                 no sweep running (the baseline)
 *   t0+2T - 6 s   check that a sample of 200 old entries is still there,
 *                 then apply the same load until the sweep at t0 + 2T has
 *                 ended (+ 5 s), measuring per 250 ms
 * Start and end of a sweep are seen with probe entries: the old half holds
 * PROBES ids that sort before every other id and PROBES that sort after
 * every other id, in both caches. Each 250 ms the benchmark deletes one
 * probe: a delete that answers -1 finds the entry gone, so the sweep has
 * passed it (the low probes, lowest first, show the start; the high
 * probes, highest first, show the end). Sweeps that walk in key order
 * (btree, lmdb) are timed exactly; others (memory) approximately.
 */

import { setTimeout as sleep } from "node:timers/promises";
import { LatencyHistogram } from "./histogram.js";
import { currentTicketKeyName, oneRequest, openConnections, prefill, runLoad, type LoadResult } from "./load.js";
import type { Mix } from "./mix.js";
import { procCpuSeconds, procMemory, procStartMs } from "./proc-stats.js";
import { fmtInt, fmtUs, table } from "./report.js";
import { startTarget, type BenchTarget, type ImplName } from "./targets.js";
import { deleteRequest } from "./wire.js";
import { makeKeyspace, makeSessionPool, type BenchCacheType, type Keyspace } from "./workload.js";

/** Probe entries at each end of each cache. */
const PROBES = 2000;
/** How often a probe is deleted and the daemon's CPU sampled. */
const PROBE_MS = 250;
/** Seconds of load without a sweep. */
const BASELINE_SEC = 10;
/** Throw-away entries stored first to estimate the fill rate. */
const CALIBRATION = 5000;
/** Seconds between the end of storing the old half and t0 + T. */
const OLD_MARGIN_SEC = 10;
/** Old entries checked (deleted: 0 = present) just before the sweep at t0 + 2T. */
const OLD_CHECK = 200;

export interface SweepOptions {
  entries: number;
  timeout: number;
  clients: number;
  mix: Mix;
  sessionMin: number;
  sessionMax: number;
  seed: number;
  baseDir: string;
  /** run our daemon under node --cpu-prof, profiles in this directory */
  cpuProfDir?: string;
  log: (s: string) => void;
}

export interface SweepFigures {
  seconds: number;
  requests: number;
  reqPerSec: number;
  p50us: number;
  p99us: number;
  p999us: number;
  maxus: number;
  errors: number;
  /** daemon CPU over the interval, in cores */
  daemonCpuCores: number | undefined;
}

export interface SweepSummary {
  impl: string;
  label: string;
  entries: number;
  expired: number;
  timeout: number;
  clients: number;
  /** updates/s while storing the old half */
  fillRate: number;
  baseline: SweepFigures;
  during: SweepFigures | undefined;
  /** seconds from the start of the sweep (first low probe gone) to its end (high probes gone), per cache */
  sweepSec: Partial<Record<BenchCacheType, number>>;
  /** daemon memory with the full cache: peak RSS and anonymous (heap, malloc; not the LMDB map) */
  vmHwmKiB: number | undefined;
  rssAnonKiB: number | undefined;
  /** cache files on disk per entry with the full cache */
  bytesPerEntry: number;
  /** per second of the load across the sweep: [seconds since the sweep started, req/s, p99 ms] */
  series: Array<[number, number, number]>;
  /** seconds (same origin) the sweep took, for the plot */
  sweepTo: number | undefined;
  notes: string[];
}

// perSecond - the load's series folded into 1-second points, time 0 = origin (ms, wall clock)
function perSecond(r: LoadResult, originMs: number): Array<[number, number, number]> {
  const per = Math.max(1, Math.round(1000 / PROBE_MS));
  const out: Array<[number, number, number]> = [];
  for (let i = 0; i + per <= r.seriesHists.length; i += per) {
    const h = new LatencyHistogram();
    for (let j = i; j < i + per; j++) {
      const s = r.seriesHists[j];
      if (s) h.merge(s);
    }
    const t = (r.startMs + ((i + per) * PROBE_MS)) / 1000 - originMs / 1000;
    out.push([Math.round(t * 10) / 10, h.count * (1000 / (per * PROBE_MS)), h.percentile(99) / 1000]);
  }
  return out;
}

// probeIds - PROBES ids of a cache type that sort before (low) or after (high) every load id
function probeIds(type: BenchCacheType, end: "low" | "high"): string[] {
  const out: string[] = [];
  for (let i = 0; i < PROBES; i++) {
    const n = i.toString(16).toUpperCase().padStart(8, "0");
    if (type === "smtpd") out.push(`${end === "low" ? "00000000" : "FFFFFFFF"}${n}${"0".repeat(48)}&s=smtpd&l=805306608`);
    else out.push(`smtp&${end === "low" ? "!" : "~"}probe-${n}`);
  }
  return out;
}

// concatKeyspaces - one keyspace of several
function concatKeyspaces(...parts: Keyspace[]): Keyspace {
  return { types: parts.flatMap((p) => p.types), ids: parts.flatMap((p) => p.ids) };
}

// figures - the load figures of series intervals [from, to) (seconds since the load's start)
function figures(r: LoadResult, fromSec: number, toSec: number, cpu: Array<[number, number]>): SweepFigures {
  const h = new LatencyHistogram();
  let errors = 0;
  const a = Math.max(0, Math.floor((fromSec * 1000) / PROBE_MS));
  const b = Math.min(r.seriesHists.length, Math.ceil((toSec * 1000) / PROBE_MS));
  for (let i = a; i < b; i++) {
    const s = r.seriesHists[i];
    if (s) h.merge(s);
    errors += r.series[i]?.errors ?? 0;
  }
  const seconds = ((b - a) * PROBE_MS) / 1000;
  return {
    seconds,
    requests: h.count,
    reqPerSec: seconds > 0 ? h.count / seconds : 0,
    p50us: h.percentile(50),
    p99us: h.percentile(99),
    p999us: h.percentile(99.9),
    maxus: h.max,
    errors,
    daemonCpuCores: cpuCores(cpu, r.startMs + fromSec * 1000, r.startMs + toSec * 1000),
  };
}

// cpuCores - daemon CPU in cores between two wall times, from [ms, cpu seconds] samples
function cpuCores(samples: Array<[number, number]>, fromMs: number, toMs: number): number | undefined {
  const inside = samples.filter(([t]) => t >= fromMs && t <= toMs);
  if (inside.length < 2) return undefined;
  const [t0, c0] = inside[0]!;
  const [t1, c1] = inside[inside.length - 1]!;
  return t1 > t0 ? (c1 - c0) / ((t1 - t0) / 1000) : undefined;
}

/** runSweepBench - the whole timeline for one implementation */
export async function runSweepBench(impl: ImplName, o: SweepOptions): Promise<SweepSummary> {
  const T = o.timeout;
  const target: BenchTarget = await startTarget(impl, {
    cacheTimeout: T, baseDir: o.baseDir, ...(o.cpuProfDir !== undefined ? { cpuProfDir: o.cpuProfDir } : {}),
  });
  const notes: string[] = [];
  try {
    const pid0 = target.daemonPid();
    const t0 = (pid0 !== undefined ? procStartMs(pid0) : undefined) ?? Date.now();
    const at = (sec: number) => t0 + sec * 1000;
    o.log(`${target.label} sweep: daemon started ${((Date.now() - t0) / 1000).toFixed(1)} s ago; timeout ${T} s; `
      + `${o.entries} entries, the whole run takes about ${Math.round(2 * T / 60 + 1)} min`);

    const bulk = o.entries - 4 * PROBES;
    if (bulk < 2) throw new Error(`--sweep-entries must exceed ${4 * PROBES}`);
    const ks = makeKeyspace(bulk, o.seed + 17);
    const half = Math.floor(bulk / 2);
    const oldKs = concatKeyspaces(
      { types: Array(PROBES).fill("smtpd"), ids: probeIds("smtpd", "low") },
      { types: Array(PROBES).fill("smtp"), ids: probeIds("smtp", "low") },
      { types: ks.types.slice(0, half), ids: ks.ids.slice(0, half) },
      { types: Array(PROBES).fill("smtpd"), ids: probeIds("smtpd", "high") },
      { types: Array(PROBES).fill("smtp"), ids: probeIds("smtp", "high") },
    );
    const sessions = makeSessionPool(512, o.sessionMin, o.sessionMax, o.seed);

    // Calibrate the fill rate with throw-away entries (they join the expired ones).
    const calib = makeKeyspace(CALIBRATION, o.seed + 99);
    const cal = await prefill(target.socket, calib, 0, CALIBRATION, sessions, 16, o.seed + 2);
    const estSec = (oldKs.ids.length / (cal.entries / cal.seconds)) * 1.3 + 2;
    // The old half is stored as late as possible before t0+T, so that it expires only after the
    // sweep at t0+T has had T - fill seconds to walk the cache (it must not delete old entries).
    const oldFrom = at(T) - OLD_MARGIN_SEC * 1000 - estSec * 1000;
    if (oldFrom < Date.now()) {
      notes.push(`storing the old half (estimated ${estSec.toFixed(0)} s) starts at once: T = ${T} s is short for it`);
    }
    await sleep(Math.max(0, oldFrom - Date.now()));
    const fillOld = await prefill(target.socket, oldKs, 0, oldKs.ids.length, sessions, 16, o.seed);
    const oldDone = Date.now();
    const fillRate = fillOld.entries / fillOld.seconds;
    const oldStart = oldDone - fillOld.seconds * 1000;
    o.log(`${target.label} sweep: stored ${fillOld.entries} old entries in ${fillOld.seconds.toFixed(1)} s (${Math.round(fillRate)}/s), `
      + `${((oldStart - t0) / 1000).toFixed(0)} to ${((oldDone - t0) / 1000).toFixed(0)} s after the daemon started`);
    if (oldDone >= at(T) - 500) {
      throw new Error(`storing the old half took until ${((oldDone - t0) / 1000).toFixed(0)} s, past the timeout `
        + `${T} s: use a larger --sweep-timeout (or fewer --sweep-entries)`);
    }
    // the first old entry expires here: the sweep at t0+T must be over by then
    const firstExpiry = oldStart + T * 1000;

    // (t0+T, ...): the fresh half, after the sweep at t0+T has started
    await sleep(at(T) + 1000 - Date.now());
    const fillNew = await prefill(target.socket, ks, half, bulk, sessions, 16, o.seed + 1);
    o.log(`${target.label} sweep: stored ${fillNew.entries} fresh entries in ${fillNew.seconds.toFixed(1)} s`);
    const bytes = target.cacheBytes();

    // wait until the daemon is idle: the sweep at t0+T has ended
    const pid = target.daemonPid();
    if (pid === undefined) throw new Error("daemon pid not found");
    const cpu = () => procCpuSeconds(pid)?.total ?? 0;
    let idleSince = 0;
    for (let prev = cpu(); ;) {
      await sleep(1000);
      const now = cpu();
      if (now - prev < 0.05) break;
      prev = now;
      idleSince = Date.now();
      if (Date.now() > Math.min(firstExpiry, at(2 * T) - (BASELINE_SEC + 8) * 1000)) {
        notes.push("the sweep at t0+T was still running when the old half began to expire or the baseline had to start: "
          + "use a larger --sweep-timeout");
        break;
      }
    }
    if (idleSince > 0) o.log(`${target.label} sweep: the sweep at t0+T ended about ${((idleSince - t0) / 1000 - T).toFixed(0)} s after it began`);
    const memFull = procMemory(pid);

    const loadOpts = {
      socket: target.socket, clients: o.clients, mix: o.mix, keyspace: ks, range: [half, bulk] as [number, number],
      sessions, seed: o.seed + 5, daemonPid: () => target.daemonPid(),
    };
    // the baseline, with no sweep running
    const room = (at(2 * T) - 3000 - Date.now()) / 1000;
    if (room < 3) throw new Error(`no time left for the baseline before the sweep at t0+2T (fills too slow for --sweep-timeout ${T})`);
    const baseSec = Math.min(BASELINE_SEC, room - 1);
    const cpuBase: Array<[number, number]> = [];
    const baseTicker = setInterval(() => cpuBase.push([Date.now(), cpu()]), PROBE_MS);
    const base = await runLoad({ ...loadOpts, durationSec: baseSec, warmupSec: 1, seriesIntervalMs: PROBE_MS });
    clearInterval(baseTicker);
    const baseline = figures(base, 1, 1 + base.windowSec, cpuBase);
    o.log(`${target.label} sweep: baseline ${fmtInt(baseline.reqPerSec)} req/s, p99 ${fmtUs(baseline.p99us)}`);

    // the load across the sweep at t0+2T, with probes
    await sleep(Math.max(0, at(2 * T) - 6000 - Date.now()));
    const [probeConn] = await openConnections(target.socket, 1);
    await currentTicketKeyName(probeConn!); // the connection works
    // the old half must still be there (not deleted by the sweep at t0+T): delete a sample of it
    let present = 0;
    for (let i = 0; i < OLD_CHECK; i++) {
      const idx = 2 * PROBES + Math.floor(((i + 0.5) * half) / OLD_CHECK); // bulk entries of the old half
      const r = await oneRequest(probeConn!, "delete", deleteRequest(oldKs.types[idx]!, oldKs.ids[idx]!), 30_000);
      if (r.status === 0) present++;
    }
    o.log(`${target.label} sweep: ${present} of ${OLD_CHECK} sampled old entries present before the sweep at t0+2T`);
    if (present < OLD_CHECK) notes.push(`only ${present} of ${OLD_CHECK} sampled old entries were present before the sweep at t0+2T`);
    const lows = { smtpd: probeIds("smtpd", "low"), smtp: probeIds("smtp", "low") };
    const highs = { smtpd: probeIds("smtpd", "high").reverse(), smtp: probeIds("smtp", "high").reverse() };
    const startedAt: Partial<Record<BenchCacheType, number>> = {};
    const endedAt: Partial<Record<BenchCacheType, number>> = {};
    const used = { smtpd: { low: 0, high: 0 }, smtp: { low: 0, high: 0 } };
    const cpuSweep: Array<[number, number]> = [];
    const deadline = at(2 * T) + 600_000;
    let stopAt = Number.POSITIVE_INFINITY;
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const tick = Date.now();
        cpuSweep.push([tick, cpu()]);
        for (const type of ["smtpd", "smtp"] as const) {
          if (endedAt[type] !== undefined) continue;
          const phase = startedAt[type] === undefined ? "low" : "high";
          const list = phase === "low" ? lows[type] : highs[type];
          const id = list[used[type][phase]++];
          if (id === undefined) {
            notes.push(`${type}: ran out of ${phase} probes`);
            endedAt[type] = Number.NaN;
            continue;
          }
          const r = await oneRequest(probeConn!, "delete", deleteRequest(type, id), 30_000);
          if (r.status === -1) {
            if (phase === "low") startedAt[type] = Date.now();
            else endedAt[type] = Date.now();
          }
        }
        if (endedAt.smtpd !== undefined && endedAt.smtp !== undefined && stopAt === Number.POSITIVE_INFINITY) {
          stopAt = Date.now() + 5000;
        }
        await sleep(Math.max(0, PROBE_MS - (Date.now() - tick)));
      }
    })();
    const during = await runLoad({
      ...loadOpts, durationSec: 1200, warmupSec: 0, seriesIntervalMs: PROBE_MS,
      stopWhen: () => Date.now() >= stopAt || Date.now() >= deadline,
    });
    probing = false;
    await prober;
    probeConn!.close();
    if (Date.now() >= deadline) notes.push("the sweep did not end within 10 minutes");

    const sweepSec: Partial<Record<BenchCacheType, number>> = {};
    for (const type of ["smtpd", "smtp"] as const) {
      const s = startedAt[type];
      const e = endedAt[type];
      if (s === undefined) notes.push(`${type}: no sweep start seen`);
      else if (e !== undefined && Number.isFinite(e)) sweepSec[type] = (e - s) / 1000;
    }
    const starts = Object.values(startedAt).filter(Number.isFinite) as number[];
    const ends = Object.values(endedAt).filter(Number.isFinite) as number[];
    let duringFig: SweepFigures | undefined;
    if (starts.length > 0 && ends.length > 0) {
      const from = (Math.min(...starts) - during.startMs) / 1000;
      const to = (Math.max(...ends) - during.startMs) / 1000;
      duringFig = figures(during, from, to, cpuSweep);
      const late = (Math.min(...starts) - at(2 * T)) / 1000;
      o.log(`${target.label} sweep: sweep seen from ${late.toFixed(1)} s after t0+2T for ${(to - from).toFixed(1)} s `
        + `(${((Math.min(...starts) - t0) / 1000).toFixed(1)} to ${((Math.max(...ends) - t0) / 1000).toFixed(1)} s after the daemon started): `
        + `${fmtInt(duringFig.reqPerSec)} req/s, p99 ${fmtUs(duringFig.p99us)}`);
    }
    const memAfter = procMemory(pid);
    const origin = starts.length > 0 ? Math.min(...starts) : at(2 * T);
    return {
      impl, label: target.label, entries: o.entries, expired: oldKs.ids.length, timeout: T, clients: o.clients,
      fillRate, baseline, during: duringFig, sweepSec,
      vmHwmKiB: memAfter?.vmHwmKiB, rssAnonKiB: Math.max(memFull?.rssAnonKiB ?? 0, memAfter?.rssAnonKiB ?? 0) || undefined,
      bytesPerEntry: bytes.allocated / Math.max(1, o.entries),
      series: perSecond(during, origin),
      sweepTo: ends.length > 0 ? (Math.max(...ends) - origin) / 1000 : undefined,
      notes,
    };
  } finally {
    await target.stop();
  }
}

/** sweepTable - with and without the sweep, per implementation */
export function sweepTable(sweeps: SweepSummary[]): string {
  const rows: string[][] = [];
  for (const s of sweeps) {
    const d = s.during;
    const ratio = d && s.baseline.reqPerSec > 0 ? `${((d.reqPerSec / s.baseline.reqPerSec - 1) * 100).toFixed(0)}%` : "-";
    const secs = Object.entries(s.sweepSec).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(", ") || "-";
    rows.push([
      s.label, fmtInt(s.entries), String(s.clients),
      fmtInt(s.baseline.reqPerSec), fmtUs(s.baseline.p99us),
      d ? fmtInt(d.reqPerSec) : "-", d ? fmtUs(d.p99us) : "-", d ? fmtUs(d.maxus) : "-", ratio, secs,
      s.rssAnonKiB === undefined ? "-" : `${(s.rssAnonKiB / 1024).toFixed(0)} MiB`,
      s.vmHwmKiB === undefined ? "-" : `${(s.vmHwmKiB / 1024).toFixed(0)} MiB`,
    ]);
  }
  const notes = sweeps.flatMap((s) => s.notes.map((n) => `- ${s.label}: ${n}`));
  return table(
    ["implementation", "entries", "clients", "req/s no sweep", "p99 no sweep", "req/s sweeping", "p99 sweeping",
      "max sweeping", "change", "sweep took", "daemon anon RSS", "daemon peak RSS"],
    rows,
  ) + (notes.length > 0 ? `\n\n${notes.join("\n")}` : "");
}
