/**
 * raw-conn.ts - raw-bytes connections to a tlsmgr socket for tests that must
 *               see every byte the server sends (and send bytes no client would).
 * Owns: Raw (a connection that keeps everything received, with waits for bytes,
 *       replies and close), attr0ListSplit (an independent splitter of received
 *       bytes into attribute lists), processRssMiB (a process's resident size
 *       from /proc), rawTestInstance (a throw-away instance directory with a
 *       main.cf), and daemonRunToExit/daemonExitProblems (a daemon start-up
 *       that must fail: its exit, fatal line and leftovers).
 * Not here: starting a daemon that must run (test/helpers/daemon.ts); the daemon's codec
 *           (src/protocol/attr0.ts), which tests must not share.
 * See also: test/integration/daemon-replies.test.ts, test/robustness/*.test.ts
 */

import { spawn } from "node:child_process";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { daemonMainFor } from "./code-copy.js";
import { DAEMON_MAIN } from "./daemon.js";

/** The server announcement every connection starts with, as latin1 text. */
export const RAW_ANNOUNCE = "protocol\0tlsmgr_protocol\0\0";

/** Raw - a connection that keeps every byte the server sent. */
export class Raw {
  received = Buffer.alloc(0);
  closed = false;
  private waiters: Array<() => void> = [];
  constructor(readonly sock: Socket) {
    sock.on("data", (c: Buffer) => {
      this.received = Buffer.concat([this.received, c]);
      this.wake();
    });
    sock.on("close", () => {
      this.closed = true;
      this.wake();
    });
    sock.on("error", () => undefined);
  }
  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }
  static open(path: string): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = connect({ path }, () => resolve(new Raw(s)));
      s.once("error", reject);
    });
  }
  /** until - wait until pred holds (or fail after timeoutMs, default 5 s). */
  async until(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) {
        const got = this.received.subarray(0, 300).toString("latin1");
        throw new Error(`timeout waiting for ${what}; got ${this.received.length} bytes: ${JSON.stringify(got)}`);
      }
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }
  /** take - the next n bytes after the announcement was consumed. */
  async take(n: number): Promise<string> {
    await this.until(() => this.received.length >= n || this.closed, `${n} bytes`);
    const out = this.received.subarray(0, n).toString("latin1");
    this.received = this.received.subarray(n);
    return out;
  }
  /** exchange - send a request, return exactly the reply expected in length. */
  async exchange(request: string, expected: string): Promise<string> {
    this.sock.write(Buffer.from(request, "latin1"));
    return this.take(expected.length);
  }
  /** reply - send a request and return one whole reply list (ends with NUL NUL). */
  async reply(request: string): Promise<string> {
    this.sock.write(Buffer.from(request, "latin1"));
    await this.until(() => this.received.includes("\0\0"), "a reply");
    const end = this.received.indexOf("\0\0") + 2;
    const out = this.received.subarray(0, end).toString("latin1");
    this.received = this.received.subarray(end);
    return out;
  }
  /** waitClosed - wait until the server has closed the connection. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    await this.until(() => this.closed, "the connection to close", timeoutMs);
  }
  close() {
    this.sock.destroy();
  }
}

/** openAnnounced - a Raw connection whose announcement was checked and consumed. */
export async function openAnnounced(path: string): Promise<Raw> {
  const raw = await Raw.open(path);
  const got = await raw.take(RAW_ANNOUNCE.length);
  if (got !== RAW_ANNOUNCE) {
    raw.close();
    throw new Error(`bad announcement from ${path}: ${JSON.stringify(got)}`);
  }
  return raw;
}

/** One received attribute: name and value as latin1 text. */
export type RawAttr = [name: string, value: string];

/**
 * attr0ListSplit - the complete attribute lists at the start of buf, and the
 * bytes after them (a partial list, or nothing). A list is name NUL value NUL
 * ... then a lone NUL.
 */
