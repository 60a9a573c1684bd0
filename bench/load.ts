/**
 * load.ts - the load generator: N persistent unix-socket connections to a
 *           tlsmgr, each sending one request at a time as smtpd and smtp do.
 * Owns: the connection state machine (announcement, request, reply, timing),
 *       the measured run (warm-up, then a timed window with per-kind
 *       histograms, optional per-interval series), CPU accounting of the
 *       generator and of the daemon over the window, and the pre-fill.
 * Not here: the request texts (bench/wire.ts), ids and values
 *           (bench/workload.ts), starting daemons (bench/targets.ts).
 * See also: bench/run.ts, postfix/src/tls/tls_mgr.c (the real client)
 *
 * The generator is single-threaded and deliberately lean (prebuilt strings,
 * no reply decoding beyond the status), so that on a 2-core machine one core
 * drives the daemon on the other. Its own CPU time is reported so that a run
 * limited by the generator shows as such.
 */

import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { LatencyHistogram } from "./histogram.js";
import { MixPicker, REQUEST_KINDS, Rng, type Mix, type RequestKind } from "./mix.js";
import { machineBusySeconds, procCpuSeconds } from "./proc-stats.js";
import {
  deleteRequest, lookupRequest, policyRequest, replyAttr, replyEnd, replySessionTag, replyStatus, seedRequest,
  tktkeyRequest, updateRequest,
} from "./wire.js";
import { chooseId, type Keyspace, type SessionPool } from "./workload.js";

/** Bytes of each connection's read buffer (a reply is at most a few KiB; longer ones are reassembled). */
const READ_BUFFER_BYTES = 64 * 1024;

/** Reply handler of a connection: the request's kind, status (STATUS_UNREADABLE for a broken reply), latency in us. */
type ReplySink = (conn: LoadConnection, kind: RequestKind, status: number, latencyUs: number) => void;

/** LoadConnection - one client connection, at most one request in flight */
export class LoadConnection {
  readonly #socket: Socket;
  #pending: Buffer | undefined;
  #announced = false;
  #sentAt = 0;
  #onAnnounce: ((err?: Error) => void) | undefined;
  /** the kind of the request in flight, undefined when idle */
  inFlight: RequestKind | undefined;
  dead = false;
  lastError: string | undefined;
  sink: ReplySink = () => undefined;
  /** called when the connection fails (closed, error, timeout) */
  onDead: (conn: LoadConnection) => void = () => undefined;

