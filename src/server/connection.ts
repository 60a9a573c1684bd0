/**
 * connection.ts - one client connection: announce (unless told not to), read, serve in order, reply.
 * Owns: the per-connection decoder, the in-order queue of pipelined
 *       requests (one served at a time, replies written in request order),
 *       back-pressure (reading pauses while replies wait to drain or too many
 *       bytes are pending), the master trigger, and closing on a protocol fault.
 * Not here: what a request does (server/handlers.ts), accepting (server/listener.ts).
 * See also: postfix/src/master/multi_server.c, postfix/src/tlsmgr/tlsmgr.c
 */

import type { Duplex } from "node:stream";
import type { Attr0Limits } from "../protocol/attr0.js";
import { Attr0Decoder } from "../protocol/attr0.js";
import type { TlsmgrState } from "./handlers.js";
import { failReplyFor, handleRequest, SERVER_ANNOUNCEMENT } from "./handlers.js";
import { errorText } from "../log/errors.js";
import { msgDebug, msgWarn } from "../log/msg.js";

export interface ConnectionOptions {
  limits: Attr0Limits;
  /** Called after each request is served (the PRNG pool mixes in the time of day). */
  afterRequest?: () => void;
  /** Seconds a started request may take to arrive whole (ipc_timeout). */
  ipcTimeout: number;
  /** Send "protocol = tlsmgr_protocol" first (default); false for Postfix 3.5 clients (config/postfix-release.ts). */
  announce?: boolean;
}

/** Bytes a connection may hold unread before it stops reading from the socket. */
const PENDING_HIGH_WATER = 4 * 1024 * 1024;

/**
 * serveConnection - start the request loop of one accepted socket; it runs
 * on the socket's events until the socket closes (nothing to wait for).
 */
export function serveConnection(socket: Duplex, peer: string, state: TlsmgrState, opts: ConnectionOptions): void {
  const decoder = new Attr0Decoder(opts.limits);
  let busy = false;
  let closing = false;

  if (opts.announce !== false) socket.write(SERVER_ANNOUNCEMENT, "latin1");

  const close = () => {
    closing = true;
    socket.end();
  };

  // pump - serve every complete request held, in order, one at a time.
  const pump = (): void => {
    // Nothing more is served while a reply waits to drain: a client that
    // does not read cannot make the daemon hold more than one reply.
    while (!busy && !closing && !draining) {
      const event = decoder.next();
      if (event === undefined) break;
      if (event.kind === "trigger") {
        msgDebug(`received master trigger from ${peer}`);
        close();
        return;
      }
      if (event.kind === "error") {
        msgWarn(`${event.reason} in input from ${peer}`);
        socket.write(failReplyFor(event.request), "latin1");
        close();
        return;
      }
      const reply = handleRequest(state, event.attrs, peer);
      if (typeof reply === "string") {
        if (!socket.write(reply, "latin1")) waitForDrain();
        opts.afterRequest?.();
      } else {
        busy = true;
        reply.then(
          (text) => {
            busy = false;
            if (closing || socket.destroyed) return;
            if (!socket.write(text, "latin1")) waitForDrain();
            opts.afterRequest?.();
            pump();
          },
          (err: unknown) => {
            busy = false;
            msgWarn(`request from ${peer} failed: ${errorText(err)}`);
            close();
          },
        );
      }
    }
    if (!busy && !draining && socket.isPaused() && !closing) socket.resume();
    armTimeout();
  };

  let draining = false;
  const waitForDrain = () => {
    if (draining) return;
    draining = true;
    socket.pause();
    socket.once("drain", () => {
      draining = false;
      pump();
    });
  };

  // armTimeout - only a partly received request is timed; an idle client may stay.
  let timer: NodeJS.Timeout | undefined;
  const armTimeout = () => {
    const partial = !decoder.atListBoundary && !closing;
    if (partial && timer === undefined) {
      timer = setTimeout(() => {
        msgWarn(`timeout while waiting for data from ${peer}`);
        socket.destroy();
      }, opts.ipcTimeout * 1000);
      timer.unref();
    } else if (!partial && timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
  };
  socket.on("close", () => {
    if (timer !== undefined) clearTimeout(timer);
  });

  socket.on("data", (chunk: Buffer) => {
    if (closing) return;
    decoder.push(chunk);
    if (busy || draining) {
      if (decoder.pendingBytes > PENDING_HIGH_WATER) socket.pause();
      armTimeout();
      return;
    }
    pump();
  });
  socket.on("end", () => {
    if (!decoder.atListBoundary && !closing)
      msgWarn(`premature end-of-input from ${peer} while reading request`);
    closing = true;
    socket.end();
  });
  socket.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE" && err.code !== "ECONNRESET") msgWarn(`read error from ${peer}: ${errorText(err)}`);
    socket.destroy();
  });
}
