/**
 * scache.ts - one TLS session cache over any backend: Postfix's tls_scache rules.
 * Owns: the stored entry (timestamp + session bytes), expiry at lookup, the
 *       expiry sweep (sliced walk, one at a time, cursor protection, timer),
 *       the cache-operation log lines (*_tls_loglevel >= 2), the operations
 *       a request handler uses (SessionCacheOps), the one check of a
 *       cache database's "type:name" (scacheMapCheck), and bumping the
 *       cache's counters (lookups, updates, deletes, sweeps).
 * Not here: storage (cache/backends/*), which caches exist and their
 *           configuration (cache/cache-set.ts), the wire (server/handlers.ts),
 *           the entry and byte account and the limits (cache/cache-bound.ts),
 *           the counters themselves (stats/counters.ts).
 * See also: postfix/src/tls/tls_scache.c, postfix/src/tlsmgr/tlsmgr.c
 *           (tlsmgr_cache_run_event, tlsmgr_loop), cache/backend.ts
 *
 * Stored value: an 8-byte big-endian signed count of seconds since the epoch
 * (the time of the update, from the injected Clock), then the session bytes
 * as given, raw. (Postfix stores the hex of a native time_t and the session.)
 * An entry is expired when timestamp + timeout < now, as in Postfix. A value
 * shorter than the header is malformed, and so is one dated more than
 * SCACHE_CLOCK_SKEW seconds in the future (Postfix takes those: a far-future
 * time kept a planted entry for ever). Expired and malformed entries are
 * misses and are deleted when met, by lookup or by the sweep.
 *
 * Sweep: a walk of the whole cache with backend.sequence(), interleaved with
 * requests: at most SWEEP_SLICE_MAX entries and about SWEEP_SLICE_MS per
 * event-loop turn. Between slices the sweep rests for SWEEP_REST_FACTOR times
 * as long as the slice ran (a timer, so requests that arrive meanwhile are
 * served first), and the caches sweep one at a time: sweeping takes at most
 * about a tenth of the daemon's time,
 * and a busy daemon's throughput and latency stay nearly as without it (see
 * docs/benchmarks.md). The entry the walk stands on
 * (the cursor) is protected: delete() of it answers true and leaves it (as
 * tls_scache_delete). The sweep deletes an expired entry only after reading
 * it again, and not when an update of it arrived while the cursor stood on
 * it (Postfix's "delete behind" through tls_scache_lookup).
 *
 * Never log session bytes: log lines carry the id, the time and the length.
 */

import { backendInfo, splitMapName, type BackendInfo, type CacheBackend, type MaybePromise } from "./backend.js";
import { CacheAccount, entrySize, type CacheLimitParams, type CacheLimits } from "./cache-bound.js";
import { ERR_BACKEND_UNAVAILABLE, errorCode, errorText } from "../log/errors.js";
import { FatalError, msgFatal, msgInfo, msgWarn, printable } from "../log/msg.js";
import { systemClock, type Clock } from "../util/clock.js";
import { CacheCounters } from "../stats/counters.js";

/** Bytes before the session: the big-endian timestamp. */
export const SCACHE_HEADER_LEN = 8;
/** An entry dated more than this many seconds ahead of this host's clock is malformed (hosts sharing a store disagree by less). */
export const SCACHE_CLOCK_SKEW = 60;
/** At most one warning about entries from the future per this many milliseconds. */
const FUTURE_WARN_INTERVAL_MS = 60_000;
/** At most this many entries per sweep slice (one event-loop turn). */
export const SWEEP_SLICE_MAX = 512;
/** A slice ends once it has run this long (checked every 16 entries). */
export const SWEEP_SLICE_MS = 0.5;
/** Rest after a slice, as a multiple of the time the slice ran (duty cycle 1 / (1 + factor)). */
export const SWEEP_REST_FACTOR = 9;
/** Ids in log lines are cut to this many characters. */
const ID_LOG_MAX = 256;
/** Longest delay setTimeout() accepts. */
const TIMER_MAX_MS = 2 ** 31 - 1;