  private constructor(path: string) {
    // onread: replies land in one reused buffer, without the Readable stream machinery
    const readBuf = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    this.#socket = connect({
      path,
      onread: {
        buffer: readBuf,
        callback: (n: number, buf: Uint8Array): boolean => {
          this.#onData(buf as Buffer, n);
          return true;
        },
      },
    });
    this.#socket.on("error", (err) => this.#fail(`socket error: ${err.message}`));
    this.#socket.on("close", () => this.#fail("connection closed by server"));
    this.#socket.on("end", () => this.#fail("connection closed by server"));
  }

  /** open - connect and wait for the server's announcement */
  static open(path: string, timeoutMs: number): Promise<LoadConnection> {
    return new Promise((resolve, reject) => {
      const conn = new LoadConnection(path);
      const t = setTimeout(() => {
        conn.close();
        reject(new Error(`${path}: no announcement within ${timeoutMs} ms`));
      }, timeoutMs);
      conn.#onAnnounce = (err) => {
        clearTimeout(t);
        if (err) reject(err);
        else resolve(conn);
      };
    });
  }

  /** sentAt - performance.now() of the request in flight */
  get sentAt(): number {
    return this.#sentAt;
  }

  /** send - write one request (latin1 text) and start its clock */
  send(kind: RequestKind, text: string): void {
    this.inFlight = kind;
    this.#sentAt = performance.now();
    this.#socket.write(text, "latin1");
  }

  close(): void {
    this.dead = true;
    this.#socket.destroy();
  }

  #fail(why: string): void {
    if (this.#onAnnounce) {
      const f = this.#onAnnounce;
      this.#onAnnounce = undefined;
      f(new Error(why));
    }
    if (this.dead) return;
    this.dead = true;
    this.lastError = why;
    this.#socket.destroy();
    this.onDead(this);
  }

  /** timeout - give up on the request in flight */
  timeout(ms: number): void {
    this.#fail(`no reply within ${ms} ms`);
  }

  // onData - n bytes arrived in the shared read buffer (valid only during this call)
  #onData(readBuf: Buffer, n: number): void {
    let buf = readBuf;
    let len = n;
    if (this.#pending !== undefined) {
      buf = Buffer.concat([this.#pending, readBuf.subarray(0, n)]);
      len = buf.length;
      this.#pending = undefined;
    }
    let start = 0;
    if (!this.#announced) {
      const end = replyEnd(buf, 0, len);
      if (end < 0) {
        this.#pending = Buffer.from(buf.subarray(0, len));
        return;
      }
      this.#announced = true;
      if (replyAttr(buf, 0, "protocol") !== "tlsmgr_protocol") {
        this.#fail("bad server announcement");
        return;
      }
      const f = this.#onAnnounce;
      this.#onAnnounce = undefined;
      f?.();
      start = end;
      if (start === len) return;
    }
    const end = replyEnd(buf, start, len);
    if (end < 0) {
      this.#pending = Buffer.from(buf.subarray(start, len));
      return;
    }
    const latency = (performance.now() - this.#sentAt) * 1000;
    const kind = this.inFlight;
    if (kind === undefined || end !== len) {
      this.#fail("reply without a request, or more than one reply");
      return;
    }
    lastReply = buf.subarray(0, len);
    lastReplyStart = start;
    this.inFlight = undefined;
    this.sink(this, kind, replyStatus(buf, start), latency);
  }
}

// The reply just received, valid only while the sink runs (it may lie in the shared read buffer).
let lastReply: Buffer = Buffer.alloc(0);
let lastReplyStart = 0;

/** Counters and latencies of one request kind. */
export interface KindStats {
  /** replies with status 0 */
  ok: number;
  /** replies with status -1 (lookup/delete miss, unknown ticket key) */
  miss: number;
  /** status -2, unreadable replies, timeouts and failed connections */
  errors: number;
  hist: LatencyHistogram;
}

function newKindStats(): KindStats {
  return { ok: 0, miss: 0, errors: 0, hist: new LatencyHistogram() };
}

export interface LoadOptions {
  socket: string;
  clients: number;
  /** measured seconds (after the warm-up) */
  durationSec: number;
  warmupSec: number;
  mix: Mix;
  keyspace: Keyspace;
  /** keyspace indexes [lo, hi) that lookups and updates draw from (default: all) */
  range?: [number, number];
  /** share of lookups for a keyspace id (the rest miss); default 0.9 */
  lookupHit?: number;
  /** share of updates that overwrite a keyspace id (the rest store new ids); default 0.9 */
  updateOverwrite?: number;
  sessions: SessionPool;
  seed: number;
  /** seed request size; default 32 (tls_daemon_rand_bytes) */
  seedSize?: number;
  /** share of tktkey requests naming the current key (decrypting a ticket); default 0.1 */
  tktkeyNamed?: number;
  /** reply timeout, ms; default 10000 */
  timeoutMs?: number;
  /** pid of the daemon whose CPU is measured over the window */
  daemonPid?: () => number | undefined;
  /** with a value: a series of per-interval figures over warm-up and window */
  seriesIntervalMs?: number;
  /** stop early when this resolves true (checked each 100 ms) */
  stopWhen?: () => boolean;
  /** record every request of the window slower than this (us) in LoadResult.slow */
  slowUs?: number;
  /**
   * A farm: connection i goes to hosts[i % hosts.length], with that host's
   * sessions and daemon (socket, sessions and daemonPid above are then
   * unused); LoadResult.perHost has each host's figures.
   */
  hosts?: LoadHost[];
  /** pids of a shared store (Redis) whose CPU is measured over the window */
  storePids?: () => number[];
  /** count, per host, lookup hits on entries this host wrote and on entries another host wrote (sessions tagged: workload.ts) */
  trackOrigin?: boolean;
  /** actions run once, each at its time (seconds since the load began, warm-up included; checked every 20 ms) */
  actions?: Array<[number, () => void]>;
}

/** One host of a farm load. */
export interface LoadHost {
  socket: string;
  /** this host's session values (tagged with its index for trackOrigin) */
  sessions: SessionPool;
  daemonPid?: () => number | undefined;
}

/** One host's figures over the window. */
export interface HostLoad {
  byKind: Partial<Record<RequestKind, KindStats>>;
  all: LatencyHistogram;
  requests: number;
  errors: number;
  daemonCpuSec: number | undefined;
  /** lookup hits (trackOrigin): on entries this host wrote, another host wrote, or untagged ones */
  hitsOwn: number;
  hitsOther: number;
  hitsUntagged: number;
}

export interface SeriesPoint {
  /** seconds since the start of the load (warm-up included) */
  t: number;
  count: number;
  errors: number;
  p50: number;
  p99: number;
  max: number;
}

export interface LoadResult {
  clients: number;
  windowSec: number;
  byKind: Partial<Record<RequestKind, KindStats>>;
  all: LatencyHistogram;
  requests: number;
  errors: number;
  /** generator CPU seconds (user + system) over the window */
  genCpuSec: number;
  /** daemon CPU seconds over the window, undefined when not measured */
  daemonCpuSec: number | undefined;
  /** CPU seconds the whole machine was busy over the window (/proc/stat), the two above included */
  machineBusySec: number;
  series: SeriesPoint[];
  /** update requests that stored ids outside the key space (new entries), warm-up included */
  freshUpdates: number;
  /** the histogram of each series interval (index i covers [i, i+1) intervals from startMs) */
  seriesHists: LatencyHistogram[];
  /** wall-clock ms (Date.now) when the load started (warm-up included) */
  startMs: number;
  /** why connections died */
  failures: string[];
  /** wall-clock ms (Date.now) of the start of the measured window */
  windowStartMs: number;
  /** per series interval: lookups answered and lookups with status 0 (warm-up included) */
  seriesLookups: Array<[number, number]>;
  /** with slowUs: [start us on the monotonic clock (MONO_BASE_US), latency us, kind index in REQUEST_KINDS] per slow request */
  slow: number[];
  /** the measured window on the monotonic clock, us */
  windowMonoUs: [number, number];
  /** each host's figures (one entry without LoadOptions.hosts) */
  perHost: HostLoad[];
  /** CPU seconds of LoadOptions.storePids over the window */
  storeCpuSec: number | undefined;
  /** performance.now() when the load began (the series' time 0) */
  t0: number;
}

/** us on the monotonic clock (process.hrtime: the same clock in every process) at performance.now() === 0 */
export const MONO_BASE_US = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;

/** openConnections - n connections in parallel batches; rejects on the first failure */
export async function openConnections(path: string, n: number, timeoutMs = 10_000): Promise<LoadConnection[]> {
  const conns: LoadConnection[] = [];
  try {
    for (let i = 0; i < n; i += 16) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(16, n - i) }, () => LoadConnection.open(path, timeoutMs)),
      );
      conns.push(...batch);
    }
  } catch (e) {
    for (const c of conns) c.close();
    throw e;
  }
  return conns;
}

