/**
 * loop-busy.ts - is this process saturated? A cheap gauge of the CPU time it
 *                used over the last window, as a share of one CPU, for work
 *                that may either run at the end of the current event-loop
 *                turn or wait to be batched.
 * Owns: the window, the threshold test, and injecting the sources for tests.
 * Not here: what is deferred (cache/backends/lmdb.ts: the overlay flush).
 * See also: docs/benchmarks.md ("The tail at one client")
 *
 * CPU time, not event-loop utilisation: a process that other work on the
 * machine keeps from running shows a busy event loop (the time it waited
 * for a CPU is not idle time), but has CPU to spare once it runs; only a
 * process that used (nearly) a whole CPU has none. The CPU time is read
 * (getrusage) at most once per LOOP_BUSY_WINDOW_MS; between reads the last
 * answer stands, so a call costs a clock read.
 */

import { performance } from "node:perf_hooks";

/** The CPU share is measured over windows of at least this many milliseconds. */
export const LOOP_BUSY_WINDOW_MS = 20;

/** CPU time used so far, microseconds (user + system). */
export type CpuSource = () => number;

const processCpu: CpuSource = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** LoopBusyGauge - answers busy() from the CPU share of the last full window. */
export class LoopBusyGauge {
  readonly #threshold: number;
  readonly #cpu: CpuSource;
  readonly #now: () => number;
  #at: number;
  #used: number;
  #busy = false;

  /** threshold: the share of one CPU (0..1 and more) at or above which the process counts as busy. */
  constructor(threshold: number, cpu: CpuSource = processCpu, now: () => number = () => performance.now()) {
    this.#threshold = threshold;
    this.#cpu = cpu;
    this.#now = now;
    this.#at = now();
    this.#used = cpu();
  }

  /** busy - true when the process used at least `threshold` of a CPU over the last window. */
  busy(): boolean {
    const now = this.#now();
    const wall = now - this.#at;
    if (wall < LOOP_BUSY_WINDOW_MS) return this.#busy;
    const used = this.#cpu();
    this.#busy = (used - this.#used) / 1000 / wall >= this.#threshold;
    this.#at = now;
    this.#used = used;
    return this.#busy;
  }
}
