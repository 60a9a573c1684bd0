/**
 * link.ts - one connection (standalone or Cluster) to the servers of a
 *           redis: table, shared by the session caches and the ticket key
 *           store that name the same table file.
 * Owns: the ioredis options that make Redis failures fast (no offline queue,
 *       no retries per request, a command timeout, bounded jittered
 *       reconnects), the connector that picks the server of each connect
 *       (the failover list of standalone servers) and keeps every stream's
 *       errors handled, the per-request deadline, the outage state with one
 *       warning per outage and one line when it ends, the sharing by
 *       table path, connecting only after the privilege drop, and the
 *       start-up warnings of redis/exposure.ts.
 * Not here: what is stored (cache/backends/redis.ts, tickets/redis-keys.ts);
 *           the table file (redis/table.ts); the counters run() bumps
 *           (stats/counters.ts redisCounters).
 * See also: ioredis lib/redis/RedisOptions.ts (Connector),
 *           lib/connectors/StandaloneConnector.ts, memcache_table(5)
 *
 * Degradation: every run() settles within the table's timeout. When the
 * server is down, ioredis rejects at once (no offline queue); when it is
 * slow, the deadline rejects. A rejection is a RedisUnavailableError (code
 * ERR_BACKEND_UNAVAILABLE): callers answer a miss and do not log it;
 * this link logs the first failure of an outage, and its end: a success
 * after REDIS_RECOVERY_QUIET_MS without failures (so a Cluster with one
 * node down, where some requests work, is one outage, not a flood).
 *
 * Privileges: a daemon that starts as root opens its links before it drops
 * to mail_owner (the table, password and TLS files are read then), but
 * connects them only after: between redisDeferConnects() and
 * redisConnectDeferred() a link opens without connecting, so no reply from
 * a Redis server is parsed with root's privileges. Until its first
 * connection attempt has settled, a request waits for it (at most the
 * table's timeout) rather than count as an outage.
 *
 * Stalled server (standalone): a server that keeps its connection but does
 * not answer (SIGSTOP, a long fork, swapping) would cost every request the
 * full timeout, and the commands would pile up in the client and the
 * socket. So when a request times out, the requests still waiting are
 * answered at once, and new ones are refused at once (the miss the caller
 * answers anyway), while the link itself sends PING, one at a time within
 * the timeout, REDIS_PROBE_MS apart; the first answer ends the stall. Under
 * a 10 s stop only the first request that was sent after the server stopped
 * waits the whole timeout (docs/benchmarks.md, "Store paused under load").
 * Not for a Cluster: there a timeout is one node's, and the others answer.
 *
 * Streams: ioredis listens for a stream's errors with once(); a TLS socket
 * can emit a second error (a server's alert that arrives after the client
 * refused its certificate), which would then be an uncaught exception and
 * end the daemon (ioredis issue #1183, pull request #962). The connector
 * keeps a listener on every stream it opens, for as long as it lives.
 */

