/**
 * key-record-layout.ts - the size and shape of the ticket key record (keybuf)
 *                        that the client's TLS_TICKET_KEY has on this platform.
 * Owns: deciding sizeof(TLS_TICKET_KEY) = 80 bytes of name, AES and HMAC keys
 *       plus a native time_t (88 bytes where time_t has 64 bits, 84 where it
 *       has 32), and where tout sits: from the POSIX addon, which compiles the
 *       same struct with this machine's C compiler (as a Postfix built here
 *       is compiled), else from a table of Node's process.arch.
 * Not here: writing and reading records (tickets/ticket-keys.ts); the portable
 *           stored form (tickets/stored-key.ts, always 64-bit).
 * See also: postfix/src/tls/tls_scache.h (TLS_TICKET_KEY), src/tls/tls_mgr.c
 *           (request_scache_key: a keybuf of another size is refused), native/posix.c
 *
 * smtpd silently ignores a keybuf whose length is not sizeof(TLS_TICKET_KEY),
 * so a wrong size means no session tickets, not an error message.
 * The table: every 64-bit Linux ABI has a 64-bit time_t; 32-bit ones have a
 * 32-bit time_t unless built with _TIME_BITS=64 (Debian 13's armel/armhf
 * packages are): there the addon's answer is the one to trust, and a Postfix
 * package built with other flags than the local compiler's defaults can differ.
 */

import { TLS_TICKET_KEYLEN, TLS_TICKET_MACLEN, TLS_TICKET_NAMELEN } from "../protocol/tlsmgr-proto.js";
import { nativeTicketKeyLayout } from "../native/posix.js";

/** Where and how big tout is, and the record's whole size. */
export interface TicketKeyLayout {
  /** sizeof(TLS_TICKET_KEY): the keybuf length. */
  size: number;
  /** sizeof(time_t): 4 or 8. */
  timeSize: 4 | 8;
  /** offsetof(TLS_TICKET_KEY, tout). */
  toutOffset: number;
  /** How it was found, for diagnostics and tests. */
  source: "addon" | "arch";
}

const FIXED_LEN = TLS_TICKET_NAMELEN + TLS_TICKET_KEYLEN + TLS_TICKET_MACLEN; // 80

/** Node's 32-bit process.arch values (the rest are 64-bit). */
const ARCH_32 = new Set(["arm", "ia32", "mips", "mipsel", "ppc", "s390"]);

/** layoutForTimeSize - the record with a time_t of that many bytes (80 is a multiple of its alignment). */
export function layoutForTimeSize(timeSize: 4 | 8, source: TicketKeyLayout["source"]): TicketKeyLayout {
  return { size: FIXED_LEN + timeSize, timeSize, toutOffset: FIXED_LEN, source };
}

/** archTicketKeyLayout - the table's answer for a process.arch value. */
export function archTicketKeyLayout(arch: string): TicketKeyLayout {
  return layoutForTimeSize(ARCH_32.has(arch) ? 4 : 8, "arch");
}

let cached: TicketKeyLayout | undefined;

/** ticketKeyLayout - this platform's layout: the addon's sizeof when it loads, else the arch table. */
export function ticketKeyLayout(): TicketKeyLayout {
  if (cached !== undefined) return cached;
  const native = nativeTicketKeyLayout();
  if (native !== undefined && (native.timeSize === 4 || native.timeSize === 8)
    && native.toutOffset >= FIXED_LEN && native.size >= native.toutOffset + native.timeSize) {
    cached = { size: native.size, timeSize: native.timeSize, toutOffset: native.toutOffset, source: "addon" };
  } else {
    cached = archTicketKeyLayout(process.arch);
  }
  return cached;
}
