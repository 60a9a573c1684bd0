/**
 * file-keys.ts - session-ticket keys kept in a 0600 file, so that they
 *                survive a restart of tlsmgr on one host
 *                (tlsmgr_ticket_key_database = /path/to/file).
 * Owns: the file format, who may own it and its directory, opening it
 *       before privileges are dropped, loading the keys at start-up,
 *       dropping keys no tlsmgr could have made, and saving each new key
 *       before it is handed out.
 * Not here: the lifetime rules (tickets/ticket-keys.ts: findTicketKey,
 *           newTicketKey, MemoryTicketKeys.rotate semantics).
 * See also: postfix/src/tlsmgr/tlsmgr.c (tlsmgr_key), man/tlsmgr.8,
 *           tickets/stored-key.ts
 *
 * Why not write-and-rename: tlsmgr usually runs chrooted (Debian's master.cf)
 * and the file lives outside the jail, so after start-up only a descriptor
 * opened before chroot can reach it. The file therefore holds two copies
 * (slots) of the key list, and a save writes the first slot, syncs, then
 * the second, and syncs again. Each slot carries a generation and a SHA-256
 * checksum; a load takes the valid slot with the higher generation. A crash
 * at any point leaves one complete slot: the old list or the new one. Both
 * slots hold the same list once a save completes, so a key that left the
 * list is gone from the file (though not necessarily from the disk blocks).
 *
 * Slot (SLOT_SIZE bytes): "TLSMGRK1", generation (uint64 BE), key count
 * (1 byte, at most 2), the keys (stored-key.ts, 88 bytes each), SHA-256 of
 * everything before it, zero padding.
 *
 * Keys: as Postfix's tlsmgr (current and previous, tout = now + T/2 - 1);
 * tktkey with an empty name waits for the save when it makes a new key. A
 * failed save is a warning (once until a save works) and the key is used
 * anyway: it will not survive a restart, nothing worse.
 *
 * Who may own it. The file is trusted as far as whoever could have put it
 * there. It is opened before privileges are dropped, never through a
 * symbolic link, and must be a regular file with one link, mode 0600 or
 * 0400, in a directory that neither group nor others may write:
 *   - a directory of root's (e.g. /etc/postfix/tlsmgr, mode 0700): the file
 *     must be root's; no mail_owner process can plant, change or remove it.
 *     The strong choice.
 *   - a directory of mail_owner's (data_directory, where tlsmgr-postfix
 *     and the README put it): the file must be root's or mail_owner's, and
 *     a root's one is given to mail_owner (fchown on the open descriptor),
 *     as Postfix's own files there are (postfix check). A mail_owner
 *     process could plant keys there, as it can ask tlsmgr for the current
 *     key anyway; what it plants is bounded below.
 *   - any other directory owner: refused.
 * (A daemon not run by root: its own directory and files.) Keys whose
 * deadline is beyond now + T/2 (no key tlsmgr makes has one) are dropped at
 * the first request with a warning, and leave the file at the next save: a
 * planted key cannot outlive one key lifetime.
 *
 * Forward secrecy: keys stay in the file until two rotations later (about
 * T), and in whatever copies file systems, disks and backups keep; whoever
 * reads the file in that time can decrypt the recorded sessions resumed or
 * started with tickets under those keys. With the default (in memory), keys
 * die with the process.
 */

import { createHash, randomBytes } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { open, stat, type FileHandle } from "node:fs/promises";
import { dirname, isAbsolute } from "node:path";
import type { TicketKey, TicketKeySource } from "./ticket-keys.js";
import { countKeyLookup, findTicketKey, keyInUse, newTicketKey, ticketKeyZero } from "./ticket-keys.js";
import { TicketKeyCounters } from "../stats/counters.js";
import type { TicketKeyInUse } from "../stats/stats-view.js";
import { STORED_KEY_LEN, storedKeyDecode, storedKeyEncode } from "./stored-key.js";
import { FatalError, msgFatal, msgInfo, msgWarn } from "../log/msg.js";
import { errorCode, errorText } from "../log/errors.js";
import type { Clock } from "../util/clock.js";
import { systemClock } from "../util/clock.js";

