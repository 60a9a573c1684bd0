/**
 * handlers.ts - what each tlsmgr request does and what it answers.
 * Owns: dispatch on the request name, the strict shape of each request, the
 *       replies with Postfix's attributes and status integers, and the
 *       warnings for bad requests. A reply always carries every attribute of
 *       its request's reply, with empty data and zeros on failure.
 * Not here: bytes and framing (protocol/attr0.ts), connections
 *           (server/connection.ts), storage (cache/: the handlers reach the
 *           caches through cache-set.ts SessionCaches), keys (tickets/),
 *           the PRNG pool (prng/pool.ts), the stats request and the request
 *           counters (stats/stats-request.ts, stats/counters.ts: each reply is
 *           counted by its kind and status on its way out).
 * See also: postfix/src/tlsmgr/tlsmgr.c (tlsmgr_service)
 */

import type { Attr0Attr } from "../protocol/attr0.js";
import { attr0Encode } from "../protocol/attr0.js";
import type { Attr0Spec } from "../protocol/attr0-scan.js";
import { attr0ScanStrict } from "../protocol/attr0-scan.js";
import {
  isCacheType,
  MAIL_ATTR_PROTO,
  TLS_MGR_ATTR_CACHABLE,
  TLS_MGR_ATTR_CACHE_ID,
  TLS_MGR_ATTR_CACHE_TYPE,
  TLS_MGR_ATTR_KEYBUF,
  TLS_MGR_ATTR_KEYNAME,
  TLS_MGR_ATTR_REQ,
  TLS_MGR_ATTR_SEED,
  TLS_MGR_ATTR_SESSION,
  TLS_MGR_ATTR_SESSTOUT,
  TLS_MGR_ATTR_SIZE,
  TLS_MGR_ATTR_STATUS,
  TLS_MGR_PROTOCOL,
  TLS_MGR_REQ_DELETE,
  TLS_MGR_REQ_LOOKUP,
  TLS_MGR_REQ_POLICY,
  TLS_MGR_REQ_SEED,
  TLS_MGR_REQ_STATS,
  TLS_MGR_REQ_TKTKEY,
  TLS_MGR_REQ_UPDATE,
  TLS_MGR_STAT_ERR,
  TLS_MGR_STAT_FAIL,
  TLS_MGR_STAT_OK,
  TLS_TICKET_NAMELEN,
} from "../protocol/tlsmgr-proto.js";
import type { MaybePromise } from "../cache/backend.js";
import type { SessionCaches } from "../cache/cache-set.js";
import type { SessionCacheOps } from "../cache/scache.js";
import type { TicketKeySource } from "../tickets/ticket-keys.js";
import { ticketKeyRecord } from "../tickets/ticket-keys.js";
import { msgWarn, printable } from "../log/msg.js";
import {
  REQ_DELETE, REQ_LOOKUP, REQ_OTHER, REQ_POLICY, REQ_SEED, REQ_STATS, REQ_TKTKEY, REQ_UPDATE, RequestCounters,
} from "../stats/counters.js";
import { handleStats } from "../stats/stats-request.js";
import type { StatsSources } from "../stats/stats-view.js";

/** Where seed bytes come from (prng/pool.ts PrngPool). */
export interface SeedSource {
  /** n fresh bytes, 1 <= n <= 255. */
  generate(n: number): Buffer;
}

/**
 * What the handlers serve from, opened once at start-up (main.ts, tlsmgr's
 * pre-init): the session caches (a cache of a type, or undefined when it is
 * not enabled, and each type's sanitised timeout for the policy reply and the
 * tktkey rule), the ticket keys, and the PRNG pool.
 */
export interface TlsmgrState {
  caches: SessionCaches;
  tickets: TicketKeySource;
  prng: SeedSource;
  /** What the stats request reports, the request counters among it (main.ts); without it nothing is counted. */
  stats?: StatsSources;
}

/** Counts nobody reads: the replies of a state without statistics pass through these. */
const UNREAD = new RequestCounters();

/** A reply: ready-made attr0 text, or a promise of it (cache and key stores may be asynchronous). */
export type Reply = string | Promise<string>;

