/**
 * input-budget.ts - a bound on the request bytes all connections together
 *                   hold before the requests are complete.
 * Owns: the total (INPUT_BUDGET_MIN_BYTES, or room for two requests of the
 *       largest size the attr0 limits allow, whichever is more), each
 *       connection's share, and the choice of the connection to drop when the
 *       total is passed (the one holding the most bytes of unfinished
 *       requests, never one whose bytes are whole requests waiting their turn).
 * Not here: reading and pausing (server/connection.ts), the per-request
 *           bounds (protocol/attr0.ts).
 * See also: docs/reliability.md ("memory held by partial requests")
 *
 * The attr0 limits bound one request (16 attributes of 1 MiB by default), so
 * 48 connections could hold 15 MiB each of lists never finished: 861 MiB
 * were seen. Whole requests waiting to be served are bounded otherwise (a
 * connection stops reading while it has a backlog, server/connection.ts).
 */

import type { Attr0Limits } from "../protocol/attr0.js";

/** The least total of unfinished request bytes all clients may hold. */
export const INPUT_BUDGET_MIN_BYTES = 64 * 1024 * 1024;

/** inputBudgetBytes - the total for these limits: at least two largest requests. */
export function inputBudgetBytes(limits: Attr0Limits): number {
  const largest = limits.countLimit * (limits.nameLimit + limits.valueLimit + 2) + 1;
  return Math.max(INPUT_BUDGET_MIN_BYTES, 2 * largest);
}

/** One connection's entry: how many bytes it holds, and whether they are all an unfinished request. */
export interface InputHolder {
  bytes: number;
  /** true when everything held is one unfinished request (nothing whole waits). */
  partial: boolean;
  /** Close this connection (with its warning): it held `bytes` of a total over `limit`. */
  drop(bytes: number, total: number, limit: number): void;
}

/** InputBudget - the sum over connections, and who goes when it is too much. */
export class InputBudget {
  readonly #holders = new Set<InputHolder>();
  #total = 0;

  constructor(readonly limit: number) {}

  get total(): number {
    return this.#total;
  }

  /** over - true when the connections hold more than the limit. */
  get over(): boolean {
    return this.#total > this.limit;
  }

  /** update - set a holder's bytes; when the total is passed, drop the largest unfinished holders. */
  update(holder: InputHolder, bytes: number, partial: boolean): void {
    if (!this.#holders.has(holder)) this.#holders.add(holder);
    this.#total += bytes - holder.bytes;
    holder.bytes = bytes;
    holder.partial = partial;
    while (this.#total > this.limit) {
      let largest: InputHolder | undefined;
      for (const h of this.#holders) if (h.partial && h.bytes > (largest?.bytes ?? 0)) largest = h;
      if (largest === undefined) return; // only whole requests: the connections stop reading instead
      const total = this.#total;
      const held = largest.bytes;
      this.remove(largest);
      largest.drop(held, total, this.limit);
    }
  }

  /** remove - the connection is gone (or no longer counts). */
  remove(holder: InputHolder): void {
    if (!this.#holders.delete(holder)) return;
    this.#total -= holder.bytes;
    holder.bytes = 0;
  }
}
