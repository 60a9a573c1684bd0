/**
 * pool.ts - tlsmgr's PRNG pool: an HMAC_DRBG fed by the external source, the
 *           exchange file, the time of day and session cache entries.
 * Owns: the pool's DRBG and what goes into it, the exchange file cycle, the
 *       randomised reseed and exchange schedules, the seed block, and the
 *       save before exit. generate() serves the `seed` request.
 * Not here: the DRBG algorithm (prng/drbg.ts), the external source's life
 *       (prng/source-keeper.ts), the file locking (prng/exchange.ts), request
 *       parsing and the 1..255 limit of `seed` (server/handlers.ts), the
 *       data_directory redirection of the exchange file name (the caller,
 *       main.ts, passes the redirected name).
 * See also: postfix/src/tlsmgr/tlsmgr.c (tlsmgr_pre_init, tlsmgr_post_init,
 *       tlsmgr_reseed_event, tlsmgr_prng_exch_event, tlsmgr_loop,
 *       tlsmgr_before_exit), docs/benchmarks.md (what the seed block saves)
 *
 * Security: nothing fed in is trusted. Every input enters the DRBG only as
 * reseed additional input (source bytes, exchange file content) or as
 * generate additional input (time of day, cache entries: hashed together with
 * SHA-256 while they wait, then given to the next seed block's generate), and
 * every instantiate and reseed takes its entropy input, 32 bytes or more, from
 * the operating system's generator (crypto.randomBytes). A hostile, stuck or
 * all-zero source, or a forged exchange file, therefore cannot make the
 * output predictable. Random bytes are never logged.
 *
 * The seed block: one DRBG generate call makes a block of seedBlockBytes
 * (default 4096, at most the DRBG's 65536 bytes per request), and `seed`
 * requests are served the next n bytes of it in order; each byte is zeroed
 * as it is handed out, so none is served twice. A request longer than what
 * is left drops the rest and takes a new block; one longer than a block gets
 * a generate call of its own. It is safe because:
 * - a generate call's output is by design usable in pieces: it is one
 *   pseudorandom string, each part of it as unpredictable, given the other
 *   parts, as the output of a call of its own. What a block changes is when
 *   the state moves on (once per block instead of once per request): the
 *   unserved rest of the block, at most seedBlockBytes, is output that a
 *   reader of the process memory would learn, as it would learn the state;
 *   bytes already served are zeroed, so they cannot be recovered from it;
 * - the block is bounded (one request's worth in SP 800-90A terms), and the
 *   reseed interval counts DRBG generate calls, so blocks: by default it
 *   allows 16 MiB of output between forced reseeds (4096 blocks of 4 KiB),
 *   about the bound that 65536 requests of up to 255 bytes gave before;
 * - every reseed (schedule, source reopen, exchange file update) zeroes the
 *   unused rest, so no byte made before a reseed is served after it; the
 *   exchange file content is a generate call of its own, made after that
 *   reseed, so file bytes and served bytes never overlap;
 * - fork is no issue: this daemon is one process, and Node has no fork(2)
 *   (child processes start afresh), so no copy of the block can be served twice.
 * The time of day is mixed in once per event loop turn; its framed 41-byte
 * sample is written in place into one buffer and hashed (no allocation).
 *
 * Differences from Postfix, on purpose (the source's: prng/source-keeper.ts):
 * - The reseed schedule runs even when tls_random_source is empty (it then
 *   reseeds from the operating system only); Postfix does not start it.
 * - Exchange file problems after start-up (lock timeout, failed write, removed
 *   file) are warnings, and the next scheduled update tries again; Postfix
 *   exits. Opening it at start-up is fatal, as in Postfix.
 */
