/**
 * counters.ts - the daemon's counters: plain number fields that the request
 *               path, the caches, the key stores and the backends bump.
 * Owns: the counter records (requests by kind and status, per cache, ticket
 *       keys, per backend type), the fixed-bucket histogram, the bucket
 *       bounds, and reading a reply's status from its attr0 text.
 * Not here: who reads them (stats/stats-snapshot.ts for the stats request and
 *           tlsmgr-client, stats/prometheus.ts for /metrics); where they are
 *           bumped (server/handlers.ts, cache/scache.ts, cache/cache-bound.ts,
 *           tickets/*, cache/backends/lmdb.ts, redis/link.ts).
 * See also: docs/benchmarks.md (what they cost), man/tlsmgr.8 (STATISTICS)
 *
 * Cost: bumping a counter is one field increment or one typed-array slot;
 * nothing here builds a string, looks up a Map or allocates per event. A
 * histogram observation is a short linear walk over fixed bounds (most
 * observations land in the first few buckets). This folder imports nothing
 * of the daemon's other folders, so every folder may import it.
 *
 * Counters never hold bytes of sessions or keys: only counts, sizes and times.
 */

/** Latency bucket upper bounds, seconds: 1 us to 1 s (LMDB reads are microseconds, Redis round trips milliseconds). */
export const LATENCY_BUCKETS: readonly number[] = [
  0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];

/** Sweep duration bucket upper bounds, seconds: 1 ms to about 3 hours (a 1M-entry sweep rests 9/10 of its time). */
export const SWEEP_BUCKETS: readonly number[] = [0.001, 0.01, 0.1, 1, 10, 60, 300, 900, 3600, 10800];

/** Histogram - counts per fixed bucket (the last one is +Inf), their sum and count. */
export class Histogram {
  readonly bounds: readonly number[];
  /** Observations per bucket (not cumulative); counts[bounds.length] is the +Inf bucket. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** observe - one value, in seconds. */
  observe(seconds: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > b[i]!) i++;
    this.counts[i] += 1;
    this.sum += seconds;
    this.count += 1;
  }

  /** observeSince - the time since t0 (a performance.now() reading, milliseconds). */
  observeSince(t0: number): void {
    this.observe((performance.now() - t0) / 1000);
  }

  /** cumulative - Prometheus's cumulative bucket counts, +Inf last. */
  cumulative(): number[] {
    const out: number[] = [];
    let n = 0;
    for (const c of this.counts) out.push((n += c));
    return out;
  }
}

/** The request kinds counted, in the order of the counters' slots. "other": no request name, or an unknown one. */
export const REQUEST_KINDS = ["seed", "policy", "lookup", "update", "delete", "tktkey", "stats", "other"] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];
export const REQ_SEED = 0;
export const REQ_POLICY = 1;
export const REQ_LOOKUP = 2;
export const REQ_UPDATE = 3;
export const REQ_DELETE = 4;
export const REQ_TKTKEY = 5;
export const REQ_STATS = 6;
export const REQ_OTHER = 7;

/** Reply statuses by Postfix's names (TLS_MGR_STAT_OK 0, _ERR -1, _FAIL -2), in the order of the counters' slots. */
export const REPLY_STATUSES = ["ok", "err", "fail"] as const;
export type ReplyStatus = (typeof REPLY_STATUSES)[number];

/** A reply as the handlers make it (server/handlers.ts Reply). */
type ReplyText = string | Promise<string>;

const CH_0 = 0x30;
const CH_5 = 0x35;
/** "status" NUL: every tlsmgr reply begins with it, then the status as unsigned decimal (attr0). */
const STATUS_VALUE_AT = 7;

/**
 * replyStatusSlot - 0 (ok), 1 (err) or 2 (fail) from a reply's attr0 text,
 * read from two characters: "0", "4294967295" (-1) and "4294967294" (-2)
 * are the only status values a tlsmgr reply carries.
 */
export function replyStatusSlot(text: string): number {
  if (text.charCodeAt(STATUS_VALUE_AT) === CH_0) return 0;
  return text.charCodeAt(STATUS_VALUE_AT + 9) === CH_5 ? 1 : 2;
}

