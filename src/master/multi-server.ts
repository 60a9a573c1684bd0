/**
 * multi-server.ts - the daemon skeleton: what a master(8) child does around
 *                   its own work, after Postfix's multi_server_main().
 * Owns: the start-up order (command line, main.cf, logging, under master
 *       as root the check of the running tree (master/tree-guard.ts), the master link,
 *       mail_owner looked up once, chdir to queue_directory, the service's
 *       pre-init while privileged, the listener, the privilege drop, the
 *       service's post-init), the embedded `--home` mode, -S (one client on
 *       standard input and output), SIGTERM/SIGINT and master's going away,
 *       the lines before main.cf is read going to the mail log under master
 *       (log/early-sink.ts), an uncaught exception logged as a fatal line,
 *       the start-up version line, and the one close-all path that a normal
 *       stop and a failed start both take.
 * Not here: what a service opens and serves (its hooks; tlsmgr's are in
 *           main.ts), accepting and the request loop (server/), the
 *           parameter table (config/params.ts), the command line syntax
 *           (cli/args.ts), the master protocol (master/master-link.ts).
 * See also: postfix/src/master/multi_server.c (multi_server_main),
 *           postfix/src/global/mail_params.c (check_mail_owner)
 *
 * Hooks, as multi_server_main's MAIL_SERVER_PRE_INIT, _POST_INIT, _EXIT:
 *   preInit    runs with the privileges the daemon started with, in
 *              queue_directory: opens what needs them and returns the
 *              service; each thing it opens that must be closed it gives to
 *              ctx.atClose().
 *   postInit   runs once privileges are dropped (and the listener is up).
 *   beforeExit runs on a normal stop only (signal, master gone, -S client
 *              done), after the listener closed and before the rest: as in
 *              Postfix, a fatal error exits without it.
 * Close-all: the listener, then beforeExit (normal stop), then what was
 * given to atClose() in reverse order, then the master link (its watchdog
 * guards a close that hangs).
 */

import { makeDirs } from "../util/make-dirs.js";
import { userInfo } from "node:os";
import { join, resolve } from "node:path";
import { Duplex } from "node:stream";
import { parseDaemonArgs, requireSolitary, type DaemonArgs } from "../cli/args.js";
import { loadConfig, type TlsmgrConfig } from "../config/params.js";
import { setProcessTitle } from "./process-title.js";
import { errorText } from "../log/errors.js";
import { FatalError, PanicError, msgFatal, msgInfo, setMsgSinks, setMsgVerbose, setProcessName, stderrSink } from "../log/msg.js";
import { setupLogging } from "../log/setup.js";
import { earlyLogSink, uncaughtText } from "../log/early-sink.js";
import { startupLine } from "../cli/usage.js";
import { masterPresent, openMasterLink } from "./master-link.js";
import { dropPrivileges, lookupUser, refuseRoot, type PasswdEntry } from "./privileges.js";
import { treeGuard } from "./tree-guard.js";

/** Where a service listens: master's descriptors, or a socket path it creates. */
export type ListenTarget = { fds: number[] } | { path: string; dirOwner?: { uid: number; gid: number } };

/** What a service's listener gives back: the close-all path closes it first. */
export interface ServiceListener {
  close(): Promise<void>;
}

/**
 * The service that preInit opens. `served` is to be called after each
 * request served (master counts a use); the skeleton passes it.
 */
export interface MultiServerService {
  /** -S: serve one client on this stream. */
  serveStream(stream: Duplex, peer: string, served: () => void): void;
  /** Accept clients on the target. */
  listen(target: ListenTarget, served: () => void): Promise<ServiceListener>;
}

/** Where builtinDefaults looks: the configuration about to be read. */
export interface BuiltinsQuery {
  configDir: string;
  overrides: string[];
  /** --home mode: no Postfix to ask */
  embedded: boolean;
}

/** What the hooks are given. */
export interface MultiServerContext {
  readonly args: DaemonArgs;
  readonly cfg: TlsmgrConfig;
  /** mail_owner as looked up (once); undefined only in --home mode without such an account */
  readonly owner: PasswdEntry | undefined;
  /** Close fn on the way out (stop or failure), in reverse order of the calls. */
  atClose(fn: () => Promise<void> | void): void;
}

export interface MultiServerHooks<S extends MultiServerService> {
  /** The program's name: process name and log tag ("tlsmgr"). */
  name: string;
  /** MAIL_SERVER_SOLITARY: under master, the service must have process limit 1 (-l). */
  solitary?: boolean;
  /** main.cf defaults of the service in the `--home DIR` mode (besides the directories and mail_owner). */
  embeddedDefaults?: Record<string, string>;
  /**
   * Built-in parameter values of the installed release (config/postfix-release.ts),
   * asked before main.cf is read; they are defaults there (below --home defaults).
   */
  builtinDefaults?(where: BuiltinsQuery): Promise<Record<string, string>>;
  /** What beforeExit does, for the line logged when master goes away (default "exiting"). */
  exitNote?: string;
  preInit(ctx: MultiServerContext): Promise<S>;
  postInit?(ctx: MultiServerContext, service: S): void;
  beforeExit?(service: S): Promise<void>;
}

