/**
 * redis.ts - the "redis:" session cache backend (Redis or Valkey, standalone
 *            or Cluster), shared by every tlsmgr that names the same servers
 *            and key_prefix: the cache of a whole MX farm.
 * Owns: the key layout, expiry by Redis TTL, the walk (SCAN on every
 *       master), lookups that miss instead of waiting when Redis cannot
 *       answer in time, and the registry entry for map type "redis"
 *       (registered by cache/backends/index.ts).
 * Not here: the connection, deadline and outage logging
 *           (redis/link.ts); the table file
 *           (redis/table.ts); timestamps (cache/scache.ts).
 * See also: cache/backend.ts, memcache_table(5), test/conformance/redis.test.ts
 *
 * Map name: the table file, e.g. redis:/etc/postfix/tls-redis.cf. One table
 * may serve the smtpd, smtp and lmtp caches and tlsmgr_ticket_key_database
 * at once (one connection, cache-set.ts allows it: sharedByCaches), or each
 * may have a table of its own, with its own key_prefix or not.
 *
 * Keys: key_prefix + cache type + ":session:" + the cache id (UTF-8), e.g.
 * "tlsmgr:smtpd:session:<id>" and "tlsmgr:smtp:session:<id>"; the cache
 * type is BackendOpenOptions.cache (scache.ts passes it), and an opener
 * that gives none gets key_prefix + "session:" + id. Ticket keys live
 * beside them under key_prefix + "tktkey:" (tickets/redis-keys.ts).
 * Values: the bytes given (scache's timestamp and the session), sealed
 * (cache/session-seal.ts) under key_wrap_file, which a redis: cache
 * therefore requires: whoever reads Redis or its traffic learns no
 * session, and a value that does not open (planted, altered, copied from
 * another id or cache, sealed under another key_wrap_file) is a miss and is
 * deleted, with a warning at most once per SEAL_WARN_INTERVAL_MS. The seal
 * binds the cache type and key_prefix as well as the id, so one table
 * serving several caches keeps them apart. Every update sets a TTL of
 * the cache timeout plus one second (BackendOpenOptions.timeout, else
 * REDIS_DEFAULT_TTL), so Redis drops entries by itself: the backend says so
 * with expiresByItself, and no sweep need walk a shared store.
 *
 * Truncate is ignored: the store is shared by other hosts and survives this
 * process on purpose; stale entries are expired by their TTL and by scache's
 * timestamp check.
 *
 * The walk visits each master with SCAN (which may repeat keys: repeats
 * are dropped) and fetches values in pipelined batches; an entry this
 * process deletes or updates after its batch was fetched is read again
 * before it is handed out.
 */

import type { Redis } from "ioredis";
import type { BackendInfo, BackendOpenOptions, CacheBackend } from "../backend.js";
import { redisLinkOpen, type RedisLink } from "../../redis/link.js";
import { redisTableRead } from "../../redis/table.js";
import { sessionSealOpen, type SessionSeal } from "../session-seal.js";
import { msgFatal, msgWarn, printable } from "../../log/msg.js";

export const REDIS_MAP_TYPES = ["redis"];
/** Keys per SCAN call and per value batch. */
export const REDIS_SCAN_COUNT = 256;
/** TTL when the opener does not give the cache timeout (Postfix's default session timeout). */
export const REDIS_DEFAULT_TTL = 3600;
const SESSION_INFIX = "session:";
/** At most one warning about values that do not open per this many milliseconds (each with the count since the last). */
export const SEAL_WARN_INTERVAL_MS = 60_000;
/** Delete KEYS[1] only while it holds ARGV[1]: one atomic step. */
const DEL_IF_SAME = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/** redisSessionPrefix - what comes before a cache id in its key (see the header). */
export function redisSessionPrefix(keyPrefix: string, cache?: string): string {
  return keyPrefix + (cache !== undefined && cache !== "" ? `${cache}:` : "") + SESSION_INFIX;
}

/** globEscape - text matched literally by a Redis MATCH pattern. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

/** RedisBackend - cache entries as Redis strings with a TTL. */
export class RedisBackend implements CacheBackend {
  readonly type: string;
  readonly name: string;
  /** Entries expire by Redis TTL: scache runs no sweep. */
  readonly expiresByItself = true;
  readonly #link: RedisLink;
  readonly #prefix: string;
  readonly #prefixLen: number;
  readonly #ttl: number;
  /** Per running walk: ids this process deleted or updated since. */
  readonly #walks = new Set<Set<string>>();
  /** Writes not yet answered: close() waits for them (each is bounded by the timeout). */
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #seal: SessionSeal;
  /** Values that did not open since the last warning, and when that was. */
  #unopened = 0;
  #unopenedWarned = -Infinity;

  constructor(link: RedisLink, type: string, name: string, ttl: number, seal: SessionSeal, cache?: string) {
    this.#link = link;
    this.type = type;
    this.name = name;
    this.#prefix = redisSessionPrefix(link.table.keyPrefix, cache);
    this.#prefixLen = Buffer.byteLength(this.#prefix);
    this.#ttl = ttl;
    this.#seal = seal;
  }

