/**
 * wire.ts - the load generator's own lean attr0 request builder and reply
 *           scanner: no objects per attribute, no base64 decoding of replies.
 * Owns: the request texts (written with latin1 encoding), finding the end of
 *       a reply list in a byte buffer, and reading its leading status.
 * Not here: the daemon's codec (src/protocol/attr0.ts), which the generator
 *           deliberately does not share; the general client (src/client/).
 * See also: postfix/src/tls/tls_mgr.c (the requests), src/protocol/tlsmgr-proto.ts,
 *           bench/test/wire.test.ts
 */

/** lookupRequest - request=lookup cache_type cache_id */
export function lookupRequest(type: string, id: string): string {
  return "request\0lookup\0cache_type\0" + type + "\0cache_id\0" + id + "\0\0";
}

/** updateRequest - request=update cache_type cache_id session (base64 text) */
export function updateRequest(type: string, id: string, sessionB64: string): string {
  return "request\0update\0cache_type\0" + type + "\0cache_id\0" + id + "\0session\0" + sessionB64 + "\0\0";
}

/** deleteRequest - request=delete cache_type cache_id */
export function deleteRequest(type: string, id: string): string {
  return "request\0delete\0cache_type\0" + type + "\0cache_id\0" + id + "\0\0";
}

/** tktkeyRequest - request=tktkey keyname (base64 text; empty = the current key) */
export function tktkeyRequest(keynameB64: string): string {
  return "request\0tktkey\0keyname\0" + keynameB64 + "\0\0";
}

/** seedRequest - request=seed size */
export function seedRequest(size: number): string {
  return "request\0seed\0size\0" + String(size) + "\0\0";
}

/** policyRequest - request=policy cache_type */
export function policyRequest(type: string): string {
  return "request\0policy\0cache_type\0" + type + "\0\0";
}

/**
 * replyEnd - the offset just past the first complete attr0 list that starts
 * at `from` in buf[from, len), or -1 when the list is not complete yet.
 */
export function replyEnd(buf: Uint8Array, from: number, len: number = buf.length): number {
  let pos = from;
  for (;;) {
    if (pos >= len) return -1;
    if (buf[pos] === 0) return pos + 1; // empty name: end of list
    const nameEnd = buf.indexOf(0, pos);
    if (nameEnd < 0 || nameEnd >= len) return -1;
    const valEnd = buf.indexOf(0, nameEnd + 1);
    if (valEnd < 0 || valEnd >= len) return -1;
    pos = valEnd + 1;
  }
}

const STATUS_PREFIX = [0x73, 0x74, 0x61, 0x74, 0x75, 0x73, 0x00]; // "status" NUL

/** Returned by replyStatus when the list does not begin with a readable status. */
export const STATUS_UNREADABLE = -1000;

/**
 * replyStatus - the signed status of a reply list starting at `from` (its
 * first attribute must be `status`); 4294967295 reads as -1 and 4294967294
 * as -2, as Postfix writes them. STATUS_UNREADABLE when absent or malformed.
 */
export function replyStatus(buf: Uint8Array, from: number): number {
  for (let i = 0; i < STATUS_PREFIX.length; i++) if (buf[from + i] !== STATUS_PREFIX[i]) return STATUS_UNREADABLE;
  let pos = from + STATUS_PREFIX.length;
  let n = 0;
  let digits = 0;
  let neg = false;
  if (buf[pos] === 0x2d) {
    neg = true;
    pos++;
  }
  for (;;) {
    const c = buf[pos++];
    if (c === 0) break;
    if (c === undefined || c < 0x30 || c > 0x39 || digits >= 10) return STATUS_UNREADABLE;
    n = n * 10 + (c - 0x30);
    digits++;
  }
  if (digits === 0) return STATUS_UNREADABLE;
  if (neg) return -n;
  return n >= 2 ** 31 ? n - 2 ** 32 : n;
}

/**
 * replyAttr - the latin1 text of attribute `name` in the reply list starting
 * at `from`, or undefined when the list lacks it (used off the hot path).
 */
export function replyAttr(buf: Uint8Array, from: number, name: string): string | undefined {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = from;
  for (;;) {
    if (pos >= b.length || b[pos] === 0) return undefined;
    const nameEnd = b.indexOf(0, pos);
    if (nameEnd < 0) return undefined;
    const valEnd = b.indexOf(0, nameEnd + 1);
    if (valEnd < 0) return undefined;
    if (b.toString("latin1", pos, nameEnd) === name) return b.toString("latin1", nameEnd + 1, valEnd);
    pos = valEnd + 1;
  }
}

/** First byte of a session value that carries its writer's host index in the second (workload.ts makeSessionPool). */
export const SESSION_TAG_MARK = 0xb7;

const SESSION_PREFIX = [0x73, 0x65, 0x73, 0x73, 0x69, 0x6f, 0x6e, 0x00]; // "session" NUL
const B64: Record<number, number> = {};
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".split("").forEach((c, i) => { B64[c.charCodeAt(0)] = i; });

/**
 * replySessionTag - the writer host index of the session in a lookup reply
 * starting at `from` (status, then session as base64), read from the first
 * four base64 characters; -1 when the reply has no session or it is untagged.
 */
export function replySessionTag(buf: Uint8Array, from: number): number {
  let pos = buf.indexOf(0, from);
  if (pos < 0) return -1;
  pos = buf.indexOf(0, pos + 1); // end of the status value
  if (pos < 0) return -1;
  pos++;
  for (let i = 0; i < SESSION_PREFIX.length; i++) if (buf[pos + i] !== SESSION_PREFIX[i]) return -1;
  pos += SESSION_PREFIX.length;
  const c = [0, 1, 2].map((i) => B64[buf[pos + i] ?? -1]);
  if (c.some((v) => v === undefined)) return -1;
  const b0 = (c[0]! << 2) | (c[1]! >> 4);
  const b1 = ((c[1]! & 15) << 4) | (c[2]! >> 2);
  return b0 === SESSION_TAG_MARK ? b1 : -1;
}
