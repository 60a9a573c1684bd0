/**
 * daemon.ts - start the built tlsmgr-ts daemon as a separate process for tests,
 *             and a minimal independent attr0 client to question any tlsmgr.
 * Owns: spawning `node dist/src/main.js ...` (process.execPath, never PATH),
 *       waiting for the socket and the server announcement (or, for a daemon
 *       that must not announce, the reply a 3.5 client gets), stderr capture,
 *       SIGTERM stop; tlsmgrRequest(), a deliberately separate tiny attr0
 *       writer/reader so that tests do not share the daemon's own codec.
 * Not here: the daemon (src/main.ts); the client library (src/client/*);
 *           Postfix instances (test/helpers/postfix-instance.ts).
 * See also: postfix/src/tls/tls_mgr.h, tls_mgr.c (the requests), postfix/src/util/attr_scan0.c
 *
 * Daemons still running when the test process exits are killed by an exit hook.
 */

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { exitHook } from "./exit-hook.js";

/** The repository root (this file is dist/test/helpers/daemon.js once built). */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** The built entry point started by startDaemon. */
export const DAEMON_MAIN = join(REPO_ROOT, "dist", "src", "main.js");

/** The server-speaks-first announcement: protocol=tlsmgr_protocol, then end of list. */
export const TLSMGR_ANNOUNCEMENT = Buffer.from("protocol\0tlsmgr_protocol\0\0", "latin1");

export interface StartDaemonOptions {
  /** MAIL_CONFIG for the daemon; also how the socket path is found when socket is absent. */
  configDir?: string;
  /** Passed as `--socket PATH`. */
  socket?: string;
  /** More arguments after --socket. */
  args?: string[];
  /** Added to (and overriding) the test's environment. */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the announcement; default 20 s. */
  readyTimeoutMs?: number;
  /** false: the daemon is to send no announcement (Postfix 3.5 mode); ready = a seed request answered. */
  announces?: boolean;
  /** A command that runs the daemon (e.g. ["prlimit", "--nofile=64:64"]): given node and its arguments last. */
  wrapper?: string[];
  /** Keep only the last this many characters of stderr (long runs); all of it when absent. */
  stderrKeep?: number;
  /** Told every whole line of stderr as it comes (long runs count lines instead of keeping them). */
  onStderrLine?: (line: string) => void;
}

export interface RunningDaemon {
  proc: ChildProcess;
  /** The socket path the daemon answers on. */
  socket: string;
  /** Everything the daemon wrote to stderr so far. */
  stderr(): string;
  /** Everything the daemon wrote to stdout so far. */
  stdout(): string;
  /** SIGTERM (SIGKILL after 10 s); resolves to the exit code (null when killed by a signal). */
  stop(): Promise<number | null>;
}

const running = new Set<ChildProcess>();

// installExitHook - kill daemons a test left behind
const installExitHook = exitHook(() => {
  for (const p of running) {
    if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  }
});

// socketFromConfig - $queue_directory/private/$tlsmgr_service_name of that configuration
function socketFromConfig(configDir: string): string {
  const env = { ...process.env, PATH: `/usr/sbin:/usr/bin:/sbin:/bin:${process.env["PATH"] ?? ""}` };
  const out = execFileSync("postconf", ["-c", configDir, "-h", "queue_directory", "tlsmgr_service_name"],
    { env }).toString().trim().split("\n");
  const [queueDir, service] = out;
  if (queueDir === undefined || service === undefined || queueDir === "" || service === "") {
    throw new Error(`cannot find queue_directory and tlsmgr_service_name in ${configDir}/main.cf`);
  }
  return join(queueDir, "private", service);
}

/** A 3.5 client's first request, and the start of its reply, for a daemon that does not announce. */
const SEED_REQUEST = Buffer.from("request\0seed\0size\x001\0\0", "latin1");
const SEED_REPLY_START = Buffer.from("status\x000\0seed\0", "latin1");

