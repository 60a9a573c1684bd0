/**
 * postlog-command.cts - one line to the mail log through Postfix's postlog(1)
 *                       command, for when the daemon's own logging is not set
 *                       up: its code does not load, the Node.js is too old, or
 *                       a fatal error comes before setupLogging.
 * Owns: whether master(8) started this process (its stderr then goes nowhere),
 *       where postlog and postconf are ($command_directory from -o or main.cf,
 *       else /usr/sbin), the tag ("$syslog_name/NAME", syslog_name asked of
 *       postconf), the severity words postlog takes, and running postlog
 *       (synchronously, bounded in time; again with an empty main.cf, so to
 *       syslog, when postlog refuses the instance's main.cf).
 * Not here: the daemon's own sinks once main.cf is read (log/setup.ts); the
 *           sink that uses this before then (log/early-sink.ts); the entry
 *           that uses it when nothing loads (boot.cts).
 * See also: postlog(1), postfix/src/postlog/postlog.c, master-link.ts
 *           (masterPresent, the same test), README "Upgrade"
 *
 * CommonJS with ES2015 syntax and no "node:" specifiers: boot.cjs loads it
 * before it knows whether this Node.js can run the rest (Node.js 10 parses it).
 * postlog follows main.cf as Postfix's daemons do: postlogd and maillog_file
 * when maillog_file is set, else syslog; when postlogd is not running it
 * writes maillog_file itself. The line carries postlog's own process id.
 * postlog waits one second after a fatal line, as Postfix programs do.
 */

import fs = require("fs");
import path = require("path");
import childProcess = require("child_process");
import os = require("os");

/** master(8)'s status descriptor and generation variable (master-link.ts MASTER_STATUS_FD, MASTER_GEN_NAME). */
const MASTER_STATUS_FD = 5;
const MASTER_GEN_NAME = "GENERATION";
/** Postfix's default command_directory. */
export const DEF_COMMAND_DIRECTORY = "/usr/sbin";
/** How long postlog or postconf may take (postlog sleeps 1 s after a fatal line). */
const COMMAND_TIMEOUT_MS = 10000;

/** Severity words of postlog -p, by msg.ts level. */
const POSTLOG_LEVEL: { [level: string]: string } = {
  info: "info",
  warning: "warn",
  error: "error",
  fatal: "fatal",
  panic: "panic",
};

/** Where and as whom to log: the daemon's name, its command line (for -o), its environment. */
export interface PostlogWhere {
  /** the process name: "tlsmgr" */
  name: string;
  /** the daemon's arguments (master's -o name=value among them) */
  argv: readonly string[];
  env: { [name: string]: string | undefined };
  /** syslog_name when already known (main.cf was read) */
  syslogName?: string;
}

/** startedByMaster - GENERATION is set and descriptor 5 is a socket (masterPresent in master-link.ts) */
export function startedByMaster(env: { [name: string]: string | undefined }): boolean {
  if (env[MASTER_GEN_NAME] === undefined) return false;
  try {
    return fs.fstatSync(MASTER_STATUS_FD).isSocket();
  } catch (e) {
    return false;
  }
}

/** configDirectory - $MAIL_CONFIG, else /etc/postfix (master(8) always sets MAIL_CONFIG) */
export function configDirectory(env: { [name: string]: string | undefined }): string {
  return env.MAIL_CONFIG || "/etc/postfix";
}

/** overrideValue - the last "-o NAME=value" (or "-oNAME=value") on the command line, or undefined */
export function overrideValue(argv: readonly string[], name: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    if (arg === "-o" && i + 1 < argv.length) arg = argv[++i];
    else if (arg.indexOf("-o") === 0 && arg.length > 2) arg = arg.slice(2);
    else continue;
    const eq = arg.indexOf("=");
    if (eq > 0 && arg.slice(0, eq).trim() === name) found = arg.slice(eq + 1).trim();
  }
  return found;
}

/**
 * mainCfValue - the raw value of NAME in DIR/main.cf, read plainly (comments,
 * continuation lines, the last setting wins; no $name expansion), or undefined
 */
export function mainCfValue(configDir: string, name: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(configDir, "main.cf"), "utf8");
  } catch (e) {
    return undefined;
  }
  let found: string | undefined;
  let logical = "";
  const finish = (): void => {
    const m = /^([^\s=]+)\s*=\s*([\s\S]*)$/.exec(logical);
    if (m !== null && m[1] === name) found = m[2].replace(/\s+/g, " ").trim();
    logical = "";
  };
  for (const line of text.split("\n")) {
    if (/^\s*#/.test(line) || /^\s*$/.test(line)) continue;
    if (/^\s/.test(line)) logical += ` ${line.trim()}`;
    else {
      finish();
      logical = line;
    }
  }
  finish();
  return found;
}

