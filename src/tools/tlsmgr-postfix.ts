/**
 * tlsmgr-postfix.ts - put this project's tlsmgr into a Postfix instance's
 *                     master.cf, or give the line back to Postfix's tlsmgr.
 * Owns: the subcommands (install, uninstall, keygen: the key wrap file of
 *       tools/keygen.ts) and their options, install's choice of what master
 *       runs (a snapshot of this tree by default, tools/snapshot.ts),
 *       reading and rewriting the $tlsmgr_service_name/unix line through
 *       `postconf -c DIR -M` / `-Me`, the command path master(8) can run, the
 *       chroot column when chroot cannot be honoured, the -o that declares
 *       this project's main.cf parameters to postconf, refusing a tree that
 *       others than root can change, on uninstall commenting out the main.cf
 *       settings Postfix's tlsmgr cannot use and removing this daemon's
 *       cache and key files, and what it tells the admin.
 * Not here: the snapshot itself (tools/snapshot.ts), the daemon (main.ts), the launcher (bin/tlsmgr), chroot itself
 *           (master/privileges.ts), which settings are ours
 *           (tools/main-cf-restore.ts), the tree walk (util/tree-check.ts).
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
 * btree: and hash: maps (NAME.lmdb and NAME.lmdb-lock). For lmdb: they are
 * in the data format of the LMDB bundled with npm "lmdb", which Postfix's
 * liblmdb refuses ("MDB_INVALID: File is not an LMDB file"), leaving Postfix's
 * tlsmgr without a session cache; for btree: and hash: Postfix's tlsmgr uses
 * Berkeley DB's NAME.db and never opens them: they are only left-overs. Both
 * tlsmgrs empty their caches at start-up, so nothing is lost. Install needs
 * no such step: this daemon removes them at start.
 */

import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FatalError, msgFatal, msgWarn, setMsgSinks, setProcessName } from "../log/msg.js";
import { nativeAvailable, nativeLoadError } from "../native/posix.js";
import { infoOption } from "../cli/usage.js";
import { keygen } from "./keygen.js";
import {
  CACHE_PARAMS, OWN_PARAMS, declareArgs, mapType, ownParamsSet, parseNameValues, settingsPostfixRefuses, withoutDeclareArgs,
} from "./main-cf-restore.js";
import { unreadableEntry, unsafeEntries } from "../util/tree-check.js";
import { DEF_VERSIONS_DIR, KEEP_OTHERS, makeSnapshot, pruneSnapshots, snapshotOf } from "./snapshot.js";
import { mainCfRead } from "../config/main-cf.js";
import { loadConfig } from "../config/params.js";

const PROGRAM = "tlsmgr-postfix";
const USAGE = `usage: ${PROGRAM} install [--force] [--versions DIR | --in-place] [CONFIG_DIR] | uninstall [--keep-main-cf] [CONFIG_DIR] | keygen FILE`;
const HELP = `${USAGE}
       ${PROGRAM} --help | --version

  install [--force] [--versions DIR | --in-place] [CONFIG_DIR]
      Copy this installation to a snapshot of its own, DIR/VERSION-HASH
      (--versions, default ${DEF_VERSIONS_DIR}), which nothing changes
      afterwards, and make the tlsmgr service of master.cf run its bin/tlsmgr
      (through postconf -M; the other columns are kept); older snapshots but
      the one master ran until now and the ${KEEP_OTHERS} newest are removed.
      --in-place runs this tree itself (rebuilding it then changes the code
      of a daemon being started). It also declares the
      tlsmgr_* parameters main.cf sets to postconf (-o smtpd_restriction_classes=...
      on that line, so that postfix check does not call them unused; run install
      again after changing which of them main.cf sets). Refuses when anyone but
      root can change this installation (master(8) runs it as root), unless
      --force; warns when mail_owner cannot read it.
  uninstall [--keep-main-cf] [CONFIG_DIR]
      Give the line back to Postfix's own tlsmgr, comment out (postconf -#) the
      main.cf settings it cannot use (this project's tlsmgr_* parameters, session
      caches of a map type Postfix lacks, such as redis:), remove the ticket key
      file and this daemon's LMDB cache files. --keep-main-cf: only print the
      main.cf lines and the command that comments them out.
  keygen FILE
      Make the key_wrap_file (mode 0600) that seals ticket keys stored in Redis.

CONFIG_DIR defaults to $MAIL_CONFIG, else /etc/postfix. Then run "postfix reload".`;

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

