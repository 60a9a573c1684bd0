/**
 * dgram-socket.ts - the unix datagram socket under the syslog and postlogd
 *                   sinks: opened once, one line per datagram, never waits.
 * Owns: the socket's descriptor, dropping (and counting) a line that cannot
 *       be sent at once, and a close that may be called twice.
 * Not here: line formats and paths (log/syslog-sink.ts, log/postlog-sink.ts);
 *           the system calls (native/posix.ts).
 * See also: postfix/src/util/msg_syslog.c, postfix/src/util/msg_logger.c
 *
 * The socket is non-blocking and unconnected: the path is given at each send,
 * so after chroot(2) it resolves inside the jail.
 */

import { closeFd, unixDgramSend, unixDgramSocket } from "../native/posix.js";

export interface LogDgramSocket {
  /** lines not delivered (receiver absent, queue full) */
  readonly dropped: number;
  /** send - one line as one datagram to path; dropped when it cannot go now or after close */
  send(path: string, line: string): void;
  close(): void;
}

/** logDgramSocket - open the datagram socket now (before any chroot) */
export function logDgramSocket(): LogDgramSocket {
  let fd = unixDgramSocket();
  let dropped = 0;
  return {
    get dropped() {
      return dropped;
    },
    send(path, line) {
      if (fd < 0) return;
      try {
        unixDgramSend(fd, path, Buffer.from(line));
      } catch {
        dropped++; // ENOENT, ECONNREFUSED (no receiver), EAGAIN (queue full): drop the line
      }
    },
    close() {
      if (fd >= 0) {
        const old = fd;
        fd = -1;
        try {
          closeFd(old);
        } catch {
          /* already closed */
        }
      }
    },
  };
}
