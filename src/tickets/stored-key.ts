/**
 * stored-key.ts - the portable form of a session-ticket key in key stores
 *                 (file and Redis): the same on every host, whatever its
 *                 byte order.
 * Owns: name[16], AES key[32], HMAC key[32], tout as a big-endian signed
 *       64-bit count of seconds: 88 bytes.
 * Not here: the wire record smtpd reads (native-endian tout:
 *           ticketKeyRecord in tickets/ticket-keys.ts); wrapping (key-wrap.ts).
 * See also: tickets/file-keys.ts, tickets/redis-keys.ts
 */

import { TLS_TICKET_KEYLEN, TLS_TICKET_MACLEN, TLS_TICKET_NAMELEN } from "../protocol/tlsmgr-proto.js";
import type { TicketKey } from "./ticket-keys.js";

const AT_BITS = TLS_TICKET_NAMELEN;
const AT_HMAC = AT_BITS + TLS_TICKET_KEYLEN;
const AT_TOUT = AT_HMAC + TLS_TICKET_MACLEN;
export const STORED_KEY_LEN = AT_TOUT + 8;

/** storedKeyEncode - the 88 portable bytes of a key. */
export function storedKeyEncode(key: TicketKey, out = Buffer.alloc(STORED_KEY_LEN), at = 0): Buffer {
  key.name.copy(out, at);
  key.bits.copy(out, at + AT_BITS);
  key.hmac.copy(out, at + AT_HMAC);
  out.writeBigInt64BE(BigInt(key.tout), at + AT_TOUT);
  return out;
}

/** storedKeyDecode - the key in 88 bytes at `at`; undefined when too short. */
export function storedKeyDecode(buf: Buffer, at = 0): TicketKey | undefined {
  if (buf.length - at < STORED_KEY_LEN) return undefined;
  return {
    name: Buffer.from(buf.subarray(at, at + AT_BITS)),
    bits: Buffer.from(buf.subarray(at + AT_BITS, at + AT_HMAC)),
    hmac: Buffer.from(buf.subarray(at + AT_HMAC, at + AT_TOUT)),
    tout: Number(buf.readBigInt64BE(at + AT_TOUT)),
  };
}