const EMPTY = Buffer.alloc(0);

/** serverAnnouncement - the list a server sends first on every connection. */
export const SERVER_ANNOUNCEMENT = attr0Encode([[MAIL_ATTR_PROTO, TLS_MGR_PROTOCOL]]);

const STATUS_FAIL_ONLY = attr0Encode([[TLS_MGR_ATTR_STATUS, TLS_MGR_STAT_FAIL]]);

const SPEC_SEED: Attr0Spec = [[TLS_MGR_ATTR_SIZE, "int"]];
const SPEC_POLICY: Attr0Spec = [[TLS_MGR_ATTR_CACHE_TYPE, "str"]];
const SPEC_LOOKUP: Attr0Spec = [
  [TLS_MGR_ATTR_CACHE_TYPE, "str"],
  [TLS_MGR_ATTR_CACHE_ID, "str"],
];
const SPEC_UPDATE: Attr0Spec = [
  [TLS_MGR_ATTR_CACHE_TYPE, "str"],
  [TLS_MGR_ATTR_CACHE_ID, "str"],
  [TLS_MGR_ATTR_SESSION, "data"],
];
const SPEC_TKTKEY: Attr0Spec = [[TLS_MGR_ATTR_KEYNAME, "data"]];

const seedReply = (status: number, seed: Buffer) =>
  attr0Encode([
    [TLS_MGR_ATTR_STATUS, status],
    [TLS_MGR_ATTR_SEED, seed],
  ]);
const policyReply = (status: number, cachable: number, timeout: number) =>
  attr0Encode([
    [TLS_MGR_ATTR_STATUS, status],
    [TLS_MGR_ATTR_CACHABLE, cachable],
    [TLS_MGR_ATTR_SESSTOUT, timeout],
  ]);
const lookupReply = (status: number, session: Buffer) =>
  attr0Encode([
    [TLS_MGR_ATTR_STATUS, status],
    [TLS_MGR_ATTR_SESSION, session],
  ]);
const statusReply = (status: number) => attr0Encode([[TLS_MGR_ATTR_STATUS, status]]);
const tktkeyReply = (status: number, keybuf: Buffer) =>
  attr0Encode([
    [TLS_MGR_ATTR_STATUS, status],
    [TLS_MGR_ATTR_KEYBUF, keybuf],
  ]);

/** failReplyFor - the -2 reply shaped for a request name (used when a list cannot be read whole). */
export function failReplyFor(request: string | undefined): string {
  switch (request) {
    case TLS_MGR_REQ_SEED:
      return seedReply(TLS_MGR_STAT_FAIL, EMPTY);
    case TLS_MGR_REQ_POLICY:
      return policyReply(TLS_MGR_STAT_FAIL, 0, 0);
    case TLS_MGR_REQ_LOOKUP:
      return lookupReply(TLS_MGR_STAT_FAIL, EMPTY);
    case TLS_MGR_REQ_UPDATE:
    case TLS_MGR_REQ_DELETE:
      return statusReply(TLS_MGR_STAT_FAIL);
    case TLS_MGR_REQ_TKTKEY:
      return tktkeyReply(TLS_MGR_STAT_FAIL, EMPTY);
    default:
      return STATUS_FAIL_ONLY;
  }
}

/** Where a request's warnings go: msgWarn, or the client's rate-limited warnings (server/client-warnings.ts). */
export type RequestWarn = (text: string) => void;

/**
 * handleRequest - serve one complete attribute list. `peer` names the
 * client in warnings, which go to `warn`.
 */
