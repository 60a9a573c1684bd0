/**
 * redis-keys.ts - session-ticket keys shared through Redis by every tlsmgr of
 *                 an MX farm (tlsmgr_ticket_key_database = redis:TABLE).
 * Owns: the epoch schedule that makes all hosts agree on the current key,
 *       race-free creation (one atomic script per epoch slot), lookup by
 *       name across hosts, wrapping before storage, and the local fallback
 *       keys while Redis cannot answer.
 * Not here: the connection and its outage warnings (redis/link.ts);
 *           sealing (tickets/key-wrap.ts); Postfix's lifetime rules
 *           (tickets/ticket-keys.ts: findTicketKey, newTicketKey).
 * See also: postfix/src/tlsmgr/tlsmgr.c (tlsmgr_key), man/tlsmgr.8
 *
 * Schedule. With T the smtpd session cache timeout and H = T/2 (C division),
 * time is cut into epochs of L = H - 1 seconds: epoch e = floor(now / L),
 * its key encrypts until tout = (e + 1) * L and decrypts until tout + H
 * (findTicketKey). A key made when its epoch starts thus gets exactly
 * Postfix's tout = now + T/2 - 1, and epochs tile the time line, so there
 * is no second without a valid key. Every host derives the same epoch from
 * its own clock; no host "rotates" for the others.
 *
 * Creation. The key of epoch e lives at KEY_PREFIX + "tktkey:" + L + ":" + e.
 * The first host that needs it runs a script that returns the stored blob
 * or, when there is none, stores the one offered and returns it, in one
 * atomic step: two hosts racing end with one key, and both use it.
 *
 * Names. A key's 16-byte name is L (4 bytes), e (4 bytes), 8 random bytes,
 * big-endian, so any host can find any still-valid key by the name in a
 * ticket with one GET. The name tells only when the key was current, which
 * the ticket shows anyway.
 *
 * Clock skew. A host whose clock runs s seconds ahead starts epoch e + 1
 * s seconds early; both keys are in Redis, found by name, and tickets made
 * with either decrypt everywhere (a key decrypts for H after its tout).
 * Names of epochs starting more than SKEW_AHEAD seconds in this host's
 * future are not looked up. Keys expire from Redis SKEW_MARGIN seconds
 * after their decryption deadline.
 *
 * Names from clients. A ticket's key name comes from the client, so it
 * must not choose what is fetched: a name whose epoch length is not this
 * host's L, or whose epoch is outside the window above, is a miss without
 * a request to Redis; and each slot looked up by name is remembered for
 * NAME_MISS_TTL seconds (its key, or that it had none), so unknown names
 * of a slot, sent again and again, cost one GET per slot and period. With
 * L fixed the window holds about three slots.
 *
 * Storage. Only sealed blobs (key-wrap.ts) reach Redis, bound to their slot
 * (the associated data names L and e). A blob that does not open (another
 * key_wrap_file on another host, or tampering) is not used and is never
 * overwritten; a warning says so once.
 *
 * Lost store. A Redis restarted without persistence has forgotten the
 * current key while running hosts still use it, and the first host to ask
 * again would create another: two current keys, tickets of one host not
 * resumable on the others until the epoch ends. So a host offers its current
 * key again (the same atomic get-or-set, its own sealed blob) every
 * CURRENT_RECHECK seconds, in the background of a request: when the slot is
 * empty its key is stored again, and when another key is there it adopts
 * that key (its own still decrypts its tickets, by name). All hosts thus
 * agree again within CURRENT_RECHECK seconds.
 *
 * Outage. When Redis does not answer within the table's timeout, the
 * current key comes from a local list of fallback keys (fully random names,
 * tout no later than FALLBACK_TOUT_MAX seconds ahead so smtpd asks again
 * soon), lookups by name of shared keys not seen before miss, and the link
 * logs one warning for the outage. Known shared keys keep working.
 */

import { randomBytes } from "node:crypto";
import { TLS_TICKET_KEYLEN, TLS_TICKET_MACLEN, TLS_TICKET_NAMELEN } from "../protocol/tlsmgr-proto.js";
import type { TicketKey, TicketKeySource } from "./ticket-keys.js";
import { findTicketKey, keyInUse, newTicketKey, ticketKeyZero } from "./ticket-keys.js";
import { TicketKeyCounters } from "../stats/counters.js";
import type { TicketKeyInUse } from "../stats/stats-view.js";
import { STORED_KEY_LEN, storedKeyDecode, storedKeyEncode } from "./stored-key.js";
import type { KeyWrapper } from "./key-wrap.js";
import type { RedisClient, RedisLink } from "../redis/link.js";
import { msgInfo, msgWarn } from "../log/msg.js";
import type { Clock } from "../util/clock.js";
import { systemClock } from "../util/clock.js";

