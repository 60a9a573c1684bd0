/**
 * syslog-sink.ts - a MsgSink that sends each line to the local syslog daemon.
 * Owns: the facility names and numbers, the severity of each level, the line
 *       format of the C library's syslog(3) (what Postfix's msg_syslog uses):
 *       "<PRI>Mmm dd hh:mm:ss TAG[pid]: [severity: ]text", one datagram to
 *       /dev/log, text cut to 2000 characters as MSG_SYSLOG_RECLEN.
 * Not here: choosing this sink (log/setup.ts), the socket (log/dgram-socket.ts).
 * See also: postfix/src/util/msg_syslog.c, glibc misc/syslog.c
 *
 * The socket is non-blocking: when syslogd is slow or absent a line is dropped
 * (a daemon must never wait on its logger). The path is used at each send,
 * so after chroot(2) it resolves inside the jail: $queue_directory/dev/log,
 * which Debian's rsyslog provides for Postfix (as glibc reconnects there too).
 */

import type { MsgLevel, MsgSink } from "./msg.js";
import { logDgramSocket } from "./dgram-socket.js";

export const SYSLOG_PATH = "/dev/log";

/** Stay a little below the 2048-byte limit of older syslog() implementations. */
export const MSG_SYSLOG_RECLEN = 2000;

/** Linux <syslog.h> facility codes (already shifted: LOG_MAIL = 2 << 3). */
export const SYSLOG_FACILITIES: Readonly<Record<string, number>> = {
  auth: 4 << 3,
  authpriv: 10 << 3,
  cron: 9 << 3,
  daemon: 3 << 3,
  ftp: 11 << 3,
  kern: 0 << 3,
  lpr: 6 << 3,
  mail: 2 << 3,
  news: 7 << 3,
  syslog: 5 << 3,
  user: 1 << 3,
  uucp: 8 << 3,
  local0: 16 << 3,
  local1: 17 << 3,
  local2: 18 << 3,
  local3: 19 << 3,
  local4: 20 << 3,
  local5: 21 << 3,
  local6: 22 << 3,
  local7: 23 << 3,
};

/** Severity per level, as msg_syslog_print: LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT, LOG_CRIT. */
export const SYSLOG_SEVERITY: Readonly<Record<MsgLevel, number>> = {
  info: 6,
  warning: 4,
  error: 3,
  fatal: 2,
  panic: 2,
};

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** syslogFacility - the code of a facility name (syslog_facility), or undefined */
export function syslogFacility(name: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(SYSLOG_FACILITIES, name) ? SYSLOG_FACILITIES[name] : undefined;
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** syslogTimestamp - strftime "%h %e %T" in local time: "Nov  6 09:05:01" */
export function syslogTimestamp(date: Date): string {
  const day = date.getDate();
  return (
    `${MONTHS[date.getMonth()]} ${day < 10 ? ` ${day}` : day} ` +
    `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`
  );
}

/** logText - "[severity: ]text" with text cut to reclen and control characters made '?' */
export function logText(level: MsgLevel, text: string, reclen: number): string {
  const cut = text.length > reclen ? text.slice(0, reclen) : text;
  const safe = cut.replace(/[\x00-\x1f\x7f]/g, "?");
  return level === "info" ? safe : `${level}: ${safe}`;
}

export interface SyslogLine {
  facility: number;
  level: MsgLevel;
  /** "$syslog_name/$process_name", e.g. "postfix/tlsmgr" */
  tag: string;
  pid: number;
  text: string;
  date: Date;
}

/** syslogFormat - one datagram as syslog(3) with LOG_PID writes it */
export function syslogFormat(line: SyslogLine): string {
  const pri = line.facility | SYSLOG_SEVERITY[line.level];
  return `<${pri}>${syslogTimestamp(line.date)} ${line.tag}[${line.pid}]: ${logText(line.level, line.text, MSG_SYSLOG_RECLEN)}`;
}

export interface SyslogSinkOptions {
  /** facility code (see syslogFacility) */
  facility: number;
  tag: string;
  /** default /dev/log */
  path?: string;
}

export interface SyslogSink extends MsgSink {
  readonly path: string;
  /** lines not delivered (syslogd absent, queue full) */
  readonly dropped: number;
  close(): void;
}

/** syslogSink - open the datagram socket now (before any chroot) and send each line */
export function syslogSink(opts: SyslogSinkOptions): SyslogSink {
  const path = opts.path ?? SYSLOG_PATH;
  const sock = logDgramSocket();
  return {
    path,
    get dropped() {
      return sock.dropped;
    },
    write(level, text) {
      const line = syslogFormat({ facility: opts.facility, level, tag: opts.tag, pid: process.pid, text, date: new Date() });
      sock.send(path, line);
    },
    close() {
      sock.close();
    },
  };
}
