/**
 * workload.ts - what the load generator sends: cache ids shaped like
 *               Postfix's, session values of realistic size, ticket key names.
 * Owns: the key space of a run (pre-filled ids, half smtpd and half smtp),
 *       the pool of session values (1-4 KiB random bytes, as base64), and
 *       choosing ids for lookups (mostly pre-filled: hits) and updates
 *       (mostly overwriting pre-filled ids, so the cache keeps its size).
 * Not here: encoding (bench/wire.ts), sending (bench/load.ts).
 * See also: postfix/src/tls/tls_server.c (GEN_CACHE_ID),
 *           postfix/src/smtp/smtp_key.c, bench/test/workload.test.ts
 */

import { randomBytes } from "node:crypto";
import { Rng } from "./mix.js";
import { SESSION_TAG_MARK } from "./wire.js";

export type BenchCacheType = "smtpd" | "smtp";

/** OpenSSL_version_num() of OpenSSL 3.0.x as smtpd appends it ("&l=..."). */
const OPENSSL_VERSION_NUM = 805306608;

/** hex64 - 64 upper-case hex digits (Postfix's hex_encode of 32 bytes) */
export function hex64(rng: Rng): string {
  let s = "";
  for (let i = 0; i < 8; i++) s += rng.u32().toString(16).padStart(8, "0");
  return s.toUpperCase();
}

/** smtpdCacheId - smtpd's id: hex session id, "&s=smtpd&l=" OpenSSL version */
export function smtpdCacheId(hexId: string): string {
  return `${hexId}&s=smtpd&l=${OPENSSL_VERSION_NUM}`;
}

/** smtpCacheId - smtp's id: smtp&[nexthop]:25&host&addr&&digest of the TLS policy */
export function smtpCacheId(n: number, hexDigest: string): string {
  const dom = `example${n % 5000}.net`;
  const a = (n >>> 8) & 0xff;
  const b = n & 0xff;
  return `smtp&[${dom}]:25&mx${n % 3}.${dom}&198.${18 + (n >>> 16) % 2}.${a}.${b}&&${hexDigest}`;
}

/** The ids of a run: index i is of type types[i] and id ids[i]. */
export interface Keyspace {
  types: BenchCacheType[];
  ids: string[];
}

/** makeKeyspace - n ids, alternating smtpd and smtp, from a seed */
export function makeKeyspace(n: number, seed: number): Keyspace {
  const rng = new Rng(seed);
  const types: BenchCacheType[] = new Array(n);
  const ids: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      types[i] = "smtpd";
      ids[i] = smtpdCacheId(hex64(rng));
    } else {
      types[i] = "smtp";
      ids[i] = smtpCacheId(i >>> 1, hex64(rng));
    }
  }
  return { types, ids };
}

/** freshId - an id not in any keyspace of the run (a new session or an absent one) */
export function freshId(type: BenchCacheType, rng: Rng): string {
  return type === "smtpd" ? smtpdCacheId(hex64(rng)) : smtpCacheId(rng.u32(), hex64(rng));
}

export interface SessionPool {
  /** base64 text of each value */
  b64: string[];
  /** raw length of each value */
  sizes: number[];
}

/**
 * makeSessionPool - count random values of lengths uniform in [minBytes,
 * maxBytes]; with `tag` (a farm host's index, 0..255) each value begins with
 * SESSION_TAG_MARK and the tag, so a lookup hit tells which host wrote it
 * (wire.ts replySessionTag).
 */
export function makeSessionPool(count: number, minBytes: number, maxBytes: number, seed: number, tag?: number): SessionPool {
  if (!(minBytes >= 0 && maxBytes >= minBytes)) throw new Error(`bad session size range ${minBytes}-${maxBytes}`);
  if (tag !== undefined && (minBytes < 2 || !(tag >= 0 && tag <= 255))) throw new Error(`a tagged session pool needs sessions of 2 bytes or more and a tag 0..255`);
  const rng = new Rng(seed ^ 0x5e55);
  const b64: string[] = [];
  const sizes: number[] = [];
  for (let i = 0; i < count; i++) {
    const len = minBytes + rng.int(maxBytes - minBytes + 1);
    sizes.push(len);
    const v = randomBytes(len);
    if (tag !== undefined) {
      v[0] = SESSION_TAG_MARK;
      v[1] = tag;
    }
    b64.push(v.toString("base64"));
  }
  return { b64, sizes };
}

export interface TargetChoice {
  /** index into the keyspace, or -1 for an id outside it */
  index: number;
  type: BenchCacheType;
  id: string;
}

/**
 * chooseId - the id a lookup or update uses: with probability `inside` one
 * of the keyspace ids in [lo, hi) (uniform), else a fresh id of a random type.
 */
export function chooseId(ks: Keyspace, lo: number, hi: number, inside: number, rng: Rng): TargetChoice {
  if (hi > lo && rng.next() < inside) {
    const index = lo + rng.int(hi - lo);
    return { index, type: ks.types[index]!, id: ks.ids[index]! };
  }
  const type: BenchCacheType = rng.next() < 0.5 ? "smtpd" : "smtp";
  return { index: -1, type, id: freshId(type, rng) };
}
