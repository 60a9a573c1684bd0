/**
 * key-wrap.ts - session-ticket keys are never stored in plain in a shared
 *               store: they are sealed with AES-256-GCM under a key derived
 *               from a secret in a 0600 file (key_wrap_file).
 * Owns: the secret file's format and checks, the derivation of the wrapping
 *       key, the sealed blob format, and making a new secret (keygen).
 * Not here: where blobs are stored (tickets/redis-keys.ts); the keygen
 *           command line (tools/keygen.ts, tools/tlsmgr-postfix.ts).
 * See also: NIST SP 800-38D (GCM), RFC 5869 (HKDF), man/tlsmgr.8
 *
 * Secret file: lines; '#' comments and blank lines are ignored; the one
 * other line is the base64 of 32 random bytes. It must be a regular file
 * (not a symbolic link), owned by root or by the user that started the
 * daemon, that only its owner can read or write (mode 0600 or 0400); the
 * same file goes to every host that shares the keys. It is checked and read
 * through one descriptor (master/secret-file.ts): no stat-then-read race.
 *
 * Keys: HKDF-SHA256(secret, salt "", info), 32 bytes, one per use of the
 * secret: KEY_WRAP_INFO for ticket keys, and another label for session
 * cache entries (cache/session-seal.ts), so that a blob of one kind never
 * opens as the other. The secret itself is zeroed once the key is derived.
 *
 * Sealed blob: version byte (1), 12-byte random IV, ciphertext, 16-byte tag.
 * The caller's associated data binds a blob to the place it is stored, so a
 * blob copied to another slot does not open.
 */

import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes, randomFillSync, type KeyObject } from "node:crypto";
import { msgFatal } from "../log/msg.js";
import { errorText } from "../log/errors.js";
import { readSecretFile } from "../master/secret-file.js";

export const KEY_WRAP_SECRET_LEN = 32;
export const KEY_WRAP_VERSION = 1;
export const KEY_WRAP_IV_LEN = 12;
export const KEY_WRAP_TAG_LEN = 16;
/** Bytes a sealed blob adds to its plaintext. */
export const KEY_WRAP_OVERHEAD = 1 + KEY_WRAP_IV_LEN + KEY_WRAP_TAG_LEN;
/** The HKDF label of the ticket-key wrapping key. */
export const KEY_WRAP_INFO = "tlsmgr-ts session ticket key wrap v1";

/** keyWrapSecretNew - 32 fresh random bytes. */
export function keyWrapSecretNew(random: (n: number) => Buffer = randomBytes): Buffer {
  return random(KEY_WRAP_SECRET_LEN);
}

/** keyWrapSecretText - the file content for a secret. */
export function keyWrapSecretText(secret: Buffer): string {
  return (
    "# tlsmgr-ts key_wrap_file: wraps the session ticket keys kept in a shared store.\n" +
    "# Keep it mode 0600; copy it unchanged, by a safe channel, to every host sharing the keys.\n" +
    secret.toString("base64") +
    "\n"
  );
}

/** keyWrapSecretParse - the secret in a file's text; a string result is what is wrong. */
export function keyWrapSecretParse(text: string): Buffer | string {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  if (lines.length === 0) return "no secret in it";
  if (lines.length > 1) return "more than one secret line in it";
  const line = lines[0]!;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(line)) return "the secret line is not base64";
  const secret = Buffer.from(line, "base64");
  if (secret.length !== KEY_WRAP_SECRET_LEN)
    return `the secret is ${secret.length} bytes, expected ${KEY_WRAP_SECRET_LEN}`;
  return secret;
}

/**
 * keyWrapSecretRead - the 32-byte secret in file PATH (start-up,
 * synchronous), read by master/secret-file.ts (one descriptor, root's or the
 * start-up user's file, mode 0600 or 0400, read with the start-up user's
 * ids). Fatal, naming `context` (e.g. the table file) and the file, when
 * it breaks those rules or is malformed. The caller zeroes the secret when
 * done with it.
 */
