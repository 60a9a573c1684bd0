/**
 * proc-sample.ts - the daemon's resident memory and open descriptors, sampled
 *                  at a fixed interval while a stress run goes on.
 * Owns: the sampler (a timer, unref'd, stopped by the caller), the samples,
 *       the peaks, and counting /proc/PID/fd.
 * Not here: reading /proc/PID/status (bench/proc-stats.ts procMemory).
 * See also: stress/soak.ts (the growth verdict), stress/fuzz.ts (peak RSS)
 */

import { readdirSync } from "node:fs";
import { procMemory } from "../bench/proc-stats.js";

export interface ProcSample {
  /** Seconds since the sampler started. */
  t: number;
  rssKiB: number;
  rssAnonKiB: number;
  fds: number;
}

/** openFds - descriptors open in process PID, or -1 when it is gone. */
export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** ProcSampler - sample PID every intervalMs until stop(). */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  peakRssKiB = 0;
  /** The largest anonymous part of RSS seen (heap, stacks; not the LMDB file's pages). */
  peakAnonKiB = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #start = Date.now();

  constructor(
    private pid: number,
    readonly intervalMs: number,
  ) {}

  /** start - take one sample now and then one every interval. */
  start(): this {
    this.sample();
    this.#timer = setInterval(() => this.sample(), this.intervalMs);
    this.#timer.unref();
    return this;
  }

  /** follow - sample another process from now on (the daemon was restarted). */
  follow(pid: number): void {
    this.pid = pid;
  }

  /** sample - one sample now (undefined when the process is gone). */
  sample(): ProcSample | undefined {
    const m = procMemory(this.pid);
    if (m === undefined) return undefined;
    const s = { t: (Date.now() - this.#start) / 1000, rssKiB: m.vmRssKiB, rssAnonKiB: m.rssAnonKiB, fds: openFds(this.pid) };
    this.peakRssKiB = Math.max(this.peakRssKiB, m.vmRssKiB, m.vmHwmKiB);
    this.peakAnonKiB = Math.max(this.peakAnonKiB, m.rssAnonKiB);
    this.samples.push(s);
    return s;
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
