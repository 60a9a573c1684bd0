/**
 * ticket-keys.ts - RFC 5077 session-ticket keys for smtpd, kept in memory
 *                  as Postfix's tlsmgr keeps them.
 * Owns: the key record (TLS_TICKET_KEY: name, AES key, HMAC key, tout), its
 *       wire form (88 bytes on 64-bit Linux, sized by tickets/key-record-layout.ts),
 *       and the lifetime rules: with T the smtpd session
 *       cache timeout, a new key encrypts until tout = now + T/2 - 1 and
 *       decrypts until tout + T/2; only the current and previous key are kept.
 *       Also: what every store counts (made, rotated, looked up by name)
 *       and shows of its current key (name and deadline, never the key).
 * Not here: the shared and persistent key stores, which implement
 *           TicketKeySource too (tickets/redis-keys.ts, tickets/file-keys.ts);
 *           choosing one (tickets/key-source.ts); the counters (stats/counters.ts).
 * See also: postfix/src/tlsmgr/tlsmgr.c (tlsmgr_key), src/tls/tls_scache.c
 *           (tls_scache_key, tls_scache_key_rotate)
 */

import { randomBytes } from "node:crypto";
import { TLS_TICKET_KEYLEN, TLS_TICKET_MACLEN, TLS_TICKET_NAMELEN } from "../protocol/tlsmgr-proto.js";
import { ticketKeyLayout, type TicketKeyLayout } from "./key-record-layout.js";
import type { Clock } from "../util/clock.js";
import { systemClock } from "../util/clock.js";
import { TicketKeyCounters } from "../stats/counters.js";
import type { TicketKeyInUse } from "../stats/stats-view.js";

export interface TicketKey {
  name: Buffer; // 16 bytes
  bits: Buffer; // 32 bytes, AES-256 key
  hmac: Buffer; // 32 bytes, HMAC-SHA256 key
  /** Encryption deadline, seconds since the epoch. */
  tout: number;
}

/** Where tktkey requests are answered from. */
export interface TicketKeySource {
  /**
   * keyname undefined: the current encryption key, made when none is valid;
   * keyname of 16 bytes: that key if still valid for decryption.
   * sessionTimeout is T, the smtpd session cache timeout in seconds (> 0).
   * The key's buffers stay the store's: use them at once (a store zeroes
   * the bytes of keys it drops, ticketKeyZero).
   */
  tktkey(keyname: Buffer | undefined, sessionTimeout: number): TicketKey | undefined | Promise<TicketKey | undefined>;
  close(): Promise<void>;
  /** Keys made, rotations, look-ups by name (stats/counters.ts). */
  readonly counters?: TicketKeyCounters;
  /** The current key last handed out, while valid for encryption (statistics: never the key itself). */
  inUse?(): TicketKeyInUse | undefined;
}

/** keyInUse - the statistics' view of a current key, or undefined once it no longer encrypts. */
export function keyInUse(key: TicketKey | undefined, now: number, shared: boolean): TicketKeyInUse | undefined {
  return key !== undefined && key.tout > now ? { name: key.name.toString("hex"), expires: key.tout, shared } : undefined;
}

/** countKeyLookup - count a look-up by name in keys: found, stale (the name is there, expired) or not found. */
export function countKeyLookup(c: TicketKeyCounters, keys: ReadonlyArray<TicketKey>, name: Buffer, found: TicketKey | undefined): void {
  c.lookedUp(found !== undefined, found === undefined && keys.some((k) => k.name.equals(name)));
}

/**
 * ticketKeyRecord - the record smtpd expects: name, bits, hmac, then tout as a
 * native-endian time_t at the layout's offset (zero padding, if any, after it).
 */
export function ticketKeyRecord(key: TicketKey, layout: TicketKeyLayout = ticketKeyLayout()): Buffer {
  const out = Buffer.alloc(layout.size);
  key.name.copy(out, 0);
  key.bits.copy(out, TLS_TICKET_NAMELEN);
  key.hmac.copy(out, TLS_TICKET_NAMELEN + TLS_TICKET_KEYLEN);
  const at = layout.toutOffset;
  if (layout.timeSize === 8) {
    if (NATIVE_LE) out.writeBigInt64LE(BigInt(key.tout), at);
    else out.writeBigInt64BE(BigInt(key.tout), at);
  } else if (NATIVE_LE) {
    out.writeInt32LE(key.tout, at);
  } else {
    out.writeInt32BE(key.tout, at);
  }
  return out;
}

