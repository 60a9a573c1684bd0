/**
 * stats-snapshot.ts - the daemon's statistics as one JSON document: what the
 *                     stats request answers and tlsmgr-client prints.
 * Owns: the document's shape (StatsSnapshot, version STATS_VERSION), taking
 *       it from the sources, the hit rate, and the farm check (is every
 *       shared store reachable, is the ticket key in use the shared one).
 * Not here: the counters (stats/counters.ts), the wire (stats/stats-request.ts),
 *           the table for people (stats/stats-table.ts), /metrics (stats/prometheus.ts).
 * See also: man/tlsmgr.8 (STATISTICS), README (How to check that a farm works)
 *
 * The document holds counts, sizes, times, configuration names and link
 * states; never a session's bytes or key material (a ticket key appears by
 * its name, which every ticket carries in clear, and its deadline).
 */

import { hostname } from "node:os";
import {
  REPLY_STATUSES, REQUEST_KINDS, type Histogram, type LmdbCounters, type RedisCounters, type ReplyStatus, type RequestKind,
} from "./counters.js";
import type { StatsSources } from "./stats-view.js";

/** Bumped when a field changes meaning or goes away (new fields do not bump it). */
export const STATS_VERSION = 1;

/** A histogram: upper bounds (seconds), cumulative counts per bound (+Inf last), sum and count. */
export interface HistogramSnapshot {
  le: number[];
  cumulative: number[];
  sum: number;
  count: number;
}

export interface CacheSnapshot {
  enabled: boolean;
  database: string;
  backend: string;
  timeout: number;
  shared: boolean;
  lookups: { hit: number; miss: number; expired: number; error: number };
  /** hit / all lookups since start; null before the first lookup. */
  hit_rate: number | null;
  updates: number;
  deletes: number;
  /** null when the cache does not keep the account (a shared store). */
  entries: number | null;
  bytes: number | null;
  entry_limit: number;
  byte_limit: number;
  evictions: number;
  sweeps: number;
  sweeping: boolean;
  sweep_checked: number;
  swept: number;
  sweep_seconds: HistogramSnapshot;
}

export interface StatsSnapshot {
  version: number;
  host: string;
  pid: number;
  started: number;
  now: number;
  requests: Record<RequestKind, Record<ReplyStatus, number>>;
  caches: Record<string, CacheSnapshot>;
  tickets: {
    database: string;
    made: number;
    rotated: number;
    lookups: { found: number; not_found: number; stale: number };
    /** The current key: its name and deadline; shared = the key of the shared store. null when none is valid now. */
    in_use: { name: string; expires: number; shared: boolean } | null;
  } | null;
  prng: { reseeds: number; source_reads: number; source_failures: number; exchange_writes: number } | null;
  backends: {
    lmdb: { errors: number; read_seconds: HistogramSnapshot; commit_seconds: HistogramSnapshot };
    redis: { errors: number; command_seconds: HistogramSnapshot };
  };
  links: { label: string; servers: string[]; state: string; reason: string | null }[];
  /** Is the farm's sharing in place: every link up, and the ticket key in use the shared one (when keys are shared). */
  farm: { shared_stores: number; reachable: boolean; ticket_key_shared: boolean | null };
  metrics_address: string;
}

/** histogramSnapshot - a histogram as the document holds it. */
export function histogramSnapshot(h: Histogram): HistogramSnapshot {
  return { le: [...h.bounds], cumulative: h.cumulative(), sum: h.sum, count: h.count };
}

/** hitRate - hits over all lookups, or null before the first. */
export function hitRate(l: { hit: number; miss: number; expired: number; error: number }): number | null {
  const all = l.hit + l.miss + l.expired + l.error;
  return all === 0 ? null : l.hit / all;
}

/** statsSnapshot - the document, now. */
export function statsSnapshot(
  src: StatsSources,
  backends: { lmdb: LmdbCounters; redis: RedisCounters },
): StatsSnapshot {
  const requests = {} as StatsSnapshot["requests"];
  REQUEST_KINDS.forEach((kind) => {
    const row = {} as Record<ReplyStatus, number>;
    for (const status of REPLY_STATUSES) row[status] = src.requests.get(kind, status);
    requests[kind] = row;
  });

  const caches: Record<string, CacheSnapshot> = {};
  for (const v of src.caches()) {
    const c = v.counters;
    const lookups = { hit: c?.hit ?? 0, miss: c?.miss ?? 0, expired: c?.expired ?? 0, error: c?.error ?? 0 };
    caches[v.type] = {
      enabled: c !== undefined,
      database: v.database,
      backend: v.backend,
      timeout: v.timeout,
      shared: v.shared,
      lookups,
      hit_rate: hitRate(lookups),
      updates: c?.updates ?? 0,
      deletes: c?.deletes ?? 0,
      entries: c && c.entries >= 0 ? c.entries : null,
      bytes: c && c.bytes >= 0 ? c.bytes : null,
      entry_limit: v.limits.entries,
      byte_limit: v.limits.bytes,
      evictions: c?.evictions ?? 0,
      sweeps: c?.sweepSeconds.count ?? 0,
      sweeping: v.sweeping,
      sweep_checked: c?.sweepChecked ?? 0,
      swept: c?.swept ?? 0,
      sweep_seconds: c ? histogramSnapshot(c.sweepSeconds) : { le: [], cumulative: [], sum: 0, count: 0 },
    };
  }

  const t = src.tickets();
  const inUse = t?.inUse();
  const tickets: StatsSnapshot["tickets"] = t
    ? {
        database: t.database,
        made: t.counters.made,
        rotated: t.counters.rotated,
        lookups: { found: t.counters.found, not_found: t.counters.notFound, stale: t.counters.stale },
        in_use: inUse ? { name: inUse.name, expires: inUse.expires, shared: inUse.shared } : null,
      }
    : null;

  const p = src.prng();
  const links = src.links().map((l) => ({ label: l.label, servers: l.servers, state: l.state, reason: l.reason ?? null }));
  const keysShared = t !== undefined && t.database.startsWith("redis:");
  return {
    version: STATS_VERSION,
    host: hostname(),
    pid: process.pid,
    started: src.started,
    now: Math.floor(Date.now() / 1000),
    requests,
    caches,
    tickets,
    prng: p
      ? { reseeds: p.reseeds, source_reads: p.sourceReads, source_failures: p.sourceFailures, exchange_writes: p.exchangeUpdates }
      : null,
    backends: {
      lmdb: {
        errors: backends.lmdb.errors,
        read_seconds: histogramSnapshot(backends.lmdb.read),
        commit_seconds: histogramSnapshot(backends.lmdb.commit),
      },
      redis: { errors: backends.redis.errors, command_seconds: histogramSnapshot(backends.redis.command) },
    },
    links,
    farm: {
      shared_stores: links.length,
      reachable: links.every((l) => l.state === "up"),
      ticket_key_shared: keysShared ? inUse?.shared === true : null,
    },
    metrics_address: src.metricsAddress,
  };
}