import { createHash, randomBytes, type Hash } from "node:crypto";
import { errorText, TlsmgrError } from "../log/errors.js";
import { msgDebug, msgFatal, msgWarn } from "../log/msg.js";
import { systemClock, type Clock } from "../util/clock.js";
import { DRBG_MAX_REQUEST_BYTES, DrbgError, HmacDrbg, type HmacDrbgOptions } from "./drbg.js";
import { EXCH_SIZE, PrngExchange, type ExchangeWriter } from "./exchange.js";
import { RandomSchedule, systemTimers, type Timers } from "./schedule.js";
import { parseSourceSpec } from "./source.js";
import { SourceKeeper, type SourceKeeperStats } from "./source-keeper.js";

/** The code of the error generate() throws once the pool is closed. */
export const ERR_PRNG_CLOSED = "PRNG_CLOSED";

/** The main.cf parameters the pool reads (times in seconds). */
export interface PrngPoolConfig {
  tls_random_source: string;
  tls_random_bytes: number;
  tls_random_exchange_name: string;
  tls_random_reseed_period: number;
  tls_random_prng_update_period: number;
}

export interface PrngPoolOptions {
  /** Time of day source (mixed in; never the only input). */
  clock?: Clock;
  /** The random byte r of the schedules (period * r / 255). */
  randomByte?: () => number;
  /** Timers of the schedules and of source reopening. */
  timers?: Timers;
  /** Source open and read timeout (default 10 s, Postfix's TLS_MGR_TIMEOUT). */
  sourceTimeoutMs?: number;
  /** How long an exchange update waits for the lock (default 10 s). */
  lockTimeoutMs?: number;
  /** Source reopen back-off: first and largest delay (default 1 s and 300 s). */
  reopenBackoff?: { firstMs: number; maxMs: number };
  /** DRBG generate calls between forced reseeds from the OS (default 2^24 / seedBlockBytes, 4096). */
  reseedInterval?: number;
  /** Bytes of one seed block, one DRBG generate call (1..65536; default POOL_SEED_BLOCK_BYTES). */
  seedBlockBytes?: number;
  /**
   * Builds the pool's DRBG from the pool's options (OS entropy callback,
   * reseed interval); tests wrap it to watch its calls. Default: new HmacDrbg(opts).
   */
  createDrbg?: (opts: HmacDrbgOptions) => HmacDrbg;
  /** Assessed min-entropy of a source byte for the health tests (default 2 bits). */
  sourceMinEntropy?: number;
  /** Replaces the exchange file's positional write (tests). */
  exchangeWrite?: ExchangeWriter;
  /** Told each scheduled delay in seconds (tests, -v logging). */
  onScheduled?: (what: "reseed" | "exchange", delaySec: number) => void;
}

/** Counters for tests and verbose logging; never bytes. The source's are the keeper's. */
export interface PrngPoolStats extends SourceKeeperStats {
  reseeds: number;
  exchangeUpdates: number;
  /** DRBG generate calls (seed blocks, exchange file contents, long requests). */
  drbgGenerates: number;
  /** Seed blocks made. */
  seedBlocks: number;
  /** Unserved seed block bytes zeroed (at reseeds, and rests too short for a request). */
  seedBytesDiscarded: number;
}

/** OS bytes taken by every instantiate and reseed (at least 32, the strength of the DRBG). */
export const POOL_OS_ENTROPY_BYTES = 32;
/** Default seed block: 128 seeds of 32 bytes per generate call (the header; its cost: docs/benchmarks.md). */
export const POOL_SEED_BLOCK_BYTES = 4096;
/** Output between forced reseeds by default (in whole seed blocks). */
const RESEED_INTERVAL_BYTES = 1 << 24;
const EMPTY = Buffer.alloc(0);
/** The time of day sample: clock s, wall ms, monotonic ms (doubles), pid, ppid. */
const TIME_BYTES = 32;

