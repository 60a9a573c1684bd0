/**
 * source-keeper.ts - the life of the pool's external entropy source
 *                    (tls_random_source): open, read, check, reopen.
 * Owns: opening a source by its kind, the first open at start-up, one read
 *       at a time (reads and reopens never overlap), the SP 800-90B health
 *       verdict on each read, closing a file source after its one read,
 *       reopening (reconnecting) a failed dev: or egd: source with a back-off,
 *       the source counters, and the warnings of all of it.
 * Not here: what the bytes are used for (prng/pool.ts hands in `use`), the
 *       kinds (prng/source-dev.ts, source-egd.ts, source-file.ts), the tests
 *       themselves (prng/health.ts).
 * See also: postfix/src/tlsmgr/tlsmgr.c (tlsmgr_pre_init, tlsmgr_reseed_event),
 *       postfix/src/tls/tls_prng_{dev,egd,file}.c
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
 */
import { errorText } from "../log/errors.js";
import { msgDebug, msgInfo, msgWarn } from "../log/msg.js";
import { SourceHealth } from "./health.js";
import type { TimerHandle, Timers } from "./schedule.js";
import { SOURCE_TIMEOUT_MS, sourceLabel, type EntropySource, type SourceSpec } from "./source.js";
// Static, not import(): a lazy import would run after privileges are dropped
// (mail_owner may not read this code) or after chroot (the code is outside).
import { openDevSource } from "./source-dev.js";
import { openEgdSource } from "./source-egd.js";
import { openFileSource } from "./source-file.js";

export interface OpenSourceOptions {
  /** Open and read timeout (default SOURCE_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** openSource - open a source of the given spec; throws SourceError with Postfix's words */
export async function openSource(spec: SourceSpec, opts: OpenSourceOptions = {}): Promise<EntropySource> {
  const timeoutMs = opts.timeoutMs ?? SOURCE_TIMEOUT_MS;
  switch (spec.kind) {
    case "dev":
      return openDevSource(spec.path, timeoutMs);
    case "egd":
      return openEgdSource(spec.path, timeoutMs);
    case "file":
      return openFileSource(spec.path);
  }
}

export interface SourceKeeperOptions {
  /** tls_random_bytes: what each read asks for (dev: and egd: give at most 255). */
  readBytes: number;
  /** Timers of the reopen back-off. */
  timers: Timers;
  /** Open and read timeout (default SOURCE_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Reopen back-off: first and largest delay (default 1 s and 300 s). */
  reopenBackoff?: { firstMs: number; maxMs: number };
  /** Assessed min-entropy of a source byte for the health tests (default: prng/health.ts). */
  minEntropy?: number;
  /**
   * Takes each read's outcome, one at a time: the checked bytes, or
   * undefined when there is nothing usable (no source, a failed or rejected
   * read). Called by feed(), and after each successful reopen. The bytes are
   * zeroed when it returns.
   */
  use: (data: Buffer | undefined) => void;
}

/** Counters for tests and verbose logging; never bytes. */
export interface SourceKeeperStats {
  sourceReads: number;
  sourceBytesUsed: number;
  sourceBytesRejected: number;
  sourceFailures: number;
  sourceReopens: number;
}

const DEFAULT_BACKOFF = { firstMs: 1_000, maxMs: 300_000 };

/** SourceKeeper - the external source of one pool, from the first open to close */
export class SourceKeeper {
  readonly #spec: SourceSpec | undefined;
  readonly #opts: SourceKeeperOptions;
  readonly #backoff: { firstMs: number; maxMs: number };
  readonly #health: SourceHealth;
  #source: EntropySource | undefined;
  /** A file source was read (once, as Postfix does): the source is done with. */
  #done = false;
  #reopenTimer: TimerHandle | undefined;
  #reopenDelayMs: number;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #stats: SourceKeeperStats = {
    sourceReads: 0,
    sourceBytesUsed: 0,
    sourceBytesRejected: 0,
    sourceFailures: 0,
    sourceReopens: 0,
  };