/** oneRequest - send one request on a connection and wait for its reply; the status and the reply bytes */
export function oneRequest(conn: LoadConnection, kind: RequestKind, text: string, timeoutMs = 10_000):
  Promise<{ status: number; reply: Buffer; start: number }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      conn.timeout(timeoutMs);
      reject(new Error(`no reply to ${kind} within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.onDead = (c) => {
      clearTimeout(t);
      reject(new Error(c.lastError ?? "connection failed"));
    };
    conn.sink = (_c, _kind, status) => {
      clearTimeout(t);
      conn.onDead = () => undefined;
      resolve({ status, reply: Buffer.from(lastReply.subarray(lastReplyStart)), start: 0 });
    };
    conn.send(kind, text);
  });
}

/** currentTicketKeyName - base64 of the name of the daemon's current ticket key, or "" when it has none */
export async function currentTicketKeyName(conn: LoadConnection): Promise<string> {
  const r = await oneRequest(conn, "tktkey", tktkeyRequest(""));
  if (r.status !== 0) return "";
  const keybuf = Buffer.from(replyAttr(r.reply, r.start, "keybuf") ?? "", "base64");
  return keybuf.length >= 16 ? keybuf.subarray(0, 16).toString("base64") : "";
}

/** RequestBuilder - the next request of a connection: its kind and text */
export class RequestBuilder {
  readonly #picker: MixPicker;
  readonly #rng: Rng;
  readonly #o: LoadOptions;
  readonly #lo: number;
  readonly #hi: number;
  readonly #seedText: string;
  readonly #tktAnon = tktkeyRequest("");
  readonly #tktNamed: string | undefined;
  /** update requests sent for ids outside the key space (new cache entries) */
  freshUpdates = 0;

  constructor(o: LoadOptions, seed: number, keyName: string) {
    this.#o = o;
    this.#picker = new MixPicker(o.mix);
    this.#rng = new Rng(seed);
    [this.#lo, this.#hi] = o.range ?? [0, o.keyspace.ids.length];
    this.#seedText = seedRequest(o.seedSize ?? 32);
    this.#tktNamed = keyName === "" ? undefined : tktkeyRequest(keyName);
  }

  /** next - the kind and text of the next request */
  next(): [RequestKind, string] {
    const rng = this.#rng;
    const kind = this.#picker.pick(rng.next());
    const o = this.#o;
    switch (kind) {
      case "lookup": {
        const c = chooseId(o.keyspace, this.#lo, this.#hi, o.lookupHit ?? 0.9, rng);
        return [kind, lookupRequest(c.type, c.id)];
      }
      case "update": {
        const c = chooseId(o.keyspace, this.#lo, this.#hi, o.updateOverwrite ?? 0.9, rng);
        if (c.index < 0) this.freshUpdates++;
        const s = o.sessions.b64[rng.int(o.sessions.b64.length)]!;
        return [kind, updateRequest(c.type, c.id, s)];
      }
      case "tktkey":
        return [kind, this.#tktNamed !== undefined && rng.next() < (o.tktkeyNamed ?? 0.1) ? this.#tktNamed : this.#tktAnon];
      case "seed":
        return [kind, this.#seedText];
      case "delete": {
        const c = chooseId(o.keyspace, this.#lo, this.#hi, 1, rng);
        return [kind, deleteRequest(c.type, c.id)];
      }
      case "policy":
        return [kind, policyRequest(rng.next() < 0.5 ? "smtpd" : "smtp")];
    }
  }
}

/** classify - count a reply's status into a kind's stats */
function classify(s: KindStats, status: number): void {
  if (status === 0) s.ok++;
  else if (status === -1) s.miss++;
  else s.errors++;
}

/**
 * runLoad - open the connections, warm up, measure for durationSec, then
 * let the requests in flight finish and close. Connections that fail are
 * counted (errors, failures) and not replaced.
 */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const hosts: LoadHost[] = o.hosts ?? [{ socket: o.socket, sessions: o.sessions, ...(o.daemonPid ? { daemonPid: o.daemonPid } : {}) }];
  const H = hosts.length;
  // connection i belongs to host i % H
  const perHostConns: LoadConnection[][] = [];
  try {
    for (let h = 0; h < H; h++) {
      const n = Math.floor(o.clients / H) + (h < o.clients % H ? 1 : 0);
      perHostConns.push(n > 0 ? await openConnections(hosts[h]!.socket, n, timeoutMs) : []);
    }
  } catch (e) {
    for (const list of perHostConns) for (const c of list) c.close();
    throw e;
  }
  const conns: LoadConnection[] = [];
  const hostOf: number[] = [];
  for (let i = 0; i < o.clients; i++) {
    conns.push(perHostConns[i % H]![Math.floor(i / H)]!);
    hostOf.push(i % H);
  }
  const keyNames: string[] = [];
  for (let h = 0; h < H; h++) keyNames.push(perHostConns[h]!.length > 0 ? await currentTicketKeyName(perHostConns[h]![0]!) : "");

  const hostStats: HostLoad[] = hosts.map(() => {
    const byKind: Partial<Record<RequestKind, KindStats>> = {};
    for (const k of REQUEST_KINDS) if ((o.mix[k] ?? 0) > 0) byKind[k] = newKindStats();
    return { byKind, all: new LatencyHistogram(), requests: 0, errors: 0, daemonCpuSec: undefined, hitsOwn: 0, hitsOther: 0, hitsUntagged: 0 };
  });
  const failures: string[] = [];

  const t0 = performance.now();
  const startMs = Date.now();
  const warmEnd = t0 + o.warmupSec * 1000;
  const runEnd = warmEnd + o.durationSec * 1000;
  let recording = false;
  let running = true;
  let genCpu0 = process.cpuUsage();
  let daemonCpu0: Array<number | undefined> = [];
  let busy0 = 0;
  let windowStartMs = Date.now();
  let windowStart = warmEnd;

  const interval = o.seriesIntervalMs;
  const seriesHist: LatencyHistogram[] = [];
  const seriesErr: number[] = [];
  const seriesLookups: Array<[number, number]> = [];

  const builders = conns.map((_, i) =>
    new RequestBuilder({ ...o, sessions: hosts[hostOf[i]!]!.sessions }, o.seed * 7919 + i + 1, keyNames[hostOf[i]!]!));
  let idle = 0;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => { resolveDone = r; });

  const sendNext = (c: LoadConnection, i: number): void => {
    if (!running || c.dead) {
      idle++;
      if (idle === conns.length) resolveDone();
      return;
    }
    const [kind, text] = builders[i]!.next();
    c.send(kind, text);
  };

  const slow: number[] = [];
  const slowUs = o.slowUs ?? Number.POSITIVE_INFINITY;
  const trackOrigin = o.trackOrigin === true;
  conns.forEach((c, i) => {
    const h = hostOf[i]!;
    const hs = hostStats[h]!;
    c.sink = (conn, kind, status, us) => {
      if (recording) {
        const s = hs.byKind[kind];
        if (s !== undefined) {
          classify(s, status);
          s.hist.record(us);
        }
        hs.all.record(us);
        if (us >= slowUs) slow.push(MONO_BASE_US + conn.sentAt * 1000, us, REQUEST_KINDS.indexOf(kind));
        if (trackOrigin && kind === "lookup" && status === 0) {
          const tag = replySessionTag(lastReply, lastReplyStart);
          if (tag < 0) hs.hitsUntagged++;
          else if (tag === h) hs.hitsOwn++;
          else hs.hitsOther++;
        }
      }
      if (interval !== undefined) {
        const slot = Math.floor((performance.now() - t0) / interval);
        (seriesHist[slot] ??= new LatencyHistogram()).record(us);
        if (status !== 0 && status !== -1) seriesErr[slot] = (seriesErr[slot] ?? 0) + 1;
        if (kind === "lookup") {
          const l = (seriesLookups[slot] ??= [0, 0]);
          l[0]++;
          if (status === 0) l[1]++;
        }
      }
      sendNext(conn, i);
    };
    c.onDead = (conn) => {
      failures.push(conn.lastError ?? "connection failed");
      if (recording && conn.inFlight !== undefined) {
        const s = hs.byKind[conn.inFlight];
        if (s) s.errors++;
      }
      idle++;
      if (idle === conns.length) resolveDone();
    };
  });

  const daemonCpu = (h: number): number | undefined => {
    const pid = hosts[h]!.daemonPid?.();
    return pid === undefined ? undefined : procCpuSeconds(pid)?.total;
  };
  const daemonCpus = (): Array<number | undefined> => hosts.map((_, h) => daemonCpu(h));
  const storeCpu = (): number | undefined => {
    if (o.storePids === undefined) return undefined;
    let sum = 0;
    for (const pid of o.storePids()) sum += procCpuSeconds(pid)?.total ?? 0;
    return sum;
  };
  let storeCpu0: number | undefined;

  const actions = [...(o.actions ?? [])].sort((a, b) => a[0] - b[0]);
  const ticker = setInterval(() => {
    const now = performance.now();
    while (actions.length > 0 && now - t0 >= actions[0]![0] * 1000) actions.shift()![1]();
    if (!recording && now >= warmEnd) {
      recording = true;
      windowStart = now;
      windowStartMs = Date.now();
      genCpu0 = process.cpuUsage();
      daemonCpu0 = daemonCpus();
      storeCpu0 = storeCpu();
      busy0 = machineBusySeconds();
    }
    if (now >= runEnd || (o.stopWhen?.() ?? false)) running = false;
    for (const c of conns) {
      if (!c.dead && c.inFlight !== undefined && now - c.sentAt > timeoutMs) c.timeout(timeoutMs);
    }
  }, 20);

  if (o.warmupSec <= 0) {
    recording = true;
    windowStart = performance.now();
    windowStartMs = Date.now();
    genCpu0 = process.cpuUsage();
    daemonCpu0 = daemonCpus();
    storeCpu0 = storeCpu();
    busy0 = machineBusySeconds();
  }
  conns.forEach((c, i) => sendNext(c, i));
  await done;
  const windowEnd = performance.now();
  clearInterval(ticker);
  const gen = process.cpuUsage(genCpu0);
  const d1 = daemonCpus();
  const st1 = storeCpu();
  const busy1 = machineBusySeconds();
  for (const c of conns) c.close();

  // each host's totals, then the whole load: every host's histograms merged
  const byKind: Partial<Record<RequestKind, KindStats>> = {};
  const all = new LatencyHistogram();
  let errors = 0;
  let requests = 0;
  let daemonCpuSec: number | undefined = 0;
  hostStats.forEach((hs, h) => {
    for (const k of REQUEST_KINDS) {
      const s = hs.byKind[k];
      if (!s) continue;
      hs.errors += s.errors;
      hs.requests += s.ok + s.miss + s.errors;
      const t = (byKind[k] ??= newKindStats());
      t.ok += s.ok;
      t.miss += s.miss;
      t.errors += s.errors;
      t.hist.merge(s.hist);
    }
    all.merge(hs.all);
    errors += hs.errors;
    requests += hs.requests;
    const a = daemonCpu0[h];
    const b = d1[h];
    hs.daemonCpuSec = a !== undefined && b !== undefined ? b - a : undefined;
    daemonCpuSec = daemonCpuSec === undefined || hs.daemonCpuSec === undefined ? undefined : daemonCpuSec + hs.daemonCpuSec;
  });
  const series: SeriesPoint[] = [];
  if (interval !== undefined) {
    for (let i = 0; i < seriesHist.length; i++) {
      const h = (seriesHist[i] ??= new LatencyHistogram());
      series.push({
        t: ((i + 1) * interval) / 1000,
        count: h.count,
        errors: seriesErr[i] ?? 0,
        p50: h.percentile(50),
        p99: h.percentile(99),
        max: h.max,
      });
    }
  }
  return {
    clients: o.clients,
    windowSec: (windowEnd - windowStart) / 1000,
    byKind,
    all,
    requests,
    errors,
    genCpuSec: (gen.user + gen.system) / 1e6,
    daemonCpuSec,
    machineBusySec: busy1 - busy0,
    series,
    seriesHists: seriesHist,
    startMs,
    freshUpdates: builders.reduce((a, b) => a + b.freshUpdates, 0),
    failures,
    windowStartMs,
    slow,
    windowMonoUs: [MONO_BASE_US + windowStart * 1000, MONO_BASE_US + windowEnd * 1000],
    perHost: hostStats,
    t0,
    storeCpuSec: st1 !== undefined && storeCpu0 !== undefined ? st1 - storeCpu0 : undefined,
    seriesLookups,
  };
}

export interface PrefillResult {
  entries: number;
  seconds: number;
  errors: number;
}

/**
 * prefill - store keyspace ids [lo, hi) with update requests over `clients`
 * connections (one request at a time each: Postfix's tlsmgr answers only
 * the first of several pipelined requests). Values come from the pool.
 */
export async function prefill(socket: string, ks: Keyspace, lo: number, hi: number, sessions: SessionPool,
  clients = 32, seed = 1, timeoutMs = 30_000): Promise<PrefillResult> {
  const conns = await openConnections(socket, clients, timeoutMs);
  const rng = new Rng(seed ^ 0xf111);
  let next = lo;
  let errors = 0;
  let active = conns.length;
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const step = (c: LoadConnection): void => {
      if (next >= hi) {
        if (--active === 0) resolve();
        return;
      }
      const i = next++;
      c.send("update", updateRequest(ks.types[i]!, ks.ids[i]!, sessions.b64[rng.int(sessions.b64.length)]!));
    };
    for (const c of conns) {
      c.sink = (conn, _kind, status) => {
        if (status !== 0) errors++;
        step(conn);
      };
      c.onDead = (conn) => reject(new Error(`prefill: ${conn.lastError ?? "connection failed"}`));
      step(c);
    }
    const ticker = setInterval(() => {
      const now = performance.now();
      for (const c of conns) if (!c.dead && c.inFlight !== undefined && now - c.sentAt > timeoutMs) c.timeout(timeoutMs);
      if (active === 0) clearInterval(ticker);
    }, 100);
  }).finally(() => {
    for (const c of conns) c.close();
  });
  return { entries: hi - lo, seconds: (performance.now() - t0) / 1000, errors };
}
