/**
 * postlog-sink.ts - a MsgSink that sends each line to postlogd(8), which
 *                   writes maillog_file.
 * Owns: the line format of Postfix's msg_logger (postlogd strips it when it
 *       forwards to syslog, so it must be exact):
 *       "Mmm dd hh:mm:ss HOST TAG[pid]: [severity: ]text" (strftime "%b %d %H:%M:%S",
 *       HOST = first label of myhostname), no newline, one datagram to
 *       $queue_directory/public/$postlog_service_name, text cut to 2000 characters.
 * Not here: choosing this sink (log/setup.ts), the socket (log/dgram-socket.ts).
 * See also: postfix/src/util/msg_logger.c, postfix/src/global/maillog_client.c,
 *           postfix/src/postlogd/postlogd.c
 *
 * The socket is non-blocking: when postlogd is slow or absent a line is
 * dropped. The path is resolved at each send; after chroot(2) to
 * queue_directory, rebase() makes it relative to the new root (the socket
 * is inside the queue directory, so it stays reachable).
 */

import type { MsgLevel, MsgSink } from "./msg.js";
import { logText } from "./syslog-sink.js";
import { logDgramSocket } from "./dgram-socket.js";

/** MSG_LOGGER_RECLEN */
export const MSG_LOGGER_RECLEN = 2000;

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** postlogTimestamp - strftime "%b %d %H:%M:%S" in local time: "Nov 06 09:05:01" */
export function postlogTimestamp(date: Date): string {
  return (
    `${MONTHS[date.getMonth()]} ${pad2(date.getDate())} ` +
    `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`
  );
}

/** shortHostname - the first label of a host name, as msg_logger prints it */
export function shortHostname(host: string): string {
  const dot = host.indexOf(".");
  return dot < 0 ? host : host.slice(0, dot);
}

export interface PostlogLine {
  hostname: string;
  tag: string;
  pid: number;
  level: MsgLevel;
  text: string;
  date: Date;
}

/** postlogFormat - one datagram as msg_logger_print() builds it */
export function postlogFormat(line: PostlogLine): string {
  return (
    `${postlogTimestamp(line.date)} ${shortHostname(line.hostname)} ` +
    `${line.tag}[${line.pid}]: ${logText(line.level, line.text, MSG_LOGGER_RECLEN)}`
  );
}

export interface PostlogSinkOptions {
  /** $queue_directory/public/$postlog_service_name */
  path: string;
  /** myhostname (only its first label is sent) */
  hostname: string;
  /** "$syslog_name/$process_name" */
  tag: string;
}

export interface PostlogSink extends MsgSink {
  readonly path: string;
  readonly dropped: number;
  /** rebase - after chroot(root): a path under root becomes relative to it */
  rebase(root: string): void;
  close(): void;
}

/** postlogSink - open the datagram socket now (before any chroot) and send each line */
export function postlogSink(opts: PostlogSinkOptions): PostlogSink {
  let path = opts.path;
  const sock = logDgramSocket();
  return {
    get path() {
      return path;
    },
    get dropped() {
      return sock.dropped;
    },
    write(level, text) {
      const line = postlogFormat({ hostname: opts.hostname, tag: opts.tag, pid: process.pid, level, text, date: new Date() });
      sock.send(path, line);
    },
    rebase(root: string) {
      path = rebasePath(path, root);
    },
    close() {
      sock.close();
    },
  };
}

/** rebasePath - "/var/spool/postfix/public/postlog" under root "/var/spool/postfix" -> "/public/postlog" */
export function rebasePath(file: string, root: string): string {
  const r = root.replace(/\/+$/, "");
  if (r === "") return file;
  if (file.startsWith(`${r}/`)) return file.slice(r.length);
  return file;
}
