/**
 * tlsmgr-postfix.ts - put this project's tlsmgr into a Postfix instance's
 *                     master.cf, or give the line back to Postfix's tlsmgr.
 * Owns: the subcommands (install, uninstall, keygen: the key wrap file of
 *       tools/keygen.ts),
 *       reading and rewriting the $tlsmgr_service_name/unix line through
 *       `postconf -c DIR -M` / `-Me`, the command path master(8) can run, the
 *       chroot column when chroot cannot be honoured, removing on uninstall
 *       the LMDB cache files Postfix's tlsmgr cannot open, and what it tells
 *       the admin.
 * Not here: the daemon (main.ts), the launcher (bin/tlsmgr), chroot itself
 *           (master/privileges.ts).
 * See also: bin/tlsmgr-postfix, postfix/src/master/master_ent.c, master(5), postconf(1)
 *
 * master(8) runs "$daemon_directory/" + command (master_ent.c concatenates;
 * an absolute command does not escape daemon_directory). So the command
 * column gets the path of bin/tlsmgr relative to the real daemon_directory,
 * e.g. ../../../../opt/tlsmgr-ts/bin/tlsmgr, which names bin/tlsmgr whatever
 * the working directory. Its basename stays "tlsmgr", so process_name and the
 * log tag stay postfix/tlsmgr.
 *
 * Uninstall removes the session cache files this daemon writes for lmdb:,
 * btree: and hash: maps (NAME.lmdb and NAME.lmdb-lock): they are in the data
 * format of the LMDB bundled with npm "lmdb", which Postfix's liblmdb refuses
 * ("MDB_INVALID: File is not an LMDB file"), leaving Postfix's tlsmgr without
 * a session cache. Both tlsmgrs empty their caches at start-up, so nothing
 * is lost. Install needs no such step: this daemon removes them at start.
 */

import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FatalError, msgFatal, msgWarn, setMsgSinks, setProcessName } from "../log/msg.js";
import { nativeAvailable, nativeLoadError } from "../native/posix.js";
import { keygen } from "./keygen.js";

const PROGRAM = "tlsmgr-postfix";
const USAGE = `usage: ${PROGRAM} install [CONFIG_DIR] | uninstall [CONFIG_DIR] | keygen FILE`;

/** The project root: this file is dist/src/tools/tlsmgr-postfix.js. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const TLSMGR_BIN = path.join(PROJECT_ROOT, "bin", "tlsmgr");

/** Postfix's own defaults for the line (master.cf as shipped, chroot n). */
export const POSTFIX_TLSMGR_FIELDS = ["-", "-", "n", "1000?", "1"];

/** A master.cf service line, split as postconf -M prints it. */
export interface MasterEntry {
  service: string;
  type: string;
  /** private, unpriv, chroot, wakeup, maxproc */
  columns: string[];
  command: string;
  args: string[];
}

/** parseMasterEntry - one line of `postconf -M`, or undefined for an empty answer */
export function parseMasterEntry(line: string): MasterEntry | undefined {
  const f = line.trim().split(/\s+/);
  if (f.length < 8 || f[0] === "") return undefined;
  return { service: f[0], type: f[1], columns: f.slice(2, 7), command: f[7], args: f.slice(8) };
}

/** formatMasterEntry - the value for `postconf -Me service/type=...` */
export function formatMasterEntry(e: MasterEntry): string {
  return [e.service, e.type, ...e.columns, e.command, ...e.args].join(" ");
}

/** postconfPath - postconf(1); the PATH of an admin's shell, else where Debian puts it */
function postconfEnv(): NodeJS.ProcessEnv {
  const extra = "/usr/sbin:/usr/bin:/sbin:/bin";
  return { ...process.env, PATH: process.env.PATH ? `${process.env.PATH}:${extra}` : extra };
}