/** postconfEnv - postconf(1)'s environment: the PATH of an admin's shell, else where Debian puts it */
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

/** mailOwnerIds - uid and groups of the instance's mail_owner, or undefined when unknown here */
function mailOwnerIds(configDir: string): { name: string; uid: number; groups: number[] } | undefined {
  const name = postconf(["-c", configDir, "-h", "mail_owner"]).trim();
  try {
    const id = (flag: string) => execFileSync("id", [flag, name], { encoding: "utf8", env: postconfEnv(), stdio: ["ignore", "pipe", "ignore"] }).trim();
    return { name, uid: Number(id("-u")), groups: id("-G").split(/\s+/).map(Number) };
  } catch {
    return undefined;
  }
}

/** checkTree - refuse a tree others than root can change (unless force); warn when mail_owner cannot read it */
function checkTree(configDir: string, force: boolean, root: string = PROJECT_ROOT): void {
  const unsafe = unsafeEntries(root, [process.execPath]);
  if (unsafe.length > 0) {
    // One line (log lines never hold a newline): the entries separated by "; ".
    const text = `master(8) runs ${path.join(root, "bin", "tlsmgr")} as root, and this can be changed by others than root: ${unsafe.join("; ")}` +
      " (install it owned by root and writable by root alone: see README, Install)";
    if (!force) msgFatal(`${text}; --force installs anyway`);
    msgWarn(`${text}; installing anyway (--force)`);
  }
  const owner = mailOwnerIds(configDir);
  if (owner === undefined) return;
  const blocked = unreadableEntry(root, owner);
  if (blocked !== undefined)
    msgWarn(`mail_owner ${owner.name} cannot read ${blocked}: the daemon loads its code as root before it drops privileges, ` +
      "but make the tree readable (chmod -R go+rX) so that nothing it loads later fails");
}

/** What install is told besides the config directory. */
export interface InstallOptions {
  force?: boolean;
  /** where snapshots go (default DEF_VERSIONS_DIR) */
  versionsDir?: string;
  /** run this tree itself, no snapshot */
  inPlace?: boolean;
}

/**
 * install - make the instance's tlsmgr line run a snapshot of this project
 * (tools/snapshot.ts), or with inPlace its own bin/tlsmgr
 */
export function install(configDir: string, opts: InstallOptions = {}): void {
  const { service, daemonDir } = instanceFacts(configDir);
  checkTree(configDir, opts.force === true);
  const was = currentEntry(configDir, service);
  const entry: MasterEntry = was
    ? { ...was, columns: [...was.columns], args: [...was.args] }
    : { service, type: "unix", columns: [...POSTFIX_TLSMGR_FIELDS], command: "tlsmgr", args: [] };
  let bin = TLSMGR_BIN;
  let snapshot: ReturnType<typeof makeSnapshot> | undefined;
  const versionsDir = path.resolve(opts.versionsDir ?? DEF_VERSIONS_DIR);
  if (opts.inPlace === true) {
    try {
      accessSync(TLSMGR_BIN, constants.X_OK);
    } catch {
      msgWarn(`${TLSMGR_BIN} is missing or not executable: build this project before postfix reload`);
    }
  } else {
    snapshot = makeSnapshot(PROJECT_ROOT, versionsDir);
    checkTree(configDir, opts.force === true, snapshot.root);
    bin = path.join(snapshot.root, "bin", "tlsmgr");
    say(`${snapshot.made ? "made" : "using"} snapshot ${snapshot.root} of ${PROJECT_ROOT}`);
  }
  // master starts the old command until postfix reload: its snapshot stays
  const before = was && was.command !== "tlsmgr" ? snapshotOf(path.resolve(daemonDir, was.command), versionsDir) : undefined;
  entry.command = commandFor(daemonDir, bin);
  const declared = ownParamsSet(mainCfSettings(configDir));
  entry.args = [...withoutDeclareArgs(entry.args), ...declareArgs(declared)];
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
  say(`${path.join(configDir, "master.cf")}: ${service}/unix now runs ${bin}`);
  say(`  ${formatMasterEntry(entry)}`);
  if (declared.length > 0)
    say(`main.cf parameters of this daemon declared to postconf (-o smtpd_restriction_classes): ${declared.join(", ")}`);
  if (snapshot !== undefined) {
    for (const gone of pruneSnapshots(versionsDir, [snapshot.root, ...(before ? [before] : [])]))
      say(`removed old snapshot ${gone}`);
  }
  say(`run "postfix${configDir === "/etc/postfix" ? "" : ` -c ${configDir}`} reload" to put it in service`);
}