export const FILE_KEYS_MAGIC = Buffer.from("TLSMGRK1", "latin1");
export const FILE_KEYS_SLOT_SIZE = 512;
export const FILE_KEYS_MAX = 2;
const AT_GEN = 8;
const AT_COUNT = 16;
const AT_KEYS = 17;
const DIGEST_LEN = 32;

/** fileKeysSlotEncode - one slot holding keys at generation gen. */
export function fileKeysSlotEncode(gen: bigint, keys: ReadonlyArray<TicketKey>): Buffer {
  if (keys.length > FILE_KEYS_MAX) throw new RangeError(`too many keys: ${keys.length}`);
  const slot = Buffer.alloc(FILE_KEYS_SLOT_SIZE);
  FILE_KEYS_MAGIC.copy(slot, 0);
  slot.writeBigUInt64BE(gen, AT_GEN);
  slot[AT_COUNT] = keys.length;
  keys.forEach((k, i) => storedKeyEncode(k, slot, AT_KEYS + i * STORED_KEY_LEN));
  const end = AT_KEYS + keys.length * STORED_KEY_LEN;
  createHash("sha256").update(slot.subarray(0, end)).digest().copy(slot, end);
  return slot;
}

/** fileKeysSlotDecode - generation and keys of a slot; undefined when it is not a complete, intact slot. */
export function fileKeysSlotDecode(slot: Buffer): { gen: bigint; keys: TicketKey[] } | undefined {
  if (slot.length < AT_KEYS + DIGEST_LEN || !slot.subarray(0, 8).equals(FILE_KEYS_MAGIC)) return undefined;
  const count = slot[AT_COUNT]!;
  if (count > FILE_KEYS_MAX) return undefined;
  const end = AT_KEYS + count * STORED_KEY_LEN;
  if (slot.length < end + DIGEST_LEN) return undefined;
  const want = createHash("sha256").update(slot.subarray(0, end)).digest();
  if (!want.equals(slot.subarray(end, end + DIGEST_LEN))) return undefined;
  const keys: TicketKey[] = [];
  for (let i = 0; i < count; i++) keys.push(storedKeyDecode(slot, AT_KEYS + i * STORED_KEY_LEN)!);
  return { gen: slot.readBigUInt64BE(AT_GEN), keys };
}

export interface FileTicketKeysOptions {
  clock?: Clock;
  random?: (n: number) => Buffer;
  /** mail_owner: a key file in a directory of mail_owner's may be theirs, and a root's one there is given to them (see the header). */
  owner?: { uid: number; gid: number };
}

/** FileTicketKeys - Postfix's two keys, saved to a file before use. */
export class FileTicketKeys implements TicketKeySource {
  readonly path: string;
  readonly #fh: FileHandle;
  readonly #clock: Clock;
  readonly #random: (n: number) => Buffer;
  /** [current, previous], current expiring last. */
  #keys: TicketKey[];
  #gen: bigint;
  #making: Promise<TicketKey> | undefined;
  #saving: Promise<void> = Promise.resolve();
  #saveFailed = false;
  #closed = false;
  readonly counters = new TicketKeyCounters();

  constructor(path: string, fh: FileHandle, keys: TicketKey[], gen: bigint, opts: FileTicketKeysOptions = {}) {
    this.path = path;
    this.#fh = fh;
    this.#keys = keys;
    this.#gen = gen;
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? randomBytes;
  }

