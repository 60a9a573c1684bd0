/**
 * redis-server.ts - real redis-server processes for tests: standalone or a
 *                   three-node Redis Cluster, on free loopback ports, each
 *                   in its own temp directory.
 * Owns: whether Redis tests can run here (redisSkipReason), starting
 *       redis-server (no persistence, loopback only; a cluster node's bus
 *       port free too), waiting for PONG, kill -9 / restart on the same
 *       port, SIGSTOP / SIGCONT ("slow"), cluster creation with redis-cli,
 *       table files for the redis: map and a key_wrap_file for them,
 *       test certificates, and cleanup
 *       (processes and directories; an exit hook kills leftovers).
 * Not here: the code under test (src/redis/, src/cache/backends/redis.ts,
 *           src/tickets/redis-keys.ts); ports (free-port.ts); the skip rule
 *           (skip.ts).
 * See also: redis-server(1), redis-cli(1) --cluster create
 */

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { exitHook } from "./exit-hook.js";
import { freeLoopbackPort } from "./free-port.js";
import { programPath, skipReason } from "./skip.js";
import { keyWrapSecretText } from "../../src/tickets/key-wrap.js";

const execFileP = promisify(execFile);

/** The programs these tests run, by absolute path (tests must not need PATH); undefined when not installed. */
const REDIS_PROGRAMS = { server: programPath("redis-server"), cli: programPath("redis-cli"), openssl: programPath("openssl") };
/** A Redis Cluster node's bus port is its port + this. */
const CLUSTER_BUS_OFFSET = 10000;

/** redisMissing - what of redis-server, redis-cli and openssl is not installed here, or undefined. */
function redisMissing(): string | undefined {
  const missing = Object.entries({ "redis-server": REDIS_PROGRAMS.server, "redis-cli": REDIS_PROGRAMS.cli, openssl: REDIS_PROGRAMS.openssl })
    .filter(([, path]) => path === undefined)
    .map(([name]) => name);
  return missing.length > 0 ? `${missing.join(", ")} not installed` : undefined;
}

/**
 * redisSkipReason - undefined when the tests on a real redis-server must
 * run; else why they are skipped (test/helpers/skip.ts: only when
 * scripts/ensure-system-deps.sh could not install redis-server).
 */
export function redisSkipReason(): string | undefined {
  return skipReason("real redis-server", redisMissing());
}

/** program - the path of one of REDIS_PROGRAMS; a clear error when it is missing. */
function program(which: keyof typeof REDIS_PROGRAMS): string {
  const path = REDIS_PROGRAMS[which];
  if (path !== undefined) return path;
  throw new Error(`${redisMissing()}; run scripts/ensure-system-deps.sh as root, or apt-get install redis-server openssl`);
}

/** redisCliPath - redis-cli by absolute path, for callers that need its raw output. */
export function redisCliPath(): string {
  return program("cli");
}

const living = new Set<ChildProcess>();
const dirs = new Set<string>();

/** installExitHook - kill servers and remove directories a test left behind, also on SIGINT/SIGTERM. */
const installExitHook = exitHook(() => {
  for (const p of living) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** ping - one PING on a fresh connection (TLS when ca is given): true when the server answers (PONG or an auth error). */
export function redisPing(port: number, timeoutMs = 500, ca?: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = ca
      ? tlsConnect({ host: "127.0.0.1", port, ca, servername: "localhost" })
      : connect({ host: "127.0.0.1", port });
    let got = "";
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on(ca ? "secureConnect" : "connect", () => sock.write("PING\r\n"));
    sock.on("data", (d) => {
      got += d.toString("latin1");
      if (got.includes("\r\n")) done(got.startsWith("+PONG") || got.startsWith("-NOAUTH"));
    });
    sock.on("error", () => done(false));
  });
}

