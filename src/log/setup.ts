/**
 * setup.ts - choose where log lines go, as Postfix's maillog_client_init does.
 * Owns: the choice of sinks (stderr; syslog or postlogd, never both), the
 *       syslog_facility check, the maillog_file_prefixes check, the tag
 *       "$syslog_name/$process_name", a serializable description of the choice
 *       (LogPlan, so that the watchdog thread can log too), and the change of
 *       paths after chroot.
 * Not here: the line formats (log/syslog-sink.ts, log/postlog-sink.ts,
 *           log/msg.ts), reading main.cf (config/).
 * See also: postfix/src/global/maillog_client.c, postfix/src/global/mail_task.c,
 *           postfix/src/global/mail_params.c (syslog_facility check)
 *
 * Rules:
 * - Under master(8): postlogd when maillog_file is set, else syslog. Only one
 *   of the two (postlogd forwards to syslog; both would loop).
 * - stderr: in the foreground (-d), stand-alone (-S), with -V, and whenever
 *   not started by master (the embedded and by-hand modes).
 */

import { existsSync } from "node:fs";
import { hostname as osHostname } from "node:os";
import type { MsgSink } from "./msg.js";
import { getMsgSinks, msgFatal, msgWarn, setMsgSinks, setProcessName, stderrSink } from "./msg.js";
import { postlogSink, type PostlogSink } from "./postlog-sink.js";
import { SYSLOG_PATH, syslogFacility, syslogSink, type SyslogSink } from "./syslog-sink.js";

export interface LoggingOptions {
  underMaster: boolean;
  standalone: boolean;
  foreground: boolean;
  syslog_facility: string;
  syslog_name: string;
  process_name: string;
  maillog_file: string;
  queue_directory: string;
  postlog_service_name: string;
  /** -c: the process will chroot to queue_directory (see loggingEnteredChroot) */
  chroot: boolean;
  /** -V: also log to stderr */
  alsoStderr?: boolean;
  /** myhostname, for postlogd lines (default POSTLOG_HOSTNAME, else the system host name) */
  myhostname?: string;
  /** maillog_file_prefixes; when given, maillog_file must start with one of them */
  maillog_file_prefixes?: string;
  /** config_directory, for the text of fatal messages */
  config_directory?: string;
}

/** Where lines go, as plain data (structured-clone safe). */
export interface LogPlan {
  processName: string;
  stderr: boolean;
  syslog?: { path: string; facility: number; tag: string };
  postlog?: { path: string; hostname: string; tag: string };
  /** the chroot directory once entered ("" before) */
  chrootRoot: string;
}

let plan: LogPlan | undefined;
let chrootPending = "";
let openSinks: Array<SyslogSink | PostlogSink> = [];
const planListeners = new Set<(p: LogPlan) => void>();

/** onLogPlanChange - be told of each new plan (the watchdog thread); returns unsubscribe */
export function onLogPlanChange(cb: (p: LogPlan) => void): () => void {
  planListeners.add(cb);
  return () => planListeners.delete(cb);
}

/** announcePlan - tell listeners; a failing listener does not stop logging */
function announcePlan(p: LogPlan): void {
  for (const cb of planListeners) {
    try {
      cb(p);
    } catch {
      /* ignore */
    }
  }
}

/** paramFatal - a bad logging parameter, named with its file as Postfix does */
function paramFatal(opts: LoggingOptions, name: string, problem: string): never {
  const where = opts.config_directory ? `file ${opts.config_directory}/main.cf: ` : "";
  msgFatal(`${where}parameter ${name}: ${problem}`);
}

