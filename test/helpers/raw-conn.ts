/**
 * raw-conn.ts - raw-bytes connections to a tlsmgr socket for tests that must
 *               see every byte the server sends (and send bytes no client would).
 * Owns: Raw (a connection that keeps everything received, with waits for bytes,
 *       replies and close), attr0ListSplit (an independent splitter of received
 *       bytes into attribute lists), processRssMiB (a process's resident size
 *       from /proc), and rawTestInstance (a throw-away instance directory with
 *       a main.cf, for tests that start their own daemon).
 * Not here: starting the daemon (test/helpers/daemon.ts); the daemon's codec
 *           (src/protocol/attr0.ts), which tests must not share.
 * See also: test/integration/daemon-replies.test.ts, test/robustness/*.test.ts
 */

import { connect } from "node:net";
import type { Socket } from "node:net";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

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
 * queue_directory, data_directory, mail_owner = root, then `lines`.
 */
export function rawTestInstance(prefix: string, lines: string[]): RawTestInstance {
  const dir = mkdtempSync(join(tmpdir(), `tlsmgr-${prefix}-`));
  const dataDir = join(dir, "data");
  mkdirSync(dataDir, { mode: 0o700 });
  const mainCf = join(dir, "main.cf");
  writeFileSync(
    mainCf,
    [`queue_directory = ${dir}/queue`, `data_directory = ${dataDir}`, "mail_owner = root", ...lines, ""].join("\n"),
  );
  return {
    dir,
    dataDir,
    mainCf,
    socket: join(dir, "tlsmgr.sock"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
