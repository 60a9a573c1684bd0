/**
 * loop-busy.ts - is this process's event loop saturated? A cheap gauge of
 *                its utilisation (the share of time not spent waiting for
 *                I/O) over the last window, for work that may either run at
 *                the end of the current turn or wait to be batched.
 * Owns: the window, the threshold test, and injecting a source for tests.
 * Not here: what is deferred (cache/backends/lmdb.ts: the overlay flush).
 * See also: node:perf_hooks performance.eventLoopUtilization(),
 *           docs/benchmarks.md ("The tail at one client")
 *
 * The utilisation is read at most once per LOOP_BUSY_WINDOW_MS; between
 * reads the last answer stands, so a call costs a clock read.
 */

import { performance } from "node:perf_hooks";

/** The utilisation is measured over windows of at least this many milliseconds. */
export const LOOP_BUSY_WINDOW_MS = 20;

/** Cumulative idle and active milliseconds, as performance.eventLoopUtilization() gives them. */
export type LoopUtilSource = () => { idle: number; active: number };

/** LoopBusyGauge - answers busy() from the utilisation of the last full window. */
export class LoopBusyGauge {
  readonly #threshold: number;
  readonly #source: LoopUtilSource;
  readonly #now: () => number;
  #at: number;
  #idle: number;
  #active: number;
  #busy = false;

  constructor(threshold: number, source: LoopUtilSource = () => performance.eventLoopUtilization(), now = () => performance.now()) {
    this.#threshold = threshold;
    this.#source = source;
    this.#now = now;
    const s = source();
    this.#at = now();
    this.#idle = s.idle;
    this.#active = s.active;
  }

  /** busy - true when the loop was busy at least `threshold` of the last window (0..1). */
  busy(): boolean {
    const now = this.#now();
    if (now - this.#at < LOOP_BUSY_WINDOW_MS) return this.#busy;
    const s = this.#source();
    const idle = s.idle - this.#idle;
    const active = s.active - this.#active;
    if (idle + active > 0) this.#busy = active / (idle + active) >= this.#threshold;
    this.#at = now;
    this.#idle = s.idle;
    this.#active = s.active;
    return this.#busy;
  }
}
