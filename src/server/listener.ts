/**
 * listener.ts - the local stream socket tlsmgr listens on, and its clients.
 * Owns: creating the socket (Postfix's mode 0666 inside a 0700 private
 *       directory: the directory rules and the ids are server/socket-path.ts's)
 *       or adopting one inherited from master(8), accepting,
 *       naming clients for diagnostics, and closing (the clients too).
 *       Caps: server/descriptor-room.ts (open file limit),
 *       server/input-budget.ts (one per listener).
 * Not here: the request loop (server/connection.ts); master's taken/available
 *           status, which is per request, not per client (master/master-link.ts).
 * See also: postfix/src/master/multi_server.c, postfix/src/util/unix_listen.c
 */

import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { unlinkSync } from "node:fs";
import type { TlsmgrState } from "./handlers.js";
import type { ConnectionOptions } from "./connection.js";
import { serveConnection } from "./connection.js";
import { InputBudget, inputBudgetBytes } from "./input-budget.js";
import { capClients } from "./descriptor-room.js";
import { prepareSocketPath, withSocketIds } from "./socket-path.js";
import { CACHE_TYPES } from "../protocol/tlsmgr-proto.js";
import { msgFatal } from "../log/msg.js";
import { errorText } from "../log/errors.js";

export interface ListenerOptions extends ConnectionOptions {
  /** A path to create, or inherited listening descriptors (from master). */
  path?: string;
  fds?: number[];
  /** mail_owner: owner of a private directory made for the socket, and the ids of a socket made in its directory. */
  dirOwner?: { uid: number; gid: number };
}

export interface TlsmgrListener {
  /** Stop accepting, close every client, resolve when done. */
  close(): Promise<void>;
}

/** socketSecrets - what this daemon's socket hands out that other users must not have (server/socket-path.ts). */
function socketSecrets(state: TlsmgrState): string[] {
  const out: string[] = [];
  if (state.caches.timeout("smtpd") > 0) out.push("session ticket keys");
  if (CACHE_TYPES.some((t) => state.caches.get(t) !== undefined)) out.push("cached sessions");
  return out;
}

/** startListener - listen and serve until close(). */
export async function startListener(state: TlsmgrState, opts: ListenerOptions): Promise<TlsmgrListener> {
  const sockets = new Set<Socket>();
  let nextClient = 1;
  const servers: Server[] = [];
  // One bound on unfinished request bytes for all the clients of this listener.
  const connOpts: ListenerOptions = { ...opts, inputBudget: opts.inputBudget ?? new InputBudget(inputBudgetBytes(opts.limits)) };

  const onConnection = (socket: Socket, label: string) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    serveConnection(socket, `${label} client #${nextClient++}`, state, connOpts);
  };

  const listenOn = (target: { path: string } | { fd: number }, label: string) =>
    new Promise<void>((resolve, reject) => {
      // allowHalfOpen: a client's shutdown(SHUT_WR) must not end our side
      // before the requests it sent are answered (server/connection.ts).
      const server = createServer({ pauseOnConnect: false, allowHalfOpen: true }, (s) => onConnection(s, label));
      server.once("error", reject);
      server.listen(target, () => {
        server.off("error", reject);
        capClients(server, label);
        servers.push(server);
        resolve();
      });
    });

  if (opts.fds && opts.fds.length > 0) {
    for (const fd of opts.fds) await listenOn({ fd }, `fd ${fd}`);
  } else if (opts.path) {
    // Postfix's private sockets are 0666, made so by the umask; the 0700 directory is the guard.
    const ids = prepareSocketPath(opts.path, { owner: opts.dirOwner, secrets: socketSecrets(state) });
    const path = opts.path;
    try {
      await withSocketIds(ids, () => listenOn({ path }, path));
    } catch (err) {
      msgFatal(`bind ${opts.path}: ${errorText(err)}`);
    }
  } else {
    msgFatal("no socket to listen on");
  }

  return {
    close: async () => {
      const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      for (const s of sockets) s.destroy();
      await closed;
      if (opts.path && !(opts.fds && opts.fds.length > 0)) {
        try {
          unlinkSync(opts.path);
        } catch {
          /* already gone */
        }
      }
    },
  };
}
