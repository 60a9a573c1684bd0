/**
 * tls-log-mask.ts - *_tls_loglevel values read as Postfix reads them.
 * Owns: Postfix 3.11's tls_log_table (numbers 0-9 and the known words, any
 *       case, separated by commas or white space), the feature bits, and the
 *       rule for an unknown word: a warning naming parameter, word and value,
 *       and the whole value counts as 0 (name_mask_opt with NAME_MASK_RETURN);
 *       never fatal.
 * Not here: what tlsmgr does with the mask (cache/cache-set.ts: TLS_LOG_CACHE
 *           turns on the cache-operation log lines).
 * See also: postfix/src/tls/tls_misc.c (tls_log_table, tls_log_mask),
 *           postfix/src/util/name_mask.c (name_mask_delim_opt), tls/tls.h (TLS_LOG_*)
 *
 * Releases differ only by words added over time: "dane" came after 3.5, and
 * "trace" comes with 3.12 snapshots. Known to this table or not, no word stops
 * the daemon: an unknown one is a warning (and, as in Postfix, logging off).
 */

import { msgWarn } from "../log/msg.js";

export const TLS_LOG_NONE = 1 << 0;
export const TLS_LOG_SUMMARY = 1 << 1;
export const TLS_LOG_UNTRUSTED = 1 << 2;
export const TLS_LOG_PEERCERT = 1 << 3;
export const TLS_LOG_CERTMATCH = 1 << 4;
export const TLS_LOG_VERBOSE = 1 << 5;
export const TLS_LOG_CACHE = 1 << 6;
export const TLS_LOG_DEBUG = 1 << 7;
export const TLS_LOG_TLSPKTS = 1 << 8;
export const TLS_LOG_ALLPKTS = 1 << 9;
export const TLS_LOG_DANE = 1 << 10;

const TLS_LOG_0 = TLS_LOG_NONE;
const TLS_LOG_1 = TLS_LOG_SUMMARY;
const TLS_LOG_2 = TLS_LOG_1 | TLS_LOG_VERBOSE | TLS_LOG_CACHE | TLS_LOG_DEBUG;
const TLS_LOG_3 = TLS_LOG_2 | TLS_LOG_TLSPKTS;
const TLS_LOG_4 = TLS_LOG_3 | TLS_LOG_ALLPKTS;

/** tls_log_table of Postfix 3.11, lowercase names. */
const TLS_LOG_TABLE: ReadonlyMap<string, number> = new Map([
  ["0", TLS_LOG_0], ["none", TLS_LOG_NONE],
  ["1", TLS_LOG_1], ["routine", TLS_LOG_1],
  ["2", TLS_LOG_2], ["debug", TLS_LOG_2],
  ["3", TLS_LOG_3], ["ssl-expert", TLS_LOG_3],
  ["4", TLS_LOG_4], ["ssl-developer", TLS_LOG_4],
  ["5", TLS_LOG_4], ["6", TLS_LOG_4], ["7", TLS_LOG_4], ["8", TLS_LOG_4], ["9", TLS_LOG_4],
  ["summary", TLS_LOG_SUMMARY], ["untrusted", TLS_LOG_UNTRUSTED], ["peercert", TLS_LOG_PEERCERT],
  ["certmatch", TLS_LOG_CERTMATCH], ["verbose", TLS_LOG_VERBOSE], ["cache", TLS_LOG_CACHE],
  ["dane", TLS_LOG_DANE], ["ssl-debug", TLS_LOG_DEBUG],
  ["ssl-handshake-packet-dump", TLS_LOG_TLSPKTS], ["ssl-session-packet-dump", TLS_LOG_TLSPKTS | TLS_LOG_ALLPKTS],
]);

/** NAME_MASK_DEFAULT_DELIM: ", \t\r\n". */
const DELIM = /[, \t\r\n]+/;

/**
 * tlsLogMask - tls_log_mask(param, value): the OR of the words' feature bits;
 * an unknown word logs `unknown PARAM value "WORD" in "VALUE"` and gives 0.
 */
export function tlsLogMask(param: string, value: string | number): number {
  const text = String(value);
  let mask = 0;
  for (const word of text.split(DELIM)) {
    if (word === "") continue;
    const bits = TLS_LOG_TABLE.get(word.toLowerCase());
    if (bits === undefined) {
      msgWarn(`unknown ${param} value "${word}" in "${text}"`);
      return 0;
    }
    mask |= bits;
  }
  return mask;
}
