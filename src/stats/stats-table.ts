/**
 * stats-table.ts - the stats document as `tlsmgr-client stats` prints it
 *                  for people: one column per cache, then the rest.
 * Owns: the layout, number and time formats, the hit rate and latency
 *       quantile texts, and the farm check line.
 * Not here: the document (stats/stats-snapshot.ts); the command line (client/cli.ts).
 * See also: README (How to check that a farm works)
 */

import { REPLY_STATUSES, REQUEST_KINDS } from "./counters.js";
import type { CacheSnapshot, HistogramSnapshot, StatsSnapshot } from "./stats-snapshot.js";

/** bytesText - a byte count in B, KiB, MiB, GiB. */
export function bytesText(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** secondsText - a duration as 1.5 us, 2.0 ms, 3.2 s. */
export function secondsText(s: number): string {
  if (s < 0.001) return `${(s * 1e6).toFixed(s < 0.00001 ? 1 : 0)} us`;
  if (s < 1) return `${(s * 1000).toFixed(1)} ms`;
  return `${s.toFixed(1)} s`;
}

/** uptimeText - seconds as "3d 04:05:06". */
export function uptimeText(sec: number): string {
  const d = Math.floor(sec / 86400);
  const t = sec % 86400;
  const hms = [Math.floor(t / 3600), Math.floor((t % 3600) / 60), t % 60].map((n) => String(n).padStart(2, "0")).join(":");
  return d > 0 ? `${d}d ${hms}` : hms;
}

/** quantileBound - the upper bound of the bucket holding quantile q ("<= 50 us"), or "-" without observations. */
export function quantileBound(h: HistogramSnapshot, q: number): string {
  if (h.count === 0) return "-";
  const want = q * h.count;
  for (let i = 0; i < h.le.length; i++) if (h.cumulative[i]! >= want) return `<= ${secondsText(h.le[i]!)}`;
  return `> ${secondsText(h.le[h.le.length - 1] ?? 0)}`;
}

/** latencyText - count, mean and the p50 and p99 buckets of a latency histogram. */
function latencyText(h: HistogramSnapshot): string {
  if (h.count === 0) return "none";
  return `${h.count}, mean ${secondsText(h.sum / h.count)}, p50 ${quantileBound(h, 0.5)}, p99 ${quantileBound(h, 0.99)}`;
}

/** rateText - a share as a percentage, "-" when there is none. */
function rateText(r: number | null): string {
  return r === null ? "-" : `${(r * 100).toFixed(1)} %`;
}

/** limitsText - the limits of a cache. */
function limitsText(c: CacheSnapshot): string {
  if (c.shared) return "(server's)";
  const parts = [];
  if (c.entry_limit > 0) parts.push(`${c.entry_limit} entries`);
  if (c.byte_limit > 0) parts.push(bytesText(c.byte_limit));
  return parts.length === 0 ? "none" : parts.join(", ");
}

/** columns - label and values, padded into columns. */
function columns(rows: string[][], widths: number[]): string {
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join("  ").trimEnd()).join("\n");
}