/**
 * Map types this daemon keeps in NAME.lmdb, and that suffix: LMDB_MAP_TYPES and
 * lmdbFileFor() of cache/backends/lmdb.ts, not imported so that this tool
 * does not load the lmdb package.
 */
const LMDB_MAP_TYPES = ["lmdb", "btree", "hash"];
const lmdbFileFor = (name: string): string => `${name}.lmdb`;

/** lmdbCacheFiles - the files this daemon keeps for the instance's lmdb:, btree: and hash: caches */
export function lmdbCacheFiles(configDir: string): string[] {
  return lmdbCaches(configDir).flatMap((c) => c.files);
}

/** lmdbCaches - per lmdb:, btree: or hash: cache: its map type and this daemon's files for it */
function lmdbCaches(configDir: string): Array<{ type: string; name: string; files: string[] }> {
  const values = postconf(["-c", configDir, "-xh", "queue_directory", ...CACHE_PARAMS]).split("\n").map((v) => v.trim());
  const queueDir = values[0] ?? "";
  const caches: Array<{ type: string; name: string; files: string[] }> = [];
  for (const value of values.slice(1)) {
    const colon = value.indexOf(":");
    const type = value.slice(0, colon);
    if (colon < 0 || !LMDB_MAP_TYPES.includes(type)) continue;
    const name = value.slice(colon + 1);
    if (name === "") continue;
    // Postfix's daemons run in queue_directory: a relative name is relative to it
    const base = lmdbFileFor(path.isAbsolute(name) ? name : path.join(queueDir, name));
    caches.push({ type, name, files: [base, `${base}-lock`] });
  }
  return caches;
}

/** removeLmdbCaches - remove those files, saying why for each map type (a failure is a warning: caches are disposable) */
function removeLmdbCaches(configDir: string): void {
  for (const cache of lmdbCaches(configDir)) {
    const why = cache.type === "lmdb"
      ? "Postfix's liblmdb cannot open this daemon's LMDB files (another data format); its tlsmgr makes new ones"
      : `this daemon kept ${cache.type}:${cache.name} in LMDB; Postfix's tlsmgr uses Berkeley DB's ${cache.name}.db and never opens it`;
    for (const file of cache.files) {
      if (!existsSync(file)) continue;
      try {
        rmSync(file, { force: true });
        say(`removed ${file}: ${why}`);
      } catch (err) {
        msgWarn(`cannot remove ${file}: ${(err as Error).message}`);
      }
    }
  }
}

/**
 * mainCfSettings - this project's parameters and the cache parameters as main.cf
 * sets them (unexpanded). Read with the project's own parser: `postconf -n`
 * leaves out the names it calls unused.
 */
function mainCfSettings(configDir: string): Map<string, string> {
  const mainCf = mainCfRead(path.join(configDir, "main.cf"), false);
  const out = new Map<string, string>();
  for (const name of [...OWN_PARAMS, ...CACHE_PARAMS]) {
    const value = mainCf?.get(name);
    if (value !== undefined) out.set(name, value);
  }
  return out;
}

/**
 * restoreMainCf - comment out (postconf -#) the settings Postfix's tlsmgr
 * cannot use, saying which; with keep, only print them and the command. The
 * ticket key file goes with its setting: Postfix's tlsmgr keeps keys in memory.
 */
