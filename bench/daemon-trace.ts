/**
 * daemon-trace.ts - a preload module (`node --import`) that times, inside our
 *                   daemon, the work that can hold its event loop between or
 *                   within requests: LMDB overlay flushes, garbage collection,
 *                   seed generation, and the gaps of the event loop itself.
 * Owns: wrapping LmdbBackend.prototype.flush (wall and CPU time) and PrngPool.prototype.generate
 *       (the classes are shared with the daemon: one module instance), a GC
 *       observer, an optional event-loop delay monitor, and the JSON written
 *       at exit (histograms in the bench's own format).
 * Not here: starting the daemon (bench/targets.ts --trace), reading the file
 *           (bench/trace-summary.ts).
 * See also: docs/benchmarks.md ("The tail at one client"), src/cache/backends/lmdb.ts
 *
 * Bench only: the daemon's code is untouched; the preload is named with
 * `--import file:///.../dist/bench/daemon-trace.js?out=FILE[&eld=1]` and
 * writes FILE synchronously when the process exits (SIGTERM ends it through
 * the daemon's own exit path).
 */

import { writeFileSync } from "node:fs";
import { monitorEventLoopDelay, performance, PerformanceObserver } from "node:perf_hooks";
import { LatencyHistogram } from "./histogram.js";
import { LmdbBackend } from "../src/cache/backends/lmdb.js";
import { PrngPool } from "../src/prng/pool.js";
import { EVENT_FIELDS } from "./trace-summary.js";

const params = new URL(import.meta.url).searchParams;
const out = params.get("out");

/**
 * Events for attributing slow requests (bench/trace-summary.ts attributeTail):
 * kind (0 flush, 1 GC, 2 seed block), start on the monotonic clock (us, the same clock in every process:
 * process.hrtime), duration (us), and for a flush its writes and CPU time (us).
 * At most MAX_EVENTS are kept.
 */
const MAX_EVENTS = 1_000_000;
const events: number[] = [];
/** us on the monotonic clock at performance.now() === 0 */
const monoBase = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;
function event(kind: number, startMs: number, durUs: number, writes = 0, cpuUs = 0): void {
  if (events.length < MAX_EVENTS * EVENT_FIELDS) events.push(kind, monoBase + startMs * 1000, durUs, writes, cpuUs);
}

const flushHist = new LatencyHistogram();
const flushWrites = new LatencyHistogram();
/** CPU time of each flush (the process's, all threads: during a flush the others are idle), us: free of preemption */
const flushCpu = new LatencyHistogram();
const seedHist = new LatencyHistogram();
const gcHist: Record<string, LatencyHistogram> = {};
const t0 = performance.now();

// flush: time each call that wrote something (an empty overlay costs nothing)
const flush = LmdbBackend.prototype.flush;
LmdbBackend.prototype.flush = function tracedFlush(this: LmdbBackend): void {
  const n = this.pendingWrites;
  if (n === 0) return flush.call(this);
  const c = process.cpuUsage();
  const s = performance.now();
  flush.call(this);
  const us = (performance.now() - s) * 1000;
  const cpu = process.cpuUsage(c);
  flushCpu.record(cpu.user + cpu.system);
  flushHist.record(us);
  flushWrites.record(n);
  event(0, s, us, n, cpu.user + cpu.system);
};

const generate = PrngPool.prototype.generate;
PrngPool.prototype.generate = function tracedGenerate(this: PrngPool, n: number): Buffer {
  const s = performance.now();
  const r = generate.call(this, n);
  const us = (performance.now() - s) * 1000;
  seedHist.record(us);
  if (us > 20) event(2, s, us);
  return r;
};

const GC_KINDS: Record<number, string> = { 1: "scavenge", 2: "mark-compact", 4: "incremental", 8: "weak-callbacks", 16: "minor-mark-sweep" };
const obs = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = GC_KINDS[((e as unknown as { detail?: { kind?: number } }).detail)?.kind ?? 0] ?? "other";
    (gcHist[kind] ??= new LatencyHistogram()).record(e.duration * 1000);
    event(1, e.startTime, e.duration * 1000);
  }
});
obs.observe({ entryTypes: ["gc"] });

const eld = params.get("eld") === "1" ? monitorEventLoopDelay({ resolution: 1 }) : undefined;
eld?.enable();

process.on("exit", () => {
  if (out === null) return;
  const seconds = (performance.now() - t0) / 1000;
  writeFileSync(out, JSON.stringify({
    seconds,
    flush: flushHist.toJSON(),
    flushWrites: flushWrites.toJSON(),
    flushCpu: flushCpu.toJSON(),
    seed: seedHist.toJSON(),
    gc: Object.fromEntries(Object.entries(gcHist).map(([k, h]) => [k, h.toJSON()])),
    events,
    eld: eld ? { mean: eld.mean / 1000, p99: eld.percentile(99) / 1000, p999: eld.percentile(99.9) / 1000, max: eld.max / 1000 } : undefined,
  }) + "\n");
});