/** statsTable - the document as text, with a line per fact. */
export function statsTable(s: StatsSnapshot): string {
  const out: string[] = [];
  out.push(`tlsmgr on ${s.host}, pid ${s.pid}, up ${uptimeText(Math.max(0, s.now - s.started))} (since ${new Date(s.started * 1000).toISOString()})`);

  const types = Object.keys(s.caches);
  const caches = types.map((t) => s.caches[t]!);
  const on = (f: (c: CacheSnapshot) => string) => caches.map((c) => (c.enabled ? f(c) : "-"));
  const rows: string[][] = [
    ["session caches", ...types],
    ["  database", ...caches.map((c) => (c.enabled ? c.database : "off"))],
    ["  lookups", ...on((c) => String(c.lookups.hit + c.lookups.miss + c.lookups.expired + c.lookups.error))],
    ["    hit", ...on((c) => String(c.lookups.hit))],
    ["    miss", ...on((c) => String(c.lookups.miss))],
    ["    expired", ...on((c) => String(c.lookups.expired))],
    ["    error", ...on((c) => String(c.lookups.error))],
    ["  hit rate", ...on((c) => rateText(c.hit_rate))],
    ["  updates", ...on((c) => String(c.updates))],
    ["  deletes", ...on((c) => String(c.deletes))],
    ["  entries", ...on((c) => (c.entries === null ? "(shared)" : String(c.entries)))],
    ["  bytes", ...on((c) => (c.bytes === null ? "(shared)" : bytesText(c.bytes)))],
    ["  limits", ...on(limitsText)],
    ["  evictions", ...on((c) => String(c.evictions))],
    ["  sweeps", ...on((c) => (c.shared ? "(by TTL)" : `${c.sweeps}${c.sweeping ? " (running)" : ""}`))],
    ["    checked", ...on((c) => String(c.sweep_checked))],
    ["    removed", ...on((c) => String(c.swept))],
    ["    time", ...on((c) => (c.sweep_seconds.count === 0 ? "-" : secondsText(c.sweep_seconds.sum)))],
  ];
  const w0 = Math.max(...rows.map((r) => r[0]!.length));
  const widths = [w0, ...types.map((_t, i) => Math.max(...rows.map((r) => (r[i + 1] ?? "").length)))];
  out.push("", columns(rows, widths));

  const reqRows: string[][] = [["requests", ...REPLY_STATUSES]];
  for (const kind of REQUEST_KINDS) {
    const r = s.requests[kind];
    if (REPLY_STATUSES.every((st) => r[st] === 0)) continue;
    reqRows.push([`  ${kind}`, ...REPLY_STATUSES.map((st) => String(r[st]))]);
  }
  const rw = [Math.max(...reqRows.map((r) => r[0]!.length)), ...REPLY_STATUSES.map((_st, i) => Math.max(...reqRows.map((r) => r[i + 1]!.length)))];
  out.push("", columns(reqRows, rw));

  out.push("");
  const t = s.tickets;
  if (t) {
    out.push(`ticket keys: ${t.database === "" ? "in memory" : t.database}`);
    out.push(t.in_use
      ? `  in use: ${t.in_use.name}, encrypts until ${new Date(t.in_use.expires * 1000).toISOString()}, ${t.in_use.shared ? "shared" : "this host's own"}`
      : "  in use: none (one is made at the next request)");
    out.push(`  made ${t.made}, rotated ${t.rotated}; looked up by name: found ${t.lookups.found}, not found ${t.lookups.not_found}, stale ${t.lookups.stale}`);
  }
  if (s.prng)
    out.push(`PRNG: reseeds ${s.prng.reseeds}, source reads ${s.prng.source_reads}, source failures ${s.prng.source_failures}, exchange file writes ${s.prng.exchange_writes}`);
  const b = s.backends;
  out.push(`LMDB: errors ${b.lmdb.errors}; reads ${latencyText(b.lmdb.read_seconds)}; commits ${latencyText(b.lmdb.commit_seconds)}`);
  out.push(`Redis: errors ${b.redis.errors}; operations ${latencyText(b.redis.command_seconds)}`);

  if (s.links.length > 0) {
    out.push("", "shared stores");
    for (const l of s.links) out.push(`  ${l.label} (${l.servers.join(", ")}): ${l.state}${l.reason ? `: ${l.reason}` : ""}`);
  }
  const f = s.farm;
  if (f.shared_stores > 0 || f.ticket_key_shared !== null) {
    const keys = f.ticket_key_shared === null ? "" : `; ticket key in use is the shared one: ${f.ticket_key_shared ? "yes" : "NO"}`;
    out.push(`farm: shared stores reachable: ${f.reachable ? "yes" : "NO"}${keys}`);
  }
  out.push(s.metrics_address === "" ? "metrics: off" : `metrics: http://${s.metrics_address}/metrics`);
  return out.join("\n");
}
