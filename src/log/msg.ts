/**
 * msg.ts - Postfix-style diagnostics: info, warning, error, fatal, panic.
 * Owns: the severity prefixes, the verbose level, the process name and pid in
 *       each line, the list of sinks (stderr by default), and the stderr
 *       sink itself (stderrSink). Every line is sanitised once, before any
 *       sink sees it: control characters become '?' (a client string can
 *       never start a new line).
 * Not here: which sinks a daemon uses (log/setup.ts); the syslog and
 *           postlogd sinks (log/syslog-sink.ts, log/postlog-sink.ts); turning
 *           an error into text (log/errors.ts errorText).
 * See also: postfix/src/util/msg.c, msg_output.c
 *
 * Rules (as Postfix): lowercase text, object then cause, no final period.
 * Never pass session bytes or key material to these functions.
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { ERR_FATAL, ERR_PANIC, TlsmgrError } from "./errors.js";

export type MsgLevel = "info" | "warning" | "error" | "fatal" | "panic";

/** A sink receives one finished line without the "name[pid]: " tag. */
export interface MsgSink {
  write(level: MsgLevel, text: string): void;
}

/** Thrown by msgFatal so that main() exits 1 after the line was logged. */
export class FatalError extends TlsmgrError {
  constructor(message: string) {
    super(message, ERR_FATAL);
  }
}

/** Thrown by msgPanic: a broken invariant. */
export class PanicError extends TlsmgrError {
  constructor(message: string) {
    super(message, ERR_PANIC);
  }
}

const PREFIX: Record<MsgLevel, string> = {
  info: "",
  warning: "warning: ",
  error: "error: ",
  fatal: "fatal: ",
  panic: "panic: ",
};

let sinks: MsgSink[] = [stderrSink()];
let verbose = 0;
let processName = "tlsmgr";

/** msgVerbose - the -v count; > 0 enables msgDebug lines. */
export function msgVerbose(): number {
  return verbose;
}

export function setMsgVerbose(level: number): void {
  verbose = level;
}

export function setProcessName(name: string): void {
  processName = name;
}

export function getProcessName(): string {
  return processName;
}

/** setMsgSinks - replace where lines go (for syslog, postlogd, tests). */
export function setMsgSinks(list: MsgSink[]): void {
  sinks = list;
}

export function getMsgSinks(): MsgSink[] {
  return sinks;
}

/** stderrSink - "tlsmgr[pid]: warning: text" on standard error. */
export function stderrSink(): MsgSink {
  return {
    write(level, text) {
      process.stderr.write(`${processName}[${process.pid}]: ${PREFIX[level]}${text}\n`);
    },
  };
}

/** Characters no log line may carry: C0 controls (new lines included), DEL, C1 controls. */
const CONTROL_CHARS = /[\x00-\x1f\x7f-\x9f]/g;

/** emit - one sanitised line to every sink, as msg_output() does (printable(..., '?')). */
function emit(level: MsgLevel, raw: string): void {
  const text = raw.replace(CONTROL_CHARS, "?");
  for (const sink of sinks) {
    try {
      sink.write(level, text);
    } catch {
      /* a broken sink must not take the daemon down */
    }
  }
}

export function msgInfo(text: string): void {
  emit("info", text);
}

/** msgDebug - an info line shown only with -v. */
export function msgDebug(text: string): void {
  if (verbose > 0) emit("info", text);
}

export function msgWarn(text: string): void {
  emit("warning", text);
}

export function msgError(text: string): void {
  emit("error", text);
}

/** Set inside withFatalAsError(): msgFatal logs an error line (it still throws). */
const fatalAsError = new AsyncLocalStorage<true>();

/**
 * withFatalAsError - run fn with msgFatal logging `error:` instead of
 * `fatal:` (it still throws FatalError), for a caller that carries on with
 * reduced function when fn fails: Postfix's dict_allow_surrogate.
 */
export function withFatalAsError<T>(fn: () => Promise<T>): Promise<T> {
  return fatalAsError.run(true, fn);
}

/** msgFatal - log and throw FatalError; main() turns it into exit status 1. */
export function msgFatal(text: string): never {
  emit(fatalAsError.getStore() ? "error" : "fatal", text);
  throw new FatalError(text);
}

/** msgPanic - log and throw PanicError: a bug, not bad input. */
export function msgPanic(text: string): never {
  emit("panic", text);
  throw new PanicError(text);
}

/** printable - peer text made safe for a log line: '?' for non-printables, cut to max. */
export function printable(text: string | Buffer, max = 100): string {
  const s = typeof text === "string" ? text : text.toString("latin1");
  const cut = s.length > max ? s.slice(0, max) : s;
  return cut.replace(/[^\x20-\x7e]/g, "?");
}