export interface SessionCacheOptions {
  /** "smtpd", "smtp" or "lmtp": the cache label in log lines. */
  label: string;
  backend: CacheBackend;
  /** Seconds an entry stays valid; also the sweep period. Must be > 0. */
  timeout: number;
  /** Cache-operation logging (TLS_LOG_CACHE: *_tls_loglevel >= 2). */
  verbose?: boolean;
  clock?: Clock;
  /** Called for each entry the sweep meets (raw stored value), e.g. to feed the PRNG pool. */
  onSweepEntry?: (id: string, value: Buffer) => void;
  /** Entry and byte limits (0: none); only for a store of this process (cache/cache-bound.ts). */
  limits?: CacheLimits;
  /** The limits' parameter names, for the warning when eviction starts. */
  limitParams?: CacheLimitParams;
}

/**
 * warnUnlessOutage - a backend failure warning, except while the backend is
 * known to be unreachable (code ERR_BACKEND_UNAVAILABLE): the backend then
 * logs one warning per outage itself (the Redis link), not one per request.
 */
function warnUnlessOutage(err: unknown, text: string): void {
  if (errorCode(err, "") === ERR_BACKEND_UNAVAILABLE) return;
  msgWarn(text);
}

/** The sweeps of all caches run one at a time (see inSweepTurn). */
let sweepQueue: Promise<void> = Promise.resolve();

/**
 * inSweepTurn - run a sweep after the sweeps already queued: the smtpd and
 * smtp caches fall due together, and two walks at once would double the
 * share of the daemon's time that sweeping takes from requests.
 */
function inSweepTurn<T>(fn: () => Promise<T>): Promise<T> {
  const run = sweepQueue.then(fn);
  sweepQueue = run.then(
    () => undefined,
    () => undefined,
  );
  return run;
}

/**
 * sweepRest - yield after a sweep slice that ran `ms`: at least one full
 * event-loop turn (requests first), and a rest of SWEEP_REST_FACTOR * ms.
 */
function sweepRest(ms: number): Promise<void> {
  const rest = ms * SWEEP_REST_FACTOR;
  if (rest < 1) return new Promise<void>((resolve) => setImmediate(resolve));
  return new Promise<void>((resolve) => setTimeout(resolve, Math.ceil(rest)));
}

/** What the last sweep did. */
export interface SweepStats {
  /** Entries met. */
  seen: number;
  /** Expired or malformed entries deleted. */
  deleted: number;
  /** Wall time from start to end, milliseconds. */
  ms: number;
  /** false when close() or a backend error cut the walk short. */
  completed: boolean;
}

/** scacheEncode - the stored value: timestamp header + session bytes. */
export function scacheEncode(now: number, session: Buffer): Buffer {
  const out = Buffer.allocUnsafe(SCACHE_HEADER_LEN + session.length);
  const hi = Math.floor(now / 0x1_0000_0000);
  out.writeInt32BE(hi, 0);
  out.writeUInt32BE(now - hi * 0x1_0000_0000, 4);
  session.copy(out, SCACHE_HEADER_LEN);
  return out;
}

/** scacheTime - the timestamp of a stored value; undefined when it is too short. */
export function scacheTime(value: Buffer): number | undefined {
  if (value.length < SCACHE_HEADER_LEN) return undefined;
  return value.readInt32BE(0) * 0x1_0000_0000 + value.readUInt32BE(4);
}

function logId(id: string): string {
  return printable(id, ID_LOG_MAX);
}

/**
 * SessionCacheOps - what a request handler does with a cache
 * (server/handlers.ts); synchronous when the store is. A Buffer from a
 * synchronous lookup is valid only until the next cache call: use it at once.
 */
export interface SessionCacheOps {
  lookup(id: string): MaybePromise<Buffer | undefined>;
  update(id: string, session: Buffer): MaybePromise<boolean>;
  delete(id: string): MaybePromise<boolean>;
}