/** A fallback key encrypts for at most this many seconds. */
export const FALLBACK_TOUT_MAX = 60;
/** At most this many fallback keys are kept for decryption. */
export const FALLBACK_KEEP_MAX = 64;
/** Keys stay in Redis this many seconds past their decryption deadline. */
export const SKEW_MARGIN = 300;
/** Names of epochs that start at most this far in this host's future are looked up. */
export const SKEW_AHEAD = 60;
/** A host offers its current key to Redis again this often (seconds): see "Lost store". */
export const CURRENT_RECHECK = 30;
/** A slot looked up by name is not looked up again for this many seconds (see "Names from clients"). */
export const NAME_MISS_TTL = 10;

const TKTKEY_INFIX = "tktkey:";
const SCRIPT_NAME = "tlsmgrTktkeyCreate";
/** ioredis adds NAME + "Buffer" for a defined command: the reply as a Buffer. */
const SCRIPT_CALL = "tlsmgrTktkeyCreateBuffer";
/** Return the stored blob, or store ARGV[1] for ARGV[2] seconds and return it: one atomic step. */
const SCRIPT_LUA = `local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return ARGV[1]`;

type ScriptClient = RedisClient & {
  [SCRIPT_CALL]?: (key: string, blob: Buffer, ttl: number) => Promise<Buffer | null>;
};

/** ticketEpochLength - L = T/2 - 1 seconds (at least 1). */
export function ticketEpochLength(sessionTimeout: number): number {
  return Math.max(1, Math.trunc(sessionTimeout / 2) - 1);
}

/** ticketEpochOf - the epoch of a time: floor(now / L). */
export function ticketEpochOf(now: number, len: number): number {
  return Math.floor(now / len);
}

/** ticketNameEpoch - the L and e a shared key's name carries. */
export function ticketNameEpoch(name: Buffer): { len: number; epoch: number } {
  return { len: name.readUInt32BE(0), epoch: name.readUInt32BE(4) };
}

/** wrapAad - the associated data binding a blob to its slot. */
function wrapAad(len: number, epoch: number): Buffer {
  return Buffer.from(`tlsmgr-ts tktkey ${len}:${epoch}`, "latin1");
}

export interface RedisTicketKeysOptions {
  clock?: Clock;
  random?: (n: number) => Buffer;
}

/** RedisTicketKeys - the TicketKeySource of a redis: table. */
export class RedisTicketKeys implements TicketKeySource {
  readonly #link: RedisLink;
  readonly #wrap: KeyWrapper;
  readonly #clock: Clock;
  readonly #random: (n: number) => Buffer;
  /** Shared keys seen, by hex name. */
  readonly #shared = new Map<string, TicketKey>();
  /** The shared current key, the epoch length it belongs to, its sealed blob and when it was last offered. */
  #current: TicketKey | undefined;
  #currentLen = 0;
  #currentBlob: Buffer | undefined;
  #currentChecked = 0;
  /** Fallback keys, newest first. */
  #local: TicketKey[] = [];
  /** Fetches in flight, by slot, so concurrent requests share one round trip. */
  readonly #pending = new Map<string, Promise<{ key: TicketKey; blob: Buffer } | undefined>>();
  #badBlobWarned = false;
  #closed = false;
  /** Slots looked up by name: until when the answer stands, and the name of the key found (if any). */
  readonly #slotSeen = new Map<string, { until: number; name: Buffer | undefined }>();
  /** Lookups by name in flight, by slot. */
  readonly #slotPending = new Map<string, Promise<Buffer | null>>();
  readonly counters = new TicketKeyCounters();
  /** The current key last handed out, and whether it was the shared one (statistics). */
  #handedOut: TicketKey | undefined;
  #handedOutShared = false;

  constructor(link: RedisLink, wrap: KeyWrapper, opts: RedisTicketKeysOptions = {}) {
    this.#link = link;
    this.#wrap = wrap;
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? randomBytes;
    const client = link.client as ScriptClient;
    if (typeof client[SCRIPT_CALL] !== "function")
      client.defineCommand(SCRIPT_NAME, { numberOfKeys: 1, lua: SCRIPT_LUA });
  }