  tktkey(keyname: Buffer | undefined, sessionTimeout: number): TicketKey | undefined | Promise<TicketKey | undefined> {
    if (this.#closed) return undefined;
    const now = this.#clock.now();
    this.#dropFarKeys(now, sessionTimeout);
    const found = findTicketKey(this.#keys, keyname, now, Math.trunc(sessionTimeout / 2));
    if (keyname !== undefined) countKeyLookup(this.counters, this.#keys, keyname, found);
    if (found !== undefined || keyname !== undefined) return found;
    this.#making ??= this.#make(now, sessionTimeout).finally(() => (this.#making = undefined));
    return this.#making;
  }

  /** #dropFarKeys - forget (and zero) keys whose deadline no key of ours has: beyond now + T/2 (see the header). */
  #dropFarKeys(now: number, sessionTimeout: number): void {
    const limit = now + Math.trunc(sessionTimeout / 2);
    if (this.#keys.every((k) => k.tout <= limit)) return;
    this.#keys = this.#keys.filter((k) => {
      if (k.tout <= limit) return true;
      msgWarn(
        `session ticket key file ${this.path}: dropped a session ticket key whose deadline` +
          ` ${new Date(k.tout * 1000).toISOString()} is beyond now + ${limit - now}s: not one of ours`,
      );
      ticketKeyZero(k);
      return false;
    });
  }

  /** #make - a new current key, saved before it is handed out. */
  async #make(now: number, sessionTimeout: number): Promise<TicketKey> {
    const key = newTicketKey(now, sessionTimeout, this.#random);
    this.counters.made++;
    if (this.#keys.length > 0) this.counters.rotated++;
    const current = this.#keys[0];
    const dropped = this.#keys.slice(1);
    if (current === undefined || current.tout < key.tout) this.#keys = current ? [key, current] : [key];
    else this.#keys = [current, key];
    await this.#save();
    for (const k of dropped) if (!this.#keys.includes(k)) ticketKeyZero(k);
    return key;
  }

  /** #save - write both slots in turn (see the header); saves run one at a time. */
  #save(): Promise<void> {
    const gen = ++this.#gen;
    const slot = fileKeysSlotEncode(gen, this.#keys);
    const run = this.#saving.then(async () => {
      try {
        await this.#writeSlots(slot);
      } finally {
        slot.fill(0);
      }
    });
    this.#saving = run;
    return run;
  }

  /** #writeSlots - both copies in turn; a failure is a warning (once until a save works). */
  async #writeSlots(slot: Buffer): Promise<void> {
    try {
      for (const at of [0, FILE_KEYS_SLOT_SIZE]) {
        await this.#fh.write(slot, 0, slot.length, at);
        await this.#fh.datasync();
      }
      if (this.#saveFailed) {
        this.#saveFailed = false;
        msgInfo(`session ticket keys saved again to ${this.path}`);
      }
    } catch (err) {
      if (!this.#saveFailed) {
        this.#saveFailed = true;
        msgWarn(`cannot save session ticket keys to ${this.path}: ${errorText(err)}; new keys will not survive a restart`);
      }
    }
  }

