/**
 * memory.ts - the "memory:" (alias "internal:") session cache backend: a Map.
 * Owns: an in-process store that lives until close(); nothing reaches disk.
 * Not here: timestamps and expiry (cache/scache.ts).
 * See also: postfix/src/util/dict_ht.c (Postfix's "internal:" map),
 *           cache/backend.ts, test/conformance/memory.test.ts
 *
 * A Map iterator is live: it skips entries deleted before it reaches them,
 * survives the deletion of the entry it stands on, and meets entries added
 * behind it. That is exactly what sequence() must do, so the walk needs no copy.
 */

import type { BackendInfo, BackendOpenOptions, CacheBackend } from "../backend.js";

export const MEMORY_MAP_TYPES = ["memory", "internal"];

/** MemoryBackend - a Map of key to stored bytes. */
export class MemoryBackend implements CacheBackend {
  readonly type: string;
  readonly name: string;
  #map = new Map<string, Buffer>();

  constructor(type: string, name: string) {
    this.type = type;
    this.name = name;
  }

  lookup(key: string): Buffer | undefined {
    return this.#map.get(key);
  }

  /** peek - as lookup(): the Map hands out what it holds either way (scache reads sizes through it, cache/cache-bound.ts). */
  peek(key: string): Buffer | undefined {
    return this.#map.get(key);
  }

  update(key: string, value: Buffer): void {
    this.#map.set(key, value);
  }

  delete(key: string): boolean {
    return this.#map.delete(key);
  }

  /** sequence - the live Map iterator (see the header). */
  sequence(): Iterable<[string, Buffer]> {
    return this.#map;
  }

  /** size - the number of entries, for tests and statistics. */
  get size(): number {
    return this.#map.size;
  }

  async close(): Promise<void> {
    this.#map.clear();
  }
}

/** memoryOpen - a fresh, empty store (truncate changes nothing: there is nothing to keep). */
export async function memoryOpen(name: string, opts: BackendOpenOptions): Promise<MemoryBackend> {
  return new MemoryBackend(opts.type ?? "memory", name);
}

export const memoryBackendInfo: BackendInfo = {
  types: MEMORY_MAP_TYPES,
  open: memoryOpen,
};