export function attr0ListSplit(buf: Buffer): { lists: RawAttr[][]; rest: Buffer } {
  const lists: RawAttr[][] = [];
  let pos = 0;
  for (;;) {
    const attrs: RawAttr[] = [];
    let p = pos;
    let complete = false;
    for (;;) {
      const nameEnd = buf.indexOf(0, p);
      if (nameEnd < 0) break;
      if (nameEnd === p) {
        complete = true;
        p = nameEnd + 1;
        break;
      }
      const valEnd = buf.indexOf(0, nameEnd + 1);
      if (valEnd < 0) break;
      attrs.push([buf.toString("latin1", p, nameEnd), buf.toString("latin1", nameEnd + 1, valEnd)]);
      p = valEnd + 1;
    }
    if (!complete) return { lists, rest: buf.subarray(pos) };
    lists.push(attrs);
    pos = p;
  }
}

/** processRssMiB - VmRSS of a live process, in MiB (from /proc/PID/status). */
export function processRssMiB(pid: number): number {
  const m = /^VmRSS:\s*(\d+)\s*kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

/** A throw-away instance: dir/main.cf, dir/data (0700), a socket path, and cleanup. */
export interface RawTestInstance {
  dir: string;
  dataDir: string;
  mainCf: string;
  socket: string;
  cleanup(): void;
}

/**
 * rawTestInstance - make a temporary directory with data/ and a main.cf of
 * queue_directory, data_directory, mail_owner = root (each unless `lines`
 * sets it), then `lines`.
 */
export function rawTestInstance(prefix: string, lines: string[]): RawTestInstance {
  const dir = mkdtempSync(join(tmpdir(), `tlsmgr-${prefix}-`));
  const dataDir = join(dir, "data");
  mkdirSync(dataDir, { mode: 0o700 });
  const mainCf = join(dir, "main.cf");
  const named = new Set(lines.map((l) => l.split("=")[0]!.trim()));
  const own = [`queue_directory = ${dir}/queue`, `data_directory = ${dataDir}`, "mail_owner = root"]
    .filter((l) => !named.has(l.split("=")[0]!.trim()));
  writeFileSync(mainCf, [...own, ...lines, ""].join("\n"));
  return {
    dir,
    dataDir,
    mainCf,
    socket: join(dir, "tlsmgr.sock"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** How a daemon run ended. */
export interface DaemonExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/**
 * daemonRunToExit - spawn `node dist/src/main.js --socket SOCKET ARGS` with
 * MAIL_CONFIG=configDir, from configDir, and wait for it to exit (for
 * start-ups that must fail; startDaemon waits for a socket instead). Killed
 * and rejected after timeoutMs. `uid`/`gid` run it as another user (from a
 * copy that user can read when the tree is closed to it: code-copy.ts).
 */
export function daemonRunToExit(
  configDir: string,
  socket: string,
  opts: { args?: string[]; uid?: number; gid?: number; timeoutMs?: number } = {},
): Promise<DaemonExit> {
  return new Promise((resolve, reject) => {
    const main = opts.uid !== undefined ? daemonMainFor(opts.uid, opts.gid ?? opts.uid) : DAEMON_MAIN;
    const proc = spawn(process.execPath, [main, "--socket", socket, ...(opts.args ?? [])], {
      cwd: configDir,
      env: { ...process.env, MAIL_CONFIG: configDir },
      stdio: ["ignore", "ignore", "pipe"],
      ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
      ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
    });
    let stderr = "";
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`daemon still running after ${opts.timeoutMs ?? 20_000} ms; stderr:\n${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    proc.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    proc.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

/**
 * daemonExitProblems - what is wrong with a start-up that had to fail with a
 * fatal error: the exit status is not 1, there is not exactly one `fatal:`
 * line, a stack trace was printed, the fatal line lacks one of `mentions`, or
 * the socket was left behind. Empty when all is well.
 */
export function daemonExitProblems(exit: DaemonExit, socket: string, mentions: string[]): string[] {
  const problems: string[] = [];
  const fatal = exit.stderr.split("\n").filter((l) => /^tlsmgr\[\d+\]: fatal: /.test(l));
  if (exit.signal !== null || exit.code !== 1) problems.push(`exit status ${exit.code ?? exit.signal}, not 1`);
  if (fatal.length !== 1) problems.push(`${fatal.length} fatal lines, not 1`);
  if (/\n\s+at .+:\d+:\d+\)?\n/.test(exit.stderr)) problems.push("a stack trace was printed");
  for (const m of mentions) if (!fatal.some((l) => l.includes(m))) problems.push(`the fatal line does not name ${m}`);
  if (existsSync(socket)) problems.push(`socket ${socket} left behind`);
  return problems;
}
