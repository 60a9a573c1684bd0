/**
 * stats-view.ts - what the statistics read from the running daemon: each
 *                 part's counters and state, as the parts offer them.
 * Owns: the view interfaces (StatsSources and its parts). The daemon's
 *       parts implement or fill them (main.ts wires them); the readers are
 *       stats/stats-snapshot.ts and stats/prometheus.ts.
 * Not here: the counters (stats/counters.ts); building them from the parts
 *           (main.ts); the snapshot's JSON form (stats/stats-snapshot.ts).
 * See also: man/tlsmgr.8 (STATISTICS)
 *
 * These are types only, declared here so that stats/ needs nothing from the
 * folders that bump its counters (cache/, tickets/, redis/, server/).
 * Nothing in a view is a session's bytes or key material: a ticket key is
 * shown by its name (which every ticket carries in clear) and deadline only.
 */

import type { CacheCounters, RequestCounters, TicketKeyCounters } from "./counters.js";

/** The ticket key a store hands out as the current one. */
export interface TicketKeyInUse {
  /** The 16-byte key name, hex. */
  name: string;
  /** Encryption deadline (tout), seconds since the epoch. */
  expires: number;
  /** True when it is the key shared through the store (redis:), false for a key of this host only. */
  shared: boolean;
}

/** A ticket key store, as statistics see it. */
export interface TicketKeysView {
  /** tlsmgr_ticket_key_database as given, or "" (in memory). */
  database: string;
  counters: TicketKeyCounters;
  /** The current key handed out, while it is valid for encryption; undefined when none is (one is made at the next request). */
  inUse(): TicketKeyInUse | undefined;
}

/** One session cache, as statistics see it. */
export interface CacheView {
  /** "smtpd", "smtp", "lmtp". */
  type: string;
  /** *_tls_session_cache_database as given ("" when off). */
  database: string;
  /** The map type serving it ("lmdb", "memory", "redis", ...); "" when off. */
  backend: string;
  /** The sanitised timeout, seconds (0 when off). */
  timeout: number;
  /** undefined when the cache is off. */
  counters: CacheCounters | undefined;
  /** Entry and byte limits (0: none). */
  limits: { entries: number; bytes: number };
  /** True when the store is shared and expires entries itself (redis:). */
  shared: boolean;
  /** True while a sweep walks the cache. */
  sweeping: boolean;
}

/** One connection to a shared store (redis/link.ts). */
export interface LinkView {
  /** "redis:/path/to/table". */
  label: string;
  /** The servers of the table, as "host:port" or paths. */
  servers: string[];
  /** "up", "down" (an outage), or the client's own status ("connecting", "reconnecting", ...). */
  state: string;
  /** Why it is not up, when known. */
  reason: string | undefined;
}

/** The PRNG pool's counters (prng/pool.ts stats()). */
export interface PrngView {
  reseeds: number;
  sourceReads: number;
  sourceFailures: number;
  exchangeUpdates: number;
}

/** Everything the statistics read, from one place. */
export interface StatsSources {
  /** Start of the process, seconds since the epoch. */
  readonly started: number;
  readonly requests: RequestCounters;
  caches(): CacheView[];
  tickets(): TicketKeysView | undefined;
  prng(): PrngView | undefined;
  links(): LinkView[];
  /** Where /metrics is served, once it is ("" when off). */
  metricsAddress: string;
}
