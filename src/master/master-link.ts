/**
 * master-link.ts - this process's side of the master(8) protocol.
 * Owns: telling whether master(8) started us (fd 5 a socket and GENERATION
 *       set), the inherited listening descriptors (6 .. 6+N-1), GENERATION,
 *       the taken/available status messages on fd 5, noticing that master
 *       went away (fd 5 readable: EOF on reload, stop, or master's death),
 *       and the daemon_timeout watchdog.
 * Not here: the message bytes (master/master-status.ts), accepting clients
 *           (server/listener.ts), what to do when master goes away
 *           (master/multi-server.ts: the close-all path, then exit 0).
 * See also: postfix/src/master/multi_server.c, master_proto.c, master_status.c
 *
 * fd 5 is the child end of a socketpair(2) that master shares with every
 * process of the service. It is wrapped in a net.Socket (libuv makes it
 * non-blocking and watches it in the event loop): master never writes to it,
 * so any readable event (EOF, data, error) means "master is gone".
 *
 * Status writes go through that socket, not fs.writeSync: a 12-byte write to
 * a local stream socket with room in its buffer completes in one write(2)
 * (libuv tries the write at once), so master reads whole messages, and when
 * master stops reading the write is queued instead of holding the event loop
 * (Postfix's master_notify() does a blocking write here; we must not).
 * A failed status write means master is gone, as in multi_server_execute().
 *
 * Status is per request, not per client: multi_server_execute() sends
 * "taken" before and "available" after each request, and master counts a
 * use on each taken -> available change (master_status.c). A process that
 * dies with no use counted is a "bad command startup" and master throttles
 * the service (master_spawn.c), so a daemon killed while its clients (smtpd,
 * which keeps its connection) are still connected would not be restarted
 * for service_throttle_time. tlsmgr is solitary (-l), so "taken" changes no
 * spawning decision; requestServed() sends one taken/available pair per
 * event-loop turn in which requests were served, however many there were.
 */

import { fstatSync } from "node:fs";
import { Socket } from "node:net";
import { getProcessName, msgDebug, msgFatal } from "../log/msg.js";
import {
  MASTER_GEN_NAME,
  MASTER_LISTEN_FD,
  MASTER_STAT_AVAIL,
  MASTER_STAT_TAKEN,
  MASTER_STATUS_FD,
  masterStatusEncode,
  parseGeneration,
} from "./master-status.js";
import { watchdogCreate, type Watchdog } from "./watchdog.js";

export interface MasterLink {
  /** 6 .. 6+socketCount-1 under master; empty otherwise */
  listenFds: number[];
  /** the master generation (0 when not under master) */
  readonly generation: number;
  /** a request was served: one taken/available pair per event-loop turn (master counts a use) */
  requestServed(): void;
  /** cb runs once when fd 5 becomes readable or fails (master gone, reload, stop) */
  onMasterGone(cb: () => void): void;
  /** stop watching fd 5 and the watchdog; closes fd 5 */
  close(): void;
}

/** What the link needs to know of the command line (cli/args.ts DaemonArgs has it). */
export interface MasterLinkOptions {
  /** masterPresent(): started by master */
  underMaster: boolean;
  /** -S: stand-alone (no watchdog) */
  standalone: boolean;
  /** -s: how many listening descriptors master passes from fd 6 on */
  socketCount: number;
}

/**
 * masterPresent - true when master(8) started this process: GENERATION is in
 * the environment and fd 5 is a socket (the end of the status socketpair
 * master gives its children). Without master, fd 5 may be one of Node's own
 * internal pipes: only a socket counts.
 */
export function masterPresent(env: NodeJS.ProcessEnv, fd = MASTER_STATUS_FD): boolean {
  if (env[MASTER_GEN_NAME] === undefined) return false;
  try {
    return fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}

/**
 * openMasterLink - set up the master side channels. Outside master (no fd 5
 * socket and GENERATION) the link is inert except for the watchdog.
 * daemonTimeoutSec <= 0 or -S: no watchdog (Postfix has none in -S mode).
 * Call after setupLogging (the watchdog logs with the current plan) and before
 * chroot (the watchdog thread loads its code at start).
 */
export function openMasterLink(args: MasterLinkOptions, env: NodeJS.ProcessEnv, daemonTimeoutSec: number): MasterLink {
  let generation = 0;
  let status: Socket | undefined;
  let gone = false;
  let closed = false;
  let pulsePending = false;
  const callbacks: Array<() => void> = [];

  /** masterGone - run the callbacks once */
  const masterGone = (why: string): void => {
    if (gone || closed) return;
    gone = true;
    msgDebug(`master disconnect (${why}) -- exiting`);
    for (const cb of callbacks.splice(0)) cb();
  };

  if (args.underMaster) {
    const text = env[MASTER_GEN_NAME] ?? "";
    const gen = parseGeneration(text);
    if (gen === undefined) msgFatal(`bad generation: ${text}`);
    generation = gen;
    msgDebug(`process generation: ${text} (${gen.toString(8)})`);
    status = new Socket({ fd: MASTER_STATUS_FD, readable: true, writable: true });
    status.on("data", () => masterGone("data"));
    status.on("end", () => masterGone("end of file"));
    status.on("error", (err: NodeJS.ErrnoException) => masterGone(err.code ?? err.message));
    status.on("close", () => masterGone("closed"));
  }

  /** notify - master_notify(): one status message */
  const notify = (avail: number): void => {
    if (!status || gone || closed) return;
    msgDebug(`master_notify: status ${avail}`);
    status.write(masterStatusEncode(process.pid, generation, avail));
  };

  const watchdog: Watchdog | undefined =
    daemonTimeoutSec > 0 && !args.standalone ? watchdogCreate(daemonTimeoutSec, getProcessName()) : undefined;

  const listenFds: number[] = [];
  if (args.underMaster) for (let i = 0; i < args.socketCount; i++) listenFds.push(MASTER_LISTEN_FD + i);

  return {
    listenFds,
    get generation() {
      return generation;
    },
    requestServed() {
      if (!status || pulsePending) return;
      pulsePending = true;
      notify(MASTER_STAT_TAKEN);
      setImmediate(() => {
        pulsePending = false;
        notify(MASTER_STAT_AVAIL);
      });
    },
    onMasterGone(cb: () => void) {
      if (gone) setImmediate(cb);
      else callbacks.push(cb);
    },
    close() {
      if (closed) return;
      closed = true;
      watchdog?.stop();
      status?.destroy();
    },
  };
}
