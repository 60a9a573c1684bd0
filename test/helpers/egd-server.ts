/**
 * egd-server.ts - a small EGD (Entropy Gathering Daemon) server on a local socket, for tests.
 * Owns: the EGD wire protocol as egd.pl and prngd speak it:
 *         0x00            -> 4-byte big-endian count of entropy bits available
 *         0x01 N          -> count byte C (C <= N), then C bytes (non-blocking read)
 *         0x02 N          -> N bytes (blocking read)
 *         0x03 B1 B2 N .. -> add N bytes with (B1 B2) bits of entropy; no reply
 *         0x04            -> length byte, then the daemon's pid as ASCII
 *       and misbehaviours a client must survive: answering zero bytes,
 *       hanging up on a request, never answering, and (flood) answering the
 *       first request and then sending bytes nobody asked for.
 * Not here: the client (src/prng/source-egd.ts).
 * See also: postfix/src/tls/tls_prng_egd.c
 */
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";

/**
 * normal: serve; zero: answer every read with count 0; hangup: close on a
 * request; silent: never answer; flood: answer the first read of a
 * connection, then send unrequested bytes as fast as the client takes them,
 * until it hangs up or floodLimit bytes went out.
 */
export type EgdMode = "normal" | "zero" | "hangup" | "silent" | "flood";

export interface EgdServerOptions {
  /** Bytes to serve for a request of n (default crypto.randomBytes). */
  bytes?: (n: number) => Buffer;
  mode?: EgdMode;
  /** Most bytes a 0x01 request gets (default 255). */
  available?: number;
  /** flood: most unrequested bytes sent on one connection (default 256 MiB). */
  floodLimit?: number;
}

export class EgdServer {
  mode: EgdMode;
  /** Read requests (0x01 and 0x02) seen. */
  requests = 0;
  /** Bytes added with 0x03. */
  added = 0;
  /** flood: unrequested bytes sent, over all connections. */
  flooded = 0;
  /** flood: connections that the client closed while being flooded. */
  floodsCut = 0;
  /** flood: connections that reached floodLimit without the client hanging up. */
  floodsFinished = 0;
  readonly #floodLimit: number;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #bytes: (n: number) => Buffer;
  readonly #available: number;

  private constructor(
    readonly path: string,
    opts: EgdServerOptions,
  ) {
    this.mode = opts.mode ?? "normal";
    this.#bytes = opts.bytes ?? ((n) => randomBytes(n));
    this.#available = opts.available ?? 255;
    this.#floodLimit = opts.floodLimit ?? 256 * 1024 * 1024;
    this.#server = createServer((sock) => this.#serve(sock));
  }

  /** start - listen on path (removed first if a stale socket is there) */
  static async start(path: string, opts: EgdServerOptions = {}): Promise<EgdServer> {
    await rm(path, { force: true });
    const s = new EgdServer(path, opts);
    await new Promise<void>((resolve, reject) => {
      s.#server.once("error", reject);
      s.#server.listen(path, () => resolve());
    });
    return s;
  }

  /** connections - sockets open now */
  get connections(): number {
    return this.#sockets.size;
  }

  /** serve - parse commands as they arrive; a command may span several reads */
  #serve(sock: Socket): void {
    this.#sockets.add(sock);
    sock.on("close", () => this.#sockets.delete(sock));
    sock.on("error", () => undefined);
    let buf = Buffer.alloc(0);
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const used = this.#command(sock, buf);
        if (used === 0) break;
        buf = buf.subarray(used);
        if (sock.destroyed) return;
      }
    });
  }

  /** command - handle one complete command at the start of buf; returns bytes used (0: incomplete) */
  #command(sock: Socket, buf: Buffer): number {
    if (buf.length === 0) return 0;
    const cmd = buf[0]!;
    const isRead = cmd === 0x01 || cmd === 0x02;
    if (isRead && buf.length < 2) return 0;
    if (isRead) {
      this.requests += 1;
      if (this.mode === "hangup") {
        sock.destroy();
        return 2;
      }
      if (this.mode === "silent") return 2;
    }
    switch (cmd) {
      case 0x00: {
        const reply = Buffer.alloc(4);
        reply.writeUInt32BE(this.#available * 8);
        sock.write(reply);
        return 1;
      }
      case 0x01: {
        const n = this.mode === "zero" ? 0 : Math.min(buf[1]!, this.#available);
        sock.write(Buffer.concat([Buffer.from([n]), n ? this.#bytes(n) : Buffer.alloc(0)]));
        if (this.mode === "flood") this.#flood(sock);
        return 2;
      }
      case 0x02:
        sock.write(this.#bytes(buf[1]!));
        return 2;
      case 0x03: {
        if (buf.length < 4) return 0;
        const n = buf[3]!;
        if (buf.length < 4 + n) return 0;
        this.added += n;
        return 4 + n;
      }
      case 0x04: {
        const pid = Buffer.from(String(process.pid), "ascii");
        sock.write(Buffer.concat([Buffer.from([pid.length]), pid]));
        return 1;
      }
      default:
        sock.destroy();
        return buf.length;
    }
  }

  /** flood - send unrequested bytes until the client hangs up or the limit is reached (once per connection) */
  #flood(sock: Socket): void {
    if (this.#flooding.has(sock)) return;
    this.#flooding.add(sock);
    const chunk = Buffer.alloc(64 * 1024, 0xee);
    let sent = 0;
    sock.once("close", () => {
      if (sent < this.#floodLimit) this.floodsCut++;
    });
    const push = (): void => {
      while (!sock.destroyed && sent < this.#floodLimit) {
        sent += chunk.length;
        this.flooded += chunk.length;
        if (!sock.write(chunk)) {
          sock.once("drain", push);
          return;
        }
      }
      if (sent >= this.#floodLimit) this.floodsFinished++;
    };
    setImmediate(push);
  }

  readonly #flooding = new WeakSet<Socket>();

  /** dropClients - hang up on every connected client */
  dropClients(): void {
    for (const s of this.#sockets) s.destroy();
  }

  /** close - stop listening, hang up, remove the socket file */
  async close(): Promise<void> {
    this.dropClients();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await rm(this.path, { force: true });
  }
}
