/**
 * prometheus.ts - the daemon's statistics as Prometheus metrics (prom-client).
 * Owns: the metric names, help texts, labels and types; reading the counters
 *       into prom-client at scrape time (collect callbacks); the fixed-bucket
 *       histograms exposed as Prometheus histograms.
 * Not here: the HTTP server (stats/metrics-server.ts); the counters
 *           (stats/counters.ts); what the parts offer (stats/stats-view.ts).
 * See also: man/tlsmgr.8 (STATISTICS), README (Prometheus),
 *           https://prometheus.io/docs/practices/naming/
 *
 * Naming: the tlsmgr_ prefix, _total counters, base units (seconds, bytes),
 * a `cache` label (smtpd, smtp, lmtp) on every per-cache metric. The
 * request path never calls prom-client: the metrics read the plain counters
 * when Prometheus scrapes, so serving costs nothing between scrapes.
 * Nothing exposed is a session's bytes or key material: there are counts,
 * sizes, times, and the names of shared stores (the table paths of main.cf).
 */

import { Counter, Gauge, Registry, type Metric } from "prom-client";
import { REPLY_STATUSES, REQUEST_KINDS, lmdbCounters, redisCounters, type CacheCounters, type Histogram } from "./counters.js";
import type { CacheView, StatsSources } from "./stats-view.js";

/** One series of a histogram metric: its labels and its histogram. */
interface HistogramSeries {
  labels: Record<string, string>;
  h: Histogram;
}

/**
 * fixedHistogram - a metric prom-client's registry formats as a Prometheus
 * histogram, from our own fixed-bucket histograms (prom-client's Histogram
 * cannot take bucket counts; observing through it would cost a label hash
 * per request). The registry calls get() at scrape time and reads name,
 * help and type; it is given to registerMetric as prom-client's Metric type.
 */
function fixedHistogram(reg: Registry, name: string, help: string, series: () => HistogramSeries[]): void {
  const metric = {
    name,
    help,
    type: "histogram",
    aggregator: "sum",
    get: async () => {
      const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
      for (const { labels, h } of series()) {
        const cumulative = h.cumulative();
        h.bounds.forEach((le, i) => values.push({ labels: { ...labels, le }, value: cumulative[i]!, metricName: `${name}_bucket` }));
        values.push({ labels: { ...labels, le: "+Inf" }, value: h.count, metricName: `${name}_bucket` });
        values.push({ labels, value: h.sum, metricName: `${name}_sum` });
        values.push({ labels, value: h.count, metricName: `${name}_count` });
      }
      return { name, help, type: "histogram", values, aggregator: "sum" };
    },
  };
  reg.registerMetric(metric as unknown as Metric);
}

/** enabled - the caches that are on, with their counters. */
function enabled(src: StatsSources): { v: CacheView; c: CacheCounters }[] {
  const out: { v: CacheView; c: CacheCounters }[] = [];
  for (const v of src.caches()) if (v.counters) out.push({ v, c: v.counters });
  return out;
}

/** perCache - a counter or gauge with one sample per enabled cache. */
function perCache(
  reg: Registry,
  kind: "counter" | "gauge",
  name: string,
  help: string,
  src: StatsSources,
  value: (c: CacheCounters, v: CacheView) => number | undefined,
): void {
  const collect = function (this: Counter<"cache"> | Gauge<"cache">) {
    this.reset();
    for (const { v, c } of enabled(src)) {
      const n = value(c, v);
      if (n === undefined) continue;
      if (this instanceof Counter) this.inc({ cache: v.type }, n);
      else this.set({ cache: v.type }, n);
    }
  };
  if (kind === "counter") new Counter({ name, help, labelNames: ["cache"], registers: [reg], collect });
  else new Gauge({ name, help, labelNames: ["cache"], registers: [reg], collect });
}

/** single - a counter or gauge without labels. */
function single(reg: Registry, kind: "counter" | "gauge", name: string, help: string, value: () => number | undefined): void {
  const collect = function (this: Counter | Gauge) {
    this.reset();
    const n = value();
    if (n === undefined) return;
    if (this instanceof Counter) this.inc(n);
    else this.set(n);
  };
  if (kind === "counter") new Counter({ name, help, registers: [reg], collect });
  else new Gauge({ name, help, registers: [reg], collect });
}

