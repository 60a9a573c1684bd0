/**
 * stats-sources.ts - what the running daemon offers its statistics: the
 *                    caches, the ticket key store, the PRNG pool and the
 *                    Redis links, seen through stats/stats-view.ts.
 * Owns: turning the daemon's parts into StatsSources (read when a stats
 *       request or a scrape asks, never on the request path).
 * Not here: the counters (stats/counters.ts), the document and the metrics
 *           (stats/stats-snapshot.ts, stats/prometheus.ts), opening the
 *           parts (main.ts).
 * See also: server/handlers.ts (TlsmgrState.stats), redis/link.ts (state)
 */

import type { CacheSet } from "../cache/cache-set.js";
import type { CacheLimits } from "../cache/cache-bound.js";
import { CACHE_TYPES, type CacheType } from "../protocol/tlsmgr-proto.js";
import type { PrngPoolStats } from "../prng/pool.js";
import { redisLinksOpen } from "../redis/link.js";
import type { RedisServer } from "../redis/table.js";
import { RequestCounters, TicketKeyCounters } from "../stats/counters.js";
import type { CacheView, StatsSources } from "../stats/stats-view.js";
import type { TicketKeySource } from "../tickets/ticket-keys.js";

export interface StatsSourcesParts {
  caches: CacheSet;
  /** Each cache's database parameter value ("" when off). */
  databases: Readonly<Record<CacheType, string>>;
  limits: (type: CacheType) => CacheLimits;
  tickets: TicketKeySource;
  /** tlsmgr_ticket_key_database as given. */
  ticketDatabase: string;
  prng: { stats(): PrngPoolStats };
}

/** serverText - a Redis server as a table names it. */
function serverText(s: RedisServer): string {
  return "path" in s ? s.path : `${s.host.includes(":") ? `[${s.host}]` : s.host}:${s.port}`;
}

/** statsSources - the daemon's statistics sources over its parts. */
export function statsSources(p: StatsSourcesParts): StatsSources {
  const noKeyCounters = new TicketKeyCounters();
  return {
    started: Math.floor(Date.now() / 1000),
    requests: new RequestCounters(),
    metricsAddress: "",
    caches: () =>
      CACHE_TYPES.map((type): CacheView => {
        const c = p.caches.get(type);
        return {
          type,
          database: p.databases[type],
          backend: c ? c.backend.type : "",
          timeout: p.caches.timeout(type),
          counters: c?.counters,
          limits: p.limits(type),
          shared: c?.backend.expiresByItself === true,
          sweeping: c?.sweeping ?? false,
        };
      }),
    tickets: () => ({
      database: p.ticketDatabase.trim(),
      counters: p.tickets.counters ?? noKeyCounters,
      inUse: () => p.tickets.inUse?.(),
    }),
    prng: () => {
      const s = p.prng.stats();
      return { reseeds: s.reseeds, sourceReads: s.sourceReads, sourceFailures: s.sourceFailures, exchangeUpdates: s.exchangeUpdates };
    },
    links: () =>
      redisLinksOpen().map((l) => ({ label: l.label, servers: l.table.servers.map(serverText), ...l.state })),
  };
}