/** SessionCache - timestamps, expiry and the sweep over one backend. */
export class SessionCache implements SessionCacheOps {
  readonly label: string;
  readonly backend: CacheBackend;
  readonly timeout: number;
  readonly verbose: boolean;
  onSweepEntry: ((id: string, value: Buffer) => void) | undefined;
  /** Statistics of the last finished sweep. */
  lastSweep: SweepStats | undefined;
  /** This cache's counters (stats/counters.ts). */
  readonly counters = new CacheCounters();
  /** Entries and bytes held, and the limits: for a store of this process only (not one that expires by itself). */
  readonly account: CacheAccount | undefined;
  #clock: Clock;
  #sweep: Promise<void> | undefined;
  #cursor: string | undefined;
  #cursorUpdated = false;
  #timer: NodeJS.Timeout | undefined;
  #futureWarned = -Infinity;
  #stopping = false;
  #closed = false;

  constructor(opts: SessionCacheOptions) {
    if (!(opts.timeout > 0)) throw new RangeError(`session cache timeout must be > 0: ${opts.timeout}`);
    this.label = opts.label;
    this.backend = opts.backend;
    this.timeout = opts.timeout;
    this.verbose = opts.verbose ?? false;
    this.#clock = opts.clock ?? systemClock;
    this.onSweepEntry = opts.onSweepEntry;
    const backend = opts.backend;
    const peek = backend.peek?.bind(backend);
    this.account =
      peek && !backend.expiresByItself
        ? new CacheAccount({
            label: `${opts.label} TLS cache ${backend.type}:${backend.name}`,
            counters: this.counters,
            ...(opts.limits ? { limits: opts.limits } : {}),
            ...(opts.limitParams ? { params: opts.limitParams } : {}),
            storedLength: (id) => peek(id)?.length ?? -1,
            evict: (id) => void this.#backendDelete(id, -1),
          })
        : undefined;
    if (!this.account && opts.limits && (opts.limits.entries > 0 || opts.limits.bytes > 0))
      msgWarn(
        `${opts.label} TLS cache ${backend.type}:${backend.name}: ` +
          `${opts.limitParams ? `${opts.limitParams.entries} and ${opts.limitParams.bytes}` : "entry and byte limits"} ` +
          "do not apply to a store that expires entries itself: bound it with the server's own memory policy",
      );
  }

