/**
 * tlsmgr-client.ts - a client of the tlsmgr protocol, as Postfix's tls_mgr.c
 *                    speaks it: for people (bin/tlsmgr-client), tests and
 *                    the benchmark.
 * Owns: connecting, checking the server's announcement, sending requests
 *       (one at a time, or pipelined: replies are matched in order), and
 *       decoding replies into typed results.
 *       Also the stats request (this project's extension), whose document
 *       it returns parsed (stats/stats-snapshot.ts StatsSnapshot).
 * Not here: the codec (protocol/attr0.ts).
 * See also: postfix/src/tls/tls_mgr.c, src/client/cli.ts
 */

import { connect } from "node:net";
import type { Socket } from "node:net";
import type { Attr0Attr, Attr0Value } from "../protocol/attr0.js";
import { Attr0Decoder, attr0Encode } from "../protocol/attr0.js";
import { attr0DecodeBase64, attr0ParseInt } from "../protocol/attr0-scan.js";
import {
  MAIL_ATTR_PROTO,
  TLS_MGR_ATTR_CACHABLE,
  TLS_MGR_ATTR_CACHE_ID,
  TLS_MGR_ATTR_CACHE_TYPE,
  TLS_MGR_ATTR_KEYBUF,
  TLS_MGR_ATTR_KEYNAME,
  TLS_MGR_ATTR_REQ,
  TLS_MGR_ATTR_SEED,
  TLS_MGR_ATTR_SESSION,
  TLS_MGR_ATTR_SESSTOUT,
  TLS_MGR_ATTR_SIZE,
  TLS_MGR_ATTR_STATS,
  TLS_MGR_ATTR_STATUS,
  TLS_MGR_PROTOCOL,
  TLS_MGR_REQ_STATS,
} from "../protocol/tlsmgr-proto.js";
import type { StatsSnapshot } from "../stats/stats-snapshot.js";

export class TlsmgrClientError extends Error {
  constructor(
    message: string,
    readonly code: "TLSMGR_CLIENT_TIMEOUT" | "TLSMGR_CLIENT_PROTOCOL" | "TLSMGR_CLIENT_CLOSED" | "TLSMGR_CLIENT_CONNECT",
  ) {
    super(message);
  }
}

interface Waiter {
  resolve(attrs: Attr0Attr[]): void;
  reject(err: Error): void;
}

/** A reply list as name -> raw value bytes. */
export type ReplyAttrs = Map<string, Buffer>;

export interface ClientOptions {
  /** Milliseconds to wait for each reply (and for the connection). Default 10000. */
  timeoutMs?: number;
  /** Skip waiting for the announcement (to test a server that does not send one). */
  noAnnouncement?: boolean;
}

export class TlsmgrClient {
  readonly #socket: Socket;
  readonly #decoder = new Attr0Decoder({ nameLimit: 256, valueLimit: 64 * 1024 * 1024, countLimit: 64 });
  readonly #waiters: Waiter[] = [];
  readonly #timeoutMs: number;
  #closed = false;
  #error: Error | undefined;

