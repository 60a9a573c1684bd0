/**
 * targets.ts - the tlsmgr daemons a benchmark run measures, started with the
 *              same cache settings: this project's daemon, and Postfix's own
 *              C tlsmgr started by master(8) in a temporary Postfix instance.
 * Owns: the implementation names (ours, ours-memory, ours-batched, ours-redis,
 *       ours-redis-cluster, ours-valkey, ours-valkey-cluster, postfix,
 *       postfix-lmdb, and node-floor: bench/floor-server.ts, a minimal
 *       reference server), the store each needs,
 *       the temporary configuration of each, finding the daemon's pid (for
 *       Postfix: master's child named tlsmgr, which master starts on the
 *       first connection), the cache files to size, and stopping; for our
 *       daemon also the variants: /metrics on, or another build's daemon.
 * Not here: the Postfix instance layout (bench/postfix-master.ts), the load
 *           (bench/load.ts).
 * See also: src/main.ts
 */

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { postfixAvailable, startPostfixMaster } from "./postfix-master.js";
import { fileBytes, findChildByComm } from "./proc-stats.js";
import type { RedisStore, StoreKind } from "./redis-store.js";

/** cacheSettings - the main.cf cache settings every implementation is measured with. */
function cacheSettings(db: string, timeoutSec: number): Record<string, string> {
  return {
    smtpd_tls_session_cache_database: `${db}:\${data_directory}/smtpd_scache`,
    smtp_tls_session_cache_database: `${db}:\${data_directory}/smtp_scache`,
    smtpd_tls_session_cache_timeout: `${timeoutSec}s`,
    smtp_tls_session_cache_timeout: `${timeoutSec}s`,
    smtpd_tls_loglevel: "0",
    smtp_tls_loglevel: "0",
  };
}

export const IMPLS = [
  "ours", "ours-memory", "ours-batched", "ours-redis", "ours-redis-cluster", "ours-valkey", "ours-valkey-cluster",
  "postfix", "postfix-lmdb", "node-floor",
] as const;
export type ImplName = (typeof IMPLS)[number];

export function isImplName(s: string): s is ImplName {
  return (IMPLS as readonly string[]).includes(s);
}

/** The shared store an implementation needs (bench/redis-store.ts), or undefined for one that keeps its caches itself. */
export function implStore(impl: ImplName): { kind: StoreKind; cluster: boolean } | undefined {
  switch (impl) {
    case "ours-redis": return { kind: "redis", cluster: false };
    case "ours-redis-cluster": return { kind: "redis", cluster: true };
    case "ours-valkey": return { kind: "valkey", cluster: false };
    case "ours-valkey-cluster": return { kind: "valkey", cluster: true };
    default: return undefined;
  }
}

type OursImpl = "ours" | "ours-memory" | "ours-batched" | "ours-redis" | "ours-redis-cluster" | "ours-valkey" | "ours-valkey-cluster";

/** The repository root (this file is dist/bench/targets.js once built). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const DAEMON_MAIN = join(REPO_ROOT, "dist", "src", "main.js");

export interface TargetOptions {
  /** smtpd and smtp session cache timeout, seconds */
  cacheTimeout: number;
  /** extra node options for our daemon (e.g. --cpu-prof) */
  nodeArgs?: string[];
  /** directory for --cpu-prof output (our daemon) */
  cpuProfDir?: string;
  /** where the temporary directories go (data directories included); default os.tmpdir() */
  baseDir?: string;
  /** our daemon: preload bench/daemon-trace.ts, writing its figures to this file at exit (and its stdout to FILE.stdout) */
  traceFile?: string;
  /** ours-redis and the like: the running store their table names */
  store?: RedisStore;
  /** ours-redis and the like: the key_wrap_file every host shares (made once per run with keygen) */
  keyWrapFile?: string;
  /** ours-redis and the like: the table's timeout (default the table's default, 50ms) */
  redisTimeout?: string;
  /** our daemon: serve /metrics on a free 127.0.0.1 port (tlsmgr_metrics_address) */
  metrics?: boolean;
  /** our daemon: the dist/src/main.js of another build (label "baseline") */
  daemonMain?: string;
}

export interface BenchTarget {
  impl: ImplName;
  /** e.g. "ours (lmdb)", "postfix 3.7.11 (btree)" */
  label: string;
  /** the database type of the session caches */
  dbType: string;
  socket: string;
  /** pid of the process that serves requests, when it runs */
  daemonPid(): number | undefined;
  /** bytes of the session cache files: apparent size and allocated on disk */
  cacheBytes(): { size: number; allocated: number };
  /** where its /metrics is served, when it is (our daemon with metrics) */
  metricsUrl?: string;
  stop(): Promise<void>;
}

