/**
 * pool.ts - tlsmgr's PRNG pool: an HMAC_DRBG fed by the external source, the
 *           exchange file, the time of day and session cache entries.
 * Owns: the pool's DRBG and what goes into it, the external source's life
 *       (open, timed reads, health tests, reopen with back-off), the exchange
 *       file cycle, the randomised reseed and exchange schedules, and the
 *       save before exit. generate() serves the `seed` request.
 * Not here: the DRBG algorithm (prng/drbg.ts), the source kinds
 *       (prng/source-*.ts), the file locking (prng/exchange.ts), request
 *       parsing and the 1..255 limit of `seed` (server/handlers.ts),
 *       data_directory redirection of the exchange file name (config).
 * See also: postfix/src/tlsmgr/tlsmgr.c (tlsmgr_pre_init, tlsmgr_post_init,
 *       tlsmgr_reseed_event, tlsmgr_prng_exch_event, tlsmgr_loop,
 *       tlsmgr_before_exit), ../shared/docs/postfix-tlsmgr-facts.md section 5
 *
 * Security: nothing fed in is trusted. Every input enters the DRBG only as
 * reseed additional input (source bytes, exchange file content) or as
 * generate additional input (time of day, cache entries: hashed together with
 * SHA-256 while they wait), and every instantiate and reseed takes its
 * entropy input, 32 bytes or more, from the operating system's generator
 * (crypto.randomBytes). A hostile, stuck or all-zero source, or a forged
 * exchange file, therefore cannot make the output predictable. Random bytes
 * are never logged.
 *
 * Differences from Postfix, on purpose:
 * - A failed dev: or egd: read, or a source that could not be opened, makes
 *   Postfix save the exchange file and exit so that master(8) restarts it and
 *   it reopens the source. Here the source is closed and reopened (reconnected)
 *   in process after a back-off that doubles from 1 s up to 300 s, with a
 *   warning each time; the pool meanwhile reseeds from the operating system.
 *   Inside a chroot jail the source path may not resolve: the warnings go on
 *   and the pool keeps working.
 * - Source bytes pass the SP 800-90B repetition count and adaptive proportion
 *   tests (prng/health.ts) first; bytes of a failing read are logged and
 *   dropped. Postfix feeds them to OpenSSL unchecked.
 * - The reseed schedule runs even when tls_random_source is empty (it then
 *   reseeds from the operating system only); Postfix does not start it.
 * - Exchange file problems after start-up (lock timeout, failed write, removed
 *   file) are warnings, and the next scheduled update tries again; Postfix
 *   exits. Opening it at start-up is fatal, as in Postfix.
 */
import { createHash, randomBytes, type Hash } from "node:crypto";
import { msgDebug, msgFatal, msgInfo, msgWarn } from "../log/msg.js";
import { systemClock, type Clock } from "../util/clock.js";
import { HmacDrbg } from "./drbg.js";
import { EXCH_SIZE, PrngExchange, type ExchangeWriter } from "./exchange.js";
import { SourceHealth } from "./health.js";
import { RandomSchedule, systemTimers, type TimerHandle, type Timers } from "./schedule.js";
import {
  errorText,
  openSource,
  parseSourceSpec,
  sourceLabel,
  SOURCE_TIMEOUT_MS,
  type EntropySource,
  type SourceSpec,
} from "./source.js";

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
  /** DRBG generate calls between forced reseeds from the OS (default 65536). */
  reseedInterval?: number;
  /** Assessed min-entropy of a source byte for the health tests (default 2 bits). */
  sourceMinEntropy?: number;
  /** Replaces the exchange file's positional write (tests). */
  exchangeWrite?: ExchangeWriter;
  /** Told each scheduled delay in seconds (tests, -v logging). */
  onScheduled?: (what: "reseed" | "exchange", delaySec: number) => void;
}

/** Counters for tests and verbose logging; never bytes. */
export interface PrngPoolStats {
  reseeds: number;
  sourceReads: number;
  sourceBytesUsed: number;
  sourceBytesRejected: number;
  sourceFailures: number;
  sourceReopens: number;
  exchangeUpdates: number;
}

