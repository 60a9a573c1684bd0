/**
 * exchange.ts - the PRNG exchange file (tls_random_exchange_name) shared with Postfix processes.
 * Owns: opening it (O_RDWR|O_CREAT|O_NOFOLLOW, mode 0600: it lives in the
 *       data_directory that mail_owner processes can write, so a symbolic
 *       link planted there is refused, as is a regular file with another
 *       hard link), and one update: take an
 *       exclusive flock(2) lock (the lock Postfix's myflock() takes, so smtpd,
 *       smtp and flock(1) all see it), read what is there, let the pool mix it
 *       in and hand back 1024 fresh bytes, write them at offset 0, unlock.
 *       A removed file (link count 0) is reopened by name.
 * Not here: mixing and generating (prng/pool.ts), the flock call (native/posix.ts).
 * See also: postfix/src/tls/tls_prng_exch.c, postfix/src/tlsmgr/tlsmgr.c (tlsmgr_prng_exch_event)
 *
 * Differences from Postfix, on purpose:
 * - The lock is taken with LOCK_NB and polled (pause doubling to 100 ms) so a
 *   process holding it never blocks the event loop; after lockTimeoutMs the
 *   update is skipped with a warning and tried again at the next schedule.
 *   Postfix blocks in flock() for as long as it takes.
 * - The write happens in place under the lock, as in Postfix (other processes
 *   keep the file open, so a rename would cut them off), but a failed or
 *   short write is not fatal: the old bytes are written back and the length
 *   restored, so the file stays the valid old content; a warning is logged.
 * - A removed file is reopened in process with a warning, where Postfix logs
 *   `PRNG exchange file was removed -- exiting to reopen` and exits.
 * - Without the native addon there is no flock(2): one warning, then updates
 *   go unlocked (Postfix processes may then read a half-written file).
 */
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import { errorText, TlsmgrError } from "../log/errors.js";
import { msgDebug, msgWarn } from "../log/msg.js";
import { flock, isWouldBlock, nativeAvailable, nativeLoadError } from "../native/posix.js";

/** Postfix's TLS_PRNG_EXCH_SIZE. */
export const EXCH_SIZE = 1024;
/** How long one update waits for the lock before it gives up (Postfix: for ever). */
export const EXCH_LOCK_TIMEOUT_MS = 10_000;

const LOCK_POLL_FIRST_MS = 5;
const LOCK_POLL_MAX_MS = 100;

/** One positional write; returns the bytes written (tests replace it to fail). */
export type ExchangeWriter = (fh: FileHandle, buf: Buffer, offset: number, length: number, position: number) => Promise<number>;

export interface PrngExchangeOptions {
  lockTimeoutMs?: number;
  /** Replaces the positional write, for tests of short and failed writes. */
  write?: ExchangeWriter;
}

const defaultWriter: ExchangeWriter = async (fh, buf, offset, length, position) =>
  (await fh.write(buf, offset, length, position)).bytesWritten;

let warnedNoFlock = false;

/** openExchangeFile - open or create the file, mode 0600; never through a symbolic link, nor a regular file with other links */
async function openExchangeFile(path: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOCTTY | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP") throw new TlsmgrError("it is a symbolic link (not followed)", "ELOOP");
    throw err;
  }
  const st = await fh.stat().catch(async (err: unknown) => {
    await fh.close();
    throw err;
  });
  // A device (/dev/full in tests) is taken, as by Postfix; a regular file must have no other name.
  const why = st.isFile() && st.nlink > 1 ? `it has ${st.nlink} hard links` : undefined;
  if (why !== undefined) {
    await fh.close();
    throw new TlsmgrError(why, "EPERM");
  }
  return fh;
}

export class PrngExchange {
  #fh: FileHandle;
  #closed = false;
  readonly #lockTimeoutMs: number;
  readonly #write: ExchangeWriter;

  private constructor(
    readonly path: string,
    fh: FileHandle,
    opts: PrngExchangeOptions,
  ) {
    this.#fh = fh;
    this.#lockTimeoutMs = opts.lockTimeoutMs ?? EXCH_LOCK_TIMEOUT_MS;
    this.#write = opts.write ?? defaultWriter;
  }

  /** open - open or create the exchange file; throws the system error (the pool makes it fatal) */
  static async open(path: string, opts: PrngExchangeOptions = {}): Promise<PrngExchange> {
    const fh = await openExchangeFile(path);
    msgDebug(`tls_prng_exch_open: opened PRNG exchange file ${path}`);
    return new PrngExchange(path, fh, opts);
  }

  /** fd - the descriptor (for tests and diagnostics) */
  get fd(): number {
    return this.#fh.fd;
  }

