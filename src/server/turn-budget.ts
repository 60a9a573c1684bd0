/**
 * turn-budget.ts - a bound on the request work done in one event-loop turn,
 *                  shared by all connections, so that the loop comes back to
 *                  accept new clients (and to serve the others) promptly.
 * Owns: the budget (work units per turn, a request costing 1 unit plus one
 *       per 4 KiB it moved), the slice one connection may take before it lets
 *       the others go, the queue of connections waiting for the next turn
 *       (first come, first served), and the turn boundary (setImmediate).
 * Not here: what a connection does with its turn (server/connection.ts).
 * See also: postfix/src/util/events.c (event_loop: every ready descriptor is
 *           served once per loop), src/server/listener.ts
 *
 * Without it, one client that pipelines thousands of small requests is
 * served all of them in one go, and 8 such clients held the loop for
 * hundreds of milliseconds while a new client waited for its announcement.
 * With it, at most TURN_BUDGET_UNITS (plus one request) are served between two
 * visits of the loop to its sockets; a connection that used its slice, or
 * found the budget spent, waits for a later turn in arrival order.
 */

/** Work units one event-loop turn may spend on requests, over all connections. */
export const TURN_BUDGET_UNITS = 512;
/** Units one connection may use before the next waiting connection gets its go. */
export const CONNECTION_SLICE_UNITS = 64;
/** Bytes (request and reply) that cost one unit more. */
export const TURN_UNIT_BYTES = 4096;

/** turnCost - the units of one served request that moved `bytes` bytes. */
export function turnCost(bytes: number): number {
  return 1 + Math.floor(bytes / TURN_UNIT_BYTES);
}

/** TurnBudget - the units left in this turn, and who waits for the next one. */
export class TurnBudget {
  readonly #turnUnits: number;
  readonly #sliceUnits: number;
  #used = 0;
  #resetQueued = false;
  #waiting: Array<() => void> = [];
  #runQueued = false;
  /** Turns in which the budget ran out (for tests and diagnostics). */
  exhaustedTurns = 0;

  constructor(turnUnits = TURN_BUDGET_UNITS, sliceUnits = CONNECTION_SLICE_UNITS) {
    this.#turnUnits = turnUnits;
    this.#sliceUnits = sliceUnits;
  }

  /** sliceUnits - what one connection may use in a row. */
  get sliceUnits(): number {
    return this.#sliceUnits;
  }

  /** left - units left in this turn (0: wait for the next). */
  get left(): number {
    return Math.max(0, this.#turnUnits - this.#used);
  }

  /** spend - count units used now; the count starts again at the next turn. */
  spend(units: number): void {
    const wasLeft = this.#used < this.#turnUnits;
    this.#used += units;
    if (wasLeft && this.#used >= this.#turnUnits) this.exhaustedTurns++;
    if (!this.#resetQueued) {
      this.#resetQueued = true;
      setImmediate(this.#reset);
    }
  }

  /** later - run fn in a later turn, after those already waiting. */
  later(fn: () => void): void {
    this.#waiting.push(fn);
    if (!this.#runQueued) {
      this.#runQueued = true;
      setImmediate(this.#run);
    }
  }

  #reset = (): void => {
    this.#resetQueued = false;
    this.#used = 0;
  };

  /** #run - give the waiting connections their go, in order, while units are left. */
  #run = (): void => {
    this.#runQueued = false;
    const ready = this.#waiting;
    this.#waiting = [];
    let i = 0;
    for (; i < ready.length && this.left > 0; i++) ready[i]!();
    // Those not reached keep their place ahead of any that asked meanwhile.
    if (i < ready.length) this.#waiting = ready.slice(i).concat(this.#waiting);
    if (this.#waiting.length > 0 && !this.#runQueued) {
      this.#runQueued = true;
      setImmediate(this.#run);
    }
  };
}

/** The budget of the daemon's connections (one event loop, one budget). */
export const turnBudget = new TurnBudget();
