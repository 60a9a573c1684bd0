/**
 * cache-set.ts - the three TLS session caches (smtpd, smtp, lmtp) built from
 *                main.cf values, by tlsmgr's start-up rules.
 * Owns: timeout sanitising, "enabled" (database non-empty and timeout > 0),
 *       the duplicate-database check (a file serves one cache; a shared
 *       store such as redis: may serve them all), data_directory redirection,
 *       create-or-truncate, a cache that cannot be opened served
 *       unavailable (cache/unavailable-cache.ts), the start-up info line,
 *       which *_tls_loglevel levels turn on cache logging, starting the
 *       sweeps, handing each cache its entry and byte limits, and the cache
 *       set's view for the request handlers (SessionCaches).
 * Not here: entries, expiry, the sweep itself, the "type:name" check
 *           (cache/scache.ts); reading main.cf and the loglevel words
 *           (config/params.ts); the redirect rule (config/data-redirect.ts);
 *           the effective ids of the open (main.ts pre-init, master/eugid.ts).
 * See also: postfix/src/tlsmgr/tlsmgr.c (tlsmgr_pre_init, tlsmgr_post_init),
 *           postfix/src/tls/tls_misc.c (tls_log_mask)
 *
 * Postfix opens the caches with the mail_owner's effective uid; the caller
 * must run openCacheSet() with those ids (or as mail_owner), or the files
 * will be owned by root.
 */

import "./backends/index.js";
import { dataRedirectMap, type DataRedirectEnv } from "../config/data-redirect.js";
import type { ScacheConfig } from "../config/params.js";
import { scacheMapCheck, scacheOpenMap, type SessionCache, type SessionCacheOps } from "./scache.js";
import { backendInfo, splitMapName } from "./backend.js";
import { cacheOpenAttempt, unavailableCache } from "./unavailable-cache.js";
import { msgFatal, msgInfo } from "../log/msg.js";
import { TLS_LOG_CACHE, tlsLogMask } from "../config/tls-log-mask.js";
import { CACHE_TYPES, type CacheType } from "../protocol/tlsmgr-proto.js";
import type { Clock } from "../util/clock.js";
import type { CacheLimitParams, CacheLimits } from "./cache-bound.js";

/** TLS_SESSION_LIFEMIN: a positive timeout below this becomes this. */
export const TLS_SESSION_LIFEMIN = 120;

export interface CacheSetConfig {
  /** main.cf, named in fatal lines ("" when there is none). */
  main_cf_path?: string;
  data_directory: string;
  mail_owner: string;
  /** For a database without "type:" (Postfix's default_database_type); default "hash". */
  default_database_type?: string;
  /** Each cache's parameters (config/params.ts). */
  caches: Readonly<Record<CacheType, ScacheConfig>>;
}

export interface CacheSetOptions {
  clock?: Clock;
  /** The uid that counts as mail_owner's for the redirect (config/data-redirect.ts); default this process's euid. */
  ownerUid?: number;
  /** Each entry a sweep meets, e.g. for the PRNG pool. */
  onSweepEntry?: (type: CacheType, id: string, value: Buffer) => void;
  /** Each cache's entry and byte limits and their names (config/params.ts scacheLimitsOf; cache/cache-bound.ts). */
  limits?: (type: CacheType) => { limits: CacheLimits; params: CacheLimitParams };
  /** false (daemon_table_open_error_is_fatal = yes): a cache that cannot be opened is fatal. Default true. */
  surrogates?: boolean;
}

/** The caches as the request handlers see them (server/handlers.ts). */
export interface SessionCaches {
  /** The cache of that type; undefined when it is not enabled. */
  get(type: CacheType): SessionCacheOps | undefined;
  /** The sanitised timeout (as the policy request reports it, enabled or not); 0 when <= 0. */
  timeout(type: CacheType): number;
}

export interface CacheSet extends SessionCaches {
  get(type: CacheType): SessionCache | undefined;
  /** Start each enabled cache's sweep timer (a sweep now, then every timeout seconds). */
  startSweeps(): void;
  close(): Promise<void>;
}

/** scacheTimeoutSanitize - > 0 and < 120 becomes 120; <= 0 (or not a number) becomes 0. */
export function scacheTimeoutSanitize(timeout: number): number {
  if (!(timeout > 0)) return 0;
  return timeout < TLS_SESSION_LIFEMIN ? TLS_SESSION_LIFEMIN : timeout;
}

/** tlsLogCache - does this *_tls_loglevel value turn on cache logging (tls_log_mask & TLS_LOG_CACHE)? */
export function tlsLogCache(param: string, value: string): boolean {
  return (tlsLogMask(param, value) & TLS_LOG_CACHE) !== 0;
}

/** surrogateName - type and name of a database that did not pass scacheMapCheck, for its warnings. */
function surrogateName(database: string, defaultType: string): { type: string; name: string } {
  return splitMapName(database) ?? { type: defaultType, name: database.replace(/^:/, "") };
}

