/**
 * cache-set.ts - the three TLS session caches (smtpd, smtp, lmtp) built from
 *                main.cf values, by tlsmgr's start-up rules.
 * Owns: timeout sanitising, "enabled" (database non-empty and timeout > 0),
 *       the duplicate-database check, map type checks, data_directory
 *       redirection, create-or-truncate, the start-up info line, which
 *       *_tls_loglevel values turn on cache logging, starting the sweeps.
 * Not here: entries, expiry, the sweep itself (cache/scache.ts); reading
 *           main.cf (config/*); dropping privileges before the open (main.ts).
 * See also: postfix/src/tlsmgr/tlsmgr.c (tlsmgr_pre_init, tlsmgr_post_init),
 *           postfix/src/tls/tls_misc.c (tls_log_mask), cache/data-redirect.ts
 *
 * Postfix opens the caches with the mail_owner's effective uid; the caller
 * must have dropped privileges (or run as mail_owner) before openCacheSet(),
 * or the files will be owned by root.
 */

import "./backends/index.js";
import { backendInfo, splitMapName } from "./backend.js";
import { dataRedirectMap, dataRedirectOwnerUid, type DataRedirectEnv, type OwnerUidLookup } from "./data-redirect.js";
import { scacheOpen, type SessionCache } from "./scache.js";
import { msgFatal, msgInfo } from "../log/msg.js";
import { TLS_LOG_CACHE, tlsLogMask } from "../config/tls-log-mask.js";
import { CACHE_TYPES, type CacheType } from "../protocol/tlsmgr-proto.js";
import type { Clock } from "../util/clock.js";

/** TLS_SESSION_LIFEMIN: a positive timeout below this becomes this. */
export const TLS_SESSION_LIFEMIN = 120;

export interface CacheSetConfig {
  /** main.cf, named in fatal lines ("" when there is none). */
  main_cf_path?: string;
  data_directory: string;
  mail_owner: string;
  /** For a database without "type:" (Postfix's default_database_type); default "hash". */
  default_database_type?: string;
  smtpd_tls_session_cache_database: string;
  smtpd_tls_session_cache_timeout: number;
  smtpd_tls_loglevel: number | string;
  smtp_tls_session_cache_database: string;
  smtp_tls_session_cache_timeout: number;
  smtp_tls_loglevel: number | string;
  lmtp_tls_session_cache_database: string;
  lmtp_tls_session_cache_timeout: number;
  lmtp_tls_loglevel: number | string;
}

export interface CacheSetOptions {
  clock?: Clock;
  /** The uid of mail_owner (default: /etc/passwd; this process's euid when there is no such account). */
  ownerUid?: OwnerUidLookup;
  /** Each entry a sweep meets, e.g. for the PRNG pool. */
  onSweepEntry?: (type: CacheType, id: string, value: Buffer) => void;
}

export interface CacheSet {
  /** The cache of that type; undefined when it is not enabled. */
  get(type: CacheType): SessionCache | undefined;
  /** The sanitised timeout (as the policy request reports it, enabled or not); 0 when <= 0. */
  timeout(type: CacheType): number;
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
export function tlsLogCache(param: string, value: number | string): boolean {
  return (tlsLogMask(param, value) & TLS_LOG_CACHE) !== 0;
}

interface CacheParams {
  type: CacheType;
  dbParam: string;
  db: string;
  timeout: number;
  logParam: string;
  logLevel: number | string;
}

function paramsOf(cfg: CacheSetConfig, type: CacheType): CacheParams {
  const c = cfg as unknown as Record<string, unknown>;
  return {
    type,
    dbParam: `${type}_tls_session_cache_database`,
    db: String(c[`${type}_tls_session_cache_database`] ?? ""),
    timeout: Number(c[`${type}_tls_session_cache_timeout`] ?? 0),
    logParam: `${type}_tls_loglevel`,
    logLevel: (c[`${type}_tls_loglevel`] as number | string | undefined) ?? 0,
  };
}

/**
 * openCacheSet - tlsmgr_pre_init()'s cache part: sanitise each timeout, and
 * open (create or truncate) each enabled cache, in the order smtpd, smtp,
 * lmtp. Fatal on a database named twice, an unknown map type, or a failed
 * open (the caches already opened are closed first).
 */
export async function openCacheSet(cfg: CacheSetConfig, opts: CacheSetOptions = {}): Promise<CacheSet> {
  const caches = new Map<CacheType, SessionCache>();
  const timeouts = new Map<CacheType, number>();
  const dupFilter = new Map<string, CacheType>();
  const fileFilter = new Map<string, CacheType>();
  let env: DataRedirectEnv | undefined;
  const defaultType = cfg.default_database_type || "hash";
  // Fatal lines name main.cf as the configuration parser's do.
  const where = cfg.main_cf_path ? `${cfg.main_cf_path}: ` : "";

  try {
    for (const type of CACHE_TYPES) {
      const p = paramsOf(cfg, type);
      const timeout = scacheTimeoutSanitize(p.timeout);
      timeouts.set(type, timeout);
      if (timeout <= 0 || p.db === "") continue;

      const dup = dupFilter.get(p.db);
      if (dup)
        msgFatal(
          `${where}parameters ${dup}_tls_session_cache_database and ${p.dbParam}: ` +
            `do not use the same TLS cache file ${p.db} for ${dup} and ${type}`,
        );
      dupFilter.set(p.db, type);

      const map = splitMapName(p.db) ?? { type: defaultType, name: p.db };
      if (map.name === "" || p.db.startsWith(":"))
        msgFatal(`${where}parameter ${p.dbParam}: open dictionary: expecting "type:name" form instead of "${p.db}"`);
      const info = backendInfo(map.type);
      if (!info) msgFatal(`${where}parameter ${p.dbParam}: unsupported dictionary type: ${map.type}`);

      env ??= {
        data_directory: cfg.data_directory,
        mail_owner: cfg.mail_owner,
        ownerUid: await dataRedirectOwnerUid(cfg.mail_owner, opts.ownerUid),
      };
      const spec = await dataRedirectMap(p.db, env, defaultType);
      const name = spec.slice(map.type.length + 1);
      // Stricter than Postfix: btree:/x/a and lmdb:/x/a (or two paths redirected
      // to one data_directory file) would share, and truncate, one LMDB file.
      const file = info.fileFor ? info.fileFor(name) : spec;
      const fileDup = fileFilter.get(file);
      if (fileDup)
        msgFatal(
          `${where}parameters ${fileDup}_tls_session_cache_database and ${p.dbParam}: ` +
            `do not use the same TLS cache file ${file} for ${fileDup} and ${type}`,
        );
      fileFilter.set(file, type);
      if (info.fileFor && info.types[0] !== map.type)
        msgInfo(`${spec} is served by ${info.kind ?? info.types[0]} file ${file}`);

      const hook = opts.onSweepEntry;
      const cache = await scacheOpen(spec, type, tlsLogCache(p.logParam, p.logLevel), timeout, {
        ...(opts.clock ? { clock: opts.clock } : {}),
        ...(hook ? { onSweepEntry: (id: string, value: Buffer) => hook(type, id, value) } : {}),
        context: `${where}parameter ${p.dbParam}: `,
      });
      caches.set(type, cache);
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