/** RequestCounters - requests served, by kind and reply status. */
export class RequestCounters {
  /** slot kind * 3 + status (REQUEST_KINDS x REPLY_STATUSES). */
  readonly counts = new Float64Array(REQUEST_KINDS.length * REPLY_STATUSES.length);

  /** tally - count a reply of this kind by its status; the reply passes through. */
  tally(kind: number, reply: ReplyText): ReplyText {
    if (typeof reply === "string") {
      this.counts[kind * 3 + replyStatusSlot(reply)] += 1;
      return reply;
    }
    return reply.then((text) => {
      this.counts[kind * 3 + replyStatusSlot(text)] += 1;
      return text;
    });
  }

  /** get - the count of one kind and status. */
  get(kind: RequestKind, status: ReplyStatus): number {
    return this.counts[REQUEST_KINDS.indexOf(kind) * 3 + REPLY_STATUSES.indexOf(status)]!;
  }
}

/** CacheCounters - one session cache's counters (cache/scache.ts, cache/cache-bound.ts). */
export class CacheCounters {
  /** Lookups: found and valid. */
  hit = 0;
  /** Lookups: nothing stored under the id. */
  miss = 0;
  /** Lookups: an expired or malformed entry (then removed). */
  expired = 0;
  /** Lookups the backend could not answer (a miss for the client). */
  error = 0;
  /** Update requests (entries stored or replaced). */
  updates = 0;
  /** Delete requests. */
  deletes = 0;
  /** Entries removed to keep the cache within its limits (cache-bound.ts). */
  evictions = 0;
  /** Sweeps finished, their durations (count = sweeps run). */
  readonly sweepSeconds = new Histogram(SWEEP_BUCKETS);
  /** Entries the sweeps looked at, and the expired or malformed ones they removed. */
  sweepChecked = 0;
  swept = 0;
  /** Entries held and their bytes (id + stored value), when the cache keeps that account (cache-bound.ts); else -1. */
  entries = -1;
  bytes = -1;

  /** lookups - all lookups so far. */
  get lookups(): number {
    return this.hit + this.miss + this.expired + this.error;
  }
}

/** TicketKeyCounters - one ticket key store's counters (tickets/*). */
export class TicketKeyCounters {
  /** Keys whose material this host generated (and, for a shared store, that were stored). */
  made = 0;
  /** Times the current encryption key changed (a new key, or another host's shared key adopted). */
  rotated = 0;
  /** Look-ups by name (smtpd decrypting a ticket): a key still valid for decryption ... */
  found = 0;
  /** ... no key of that name known (another store's, from before a restart, or forged) ... */
  notFound = 0;
  /** ... a known key past its decryption deadline. */
  stale = 0;

  /** lookedUp - count a look-up by name: found, else stale when the name was known, else not found. */
  lookedUp(found: boolean, known: boolean): void {
    if (found) this.found++;
    else if (known) this.stale++;
    else this.notFound++;
  }
}

/** LmdbCounters - every LMDB cache file of the process: errors and latencies. */
export interface LmdbCounters {
  /** Failed transactions and entries LMDB refused. */
  errors: number;
  /** Reads of the file (the memory map: page faults show here). */
  readonly read: Histogram;
  /** Write transactions (one per batch of writes). */
  readonly commit: Histogram;
}

/** RedisCounters - every Redis link of the process: failed operations and latencies. */
export interface RedisCounters {
  /** Operations that failed or had no reply within the table's timeout. */
  errors: number;
  /** Operations that got a reply, from the call to the reply. */
  readonly command: Histogram;
}

/** The LMDB backend's counters (one per process: the metrics label is the backend type). */
export const lmdbCounters: LmdbCounters = {
  errors: 0,
  read: new Histogram(LATENCY_BUCKETS),
  commit: new Histogram(LATENCY_BUCKETS),
};

/** The Redis links' counters (one per process). */
export const redisCounters: RedisCounters = {
  errors: 0,
  command: new Histogram(LATENCY_BUCKETS),
};