/** OS bytes taken by every instantiate and reseed (at least 32, the strength of the DRBG). */
export const POOL_OS_ENTROPY_BYTES = 32;
const DEFAULT_RESEED_INTERVAL = 1 << 16;
const DEFAULT_BACKOFF = { firstMs: 1_000, maxMs: 300_000 };

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

  readonly #spec: SourceSpec | undefined;
  readonly #health: SourceHealth;
  #source: EntropySource | undefined;
  #sourceDone = false;
  #reopenTimer: TimerHandle | undefined;
  #reopenDelayMs: number;
  #sourceChain: Promise<void> = Promise.resolve();

  #exchange: PrngExchange | undefined;
  #exchangeChain: Promise<unknown> = Promise.resolve();

  #reseedSchedule: RandomSchedule | undefined;
  #exchangeSchedule: RandomSchedule | undefined;
  #closed = false;
  readonly #stats: PrngPoolStats = {
    reseeds: 0,
    sourceReads: 0,
    sourceBytesUsed: 0,
    sourceBytesRejected: 0,
    sourceFailures: 0,
    sourceReopens: 0,
    exchangeUpdates: 0,
  };

  private constructor(cfg: PrngPoolConfig, opts: PrngPoolOptions) {
    this.#cfg = cfg;
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#timers = opts.timers ?? systemTimers;
    this.#reopenDelayMs = (opts.reopenBackoff ?? DEFAULT_BACKOFF).firstMs;
    this.#spec = parseSourceSpec(cfg.tls_random_source ?? "");
    this.#health = new SourceHealth(opts.sourceMinEntropy !== undefined ? { minEntropy: opts.sourceMinEntropy } : {});
    this.#drbg = new HmacDrbg({
      getEntropy: (n) => randomBytes(Math.max(n, POOL_OS_ENTROPY_BYTES)),
      reseedInterval: opts.reseedInterval ?? DEFAULT_RESEED_INTERVAL,
    });
    // tlsmgr_pre_init: "seed with time of day xor pid"; here the personalization string.
    this.#drbg.instantiate(undefined, undefined, framed("tlsmgr-ts prng pool", this.#timeOfDay()));
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
    if (!this.#spec) {
      msgWarn("no entropy source specified with parameter tls_random_source");
      msgWarn("encryption keys etc. may be predictable");
    } else {
      try {
        this.#source = await openSource(this.#spec, this.#sourceOpts());
        msgDebug(`opened ${sourceLabel(this.#spec.kind)} ${this.#spec.path}`);
      } catch (err) {
        msgWarn(errorText(err));
        this.#scheduleReopen();
      }
    }
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

  #sourceOpts(): { timeoutMs: number } {
    return { timeoutMs: this.#opts.sourceTimeoutMs ?? SOURCE_TIMEOUT_MS };
  }

  /** timeOfDay - clock seconds, wall milliseconds, monotonic nanoseconds, pid */
  #timeOfDay(): Buffer {
    const b = Buffer.alloc(32);
    b.writeDoubleBE(this.#clock.now(), 0);
    b.writeDoubleBE(Date.now(), 8);
    b.writeBigUInt64BE(process.hrtime.bigint(), 16);
    b.writeUInt32BE(process.pid >>> 0, 24);
    b.writeUInt32BE(process.ppid >>> 0, 28);
    return b;
  }

  /** addPending - queue an input for the next generate or reseed (hashed as it comes) */
  #addPending(label: string, data: Buffer): void {
    this.#pending.update(framed(label, data));
    this.#pendingInputs += 1;
  }

  /** takePending - the digest of the queued inputs (empty when none) */
  #takePending(): Buffer {
    if (this.#pendingInputs === 0) return Buffer.alloc(0);
    const digest = this.#pending.digest();
    this.#pending = createHash("sha256");
    this.#pendingInputs = 0;
    return digest;
  }

  /** reseedWith - DRBG reseed: OS entropy input, labelled data and queued inputs as additional input */
  #reseedWith(label: string, data: Buffer | undefined): void {
    const additional = Buffer.concat([framed(label, data ?? Buffer.alloc(0)), this.#takePending()]);
    this.#drbg.reseed(undefined, additional);
    additional.fill(0);
    this.#stats.reseeds += 1;
  }

  /** generate - n fresh bytes for a `seed` request (synchronous; time of day and cache entries go in first) */
  generate(n: number): Buffer {
    if (!this.#drbg.instantiated) {
      throw Object.assign(new Error("PRNG pool is closed"), { code: "PRNG_CLOSED" });
    }
    return this.#drbg.generate(n, this.#takePending());
  }

  /** mixTimeOfDay - after each request and timer event (tlsmgr_loop) */
  mixTimeOfDay(): void {
    this.#addPending("time", this.#timeOfDay());
  }

  /** mixEntry - a session cache entry met by the expiry sweep */
  mixEntry(id: string | Buffer, value: Buffer): void {
    const key = typeof id === "string" ? Buffer.from(id, "utf8") : id;
    this.#pending.update(framed("cache-id", key));
    this.#addPending("cache-value", value);
  }

  /** stats - counters (no bytes) */
  stats(): PrngPoolStats {
    return { ...this.#stats };
  }

  /** serialSource - run source work one at a time */
  #serialSource<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#sourceChain.then(fn);
    this.#sourceChain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /**
   * reseed - tlsmgr_reseed_event: read the external source (if open), check
   * it, and reseed with it; the file source is read once and closed.
   */
  reseed(): Promise<void> {
    return this.#serialSource(async () => {
      if (!this.#drbg.instantiated) return;
      this.mixTimeOfDay();
      const data = await this.#readSource();
      if (!this.#drbg.instantiated) return;
      this.#reseedWith("source", data);
      data?.fill(0);
    });
  }

  /** readSource - one read, health-checked; undefined when nothing usable */
  async #readSource(): Promise<Buffer | undefined> {
    const spec = this.#spec;
    const source = this.#source;
    if (!spec || this.#sourceDone || !source) return undefined;
    let data: Buffer | undefined;
    this.#stats.sourceReads += 1;
    try {
      data = await source.read(Math.max(1, Math.floor(this.#cfg.tls_random_bytes)));
      msgDebug(`read ${data.length} bytes from ${sourceLabel(spec.kind)} ${spec.path}`);
    } catch (err) {
      if (this.#closed) return undefined;
      this.#stats.sourceFailures += 1;
      if (spec.kind === "file") {
        msgWarn(errorText(err));
      } else {
        msgWarn(`${errorText(err)} -- ${spec.kind === "egd" ? "reconnecting" : "reopening"}`);
        this.#source = undefined;
        await source.close();
        this.#scheduleReopen();
      }
    }
    if (spec.kind === "file") {
      // Postfix reads the file once, closes it and forgets tls_random_source.
      this.#sourceDone = true;
      this.#source = undefined;
      await source.close();
    }
    if (data) {
      const verdict = this.#health.check(data);
      if (!verdict.ok) {
        msgWarn(
          `${sourceLabel(spec.kind)} ${spec.path} failed the ${verdict.failed} health test -- ${data.length} bytes not used`,
        );
        this.#stats.sourceBytesRejected += data.length;
        data.fill(0);
        return undefined;
      }
      this.#stats.sourceBytesUsed += data.length;
    }
    return data;
  }

  /** scheduleReopen - try the source again after the current back-off */
  #scheduleReopen(): void {
    if (this.#closed || !this.#spec || this.#reopenTimer !== undefined) return;
    this.#reopenTimer = this.#timers.setTimeout(() => {
      this.#reopenTimer = undefined;
      this.#serialSource(() => this.#reopen()).catch((err) =>
        msgWarn(`cannot reopen ${sourceLabel(this.#spec!.kind)} ${this.#spec!.path}: ${errorText(err)}`),
      );
    }, this.#reopenDelayMs);
  }

  /** reopen - open the source again; on success reseed from it at once */
  async #reopen(): Promise<void> {
    const spec = this.#spec;
    if (this.#closed || !spec || this.#source) return;
    const backoff = this.#opts.reopenBackoff ?? DEFAULT_BACKOFF;
    let source: EntropySource;
    try {
      source = await openSource(spec, this.#sourceOpts());
    } catch (err) {
      this.#reopenDelayMs = Math.min(this.#reopenDelayMs * 2, backoff.maxMs);
      msgWarn(`${errorText(err)} -- retrying in ${Math.ceil(this.#reopenDelayMs / 1000)}s`);
      this.#scheduleReopen();
      return;
    }
    if (this.#closed) {
      await source.close();
      return;
    }
    this.#source = source;
    this.#reopenDelayMs = backoff.firstMs;
    this.#stats.sourceReopens += 1;
    msgInfo(`${spec.kind === "egd" ? "reconnected to" : "reopened"} ${sourceLabel(spec.kind)} ${spec.path}`);
    this.mixTimeOfDay();
    const data = await this.#readSource();
    if (!this.#drbg.instantiated) return;
    this.#reseedWith("source", data);
    data?.fill(0);
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
        this.#reseedWith("exchange", old);
        return this.#drbg.generate(EXCH_SIZE, this.#takePending());
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
    if (this.#reopenTimer !== undefined) this.#timers.clearTimeout(this.#reopenTimer);
    this.#reopenTimer = undefined;
    // Closing the source first ends a read in progress (it then fails quietly).
    const source = this.#source;
    this.#source = undefined;
    await source?.close();
    await this.#reseedSchedule?.stop();
    await this.#exchangeSchedule?.stop();
    await this.#sourceChain;
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
    this.#drbg.uninstantiate();
  }
}
