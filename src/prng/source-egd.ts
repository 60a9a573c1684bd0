/**
 * source-egd.ts - `egd:/path` entropy source: the EGD protocol over a local stream socket.
 * Owns: connecting with a timeout, and one request: send 0x01 N (N <= 255,
 *       "read entropy, non-blocking"), read a count byte, then that many
 *       bytes, each step with the timeout. A zero count, a hang-up or a timeout
 *       is a failure; after one the connection is useless (the pool reconnects).
 *       A server that sends more than one reply can hold (EGD_MAX_BUFFERED
 *       bytes) is misbehaving: warned about and dropped, so that what it sends
 *       cannot grow the daemon's memory.
 * Not here: reconnect policy (prng/source-keeper.ts).
 * See also: postfix/src/tls/tls_prng_egd.c, prng/source.ts, test/helpers/egd-server.ts
 */
import { createConnection, type Socket } from "node:net";
import { errorCode, errorText } from "../log/errors.js";
import { msgWarn } from "../log/msg.js";
import { SOURCE_MAX_READ, SourceError, type EntropySource } from "./source.js";

/** EGD command: read up to N bytes without blocking; the reply is a count byte and the bytes. */
export const EGD_CMD_READ_NONBLOCKING = 0x01;

/**
 * The most a well-behaved server has sent when a read takes its bytes: a
 * count byte and SOURCE_MAX_READ (255) bytes. A literal: source.ts imports
 * this module, so its constants are not yet there when this one is made.
 */
export const EGD_MAX_BUFFERED = 1 + 255;

/** openEgdSource - connect to the EGD server's socket */
export function openEgdSource(path: string, timeoutMs: number): Promise<EntropySource> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ path });
    const fail = (text: string, code: string) => {
      clearTimeout(timer);
      sock.destroy();
      reject(new SourceError(`cannot connect to EGD server ${path}: ${text}`, code));
    };
    const timer = setTimeout(() => fail("timed out", "ETIMEDOUT"), timeoutMs);
    sock.once("error", (err) => fail(errorText(err), errorCode(err)));
    sock.once("connect", () => {
      clearTimeout(timer);
      sock.removeAllListeners("error");
      resolve(new EgdSource(path, sock, timeoutMs));
    });
  });
}

class EgdSource implements EntropySource {
  readonly kind = "egd" as const;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #ended: string | undefined;
  #wake: (() => void) | undefined;

  constructor(
    readonly path: string,
    private readonly sock: Socket,
    private readonly timeoutMs: number,
  ) {
    sock.on("data", (chunk: Buffer) => {
      if (this.#ended !== undefined) return;
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered > EGD_MAX_BUFFERED) {
        msgWarn(`EGD server ${path} sent ${this.#buffered} bytes that were not asked for: closing the connection`);
        this.#chunks = [];
        this.#buffered = 0;
        this.#end("the server sent bytes that were not asked for");
        sock.destroy();
        return;
      }
      this.#wake?.();
    });
    sock.on("end", () => this.#end("lost connection"));
    sock.on("close", () => this.#end("lost connection"));
    sock.on("error", (err) => this.#end(errorText(err)));
  }

  #end(why: string): void {
    this.#ended ??= why;
    this.#wake?.();
  }

  /** take - wait for exactly n buffered bytes, or fail on hang-up or timeout */
  async #take(n: number, what: string): Promise<Buffer> {
    const deadline = Date.now() + this.timeoutMs;
    while (this.#buffered < n) {
      if (this.#ended !== undefined) throw new SourceError(`${what}: ${this.#ended}`, "ECONNRESET");
      const left = deadline - Date.now();
      if (left <= 0) throw new SourceError(`${what}: timed out`, "ETIMEDOUT");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#chunks = rest.length ? [rest] : [];
    this.#buffered = rest.length;
    return Buffer.from(out);
  }

  /** read - one EGD request for min(len, 255) bytes (tls_prng_egd_read) */
  async read(len: number): Promise<Buffer> {
    const want = Math.min(Math.max(1, Math.floor(len)), SOURCE_MAX_READ);
    if (this.#ended !== undefined || this.sock.destroyed)
      throw new SourceError(`cannot write to EGD server ${this.path}: ${this.#ended ?? "not connected"}`, "EPIPE");
    // Drop anything unasked-for left from before: the reply must follow this request.
    this.#chunks = [];
    this.#buffered = 0;
    this.sock.write(Buffer.from([EGD_CMD_READ_NONBLOCKING, want]));
    const [count] = await this.#take(1, `cannot read from EGD server ${this.path}`);
    if (!count) throw new SourceError(`EGD server ${this.path} reports zero bytes available`, "ENODATA");
    return this.#take(count, `cannot read ${count} bytes from EGD server ${this.path}`);
  }

  async close(): Promise<void> {
    this.#end("closed");
    if (this.sock.destroyed) return;
    await new Promise<void>((resolve) => {
      this.sock.once("close", () => resolve());
      this.sock.destroy();
    });
  }
}
