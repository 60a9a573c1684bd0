/**
 * stats-request.ts - the "stats" request: this project's extension of the
 *                    tlsmgr protocol, on the same socket, for tlsmgr-client.
 * Owns: its shape and its reply. Request: request=stats, nothing else (an
 *       extra attribute is warned about and the request served, as for the
 *       others). Reply: status=0 and stats=<the JSON document of
 *       stats/stats-snapshot.ts> as a string attribute; status=-1 and
 *       stats={} when the daemon keeps no statistics.
 * Not here: the document (stats/stats-snapshot.ts); dispatch (server/handlers.ts).
 * See also: man/tlsmgr.8 (STATISTICS), src/client/tlsmgr-client.ts stats()
 *
 * Why one JSON attribute rather than one attribute per counter: the
 * document is nested (per cache, per request kind, histograms), grows with
 * new counters without a protocol change, and stays far below the clients'
 * attribute count limits. JSON text has no NUL, so attr0 carries it as it is.
 * Postfix's clients never send this request; the socket's 0700 private/
 * directory limits it to root and mail_owner, as every other request.
 */

import type { Attr0Attr } from "../protocol/attr0.js";
import { attr0Encode } from "../protocol/attr0.js";
import { attr0ScanStrict } from "../protocol/attr0-scan.js";
import { TLS_MGR_ATTR_STATS, TLS_MGR_ATTR_STATUS, TLS_MGR_STAT_ERR, TLS_MGR_STAT_OK } from "../protocol/tlsmgr-proto.js";
import { msgWarn } from "../log/msg.js";
import { lmdbCounters, redisCounters } from "./counters.js";
import { statsSnapshot } from "./stats-snapshot.js";
import type { StatsSources } from "./stats-view.js";

/** statsReply - the reply list: status and the document (its UTF-8 bytes, as the latin1 text attr0Encode writes). */
export function statsReply(status: number, json: string): string {
  return attr0Encode([
    [TLS_MGR_ATTR_STATUS, status],
    [TLS_MGR_ATTR_STATS, Buffer.from(json, "utf8").toString("latin1")],
  ]);
}

/** handleStats - serve request=stats (attrs[0] is the request attribute); warnings go to warn (default msgWarn). */
export function handleStats(
  src: StatsSources | undefined,
  attrs: Attr0Attr[],
  peer: string,
  warn: (text: string) => void = msgWarn,
): string {
  const scan = attr0ScanStrict(attrs, 1, [], peer);
  if (scan.warning !== undefined) warn(scan.warning);
  if (src === undefined) return statsReply(TLS_MGR_STAT_ERR, "{}");
  return statsReply(TLS_MGR_STAT_OK, JSON.stringify(statsSnapshot(src, { lmdb: lmdbCounters, redis: redisCounters })));
}