/**
 * openCacheSet - tlsmgr_pre_init()'s cache part: sanitise each timeout, and
 * open (create or truncate) each enabled cache, in the order smtpd, smtp,
 * lmtp. Fatal on a file-based database named twice, or two names of one
 * file (the caches already opened are closed first); a cache with a bad
 * name, an unknown map type or a failed open is served unavailable
 * (cache/unavailable-cache.ts), as Postfix's is.
 */
export async function openCacheSet(cfg: CacheSetConfig, opts: CacheSetOptions = {}): Promise<CacheSet> {
  const caches = new Map<CacheType, SessionCache>();
  const timeouts = new Map<CacheType, number>();
  const dupFilter = new Map<string, CacheType>();
  const fileFilter = new Map<string, CacheType>();
  const defaultType = cfg.default_database_type || "hash";
  const env: DataRedirectEnv = {
    data_directory: cfg.data_directory,
    mail_owner: cfg.mail_owner,
    ownerUid: opts.ownerUid ?? process.geteuid?.() ?? 0,
  };
  // Fatal lines name main.cf as the configuration parser's do.
  const where = cfg.main_cf_path ? `${cfg.main_cf_path}: ` : "";
  const clockOpt = opts.clock ? { clock: opts.clock } : {};
  const surrogates = opts.surrogates ?? true;

  try {
    for (const type of CACHE_TYPES) {
      const c = cfg.caches[type];
      const timeout = scacheTimeoutSanitize(c.timeout);
      timeouts.set(type, timeout);
      if (timeout <= 0 || c.database === "") continue;
      const context = `${where}parameter ${c.param.database}: `;

      // A shared store that keeps each cache's keys apart (redis:) may serve
      // every cache from one table; a file may serve only one cache.
      const shared = backendInfo(splitMapName(c.database)?.type ?? defaultType)?.sharedByCaches === true;
      if (!shared) {
        const dup = dupFilter.get(c.database);
        if (dup)
          msgFatal(
            `${where}parameters ${cfg.caches[dup].param.database} and ${c.param.database}: ` +
              `do not use the same TLS cache file ${c.database} for ${dup} and ${type}`,
          );
        dupFilter.set(c.database, type);
      }

      // A cache that cannot be opened is served unavailable, as Postfix's
      // dict_surrogate: an error line now, warnings on use (unavailable-cache.ts).
      const checked = await cacheOpenAttempt(context, c.database, async () => {
        const map = scacheMapCheck(c.database, context, defaultType);
        return { map, spec: await dataRedirectMap(c.database, env, defaultType) };
      }, surrogates);
      if (!checked.ok) {
        caches.set(type, unavailableCache(type, surrogateName(c.database, defaultType), checked.reason, timeout, context, clockOpt));
        continue;
      }
      const { map, spec } = checked.value;
      const name = spec.slice(map.type.length + 1);
      // Stricter than Postfix: btree:/x/a and lmdb:/x/a (or two paths redirected
      // to one data_directory file) would share, and truncate, one LMDB file.
      const file = map.info.fileFor ? map.info.fileFor(name) : spec;
      const fileDup = map.info.sharedByCaches ? undefined : fileFilter.get(file);
      if (fileDup)
        msgFatal(
          `${where}parameters ${cfg.caches[fileDup].param.database} and ${c.param.database}: ` +
            `do not use the same TLS cache file ${file} for ${fileDup} and ${type}`,
        );
      fileFilter.set(file, type);
      if (map.info.fileFor && map.info.types[0] !== map.type)
        msgInfo(`${spec} is served by ${map.info.kind ?? map.info.types[0]} file ${file}`);

      const hook = opts.onSweepEntry;
      const opened = await cacheOpenAttempt(context, spec, () =>
        scacheOpenMap({ ...map, name }, type, tlsLogCache(c.param.loglevel, c.loglevel), timeout, {
          ...clockOpt,
          ...(hook ? { onSweepEntry: (id: string, value: Buffer) => hook(type, id, value) } : {}),
          ...(opts.limits ? { limits: opts.limits(type).limits, limitParams: opts.limits(type).params } : {}),
          context,
        }),
        surrogates,
      );
      caches.set(type, opened.ok ? opened.value : unavailableCache(type, { type: map.type, name }, opened.reason, timeout, context, clockOpt));
    }
  } catch (err) {
    await Promise.allSettled([...caches.values()].map((c) => c.close()));
    throw err;
  }

  return {
    get: (type) => caches.get(type),
    timeout: (type) => timeouts.get(type) ?? 0,
    startSweeps() {
      for (const cache of caches.values()) cache.startSweepTimer();
    },
    async close() {
      await Promise.all([...caches.values()].map((c) => c.close()));
    },
  };
}
