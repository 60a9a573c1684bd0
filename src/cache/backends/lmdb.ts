/**
 * lmdb.ts - the LMDB session cache backend (npm "lmdb", v3), which also serves
 *           the Berkeley DB map types "btree" and "hash" (no Berkeley DB here).
 * Owns: the file name (map name + ".lmdb" for all three types), create or
 *       truncate at open, raw binary keys and values, the write-behind overlay,
 *       the chunked walk, the encoding of keys LMDB cannot hold.
 * Not here: timestamps and expiry (cache/scache.ts); which types exist (backends/index.ts).
 * See also: postfix/src/util/dict_lmdb.c, cache/backend.ts, test/conformance/lmdb.test.ts
 *
 * Storage: key = the UTF-8 bytes of the cache id, value = the bytes as given;
 * no msgpack, no compression, no hex (half of Postfix's hex bytes per entry).
 * The file is opened with noSync: the cache is truncated at every start-up,
 * so durability buys nothing, and commits cost a few microseconds.
 *
 * Reads use the synchronous get() on the memory map. get() copies the value
 * once (lmdb-js otherwise hands out one global buffer that the next get()
 * overwrites; the caller keeps ours across awaits, so the copy is required).
 * The walk reads range values, which lmdb-js also copies.
 *
 * Writes: lmdb-js batches put()/remove() and commits them on a worker thread;
 * a write is not visible to get() until its commit (~100-200 us later). So
 * that a lookup after an update sees the update at once, and update() need
 * not wait for the commit, written and deleted keys wait in an overlay Map
 * until their commit lands. Writes are applied in call order, so the overlay
 * and the file always agree in the end.
 *
 * Map size: the LMDB bundled with lmdb-js v3 grows the map by itself (it
 * starts at 128 KiB); no mapSize is set.
 *
 * Keys: LMDB refuses empty keys and keys over 1978 bytes (4 KiB pages). Keys
 * of 1..RAW_KEY_MAX bytes are stored raw. Others (empty or longer) are stored
 * under a LONG_KEY_LEN-byte key (a prefix of the id, zero padding, SHA-256 of
 * the id) whose value begins with a 4-byte big-endian length and the id itself;
 * the length of the stored key tells the two forms apart.
 */

import { createHash } from "node:crypto";
import { rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { open, type RootDatabase, type RootDatabaseOptionsWithPath } from "lmdb";
import type { BackendInfo, BackendOpenOptions, CacheBackend } from "../backend.js";

export const LMDB_MAP_TYPES = ["lmdb", "btree", "hash"];
export const LMDB_SUFFIX = ".lmdb";

/** Longest key stored as it is. */
export const RAW_KEY_MAX = 1024;
const LONG_KEY_PREFIX = RAW_KEY_MAX - 32 + 1;
/** Length of a stored key for an empty or long id: longer than any raw key. */
export const LONG_KEY_LEN = LONG_KEY_PREFIX + 32;
/** Entries read per range call during a walk (each call opens a fresh read snapshot). */
const WALK_CHUNK = 128;

type Db = RootDatabase<Buffer, Buffer>;

/** A write waiting for its commit: the value, or null for a delete. */
interface Pending {
  value: Buffer | null;
  seq: number;
}

/** lmdbFileFor - the file that holds map name N: N.lmdb, as Postfix's lmdb: map. */
export function lmdbFileFor(name: string): string {
  return name + LMDB_SUFFIX;
}

/** encodeKey - the stored key of an id (see the header). */
function encodeKey(id: string): { key: Buffer; long: Buffer | undefined } {
  const raw = Buffer.from(id, "utf8");
  if (raw.length > 0 && raw.length <= RAW_KEY_MAX) return { key: raw, long: undefined };
  const key = Buffer.alloc(LONG_KEY_LEN);
  raw.copy(key, 0, 0, Math.min(raw.length, LONG_KEY_PREFIX));
  createHash("sha256").update(raw).digest().copy(key, LONG_KEY_PREFIX);
  return { key, long: raw };
}

/** wrapLong - the stored value of a long id: length, id, value. */
function wrapLong(id: Buffer, value: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + id.length + value.length);
  out.writeUInt32BE(id.length, 0);
  id.copy(out, 4);
  value.copy(out, 4 + id.length);
  return out;
}

/** unwrapLong - split a long-id value into the id and the value; undefined when malformed. */
function unwrapLong(stored: Buffer): { id: Buffer; value: Buffer } | undefined {
  if (stored.length < 4) return undefined;
  const len = stored.readUInt32BE(0);
  if (4 + len > stored.length) return undefined;
  return { id: stored.subarray(4, 4 + len), value: stored.subarray(4 + len) };
}

/** LmdbBackend - one LMDB file, one unnamed database. */
export class LmdbBackend implements CacheBackend {
  readonly type: string;
  readonly name: string;
  /** The file on disk. */
  readonly file: string;
  #db: Db;
  #pending = new Map<string, Pending>();
  #seq = 0;
  #closed = false;

