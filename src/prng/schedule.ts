/**
 * schedule.ts - Postfix's randomised timers: next run after period * r / 255 seconds.
 * Owns: the delay formula (with Postfix's INT_MAX / 255 period cap), the
 *       injectable timer functions and random byte, and a self-rescheduling
 *       task that never runs twice at once.
 * Not here: what the tasks do (prng/pool.ts).
 * See also: postfix/src/tlsmgr/tlsmgr.c (tlsmgr_reseed_event, tlsmgr_prng_exch_event)
 */
import { randomBytes } from "node:crypto";

export type TimerHandle = unknown;

/** Timer functions, replaced in tests. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The real timers; unref'ed so a pending reseed never keeps the process alive. */
export const systemTimers: Timers = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/** osRandomByte - one fresh byte from the operating system's generator */
export function osRandomByte(): number {
  return randomBytes(1)[0]!;
}

/** Postfix: UCHAR_MAX. */
const UCHAR_MAX = 255;
/** Postfix caps periods at INT_MAX / UCHAR_MAX so period * r cannot overflow. */
export const SCHEDULE_MAX_PERIOD = Math.floor(2147483647 / UCHAR_MAX);

/** scheduleDelay - seconds until the next run: floor(period * r / 255), r in 0..255 */
export function scheduleDelay(periodSec: number, randomByte: number): number {
  const period = Math.min(Math.max(0, Math.floor(periodSec)), SCHEDULE_MAX_PERIOD);
  const r = randomByte & 0xff;
  return Math.floor((period * r) / UCHAR_MAX);
}

export interface RandomScheduleOptions {
  timers?: Timers;
  randomByte?: () => number;
  /** Told each delay (seconds) when it is set; for tests and -v logging. */
  onScheduled?: (delaySec: number) => void;
}

/**
 * RandomSchedule - run task, then again after scheduleDelay(period, fresh byte),
 * for ever until stop(). A task still running when its time comes delays the
 * next run until it ends; errors in task are the task's business (logged there).
 */
export class RandomSchedule {
  readonly #period: number;
  readonly #task: () => Promise<void>;
  readonly #timers: Timers;
  readonly #randomByte: () => number;
  readonly #onScheduled: ((delaySec: number) => void) | undefined;
  #handle: TimerHandle | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(periodSec: number, task: () => Promise<void>, opts: RandomScheduleOptions = {}) {
    this.#period = periodSec;
    this.#task = task;
    this.#timers = opts.timers ?? systemTimers;
    this.#randomByte = opts.randomByte ?? osRandomByte;
    this.#onScheduled = opts.onScheduled;
  }

  /** start - schedule the first run (after a random delay; the caller ran the task at start-up) */
  start(): void {
    if (this.#stopped) return;
    this.#arm();
  }

  /** arm - set the timer for the next run */
  #arm(): void {
    if (this.#stopped) return;
    const delay = scheduleDelay(this.#period, this.#randomByte());
    this.#onScheduled?.(delay);
    this.#handle = this.#timers.setTimeout(() => {
      this.#handle = undefined;
      void this.#fire();
    }, delay * 1000);
  }

  /** fire - run the task once, then re-arm */
  async #fire(): Promise<void> {
    if (this.#stopped) return;
    this.#running = this.#task().catch(() => undefined);
    await this.#running;
    this.#running = undefined;
    this.#arm();
  }

  /** stop - cancel the timer and wait for a run in progress */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#handle !== undefined) this.#timers.clearTimeout(this.#handle);
    this.#handle = undefined;
    await this.#running;
  }
}
