/**
 * session-seal.ts - session cache entries sealed for a shared store
 *                   (redis:): whoever can read the store learns no session,
 *                   whoever can write it cannot plant, alter or move one.
 * Owns: the key of the seal (derived from key_wrap_file with a label of its
 *       own), the associated data that binds a sealed value to its place
 *       (format version, cache type, key prefix, cache id), sealing and
 *       opening one value.
 * Not here: the secret file and AES-256-GCM itself (tickets/key-wrap.ts);
 *           the timestamp inside the sealed value and the expiry and
 *           future-time checks (cache/scache.ts); storage and what is done
 *           with a value that does not open (cache/backends/redis.ts).
 * See also: docs/security.md (Redis operator), NIST SP 800-38D, RFC 5869
 *
 * Sealed value: KeyWrapper's blob (version byte 1, 12-byte random nonce,
 * ciphertext, 16-byte tag) of what scache stores: the 8-byte time of the
 * update, then the session; so the time is sealed too. Random 96-bit
 * nonces are safe for 2^32 values per key (NIST SP 800-38D 8.3), far beyond
 * what a farm stores under one key_wrap_file.
 *
 * Associated data: "tlsmgr-ts session v1", the cache type, the key prefix
 * and the cache id (UTF-8), each after its length (4 bytes, big-endian), so
 * that no two places give the same bytes. A value copied under another id,
 * into another cache (smtp into smtpd) or under another key prefix (another
 * table) does not open; nor does one sealed under another key_wrap_file,
 * nor a ticket-key blob (another HKDF label).
 */

import { KeyWrapper, keyWrapSecretRead, KEY_WRAP_OVERHEAD } from "../tickets/key-wrap.js";

/** The HKDF label of the session seal: not the ticket-key wrap's (tickets/key-wrap.ts KEY_WRAP_INFO). */
export const SESSION_SEAL_INFO = "tlsmgr-ts session cache seal v1";
/** Bytes a sealed value adds to what scache stores. */
export const SESSION_SEAL_OVERHEAD = KEY_WRAP_OVERHEAD;
const AAD_TAG = "tlsmgr-ts session v1";

/** lengthPrefixed - the bytes after their length (4 bytes, big-endian). */
function lengthPrefixed(b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + b.length);
  out.writeUInt32BE(b.length, 0);
  b.copy(out, 4);
  return out;
}

/** SessionSeal - seal and open the values of one cache in one store. */
export class SessionSeal {
  readonly #wrap: KeyWrapper;
  /** The associated data up to the cache id. */
  readonly #aadHead: Buffer;

  /** secret: key_wrap_file's 32 bytes (not kept); cacheType: smtpd, smtp or lmtp; keyPrefix: the store's. */
  constructor(secret: Buffer, cacheType: string, keyPrefix: string) {
    this.#wrap = new KeyWrapper(secret, SESSION_SEAL_INFO);
    this.#aadHead = Buffer.concat([AAD_TAG, cacheType, keyPrefix].map((f) => lengthPrefixed(Buffer.from(f, "utf8"))));
  }

  /** #aad - the associated data of cache id `id`: the head, the id's length, the id (one buffer). */
  #aad(id: string): Buffer {
    const head = this.#aadHead.length;
    const out = Buffer.allocUnsafe(head + 4 + Buffer.byteLength(id, "utf8"));
    this.#aadHead.copy(out, 0);
    out.writeUInt32BE(out.length - head - 4, head);
    out.write(id, head + 4, "utf8");
    return out;
  }

  /** seal - the sealed form of value (scache's stored value) for cache id `id`. */
  seal(id: string, value: Buffer): Buffer {
    return this.#wrap.wrap(value, this.#aad(id));
  }

  /** open - the value sealed for `id`, or undefined when it is not a value this cache sealed for that id. */
  open(id: string, sealed: Buffer): Buffer | undefined {
    return this.#wrap.unwrap(sealed, this.#aad(id));
  }
}

/**
 * sessionSealOpen - the seal of one cache from key_wrap_file PATH (start-up;
 * fatal as tickets/key-wrap.ts keyWrapSecretRead, naming `context`).
 */
export function sessionSealOpen(path: string, context: string, cacheType: string, keyPrefix: string): SessionSeal {
  const secret = keyWrapSecretRead(path, context);
  try {
    return new SessionSeal(secret, cacheType, keyPrefix);
  } finally {
    secret.fill(0);
  }
}