/** One thing to close; stopOnly: on a normal stop only (beforeExit). */
interface Closer {
  fn: () => Promise<void> | void;
  stopOnly: boolean;
}

/** closeAll - the one way out: everything registered, last first; errors are the closers' own business. */
async function closeAll(closers: Closer[], normalStop: boolean): Promise<void> {
  for (const c of closers.splice(0).reverse()) {
    if (c.stopOnly && !normalStop) continue;
    try {
      await c.fn();
    } catch {
      /* each closer says what went wrong itself, if it matters */
    }
  }
}

/** embeddedDefaults - main.cf defaults of the `--home DIR` mode: everything under DIR. */
function embeddedDefaults(home: string, service: Record<string, string> | undefined): Record<string, string> {
  return {
    queue_directory: join(home, "queue"),
    data_directory: join(home, "data"),
    mail_owner: userInfo().username,
    ...service,
  };
}

/**
 * checkMailOwner - Postfix's check_mail_owner, with the one look-up of
 * mail_owner: it must be an account (and not root under master). In --home
 * mode an unknown mail_owner is allowed (undefined).
 */
function checkMailOwner(cfg: TlsmgrConfig, args: DaemonArgs): PasswdEntry | undefined {
  const owner = lookupUser(cfg.mail_owner);
  const where = cfg.main_cf_path ? `file ${cfg.main_cf_path}: ` : "";
  if (!owner) {
    if (args.home !== undefined) return undefined;
    msgFatal(`${where}parameter mail_owner: unknown user name value: ${cfg.mail_owner}`);
  }
  if (owner.uid === 0 && args.underMaster)
    msgFatal(`${where}parameter mail_owner: user ${cfg.mail_owner} has privileged user ID: 0`);
  return owner;
}

/**
 * dropPrivilegesAsAsked - -u: become mail_owner; -c: chroot to queue_directory.
 * Under master, serving as root is refused (set the unpriv column to - or y).
 */
function dropPrivilegesAsAsked(args: DaemonArgs, cfg: TlsmgrConfig, owner: PasswdEntry | undefined): void {
  if (args.dropPrivileges || args.chroot)
    dropPrivileges({
      ...(args.dropPrivileges ? { mailOwner: owner ?? cfg.mail_owner } : {}),
      ...(args.chroot ? { chrootDir: cfg.queue_directory } : {}),
      serviceName: args.serviceName,
    });
  if (args.underMaster) refuseRoot(args.serviceName);
}

/** loadDaemonConfig - main.cf from the config directory, or the --home DIR mode's. */
function loadDaemonConfig(
  args: DaemonArgs,
  serviceDefaults: Record<string, string> | undefined,
  builtins: Record<string, string>,
): TlsmgrConfig {
  const overrides = [...args.overrides, `service_name=${args.serviceName}`];
  if (args.home === undefined) return loadConfig({ configDir: args.configDir, overrides, defaults: builtins });
  const home = resolve(args.home);
  const data = join(home, "data");
  try {
    makeDirs(data, 0o700);
  } catch (err) {
    msgFatal(`create directory ${data}: ${errorText(err)}`);
  }
  return loadConfig({ configDir: home, overrides, defaults: { ...builtins, ...embeddedDefaults(home, serviceDefaults) },
    allowMissingMainCf: true,
  });
}

