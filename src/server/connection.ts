/**
 * connection.ts - one client connection: announce (unless told not to), read, serve in order, reply.
 * Owns: the per-connection decoder, the in-order queue of pipelined
 *       requests (one served at a time, replies written in request order,
 *       every whole request answered even after the client's half-close),
 *       back-pressure (reading pauses while replies wait to drain or too many
 *       bytes are pending), this connection's part of the per-turn work bound
 *       and of the bound on unfinished request bytes, its rate-limited
 *       warnings, the master trigger, and closing on a protocol fault.
 * Not here: what a request does (server/handlers.ts), accepting (server/listener.ts),
 *           the bounds themselves (server/turn-budget.ts, server/input-budget.ts).
 * See also: postfix/src/master/multi_server.c, postfix/src/tlsmgr/tlsmgr.c
 */

import type { Duplex } from "node:stream";
import type { Attr0Attr, Attr0Limits } from "../protocol/attr0.js";
import { Attr0Decoder } from "../protocol/attr0.js";
import type { TlsmgrState } from "./handlers.js";
import { failReplyFor, handleRequest, SERVER_ANNOUNCEMENT } from "./handlers.js";
import { errorText } from "../log/errors.js";
import { clientWarnings } from "./client-warnings.js";
import type { InputBudget, InputHolder } from "./input-budget.js";
import { turnBudget as daemonTurnBudget, turnCost } from "./turn-budget.js";
import type { TurnBudget } from "./turn-budget.js";
import { msgDebug, msgWarn } from "../log/msg.js";

export interface ConnectionOptions {
  limits: Attr0Limits;
  /** Called after each request is served (the PRNG pool mixes in the time of day). */
  afterRequest?: () => void;
  /** Seconds a started request may take to arrive whole (ipc_timeout). */
  ipcTimeout: number;
  /** Send "protocol = tlsmgr_protocol" first (default); false for Postfix 3.5 clients (config/postfix-release.ts). */
  announce?: boolean;
  /** The bound on unfinished request bytes over all connections (server/input-budget.ts). */
  inputBudget?: InputBudget;
  /** The bound on work per event-loop turn (server/turn-budget.ts); the daemon's one when absent. */
  turnBudget?: TurnBudget;
}

/** Bytes a connection may hold unread before it stops reading from the socket. */
const PENDING_HIGH_WATER = 4 * 1024 * 1024;

/** listBytes - the bytes an attribute list took on the wire (for the turn budget). */
function listBytes(attrs: Attr0Attr[]): number {
  let n = 1;
  for (const a of attrs) n += a.name.length + a.value.length + 2;
  return n;
}

/**
 * serveConnection - run the request loop of one accepted socket, until the
 * socket is closed. Every complete request received is answered, in order,
 * also when the client half-closes (shutdown(SHUT_WR)) right after sending.
 */
export function serveConnection(socket: Duplex, peer: string, state: TlsmgrState, opts: ConnectionOptions): void {
  const decoder = new Attr0Decoder(opts.limits);
  const budget = opts.turnBudget ?? daemonTurnBudget;
  const inputBudget = opts.inputBudget;
  const warnings = clientWarnings(peer);
  const warn = warnings.warn;
  /** An asynchronous reply is being made. */
  let busy = false;
  /** We close: nothing more is read or served. */
  let closing = false;
  /** The client half-closed: serve what is whole, then close. */
  let ended = false;
  /** A reply waits to drain. */
  let draining = false;
  /** Waiting for a later event-loop turn (turn budget). */
  let waiting = false;
  /** The decoder holds no whole request (its last next() gave nothing). */
  let idle = true;

  const holder: InputHolder = {
    bytes: 0,
    partial: false,
    drop: (bytes, total, limit) => {
      msgWarn(`${peer}: unfinished requests of all clients hold ${total} bytes, more than ${limit}: ` +
        `closing this client, which held ${bytes}`);
      closing = true;
      socket.destroy();
    },
  };

  if (opts.announce !== false) socket.write(SERVER_ANNOUNCEMENT, "latin1");

  const close = () => {
    closing = true;
    socket.end();
  };

  // served - a reply went out: count it against this turn, tell the caller.
  const served = (requestBytes: number, reply: string): number => {
    const units = turnCost(requestBytes + reply.length);
    budget.spend(units);
    opts.afterRequest?.();
    return units;
  };

  // pump - serve the complete requests held, in order, one at a time, within this turn's budget.
  const pump = (): void => {
    let slice = 0;
    // Nothing more is served while a reply waits to drain: a client that
    // does not read cannot make the daemon hold more than one reply.
    while (!busy && !closing && !draining) {
      if (budget.left === 0 || slice >= budget.sliceUnits) {
        waitForTurn();
        break;
      }
      const event = decoder.next();
      if (event === undefined) {
        idle = true;
        break;
      }
      if (event.kind === "trigger") {
        msgDebug(`received master trigger from ${peer}`);
        close();
        return;
      }
      if (event.kind === "error") {
        warn(`${event.reason} in input from ${peer}`);
        socket.write(failReplyFor(event.request), "latin1");
        close();
        return;
      }
      const requestBytes = listBytes(event.attrs);
      const reply = handleRequest(state, event.attrs, peer, warn);
      if (typeof reply === "string") {
        if (!socket.write(reply, "latin1")) waitForDrain();
        slice += served(requestBytes, reply);
      } else {
        busy = true;
        reply.then(
          (text) => {
            busy = false;
            if (closing || socket.destroyed) return;
            if (!socket.write(text, "latin1")) waitForDrain();
            served(requestBytes, text);
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
    settle();
  };

  // settle - after serving: finish a half-closed connection, or read on, count what is held, time a partial request.
  const settle = (): void => {
    if (closing) return;
    if (ended && idle && !busy && !draining && !waiting) {
      if (!decoder.atListBoundary) warn(`premature end-of-input from ${peer} while reading request`);
      close();
      return;
    }
    account();
    if (!busy && !draining && !waiting && socket.isPaused() && !closing) socket.resume();
    armTimeout();
  };

  // account - this connection's share of the bytes all connections hold unfinished.
  const account = (): void => {
    if (inputBudget === undefined || closing) return;
    const bytes = decoder.pendingBytes;
    inputBudget.update(holder, bytes, idle && !busy && !draining && !waiting && bytes > 0);
  };

  const waitForDrain = () => {
    if (draining) return;
    draining = true;
    socket.pause();
    socket.once("drain", () => {
      draining = false;
      pump();
    });
  };

  // waitForTurn - the turn's budget or this connection's slice is used: go on in a later turn.
  const waitForTurn = () => {
    if (waiting) return;
    waiting = true;
    budget.later(() => {
      waiting = false;
      if (closing || socket.destroyed) return;
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
    inputBudget?.remove(holder);
    warnings.close();
  });

  socket.on("data", (chunk: Buffer) => {
    if (closing) return;
    decoder.push(chunk);
    idle = false;
    if (busy || draining || waiting) {
      // A backlog: stop reading beyond the high-water mark, or when all clients together hold too much.
      if (decoder.pendingBytes > PENDING_HIGH_WATER || inputBudget?.over) socket.pause();
      account();
      armTimeout();
      return;
    }
    pump();
  });
  socket.on("end", () => {
    ended = true;
    if (closing) return;
    if (!busy && !draining && !waiting) pump();
  });
  socket.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE" && err.code !== "ECONNRESET") msgWarn(`read error from ${peer}: ${errorText(err)}`);
    socket.destroy();
  });
}
