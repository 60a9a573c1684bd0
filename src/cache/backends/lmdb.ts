/**
 * lmdb.ts - the LMDB session cache backend (npm "lmdb", v3), which also serves
 *           the Berkeley DB map types "btree" and "hash" (no Berkeley DB here).
 * Owns: the file name (map name + ".lmdb" for all three types), create or
 *       truncate at open, raw binary keys and values, the write-behind overlay,
 *       the chunked walk, the encoding of keys LMDB cannot hold.
 * Not here: timestamps and expiry (cache/scache.ts); which types exist (backends/index.ts);
 *           the latency and error counters it bumps (stats/counters.ts lmdbCounters).
 * See also: postfix/src/util/dict_lmdb.c, cache/backend.ts, test/conformance/lmdb.test.ts
 *
 * Storage: key = the UTF-8 bytes of the cache id, value = the bytes as given;
 * no msgpack, no compression, no hex (half of Postfix's hex bytes per entry).
 * The file is opened with noSync: the cache is truncated at every start-up,
 * so durability buys nothing, and commits cost a few microseconds.
 *
 * Reads are synchronous, on the memory map: lookup() copies the value (the
 * caller may keep it), peek() hands out lmdb-js's shared read buffer (valid
 * until the next read; the request path encodes it into the reply at once).
 *
 * Writes are batched by this backend, not by lmdb-js: update() and delete()
 * put the write in an overlay Map (so the next lookup sees it) and return;
 * the overlay is written to the file in ONE synchronous transaction when it
 * holds FLUSH_MAX_ENTRIES writes or FLUSH_MAX_BYTES of values, or else:
 * while the process is busy (it used FLUSH_BATCH_CPU of a CPU over the last
 * window, see util/loop-busy.ts), FLUSH_DELAY_MS after its first write, so that one
 * transaction carries many writes; while it is not, at the end of the
 * current event-loop turn (setImmediate), just after the reply went out.
 * A quiet daemon (one client at a time) thus writes each update while its
 * client reads the reply, instead of a batch of ten every 2 ms in the gap
 * where the next request arrives: that batch (about 100 us) delayed 3 % of
 * all requests, which made our p99 at one client worse than Postfix's
 * (docs/benchmarks.md, "The tail at one client"). A transaction
 * costs a fixed part (begin, commit) and a part per write; on the main thread
 * it is about 9 us per write in batches of 16 or more, against a round trip
 * through libuv's thread pool and back per write (60-80 us of CPU) when
 * lmdb-js commits each one itself (see docs/benchmarks.md). No sync: the
 * cache is truncated at every start, so durability buys nothing; at most
 * FLUSH_DELAY_MS of writes are lost when the process is killed. (No write
 * map: with useWritemap the bundled LMDB aborts in mdb_freelist_save() when
 * long keys are deleted.) A failed flush (disk full) drops that batch: for a
 * cache that is only lost entries. Then writes are not tried for a back-off
 * (10 s doubling to 300 s; see #writeFailed); one warning per run of
 * failures, and an info line with the count of lost entries when writes
 * succeed again.
 *
 * Page size 4096 (LMDB's usual): a session of up to 4080 bytes with its
 * header then takes at most one overflow page. With 2 KiB pages the file was
 * 5 % smaller, but two thirds of the values needed runs of two contiguous
 * pages, and LMDB searches its free list linearly for runs: after a sweep
 * had freed a million pages, single commits took tens of milliseconds.
 *
 * Map size: the LMDB bundled with lmdb-js v3 grows the map by itself; no
 * mapSize is set.
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
import { errorText } from "../../log/errors.js";
import { msgInfo, msgWarn } from "../../log/msg.js";
import { LoopBusyGauge } from "../../util/loop-busy.js";
import { lmdbCounters } from "../../stats/counters.js";
import { lmdbWriteErrorText } from "./lmdb-errno.js";

export const LMDB_MAP_TYPES = ["lmdb", "btree", "hash"];
export const LMDB_SUFFIX = ".lmdb";

/** Longest key stored as it is (LMDB's limit is 1978 bytes with 4 KiB pages; ids are about 100). */
export const RAW_KEY_MAX = 512;
const LONG_KEY_PREFIX = RAW_KEY_MAX - 32 + 1;
/** Length of a stored key for an empty or long id: longer than any raw key. */
export const LONG_KEY_LEN = LONG_KEY_PREFIX + 32;
/** Entries read per range call during a walk (each call opens a fresh read snapshot). */
const WALK_CHUNK = 128;
/** The overlay is flushed at once when it holds this many writes... */
export const FLUSH_MAX_ENTRIES = 256;
/** ...or this many bytes of values... */
export const FLUSH_MAX_BYTES = 1024 * 1024;
/** ...and otherwise, while the event loop is busy, this long after its first write... */
export const FLUSH_DELAY_MS = 2;
/** ...busy meaning: it used at least this share of a CPU over the last window (else: at the end of the turn). */
export const FLUSH_BATCH_CPU = 0.9;
/** After a failed write, writes are dropped for this long (ms), doubling up to WRITE_BACKOFF_MAX_MS. */
export const WRITE_BACKOFF_FIRST_MS = 10_000;
export const WRITE_BACKOFF_MAX_MS = 300_000;
/** LMDB page size of the files this backend creates (see the header). */
export const LMDB_PAGE_SIZE = 4096;