/** commandDirectory - where postlog and postconf are: -o or main.cf when a plain absolute path, else /usr/sbin */
export function commandDirectory(where: PostlogWhere): string {
  const set = overrideValue(where.argv, "command_directory") || mainCfValue(configDirectory(where.env), "command_directory");
  return set !== undefined && set.charAt(0) === "/" && set.indexOf("$") < 0 ? set : DEF_COMMAND_DIRECTORY;
}

/** plainName - a syslog_name fit for a tag: no white space, no control characters */
function plainName(value: string | undefined): string | undefined {
  return value !== undefined && /^[^\s$\x00-\x1f]+$/.test(value) ? value : undefined;
}

/**
 * syslogName - syslog_name as Postfix expands it, asked of postconf (-c the
 * config directory, the command line's -o); else a plain value in main.cf;
 * else "postfix"
 */
export function syslogName(where: PostlogWhere): string {
  const known = plainName(where.syslogName);
  if (known !== undefined) return known;
  const overrides: string[] = [];
  for (let i = 0; i < where.argv.length; i++) {
    if (where.argv[i] === "-o" && i + 1 < where.argv.length) overrides.push("-o", where.argv[++i]);
  }
  const configDir = configDirectory(where.env);
  const asked = runCommand(path.join(commandDirectory(where), "postconf"),
    ["-c", configDir].concat(overrides, ["-xh", "syslog_name"]), where.env);
  const answer = asked.status === 0 ? plainName(asked.stdout.trim()) : undefined;
  if (answer !== undefined) return answer;
  return plainName(overrideValue(where.argv, "syslog_name")) || plainName(mainCfValue(configDir, "syslog_name")) || "postfix";
}

/** oneLine - text for one log record: control characters (newlines too) become blanks */
export function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]+/g, " ").trim();
}

interface CommandResult {
  status: number | null;
  stdout: string;
  error: string;
}

/** runCommand - run FILE ARGS synchronously with no input, bounded in time; never throws */
function runCommand(file: string, args: string[], env: { [name: string]: string | undefined }): CommandResult {
  try {
    const r = childProcess.spawnSync(file, args, {
      env: env as NodeJS.ProcessEnv,
      stdio: ["ignore", "pipe", "pipe"],
      timeout: COMMAND_TIMEOUT_MS,
      encoding: "utf8",
    });
    const error = r.error ? String(r.error.message) : oneLine(String(r.stderr || ""));
    return { status: r.status, stdout: String(r.stdout || ""), error };
  } catch (e) {
    return { status: null, stdout: "", error: String(e instanceof Error ? e.message : e) };
  }
}

/**
 * postlogLine - "postlog -c DIR -t $syslog_name/NAME -p LEVEL -- TEXT": one
 * line to the mail log. Returns "" when postlog ran, else why not.
 */
export function postlogLine(level: string, text: string, where: PostlogWhere): string {
  const postlog = path.join(commandDirectory(where), "postlog");
  const tag = `${syslogName(where)}/${where.name}`;
  const rest = ["-t", tag, "-p", POSTLOG_LEVEL[level] || "info", "--", oneLine(text)];
  const r = runCommand(postlog, ["-c", configDirectory(where.env)].concat(rest), where.env);
  if (r.status === 0) return "";
  const why = `${postlog}: ${r.error || (r.status === null ? "did not finish" : `exit status ${r.status}`)}`;
  if (r.status === null) return why;
  // postlog refused the main.cf (the mistake being reported, perhaps): syslog with Postfix's defaults
  let empty = "";
  try {
    empty = fs.mkdtempSync(path.join(os.tmpdir(), "tlsmgr-postlog-"));
    fs.writeFileSync(path.join(empty, "main.cf"), "");
    const again = runCommand(postlog, ["-c", empty].concat(rest), where.env);
    return again.status === 0 ? "" : why;
  } catch (e) {
    return why;
  } finally {
    if (empty !== "") rmTree(empty);
  }
}

/** rmTree - remove the directory made for an empty main.cf (fs.rmSync is newer than Node.js 10) */
function rmTree(dir: string): void {
  try {
    fs.unlinkSync(path.join(dir, "main.cf"));
    fs.rmdirSync(dir);
  } catch (e) {
    /* a file in the temporary directory */
  }
}
