/**
 * backend.ts - the storage interface every session cache backend implements,
 *              and the registry from map type ("lmdb", "memory", ...) to opener.
 * Owns: CacheBackend (as small as Postfix's DICT), BackendOpener, the registry.
 * Not here: timestamps, expiry and the sweep (cache/scache.ts); the backends
 *           themselves (cache/backends/*.ts).
 * See also: postfix/src/util/dict.h, dict_open.c; test/conformance/backend-suite.ts
 */

export interface CacheBackend {
  /** For diagnostics: the map type and name as written in main.cf. */
  readonly type: string;
  readonly name: string;
  /** The value stored under key, or undefined when there is none. */
  lookup(key: string): Promise<Buffer | undefined>;
  /** Store value under key, replacing what was there. */
  update(key: string, value: Buffer): Promise<void>;
  /** Remove key; true when something was removed. */
  delete(key: string): Promise<boolean>;
  /**
   * Walk every entry. Must survive the deletion of the entry it stands on
   * (and of others) while the walk is in progress.
   */
  sequence(): AsyncIterable<[string, Buffer]>;
  close(): Promise<void>;
}

export interface BackendOpenOptions {
  /** Create the store empty, or empty it when it exists (tls_scache at start-up). */
  truncate: boolean;
}

export type BackendOpener = (name: string, opts: BackendOpenOptions) => Promise<CacheBackend>;

/** A backend's description for the start-up info line and the registry. */
export interface BackendInfo {
  open: BackendOpener;
  /** Map types this entry serves, e.g. ["lmdb", "btree", "hash"]. */
  types: string[];
  /** File the map name becomes (e.g. name + ".lmdb"), undefined when not file-based. */
  fileFor?(name: string): string;
}

const registry = new Map<string, BackendInfo>();

/** registerBackend - make a map type openable. */
export function registerBackend(info: BackendInfo): void {
  for (const t of info.types) registry.set(t, info);
}

export function backendInfo(type: string): BackendInfo | undefined {
  return registry.get(type);
}

export function knownMapTypes(): string[] {
  return [...registry.keys()].sort();
}

/** splitMapName - "type:name" into its parts; undefined when there is no type. */
export function splitMapName(spec: string): { type: string; name: string } | undefined {
  const colon = spec.indexOf(":");
  if (colon <= 0) return undefined;
  return { type: spec.slice(0, colon), name: spec.slice(colon + 1) };
}