export function handleRequest(state: TlsmgrState, attrs: Attr0Attr[], peer: string, warn: RequestWarn = msgWarn): Reply {
  const counted = state.stats?.requests ?? UNREAD;
  const first = attrs[0];
  if (first === undefined) {
    warn(`empty request from ${peer}`);
    return counted.tally(REQ_OTHER, STATUS_FAIL_ONLY);
  }
  if (first.name !== TLS_MGR_ATTR_REQ) {
    warn(`unexpected attribute ${printable(first.name)} from ${peer} (expecting: ${TLS_MGR_ATTR_REQ})`);
    return counted.tally(REQ_OTHER, STATUS_FAIL_ONLY);
  }
  const request = first.value.toString("latin1");
  switch (request) {
    case TLS_MGR_REQ_LOOKUP:
      return counted.tally(REQ_LOOKUP, handleLookup(state, attrs, peer, warn));
    case TLS_MGR_REQ_UPDATE:
      return counted.tally(REQ_UPDATE, handleUpdate(state, attrs, peer, warn));
    case TLS_MGR_REQ_DELETE:
      return counted.tally(REQ_DELETE, handleDelete(state, attrs, peer, warn));
    case TLS_MGR_REQ_TKTKEY:
      return counted.tally(REQ_TKTKEY, handleTktkey(state, attrs, peer, warn));
    case TLS_MGR_REQ_SEED:
      return counted.tally(REQ_SEED, handleSeed(state, attrs, peer, warn));
    case TLS_MGR_REQ_POLICY:
      return counted.tally(REQ_POLICY, handlePolicy(state, attrs, peer, warn));
    case TLS_MGR_REQ_STATS:
      return counted.tally(REQ_STATS, handleStats(state.stats, attrs, peer, warn));
    default:
      warn(`unknown request "${printable(request)}" from ${peer}`);
      return counted.tally(REQ_OTHER, STATUS_FAIL_ONLY);
  }
}

/** cacheFor - the enabled cache of a type; warns on a bogus type. null = bogus, undefined = disabled. */
function cacheFor(state: TlsmgrState, type: string, request: string, warn: RequestWarn): SessionCacheOps | undefined | null {
  if (!isCacheType(type)) {
    warn(`bogus cache type "${printable(type)}" in "${request}" request`);
    return null;
  }
  return state.caches.get(type);
}

const lookupAnswer = (session: Buffer | undefined): string =>
  session === undefined ? lookupReply(TLS_MGR_STAT_ERR, EMPTY) : lookupReply(TLS_MGR_STAT_OK, session);

/** The two replies an update or delete gives once it ran: built once, not per request. */
const STATUS_OK_REPLY = statusReply(TLS_MGR_STAT_OK);
const STATUS_ERR_REPLY = statusReply(TLS_MGR_STAT_ERR);
const statusFromOk = (ok: boolean): string => (ok ? STATUS_OK_REPLY : STATUS_ERR_REPLY);
const statusFromError = (): string => STATUS_ERR_REPLY;

/** statusAnswer - the status reply of an update or delete, now or when it settles. */
function statusAnswer(done: MaybePromise<boolean>): Reply {
  return done instanceof Promise ? done.then(statusFromOk, statusFromError) : statusFromOk(done);
}

function handleLookup(state: TlsmgrState, attrs: Attr0Attr[], peer: string, warn: RequestWarn): Reply {
  const scan = attr0ScanStrict(attrs, 1, SPEC_LOOKUP, peer);
  if (scan.warning !== undefined) warn(scan.warning);
  if (!scan.ok) return lookupReply(TLS_MGR_STAT_FAIL, EMPTY);
  const cache = cacheFor(state, scan.values[0] as string, TLS_MGR_REQ_LOOKUP, warn);
  if (!cache) return lookupReply(TLS_MGR_STAT_FAIL, EMPTY);
  const found = cache.lookup(scan.values[1] as string);
  if (found instanceof Promise) return found.then(lookupAnswer, () => lookupReply(TLS_MGR_STAT_ERR, EMPTY));
  return lookupAnswer(found);
}

function handleUpdate(state: TlsmgrState, attrs: Attr0Attr[], peer: string, warn: RequestWarn): Reply {
  const scan = attr0ScanStrict(attrs, 1, SPEC_UPDATE, peer);
  if (scan.warning !== undefined) warn(scan.warning);
  if (!scan.ok) return statusReply(TLS_MGR_STAT_FAIL);
  const cache = cacheFor(state, scan.values[0] as string, TLS_MGR_REQ_UPDATE, warn);
  if (!cache) return statusReply(TLS_MGR_STAT_FAIL);
  return statusAnswer(cache.update(scan.values[1] as string, scan.values[2] as Buffer));
}