// waitForAnnouncement - until a connection to path gets the first bytes of an announcement
async function waitForAnnouncement(path: string, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(path);
      const t = setTimeout(() => { s.destroy(); resolve(false); }, 2000);
      s.once("data", () => { clearTimeout(t); s.destroy(); resolve(true); });
      s.once("error", () => { clearTimeout(t); resolve(false); });
    });
    if (ok) return;
    if (!alive()) throw new Error(`daemon for ${path} exited before answering`);
    if (Date.now() > deadline) throw new Error(`no tlsmgr answered on ${path} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** loopbackPort - a port the kernel gives for 127.0.0.1, released again (for our daemon's /metrics) */
function loopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a !== null ? a.port : 0));
    });
  });
}

/**
 * startOurs - our daemon, `node dist/src/main.js --socket S` with MAIL_CONFIG
 * a temporary main.cf. The redis kinds name ONE table file for the smtpd
 * cache, the smtp cache and the ticket keys (as a farm would: README), on
 * the store of o.store; ours-batched is ours with the LMDB overlay always
 * flushed by its 2 ms timer (bench/flush-batched.ts: the policy before the
 * end-of-turn flush, for comparison in one run).
 */
async function startOurs(impl: OursImpl, o: TargetOptions): Promise<BenchTarget> {
  const main = o.daemonMain ?? DAEMON_MAIN;
  const metricsPort = o.metrics === true ? await loopbackPort() : undefined;
  if (!existsSync(main)) throw new Error(`${main} not found: build first (npx tsc -p tsconfig.json)`);
  const dir = await mkdtemp(join(o.baseDir ?? tmpdir(), "tlsmgr-bench-ours-"));
  const dataDir = join(dir, "data");
  const queueDir = join(dir, "queue");
  await mkdir(dataDir, { mode: 0o700 });
  await mkdir(join(queueDir, "private"), { recursive: true, mode: 0o755 });
  const store = implStore(impl);
  const db = store !== undefined ? "redis" : impl === "ours-memory" ? "memory" : "lmdb";
  let caches = cacheSettings(db, o.cacheTimeout);
  let label = `ours (${db})`;
  if (store !== undefined) {
    if (o.store === undefined || o.keyWrapFile === undefined) throw new Error(`${impl} needs a running store and a key_wrap_file`);
    const table = join(dir, "tls-redis.cf");
    await writeFile(table, [
      `servers = ${o.store.servers}`,
      ...(o.store.cluster ? ["cluster = yes"] : []),
      "key_prefix = bench:",
      ...(o.redisTimeout !== undefined ? [`timeout = ${o.redisTimeout}`] : []),
      `key_wrap_file = ${o.keyWrapFile}`,
      "",
    ].join("\n"));
    caches = { ...caches, smtpd_tls_session_cache_database: `redis:${table}`, smtp_tls_session_cache_database: `redis:${table}`,
      tlsmgr_ticket_key_database: `redis:${table}` };
    label = `ours (${o.store.label})`;
  } else if (impl === "ours-batched") {
    label = "ours (lmdb, 2 ms batches)";
  }
  const mainCf: Record<string, string> = {
    queue_directory: queueDir,
    data_directory: dataDir,
    mail_owner: process.env["USER"] === "root" || process.getuid?.() === 0 ? "root" : (process.env["USER"] ?? "root"),
    ...caches,
    ...(metricsPort !== undefined ? { tlsmgr_metrics_address: `127.0.0.1:${metricsPort}` } : {}),
  };
  await writeFile(join(dir, "main.cf"), Object.entries(mainCf).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n");
  const socket = join(queueDir, "private", "tlsmgr");
  const preload = impl === "ours-batched" ? [`--import=${pathToFileURL(BATCHED_MAIN).href}`] : [];
  const child = await spawnNode([main, "--socket", socket], socket, { ...process.env, MAIL_CONFIG: dir },
    { ...o, nodeArgs: [...(o.nodeArgs ?? []), ...preload] }, dir);
  const variant = (o.daemonMain !== undefined ? " baseline" : "") + (metricsPort !== undefined ? " +metrics" : "");
  return {
    impl,
    label: `${label}${variant}`,
    ...(metricsPort !== undefined ? { metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` } : {}),
    dbType: db,
    socket,
    daemonPid: child.pid,
    cacheBytes: () => sumBytes(db === "lmdb"
      ? [join(dataDir, "smtpd_scache.lmdb"), join(dataDir, "smtp_scache.lmdb")]
      : []),
    stop: child.stop,
  };
}

/** startFloor - bench/floor-server.ts on a temporary socket */
async function startFloor(o: TargetOptions): Promise<BenchTarget> {
  const dir = await mkdtemp(join(o.baseDir ?? tmpdir(), "tlsmgr-bench-floor-"));
  const socket = join(dir, "tlsmgr");
  const child = await spawnNode([FLOOR_MAIN, socket], socket, process.env, o, dir);
  return {
    impl: "node-floor", label: "node floor (memory)", dbType: "memory", socket,
    daemonPid: child.pid, cacheBytes: () => ({ size: 0, allocated: 0 }), stop: child.stop,
  };
}