  /** inUse - the current key's state, for the statistics. */
  inUse(): TicketKeyInUse | undefined {
    return keyInUse(this.#keys[0], this.#clock.now(), false);
  }

  /** keyCount - keys held (tests). */
  get keyCount(): number {
    return this.#keys.length;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#making?.catch(() => undefined);
    await this.#saving;
    for (const k of this.#keys) ticketKeyZero(k);
    this.#keys = [];
    await this.#fh.close();
  }
}

/** modeText - "0600" */
function modeText(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

/**
 * keyFileOwners - the uids the key file may belong to, from its directory's
 * owner, and whether that owner is mail_owner (see the header); fatal for
 * another owner and for a directory that group or others may write.
 */
async function keyFileOwners(path: string, where: string, owner: FileTicketKeysOptions["owner"]): Promise<{ uids: number[]; mailOwnerDir: boolean }> {
  const dir = dirname(path);
  let st: Stats;
  try {
    st = await stat(dir);
  } catch (err) {
    return msgFatal(`${where}: cannot open session ticket key file ${path}: ${errorText(err)}`);
  }
  const euid = process.geteuid?.() ?? 0;
  if (!st.isDirectory()) msgFatal(`${where}: ${path}: ${dir} is not a directory`);
  const mailOwner = owner !== undefined && owner.uid !== euid ? owner.uid : undefined;
  if (st.uid !== euid && st.uid !== mailOwner)
    msgFatal(
      `${where}: ${path}: its directory ${dir} is owned by uid ${st.uid}, not by root or mail_owner:` +
        " whoever owns it can put keys there; use a directory of root's, mode 0700 (e.g. /etc/postfix/tlsmgr)",
    );
  if ((st.mode & 0o022) !== 0)
    msgFatal(`${where}: ${path}: its directory ${dir} is mode ${modeText(st.mode)}: others may put keys there; use a directory of root's, mode 0700`);
  return st.uid === euid ? { uids: [euid], mailOwnerDir: false } : { uids: [euid, st.uid], mailOwnerDir: true };
}

/**
 * fileTicketKeysOpen - open (create when absent, mode 0600) the key file
 * PATH, check who owns it and its directory, and load its keys. Fatal,
 * naming `where` (main.cf and parameter), when the path is not absolute,
 * its directory or the file break the rules of the header, or the file lets
 * other users read or change it. A file with no intact slot starts empty
 * (warning).
 */
export async function fileTicketKeysOpen(
  path: string,
  where: string,
  opts: FileTicketKeysOptions = {},
): Promise<FileTicketKeys> {
  if (!isAbsolute(path)) msgFatal(`${where}: "${path}" is not an absolute pathname`);
  const allowed = await keyFileOwners(path, where, opts.owner);
  let fh: FileHandle;
  let st: Stats;
  try {
    // No O_TRUNC: what is there is checked before anything is written.
    fh = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NOCTTY | constants.O_NONBLOCK, 0o600);
  } catch (err) {
    if (errorCode(err) === "ELOOP") return msgFatal(`${where}: ${path}: is a symbolic link: name the file itself`);
    return msgFatal(`${where}: cannot open session ticket key file ${path}: ${errorText(err)}`);
  }
  try {
    st = await fh.stat();
    if (!st.isFile()) msgFatal(`${where}: ${path} is not a regular file`);
    if (st.nlink !== 1) msgFatal(`${where}: ${path}: it has ${st.nlink} hard links: another name could change it`);
    if (!allowed.uids.includes(st.uid))
      msgFatal(
        `${where}: ${path}: owned by uid ${st.uid}, not by uid ${allowed.uids.join(" or uid ")}` +
          ` (${allowed.mailOwnerDir ? "root, or mail_owner who owns its directory" : "the owner of its directory"}): someone else put it there`,
      );
    if ((st.mode & 0o077) !== 0)
      msgFatal(`${where}: ${path}: mode ${modeText(st.mode)} lets others read or change the keys: chmod 600 ${path}`);
    if (allowed.mailOwnerDir && st.uid === 0 && opts.owner !== undefined) {
      try {
        await fh.chown(opts.owner.uid, opts.owner.gid); // the descriptor: no path, no link followed
      } catch (err) {
        msgWarn(`session ticket key file ${path}: cannot give it to mail_owner: ${errorText(err)}`);
      }
    }
    const buf = Buffer.alloc(2 * FILE_KEYS_SLOT_SIZE);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const slots = [buf.subarray(0, Math.min(bytesRead, FILE_KEYS_SLOT_SIZE))];
    if (bytesRead > FILE_KEYS_SLOT_SIZE) slots.push(buf.subarray(FILE_KEYS_SLOT_SIZE, bytesRead));
    let best: { gen: bigint; keys: TicketKey[] } | undefined;
    for (const s of slots) {
      const d = fileKeysSlotDecode(s);
      if (d && (best === undefined || d.gen > best.gen)) best = d;
    }
    buf.fill(0);
    if (best === undefined && bytesRead > 0)
      msgWarn(`session ticket key file ${path}: no intact key list in it: starting with no keys`);
    return new FileTicketKeys(path, fh, best?.keys ?? [], best?.gen ?? 0n, opts);
  } catch (err) {
    await fh.close().catch(() => undefined);
    if (err instanceof FatalError) throw err;
    return msgFatal(`${where}: cannot read session ticket key file ${path}: ${errorText(err)}`);
  }
}
