/**
 * metrics-server.ts - Prometheus metrics over HTTP at /metrics, when
 *                     tlsmgr_metrics_address asks for it (off by default).
 * Owns: reading tlsmgr_metrics_address and tlsmgr_metrics_allow_remote, the
 *       loopback rule, binding (after the privilege drop: the caller's
 *       post-init), the retry when the port is still held (a tlsmgr that
 *       master is replacing), the HTTP handling (GET or HEAD of /metrics
 *       only, bounded time and connections) and closing.
 * Not here: the metrics (stats/prometheus.ts).
 * See also: man/tlsmgr.8 (STATISTICS), README (Prometheus)
 *
 * Address: "host:port" with an IPv4 address, "[IPv6]:port", "localhost:port"
 * (127.0.0.1), or a port alone (127.0.0.1). No host names are resolved.
 * An address outside loopback (127.0.0.0/8, ::1) is refused with a
 * warning, and metrics stay off, unless tlsmgr_metrics_allow_remote = yes.
 * A failure to bind is a warning: the daemon serves its clients either way.
 *
 * The event loop: a scrape formats a few hundred lines from the counters
 * (1.25 ms here, HTTP included: docs/benchmarks.md); the server never reads
 * a request body, closes idle and slow connections, and accepts few at a time.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { isIP } from "node:net";
import { errorText } from "../log/errors.js";
import { msgInfo, msgWarn } from "../log/msg.js";
import { metricsRegistry } from "./prometheus.js";
import type { StatsSources } from "./stats-view.js";

/** The path Prometheus scrapes. */
export const METRICS_PATH = "/metrics";
/** Connections served at once; more wait in the kernel's backlog. */
const MAX_CONNECTIONS = 16;
/** A request must arrive whole within this long; an idle kept-alive connection is closed after KEEPALIVE_MS. */
const REQUEST_TIMEOUT_MS = 10_000;
const KEEPALIVE_MS = 5_000;
/** Attempts to bind while the address is in use (the tlsmgr being replaced still holds it), a second apart. */
const BIND_ATTEMPTS = 10;
const BIND_RETRY_MS = 1_000;

/** A parsed tlsmgr_metrics_address. */
export interface MetricsAddress {
  host: string;
  port: number;
  /** As it is shown in log lines and the stats: "127.0.0.1:9715", "[::1]:9715". */
  text: string;
}