function handleDelete(state: TlsmgrState, attrs: Attr0Attr[], peer: string, warn: RequestWarn): Reply {
  const scan = attr0ScanStrict(attrs, 1, SPEC_LOOKUP, peer);
  if (scan.warning !== undefined) warn(scan.warning);
  if (!scan.ok) return statusReply(TLS_MGR_STAT_FAIL);
  const cache = cacheFor(state, scan.values[0] as string, TLS_MGR_REQ_DELETE, warn);
  if (!cache) return statusReply(TLS_MGR_STAT_FAIL);
  return statusAnswer(cache.delete(scan.values[1] as string));
}

function handleTktkey(state: TlsmgrState, attrs: Attr0Attr[], peer: string, warn: RequestWarn): Reply {
  const scan = attr0ScanStrict(attrs, 1, SPEC_TKTKEY, peer);
  if (scan.warning !== undefined) warn(scan.warning);
  if (!scan.ok) return tktkeyReply(TLS_MGR_STAT_FAIL, EMPTY);
  const keyname = scan.values[0] as Buffer;
  // As Postfix 3.5-3.11 (tlsmgr.c): a name of a bad length, and tickets off,
  // get an empty keybuf; a name not found is echoed back (3.12 snapshots also
  // echo a bad-length name). Clients read keybuf only with status 0.
  if (keyname.length !== 0 && keyname.length !== TLS_TICKET_NAMELEN) {
    warn(`invalid session ticket key name length: ${keyname.length}`);
    return tktkeyReply(TLS_MGR_STAT_FAIL, EMPTY);
  }
  const timeout = state.caches.timeout("smtpd");
  if (timeout <= 0) return tktkeyReply(TLS_MGR_STAT_ERR, EMPTY);
  const answer = (key: Awaited<ReturnType<TicketKeySource["tktkey"]>>) =>
    key === undefined ? tktkeyReply(TLS_MGR_STAT_ERR, keyname) : tktkeyReply(TLS_MGR_STAT_OK, ticketKeyRecord(key));
  let found;
  try {
    found = state.tickets.tktkey(keyname.length === 0 ? undefined : keyname, timeout);
  } catch {
    return tktkeyReply(TLS_MGR_STAT_ERR, keyname);
  }
  if (found instanceof Promise) return found.then(answer, () => tktkeyReply(TLS_MGR_STAT_ERR, keyname));
  return answer(found);
}

function handleSeed(state: TlsmgrState, attrs: Attr0Attr[], peer: string, warn: RequestWarn): Reply {
  const scan = attr0ScanStrict(attrs, 1, SPEC_SEED, peer);
  if (scan.warning !== undefined) warn(scan.warning);
  if (!scan.ok) return seedReply(TLS_MGR_STAT_FAIL, EMPTY);
  const len = scan.values[0] as number;
  if (len <= 0 || len > 255) {
    warn(`bogus seed length "${len}" in "${TLS_MGR_REQ_SEED}" request`);
    return seedReply(TLS_MGR_STAT_FAIL, EMPTY);
  }
  let bytes: Buffer;
  try {
    bytes = state.prng.generate(len);
  } catch {
    return seedReply(TLS_MGR_STAT_ERR, EMPTY);
  }
  return seedReply(TLS_MGR_STAT_OK, bytes);
}

function handlePolicy(state: TlsmgrState, attrs: Attr0Attr[], peer: string, warn: RequestWarn): Reply {
  const scan = attr0ScanStrict(attrs, 1, SPEC_POLICY, peer);
  if (scan.warning !== undefined) warn(scan.warning);
  if (!scan.ok) return policyReply(TLS_MGR_STAT_FAIL, 0, 0);
  const type = scan.values[0] as string;
  if (!isCacheType(type)) {
    warn(`bogus cache type "${printable(type)}" in "${TLS_MGR_REQ_POLICY}" request`);
    return policyReply(TLS_MGR_STAT_FAIL, 0, 0);
  }
  return policyReply(TLS_MGR_STAT_OK, state.caches.get(type) ? 1 : 0, state.caches.timeout(type));
}