function restoreMainCf(configDir: string, keep: boolean): void {
  const mainCf = mainCfSettings(configDir);
  const expanded = parseNameValues(postconf(["-c", configDir, "-nx", ...CACHE_PARAMS.filter((p) => mainCf.has(p))]));
  const mapTypes = postconf(["-m"]).split("\n").map((t) => t.trim()).filter((t) => t !== "");
  const names = settingsPostfixRefuses(mainCf, expanded, mapTypes);
  const mainCfPath = path.join(configDir, "main.cf");
  if (names.length === 0) return;
  const why = (n: string) =>
    n.startsWith("tlsmgr_") ? "a parameter of this daemon only" : `Postfix has no ${mapType(expanded.get(n) ?? mainCf.get(n) ?? "")}: map type`;
  const command = `postconf${configDir === "/etc/postfix" ? "" : ` -c ${configDir}`} -# ${names.join(" ")}`;
  // expanded before the setting is commented out
  const keyFile = mainCf.has("tlsmgr_ticket_key_database") ? loadConfig({ configDir }).tlsmgr_ticket_key_database.trim() : "";
  if (keep) {
    say(`${mainCfPath}: Postfix's tlsmgr cannot use these settings; comment them out with: ${command}`);
    for (const n of names) say(`  ${n} = ${mainCf.get(n)}    (${why(n)})`);
    return;
  }
  postconf(["-c", configDir, "-#", ...names]);
  say(`${mainCfPath}: commented out the settings Postfix's tlsmgr cannot use:`);
  for (const n of names) say(`  #${n} = ${mainCf.get(n)}    (${why(n)})`);
  if (keyFile.startsWith("/") && existsSync(keyFile)) {
    try {
      rmSync(keyFile, { force: true });
      say(`removed ${keyFile}: this daemon's session ticket keys (Postfix's tlsmgr keeps its keys in memory)`);
    } catch (err) {
      msgWarn(`cannot remove ${keyFile}: ${(err as Error).message}: remove it by hand, it holds ticket keys`);
    }
  }
}

/** uninstall - give the line back to Postfix's own tlsmgr, keeping the other columns; main.cf too unless keepMainCf */
export function uninstall(configDir: string, opts: { keepMainCf?: boolean } = {}): void {
  const { service } = instanceFacts(configDir);
  const was = currentEntry(configDir, service);
  const entry: MasterEntry = was
    ? { ...was, columns: [...was.columns], args: [...was.args] }
    : { service, type: "unix", columns: [...POSTFIX_TLSMGR_FIELDS], command: "tlsmgr", args: [] };
  entry.command = "tlsmgr";
  entry.args = withoutDeclareArgs(entry.args);
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
  restoreMainCf(configDir, opts.keepMainCf === true);
  say(`${path.join(configDir, "master.cf")}: ${service}/unix runs Postfix's tlsmgr again`);
  say(`  ${formatMasterEntry(entry)}`);
  say(`run "postfix${configDir === "/etc/postfix" ? "" : ` -c ${configDir}`} reload" to put it in service`);
}

/** Subcommands: name -> action on the words after it. */
const COMMANDS: Record<string, (args: string[]) => void> = {
  install: (args) => {
    const { flags, rest, values } = subcommandFlags(args, ["--force", "--in-place"], ["--versions"]);
    const versionsDir = values.get("--versions");
    if (versionsDir !== undefined && flags.has("--in-place")) msgFatal(`--versions and --in-place exclude each other; ${USAGE}`);
    install(configArg(rest), {
      force: flags.has("--force"),
      inPlace: flags.has("--in-place"),
      ...(versionsDir !== undefined ? { versionsDir } : {}),
    });
  },
  uninstall: (args) => {
    const { flags, rest } = subcommandFlags(args, ["--keep-main-cf"]);
    uninstall(configArg(rest), { keepMainCf: flags.has("--keep-main-cf") });
  },
  keygen: (args) => {
    if (args.length !== 1 || args[0]!.startsWith("-")) msgFatal(USAGE);
    keygen(args[0]!);
  },
};

/**
 * subcommandFlags - split the known flags and the options that take a value
 * (--name VALUE or --name=VALUE) from the other words; an unknown -word is a usage error
 */
function subcommandFlags(args: string[], known: string[], withValue: string[] = []):
  { flags: Set<string>; rest: string[]; values: Map<string, string> } {
  const flags = new Set<string>();
  const rest: string[] = [];
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf("=");
    if (known.includes(a)) flags.add(a);
    else if (withValue.includes(a)) {
      const v = args[++i];
      if (v === undefined || v === "") msgFatal(`${a} needs a value; ${USAGE}`);
      values.set(a, v);
    } else if (eq > 0 && withValue.includes(a.slice(0, eq)) && a.length > eq + 1) values.set(a.slice(0, eq), a.slice(eq + 1));
    else if (a.startsWith("-")) msgFatal(`unknown option ${a}; ${USAGE}`);
    else rest.push(a);
  }
  return { flags, rest, values };
}

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
    if (infoOption(PROGRAM, argv, HELP)) return 0;
    const [name, ...rest] = argv;
    if (rest[0] === "--help" || rest[0] === "-h") {
      process.stdout.write(`${HELP}\n`);
      return 0;
    }
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
