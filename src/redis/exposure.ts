/**
 * exposure.ts - what a redis: table leaves open to the network, said once
 *               at start-up: servers on other hosts reached without TLS or
 *               without AUTH.
 * Owns: which servers count as this host (UNIX-domain sockets, localhost,
 *       127.0.0.0/8, ::1), and the warning texts.
 * Not here: the table (redis/table.ts); logging them (redis/link.ts, when a
 *           link is made); what sealing protects anyway (docs/security.md).
 * See also: docs/security.md (network, Redis operator), man/tlsmgr.8
 *
 * A host name other than localhost counts as another host: what it
 * resolves to can change after start-up.
 */

import { isIPv4, isIPv6 } from "node:net";
import type { RedisServer, RedisTable } from "./table.js";

/** redisServerIsLocal - true for a UNIX-domain socket or a loopback address (or localhost). */
export function redisServerIsLocal(s: RedisServer): boolean {
  if ("path" in s) return true;
  const host = s.host.toLowerCase();
  if (host === "localhost" || host === "localhost.") return true;
  if (isIPv4(host)) return host.startsWith("127.");
  if (isIPv6(host)) {
    if (host === "::1" || /^0{0,4}(:0{0,4}){6}:0{0,3}1$/.test(host)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
    return mapped !== null && mapped[1]!.startsWith("127.");
  }
  return false;
}

/** serverText - host:port as written for people. */
function serverText(s: RedisServer): string {
  if ("path" in s) return s.path;
  return s.host.includes(":") ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

/**
 * redisExposureWarnings - the warning lines (without "warning: ") for a
 * table whose servers are not all on this host: one for no TLS, one for no
 * AUTH; none when every server is local.
 */
export function redisExposureWarnings(label: string, table: RedisTable): string[] {
  const remote = table.servers.filter((s) => !redisServerIsLocal(s));
  if (remote.length === 0) return [];
  const names = remote.map(serverText).join(", ");
  const out: string[] = [];
  if (table.tls === undefined)
    out.push(
      `${label}: server ${names} is on another host and reached without TLS (tls = no):` +
        " anyone on the network path sees the cache ids and the password, and can delete or replay" +
        " entries; set tls = yes",
    );
  if (table.password === undefined)
    out.push(
      `${label}: server ${names} is on another host and reached without AUTH (no password_file):` +
        " anyone who can connect to it can delete or replay entries and fill it; set password_file" +
        " and requirepass (or an ACL user)",
    );
  return out;
}