  /** #valid - true when the stored value is usable now; warns about malformed ones. */
  #valid(id: string, value: Buffer, now: number): boolean {
    const stamp = scacheTime(value);
    if (stamp === undefined) {
      msgWarn(`${this.label} TLS cache: truncated entry for ${logId(id)}`);
      return false;
    }
    if (this.verbose)
      msgInfo(
        `read ${this.label} TLS cache entry ${logId(id)}: time=${stamp} [data ${value.length - SCACHE_HEADER_LEN} bytes]`,
      );
    if (stamp > now + SCACHE_CLOCK_SKEW) {
      const t = performance.now();
      if (t - this.#futureWarned >= FUTURE_WARN_INTERVAL_MS) {
        this.#futureWarned = t;
        msgWarn(`${this.label} TLS cache: entry for ${logId(id)} is dated ${stamp - now}s in the future: deleted (is a clock wrong?)`);
      }
      return false;
    }
    return !(stamp + this.timeout < now);
  }

  /**
   * lookup - the session bytes, or undefined (absent, expired or malformed:
   * then deleted). Synchronous when the backend is; the Buffer is then
   * valid only until the next call into this cache (backend peek()): use it
   * at once.
   */
  lookup(id: string): MaybePromise<Buffer | undefined> {
    if (this.verbose) msgInfo(`lookup ${this.label} session id=${logId(id)}`);
    if (this.#closed) return undefined;
    let found: MaybePromise<Buffer | undefined>;
    try {
      found = this.backend.peek ? this.backend.peek(id) : this.backend.lookup(id);
    } catch (err) {
      this.counters.error++;
      this.#lookupFailed(id, err);
      return undefined;
    }
    if (found instanceof Promise)
      return found.then(
        (value) => this.#usable(id, value),
        (err: unknown) => {
          this.counters.error++;
          return this.#lookupFailed(id, err);
        },
      );
    return this.#usable(id, found);
  }

  #lookupFailed(id: string, err: unknown): undefined {
    warnUnlessOutage(err, `${this.label} TLS cache: cannot look up entry for ${logId(id)}: ${errorText(err)}`);
    return undefined;
  }

  /** #usable - the session of a stored value, or undefined (expired or malformed: deleted). */
  #usable(id: string, value: Buffer | undefined): Buffer | undefined {
    if (value === undefined) {
      this.counters.miss++;
      return undefined;
    }
    if (!this.#valid(id, value, this.#clock.now())) {
      this.counters.expired++;
      const done = this.#delete(id, value.length);
      if (done instanceof Promise) done.catch(() => undefined); // #delete() warns itself
      return undefined;
    }
    this.counters.hit++;
    return value.subarray(SCACHE_HEADER_LEN);
  }

  /** update - store the session stamped with the current time; false when the backend failed. */
  update(id: string, session: Buffer): MaybePromise<boolean> {
    if (this.verbose) msgInfo(`put ${this.label} session id=${logId(id)} [data ${session.length} bytes]`);
    const now = this.#clock.now();
    const value = scacheEncode(now, session);
    if (this.verbose)
      msgInfo(`write ${this.label} TLS cache entry ${logId(id)}: time=${now} [data ${session.length} bytes]`);
    if (this.#closed) return false;
    this.counters.updates++;
    if (id === this.#cursor) this.#cursorUpdated = true;
    const failed = (err: unknown) => {
      warnUnlessOutage(err, `${this.label} TLS cache: cannot update entry for ${logId(id)}: ${errorText(err)}`);
      return false;
    };
    try {
      const account = this.account;
      const old = account ? account.oldSize(id) : -1;
      const done = this.backend.update(id, value);
      if (done instanceof Promise) return done.then(() => true, failed);
      account?.stored(id, value.length, old);
      return true;
    } catch (err) {
      return failed(err);
    }
  }

  /** delete - a client's delete: true when removed or when it is the sweep's cursor (left alone). */
  delete(id: string): MaybePromise<boolean> {
    this.counters.deletes++;
    return this.#delete(id, -1);
  }

  /** #delete - remove the entry unless it is the sweep's cursor; storedLength: its value's, when known (else -1). */
  #delete(id: string, storedLength: number): MaybePromise<boolean> {
    if (this.verbose) msgInfo(`delete ${this.label} session id=${logId(id)}`);
    if (id === this.#cursor) return true;
    if (this.#closed) return false;
    return this.#backendDelete(id, storedLength);
  }

  /**
   * #backendDelete - backend.delete() with failures warned and answered
   * false, and the account told; storedLength: the value's, when known (else -1).
   */
  #backendDelete(id: string, storedLength: number): MaybePromise<boolean> {
    const failed = (err: unknown) => {
      warnUnlessOutage(err, `${this.label} TLS cache: cannot delete entry for ${logId(id)}: ${errorText(err)}`);
      return false;
    };
    try {
      const account = this.account;
      const size = account ? (storedLength >= 0 && !account.bounded ? entrySize(id, storedLength) : account.oldSize(id)) : -1;
      const done = this.backend.delete(id);
      if (done instanceof Promise) return done.catch(failed);
      if (done) account?.removed(id, size);
      return done;
    } catch (err) {
      return failed(err);
    }
  }

  /** sweeping - true while a sweep walks the cache. */
  get sweeping(): boolean {
    return this.#sweep !== undefined;
  }

  /** sweepCursor - the id the running sweep stands on (protected from delete), if any. */
  get sweepCursor(): string | undefined {
    return this.#cursor;
  }

  /** startSweep - begin a sweep now; false when one is running (or the cache is closed). */
  startSweep(): boolean {
    if (this.#sweep || this.#closed) return false;
    const run = inSweepTurn(() => this.#runSweep()).finally(() => {
      if (this.#sweep === run) this.#sweep = undefined;
    });
    this.#sweep = run;
    return true;
  }

  /** sweepDone - resolves when the running sweep (if any) has ended. */
  sweepDone(): Promise<void> {
    return this.#sweep ?? Promise.resolve();
  }

  /**
   * startSweepTimer - Postfix's cache maintenance pseudo thread: a sweep now,
   * then another every timeout seconds (skipped while one still runs). The
   * timer is unref'd: it never keeps the process alive. Nothing happens for a
   * backend that expires entries by itself (a shared store: no host walks it).
   */
  startSweepTimer(): void {
    if (this.#timer || this.#closed || this.backend.expiresByItself) return;
    const tick = () => {
      if (this.verbose) msgInfo(`tlsmgr_cache_run_event: start TLS ${this.label} session cache cleanup`);
      this.startSweep();
      this.#arm(this.timeout * 1000, tick);
    };
    tick();
  }

  /** #arm - run fn after ms milliseconds, in steps setTimeout() can take. */
  #arm(ms: number, fn: () => void): void {
    if (this.#closed) return;
    const wake = ms > TIMER_MAX_MS ? () => this.#arm(ms - TIMER_MAX_MS, fn) : fn;
    this.#timer = setTimeout(wake, Math.min(ms, TIMER_MAX_MS));
    this.#timer.unref();
  }

  /** #runSweep - walk everything, a slice per event-loop turn, deleting expired and malformed entries. */
  async #runSweep(): Promise<void> {
    const t0 = performance.now();
    let seen = 0;
    let deleted = 0;
    let completed = false;
    const walk = this.backend.sequence();
    // A synchronous walk (LMDB, memory) costs no promise per entry.
    const syncIt = Symbol.iterator in walk ? walk[Symbol.iterator]() : undefined;
    const asyncIt = syncIt ? undefined : (walk as AsyncIterable<[string, Buffer]>)[Symbol.asyncIterator]();
    try {
      walk: for (;;) {
        const sliceStart = performance.now();
        const sliceEnd = sliceStart + SWEEP_SLICE_MS;
        for (let n = 0; n < SWEEP_SLICE_MAX; n++) {
          if (this.#stopping) break walk;
          const r = syncIt ? syncIt.next() : await asyncIt!.next();
          if (r.done) {
            completed = true;
            break walk;
          }
          const [id, value] = r.value;
          this.#cursor = id;
          this.#cursorUpdated = false;
          seen++;
          if (this.onSweepEntry) {
            try {
              this.onSweepEntry(id, value);
            } catch {
              /* a broken hook must not stop the sweep */
            }
          }
          if (!this.#valid(id, value, this.#clock.now())) {
            let gone = this.#deleteBehind(id);
            if (gone instanceof Promise) gone = await gone;
            if (gone) deleted++;
          }
          if ((n & 15) === 15 && performance.now() >= sliceEnd) break;
        }
        await sweepRest(performance.now() - sliceStart);
      }
    } catch (err) {
      msgWarn(`${this.label} TLS cache: cleanup stopped: ${errorText(err)}`);
    } finally {
      this.#cursor = undefined;
      this.#cursorUpdated = false;
      if (!completed) {
        try {
          if (syncIt) syncIt.return?.();
          else await asyncIt!.return?.();
        } catch {
          /* the walk is over either way */
        }
      }
    }
    const ms = performance.now() - t0;
    this.lastSweep = { seen, deleted, ms, completed };
    this.counters.sweepSeconds.observe(ms / 1000);
    this.counters.sweepChecked += seen;
    this.counters.swept += deleted;
    this.account?.sweepEnded();
    if (this.verbose)
      msgInfo(
        `tlsmgr_cache_run_event: end TLS ${this.label} session cache cleanup:` +
          ` ${seen} entries, ${deleted} removed, ${ms.toFixed(1)} ms${completed ? "" : " (interrupted)"}`,
      );
  }

  /**
   * #deleteBehind - delete the bad entry under the cursor unless it was
   * replaced since the walk read it (read it again; an update while the
   * cursor stands on it also counts). Synchronous when the backend is.
   */
  #deleteBehind(id: string): MaybePromise<boolean> {
    let current: MaybePromise<Buffer | undefined>;
    try {
      current = this.backend.peek ? this.backend.peek(id) : this.backend.lookup(id);
    } catch (err) {
      this.#lookupFailed(id, err);
      return false;
    }
    if (current instanceof Promise)
      return current.then(
        (value) => this.#deleteIfStillBad(id, value),
        (err: unknown) => {
          this.#lookupFailed(id, err);
          return false;
        },
      );
    return this.#deleteIfStillBad(id, current);
  }

  #deleteIfStillBad(id: string, current: Buffer | undefined): MaybePromise<boolean> {
    if (current === undefined || this.#cursorUpdated) return false;
    const stamp = scacheTime(current);
    const now = this.#clock.now();
    if (stamp !== undefined && stamp <= now + SCACHE_CLOCK_SKEW && !(stamp + this.timeout < now)) return false;
    if (this.verbose) msgInfo(`delete ${this.label} session id=${logId(id)}`);
    return this.#backendDelete(id, current.length);
  }

  /** close - stop the timer and any sweep, then close the backend. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stopping = true;
    await this.sweepDone();
    if (this.verbose) msgInfo(`close ${this.label} TLS cache ${this.backend.type}:${this.backend.name}`);
    await this.backend.close();
  }
}

export interface ScacheOpenOptions {
  clock?: Clock;
  onSweepEntry?: (id: string, value: Buffer) => void;
  /** Entry and byte limits, and their parameter names (cache/cache-bound.ts). */
  limits?: CacheLimits;
  limitParams?: CacheLimitParams;
  /** Put before fatal texts, e.g. "/etc/postfix/main.cf: parameter X: ". */
  context?: string;
}

/** A cache database name taken apart and checked: its map type, name, and the backend serving the type. */
export interface ScacheMap {
  type: string;
  name: string;
  info: BackendInfo;
}

/**
 * scacheMapCheck - the checks dict_open() makes of a cache database name:
 * "type:name" form (a name without "type:" takes defaultType, when one is
 * given) and a type some backend serves. Fatal otherwise, with `where`
 * (e.g. "/etc/postfix/main.cf: parameter X: ") before Postfix's text.
 */
export function scacheMapCheck(spec: string, where: string, defaultType?: string): ScacheMap {
  let map = splitMapName(spec);
  if (map === undefined && defaultType !== undefined && !spec.startsWith(":")) map = { type: defaultType, name: spec };
  if (map === undefined || map.name === "")
    msgFatal(`${where}open dictionary: expecting "type:name" form instead of "${spec}"`);
  const info = backendInfo(map.type);
  if (!info) msgFatal(`${where}unsupported dictionary type: ${map.type}`);
  return { type: map.type, name: map.name, info };
}

/**
 * scacheOpen - tls_scache_open(): open "type:name" created empty or
 * truncated. Fatal (as Postfix) when the form is wrong, the type unknown,
 * or the store cannot be opened.
 */
export async function scacheOpen(
  spec: string,
  label: string,
  verbose: boolean,
  timeout: number,
  opts: ScacheOpenOptions = {},
): Promise<SessionCache> {
  return scacheOpenMap(scacheMapCheck(spec, opts.context ?? ""), label, verbose, timeout, opts);
}

/** scacheOpenMap - scacheOpen() of a name scacheMapCheck() took apart. */
export async function scacheOpenMap(
  map: ScacheMap,
  label: string,
  verbose: boolean,
  timeout: number,
  opts: ScacheOpenOptions = {},
): Promise<SessionCache> {
  if (verbose) msgInfo(`open ${label} TLS cache ${map.type}:${map.name}`);
  let backend: CacheBackend;
  try {
    backend = await map.info.open(map.name, { truncate: true, type: map.type, timeout, cache: label });
  } catch (err) {
    if (err instanceof FatalError) throw err; // logged where it was found (e.g. the redis: table file)
    msgFatal(`${opts.context ?? ""}cannot open ${map.type}:${map.name}: ${errorText(err)}`);
  }
  const cacheOpts: SessionCacheOptions = { label, backend, timeout, verbose };
  if (opts.clock) cacheOpts.clock = opts.clock;
  if (opts.onSweepEntry) cacheOpts.onSweepEntry = opts.onSweepEntry;
  if (opts.limits) cacheOpts.limits = opts.limits;
  if (opts.limitParams) cacheOpts.limitParams = opts.limitParams;
  return new SessionCache(cacheOpts);
}