/** postconf - run postconf with these arguments; its stdout, or fatal with its stderr */
function postconf(args: string[]): string {
  try {
    return execFileSync("postconf", args, { encoding: "utf8", env: postconfEnv(), stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stderr?: string; message?: string; code?: string };
    if (e.code === "ENOENT") msgFatal("cannot run postconf: is Postfix installed?");
    msgFatal(`postconf ${args.join(" ")}: ${(e.stderr ?? e.message ?? "").trim() || "failed"}`);
  }
}

/** instanceFacts - what we need from that instance's main.cf */
function instanceFacts(configDir: string): { service: string; daemonDir: string } {
  for (const f of ["main.cf", "master.cf"]) {
    if (!existsSync(path.join(configDir, f))) msgFatal(`${configDir}/${f}: no such file: is this a Postfix configuration directory?`);
  }
  const [service, daemonDir] = postconf(["-c", configDir, "-h", "tlsmgr_service_name", "daemon_directory"])
    .split("\n")
    .map((s) => s.trim());
  if (!service || !daemonDir) msgFatal(`${configDir}/main.cf: cannot read tlsmgr_service_name and daemon_directory`);
  return { service, daemonDir };
}

/** currentEntry - the service's unix line, or undefined when master.cf has none */
function currentEntry(configDir: string, service: string): MasterEntry | undefined {
  const out = postconf(["-c", configDir, "-M", `${service}/unix`]);
  return parseMasterEntry(out.split("\n")[0] ?? "");
}

/** writeEntry - replace (or add) the line through postconf -Me */
function writeEntry(configDir: string, e: MasterEntry): void {
  postconf(["-c", configDir, "-Me", `${e.service}/${e.type}=${formatMasterEntry(e)}`]);
}

/** commandFor - the command column that makes master run bin/tlsmgr */
export function commandFor(daemonDir: string, bin: string = TLSMGR_BIN): string {
  let realDaemonDir: string;
  try {
    realDaemonDir = realpathSync(daemonDir);
  } catch {
    msgFatal(`daemon_directory ${daemonDir}: no such directory`);
  }
  let realBin = bin;
  try {
    realBin = realpathSync(bin);
  } catch {
    /* not built yet: warned about by the caller */
  }
  const rel = path.relative(realDaemonDir, realBin);
  if (/\s/.test(rel)) msgFatal(`${realBin}: a path with white space cannot be a master.cf command`);
  return rel;
}

/** stateFile - where install remembers a chroot column it changed, per config directory */
function stateFile(configDir: string): string {
  const key = createHash("sha256").update(path.resolve(configDir)).digest("hex").slice(0, 16);
  return path.join(PROJECT_ROOT, "build", "postfix-install", `${key}.json`);
}

/** say - a line for the admin on stdout */
function say(text: string): void {
  process.stdout.write(`${PROGRAM}: ${text}\n`);
}

/** install - make the instance's tlsmgr line run this project's bin/tlsmgr */
export function install(configDir: string): void {
  const { service, daemonDir } = instanceFacts(configDir);
  const was = currentEntry(configDir, service);
  const entry: MasterEntry = was
    ? { ...was, columns: [...was.columns], args: [...was.args] }
    : { service, type: "unix", columns: [...POSTFIX_TLSMGR_FIELDS], command: "tlsmgr", args: [] };
  try {
    accessSync(TLSMGR_BIN, constants.X_OK);
  } catch {
    msgWarn(`${TLSMGR_BIN} is missing or not executable: build this project before postfix reload`);
  }
  entry.command = commandFor(daemonDir);
  const chroot = entry.columns[2];
  let chrootWas: string | undefined;
  if (chroot !== "n" && !nativeAvailable()) {
    chrootWas = chroot;
    entry.columns[2] = "n";
    say(
      `chroot cannot be honoured (${nativeLoadError()}): ` +
        `chroot column of ${service}/unix changed from ${chroot} to n`,
    );
  }
  writeEntry(configDir, entry);
  const state = stateFile(configDir);
  if (chrootWas !== undefined) {
    mkdirSync(path.dirname(state), { recursive: true });
    writeFileSync(state, JSON.stringify({ configDir: path.resolve(configDir), service, chroot: chrootWas }) + "\n");
  }
  say(`${path.join(configDir, "master.cf")}: ${service}/unix now runs ${TLSMGR_BIN}`);
  say(`  ${formatMasterEntry(entry)}`);
  say(`run "postfix${configDir === "/etc/postfix" ? "" : ` -c ${configDir}`} reload" to put it in service`);
}

/**
 * Map types this daemon keeps in NAME.lmdb, and that suffix: LMDB_MAP_TYPES and
 * lmdbFileFor() of cache/backends/lmdb.ts, not imported so that this tool
 * does not load the lmdb package.
 */
const LMDB_MAP_TYPES = ["lmdb", "btree", "hash"];
const lmdbFileFor = (name: string): string => `${name}.lmdb`;

/** The session cache parameters of tlsmgr(8). */
const CACHE_PARAMS = ["smtpd_tls_session_cache_database", "smtp_tls_session_cache_database", "lmtp_tls_session_cache_database"];

/** lmdbCacheFiles - the files this daemon keeps for the instance's lmdb:, btree: and hash: caches */
export function lmdbCacheFiles(configDir: string): string[] {
  const values = postconf(["-c", configDir, "-xh", "queue_directory", ...CACHE_PARAMS]).split("\n").map((v) => v.trim());
  const queueDir = values[0] ?? "";
  const files: string[] = [];
  for (const value of values.slice(1)) {
    const colon = value.indexOf(":");
    if (colon < 0 || !LMDB_MAP_TYPES.includes(value.slice(0, colon))) continue;
    const name = value.slice(colon + 1);
    if (name === "") continue;
    // Postfix's daemons run in queue_directory: a relative name is relative to it
    const base = lmdbFileFor(path.isAbsolute(name) ? name : path.join(queueDir, name));
    files.push(base, `${base}-lock`);
  }
  return files;
}

/** removeLmdbCaches - remove those files, saying so (a failure is a warning: caches are disposable) */
function removeLmdbCaches(configDir: string): void {
  for (const file of lmdbCacheFiles(configDir)) {
    if (!existsSync(file)) continue;
    try {
      rmSync(file, { force: true });
      say(`removed ${file}: Postfix's LMDB cannot open this daemon's cache files; its tlsmgr makes new ones`);
    } catch (err) {
      msgWarn(`cannot remove ${file}: ${(err as Error).message}: Postfix's tlsmgr may find it unusable`);
    }
  }
}

/** uninstall - give the line back to Postfix's own tlsmgr, keeping the other columns */
export function uninstall(configDir: string): void {
  const { service } = instanceFacts(configDir);
  const was = currentEntry(configDir, service);
  const entry: MasterEntry = was
    ? { ...was, columns: [...was.columns], args: [...was.args] }
    : { service, type: "unix", columns: [...POSTFIX_TLSMGR_FIELDS], command: "tlsmgr", args: [] };
  entry.command = "tlsmgr";
  const state = stateFile(configDir);
  if (existsSync(state)) {
    try {
      const saved = JSON.parse(readFileSync(state, "utf8")) as { chroot?: string };
      if (saved.chroot && entry.columns[2] === "n") {
        entry.columns[2] = saved.chroot;
        say(`chroot column of ${service}/unix set back to ${saved.chroot}`);
      }
    } catch {
      msgWarn(`${state}: unreadable; chroot column left as it is`);
    }
  }
  writeEntry(configDir, entry);
  rmSync(state, { force: true });
  removeLmdbCaches(configDir);
  say(`${path.join(configDir, "master.cf")}: ${service}/unix runs Postfix's tlsmgr again`);
  say(`  ${formatMasterEntry(entry)}`);
  say(`run "postfix${configDir === "/etc/postfix" ? "" : ` -c ${configDir}`} reload" to put it in service`);
}

/** Subcommands: name -> action (each checks its own arguments). */
const COMMANDS: Record<string, (args: string[]) => void> = {
  install: (args) => install(configArg(args)),
  uninstall: (args) => uninstall(configArg(args)),
  keygen: (args) => {
    if (args.length !== 1) msgFatal(USAGE);
    keygen(args[0]!);
  },
};

/** configArg - [CONFIG_DIR], else MAIL_CONFIG, else /etc/postfix */
function configArg(args: string[]): string {
  if (args.length > 1) msgFatal(USAGE);
  return args[0] ?? (process.env.MAIL_CONFIG || "/etc/postfix");
}

/** main - run one subcommand; exit status 0 or 1 */
export function main(argv: string[]): number {
  setProcessName(PROGRAM);
  setMsgSinks([
    {
      write(level, text) {
        process.stderr.write(`${PROGRAM}: ${level === "info" ? "" : `${level}: `}${text}\n`);
      },
    },
  ]);
  try {
    const [name, ...rest] = argv;
    const run = name !== undefined ? COMMANDS[name] : undefined;
    if (!run || !Object.prototype.hasOwnProperty.call(COMMANDS, name!)) msgFatal(USAGE);
    run(rest);
    return 0;
  } catch (err) {
    if (err instanceof FatalError) return 1;
    process.stderr.write(`${PROGRAM}: fatal: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