// readAnnouncement - connect once; resolve true when the full announcement arrived
// (announces false: when the first thing that arrives is the reply to a seed request sent at once)
function readAnnouncement(path: string, timeoutMs: number, announces = true): Promise<boolean> {
  const expect = announces ? TLSMGR_ANNOUNCEMENT : SEED_REPLY_START;
  return new Promise((resolve) => {
    const sock = connect(path);
    let got = Buffer.alloc(0);
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on("error", () => done(false));
    if (!announces) sock.on("connect", () => sock.write(SEED_REQUEST));
    sock.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= expect.length) done(got.subarray(0, expect.length).equals(expect));
    });
    sock.on("end", () => done(false));
  });
}

/**
 * startDaemon - spawn `process.execPath dist/src/main.js [--socket S] ARGS`
 * from the repository root and wait until the socket accepts a connection and
 * sends the announcement. Rejects with the daemon's stderr when it exits first
 * or stays silent.
 */
/**
 * writeTestMainCf - DIR/main.cf for a daemon of this test process: queue and
 * data directories under DIR (data made 0700), mail_owner this user (root as
 * root), then the given lines.
 */
export function writeTestMainCf(dir: string, lines: string[]): void {
  mkdirSync(join(dir, "data"), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, "main.cf"), [
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    `mail_owner = ${process.getuid?.() === 0 ? "root" : process.env["USER"] ?? "nobody"}`,
    ...lines,
    "",
  ].join("\n"));
}

export async function startDaemon(opts: StartDaemonOptions = {}): Promise<RunningDaemon> {
  if (!existsSync(DAEMON_MAIN)) {
    throw new Error(`${DAEMON_MAIN} not found: build first (npx tsc -p tsconfig.json)`);
  }
  const socket = opts.socket ?? (opts.configDir !== undefined ? socketFromConfig(opts.configDir) : undefined);
  if (socket === undefined) throw new Error("startDaemon: give socket or configDir");

  const argv = [DAEMON_MAIN, ...(opts.socket !== undefined ? ["--socket", opts.socket] : []), ...(opts.args ?? [])];
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  if (opts.configDir !== undefined) env["MAIL_CONFIG"] = opts.configDir;
  const [cmd, ...cmdArgs] = [...(opts.wrapper ?? []), process.execPath, ...argv];
  const proc = spawn(cmd!, cmdArgs, { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  running.add(proc);
  installExitHook();

  let err = "";
  let out = "";
  let partialLine = "";
  proc.stderr?.on("data", (d: Buffer) => {
    const text = d.toString("utf8");
    if (opts.onStderrLine) {
      const lines = (partialLine + text).split("\n");
      partialLine = lines.pop()!;
      for (const line of lines) opts.onStderrLine(line);
    }
    err += text;
    if (opts.stderrKeep !== undefined && err.length > 2 * opts.stderrKeep) err = err.slice(-opts.stderrKeep);
  });
  proc.stdout?.on("data", (d: Buffer) => { out += d.toString("utf8"); });
  const exited = new Promise<number | null>((resolve) => {
    proc.on("exit", (code) => { running.delete(proc); resolve(code); });
  });
  let spawnError: Error | undefined;
  proc.on("error", (e) => { spawnError = e; });

  const stop = async (): Promise<number | null> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    const code = await exited;
    clearTimeout(t);
    return code;
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  for (;;) {
    if (spawnError !== undefined) throw new Error(`cannot start ${DAEMON_MAIN}: ${spawnError.message}`);
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`tlsmgr daemon exited (${proc.exitCode ?? proc.signalCode}) before answering on ${socket}; stderr:\n${err}`);
    }
    if (await readAnnouncement(socket, 2_000, opts.announces ?? true)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`tlsmgr daemon did not announce itself on ${socket}; stderr:\n${err}`);
    }
    await sleep(50);
  }
  return { proc, socket, stderr: () => err, stdout: () => out, stop };
}

/** One attribute: a name and its wire value (data values already base64). */
export type Attr = [name: string, value: string];

