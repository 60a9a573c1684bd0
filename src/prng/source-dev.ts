/**
 * source-dev.ts - `dev:/path` entropy source: a device read with a timeout.
 * Owns: opening the device non-blocking (so a FIFO without writer or a
 *       blocking device never holds a libuv thread), and the timed read of up to
 *       min(len, 255) bytes: whatever one read returns, polled until data or the
 *       timeout (Postfix: timed_read of TLS_MGR_TIMEOUT seconds).
 * Not here: reopen after a failure (prng/source-keeper.ts).
 * See also: postfix/src/tls/tls_prng_dev.c, prng/source.ts
 */
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import { errorCode, errorText } from "../log/errors.js";
import { SOURCE_MAX_READ, SourceError, type EntropySource } from "./source.js";

/** First and largest pause between polls of a device that has no data yet. */
const POLL_FIRST_MS = 10;
const POLL_MAX_MS = 200;

/** openDevSource - open the device read-only and non-blocking */
export async function openDevSource(path: string, timeoutMs: number): Promise<EntropySource> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw new SourceError(`cannot open entropy device ${path}: ${errorText(err)}`, errorCode(err));
  }
  const isRegular = (await fh.stat().catch(() => undefined))?.isFile() ?? false;
  return new DevSource(path, fh, timeoutMs, isRegular);
}

class DevSource implements EntropySource {
  readonly kind = "dev" as const;
  #closed = false;

  constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly timeoutMs: number,
    private readonly isRegular: boolean,
  ) {}

  /** read - one timed read of up to min(len, 255) bytes (tls_prng_dev_read) */
  async read(len: number): Promise<Buffer> {
    const want = Math.min(Math.max(1, Math.floor(len)), SOURCE_MAX_READ);
    const buf = Buffer.alloc(want);
    const deadline = Date.now() + this.timeoutMs;
    let pause = POLL_FIRST_MS;
    for (;;) {
      if (this.#closed) throw new SourceError(`cannot read from entropy device ${this.path}: source closed`, "EBADF");
      let count = 0;
      try {
        count = (await this.fh.read(buf, 0, want, null)).bytesRead;
      } catch (err) {
        if (errorCode(err) !== "EAGAIN" && errorCode(err) !== "EWOULDBLOCK")
          throw new SourceError(`cannot read from entropy device ${this.path}: ${errorText(err)}`, errorCode(err));
      }
      if (count > 0) return buf.subarray(0, count);
      // No data now: EAGAIN, or end of file (a FIFO without writer); a regular file stays at its end.
      if (this.isRegular)
        throw new SourceError(`cannot read from entropy device ${this.path}: end of file`, "EOF");
      const left = deadline - Date.now();
      if (left <= 0)
        throw new SourceError(`cannot read from entropy device ${this.path}: timed out`, "ETIMEDOUT");
      await delay(Math.min(pause, left));
      pause = Math.min(pause * 2, POLL_MAX_MS);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.fh.close().catch(() => undefined);
  }
}