/** parseTicketKeyRecord - the inverse of ticketKeyRecord (tests, stores). */
export function parseTicketKeyRecord(rec: Buffer, layout: TicketKeyLayout = ticketKeyLayout()): TicketKey {
  if (rec.length !== layout.size) throw new RangeError(`ticket key record length ${rec.length}`);
  const at = layout.toutOffset;
  const tout = layout.timeSize === 8
    ? Number(NATIVE_LE ? rec.readBigInt64LE(at) : rec.readBigInt64BE(at))
    : NATIVE_LE ? rec.readInt32LE(at) : rec.readInt32BE(at);
  return {
    name: Buffer.from(rec.subarray(0, TLS_TICKET_NAMELEN)),
    bits: Buffer.from(rec.subarray(TLS_TICKET_NAMELEN, TLS_TICKET_NAMELEN + TLS_TICKET_KEYLEN)),
    hmac: Buffer.from(rec.subarray(TLS_TICKET_NAMELEN + TLS_TICKET_KEYLEN, TLS_TICKET_NAMELEN + TLS_TICKET_KEYLEN + TLS_TICKET_MACLEN)),
    tout,
  };
}

const NATIVE_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** newTicketKey - fresh random key material with tout = now + T/2 - 1. */
export function newTicketKey(now: number, sessionTimeout: number, random: (n: number) => Buffer = randomBytes): TicketKey {
  return {
    name: random(TLS_TICKET_NAMELEN),
    bits: random(TLS_TICKET_KEYLEN),
    hmac: random(TLS_TICKET_MACLEN),
    tout: now + Math.trunc(sessionTimeout / 2) - 1,
  };
}

/**
 * ticketKeyZero - overwrite the secret bytes of a key that was dropped (its
 * name stays): call only once nothing can hand it out any more.
 */
export function ticketKeyZero(key: TicketKey): void {
  key.bits.fill(0);
  key.hmac.fill(0);
}

/** findTicketKey - tls_scache_key over a list sorted newest first (at most 2 used). */
export function findTicketKey(
  keys: ReadonlyArray<TicketKey>,
  keyname: Buffer | undefined,
  now: number,
  halfTimeout: number,
): TicketKey | undefined {
  if (keyname !== undefined) {
    for (const key of keys) if (key.name.equals(keyname)) return key.tout + halfTimeout > now ? key : undefined;
    return undefined;
  }
  const current = keys[0];
  return current !== undefined && current.tout > now ? current : undefined;
}

/** MemoryTicketKeys - Postfix's behaviour: keys live and die with the process. */
export class MemoryTicketKeys implements TicketKeySource {
  /** [current, previous], current expiring last. */
  #keys: TicketKey[] = [];
  readonly #clock: Clock;
  readonly #random: (n: number) => Buffer;
  readonly counters = new TicketKeyCounters();

  constructor(opts: { clock?: Clock; random?: (n: number) => Buffer } = {}) {
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? randomBytes;
  }

  tktkey(keyname: Buffer | undefined, sessionTimeout: number): TicketKey | undefined {
    const now = this.#clock.now();
    const half = Math.trunc(sessionTimeout / 2);
    const found = findTicketKey(this.#keys, keyname, now, half);
    if (keyname !== undefined) countKeyLookup(this.counters, this.#keys, keyname, found);
    if (found !== undefined || keyname !== undefined) return found;
    const key = newTicketKey(now, sessionTimeout, this.#random);
    this.counters.made++;
    if (this.#keys.length > 0) this.counters.rotated++;
    this.rotate(key);
    return key;
  }

  inUse(): TicketKeyInUse | undefined {
    return keyInUse(this.#keys[0], this.#clock.now(), false);
  }

  /** rotate - tls_scache_key_rotate: keep the two keys, the later tout first. */
  rotate(key: TicketKey): void {
    const current = this.#keys[0];
    const before = this.#keys;
    if (current === undefined || current.tout < key.tout) this.#keys = current ? [key, current] : [key];
    else this.#keys = [current, key];
    for (const k of before) if (!this.#keys.includes(k)) ticketKeyZero(k);
  }

  async close(): Promise<void> {
    for (const k of this.#keys) ticketKeyZero(k);
    this.#keys = [];
  }
}