  private constructor(socket: Socket, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    socket.on("data", (chunk: Buffer) => {
      this.#decoder.push(chunk);
      for (let ev = this.#decoder.next(); ev !== undefined; ev = this.#decoder.next()) {
        const waiter = this.#waiters.shift();
        if (!waiter) continue;
        if (ev.kind === "list") waiter.resolve(ev.attrs);
        else waiter.reject(new TlsmgrClientError(`malformed reply from server`, "TLSMGR_CLIENT_PROTOCOL"));
      }
    });
    const fail = (err: Error) => {
      this.#error ??= err;
      this.#closed = true;
      for (const w of this.#waiters.splice(0)) w.reject(err);
    };
    socket.on("error", (err) => fail(new TlsmgrClientError(err.message, "TLSMGR_CLIENT_CLOSED")));
    socket.on("close", () => fail(new TlsmgrClientError("connection closed by server", "TLSMGR_CLIENT_CLOSED")));
  }

  /** connect - open a connection and check the server's "protocol = tlsmgr_protocol". */
  static async connect(path: string, opts: ClientOptions = {}): Promise<TlsmgrClient> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ path });
      const t = setTimeout(() => {
        s.destroy();
        reject(new TlsmgrClientError(`connect to ${path}: timeout`, "TLSMGR_CLIENT_CONNECT"));
      }, timeoutMs);
      s.once("connect", () => {
        clearTimeout(t);
        resolve(s);
      });
      s.once("error", (err) => {
        clearTimeout(t);
        reject(new TlsmgrClientError(`connect to ${path}: ${err.message}`, "TLSMGR_CLIENT_CONNECT"));
      });
    });
    const client = new TlsmgrClient(socket, timeoutMs);
    if (!opts.noAnnouncement) {
      const hello = await client.#expectList();
      const proto = hello.find((a) => a.name === MAIL_ATTR_PROTO)?.value.toString("latin1");
      if (proto !== TLS_MGR_PROTOCOL) {
        client.close();
        throw new TlsmgrClientError(`${path}: unexpected server announcement`, "TLSMGR_CLIENT_PROTOCOL");
      }
    }
    return client;
  }

  /** sendRaw - write bytes as they are (tests of malformed input). */
  sendRaw(bytes: Buffer | string): void {
    this.#socket.write(bytes);
  }

  /** nextReply - the next reply list, raw. */
  nextReply(): Promise<Attr0Attr[]> {
    return this.#expectList();
  }

  /** request - send one list and wait for its reply, as name -> bytes. */
  async request(attrs: ReadonlyArray<readonly [string, Attr0Value]>): Promise<ReplyAttrs> {
    const reply = this.#expectList();
    this.#socket.write(attr0Encode(attrs), "latin1");
    const list = await reply;
    return new Map(list.map((a) => [a.name, a.value]));
  }

  async seed(size: number): Promise<{ status: number; seed: Buffer }> {
    const r = await this.request([
      [TLS_MGR_ATTR_REQ, "seed"],
      [TLS_MGR_ATTR_SIZE, size],
    ]);
    return { status: intOf(r, TLS_MGR_ATTR_STATUS), seed: dataOf(r, TLS_MGR_ATTR_SEED) };
  }

  async policy(cacheType: string): Promise<{ status: number; cachable: number; timeout: number }> {
    const r = await this.request([
      [TLS_MGR_ATTR_REQ, "policy"],
      [TLS_MGR_ATTR_CACHE_TYPE, cacheType],
    ]);
    return {
      status: intOf(r, TLS_MGR_ATTR_STATUS),
      cachable: intOf(r, TLS_MGR_ATTR_CACHABLE),
      timeout: intOf(r, TLS_MGR_ATTR_SESSTOUT),
    };
  }

  async lookup(cacheType: string, cacheId: string): Promise<{ status: number; session: Buffer }> {
    const r = await this.request([
      [TLS_MGR_ATTR_REQ, "lookup"],
      [TLS_MGR_ATTR_CACHE_TYPE, cacheType],
      [TLS_MGR_ATTR_CACHE_ID, cacheId],
    ]);
    return { status: intOf(r, TLS_MGR_ATTR_STATUS), session: dataOf(r, TLS_MGR_ATTR_SESSION) };
  }

  async update(cacheType: string, cacheId: string, session: Buffer): Promise<{ status: number }> {
    const r = await this.request([
      [TLS_MGR_ATTR_REQ, "update"],
      [TLS_MGR_ATTR_CACHE_TYPE, cacheType],
      [TLS_MGR_ATTR_CACHE_ID, cacheId],
      [TLS_MGR_ATTR_SESSION, session],
    ]);
    return { status: intOf(r, TLS_MGR_ATTR_STATUS) };
  }

  async delete(cacheType: string, cacheId: string): Promise<{ status: number }> {
    const r = await this.request([
      [TLS_MGR_ATTR_REQ, "delete"],
      [TLS_MGR_ATTR_CACHE_TYPE, cacheType],
      [TLS_MGR_ATTR_CACHE_ID, cacheId],
    ]);
    return { status: intOf(r, TLS_MGR_ATTR_STATUS) };
  }

  async tktkey(keyname: Buffer = Buffer.alloc(0)): Promise<{ status: number; keybuf: Buffer }> {
    const r = await this.request([
      [TLS_MGR_ATTR_REQ, "tktkey"],
      [TLS_MGR_ATTR_KEYNAME, keyname],
    ]);
    return { status: intOf(r, TLS_MGR_ATTR_STATUS), keybuf: dataOf(r, TLS_MGR_ATTR_KEYBUF) };
  }

  /** stats - the daemon's statistics (status 0), or status -1 and undefined when it keeps none. */
  async stats(): Promise<{ status: number; stats: StatsSnapshot | undefined }> {
    const r = await this.request([[TLS_MGR_ATTR_REQ, TLS_MGR_REQ_STATS]]);
    const status = intOf(r, TLS_MGR_ATTR_STATUS);
    const text = r.get(TLS_MGR_ATTR_STATS);
    if (text === undefined) throw new TlsmgrClientError(`reply attribute ${TLS_MGR_ATTR_STATS} missing`, "TLSMGR_CLIENT_PROTOCOL");
    if (status !== 0) return { status, stats: undefined };
    try {
      return { status, stats: JSON.parse(text.toString("utf8")) as StatsSnapshot };
    } catch {
      throw new TlsmgrClientError(`reply attribute ${TLS_MGR_ATTR_STATS} is not JSON`, "TLSMGR_CLIENT_PROTOCOL");
    }
  }

  /** closed - resolves when the server has closed the connection. */
  closed(): Promise<void> {
    if (this.#socket.destroyed || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#socket.once("close", () => resolve()));
  }

  close(): void {
    this.#closed = true;
    this.#socket.destroy();
  }

  #expectList(): Promise<Attr0Attr[]> {
    if (this.#closed)
      return Promise.reject(this.#error ?? new TlsmgrClientError("connection closed", "TLSMGR_CLIENT_CLOSED"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new TlsmgrClientError("timeout waiting for reply", "TLSMGR_CLIENT_TIMEOUT"));
      }, this.#timeoutMs);
      const waiter: Waiter = {
        resolve: (a) => {
          clearTimeout(timer);
          resolve(a);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#waiters.push(waiter);
    });
  }
}

function intOf(r: ReplyAttrs, name: string): number {
  const v = r.get(name);
  const n = v === undefined ? undefined : attr0ParseInt(v);
  if (n === undefined) throw new TlsmgrClientError(`reply attribute ${name} missing or malformed`, "TLSMGR_CLIENT_PROTOCOL");
  return n;
}

function dataOf(r: ReplyAttrs, name: string): Buffer {
  const v = r.get(name);
  const d = v === undefined ? undefined : attr0DecodeBase64(v);
  if (d === undefined) throw new TlsmgrClientError(`reply attribute ${name} missing or malformed`, "TLSMGR_CLIENT_PROTOCOL");
  return d;
}