type Db = RootDatabase<Buffer, Buffer>;

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

/** LmdbBackend - one LMDB file, one unnamed database, writes batched through an overlay. */
export class LmdbBackend implements CacheBackend {
  readonly type: string;
  readonly name: string;
  /** The file on disk. */
  readonly file: string;
  #db: Db;
  /** Writes not yet in the file: the value, or null for a delete. */
  #pending = new Map<string, Buffer | null>();
  #pendingBytes = 0;
  /** The flush to come: a timer (busy loop), an immediate (end of this turn), or none. */
  #flushTimer: NodeJS.Timeout | undefined;
  #flushImmediate: NodeJS.Immediate | undefined;
  /** Flushes so far: a walk re-reads its chunk after one (see sequence()). */
  #flushes = 0;
  /** Entries lost since writes began to fail (one warning per run of failures), or -1 while writes succeed. */
  #lostSinceFailing = -1;
  /** While writes fail: no write is tried before this time (ms), and the current back-off. */
  #writesResumeAt = 0;
  #backoffMs = 0;
  #closed = false;

  constructor(type: string, name: string, file: string, db: Db) {
    this.type = type;
    this.name = name;
    this.file = file;
    this.#db = db;
  }

  /** lookup - the overlay first, then the file; a copy the caller may keep. */
  lookup(id: string): Buffer | undefined {
    const p = this.#pending.get(id);
    if (p !== undefined) return p ?? undefined;
    const v = this.#readCommitted(id);
    return v === undefined ? undefined : Buffer.from(v);
  }

  /** peek - as lookup(), without the copy: valid until the next call (see the header). */
  peek(id: string): Buffer | undefined {
    const p = this.#pending.get(id);
    if (p !== undefined) return p ?? undefined;
    return this.#readCommitted(id);
  }