export interface RedisServerOptions {
  /** requirepass */
  password?: string;
  /** Cluster node: cluster-enabled yes with its own nodes.conf. */
  clusterNode?: boolean;
  /** Extra "--name value" arguments. */
  args?: string[];
  /** TLS only (no plain port), with these PEM files; clients need not present certificates. */
  tls?: TestCerts;
}

export interface TestCerts {
  ca: string;
  cert: string;
  key: string;
}

/** makeTestCerts - a CA and a server certificate for 127.0.0.1 / localhost, made with openssl(1) in dir. */
export async function makeTestCerts(dir: string): Promise<TestCerts> {
  const openssl = program("openssl");
  const f = (n: string) => join(dir, n);
  await execFileP(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f("ca.key"), "-out", f("ca.pem"), "-days", "2", "-subj", "/CN=tlsmgr test CA"]);
  await execFileP(openssl, ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", f("server.key"), "-out", f("server.csr"), "-subj", "/CN=localhost"]);
  await writeFile(f("ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await execFileP(openssl, ["x509", "-req", "-in", f("server.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-CAcreateserial", "-out", f("server.pem"), "-days", "2", "-extfile", f("ext")]);
  return { ca: f("ca.pem"), cert: f("server.pem"), key: f("server.key") };
}

export interface RedisServerHandle {
  host: string;
  port: number;
  dir: string;
  /** The server's log so far. */
  proc(): ChildProcess | undefined;
  /** (Re)start on the same port and wait for it to answer. */
  start(): Promise<void>;
  /** kill -9 and wait for the exit. */
  kill(): Promise<void>;
  /** SIGSTOP: the server stops answering but keeps its connections. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Stop (SIGTERM, then SIGKILL) and remove the directory. */
  stop(): Promise<void>;
  /** Run redis-cli against this server; its stdout. */
  cli(...args: string[]): Promise<string>;
}

/** waitExit - resolve when p has exited. */
function waitExit(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => p.once("exit", () => resolve()));
}

/** startRedisServer - a redis-server on a free loopback port in a temp directory, answering. */
export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServerHandle> {
  const server = program("server");
  installExitHook();
  const dir = await mkdtemp(join(tmpdir(), "tlsmgr-redis-"));
  dirs.add(dir);
  const port = await freeLoopbackPort(opts.clusterNode === true ? CLUSTER_BUS_OFFSET : undefined);
  let proc: ChildProcess | undefined;
  const ca = opts.tls ? await readFile(opts.tls.ca) : undefined;
  const args = [
    ...(opts.tls
      ? ["--port", "0", "--tls-port", String(port), "--tls-cert-file", opts.tls.cert, "--tls-key-file", opts.tls.key,
         "--tls-ca-cert-file", opts.tls.ca, "--tls-auth-clients", "no"]
      : ["--port", String(port)]),
    "--bind", "127.0.0.1",
    "--dir", dir,
    "--save", "",
    "--appendonly", "no",
    "--daemonize", "no",
    "--protected-mode", "no",
    "--logfile", join(dir, "redis.log"),
    ...(opts.password !== undefined ? ["--requirepass", opts.password] : []),
    ...(opts.clusterNode
      ? ["--cluster-enabled", "yes", "--cluster-config-file", join(dir, "nodes.conf"), "--cluster-node-timeout", "2000"]
      : []),
    ...(opts.args ?? []),
  ];
  const handle: RedisServerHandle = {
    host: "127.0.0.1",
    port,
    dir,
    proc: () => proc,
    async start() {
      if (proc && proc.exitCode === null && proc.signalCode === null) return;
      const p = spawn(server, args, { stdio: "ignore" });
      proc = p;
      living.add(p);
      p.once("exit", () => living.delete(p));
      for (let i = 0; i < 200; i++) {
        if (p.exitCode !== null || p.signalCode !== null) throw new Error(`redis-server on port ${port} exited; see ${dir}/redis.log`);
        if (await redisPing(port, 500, ca)) return;
        await sleep(50);
      }
      throw new Error(`redis-server on port ${port} does not answer`);
    },
    async kill() {
      if (!proc) return;
      proc.kill("SIGCONT");
      proc.kill("SIGKILL");
      await waitExit(proc);
    },
    pause() {
      proc?.kill("SIGSTOP");
    },
    resume() {
      proc?.kill("SIGCONT");
    },
    async stop() {
      if (proc && proc.exitCode === null && proc.signalCode === null) {
        const p = proc;
        p.kill("SIGCONT");
        p.kill("SIGTERM");
        const t = setTimeout(() => p.kill("SIGKILL"), 5000);
        await waitExit(p);
        clearTimeout(t);
      }
      await rm(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
    async cli(...cliArgs: string[]) {
      const auth = [
        ...(opts.password !== undefined ? ["--no-auth-warning", "-a", opts.password] : []),
        ...(opts.tls ? ["--tls", "--cacert", opts.tls.ca] : []),
      ];
      const { stdout } = await execFileP(program("cli"), ["-h", "127.0.0.1", "-p", String(port), ...auth, ...cliArgs]);
      return stdout;
    },
  };
  await handle.start();
  return handle;
}

export interface RedisClusterHandle {
  nodes: RedisServerHandle[];
  stop(): Promise<void>;
}

/** startRedisCluster - n masters (no replicas) on loopback, all slots covered, state ok on every node. */
export async function startRedisCluster(n = 3): Promise<RedisClusterHandle> {
  const nodes: RedisServerHandle[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((s) => s.stop()));
  };
  try {
    for (let i = 0; i < n; i++) nodes.push(await startRedisServer({ clusterNode: true }));
    await execFileP(program("cli"), [
      "--cluster", "create",
      ...nodes.map((s) => `127.0.0.1:${s.port}`),
      "--cluster-replicas", "0",
      "--cluster-yes",
    ]);
    for (let i = 0; i < 200; i++) {
      const infos = await Promise.all(nodes.map((s) => s.cli("cluster", "info")));
      if (infos.every((t) => /cluster_state:ok/.test(t) && new RegExp(`cluster_known_nodes:${n}\\b`).test(t))) break;
      if (i === 199) throw new Error("redis cluster does not reach state ok");
      await sleep(50);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, stop };
}

let sharedWrap: string | undefined;

/**
 * testKeyWrapFile - a key_wrap_file (tlsmgr-postfix keygen's format, mode
 * 0600) made once per test process, for tables whose tests are not about
 * it: every redis: cache and key store needs one. Removed at exit.
 */
export function testKeyWrapFile(): string {
  if (sharedWrap !== undefined) return sharedWrap;
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), "tlsmgr-wrap-"));
  dirs.add(dir);
  sharedWrap = join(dir, "key-wrap");
  writeFileSync(sharedWrap, keyWrapSecretText(randomBytes(32)), { mode: 0o600 });
  return sharedWrap;
}

export interface RedisTableOptions {
  servers: string;
  cluster?: boolean;
  keyPrefix?: string;
  timeout?: string;
  keyWrapFile?: string;
  passwordFile?: string;
  database?: number;
  extra?: string;
}

/** writeRedisTable - a table file for the redis: map at path. */
export async function writeRedisTable(path: string, o: RedisTableOptions): Promise<string> {
  const lines = [
    "# test table",
    `servers = ${o.servers}`,
    ...(o.cluster ? ["cluster = yes"] : []),
    ...(o.keyPrefix !== undefined ? [`key_prefix = ${o.keyPrefix}`] : []),
    ...(o.timeout !== undefined ? [`timeout = ${o.timeout}`] : []),
    ...(o.keyWrapFile !== undefined ? [`key_wrap_file = ${o.keyWrapFile}`] : []),
    ...(o.passwordFile !== undefined ? [`password_file = ${o.passwordFile}`] : []),
    ...(o.database !== undefined ? [`database = ${o.database}`] : []),
    ...(o.extra !== undefined ? [o.extra] : []),
  ];
  await writeFile(path, lines.join("\n") + "\n");
  return path;
}
