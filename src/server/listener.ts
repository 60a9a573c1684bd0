/**
 * listener.ts - the local stream socket tlsmgr listens on, and its clients.
 * Owns: creating the socket (Postfix's mode 0666 inside a 0700 private
 *       directory) or adopting one inherited from master(8), accepting,
 *       naming clients for diagnostics, and closing (the clients too).
 *       Caps: server/descriptor-room.ts (open file limit),
 *       server/input-budget.ts (one per listener).
 * Not here: the request loop (server/connection.ts); master's taken/available
 *           status, which is per request, not per client (master/master-link.ts).
 * See also: postfix/src/master/multi_server.c, postfix/src/util/unix_listen.c
 */

import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { chmodSync, chownSync, statSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { TlsmgrState } from "./handlers.js";
import type { ConnectionOptions } from "./connection.js";
import { serveConnection } from "./connection.js";
import { InputBudget, inputBudgetBytes } from "./input-budget.js";
import { capClients } from "./descriptor-room.js";
import { msgFatal } from "../log/msg.js";
import { errorText } from "../log/errors.js";
import { makeDirs } from "../util/make-dirs.js";

export interface ListenerOptions extends ConnectionOptions {
  /** A path to create, or inherited listening descriptors (from master). */
  path?: string;
  fds?: number[];
  /** Owner for a created private directory (mail_owner), when running as root. */
  dirOwner?: { uid: number; gid: number };
}

export interface TlsmgrListener {
  /** Stop accepting, close every client, resolve when done. */
  close(): Promise<void>;
}

/** prepareSocketPath - make the private directory (0700) and clear a stale socket. */
export function prepareSocketPath(path: string, owner?: { uid: number; gid: number }): void {
  const dir = dirname(path);
  try {
    makeDirs(dir, 0o700);
    // Master's private/ is owned by mail_owner; only root can give it away.
    if (owner && statSync(dir).uid !== owner.uid) chownSync(dir, owner.uid, owner.gid);
  } catch (err) {
    msgFatal(`create directory ${dir}: ${errorText(err)}`);
  }
  try {
    const st = statSync(path);
    if (st.isSocket()) unlinkSync(path);
    else msgFatal(`${path}: exists and is not a socket`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
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
    prepareSocketPath(opts.path, opts.dirOwner);
    try {
      await listenOn({ path: opts.path }, opts.path);
    } catch (err) {
      msgFatal(`bind ${opts.path}: ${errorText(err)}`);
    }
    // Postfix's private sockets are 0666; the 0700 directory is the guard.
    chmodSync(opts.path, 0o666);
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