  /** reopenIfRemoved - a file whose link count is 0 was removed: open the name again */
  async #reopenIfRemoved(): Promise<boolean> {
    let nlink: number;
    try {
      nlink = (await this.#fh.stat()).nlink;
    } catch (err) {
      msgWarn(`cannot fstat() the PRNG exchange file: ${errorText(err)}`);
      return false;
    }
    if (nlink > 0) return true;
    msgWarn("PRNG exchange file was removed -- reopening");
    let fresh: FileHandle;
    try {
      fresh = await openExchangeFile(this.path);
    } catch (err) {
      msgWarn(`cannot open PRNG exchange file ${this.path}: ${errorText(err)}`);
      return false;
    }
    const old = this.#fh;
    this.#fh = fresh;
    await old.close().catch(() => undefined);
    return true;
  }

  /** lock - exclusive flock, polled without blocking; false on timeout or error (warned) */
  async #lock(): Promise<boolean> {
    if (!nativeAvailable()) {
      if (!warnedNoFlock) {
        warnedNoFlock = true;
        msgWarn(`cannot lock PRNG exchange file ${this.path}: flock unavailable (${nativeLoadError()}) -- updating without a lock`);
      }
      return true;
    }
    const deadline = Date.now() + this.#lockTimeoutMs;
    let pause = LOCK_POLL_FIRST_MS;
    for (;;) {
      try {
        flock(this.#fh.fd, "ex", true);
        return true;
      } catch (err) {
        if (!isWouldBlock(err)) {
          msgWarn(`cannot lock PRNG exchange file ${this.path}: ${errorText(err)}`);
          return false;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        msgWarn(`cannot lock PRNG exchange file ${this.path}: timed out after ${Math.round(this.#lockTimeoutMs / 1000)}s`);
        return false;
      }
      await delay(Math.min(pause, left));
      pause = Math.min(pause * 2, LOCK_POLL_MAX_MS);
      if (this.#closed) return false;
    }
  }

  /** unlock - release the lock (warn on failure; closing the file releases it anyway) */
  #unlock(): void {
    if (!nativeAvailable()) return;
    try {
      flock(this.#fh.fd, "un");
    } catch (err) {
      msgWarn(`cannot unlock PRNG exchange file ${this.path}: ${errorText(err)}`);
    }
  }

  /** readAll - up to EXCH_SIZE bytes from offset 0 */
  async #readAll(): Promise<Buffer> {
    const buf = Buffer.alloc(EXCH_SIZE);
    let got = 0;
    while (got < EXCH_SIZE) {
      const { bytesRead } = await this.#fh.read(buf, got, EXCH_SIZE - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  }

  /** writeAll - all of data at offset 0; a write that makes no progress is an error */
  async #writeAll(data: Buffer): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const n = await this.#write(this.#fh, data, done, data.length - done, done);
      if (!(n > 0)) throw new TlsmgrError("short write", "EIO");
      done += n;
    }
  }

  /**
   * update - one read-mix-write cycle under the exclusive lock (tls_prng_exch_update).
   * mix receives the current content (0..1024 bytes) and returns the new 1024
   * bytes. Returns false (after a warning) when the file was left unchanged.
   */
  async update(mix: (old: Buffer) => Buffer): Promise<boolean> {
    if (this.#closed) return false;
    if (!(await this.#reopenIfRemoved())) return false;
    if (!(await this.#lock())) return false;
    try {
      let old: Buffer;
      try {
        old = await this.#readAll();
      } catch (err) {
        msgWarn(`cannot read PRNG exchange file ${this.path}: ${errorText(err)}`);
        return false;
      }
      const fresh = mix(old);
      if (fresh.length !== EXCH_SIZE) throw new RangeError(`PRNG exchange update of ${fresh.length} bytes`);
      try {
        await this.#writeAll(fresh);
      } catch (err) {
        msgWarn(`cannot write PRNG exchange file ${this.path}: ${errorText(err)}`);
        await this.#restore(old);
        return false;
      } finally {
        fresh.fill(0);
      }
      msgDebug(`tls_prng_exch_update: updated PRNG exchange file ${this.path}`);
      return true;
    } finally {
      this.#unlock();
    }
  }

  /** restore - put the old content back after a failed write (still under the lock) */
  async #restore(old: Buffer): Promise<void> {
    try {
      await this.#writeAll(old);
      // A file shorter than EXCH_SIZE gets its length back; a longer one's tail was never touched.
      if (old.length < EXCH_SIZE) await this.#fh.truncate(old.length);
    } catch (err) {
      msgWarn(`cannot restore PRNG exchange file ${this.path}: ${errorText(err)}`);
    }
  }

  /** close - close the file (after the caller's last update) */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fh.close().catch((err) => msgWarn(`close PRNG exchange file ${this.path}: ${errorText(err)}`));
  }
}