  /** slotKey - the Redis key of epoch e. */
  #slotKey(len: number, epoch: number): string {
    return `${this.#link.table.keyPrefix}${TKTKEY_INFIX}${len}:${epoch}`;
  }

  async tktkey(keyname: Buffer | undefined, sessionTimeout: number): Promise<TicketKey | undefined> {
    if (this.#closed) return undefined;
    const now = this.#clock.now();
    const half = Math.trunc(sessionTimeout / 2);
    this.#prune(now, half);
    const len = ticketEpochLength(sessionTimeout);
    if (keyname !== undefined) return this.#byNameCounted(keyname, now, half, len);
    const cur = this.#current;
    if (cur !== undefined && this.#currentLen === len && cur.tout > now) {
      if (now - this.#currentChecked >= CURRENT_RECHECK) this.#recheckCurrent(cur, len, half, now);
      return this.#handOut(cur, true);
    }
    const epoch = ticketEpochOf(now, len);
    const fetched = await this.#fetchOrCreate(len, epoch, half, now);
    if (fetched !== undefined && fetched.key.tout > now) {
      this.#adopt(fetched.key, fetched.blob, len, now);
      return this.#handOut(fetched.key, true);
    }
    return this.#handOut(this.#fallback(now, sessionTimeout, len, epoch), false);
  }

  /** #handOut - the current key answered: counts a rotation when it differs from the last one. */
  #handOut(key: TicketKey, shared: boolean): TicketKey {
    const last = this.#handedOut;
    if (last !== key) {
      if (last !== undefined && !last.name.equals(key.name)) this.counters.rotated++;
      this.#handedOut = key;
    }
    this.#handedOutShared = shared;
    return key;
  }

  inUse(): TicketKeyInUse | undefined {
    return keyInUse(this.#handedOut, this.#clock.now(), this.#handedOutShared);
  }

  /**
   * #byNameCounted - #byName, counted: found; stale when the name is a
   * shared key's of this epoch length whose decryption deadline has passed
   * (expired keys are pruned, so the name is all there is); else not found.
   */
  async #byNameCounted(name: Buffer, now: number, half: number, len: number): Promise<TicketKey | undefined> {
    const key = await this.#byName(name, now, half, len);
    const at = ticketNameEpoch(name);
    this.counters.lookedUp(key !== undefined, at.len === len && !((at.epoch + 1) * len + half > now));
    return key;
  }

  /** #adopt - make a shared key the current one. */
  #adopt(key: TicketKey, blob: Buffer, len: number, now: number): void {
    this.#current = key;
    this.#currentLen = len;
    this.#currentBlob = blob;
    this.#currentChecked = now;
  }

  /**
   * #recheckCurrent - offer the current key again (see "Lost store"), in
   * the background: the request is answered with the current key meanwhile.
   */
  #recheckCurrent(cur: TicketKey, len: number, half: number, now: number): void {
    const blob = this.#currentBlob;
    if (blob === undefined) return;
    this.#currentChecked = now;
    const epoch = ticketNameEpoch(cur.name).epoch;
    const slot = this.#slotKey(len, epoch);
    const ttl = Math.max(1, cur.tout + half + SKEW_MARGIN - now);
    this.#link
      .run((c) => (c as ScriptClient)[SCRIPT_CALL]!(slot, blob, ttl))
      .then(
        (stored) => {
          if (!stored || stored.equals(blob) || this.#current !== cur) return;
          const other = this.#open(stored, len, epoch, slot);
          if (other !== undefined && other.tout > this.#clock.now()) this.#adopt(other, stored, len, this.#clock.now());
        },
        () => undefined, // the link warns about an outage; the next recheck tries again
      );
  }

  /** #fetchOrCreate - the key of epoch e from Redis (and its sealed blob), offering a new one; undefined when Redis fails. */
  #fetchOrCreate(
    len: number,
    epoch: number,
    half: number,
    now: number,
  ): Promise<{ key: TicketKey; blob: Buffer } | undefined> {
    const slot = this.#slotKey(len, epoch);
    const pending = this.#pending.get(slot);
    if (pending) return pending;
    const offer: TicketKey = {
      name: Buffer.concat([this.#epochPrefix(len, epoch), this.#random(TLS_TICKET_NAMELEN - 8)]),
      bits: this.#random(TLS_TICKET_KEYLEN),
      hmac: this.#random(TLS_TICKET_MACLEN),
      tout: (epoch + 1) * len,
    };
    const aad = wrapAad(len, epoch);
    const plain = storedKeyEncode(offer);
    const blob = this.#wrap.wrap(plain, aad, this.#random);
    plain.fill(0);
    const ttl = Math.max(1, offer.tout + half + SKEW_MARGIN - now);
    const run = this.#link
      .run((c) => (c as ScriptClient)[SCRIPT_CALL]!(slot, blob, ttl))
      .then(
        (stored) => {
          const key = stored ? this.#open(stored, len, epoch, slot) : undefined;
          if (key && stored?.equals(blob)) this.counters.made++; // our offer was stored
          return key && stored ? { key, blob: stored } : undefined;
        },
        () => undefined,
      )
      .finally(() => this.#pending.delete(slot));
    this.#pending.set(slot, run);
    return run;
  }

  /** #epochPrefix - the first 8 bytes of a shared key's name. */
  #epochPrefix(len: number, epoch: number): Buffer {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(len >>> 0, 0);
    b.writeUInt32BE(epoch >>> 0, 4);
    return b;
  }

  /** #open - unwrap a stored blob and check it belongs to its slot; remember the key. */
  #open(blob: Buffer, len: number, epoch: number, slot: string): TicketKey | undefined {
    const plain = this.#wrap.unwrap(blob, wrapAad(len, epoch));
    const key = plain && plain.length === STORED_KEY_LEN ? storedKeyDecode(plain) : undefined;
    plain?.fill(0);
    if (key === undefined || !key.name.subarray(0, 8).equals(this.#epochPrefix(len, epoch)) || key.tout !== (epoch + 1) * len) {
      if (!this.#badBlobWarned) {
        this.#badBlobWarned = true;
        msgWarn(
          `${this.#link.label}: cannot open the session ticket key stored in ${slot}:` +
            " is key_wrap_file the same on every host? using local keys",
        );
      }
      return undefined;
    }
    if (this.#badBlobWarned) {
      this.#badBlobWarned = false;
      msgInfo(`${this.#link.label}: session ticket keys stored in the server open again`);
    }
    this.#shared.set(key.name.toString("hex"), key);
    return key;
  }

  /** #byName - a key still valid for decryption: known ones first, then Redis (see "Names from clients"). */
  async #byName(name: Buffer, now: number, half: number, myLen: number): Promise<TicketKey | undefined> {
    const hex = name.toString("hex");
    const known = this.#shared.get(hex) ?? this.#local.find((k) => k.name.equals(name));
    if (known !== undefined) return findTicketKey([known], name, now, half);
    const { len, epoch } = ticketNameEpoch(name);
    if (len !== myLen) return undefined;
    const tout = (epoch + 1) * len;
    if (!(tout + half > now) || epoch * len > now + SKEW_AHEAD) return undefined;
    const slot = this.#slotKey(len, epoch);
    const seen = this.#slotSeen.get(slot);
    if (seen !== undefined && seen.until > now) return undefined; // that slot's key, if any, is known: not this name
    let pending = this.#slotPending.get(slot);
    if (pending === undefined) {
      pending = this.#link.run((c) => c.getBuffer(slot)).finally(() => this.#slotPending.delete(slot));
      this.#slotPending.set(slot, pending);
    }
    let blob: Buffer | null;
    try {
      blob = await pending;
    } catch {
      return undefined; // an outage: not remembered
    }
    const key = blob ? this.#open(blob, len, epoch, slot) : undefined;
    this.#slotSeen.set(slot, { until: this.#clock.now() + NAME_MISS_TTL, name: key?.name });
    if (key === undefined || !key.name.equals(name)) return undefined;
    return findTicketKey([key], name, this.#clock.now(), half);
  }

  /** #fallback - the local current key, made when none is valid. */
  #fallback(now: number, sessionTimeout: number, len: number, epoch: number): TicketKey {
    const cur = this.#local[0];
    if (cur !== undefined && cur.tout > now) return cur;
    const key = newTicketKey(now, sessionTimeout, this.#random);
    this.counters.made++;
    key.tout = Math.max(now + 1, Math.min(key.tout, (epoch + 1) * len, now + FALLBACK_TOUT_MAX));
    this.#local.unshift(key);
    if (this.#local.length > FALLBACK_KEEP_MAX) this.#local.length = FALLBACK_KEEP_MAX;
    return key;
  }

  /** #prune - forget keys past their decryption deadline (their bytes zeroed), and old slot lookups. */
  #prune(now: number, half: number): void {
    const gone = new Set<TicketKey>();
    for (const [hex, k] of this.#shared)
      if (!(k.tout + half > now)) {
        this.#shared.delete(hex);
        gone.add(k);
      }
    this.#local = this.#local.filter((k) => k.tout + half > now || (gone.add(k), false));
    if (this.#current !== undefined && !(this.#current.tout + half > now)) {
      gone.add(this.#current);
      this.#current = undefined;
      this.#currentBlob = undefined;
    }
    for (const k of gone) ticketKeyZero(k);
    for (const [slot, seen] of this.#slotSeen) if (!(seen.until > now)) this.#slotSeen.delete(slot);
  }

  /** localKeys - how many fallback keys are kept (tests, statistics). */
  get localKeys(): number {
    return this.#local.length;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const k of new Set([...this.#shared.values(), ...this.#local, ...(this.#current ? [this.#current] : [])])) ticketKeyZero(k);
    this.#shared.clear();
    this.#slotSeen.clear();
    this.#local = [];
    this.#current = undefined;
    this.#currentBlob = undefined;
    this.#handedOut = undefined;
    await this.#link.release();
  }
}
