/**
 * clock.ts - the time source, injectable so tests control it.
 * Owns: the Clock interface and the system clock.
 * See also: cache/scache.ts, tickets/ticket-keys.ts, prng/pool.ts
 */

export interface Clock {
  /** Seconds since the epoch, whole (time(2)). */
  now(): number;
}

export const systemClock: Clock = {
  now: () => Math.floor(Date.now() / 1000),
};

/** manualClock - a clock that moves only when a test says so. */
export function manualClock(start = 1_700_000_000): Clock & { advance(sec: number): void; set(sec: number): void } {
  let t = start;
  return {
    now: () => t,
    advance(sec: number) {
      t += sec;
    },
    set(sec: number) {
      t = sec;
    },
  };
}
