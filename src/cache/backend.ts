/**
 * backend.ts - the storage interface every session cache backend implements,
 *              and the registry from map type ("lmdb", "memory", ...) to opener.
 * Owns: CacheBackend (as small as Postfix's DICT), BackendOpener, the registry.
 * Not here: timestamps, expiry and the sweep (cache/scache.ts); the backends
 *           themselves (cache/backends/*.ts, registered by cache/backends/index.ts).
 * See also: postfix/src/util/dict.h, dict_open.c; test/conformance/backend-suite.ts
 *
 * Synchronous or not: a backend whose store is in this process (memory,
 * LMDB's memory map) answers synchronously; one across a network (Redis)
 * answers with a promise. Callers take both (MaybePromise) so that the request
 * path costs no promise and no microtask when the store allows it.
 *
 * Buffer ownership: update() may keep the Buffer it is given (no copy), so the
 * caller must not modify it afterwards; lookup() and sequence() may hand out a
 * Buffer the backend still holds, so the caller must not modify it either. A
 * Buffer from lookup() or sequence() stays valid (a backend never reuses its
 * memory). peek(), where a backend has it, is the exception: its Buffer is
 * valid only until the next call into the backend, for a caller that uses it
 * at once (the request path encodes it into the reply straight away).
 *
 * Keys are JS strings; a backend must accept any string (empty, UTF-8, long
 * ones) and give the same string back from sequence().
 *
 * Outages: while its store cannot be reached (a shared server down), a
 * backend rejects with an error of code ERR_BACKEND_UNAVAILABLE
 * (log/errors.ts); it logs the outage once, and callers treat the request as
 * a miss without a warning of their own.
 */

/** A value now, or a promise of it. */
export type MaybePromise<T> = T | Promise<T>;

export interface CacheBackend {
  /** For diagnostics: the map type and name as written in main.cf. */
  readonly type: string;
  readonly name: string;
  /** The value stored under key, or undefined when there is none. */
  lookup(key: string): MaybePromise<Buffer | undefined>;
  /**
   * As lookup(), synchronous, without a copy: the Buffer is valid only until
   * the next call into the backend (see the header). Optional.
   */
  peek?(key: string): Buffer | undefined;
  /** Store value under key, replacing what was there. Visible to lookup() once called. */
  update(key: string, value: Buffer): MaybePromise<void>;
  /** Remove key; true when something was removed. */
  delete(key: string): MaybePromise<boolean>;
  /**
   * Walk every entry. Must survive the deletion of the entry it stands on
   * (and of others) while the walk is in progress. Entries added or changed
   * during the walk may or may not be met; none is met twice unless it was
   * deleted and added again.
   */
  sequence(): Iterable<[string, Buffer]> | AsyncIterable<[string, Buffer]>;
  close(): Promise<void>;
  /**
   * True when the store drops old entries by itself (e.g. a Redis TTL set
   * from BackendOpenOptions.timeout): scache then runs no periodic sweep.
   */
  readonly expiresByItself?: boolean;
}

export interface BackendOpenOptions {
  /** Create the store empty, or empty it when it exists (tls_scache at start-up). */
  truncate: boolean;
  /** The map type as written in main.cf ("btree", "internal", ...), for diagnostics; default: the backend's own. */
  type?: string;
  /** The cache timeout in seconds (for stores that expire entries by themselves). */
  timeout?: number;
  /**
   * The cache served ("smtpd", "smtp", "lmtp"): a store several caches may
   * share (BackendInfo.sharedByCaches) keeps each cache's keys apart by it,
   * and a sealed store binds its values to it.
   */
  cache?: string;
}

export type BackendOpener = (name: string, opts: BackendOpenOptions) => Promise<CacheBackend>;

/** A backend's description for the start-up info line and the registry. */
export interface BackendInfo {
  open: BackendOpener;
  /** Map types this entry serves, its own type first, e.g. ["lmdb", "btree", "hash"]. */
  types: string[];
  /** File the map name becomes (e.g. name + ".lmdb"), undefined when not file-based. */
  fileFor?(name: string): string;
  /** What serves the map, for the start-up info line, e.g. "LMDB". */
  kind?: string;
  /**
   * True when one map name may serve several caches at once (a shared store
   * that namespaces keys by BackendOpenOptions.cache): cache-set.ts then
   * does not refuse the same database for two caches.
   */
  sharedByCaches?: boolean;
}

const registry = new Map<string, BackendInfo>();

/** registerBackend - make a map type openable. */
export function registerBackend(info: BackendInfo): void {
  for (const t of info.types) registry.set(t, info);
}

/** backendInfo - the registry entry of a map type, or undefined. */
export function backendInfo(type: string): BackendInfo | undefined {
  return registry.get(type);
}

/** splitMapName - "type:name" into its parts; undefined when there is no type. */
export function splitMapName(spec: string): { type: string; name: string } | undefined {
  const colon = spec.indexOf(":");
  if (colon <= 0) return undefined;
  return { type: spec.slice(0, colon), name: spec.slice(colon + 1) };
}
