/**
 * cache-bound.ts - the account of what one session cache holds (entries and
 *                  bytes), and its bound: the oldest entries go first when a
 *                  limit is passed.
 * Owns: the entry and byte count of a cache whose store is this process's
 *       own (LMDB, memory), the insertion-ordered index kept when a limit is
 *       set (tlsmgr_*_cache_entry_limit, tlsmgr_*_cache_byte_limit), eviction
 *       of the oldest entries, and the one warning when eviction starts.
 * Not here: when it is told (cache/scache.ts: after each update and each
 *           removal); the limits' parameters (config/params.ts); shared
 *           stores (Redis: the server's maxmemory policy bounds them, see
 *           man/tlsmgr.8).
 * See also: stats/counters.ts CacheCounters (entries, bytes, evictions)
 *
 * Size of an entry: the UTF-8 bytes of its id plus the stored value (the
 * 8-byte time stamp and the session). The store's own overhead is not
 * counted: an LMDB file takes more, up to a 4 KiB page per entry for
 * sessions over about 2 KiB (overflow pages).
 *
 * Policy: with a limit set, the account keeps a Map from id to size in the
 * order of the last update (an update moves its id to the end), which is
 * the order of the entries' time stamps. After an update that passes a
 * limit, the first ids of the Map are removed from the store until the cache
 * is within both limits again: the entries stored (or replaced) longest ago
 * go first, whether or not they were looked up since. An entry larger than
 * the byte limit alone is removed at once (it is never kept). Cost: one Map
 * entry per cached entry (the id string and about 50 bytes: some 150 bytes
 * for Postfix's ids of about 100 characters), one Map update per update,
 * and one store delete per eviction. Without a limit there is no index; the
 * account reads the size of an entry being replaced or deleted from the
 * store instead (a local read: the memory map or the Map).
 *
 * The account starts empty as the cache does (caches are truncated at
 * start-up) and sees every write, since this process is the store's only
 * writer. Writes the store drops later (LMDB's disk-full back-off) stay in
 * the account until removed.
 */

import type { CacheCounters } from "../stats/counters.js";
import { msgWarn } from "../log/msg.js";

/** A cache's limits; 0 = none. */
export interface CacheLimits {
  entries: number;
  bytes: number;
}

/** A cache's limit parameter names, for the warning. */
export interface CacheLimitParams {
  entries: string;
  bytes: string;
}

/** A limit is considered well clear again below this share of it (re-arms the warning). */
const REARM_SHARE = 0.9;

export interface CacheAccountOptions {
  /** "smtpd TLS cache lmdb:/path" in the warning. */
  label: string;
  counters: CacheCounters;
  limits?: CacheLimits;
  params?: CacheLimitParams;
  /** The stored value's length under id, read from the store now (synchronously); -1 when absent. */
  storedLength(id: string): number;
  /** Remove id from the store (synchronously): an eviction. */
  evict(id: string): void;
}

/** entrySize - what an entry counts for: id bytes plus stored value bytes. */
export function entrySize(id: string, valueLength: number): number {
  return Buffer.byteLength(id, "utf8") + valueLength;
}

/** CacheAccount - entries and bytes of one cache, and its limits. */
export class CacheAccount {
  readonly #o: CacheAccountOptions;
  readonly #c: CacheCounters;
  readonly #entryLimit: number;
  readonly #byteLimit: number;
  /** id -> size, oldest update first; only with a limit. */
  readonly #index: Map<string, number> | undefined;
  #warned = false;

  constructor(o: CacheAccountOptions) {
    this.#o = o;
    this.#c = o.counters;
    this.#c.entries = 0;
    this.#c.bytes = 0;
    this.#entryLimit = Math.max(0, o.limits?.entries ?? 0);
    this.#byteLimit = Math.max(0, o.limits?.bytes ?? 0);
    this.#index = this.#entryLimit > 0 || this.#byteLimit > 0 ? new Map() : undefined;
  }

  /** bounded - true when a limit is set. */
  get bounded(): boolean {
    return this.#index !== undefined;
  }

  /** oldSize - the size id counts for now (before it is replaced or removed); -1 when not held. */
  oldSize(id: string): number {
    if (this.#index) return this.#index.get(id) ?? -1;
    const len = this.#o.storedLength(id);
    return len < 0 ? -1 : entrySize(id, len);
  }

  /** stored - id now holds a value of valueLength (old: oldSize() before the write); evicts when over a limit. */
  stored(id: string, valueLength: number, old: number): void {
    const size = entrySize(id, valueLength);
    const c = this.#c;
    if (old < 0) c.entries++;
    c.bytes += size - (old < 0 ? 0 : old);
    const index = this.#index;
    if (index === undefined) return;
    if (old >= 0) index.delete(id);
    index.set(id, size);
    if ((this.#entryLimit > 0 && c.entries > this.#entryLimit) || (this.#byteLimit > 0 && c.bytes > this.#byteLimit))
      this.#evictOldest(index);
  }

  /** removed - id (of size, from oldSize()) is gone from the store. */
  removed(id: string, size: number): void {
    if (size < 0) return;
    this.#c.entries--;
    this.#c.bytes -= size;
    this.#index?.delete(id);
  }

  /** #evictOldest - remove the oldest entries until the cache is within its limits. */
  #evictOldest(index: Map<string, number>): void {
    const c = this.#c;
    if (!this.#warned) {
      this.#warned = true;
      const p = this.#o.params;
      const which =
        this.#entryLimit > 0 && c.entries > this.#entryLimit
          ? `${this.#entryLimit} entries${p ? ` (${p.entries})` : ""}`
          : `${this.#byteLimit} bytes${p ? ` (${p.bytes})` : ""}`;
      msgWarn(`${this.#o.label}: limit of ${which} reached: removing the oldest entries to make room`);
    }
    for (const [id, size] of index) {
      if (!((this.#entryLimit > 0 && c.entries > this.#entryLimit) || (this.#byteLimit > 0 && c.bytes > this.#byteLimit)))
        break;
      index.delete(id);
      c.entries--;
      c.bytes -= size;
      c.evictions++;
      try {
        this.#o.evict(id);
      } catch {
        /* the store warns itself; the entry is out of the account either way */
      }
    }
  }

  /** sweepEnded - a sweep finished: the warning is armed again once the cache is well within its limits. */
  sweepEnded(): void {
    if (!this.#warned) return;
    const c = this.#c;
    const clear = (limit: number, n: number) => limit === 0 || n < limit * REARM_SHARE;
    if (clear(this.#entryLimit, c.entries) && clear(this.#byteLimit, c.bytes)) this.#warned = false;
  }

  /** oldestIds - the ids in eviction order, at most n (tests, diagnostics); empty without a limit. */
  oldestIds(n: number): string[] {
    const out: string[] = [];
    if (!this.#index) return out;
    for (const id of this.#index.keys()) {
      if (out.length >= n) break;
      out.push(id);
    }
    return out;
  }
}