/** logPlanFor - decide the sinks for these settings (no I/O; fatal on bad settings) */
export function logPlanFor(opts: LoggingOptions, env: NodeJS.ProcessEnv = process.env): LogPlan {
  const facility = syslogFacility(opts.syslog_facility);
  if (facility === undefined) paramFatal(opts, "syslog_facility", `unrecognized value: ${opts.syslog_facility}`);
  const tag = `${opts.syslog_name}/${opts.process_name}`;
  const next: LogPlan = {
    processName: opts.process_name,
    stderr: opts.foreground || opts.standalone || !opts.underMaster || opts.alsoStderr === true,
    chrootRoot: "",
  };
  if (opts.underMaster) {
    if (opts.maillog_file !== "") {
      if (opts.maillog_file_prefixes !== undefined) {
        const prefixes = opts.maillog_file_prefixes.split(/[\s,]+/).filter((p) => p !== "");
        if (!prefixes.some((p) => opts.maillog_file.startsWith(p))) {
          msgFatal(
            `maillog_file value '${opts.maillog_file}' does not match any prefix in maillog_file_prefixes`,
          );
        }
      }
      const host = opts.myhostname || env.POSTLOG_HOSTNAME || osHostname() || "amnesiac";
      next.postlog = {
        path: `${opts.queue_directory.replace(/\/+$/, "")}/public/${opts.postlog_service_name}`,
        hostname: host,
        tag,
      };
    } else {
      next.syslog = { path: SYSLOG_PATH, facility, tag };
    }
  }
  return next;
}

/** sinksFromPlan - open the sinks a plan describes (the datagram socket is made here) */
export function sinksFromPlan(p: LogPlan): { sinks: MsgSink[]; closable: Array<SyslogSink | PostlogSink> } {
  const sinks: MsgSink[] = [];
  const closable: Array<SyslogSink | PostlogSink> = [];
  if (p.syslog) {
    const s = syslogSink({ facility: p.syslog.facility, tag: p.syslog.tag, path: p.syslog.path });
    sinks.push(s);
    closable.push(s);
  }
  if (p.postlog) {
    const s = postlogSink(p.postlog);
    if (p.chrootRoot) s.rebase(p.chrootRoot);
    sinks.push(s);
    closable.push(s);
  }
  if (p.stderr) sinks.push(stderrSink());
  return { sinks, closable };
}

/**
 * setupLogging - install the sinks for these settings. May be called again
 * (e.g. once with defaults, again after main.cf): the previous sockets are closed.
 * Call before chroot: the sockets are made here.
 */
export function setupLogging(opts: LoggingOptions): void {
  const next = logPlanFor(opts);
  setProcessName(opts.process_name);
  let made: ReturnType<typeof sinksFromPlan>;
  let failure = "";
  try {
    made = sinksFromPlan(next);
  } catch (err) {
    // No native addon (no datagram socket): stderr only, and say why there.
    failure = err instanceof Error ? err.message : String(err);
    next.syslog = undefined;
    next.postlog = undefined;
    next.stderr = true;
    made = sinksFromPlan(next);
  }
  closeOpenSinks();
  setMsgSinks(made.sinks);
  openSinks = made.closable;
  plan = next;
  chrootPending = opts.chroot ? opts.queue_directory : "";
  announcePlan(next);
  if (next.syslog && opts.chroot) {
    // After chroot "/dev/log" is $queue_directory/dev/log (Debian's rsyslog makes it).
    const jailed = `${opts.queue_directory.replace(/\/+$/, "")}${next.syslog.path}`;
    if (!existsSync(jailed)) {
      msgWarn(`${jailed} does not exist: log lines after chroot to ${opts.queue_directory} will be lost`);
    }
  }
  if (failure) msgWarn(`cannot log to ${opts.maillog_file ? "postlogd" : "syslog"}: ${failure}`);
}

/** closeOpenSinks - close the sockets of the previous setup */
function closeOpenSinks(): void {
  for (const s of openSinks) s.close();
  openSinks = [];
}

/**
 * loggingEnteredChroot - after chroot(root): paths under root are seen from
 * the new root. privileges.ts calls this; root defaults to what setupLogging
 * was told (queue_directory with chroot).
 */
export function loggingEnteredChroot(root: string = chrootPending): void {
  if (!root) return;
  for (const s of openSinks) if ("rebase" in s) s.rebase(root);
  if (plan) {
    plan.chrootRoot = root;
    announcePlan(plan);
  }
}

/** logPlan - the current choice (undefined before setupLogging) */
export function logPlan(): LogPlan | undefined {
  return plan;
}

/** closeLogging - close the sockets and go back to stderr (tests, exit) */
export function closeLogging(): void {
  const keep = getMsgSinks().filter((s) => !openSinks.includes(s as SyslogSink | PostlogSink));
  closeOpenSinks();
  setMsgSinks(keep.length > 0 ? keep : [stderrSink()]);
  plan = undefined;
  chrootPending = "";
}