  /** link - the shared connection (tests, statistics). */
  get link(): RedisLink {
    return this.#link;
  }

  #touch(key: string): void {
    for (const w of this.#walks) w.add(key);
  }

  async lookup(key: string): Promise<Buffer | undefined> {
    const v = await this.#link.run((c) => c.getBuffer(this.#prefix + key));
    return v === null ? undefined : this.#open(key, v);
  }

  /** #open - the value sealed for key, or undefined (then deleted, see the header). */
  #open(key: string, sealed: Buffer): Buffer | undefined {
    const value = this.#seal.open(key, sealed);
    if (value !== undefined) return value;
    this.#unopened++;
    const now = performance.now();
    if (now - this.#unopenedWarned >= SEAL_WARN_INTERVAL_MS) {
      const more = this.#unopened > 1 ? ` (and ${this.#unopened - 1} more since the last warning)` : "";
      msgWarn(
        `${this.#link.label}: session cache entry ${printable(key, 100)} does not open: planted, altered,` +
          ` copied from another entry, or sealed with another key_wrap_file; deleted${more}`,
      );
      this.#unopened = 0;
      this.#unopenedWarned = now;
    }
    // Only if it is still that value: a host may have stored a good one meanwhile.
    this.#touch(key);
    this.#track(this.#link.run((c) => c.eval(DEL_IF_SAME, 1, this.#prefix + key, sealed))).catch(() => undefined);
    return undefined;
  }

  async update(key: string, value: Buffer): Promise<void> {
    this.#touch(key);
    const sealed = this.#seal.seal(key, value);
    await this.#track(this.#link.run((c) => c.set(this.#prefix + key, sealed, "EX", this.#ttl)));
  }

  async delete(key: string): Promise<boolean> {
    this.#touch(key);
    return (await this.#track(this.#link.run((c) => c.del(this.#prefix + key)))) > 0;
  }

  /** #track - remember a write until it settles, for close(). */
  #track<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p);
    const forget = () => this.#inflight.delete(p);
    p.then(forget, forget);
    return p;
  }

  /** sequence - SCAN every master, batch by batch (see the header). */
  async *sequence(): AsyncGenerator<[string, Buffer]> {
    const touched = new Set<string>();
    const seen = new Set<string>();
    const pattern = globEscape(this.#prefix) + "*";
    this.#walks.add(touched);
    try {
      for (const node of this.#link.scanTargets()) {
        let cursor = "0";
        do {
          const [next, keys] = await this.#link.run((): Promise<[Buffer, Buffer[]]> =>
            node.scanBuffer(cursor, "MATCH", pattern, "COUNT", REDIS_SCAN_COUNT),
          );
          cursor = next.toString("latin1");
          if (keys.length === 0) continue;
          touched.clear();
          const values = await this.#fetch(node, keys);
          for (let i = 0; i < keys.length; i++) {
            const id = keys[i]!.subarray(this.#prefixLen).toString("utf8");
            if (seen.has(id)) continue;
            let value = values[i];
            if (touched.has(id)) value = await this.lookup(id);
            else if (value !== undefined) value = this.#open(id, value);
            if (value === undefined) continue;
            seen.add(id);
            yield [id, value];
          }
        } while (cursor !== "0");
      }
    } finally {
      this.#walks.delete(touched);
    }
  }

  /** #fetch - the values of keys on one node, pipelined; undefined where gone. */
  async #fetch(node: Redis, keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    const replies = await this.#link.run(() => {
      const p = node.pipeline();
      for (const k of keys) p.getBuffer(k);
      return p.exec();
    });
    return (replies ?? []).map(([err, v]) => (err || v === null ? undefined : (v as Buffer)));
  }

  async close(): Promise<void> {
    this.#walks.clear();
    await Promise.allSettled([...this.#inflight]);
    await this.#link.release();
  }
}

/** redisOpen - the backend for table file `name`; truncate is ignored (see the header). */
export async function redisOpen(name: string, opts: BackendOpenOptions): Promise<RedisBackend> {
  const table = redisTableRead(name);
  if (table.keyWrapFile === undefined)
    msgFatal(
      `${name}: a redis: session cache needs key_wrap_file: entries are sealed with it, so that whoever` +
        " reaches Redis can neither read nor plant sessions; make the file once with" +
        ' "tlsmgr-postfix keygen /etc/postfix/tlsmgr-key-wrap", copy it (mode 0600) to every host,' +
        " and name it in the table (key_wrap_file = /etc/postfix/tlsmgr-key-wrap)",
    );
  const seal = sessionSealOpen(table.keyWrapFile, name, opts.cache ?? "session", table.keyPrefix);
  const link = await redisLinkOpen(name, { table });
  const timeout = opts.timeout !== undefined && opts.timeout > 0 ? opts.timeout : REDIS_DEFAULT_TTL;
  return new RedisBackend(link, opts.type ?? "redis", name, Math.ceil(timeout) + 1, seal, opts.cache);
}


export const redisBackendInfo: BackendInfo = {
  types: REDIS_MAP_TYPES,
  open: redisOpen,
  kind: "Redis",
  sharedByCaches: true,
};