/** start - everything up to serving; what it opens is on `closers`. */
async function start<S extends MultiServerService>(
  args: DaemonArgs,
  hooks: MultiServerHooks<S>,
  closers: Closer[],
): Promise<void> {
  // -i and -m are accepted as master passes them; like Postfix's tlsmgr, a
  // solitary service never exits for idleness or use count. -n names the service.
  const builtins = hooks.builtinDefaults
    ? await hooks.builtinDefaults({
        configDir: args.home !== undefined ? resolve(args.home) : args.configDir,
        overrides: args.overrides,
        embedded: args.home !== undefined,
      })
    : {};
  const cfg = loadDaemonConfig(args, hooks.embeddedDefaults, builtins);
  const myhostname = cfg.lookup("myhostname");
  setupLogging({
    underMaster: args.underMaster,
    standalone: args.standalone,
    foreground: args.foreground,
    syslog_facility: cfg.syslog_facility,
    syslog_name: cfg.syslog_name,
    process_name: hooks.name,
    maillog_file: cfg.maillog_file,
    queue_directory: cfg.queue_directory,
    postlog_service_name: cfg.postlog_service_name,
    chroot: args.chroot,
    alsoStderr: args.verify,
    maillog_file_prefixes: cfg.maillog_file_prefixes,
    config_directory: cfg.config_directory,
    ...(myhostname ? { myhostname } : {}),
  });
  if (!args.standalone) msgInfo(startupLine());

  // master runs us as root: say so loudly when others could change the files that run.
  if (args.underMaster && process.geteuid?.() === 0) treeGuard();

  const link = args.underMaster ? openMasterLink(args, process.env, cfg.daemon_timeout) : undefined;
  if (link) closers.push({ fn: () => link.close(), stopOnly: false });

  const owner = checkMailOwner(cfg, args);
  // As Postfix's daemons: work from the queue directory (relative paths in
  // main.cf are relative to it). A command-line socket path is made absolute first.
  const socketArg = args.socket !== undefined ? resolve(args.socket) : undefined;
  try {
    makeDirs(cfg.queue_directory, 0o755);
    process.chdir(cfg.queue_directory);
  } catch (err) {
    msgFatal(`chdir ${cfg.queue_directory}: ${errorText(err)}`);
  }

  const ctx: MultiServerContext = {
    args,
    cfg,
    owner,
    atClose: (fn) => closers.push({ fn, stopOnly: false }),
  };
  const service = await hooks.preInit(ctx);
  const beforeExit = hooks.beforeExit;
  if (beforeExit) closers.push({ fn: () => beforeExit(service), stopOnly: true });

  let stopping = false;
  /** stop - a normal stop: say why, close all, exit. */
  const stop = (why: string, code: number): void => {
    if (stopping) return;
    stopping = true;
    msgInfo(why);
    void closeAll(closers, true).finally(() => process.exit(code));
  };
  const served = link ? () => link.requestServed() : () => undefined;

  if (args.standalone) {
    // -S: one client on standard input and output, then exit (Postfix's stand-alone mode).
    dropPrivilegesAsAsked(args, cfg, owner);
    hooks.postInit?.(ctx, service);
    const stdio = Duplex.from({ readable: process.stdin, writable: process.stdout });
    stdio.on("close", () => stop("stand-alone client done", 0));
    service.serveStream(stdio, "stdin", served);
    return;
  }

  // Under master: the descriptors it passes. Else --socket, or $queue_directory/private/$service.
  let socketPath: string | undefined;
  let target: ListenTarget;
  if (link) {
    target = { fds: link.listenFds };
  } else {
    socketPath = socketArg ?? join(cfg.queue_directory, "private", args.serviceName);
    target = { path: socketPath, ...(owner ? { dirOwner: { uid: owner.uid, gid: owner.gid } } : {}) };
  }
  const listener = await service.listen(target, served);
  closers.push({ fn: () => listener.close(), stopOnly: false });

  dropPrivilegesAsAsked(args, cfg, owner);
  hooks.postInit?.(ctx, service);
  if (args.home !== undefined)
    msgInfo(`embedded mode: main.cf (optional), queue and data directories under ${resolve(args.home)}`);
  if (socketPath) msgInfo(`listening on ${socketPath}`);

  process.on("SIGTERM", () => stop("terminating on signal SIGTERM", 0));
  process.on("SIGINT", () => stop("terminating on signal SIGINT", 0));
  link?.onMasterGone(() => stop(`master gone or reloading: ${hooks.exitNote ?? "exiting"}`, 0));
}

/** fatalUncaught - an exception nobody caught: a fatal line where lines go now, its stack on standard error */
function fatalUncaught(name: string, err: unknown): void {
  if (!(err instanceof PanicError)) {
    try {
      msgFatal(uncaughtText(err));
    } catch {
      /* the FatalError msgFatal throws */
    }
  }
  process.stderr.write(`${name}[${process.pid}]: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
}

/**
 * multiServerMain - run a daemon: argv WITHOUT the node and script names.
 * Returns once serving has begun; a fatal error during start-up closes
 * what was opened and exits 1.
 */
export async function multiServerMain<S extends MultiServerService>(
  argv: string[],
  hooks: MultiServerHooks<S>,
): Promise<void> {
  setProcessName(hooks.name);
  // Under master standard error goes nowhere: until main.cf is read, lines go to the mail log through postlog(1).
  if (masterPresent(process.env)) setMsgSinks([stderrSink(), earlyLogSink({ name: hooks.name, argv, env: process.env })]);
  process.on("uncaughtException", (err) => {
    fatalUncaught(hooks.name, err);
    process.exit(1);
  });
  // `tlsmgr -l -t unix -u -c` in ps, `tlsmgr` for pgrep -x and pidof, as Postfix's daemons show
  setProcessTitle(hooks.name, argv);
  const closers: Closer[] = [];
  try {
    const args = parseDaemonArgs(argv, process.env, { underMaster: masterPresent(process.env) });
    setMsgVerbose(args.verbose);
    if (hooks.solitary) requireSolitary(args);
    await start(args, hooks, closers);
  } catch (err) {
    if (!(err instanceof FatalError)) fatalUncaught(hooks.name, err);
    // Leave no socket behind; the stores are closed unsaved-safe.
    await closeAll(closers, false);
    process.exit(1);
  }
}
