/**
 * early-sink.ts - where log lines go under master(8) before setupLogging:
 *                 to the mail log through postlog(1), one command per line.
 * Owns: the sink that a daemon started by master uses from its first line
 *       until main.cf is read and its own sinks are set up (a bad command
 *       line, a main.cf that cannot be read, a fatal error in setupLogging
 *       itself), and the text of an uncaught exception as one fatal line.
 * Not here: running postlog and finding its tag (log/postlog-command.cts);
 *           the sinks after main.cf (log/setup.ts); the entry's own failures
 *           before any of this loads (boot.cts).
 * See also: postfix/src/master/multi_server.c (msg_syslog_init before
 *           mail_conf_read), postlog(1)
 *
 * Postfix's daemons log to syslog from their first line, before main.cf is
 * read. Here the sockets need main.cf (postlogd or syslog, the tag) and the
 * native addon; postlog reads main.cf itself. Lines this early are few (they
 * come before any request), so a command per line is affordable.
 */

import { oneLine, postlogLine, type PostlogWhere } from "./postlog-command.cjs";
import type { MsgSink } from "./msg.js";

export interface EarlySink extends MsgSink {
  /** lines postlog could not take (the reason is on standard error) */
  readonly failed: number;
}

/** earlyLogSink - a sink that hands each line to postlog; the tag's syslog_name is asked once */
export function earlyLogSink(where: PostlogWhere): EarlySink {
  let failed = 0;
  return {
    get failed() {
      return failed;
    },
    write(level, text) {
      const why = postlogLine(level, text, where);
      if (why === "") return;
      failed++;
      process.stderr.write(`${where.name}[${process.pid}]: warning: cannot log to the mail log: ${why}\n`);
    },
  };
}

/** uncaughtText - an exception nobody caught, as one line: its name, message and where it was thrown */
export function uncaughtText(err: unknown): string {
  if (!(err instanceof Error)) return `uncaught exception: ${oneLine(String(err))}`;
  const frame = /\n\s+at (?:.*? \()?((?:file:\/\/|\/)[^\s()]+)\)?/.exec(err.stack ?? "");
  return `uncaught exception: ${err.name}: ${oneLine(err.message)}${frame ? ` (at ${frame[1]})` : ""}`;
}