export function keyWrapSecretRead(path: string, context: string): Buffer {
  const where = `${context}: key_wrap_file ${path}`;
  let raw: Buffer;
  try {
    raw = readSecretFile(path);
  } catch (err) {
    return msgFatal(`${where}: ${errorText(err)}`);
  }
  const secret = keyWrapSecretParse(raw.toString("utf8"));
  raw.fill(0);
  if (typeof secret === "string") return msgFatal(`${where}: ${secret} (make one with: tlsmgr-postfix keygen FILE)`);
  return secret;
}

/**
 * keyWrapFileRead - the ticket-key wrapper for secret file PATH (see
 * keyWrapSecretRead for the checks, all fatal).
 */
export function keyWrapFileRead(path: string, context: string): KeyWrapper {
  const secret = keyWrapSecretRead(path, context);
  try {
    return new KeyWrapper(secret);
  } finally {
    secret.fill(0);
  }
}

/** KeyWrapper - seal and open blobs under the key derived from one secret. */
export class KeyWrapper {
  readonly #key: KeyObject;

  /** secret: the 32 bytes of key_wrap_file (not kept); info: the HKDF label of this use of it. */
  constructor(secret: Buffer, info: string = KEY_WRAP_INFO) {
    if (secret.length !== KEY_WRAP_SECRET_LEN) throw new RangeError(`key wrap secret length ${secret.length}`);
    const derived = Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), info, 32));
    this.#key = createSecretKey(derived); // a copy inside: the derived bytes are zeroed
    derived.fill(0);
  }

  /**
   * wrap - seal plain, bound to aad. The blob is written into one buffer (the
   * session cache seals every update: allocations are what it costs most).
   */
  wrap(plain: Buffer, aad: Buffer, random?: (n: number) => Buffer): Buffer {
    const iv = random ? random(KEY_WRAP_IV_LEN) : nonce();
    const c = createCipheriv("aes-256-gcm", this.#key, iv);
    c.setAAD(aad);
    const body = c.update(plain);
    const rest = c.final(); // empty for GCM
    const out = Buffer.allocUnsafe(KEY_WRAP_OVERHEAD + body.length + rest.length);
    out[0] = KEY_WRAP_VERSION;
    iv.copy(out, 1);
    body.copy(out, 1 + KEY_WRAP_IV_LEN);
    rest.copy(out, 1 + KEY_WRAP_IV_LEN + body.length);
    c.getAuthTag().copy(out, out.length - KEY_WRAP_TAG_LEN);
    return out;
  }

  /** unwrap - the plaintext, or undefined when the blob is malformed, altered, bound elsewhere or sealed with another secret. */
  unwrap(blob: Buffer, aad: Buffer): Buffer | undefined {
    if (blob.length < KEY_WRAP_OVERHEAD || blob[0] !== KEY_WRAP_VERSION) return undefined;
    const iv = blob.subarray(1, 1 + KEY_WRAP_IV_LEN);
    const tag = blob.subarray(blob.length - KEY_WRAP_TAG_LEN);
    const body = blob.subarray(1 + KEY_WRAP_IV_LEN, blob.length - KEY_WRAP_TAG_LEN);
    try {
      const d = createDecipheriv("aes-256-gcm", this.#key, iv);
      d.setAAD(aad);
      d.setAuthTag(tag);
      const plain = d.update(body);
      const rest = d.final(); // empty for GCM; throws when the tag does not match
      return rest.length === 0 ? plain : Buffer.concat([plain, rest]);
    } catch {
      return undefined;
    }
  }
}

/** IVs are cut from a buffer of random bytes filled NONCE_POOL at a time (one system call, not one per seal). */
const NONCE_POOL = 256;
const noncePool = Buffer.alloc(NONCE_POOL * KEY_WRAP_IV_LEN);
let nonceNext = NONCE_POOL;

/** nonce - 12 fresh random bytes: a view into the pool, to be used at once (wrap copies it before the next call). */
function nonce(): Buffer {
  if (nonceNext === NONCE_POOL) {
    randomFillSync(noncePool);
    nonceNext = 0;
  }
  const at = nonceNext++ * KEY_WRAP_IV_LEN;
  return noncePool.subarray(at, at + KEY_WRAP_IV_LEN);
}