/** metricsRegistry - a prom-client registry of every metric, reading src at each scrape. */
export function metricsRegistry(src: StatsSources): Registry {
  const reg = new Registry();

  new Counter({
    name: "tlsmgr_requests_total",
    help: "Requests served, by request and reply status (ok 0, err -1, fail -2; request other: none or unknown).",
    labelNames: ["request", "status"],
    registers: [reg],
    collect() {
      this.reset();
      for (const request of REQUEST_KINDS)
        for (const status of REPLY_STATUSES) this.inc({ request, status }, src.requests.get(request, status));
    },
  });

  new Counter({
    name: "tlsmgr_cache_lookups_total",
    help: "Session cache lookups by result: hit, miss (nothing stored), expired (expired or malformed, then removed), error (the store failed).",
    labelNames: ["cache", "result"],
    registers: [reg],
    collect() {
      this.reset();
      for (const { v, c } of enabled(src)) {
        this.inc({ cache: v.type, result: "hit" }, c.hit);
        this.inc({ cache: v.type, result: "miss" }, c.miss);
        this.inc({ cache: v.type, result: "expired" }, c.expired);
        this.inc({ cache: v.type, result: "error" }, c.error);
      }
    },
  });
  perCache(reg, "counter", "tlsmgr_cache_updates_total", "Session cache update requests.", src, (c) => c.updates);
  perCache(reg, "counter", "tlsmgr_cache_deletes_total", "Session cache delete requests.", src, (c) => c.deletes);
  perCache(reg, "counter", "tlsmgr_cache_evictions_total", "Entries removed, oldest first, to keep the cache within its entry and byte limits.", src, (c) => c.evictions);
  perCache(reg, "counter", "tlsmgr_cache_sweep_checked_entries_total", "Entries the expiry sweeps looked at.", src, (c) => c.sweepChecked);
  perCache(reg, "counter", "tlsmgr_cache_swept_entries_total", "Expired or malformed entries the expiry sweeps removed.", src, (c) => c.swept);
  perCache(reg, "gauge", "tlsmgr_cache_entries", "Entries held (not reported for a shared store).", src, (c) => (c.entries >= 0 ? c.entries : undefined));
  perCache(reg, "gauge", "tlsmgr_cache_bytes", "Bytes held: ids and stored values, without the store's own overhead (not reported for a shared store).", src, (c) => (c.bytes >= 0 ? c.bytes : undefined));
  perCache(reg, "gauge", "tlsmgr_cache_entry_limit", "The entry limit (0: none).", src, (_c, v) => v.limits.entries);
  perCache(reg, "gauge", "tlsmgr_cache_byte_limit", "The byte limit (0: none).", src, (_c, v) => v.limits.bytes);
  perCache(reg, "gauge", "tlsmgr_cache_timeout_seconds", "The session cache timeout.", src, (_c, v) => v.timeout);
  fixedHistogram(reg, "tlsmgr_cache_sweep_duration_seconds", "Expiry sweep durations, start to end (the count is the sweeps run).", () =>
    enabled(src).map(({ v, c }) => ({ labels: { cache: v.type }, h: c.sweepSeconds })),
  );

  const keys = () => src.tickets()?.counters;
  single(reg, "counter", "tlsmgr_ticket_keys_made_total", "Session ticket keys this host made (and, with a shared store, stored).", () => keys()?.made);
  single(reg, "counter", "tlsmgr_ticket_key_rotations_total", "Times the current session ticket key changed.", () => keys()?.rotated);
  new Counter({
    name: "tlsmgr_ticket_key_lookups_total",
    help: "Session ticket key look-ups by name: found, not_found (unknown name), stale (past its decryption deadline).",
    labelNames: ["result"],
    registers: [reg],
    collect() {
      this.reset();
      const k = keys();
      if (!k) return;
      this.inc({ result: "found" }, k.found);
      this.inc({ result: "not_found" }, k.notFound);
      this.inc({ result: "stale" }, k.stale);
    },
  });
  single(reg, "gauge", "tlsmgr_ticket_key_shared", "1 when the current ticket key is the one of the shared store, 0 when a local one (only with tlsmgr_ticket_key_database = redis:...).", () => {
    const t = src.tickets();
    if (!t || !t.database.startsWith("redis:")) return undefined;
    return t.inUse()?.shared === true ? 1 : 0;
  });

  single(reg, "counter", "tlsmgr_prng_reseeds_total", "PRNG pool reseeds.", () => src.prng()?.reseeds);
  single(reg, "counter", "tlsmgr_prng_source_failures_total", "Failed reads of tls_random_source.", () => src.prng()?.sourceFailures);
  single(reg, "counter", "tlsmgr_prng_exchange_writes_total", "PRNG exchange file updates written.", () => src.prng()?.exchangeUpdates);

  new Counter({
    name: "tlsmgr_backend_errors_total",
    help: "Store failures: LMDB failed transactions and refused entries; Redis operations that failed or had no reply in time.",
    labelNames: ["backend"],
    registers: [reg],
    collect() {
      this.reset();
      this.inc({ backend: "lmdb" }, lmdbCounters.errors);
      this.inc({ backend: "redis" }, redisCounters.errors);
    },
  });
  fixedHistogram(reg, "tlsmgr_backend_latency_seconds", "Store operation latency: LMDB reads and write transactions, Redis operations (answered ones).", () => [
    { labels: { backend: "lmdb", op: "read" }, h: lmdbCounters.read },
    { labels: { backend: "lmdb", op: "commit" }, h: lmdbCounters.commit },
    { labels: { backend: "redis", op: "command" }, h: redisCounters.command },
  ]);
  new Gauge({
    name: "tlsmgr_shared_store_up",
    help: "1 when the connection to a shared store (a redis: table) is up, 0 otherwise.",
    labelNames: ["store"],
    registers: [reg],
    collect() {
      this.reset();
      for (const l of src.links()) this.set({ store: l.label }, l.state === "up" ? 1 : 0);
    },
  });

  single(reg, "gauge", "process_start_time_seconds", "Start time of the process since unix epoch in seconds.", () => src.started);
  single(reg, "counter", "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
  // rss() reads /proc/self, which a chroot jail lacks: no sample there (the peak, from getrusage, always works)
  single(reg, "gauge", "process_resident_memory_bytes", "Resident memory size in bytes.", () => {
    try {
      return process.memoryUsage.rss();
    } catch {
      return undefined;
    }
  });
  single(reg, "gauge", "process_max_resident_memory_bytes", "Peak resident memory size in bytes.", () => process.resourceUsage().maxRSS * 1024);
  return reg;
}