const FLOOR_MAIN = join(REPO_ROOT, "dist", "bench", "floor-server.js");
const TRACE_MAIN = join(REPO_ROOT, "dist", "bench", "daemon-trace.js");
const BATCHED_MAIN = join(REPO_ROOT, "dist", "bench", "flush-batched.js");

/**
 * spawnNode - run a Node program (with --cpu-prof when asked), wait until it
 * announces itself on socket; stop() ends it (SIGTERM) and removes dir.
 */
async function spawnNode(argv: string[], socket: string, env: NodeJS.ProcessEnv, o: TargetOptions, dir: string):
  Promise<{ pid: () => number | undefined; stop: () => Promise<void> }> {
  const args = [...(o.nodeArgs ?? [])];
  if (o.cpuProfDir !== undefined) args.push("--cpu-prof", `--cpu-prof-dir=${o.cpuProfDir}`);
  if (o.traceFile !== undefined) args.push(`--import=${pathToFileURL(TRACE_MAIN).href}?out=${encodeURIComponent(o.traceFile)}`);
  // with a trace, the daemon's stdout (node --trace-gc writes there) goes beside it
  const stdout = o.traceFile !== undefined ? openSync(`${o.traceFile}.stdout`, "w") : "ignore";
  const proc: ChildProcess = spawn(process.execPath, [...args, ...argv], {
    cwd: REPO_ROOT, env, stdio: ["ignore", stdout, "pipe"],
  });
  if (typeof stdout === "number") closeSync(stdout);
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => { stderr = (stderr + d.toString("utf8")).slice(-8192); });
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  try {
    await waitForAnnouncement(socket, 30_000, alive);
  } catch (e) {
    proc.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${(e as Error).message}; stderr:\n${stderr}`);
  }
  return {
    pid: () => (alive() ? proc.pid : undefined),
    async stop() {
      if (alive()) {
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 20_000);
        await exited;
        clearTimeout(t);
      }
      const bad = stderr.split("\n").filter((l) => /warning:|fatal:|panic:/.test(l));
      if (bad.length > 0) process.stderr.write(`${argv[0]} logged:\n${bad.slice(0, 20).join("\n")}\n`);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// sumBytes - the sizes of some files, added
function sumBytes(files: string[]): { size: number; allocated: number } {
  let size = 0;
  let allocated = 0;
  for (const f of files) {
    const b = fileBytes(f);
    size += b.size;
    allocated += b.allocated;
  }
  return { size, allocated };
}

/** startPostfix - a private Postfix instance whose master runs Postfix's own tlsmgr */
async function startPostfix(impl: "postfix" | "postfix-lmdb", o: TargetOptions): Promise<BenchTarget> {
  if (!postfixAvailable()) throw new Error("postfix is not installed here");
  const db = impl === "postfix" ? "btree" : "lmdb";
  const pf = await startPostfixMaster({
    ...(o.baseDir !== undefined ? { baseDir: o.baseDir } : {}),
    mainCf: {
      ...cacheSettings(db, o.cacheTimeout),
      // tlsmgr must not exit between the phases of a run
      max_idle: "3600s",
    },
  });
  try {
    await waitForAnnouncement(pf.tlsmgrSocket, 30_000, () => true);
  } catch (e) {
    await pf.destroy();
    throw e;
  }
  let tlsmgrPid: number | undefined;
  const ext = db === "btree" ? ".db" : ".lmdb";
  return {
    impl,
    label: `postfix ${pf.version} (${db})`,
    dbType: db,
    socket: pf.tlsmgrSocket,
    daemonPid: () => {
      if (tlsmgrPid !== undefined && existsSync(`/proc/${tlsmgrPid}`)) return tlsmgrPid;
      const m = pf.masterPid();
      tlsmgrPid = m === undefined ? undefined : findChildByComm(m, "tlsmgr");
      return tlsmgrPid;
    },
    cacheBytes: () => sumBytes([join(pf.dataDir, `smtpd_scache${ext}`), join(pf.dataDir, `smtp_scache${ext}`)]),
    async stop() {
      await pf.destroy();
    },
  };
}

/** startTarget - start one implementation; resolves once it answers on its socket */
export function startTarget(impl: ImplName, o: TargetOptions): Promise<BenchTarget> {
  switch (impl) {
    case "ours":
    case "ours-memory":
    case "ours-batched":
    case "ours-redis":
    case "ours-redis-cluster":
    case "ours-valkey":
    case "ours-valkey-cluster":
      return startOurs(impl, o);
    case "postfix":
    case "postfix-lmdb":
      return startPostfix(impl, o);
    case "node-floor":
      return startFloor(o);
  }
}