import { createConnection, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { AbstractConnector, Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { ERR_BACKEND_UNAVAILABLE, TlsmgrError, errorText } from "../log/errors.js";
import { msgInfo, msgWarn } from "../log/msg.js";
import { redisCounters } from "../stats/counters.js";
import { REDIS_DEFAULT_PORT, redisTableRead, type RedisServer, type RedisTable } from "./table.js";
import { redisExposureWarnings } from "./exposure.js";

/** Connect attempts give up after this long (then the back-off retries). */
export const REDIS_CONNECT_TIMEOUT_MS = 2000;
/** Reconnect back-off: from about REDIS_BACKOFF_MIN_MS doubling up to REDIS_BACKOFF_MAX_MS, jittered. */
export const REDIS_BACKOFF_MIN_MS = 50;
export const REDIS_BACKOFF_MAX_MS = 2000;
/** How long open waits for the first connection before it serves misses anyway. */
export const REDIS_OPEN_WAIT_MS = 1000;
/** An outage ends with a success after this long without failures (a Cluster with one node down fails only some requests). */
export const REDIS_RECOVERY_QUIET_MS = 2000;
/** While a standalone server is stalled (see the header), a PING goes this many ms after the last one failed. */
export const REDIS_PROBE_MS = 10;

/** What callers see when Redis cannot answer in time: a miss, already logged by the link. */
export class RedisUnavailableError extends TlsmgrError {
  constructor(message: string) {
    super(message, ERR_BACKEND_UNAVAILABLE);
  }
}

export type RedisClient = Redis | Cluster;

/** redisBackoff - delay before reconnect attempt `times` (1, 2, ...): jittered, bounded exponential. */
export function redisBackoff(times: number, random: () => number = Math.random): number {
  const cap = Math.min(REDIS_BACKOFF_MAX_MS, REDIS_BACKOFF_MIN_MS * 2 ** Math.min(Math.max(times, 1), 16));
  return Math.floor(cap / 2 + (random() * cap) / 2);
}

/** reasonOf - an ioredis error as a short cause for a log line. */
function reasonOf(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (/enableOfflineQueue|Connection is closed|isn't ready/.test(msg)) return "not connected";
  if (msg === "Command timed out") return "no reply in time";
  if (/max retries per request/i.test(msg)) return "connection lost";
  const e = err as { syscall?: unknown; address?: unknown; port?: unknown };
  if (typeof e.syscall === "string" && typeof e.address === "string")
    return `${e.syscall} to ${e.address}${typeof e.port === "number" ? `:${e.port}` : ""}: ${errorText(err)}`;
  return errorText(err).replace(/\s+/g, " ").replace(/\.$/, "").slice(0, 200);
}

/** ignoreError - the listener that keeps a stream's later errors from becoming uncaught exceptions. */
function ignoreError(): void {}

type ConnectorClass = NonNullable<RedisOptions["Connector"]>;

/**
 * redisConnector - the ioredis Connector of a link. Each connect opens one
 * stream: with `servers` (a standalone failover list), the first server,
 * then the next one at every reconnect (ioredis reconnects after each
 * failure); without, the host, port or path ioredis gives (a Cluster node).
 * Every stream keeps an error listener while it lives (see the header).
 */
export function redisConnector(servers?: readonly RedisServer[]): ConnectorClass {
  return class RedisLinkConnector extends AbstractConnector {
    readonly #options: RedisOptions;
    readonly #servers: readonly RedisServer[];
    #connects = 0;

    constructor(options: unknown) {
      const o = options as RedisOptions;
      super(o.disconnectTimeout ?? 2000); // ioredis fills in its defaults: 2000 is its own
      this.#options = o;
      this.#servers = servers ?? [o.path ? { path: o.path } : { host: o.host ?? "localhost", port: o.port ?? REDIS_DEFAULT_PORT }];
    }

    /** connect - a stream to the server of this attempt, opened on the next tick (as ioredis's own connector). */
    connect(): Promise<Socket> {
      const server = this.#servers[this.#connects++ % this.#servers.length]!;
      this.connecting = true;
      return new Promise((resolve, reject) => {
        process.nextTick(() => {
          if (!this.connecting) {
            reject(new Error("Connection is closed."));
            return;
          }
          let stream: Socket;
          try {
            const tls = this.#options.tls;
            stream = tls ? tlsConnect({ ...server, ...tls }) : createConnection(server);
          } catch (err) {
            reject(err);
            return;
          }
          stream.once("error", (err) => {
            this.firstError = err;
          });
          stream.on("error", ignoreError);
          this.stream = stream;
          resolve(stream);
        });
      });
    }
  };
}

const links = new Map<string, RedisLink>();

/** redisLinksOpen - the links this process has open (statistics: is every shared store reachable?). */
export function redisLinksOpen(): RedisLink[] {
  return [...links.values()];
}

/** RedisLink - the client, its deadline, its outage state. */
export class RedisLink {
  readonly table: RedisTable;
  /** "redis:TABLE" for log lines. */
  readonly label: string;
  readonly client: RedisClient;
  #refs = 1;
  #down = false;
  #lastFailure = 0;
  /** Why the connection is not up, from connection events, for the outage warning. */
  #connError: string | undefined;
  #upTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** false until connect() (a link opened while connects are deferred). */
  #started: boolean;
  /** Settles when the first connection attempt has (ready or failed); undefined once it has. */
  #firstAttempt: Promise<void> | undefined;
  /** Standalone only: a request timed out and the server has not answered since (see the header); the next probe. */
  #stalled = false;
  #probeTimer: NodeJS.Timeout | undefined;
  /** The requests waiting for an answer (how #stall answers them at once). */
  readonly #waiting = new Set<(err: RedisUnavailableError) => void>();

  constructor(table: RedisTable, opts: { lazy?: boolean } = {}) {
    this.#started = opts.lazy !== true;
    this.table = table;
    this.label = `redis:${table.path}`;
    const t = table.timeoutMs;
    const common = {
      commandTimeout: t,
      maxRetriesPerRequest: 0,
      connectTimeout: Math.max(REDIS_CONNECT_TIMEOUT_MS, t),
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      enableAutoPipelining: false,
      keepAlive: 30_000,
      connectionName: "tlsmgr",
      disableClientInfo: true,
      ...(table.username !== undefined ? { username: table.username } : {}),
      ...(table.password !== undefined ? { password: table.password } : {}),
      ...(table.tls !== undefined ? { tls: { ...table.tls } } : {}),
    } satisfies RedisOptions;
    if (table.cluster) {
      const opts: ClusterOptions = {
        lazyConnect: !this.#started,
        enableOfflineQueue: false,
        enableReadyCheck: true,
        clusterRetryStrategy: (times) => redisBackoff(times),
        retryDelayOnFailover: Math.min(100, t),
        retryDelayOnClusterDown: Math.min(100, t),
        retryDelayOnTryAgain: Math.min(100, t),
        slotsRefreshTimeout: Math.max(1000, t),
        redisOptions: { ...common, Connector: redisConnector() },
      };
      // The table parser refuses UNIX-domain sockets with cluster = yes.
      const nodes = table.servers.filter((s): s is { host: string; port: number } => !("path" in s));
      this.client = new Cluster(nodes, opts);
      this.client.on("node error", (err: unknown) => {
        this.#connError = reasonOf(err);
        this.#fail(err);
      });
    } else {
      const opts: RedisOptions = {
        ...common,
        db: table.database,
        enableOfflineQueue: false,
        enableReadyCheck: true,
        lazyConnect: !this.#started,
        retryStrategy: (times) => redisBackoff(times),
        // Several standalone servers are a failover list: after a failure, the next one.
        Connector: redisConnector(table.servers),
      };
      this.client = new Redis(opts);
    }
    this.client.on("error", (err: unknown) => {
      this.#connError = reasonOf(err);
      this.#fail(err);
    });
    this.client.on("close", () => {
      this.#connError ??= "connection closed";
    });
    this.client.on("ready", () => {
      this.#connError = undefined;
      this.#up();
    });
  }

  /**
   * connect - start a link opened while connects were deferred; resolves
   * true once connected, false after REDIS_OPEN_WAIT_MS (then it goes on
   * trying, and the outage is logged).
   */
  connect(): Promise<boolean> {
    if (this.#started || this.#closed) return this.waitReady(0);
    this.#started = true;
    this.#firstAttempt = new Promise<void>((resolve) => {
      const settle = () => {
        this.client.off("ready", settle);
        this.client.off("error", settle);
        this.client.off("node error", settle);
        this.#firstAttempt = undefined;
        resolve();
      };
      this.client.on("ready", settle);
      this.client.on("error", settle);
      this.client.on("node error", settle);
    });
    // Failures arrive as "error" events (see the constructor): nothing to do here.
    this.client.connect().catch(() => undefined);
    return this.waitReady(REDIS_OPEN_WAIT_MS);
  }

  /** #fail - note a failure; the first of an outage is logged. */
  #fail(err: unknown): void {
    if (this.#closed) return;
    this.#lastFailure = performance.now();
    if (this.#down) return;
    this.#down = true;
    let reason = reasonOf(err);
    if (reason === "not connected") reason = `not connected: ${this.#connError ?? `connection ${this.client.status}`}`;
    msgWarn(
      `${this.label}: server unavailable: ${reason}; until it answers, session cache requests` +
        " using it miss and session ticket keys stored in it are replaced by local ones",
    );
  }

  /** #up - note a success; it ends an outage once no failure came for REDIS_RECOVERY_QUIET_MS. */
  #up(): void {
    if (this.#closed || !this.#down || this.#upTimer) return;
    const quiet = performance.now() - this.#lastFailure;
    if (quiet >= REDIS_RECOVERY_QUIET_MS) {
      this.#down = false;
      msgInfo(`${this.label}: server answers again`);
      return;
    }
    this.#upTimer = setTimeout(() => {
      this.#upTimer = undefined;
      // Check again rather than give up when it is not quiet long enough yet:
      // a timer can fire a little early (libuv's loop clock lags), and an
      // idle link gets no other success to end the outage. While connected,
      // #up ends the outage or waits again; when not, the next "ready" does.
      if (this.client.status === "ready") this.#up();
    }, REDIS_RECOVERY_QUIET_MS - quiet + 1);
    this.#upTimer.unref();
  }

  /** stalled - true while requests are refused at once after a timeout (see the header). */
  get stalled(): boolean {
    return this.#stalled;
  }

  /** down - true during an outage (from a failure until the end described in the header). */
  get down(): boolean {
    return this.#down;
  }

  /**
   * state - for statistics: "down" during an outage, "up" when connected,
   * else ioredis's status ("connecting", "reconnecting", ...); and why it is
   * not up, when known.
   */
  get state(): { state: string; reason: string | undefined } {
    const status = this.client.status;
    const state = this.#down ? "down" : status === "ready" ? "up" : status;
    return { state, reason: state === "up" ? undefined : this.#connError };
  }

  /**
   * run - one operation against Redis, settled within the table's timeout.
   * Rejects with RedisUnavailableError on any failure (already logged as an outage).
   */
  run<T>(op: (client: RedisClient) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new RedisUnavailableError(`${this.label}: closed`));
    // Not connected before the privilege drop (see the header): a miss, no outage.
    if (!this.#started) return Promise.reject(new RedisUnavailableError(`${this.label}: not connected yet`));
    const first = this.#firstAttempt;
    if (first !== undefined) {
      const bound = new Promise<void>((resolve) => setTimeout(resolve, this.table.timeoutMs).unref());
      return Promise.race([first, bound]).then(() => this.#run(op));
    }
    return this.#run(op);
  }

  /** #run - run() once the first connection attempt has settled. */
  #run<T>(op: (client: RedisClient) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new RedisUnavailableError(`${this.label}: closed`));
    if (this.#stalled) {
      redisCounters.errors++;
      return Promise.reject(new RedisUnavailableError(`no reply within ${this.table.timeoutMs} ms (server stalled)`));
    }
    const t0 = performance.now();
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      // giveUp - answer now: the server stalled (this request's timeout, or another's: see #stall)
      const giveUp = (err: RedisUnavailableError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#waiting.delete(giveUp);
        redisCounters.errors++;
        reject(err);
      };
      const timer = setTimeout(() => {
        if (settled) return;
        const err = new RedisUnavailableError(`no reply within ${this.table.timeoutMs} ms`);
        this.#fail(err);
        giveUp(err);
        this.#stall();
      }, this.table.timeoutMs);
      this.#waiting.add(giveUp);
      let started: Promise<T>;
      try {
        started = op(this.client);
      } catch (err) {
        started = Promise.reject(err);
      }
      started.then(
        (value) => {
          clearTimeout(timer);
          if (settled) return;
          settled = true;
          this.#waiting.delete(giveUp);
          redisCounters.command.observeSince(t0);
          this.#up();
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          if (settled) return;
          settled = true;
          this.#waiting.delete(giveUp);
          redisCounters.errors++;
          this.#fail(err);
          reject(new RedisUnavailableError(reasonOf(err)));
          if (reasonOf(err) === "no reply in time") this.#stall(); // ioredis's own commandTimeout came first
        },
      );
    });
  }

  /**
   * #stall - a request timed out: the requests still waiting are answered
   * now (they were sent after it to a server that does not answer: waiting
   * out their own timeouts would only make them later), new ones are
   * refused at once, and PING probes until the server answers (standalone;
   * see the header).
   */
  #stall(): void {
    if (this.table.cluster || this.#stalled || this.#closed) return;
    this.#stalled = true;
    const err = new RedisUnavailableError(`no reply within ${this.table.timeoutMs} ms (server stalled)`);
    for (const giveUp of [...this.#waiting]) giveUp(err);
    this.#probeTimer = setTimeout(() => this.#probe(), REDIS_PROBE_MS);
    this.#probeTimer.unref();
  }

  /** #probe - one PING within the timeout: an answer ends the stall, a timeout probes again, another failure ends it too (then ioredis fails fast). */
  #probe(): void {
    this.#probeTimer = undefined;
    if (!this.#stalled || this.#closed) return;
    let done = false;
    const again = () => {
      this.#probeTimer = setTimeout(() => this.#probe(), REDIS_PROBE_MS);
      this.#probeTimer.unref();
    };
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      this.#lastFailure = performance.now();
      again();
    }, this.table.timeoutMs);
    timer.unref();
    this.client.ping().then(
      () => {
        clearTimeout(timer);
        if (done) return;
        done = true;
        this.#stalled = false;
        this.#up();
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (done) return;
        done = true;
        if (reasonOf(err) === "no reply in time") again();
        else this.#stalled = false; // not connected: ioredis refuses at once by itself, and reconnects
      },
    );
  }

  /** scanTargets - the servers a SCAN must visit: the client, or each Cluster master. */
  scanTargets(): Redis[] {
    if (this.client instanceof Cluster) return this.client.nodes("master");
    return [this.client];
  }

  /** waitReady - resolve true once connected, false after ms (or on close). */
  waitReady(ms: number): Promise<boolean> {
    if (this.client.status === "ready") return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.client.off("ready", onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.client.on("ready", onReady);
    });
  }

  /** acquire - one more user of this link. */
  acquire(): this {
    this.#refs++;
    return this;
  }

  /** release - one user fewer; the last one closes the connection. */
  async release(): Promise<void> {
    if (this.#closed || --this.#refs > 0) return;
    this.#closed = true;
    if (this.#upTimer) clearTimeout(this.#upTimer);
    if (this.#probeTimer) clearTimeout(this.#probeTimer);
    if (links.get(this.table.path) === this) links.delete(this.table.path);
    if (!this.#started) {
      this.client.disconnect(); // never connected: nothing to say goodbye to
      return;
    }
    const quit = this.client.quit().catch(() => undefined);
    const grace = new Promise<void>((resolve) => setTimeout(resolve, Math.max(200, this.table.timeoutMs)).unref());
    await Promise.race([quit, grace]);
    this.client.disconnect();
  }
}

/**
 * redisLinkOpen - the link for table file PATH: shared when another user
 * has it open, else the table is read (fatal when bad) and a connection
 * started. Waits up to REDIS_OPEN_WAIT_MS for it, then serves misses
 * until it comes (the outage is logged).
 */
export async function redisLinkOpen(path: string, opts: { table?: RedisTable; waitMs?: number } = {}): Promise<RedisLink> {
  const have = links.get(path);
  if (have) return have.acquire();
  const link = new RedisLink(opts.table ?? redisTableRead(path), { lazy: deferring });
  for (const w of redisExposureWarnings(link.label, link.table)) msgWarn(w);
  links.set(path, link);
  if (deferring) deferred.add(link);
  else await link.waitReady(opts.waitMs ?? REDIS_OPEN_WAIT_MS);
  return link;
}

/** While true, links open without connecting (see "Privileges" in the header). */
let deferring = false;
const deferred = new Set<RedisLink>();

/** redisDeferConnects - from now on, open links without connecting them (a daemon started as root, before its privilege drop). */
export function redisDeferConnects(): void {
  deferring = true;
}

/**
 * redisConnectDeferred - connect the links opened since redisDeferConnects()
 * (after the privilege drop); later links connect at once again. Resolves
 * when each is connected or has waited REDIS_OPEN_WAIT_MS.
 */
export async function redisConnectDeferred(): Promise<void> {
  deferring = false;
  const starting = [...deferred].map((l) => l.connect());
  deferred.clear();
  await Promise.all(starting);
}
