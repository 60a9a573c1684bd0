/**
 * descriptor-room.ts - clients beyond what the open file limit (ulimit -n)
 *                      leaves room for: closed at once, and said so once.
 * Owns: the room (RLIMIT_NOFILE's soft limit less the descriptors open when
 *       the listener starts, less a reserve for the daemon's own files and
 *       links), the listener's connection cap from it, the one warning when
 *       clients are first turned away, the info line (with the count) when
 *       clients are accepted again, and warnings for accept errors.
 * Not here: accepting and serving (server/listener.ts, server/connection.ts).
 * See also: libuv src/unix/stream.c (uv__emfile_trick: without a cap, a
 *           connection accept(2) cannot take is closed silently), node's
 *           net.Server maxConnections and its "drop" event
 *
 * With `ulimit -n 64`, 263 of 300 connections were closed without a word.
 */

import { readdirSync, readFileSync } from "node:fs";
import type { Server } from "node:net";
import { errorText } from "../log/errors.js";
import { msgInfo, msgWarn } from "../log/msg.js";

/** Descriptors kept free for the daemon itself (cache files, Redis links, log sockets, the exchange file). */
export const DESCRIPTOR_RESERVE = 16;

/** descriptorRoom - the soft open file limit and the clients it leaves room for now; undefined when unknown. */
export function descriptorRoom(): { limit: number; room: number } | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "latin1"));
    if (!m) return undefined; // "unlimited"
    const limit = Number(m[1]);
    const open = readdirSync("/proc/self/fd").length - 1; // less the directory's own descriptor
    return { limit, room: Math.max(1, limit - open - DESCRIPTOR_RESERVE) };
  } catch {
    return undefined;
  }
}

/** capClients - cap SERVER's clients to the room the open file limit leaves; report when clients are turned away. */
export function capClients(server: Server, label: string): void {
  const room = descriptorRoom();
  if (room !== undefined) server.maxConnections = room.room;
  let closed = 0;
  server.on("drop", () => {
    if (closed++ === 0)
      msgWarn(`cannot accept more clients on ${label}: open file limit ${room?.limit ?? "?"} reached (ulimit -n); ` +
        `new connections are closed until clients leave`);
  });
  server.on("connection", () => {
    if (closed === 0) return;
    msgInfo(`accepting clients on ${label} again; ${closed} connection${closed === 1 ? " was" : "s were"} closed for lack of descriptors`);
    closed = 0;
  });
  // An accept(2) error must not end the daemon (an 'error' event without a listener throws).
  const warned = new Set<string>();
  server.on("error", (err: NodeJS.ErrnoException) => {
    const code = err.code ?? "?";
    if (warned.has(code)) return;
    warned.add(code);
    msgWarn(`accept a client on ${label}: ${errorText(err)}`);
  });
}