  constructor(type: string, name: string, file: string, db: Db) {
    this.type = type;
    this.name = name;
    this.file = file;
    this.#db = db;
  }

  /** lookup - the overlay first, then the committed file. */
  async lookup(id: string): Promise<Buffer | undefined> {
    const p = this.#pending.get(id);
    if (p) return p.value ?? undefined;
    return this.#readCommitted(id);
  }

  #readCommitted(id: string): Buffer | undefined {
    const { key, long } = encodeKey(id);
    const stored = this.#db.get(key);
    if (stored === undefined || long === undefined) return stored;
    const u = unwrapLong(stored);
    return u && u.id.equals(long) ? u.value : undefined;
  }

  async update(id: string, value: Buffer): Promise<void> {
    if (this.#closed) throw new Error(`${this.type}:${this.name}: update after close`);
    const { key, long } = encodeKey(id);
    this.#write(id, value, this.#db.put(key, long ? wrapLong(long, value) : value));
  }

  async delete(id: string): Promise<boolean> {
    if (this.#closed) throw new Error(`${this.type}:${this.name}: delete after close`);
    const p = this.#pending.get(id);
    const existed = p ? p.value !== null : this.#readCommitted(id) !== undefined;
    if (!existed) return false;
    this.#write(id, null, this.#db.remove(encodeKey(id).key));
    return existed;
  }

  /** #write - put a queued write in the overlay until its commit lands. */
  #write(id: string, value: Buffer | null, commit: Promise<boolean>): void {
    const seq = ++this.#seq;
    this.#pending.set(id, { value, seq });
    const settle = () => {
      if (this.#pending.get(id)?.seq === seq) this.#pending.delete(id);
    };
    // A failed commit (disk full, ...) drops the write: the entry reads as
    // its last committed state, which for a cache is only a lost entry.
    commit.then(settle, settle);
  }

  /**
   * sequence - walk in key order, WALK_CHUNK entries per range call. Each
   * call starts just past the last key met, in a fresh snapshot, so deletes
   * behind or ahead of the walk are harmless and no read transaction stays
   * open across event-loop turns (which would stop LMDB reusing free pages).
   */
  async *sequence(): AsyncGenerator<[string, Buffer]> {
    await this.#db.committed;
    let start: Buffer | undefined;
    for (;;) {
      const chunk: [Buffer, Buffer][] = [];
      if (this.#closed) return;
      for (const { key, value } of this.#db.getRange(start ? { start, limit: WALK_CHUNK } : { limit: WALK_CHUNK })) {
        chunk.push([key, value]);
      }
      if (chunk.length === 0) return;
      const last = chunk[chunk.length - 1]![0];
      start = Buffer.concat([last, ZERO_BYTE]); // the least key after last
      for (const [key, stored] of chunk) {
        let id: string;
        let value: Buffer;
        if (key.length === LONG_KEY_LEN) {
          const u = unwrapLong(stored);
          if (!u) continue;
          id = u.id.toString("utf8");
          value = u.value;
        } else {
          id = key.toString("utf8");
          value = stored;
        }
        const p = this.#pending.get(id);
        if (p) {
          if (p.value === null) continue;
          value = p.value;
        }
        yield [id, value];
      }
    }
  }

  /** close - wait for queued writes, then close the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#db.committed;
    this.#pending.clear();
    await this.#db.close();
  }
}

const ZERO_BYTE = Buffer.from([0]);

/** lmdbOpen - open (create, or truncate when asked) name + ".lmdb". */
export async function lmdbOpen(name: string, opts: BackendOpenOptions): Promise<LmdbBackend> {
  const type = opts.type ?? "lmdb";
  const file = lmdbFileFor(name);
  // As Postfix: the directory must exist (lmdb-js would create it).
  const dir = await stat(dirname(file));
  if (!dir.isDirectory()) throw Object.assign(new Error(`not a directory: ${dirname(file)}`), { code: "ENOTDIR" });
  if (opts.truncate) {
    // Unlink rather than clear: a fresh file, no pages left from a crashed run.
    await rm(file, { force: true });
    await rm(file + "-lock", { force: true });
  }
  const options: RootDatabaseOptionsWithPath & { permissionsMode: number } = {
    path: file,
    noSubdir: true,
    keyEncoding: "binary",
    encoding: "binary",
    compression: false,
    cache: false,
    noSync: true,
    pageSize: 4096,
    maxDbs: 1,
    permissionsMode: 0o600,
  };
  const db = open<Buffer, Buffer>(options);
  return new LmdbBackend(type, name, file, db);
}

export const lmdbBackendInfo: BackendInfo = {
  types: LMDB_MAP_TYPES,
  open: lmdbOpen,
  fileFor: lmdbFileFor,
  kind: "LMDB",
};