// encodeAttr0 - name NUL value NUL ..., then the terminating NUL
function encodeAttr0(attrs: Attr[]): Buffer {
  return Buffer.from(attrs.map(([n, v]) => `${n}\0${v}\0`).join("") + "\0", "latin1");
}

// splitAttr0 - the first complete attr0 list in buf and the byte count it used, or undefined
function splitAttr0(buf: Buffer): { attrs: Attr[]; used: number } | undefined {
  const attrs: Attr[] = [];
  let pos = 0;
  for (;;) {
    const nameEnd = buf.indexOf(0, pos);
    if (nameEnd < 0) return undefined;
    const name = buf.toString("latin1", pos, nameEnd);
    if (name === "") return { attrs, used: nameEnd + 1 };
    const valEnd = buf.indexOf(0, nameEnd + 1);
    if (valEnd < 0) return undefined;
    attrs.push([name, buf.toString("latin1", nameEnd + 1, valEnd)]);
    pos = valEnd + 1;
  }
}

/** How a client speaks: "3.6" waits for the announcement (Postfix 3.6 and later), "3.5" writes at once. */
export type ClientProtocol = "3.6" | "3.5";

/**
 * tlsmgrRequest - one request on a fresh connection to a tlsmgr socket (ours
 * or Postfix's): check the announcement, send attrs, resolve to the reply list.
 * As a 3.5 client: send attrs at once and take the first list as the reply.
 */
export function tlsmgrRequest(socketPath: string, attrs: Attr[], timeoutMs = 10_000, client: ClientProtocol = "3.6"):
  Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const sock: Socket = connect(socketPath);
    let buf = Buffer.alloc(0);
    let announced = client === "3.5";
    if (announced) sock.on("connect", () => sock.write(encodeAttr0(attrs)));
    const timer = setTimeout(() => fail(new Error(`no reply from ${socketPath} within ${timeoutMs} ms`)), timeoutMs);
    function fail(e: Error): void {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    }
    sock.on("error", fail);
    sock.on("end", () => fail(new Error(`${socketPath} closed the connection`)));
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const list = splitAttr0(buf);
        if (list === undefined) return;
        buf = buf.subarray(list.used);
        if (!announced) {
          const [first] = list.attrs;
          if (list.attrs.length !== 1 || first?.[0] !== "protocol" || first[1] !== "tlsmgr_protocol") {
            fail(new Error(`bad announcement from ${socketPath}: ${JSON.stringify(list.attrs)}`));
            return;
          }
          announced = true;
          sock.write(encodeAttr0(attrs));
          continue;
        }
        clearTimeout(timer);
        sock.destroy();
        resolve(new Map(list.attrs));
        return;
      }
    });
  });
}

/** tlsmgrStatus - a reply's status as a signed number (Postfix writes -1 as 4294967295). */
export function tlsmgrStatus(reply: Map<string, string>): number {
  const n = Number(reply.get("status"));
  return n >= 2 ** 31 ? n - 2 ** 32 : n;
}

/** tlsmgrLookup - lookup CACHE_TYPE CACHE_ID; the status and the session bytes. */
export async function tlsmgrLookup(socketPath: string, cacheType: string, cacheId: string, client: ClientProtocol = "3.6"):
  Promise<{ status: number; session: Buffer }> {
  const r = await tlsmgrRequest(socketPath, [["request", "lookup"], ["cache_type", cacheType], ["cache_id", cacheId]],
    10_000, client);
  return { status: tlsmgrStatus(r), session: Buffer.from(r.get("session") ?? "", "base64") };
}

/** tlsmgrTktkey - tktkey with the given 16-byte name (or empty: the current key). */
export async function tlsmgrTktkey(socketPath: string, keyName: Buffer = Buffer.alloc(0), client: ClientProtocol = "3.6"):
  Promise<{ status: number; keybuf: Buffer }> {
  const r = await tlsmgrRequest(socketPath, [["request", "tktkey"], ["keyname", keyName.toString("base64")]], 10_000, client);
  return { status: tlsmgrStatus(r), keybuf: Buffer.from(r.get("keybuf") ?? "", "base64") };
}