  /** #readCommitted - the value in the file, in lmdb-js's shared read buffer. */
  #readCommitted(id: string): Buffer | undefined {
    const { key, long } = encodeKey(id);
    const t0 = performance.now();
    const fast = this.#db.getBinaryFast(key);
    lmdbCounters.read.observeSince(t0);
    if (fast === undefined) return undefined;
    // lmdb-js's reused buffer is longer than the value and fakes its length:
    // a plain view of the value's bytes (no copy) is safe to slice.
    const stored = Buffer.from(fast.buffer, fast.byteOffset, (this.#db as unknown as { lastSize: number }).lastSize);
    if (long === undefined) return stored;
    const u = unwrapLong(stored);
    return u && u.id.equals(long) ? u.value : undefined;
  }

  update(id: string, value: Buffer): void {
    if (this.#closed) throw new Error(`${this.type}:${this.name}: update after close`);
    this.#queue(id, value);
  }

  delete(id: string): boolean {
    if (this.#closed) throw new Error(`${this.type}:${this.name}: delete after close`);
    const p = this.#pending.get(id);
    const existed = p !== undefined ? p !== null : this.#readCommitted(id) !== undefined;
    if (existed) this.#queue(id, null);
    return existed;
  }

  /** pendingWrites - writes waiting in the overlay for the next flush (for tests and statistics). */
  get pendingWrites(): number {
    return this.#pending.size;
  }

  /** #queue - put a write in the overlay; flush now when it is full, else arm the timer. */
  #queue(id: string, value: Buffer | null): void {
    const old = this.#pending.get(id);
    if (old) this.#pendingBytes -= old.length;
    // Delete first: a Map keeps insertion order, and the flush must write in call order.
    this.#pending.delete(id);
    this.#pending.set(id, value);
    if (value) this.#pendingBytes += value.length;
    if (this.#pending.size >= FLUSH_MAX_ENTRIES || this.#pendingBytes >= FLUSH_MAX_BYTES) this.flush();
    else if (this.#flushTimer === undefined && this.#flushImmediate === undefined) {
      if (loopGauge.busy()) this.#flushTimer = setTimeout(this.#onFlushTimer, FLUSH_DELAY_MS);
      else this.#flushImmediate = setImmediate(this.#onFlushTimer);
    }
  }

  #onFlushTimer = (): void => {
    this.#flushTimer = undefined;
    this.#flushImmediate = undefined;
    this.flush();
  };

  /**
   * flush - write the overlay to the file in one transaction. A failure
   * drops the batch with a warning (lost cache entries, nothing else).
   */
  flush(): void {
    if (this.#flushTimer !== undefined) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    if (this.#flushImmediate !== undefined) {
      clearImmediate(this.#flushImmediate);
      this.#flushImmediate = undefined;
    }
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    this.#pendingBytes = 0;
    this.#flushes++;
    if (this.#backoffMs > 0 && Date.now() < this.#writesResumeAt) {
      this.#lostSinceFailing += batch.size; // backing off after a failed write (see #writeFailed)
      return;
    }
    const t0 = performance.now();
    try {
      this.#db.transactionSync(() => {
        for (const [id, value] of batch) {
          const { key, long } = encodeKey(id);
          try {
            if (value === null) this.#db.removeSync(key);
            else this.#db.putSync(key, long ? wrapLong(long, value) : value);
          } catch (err) {
            // One entry LMDB refuses must not cost the others their place.
            lmdbCounters.errors++;
            msgWarn(`${this.type}:${this.name}: cannot write cache entry: ${errorText(err)}`);
          }
        }
      });
    } catch (err) {
      lmdbCounters.errors++;
      let bytes = 0;
      for (const v of batch.values()) bytes += v?.length ?? 0;
      this.#writeFailed(batch.size, err, bytes);
      return;
    }
    lmdbCounters.commit.observeSince(t0);
    if (this.#lostSinceFailing >= 0) {
      msgInfo(`${this.type}:${this.name}: cache writes succeed again; ${this.#lostSinceFailing} entries were not stored`);
      this.#lostSinceFailing = -1;
      this.#backoffMs = 0;
    }
  }

  /**
   * #writeFailed - a batch could not be written (disk full, file size limit):
   * its entries are lost (cache misses later). One warning per run of
   * failures, not one per batch, and no write is tried for a back-off that
   * doubles from WRITE_BACKOFF_FIRST_MS to WRITE_BACKOFF_MAX_MS: a full disk
   * gains nothing from hundreds of failing commits a second, and lmdb-js
   * 3.5.6 was seen to abort the process (free(): invalid pointer) after a
   * series of failed synchronous commits.
   */
  #writeFailed(entries: number, err: unknown, bytes: number): void {
    this.#backoffMs = Math.min(WRITE_BACKOFF_MAX_MS, Math.max(WRITE_BACKOFF_FIRST_MS, this.#backoffMs * 2));
    this.#writesResumeAt = Date.now() + this.#backoffMs;
    if (this.#lostSinceFailing < 0) {
      // LMDB reports a full disk as EIO: lmdb-errno.ts finds the real cause (statfs, asynchronously).
      const backoff = this.#backoffMs;
      void lmdbWriteErrorText(err, this.file, bytes).then((why) =>
        msgWarn(
          `${this.type}:${this.name}: cannot write cache entries: ${why};` +
            ` new entries are not stored for ${backoff / 1000}s, then tried again`,
        ),
      );
      this.#lostSinceFailing = 0;
    }
    this.#lostSinceFailing += entries;
  }

  /**
   * sequence - walk in key order, WALK_CHUNK entries per range call. Each
   * call starts just past the last key met, in a fresh snapshot, so deletes
   * behind or ahead of the walk are harmless and no read transaction stays
   * open across event-loop turns (which would stop LMDB reusing free pages).
   * The overlay is flushed first (so the walk meets every write made before
   * it); entries of a chunk are checked against the overlay, and a flush
   * during the walk makes it read the rest of its chunk again from the file.
   * Synchronous: the caller decides where to yield between entries.
   */
  *sequence(): Generator<[string, Buffer]> {
    this.flush();
    let start: Buffer | undefined;
    for (;;) {
      if (this.#closed) return;
      const chunk: [Buffer, Buffer][] = [];
      for (const { key, value } of this.#db.getRange(start ? { start, limit: WALK_CHUNK } : { limit: WALK_CHUNK })) {
        chunk.push([key, value]);
      }
      if (chunk.length === 0) return;
      const generation = this.#flushes;
      for (const [key, stored] of chunk) {
        if (this.#flushes !== generation) break; // the rest of the chunk may be stale
        start = Buffer.concat([key, ZERO_BYTE]); // the least key after this one
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
        if (p !== undefined) {
          if (p === null) continue;
          value = p;
        }
        yield [id, value];
      }
    }
  }

  /** close - write what the overlay holds, then close the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    await this.#db.close();
  }
}

const ZERO_BYTE = Buffer.from([0]);
/** One gauge for every LMDB file of the process: the loop is one. */
let loopGauge: { busy(): boolean } = new LoopBusyGauge(FLUSH_BATCH_CPU);

/** lmdbSetLoopGauge - tests: what says "the loop is busy" (batch by timer); the previous one. */
export function lmdbSetLoopGauge(gauge: { busy(): boolean }): { busy(): boolean } {
  const old = loopGauge;
  loopGauge = gauge;
  return old;
}

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
    pageSize: LMDB_PAGE_SIZE,
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