/** metricsAddressParse - the address, or a reason why it is not one. */
export function metricsAddressParse(value: string): MetricsAddress | { error: string } {
  const v = value.trim();
  let host: string;
  let portText: string;
  const bracket = /^\[([^\]]+)\]:(\d+)$/.exec(v);
  if (bracket) {
    host = bracket[1]!;
    portText = bracket[2]!;
    if (isIP(host) !== 6) return { error: `"${host}" is not an IPv6 address` };
  } else if (/^\d+$/.test(v)) {
    host = "127.0.0.1";
    portText = v;
  } else {
    const colon = v.lastIndexOf(":");
    if (colon <= 0) return { error: 'expecting "host:port", "[ipv6]:port" or a port' };
    host = v.slice(0, colon);
    portText = v.slice(colon + 1);
    if (host === "localhost") host = "127.0.0.1";
    if (isIP(host) !== 4) return { error: `"${host}" is not an IPv4 address (host names are not looked up; IPv6 goes in brackets)` };
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) return { error: `bad port "${portText}"` };
  return { host, port, text: isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}` };
}

/** isLoopback - 127.0.0.0/8, ::1, or an IPv4-mapped 127.x address. */
export function isLoopback(host: string): boolean {
  if (isIP(host) === 4) return host.startsWith("127.");
  const h = host.toLowerCase();
  if (h === "::1" || /^(0{0,4}:){7}0{0,3}1$/.test(h)) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped !== null && mapped[1]!.startsWith("127.");
}

/** yesNo - a Postfix boolean (yes, no, true, false; any case); undefined when it is neither. */
export function yesNo(value: string): boolean | undefined {
  const v = value.trim().toLowerCase();
  if (v === "yes" || v === "true") return true;
  if (v === "no" || v === "false") return false;
  return undefined;
}

export interface MetricsConfig {
  tlsmgr_metrics_address: string;
  tlsmgr_metrics_allow_remote: string;
}

/**
 * metricsAddressOf - the address to serve on, or undefined (off: empty, or
 * refused with a warning: malformed, or outside loopback without
 * tlsmgr_metrics_allow_remote = yes).
 */
export function metricsAddressOf(cfg: MetricsConfig): MetricsAddress | undefined {
  if (cfg.tlsmgr_metrics_address.trim() === "") return undefined;
  const a = metricsAddressParse(cfg.tlsmgr_metrics_address);
  if ("error" in a) {
    msgWarn(`tlsmgr_metrics_address = ${cfg.tlsmgr_metrics_address}: ${a.error}: metrics are off`);
    return undefined;
  }
  let remote = yesNo(cfg.tlsmgr_metrics_allow_remote);
  if (remote === undefined) {
    msgWarn(`tlsmgr_metrics_allow_remote = ${cfg.tlsmgr_metrics_allow_remote}: expecting yes or no: taken as no`);
    remote = false;
  }
  if (!isLoopback(a.host) && !remote) {
    msgWarn(
      `tlsmgr_metrics_address = ${a.text}: not a loopback address: metrics are off` +
        " (set tlsmgr_metrics_allow_remote = yes to serve them there)",
    );
    return undefined;
  }
  return a;
}

/** A running metrics server. */
export interface MetricsServer {
  readonly address: MetricsAddress;
  /** Resolves once listening (true) or given up (false, warned). */
  readonly ready: Promise<boolean>;
  close(): Promise<void>;
}

/** Set while scrapes fail: one warning per run of failures. */
let renderFailing = false;

/** serve - answer one HTTP request: GET or HEAD of /metrics, else 404 or 405. */
function serve(req: IncomingMessage, res: ServerResponse, render: () => Promise<{ type: string; text: string }>): void {
  req.resume(); // a body, if any, is not read into memory
  const path = (req.url ?? "").split("?")[0];
  if (path !== METRICS_PATH) {
    res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" }).end(`not found: try ${METRICS_PATH}\n`);
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" }).end("method not allowed\n");
    return;
  }
  render().then(
    ({ type, text }) => {
      renderFailing = false;
      res.writeHead(200, { "Content-Type": type, "Content-Length": Buffer.byteLength(text) });
      res.end(req.method === "HEAD" ? undefined : text);
    },
    (err: unknown) => {
      if (!renderFailing) msgWarn(`metrics: cannot format metrics: ${errorText(err)}`);
      renderFailing = true;
      res.writeHead(500, { "Content-Type": "text/plain; charset=utf-8" }).end("cannot format metrics\n");
    },
  );
}

/**
 * startMetricsServer - serve src's metrics on address: listening begins
 * now, retried while the address is in use; one warning when it cannot be
 * had, one info line when it is. Sets src.metricsAddress once listening.
 */
export function startMetricsServer(src: StatsSources, address: MetricsAddress): MetricsServer {
  const registry = metricsRegistry(src);
  const render = async () => ({ type: registry.contentType, text: await registry.metrics() });
  const server: Server = createServer((req, res) => serve(req, res, render));
  server.maxConnections = MAX_CONNECTIONS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = KEEPALIVE_MS;
  server.maxHeadersCount = 64;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const ready = new Promise<boolean>((resolve) => {
    const attempt = (n: number) => {
      if (closed) return resolve(false);
      const onError = (err: NodeJS.ErrnoException) => {
        if (err.code === "EADDRINUSE" && n < BIND_ATTEMPTS && !closed) {
          retry = setTimeout(() => attempt(n + 1), BIND_RETRY_MS);
          retry.unref();
          return;
        }
        msgWarn(`metrics: cannot listen on ${address.text}: ${errorText(err)}: metrics are off`);
        resolve(false);
      };
      server.once("error", onError);
      server.listen({ host: address.host, port: address.port, exclusive: true }, () => {
        server.off("error", onError);
        server.on("error", (err) => msgWarn(`metrics: ${address.text}: ${errorText(err)}`));
        src.metricsAddress = address.text;
        msgInfo(`metrics: serving http://${address.text}${METRICS_PATH}`);
        resolve(true);
      });
    };
    attempt(1);
  });

  return {
    address,
    ready,
    close: async () => {
      closed = true;
      if (retry) clearTimeout(retry);
      src.metricsAddress = "";
      if (!server.listening) return;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
