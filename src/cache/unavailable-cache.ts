/**
 * unavailable-cache.ts - a session cache that could not be opened, served
 *                        as unavailable: Postfix's dict_surrogate.
 * Owns: the surrogate backend (every lookup misses, every update is dropped,
 *       every delete fails, no sweep), its rate-limited `warning: TYPE:NAME is
 *       unavailable. CAUSE` while it is used, the one attempt at an open
 *       step that turns a failure into an `error:` line and a cause
 *       (cacheOpenAttempt), and the test for a surrogate (cacheUnavailable).
 * Not here: which caches exist and the checks that stay fatal (duplicate
 *           databases: cache/cache-set.ts); the open itself (cache/scache.ts,
 *           cache/backends/*); the policy reply (server/handlers.ts: an
 *           unavailable cache is cachable, as Postfix's surrogate is).
 * See also: postfix/src/util/dict_surrogate.c, dict_open.c (dict_open3),
 *           postfix/src/master/multi_server.c (dict_allow_surrogate),
 *           man/tlsmgr.8 (DIAGNOSTICS)
 *
 * Postfix's tlsmgr, given a cache it cannot open (an unknown map type, a
 * file that cannot be created), logs `error: CAUSE` once and opens a
 * surrogate that logs `warning: TYPE:NAME is unavailable. CAUSE` on each
 * access; smtpd and smtp carry on without the cache. Its replies (Postfix
 * 3.7, observed): policy status 0, cachable 1, the timeout; lookup and
 * delete status -1; update status 0 (tls_scache_update ignores the failure). Here the warning is
 * logged at the first access and then at most once per
 * UNAVAILABLE_WARN_INTERVAL (with the count of accesses in between), so a
 * busy server does not fill its log. Fixing main.cf and `postfix reload`
 * starts a new tlsmgr, which opens the cache again.
 */

import type { CacheBackend } from "./backend.js";
import { SessionCache } from "./scache.js";
import { ERR_BACKEND_UNAVAILABLE, errorText, TlsmgrError } from "../log/errors.js";
import { FatalError, msgError, msgWarn, withFatalAsError } from "../log/msg.js";
import { systemClock, type Clock } from "../util/clock.js";

/** At most one "is unavailable" warning per cache in this many seconds. */
export const UNAVAILABLE_WARN_INTERVAL = 300;

export interface UnavailableOptions {
  clock?: Clock;
  /** Seconds; default UNAVAILABLE_WARN_INTERVAL. */
  warnInterval?: number;
}

/** UnavailableBackend - the surrogate: fails every access, warns now and then. */
export class UnavailableBackend implements CacheBackend {
  readonly type: string;
  readonly name: string;
  /** Why the cache could not be opened (the error line's text). */
  readonly reason: string;
  /** Nothing to sweep. */
  readonly expiresByItself = true;
  readonly #warning: string;
  readonly #clock: Clock;
  readonly #interval: number;
  #lastWarn: number | undefined;
  #quiet = 0;

  /** where: put before the warning, e.g. "/etc/postfix/main.cf: parameter X: ". */
  constructor(type: string, name: string, reason: string, where = "", opts: UnavailableOptions = {}) {
    this.type = type;
    this.name = name;
    this.reason = reason;
    this.#warning = `${where}${type}:${name} is unavailable. ${reason}`;
    this.#clock = opts.clock ?? systemClock;
    this.#interval = opts.warnInterval ?? UNAVAILABLE_WARN_INTERVAL;
  }

  /** fail - the error of every access; the warning when the interval has passed. */
  #fail(): never {
    const now = this.#clock.now();
    if (this.#lastWarn === undefined || now - this.#lastWarn >= this.#interval) {
      const more = this.#quiet > 0 ? ` (${this.#quiet} more requests since the last warning)` : "";
      msgWarn(`${this.#warning}${more}`);
      this.#lastWarn = now;
      this.#quiet = 0;
    } else {
      this.#quiet++;
    }
    // The code tells scache to add no warning of its own (cache/backend.ts "Outages").
    throw new TlsmgrError(`${this.type}:${this.name} is unavailable`, ERR_BACKEND_UNAVAILABLE);
  }

  lookup(_key: string): Buffer | undefined {
    return this.#fail();
  }

  /** update - dropped, with the warning; it "succeeds" as tls_scache_update does over a surrogate (status 0). */
  update(_key: string, _value: Buffer): void {
    try {
      this.#fail();
    } catch {
      /* Postfix's tls_scache_update ignores dict_put's result */
    }
  }

  delete(_key: string): boolean {
    return this.#fail();
  }

  sequence(): Iterable<[string, Buffer]> {
    return [];
  }

  async close(): Promise<void> {}
}

/** unavailableCache - the session cache of that label over a surrogate backend. */
export function unavailableCache(
  label: string,
  map: { type: string; name: string },
  reason: string,
  timeout: number,
  where = "",
  opts: UnavailableOptions = {},
): SessionCache {
  const backend = new UnavailableBackend(map.type, map.name, reason, where, opts);
  return new SessionCache({ label, backend, timeout, ...(opts.clock ? { clock: opts.clock } : {}) });
}

/** cacheUnavailable - is this cache a surrogate (it could not be opened)? */
export function cacheUnavailable(cache: SessionCache): boolean {
  return cache.backend instanceof UnavailableBackend;
}

/** What cacheOpenAttempt gives back: the step's result, or why it failed. */
export type OpenAttempt<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * cacheOpenAttempt - run one step of a cache's open with dict_allow_surrogate
 * on: a fatal text inside it is logged as `error:`, an unexpected error as
 * `error: WHERE cannot open SPEC: CAUSE`. The reason comes without `where`.
 * allowSurrogate false (daemon_table_open_error_is_fatal = yes): the step
 * runs as it is, and its failure is fatal.
 */
export async function cacheOpenAttempt<T>(
  where: string,
  spec: string,
  step: () => Promise<T>,
  allowSurrogate = true,
): Promise<OpenAttempt<T>> {
  // daemon_table_open_error_is_fatal = yes: fatal, as before
  if (!allowSurrogate) return { ok: true, value: await step() };
  try {
    return { ok: true, value: await withFatalAsError(step) };
  } catch (err) {
    if (err instanceof FatalError) {
      const text = err.message;
      return { ok: false, reason: where && text.startsWith(where) ? text.slice(where.length) : text };
    }
    const reason = `cannot open ${spec}: ${errorText(err)}`;
    msgError(`${where}${reason}`);
    return { ok: false, reason };
  }
}
