/**
 * service-alias.ts - tlsmgr_smtpd_cache_shared_services: smtpd services
 *                    whose sessions may resume on one another, so that MX
 *                    hosts with differently named smtpd services share one
 *                    smtpd session cache.
 * Owns: reading the list, rewriting the service part of smtpd cache ids,
 *       and the cache view that applies it to lookup, update and delete.
 * Not here: the caches (cache/scache.ts, cache/cache-set.ts).
 * See also: postfix/src/tls/tls_server.c (GEN_CACHE_ID), man/tlsmgr.8, README (farm)
 *
 * smtpd's cache id is HEX(session id) "&s=" SERVICE "&l=" OPENSSL_VERSION,
 * SERVICE the master.cf service name of the smtpd ("smtp", or
 * "192.0.2.1:smtp" for a service bound to one address): a session is only
 * resumed by the service that made it. With this list set, an id whose
 * SERVICE is in the list is stored and looked up as if SERVICE were the
 * list's first name; ids of other services are left alone, and so is the
 * OpenSSL version part (a session saved by another OpenSSL release may not
 * load).
 *
 * Why Postfix keeps services apart, and when lifting that is safe: each
 * master.cf service can have its own TLS settings (-o smtpd_tls_cert_file,
 * smtpd_tls_CAfile, smtpd_tls_ask_ccert, smtpd_tls_req_ccert,
 * smtpd_tls_protocols, ciphers, ...), and a resumed session keeps what its
 * first handshake established: the client certificate and its verification
 * result, the protocol, the cipher. A session of a service that checks
 * client certificates against other CAs, or does not ask for them, resumed
 * on one that relies on them, would carry the first service's verdict. So
 * list only services with the same TLS settings: typically the same smtpd
 * service on every host of a farm, named differently only because each
 * listens on its own address. The service part is Postfix's only guard:
 * OpenSSL's session id context is "Postfix/TLS" for every service, so for
 * the services listed nothing else tells their sessions apart.
 */

import type { SessionCaches } from "./cache-set.js";
import type { SessionCacheOps } from "./scache.js";
import type { MaybePromise } from "./backend.js";

const SERVICE_AT = "&s=";
const VERSION_AT = "&l=";

/** serviceAliasesParse - the list (commas or white space) as service -> the first name; undefined when empty. */
export function serviceAliasesParse(list: string): ReadonlyMap<string, string> | undefined {
  const names = list.split(/[\s,]+/).filter((n) => n !== "");
  if (names.length === 0) return undefined;
  const first = names[0]!;
  return new Map(names.map((n) => [n, first]));
}

/** smtpdCacheIdAlias - the id with a listed service replaced by the first name; other ids as they are. */
export function smtpdCacheIdAlias(id: string, aliases: ReadonlyMap<string, string>): string {
  const s = id.indexOf(SERVICE_AT);
  if (s < 0) return id;
  const l = id.lastIndexOf(VERSION_AT);
  if (l < s + SERVICE_AT.length) return id;
  const to = aliases.get(id.slice(s + SERVICE_AT.length, l));
  return to === undefined ? id : id.slice(0, s + SERVICE_AT.length) + to + id.slice(l);
}

/** AliasedCache - a cache's operations with ids rewritten first. */
class AliasedCache implements SessionCacheOps {
  readonly #inner: SessionCacheOps;
  readonly #aliases: ReadonlyMap<string, string>;

  constructor(inner: SessionCacheOps, aliases: ReadonlyMap<string, string>) {
    this.#inner = inner;
    this.#aliases = aliases;
  }

  lookup(id: string): MaybePromise<Buffer | undefined> {
    return this.#inner.lookup(smtpdCacheIdAlias(id, this.#aliases));
  }

  update(id: string, session: Buffer): MaybePromise<boolean> {
    return this.#inner.update(smtpdCacheIdAlias(id, this.#aliases), session);
  }

  delete(id: string): MaybePromise<boolean> {
    return this.#inner.delete(smtpdCacheIdAlias(id, this.#aliases));
  }
}

/**
 * smtpdServiceAliases - the caches as the request handlers see them, with
 * the smtpd cache's ids rewritten by tlsmgr_smtpd_cache_shared_services;
 * the caches themselves when the list is empty or the smtpd cache is off.
 */
export function smtpdServiceAliases(caches: SessionCaches, list: string): SessionCaches {
  const aliases = serviceAliasesParse(list);
  const smtpd = caches.get("smtpd");
  if (aliases === undefined || smtpd === undefined) return caches;
  const aliased = new AliasedCache(smtpd, aliases);
  return {
    get: (type) => (type === "smtpd" ? aliased : caches.get(type)),
    timeout: (type) => caches.timeout(type),
  };
}
