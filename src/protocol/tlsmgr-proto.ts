/**
 * tlsmgr-proto.ts - the tlsmgr wire names and status codes.
 * Owns: request names, attribute names, status integers, the trigger byte,
 *       the ticket key record's fixed fields. Postfix's names, in Postfix's spelling.
 * Not here: the encoding (protocol/attr0.ts), request semantics (server/handlers.ts).
 * See also: postfix/src/tls/tls_mgr.h, postfix/src/tls/tls.h (TLS_TICKET_*)
 */

export const TLS_MGR_SERVICE = "tlsmgr";
export const TLS_MGR_CLASS = "private";
export const TLS_MGR_PROTOCOL = "tlsmgr_protocol";

export const MAIL_ATTR_PROTO = "protocol";
export const TLS_MGR_ATTR_REQ = "request";
export const TLS_MGR_REQ_SEED = "seed";
export const TLS_MGR_REQ_POLICY = "policy";
export const TLS_MGR_REQ_LOOKUP = "lookup";
export const TLS_MGR_REQ_UPDATE = "update";
export const TLS_MGR_REQ_DELETE = "delete";
export const TLS_MGR_REQ_TKTKEY = "tktkey";
/** This project's extension (Postfix's clients never send it): the daemon's statistics (stats/stats-request.ts). */
export const TLS_MGR_REQ_STATS = "stats";

export const TLS_MGR_ATTR_CACHABLE = "cachable";
export const TLS_MGR_ATTR_CACHE_TYPE = "cache_type";
export const TLS_MGR_ATTR_SEED = "seed";
export const TLS_MGR_ATTR_CACHE_ID = "cache_id";
export const TLS_MGR_ATTR_SESSION = "session";
export const TLS_MGR_ATTR_SIZE = "size";
export const TLS_MGR_ATTR_STATUS = "status";
export const TLS_MGR_ATTR_KEYNAME = "keyname";
export const TLS_MGR_ATTR_KEYBUF = "keybuf";
export const TLS_MGR_ATTR_SESSTOUT = "timeout";
/** The stats reply's document: JSON text (stats/stats-snapshot.ts). */
export const TLS_MGR_ATTR_STATS = "stats";

export const TLS_MGR_STAT_OK = 0;
export const TLS_MGR_STAT_ERR = -1;
export const TLS_MGR_STAT_FAIL = -2;

/** The master(8) wakeup trigger: 'W' then NUL, at most 2 bytes. */
export const TRIGGER_REQ_WAKEUP = 0x57;

/** The three session caches, by their wire label. */
export const CACHE_TYPES = ["smtpd", "smtp", "lmtp"] as const;
export type CacheType = (typeof CACHE_TYPES)[number];

export function isCacheType(s: string): s is CacheType {
  return s === "smtpd" || s === "smtp" || s === "lmtp";
}

/**
 * RFC 5077 ticket key record (TLS_TICKET_KEY): these three fields, then a
 * native time_t; its size is the platform's (tickets/key-record-layout.ts).
 */
export const TLS_TICKET_NAMELEN = 16;
export const TLS_TICKET_KEYLEN = 32;
export const TLS_TICKET_MACLEN = 32;