  constructor(spec: SourceSpec | undefined, opts: SourceKeeperOptions) {
    this.#spec = spec;
    this.#opts = opts;
    this.#backoff = opts.reopenBackoff ?? DEFAULT_BACKOFF;
    this.#reopenDelayMs = this.#backoff.firstMs;
    this.#health = new SourceHealth(opts.minEntropy !== undefined ? { minEntropy: opts.minEntropy } : {});
  }

  /**
   * open - the first open (tlsmgr_pre_init): two warnings when no source is
   * named; a warning and a scheduled reopen when it cannot be opened
   */
  async open(): Promise<void> {
    const spec = this.#spec;
    if (!spec) {
      msgWarn("no entropy source specified with parameter tls_random_source");
      msgWarn("encryption keys etc. may be predictable");
      return;
    }
    try {
      this.#source = await openSource(spec, this.#openOpts());
      msgDebug(`opened ${sourceLabel(spec.kind)} ${spec.path}`);
    } catch (err) {
      msgWarn(errorText(err));
      this.#scheduleReopen();
    }
  }

  /** feed - tlsmgr_reseed_event's read: one checked read (when there is a source) given to use */
  feed(): Promise<void> {
    return this.#serial(() => this.#readAndUse());
  }

  /** stats - counters (no bytes) */
  stats(): SourceKeeperStats {
    return { ...this.#stats };
  }

  /** close - stop reopening, close the source (a read in progress then fails quietly), wait for the last use */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#reopenTimer !== undefined) this.#opts.timers.clearTimeout(this.#reopenTimer);
    this.#reopenTimer = undefined;
    const source = this.#source;
    this.#source = undefined;
    await source?.close();
    await this.#chain;
  }

  #openOpts(): OpenSourceOptions {
    return { timeoutMs: this.#opts.timeoutMs ?? SOURCE_TIMEOUT_MS };
  }

  /** serial - run source work one at a time */
  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(fn);
    this.#chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** readAndUse - one read handed to use, then zeroed */
  async #readAndUse(): Promise<void> {
    const data = await this.#read();
    try {
      this.#opts.use(data);
    } finally {
      data?.fill(0);
    }
  }

  /** read - one read, health-checked; undefined when nothing usable */
  async #read(): Promise<Buffer | undefined> {
    const spec = this.#spec;
    const source = this.#source;
    if (!spec || this.#done || !source) return undefined;
    let data: Buffer | undefined;
    this.#stats.sourceReads += 1;
    try {
      data = await source.read(Math.max(1, Math.floor(this.#opts.readBytes)));
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
      this.#done = true;
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
    const spec = this.#spec;
    if (this.#closed || !spec || this.#reopenTimer !== undefined) return;
    this.#reopenTimer = this.#opts.timers.setTimeout(() => {
      this.#reopenTimer = undefined;
      this.#serial(() => this.#reopen()).catch((err) =>
        msgWarn(`cannot reopen ${sourceLabel(spec.kind)} ${spec.path}: ${errorText(err)}`),
      );
    }, this.#reopenDelayMs);
  }

  /** reopen - open the source again; on success read it at once and hand the bytes to use */
  async #reopen(): Promise<void> {
    const spec = this.#spec;
    if (this.#closed || !spec || this.#source) return;
    let source: EntropySource;
    try {
      source = await openSource(spec, this.#openOpts());
    } catch (err) {
      this.#reopenDelayMs = Math.min(this.#reopenDelayMs * 2, this.#backoff.maxMs);
      msgWarn(`${errorText(err)} -- retrying in ${Math.ceil(this.#reopenDelayMs / 1000)}s`);
      this.#scheduleReopen();
      return;
    }
    if (this.#closed) {
      await source.close();
      return;
    }
    this.#source = source;
    this.#reopenDelayMs = this.#backoff.firstMs;
    this.#stats.sourceReopens += 1;
    msgInfo(`${spec.kind === "egd" ? "reconnected to" : "reopened"} ${sourceLabel(spec.kind)} ${spec.path}`);
    await this.#readAndUse();
  }
}
