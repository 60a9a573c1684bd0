/**
 * redis-store.ts - the shared store of a farm benchmark: a real redis-server
 *                  (or valkey-server), standalone or a three-node Cluster,
 *                  started by the run on loopback and removed after it.
 * Owns: finding the server and cli programs, free loopback ports (a Cluster
 *       node's bus port, port + 10000, free too), starting each server with
 *       no persistence in its own directory under the run's temporary
 *       directory, waiting for PONG, cluster creation, the pids (for CPU per
 *       request), SIGSTOP / SIGCONT (the degradation run), the servers line
 *       of a redis: table, and stopping (SIGTERM, then SIGKILL).
 * Not here: the daemons' tables (bench/targets.ts); the test suite's own
 *           helper with TLS, passwords and restarts (test/helpers/redis-server.ts:
 *           the benchmark does not depend on test/, as bench/postfix-master.ts).
 * See also: redis-server(1), redis-cli(1) --cluster create, docs/benchmarks.md ("Farm")
 */

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { statSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";

const execFileP = promisify(execFile);
const SEARCH_PATH = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"];
/** A Cluster node's bus port is its port + this. */
const CLUSTER_BUS_OFFSET = 10000;

export type StoreKind = "redis" | "valkey";

export interface StoreOptions {
  kind: StoreKind;
  /** a three-node Redis Cluster (no replicas) instead of one server */
  cluster: boolean;
  /** where the servers' directories go; default os.tmpdir() */
  baseDir?: string;
}

export interface RedisStore {
  /** e.g. "redis 7.0.15", "redis 7.0.15 cluster (3 nodes)" */
  label: string;
  cluster: boolean;
  /** the servers line of a redis: table ("127.0.0.1:P1 127.0.0.1:P2 ...") */
  servers: string;
  /** the pids of every server, for CPU accounting */
  pids(): number[];
  /** SIGSTOP every server (they keep their connections but answer nothing) */
  pause(): void;
  /** SIGCONT after pause() */
  resume(): void;
  /** keys in the store (DBSIZE, summed over the nodes) */
  keys(): Promise<number>;
  stop(): Promise<void>;
}

/** programPath - an installed program by absolute path, or undefined */
function programPath(name: string): string | undefined {
  for (const d of SEARCH_PATH) {
    try {
      if (statSync(join(d, name)).isFile()) return join(d, name);
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** storeMissing - why a store of this kind cannot be started here, or undefined */
export function storeMissing(kind: StoreKind): string | undefined {
  const missing = [`${kind}-server`, `${kind}-cli`].filter((p) => programPath(p) === undefined);
  if (missing.length === 0) return undefined;
  return `${missing.join(" and ")} not installed`
    + (kind === "valkey" ? " (Debian 12 has no valkey-server package: apt-cache policy valkey-server shows no candidate)" : "");
}

// portFree - can we listen on 127.0.0.1:port now?
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

// freePort - a loopback port free a moment ago (and port + CLUSTER_BUS_OFFSET for a Cluster node)
async function freePort(bus: boolean): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const a = s.address();
        s.close(() => resolve(typeof a === "object" && a !== null ? a.port : 0));
      });
    });
    if (!bus) return port;
    if (port + CLUSTER_BUS_OFFSET <= 65535 && (await portFree(port + CLUSTER_BUS_OFFSET))) return port;
  }
  throw new Error("no free loopback port");
}

// ping - true when a PING on a fresh connection gets +PONG within ms
function ping(port: number, ms = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: "127.0.0.1", port });
    let got = "";
    const done = (ok: boolean) => {
      clearTimeout(t);
      sock.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), ms);
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d) => {
      got += d.toString("latin1");
      if (got.includes("\r\n")) done(got.startsWith("+PONG"));
    });
    sock.on("error", () => done(false));
  });
}

interface Node {
  port: number;
  proc: ChildProcess;
}

/** startRedisStore - the servers of one farm run, answering (a Cluster: state ok on every node) */
export async function startRedisStore(o: StoreOptions): Promise<RedisStore> {
  const why = storeMissing(o.kind);
  if (why !== undefined) throw new Error(why);
  const server = programPath(`${o.kind}-server`)!;
  const cli = programPath(`${o.kind}-cli`)!;
  const dir = await mkdtemp(join(o.baseDir ?? tmpdir(), `tlsmgr-bench-${o.kind}-`));
  const nodes: Node[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map(async (n) => {
      if (n.proc.exitCode !== null || n.proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => n.proc.once("exit", () => r()));
      n.proc.kill("SIGCONT");
      n.proc.kill("SIGTERM");
      const t = setTimeout(() => n.proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    }));
    await rm(dir, { recursive: true, force: true });
  };
  const cliRun = async (port: number, ...args: string[]): Promise<string> =>
    (await execFileP(cli, ["-h", "127.0.0.1", "-p", String(port), ...args], { timeout: 30_000 })).stdout;
  try {
    const count = o.cluster ? 3 : 1;
    for (let i = 0; i < count; i++) {
      const port = await freePort(o.cluster);
      const nodeDir = join(dir, `node-${port}`);
      await mkdir(nodeDir);
      const args = [
        "--port", String(port), "--bind", "127.0.0.1", "--dir", nodeDir, "--save", "", "--appendonly", "no",
        "--daemonize", "no", "--protected-mode", "no", "--logfile", join(nodeDir, "server.log"),
        ...(o.cluster ? ["--cluster-enabled", "yes", "--cluster-config-file", join(nodeDir, "nodes.conf"), "--cluster-node-timeout", "5000"] : []),
      ];
      const proc = spawn(server, args, { stdio: "ignore" });
      nodes.push({ port, proc });
      let up = false;
      for (let t = 0; t < 200 && !up; t++) {
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${o.kind}-server on port ${port} exited; see ${nodeDir}/server.log`);
        up = await ping(port);
        if (!up) await sleep(50);
      }
      if (!up) throw new Error(`${o.kind}-server on port ${port} does not answer`);
    }
    if (o.cluster) {
      await execFileP(cli, ["--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`), "--cluster-replicas", "0", "--cluster-yes"],
        { timeout: 60_000 });
      for (let t = 0; ; t++) {
        const infos = await Promise.all(nodes.map((n) => cliRun(n.port, "cluster", "info")));
        if (infos.every((s) => /cluster_state:ok/.test(s) && /cluster_known_nodes:3\b/.test(s))) break;
        if (t >= 200) throw new Error("the cluster does not reach state ok");
        await sleep(50);
      }
    }
    const version = /v=([0-9.]+)/.exec((await execFileP(server, ["--version"])).stdout)?.[1] ?? "?";
    return {
      label: `${o.kind} ${version}${o.cluster ? " cluster (3 nodes)" : ""}`,
      cluster: o.cluster,
      servers: nodes.map((n) => `127.0.0.1:${n.port}`).join(" "),
      pids: () => nodes.flatMap((n) => (n.proc.pid !== undefined && n.proc.exitCode === null ? [n.proc.pid] : [])),
      pause: () => nodes.forEach((n) => n.proc.kill("SIGSTOP")),
      resume: () => nodes.forEach((n) => n.proc.kill("SIGCONT")),
      keys: async () => {
        let sum = 0;
        for (const n of nodes) sum += Number((await cliRun(n.port, "dbsize")).trim()) || 0;
        return sum;
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