/** u32 - 4-byte big-endian length */
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** framed - label NUL length data: unambiguous additional input */
function framed(label: string, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${label}\0`, "latin1"), u32(data.length), data]);
}

export class PrngPool {
  readonly #cfg: PrngPoolConfig;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #opts: PrngPoolOptions;
  readonly #drbg: HmacDrbg;
  #pending: Hash = createHash("sha256");
  #pendingInputs = 0;
  /** framed("time", sample): rewritten in place by each mixTimeOfDay */
  readonly #timeFrame: Buffer;
  readonly #timeAt: number;

  readonly #blockBytes: number;
  /** The current seed block (served part zeroed) and the next byte to serve. */
  #block: Buffer = EMPTY;
  #blockPos = 0;

  readonly #source: SourceKeeper;

  #exchange: PrngExchange | undefined;
  #exchangeChain: Promise<unknown> = Promise.resolve();

  #reseedSchedule: RandomSchedule | undefined;
  #exchangeSchedule: RandomSchedule | undefined;
  #closed = false;
  readonly #stats: Omit<PrngPoolStats, keyof SourceKeeperStats> = {
    reseeds: 0,
    exchangeUpdates: 0,
    drbgGenerates: 0,
    seedBlocks: 0,
    seedBytesDiscarded: 0,
  };

  private constructor(cfg: PrngPoolConfig, opts: PrngPoolOptions) {
    this.#cfg = cfg;
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#timers = opts.timers ?? systemTimers;
    this.#source = new SourceKeeper(parseSourceSpec(cfg.tls_random_source ?? ""), {
      readBytes: cfg.tls_random_bytes,
      timers: this.#timers,
      ...(opts.sourceTimeoutMs !== undefined ? { timeoutMs: opts.sourceTimeoutMs } : {}),
      ...(opts.reopenBackoff ? { reopenBackoff: opts.reopenBackoff } : {}),
      ...(opts.sourceMinEntropy !== undefined ? { minEntropy: opts.sourceMinEntropy } : {}),
      use: (data) => this.#reseedFromSource(data),
    });
    const blockBytes = opts.seedBlockBytes ?? POOL_SEED_BLOCK_BYTES;
    if (!Number.isSafeInteger(blockBytes) || blockBytes < 1 || blockBytes > DRBG_MAX_REQUEST_BYTES)
      throw new RangeError(`seed block of ${blockBytes} bytes outside 1..${DRBG_MAX_REQUEST_BYTES}`);
    this.#blockBytes = blockBytes;
    const drbgOpts: HmacDrbgOptions = {
      getEntropy: (n) => randomBytes(Math.max(n, POOL_OS_ENTROPY_BYTES)),
      reseedInterval: opts.reseedInterval ?? Math.max(1, Math.floor(RESEED_INTERVAL_BYTES / blockBytes)),
    };
    this.#drbg = opts.createDrbg ? opts.createDrbg(drbgOpts) : new HmacDrbg(drbgOpts);
    this.#timeFrame = framed("time", Buffer.alloc(TIME_BYTES));
    this.#timeAt = this.#timeFrame.length - TIME_BYTES;
    this.#timeFrame.writeUInt32BE(process.pid >>> 0, this.#timeAt + 24);
    this.#timeFrame.writeUInt32BE(process.ppid >>> 0, this.#timeAt + 28);
    // tlsmgr_pre_init: "seed with time of day xor pid"; here the personalization string.
    this.#writeTimeOfDay();
    const perso = framed("tlsmgr-ts prng pool", this.#timeFrame.subarray(this.#timeAt));
    this.#drbg.instantiate(undefined, undefined, perso);
    this.#discardBlock();
  }

  /**
   * open - start the pool as tlsmgr_pre_init and tlsmgr_post_init do: open the
   * source (warnings), open the exchange file (fatal when impossible), reseed
   * from the source, update the exchange file, then start both schedules.
   */
  static async open(cfg: PrngPoolConfig, opts: PrngPoolOptions = {}): Promise<PrngPool> {
    const pool = new PrngPool(cfg, opts);
    try {
      await pool.#start();
    } catch (err) {
      await pool.#stopQuietly();
      throw err;
    }
    return pool;
  }

  /** start - the start-up sequence */
  async #start(): Promise<void> {
    await this.#source.open();
    const exchName = this.#cfg.tls_random_exchange_name;
    if (exchName) {
      try {
        this.#exchange = await PrngExchange.open(exchName, {
          ...(this.#opts.lockTimeoutMs !== undefined ? { lockTimeoutMs: this.#opts.lockTimeoutMs } : {}),
          ...(this.#opts.exchangeWrite ? { write: this.#opts.exchangeWrite } : {}),
        });
      } catch (err) {
        msgFatal(`cannot open PRNG exchange file ${exchName}: ${errorText(err)}`);
      }
    }
    await this.reseed();
    if (this.#exchange) await this.updateExchange();

    const common = {
      timers: this.#timers,
      ...(this.#opts.randomByte ? { randomByte: this.#opts.randomByte } : {}),
    };
    this.#reseedSchedule = new RandomSchedule(
      Math.max(1, this.#cfg.tls_random_reseed_period),
      () => this.reseed().catch((err) => msgWarn(`cannot reseed PRNG pool: ${errorText(err)}`)),
      { ...common, onScheduled: (d) => this.#scheduled("reseed", d) },
    );
    this.#reseedSchedule.start();
    if (this.#exchange) {
      this.#exchangeSchedule = new RandomSchedule(
        Math.max(1, this.#cfg.tls_random_prng_update_period),
        async () => {
          await this.updateExchange().catch((err) =>
            msgWarn(`cannot update PRNG exchange file ${exchName}: ${errorText(err)}`),
          );
        },
        { ...common, onScheduled: (d) => this.#scheduled("exchange", d) },
      );
      this.#exchangeSchedule.start();
    }
  }

  #scheduled(what: "reseed" | "exchange", delaySec: number): void {
    msgDebug(`next PRNG ${what === "reseed" ? "reseed" : "exchange file update"} in ${delaySec}s`);
    this.#opts.onScheduled?.(what, delaySec);
  }

  /**
   * writeTimeOfDay - the time frame's sample: clock seconds, wall milliseconds,
   * monotonic milliseconds with fraction (then pid and ppid, written at start)
   */
  #writeTimeOfDay(): void {
    const b = this.#timeFrame;
    const at = this.#timeAt;
    b.writeDoubleBE(this.#clock.now(), at);
    b.writeDoubleBE(Date.now(), at + 8);
    b.writeDoubleBE(performance.now(), at + 16);
  }

  /** addPending - queue an input for the next generate or reseed (hashed as it comes) */
  #addPending(label: string, data: Buffer): void {
    this.#pending.update(framed(label, data));
    this.#pendingInputs += 1;
  }

  /** takePending - the digest of the queued inputs (empty when none) */
  #takePending(): Buffer {
    if (this.#pendingInputs === 0) return EMPTY;
    const digest = this.#pending.digest();
    this.#pending = createHash("sha256");
    this.#pendingInputs = 0;
    return digest;
  }

  /** reseedWith - DRBG reseed: OS entropy input, labelled data and queued inputs as additional input */
  #reseedWith(label: string, data: Buffer | undefined): void {
    this.#discardBlock();
    const additional = Buffer.concat([framed(label, data ?? Buffer.alloc(0)), this.#takePending()]);
    this.#drbg.reseed(undefined, additional);
    additional.fill(0);
    this.#stats.reseeds += 1;
  }

  /** discardBlock - zero the unserved rest of the seed block and forget it */
  #discardBlock(): void {
    const rest = this.#block.length - this.#blockPos;
    if (rest > 0) {
      this.#block.fill(0, this.#blockPos);
      this.#stats.seedBytesDiscarded += rest;
    }
    this.#block = EMPTY;
    this.#blockPos = 0;
  }

  /** drbgGenerate - one DRBG generate call with the queued inputs as additional input */
  #drbgGenerate(n: number): Buffer {
    const additional = this.#takePending();
    this.#stats.drbgGenerates += 1;
    return this.#drbg.generate(n, additional);
  }

  /**
   * generate - n fresh bytes for a `seed` request (synchronous): the next n
   * bytes of the seed block, zeroed there; a new block (with the time of day
   * and cache entries as its additional input) when too few are left
   */
  generate(n: number): Buffer {
    if (!this.#drbg.instantiated) {
      throw new TlsmgrError("PRNG pool is closed", ERR_PRNG_CLOSED);
    }
    if (!Number.isSafeInteger(n) || n < 0 || n > DRBG_MAX_REQUEST_BYTES)
      throw new DrbgError("DRBG_BAD_INPUT", `request of ${n} bytes outside 0..${DRBG_MAX_REQUEST_BYTES}`);
    if (n > this.#blockBytes) {
      // Longer than a block: a generate call of its own, after which no older byte is served.
      const out = this.#drbgGenerate(n);
      this.#discardBlock();
      return out;
    }
    if (this.#block.length - this.#blockPos < n) {
      this.#discardBlock();
      this.#block = this.#drbgGenerate(this.#blockBytes);
      this.#stats.seedBlocks += 1;
    }
    const start = this.#blockPos;
    const out = Buffer.alloc(n);
    this.#block.copy(out, 0, start, start + n);
    this.#block.fill(0, start, start + n);
    this.#blockPos = start + n;
    return out;
  }

  /** mixTimeOfDay - after each request and timer event (tlsmgr_loop); no allocation */
  mixTimeOfDay(): void {
    this.#writeTimeOfDay();
    this.#pending.update(this.#timeFrame);
    this.#pendingInputs += 1;
  }

  /** mixEntry - a session cache entry met by the expiry sweep */
  mixEntry(id: string | Buffer, value: Buffer): void {
    const key = typeof id === "string" ? Buffer.from(id, "utf8") : id;
    this.#pending.update(framed("cache-id", key));
    this.#addPending("cache-value", value);
  }

  /** stats - counters (no bytes) */
  stats(): PrngPoolStats {
    return { ...this.#stats, ...this.#source.stats() };
  }

  /**
   * reseed - tlsmgr_reseed_event: read the external source (if open), check
   * it, and reseed with it; the file source is read once and closed.
   */
  reseed(): Promise<void> {
    return this.#source.feed();
  }

  /** reseedFromSource - the keeper's use of each read (a reseed, a reopen): reseed with it */
  #reseedFromSource(data: Buffer | undefined): void {
    if (!this.#drbg.instantiated) return;
    this.mixTimeOfDay();
    this.#reseedWith("source", data);
  }

  /**
   * updateExchange - tlsmgr_prng_exch_event: read-mix-write of the exchange
   * file under its lock; false when the file was left as it was (warned).
   */
  updateExchange(): Promise<boolean> {
    const run = this.#exchangeChain.then(async () => {
      const exchange = this.#exchange;
      if (!exchange || !this.#drbg.instantiated) return false;
      this.mixTimeOfDay();
      const ok = await exchange.update((old) => {
        // The reseed drops the seed block; the file content is a generate call of its own.
        this.#reseedWith("exchange", old);
        return this.#drbgGenerate(EXCH_SIZE);
      });
      if (ok) this.#stats.exchangeUpdates += 1;
      return ok;
    });
    this.#exchangeChain = run.catch(() => undefined);
    return run;
  }

  /** stopQuietly - stop timers and close the source (no exchange save) */
  async #stopQuietly(): Promise<void> {
    this.#closed = true;
    // Closing the source first ends a read in progress (it then fails quietly).
    await this.#source.close();
    await this.#reseedSchedule?.stop();
    await this.#exchangeSchedule?.stop();
  }

  /** close - tlsmgr_before_exit: stop the schedules, save the exchange file, forget the state */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#stopQuietly();
    if (this.#exchange) {
      await this.updateExchange().catch((err) => msgWarn(`cannot update PRNG exchange file: ${errorText(err)}`));
      await this.#exchangeChain;
      await this.#exchange.close();
    }
    this.#discardBlock();
    this.#drbg.uninstantiate();
  }
}
