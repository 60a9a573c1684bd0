/**
 * main.ts - the tlsmgr executable: argv -> configuration -> caches, keys and
 *           PRNG -> privileges -> listener -> serve until told to stop.
 * Owns: the start-up order (open everything that needs privileges first, then
 *       drop them, as Postfix daemons do), the embedded `--home` mode, and a
 *       clean shutdown on SIGTERM/SIGINT or when master(8) goes away.
 * Not here: any of the parts themselves; see the imports.
 * See also: postfix/src/tlsmgr/tlsmgr.c (main, tlsmgr_pre_init,
 *           tlsmgr_post_init, tlsmgr_before_exit)
 */

import { join, resolve } from "node:path";
import { userInfo } from "node:os";
import { parseDaemonArgs, requireSolitary } from "./cli/args.js";
import type { DaemonArgs } from "./cli/args.js";
import { loadConfig } from "./config/params.js";
import type { TlsmgrConfig } from "./config/params.js";
import { openCacheSet } from "./cache/cache-set.js";
import type { CacheSet } from "./cache/cache-set.js";
import { PrngPool } from "./prng/pool.js";
import { openTicketKeySource } from "./tickets/key-source.js";
import type { TicketKeySource } from "./tickets/ticket-keys.js";
import { openMasterLink } from "./master/master-link.js";
import type { MasterLink } from "./master/master-link.js";
import { dropPrivileges, lookupUser, refuseRoot } from "./master/privileges.js";
import { dataRedirectFile, dataRedirectOwnerUid } from "./cache/data-redirect.js";
import { withEffectiveIds } from "./util/eugid.js";
import { makeDirs } from "./util/make-dirs.js";
import { INSTANCE_LOCK_WAIT_MS, takeInstanceLock } from "./master/instance-lock.js";
import { errorText } from "./log/errors.js";
import { setupLogging } from "./log/setup.js";
import { FatalError, msgFatal, msgInfo, msgWarn, setMsgVerbose, setProcessName } from "./log/msg.js";
import { startListener } from "./server/listener.js";
import { serveConnection } from "./server/connection.js";
import { Duplex } from "node:stream";
import type { TlsmgrListener } from "./server/listener.js";
import type { TlsmgrState } from "./server/handlers.js";
import { CACHE_TYPES } from "./protocol/tlsmgr-proto.js";

/** Bytes of each cache entry (time stamp and session start) that the sweep mixes into the PRNG pool. */
const SWEEP_MIX_BYTES = 64;

/** embeddedDefaults - main.cf defaults of the `--home DIR` mode: everything under DIR, caches on. */
function embeddedDefaults(home: string): Record<string, string> {
  return {
    queue_directory: join(home, "queue"),
    data_directory: join(home, "data"),
    mail_owner: userInfo().username,
    smtpd_tls_session_cache_database: "lmdb:${data_directory}/smtpd_scache",
    smtp_tls_session_cache_database: "lmdb:${data_directory}/smtp_scache",
    lmtp_tls_session_cache_database: "lmdb:${data_directory}/lmtp_scache",
  };
}

interface Running {
  listener?: TlsmgrListener;
  pool?: PrngPool;
  caches?: CacheSet;
  tickets?: TicketKeySource;
  link?: MasterLink;
}

/** shutdown - stop accepting, save the PRNG exchange file, close the stores. */
async function shutdown(run: Running, why: string): Promise<void> {
  msgInfo(why);
  await run.listener?.close().catch(() => undefined);
  await run.pool?.close().catch((err: Error) => msgWarn(`cannot save PRNG exchange file: ${err.message}`));
  await run.tickets?.close().catch(() => undefined);
  await run.caches?.close().catch(() => undefined);
  run.link?.close();
}

/**
 * dropPrivilegesAsAsked - -u: become mail_owner; -c: chroot to queue_directory.
 * Under master, serving as root is refused (set the unpriv column to - or y).
 */
function dropPrivilegesAsAsked(args: DaemonArgs, cfg: TlsmgrConfig): void {
  if (args.dropPrivileges || args.chroot)
    dropPrivileges({
      ...(args.dropPrivileges ? { mailOwner: cfg.mail_owner } : {}),
      ...(args.chroot ? { chrootDir: cfg.queue_directory } : {}),
      serviceName: args.serviceName,
    });
  if (args.underMaster) refuseRoot(args.serviceName);
}

/** What is running, for the clean-up of a fatal error after start-up began. */
const run: Running = {};

/** checkMailOwner - Postfix's check_mail_owner: mail_owner must be an account (and not root under master). */
function checkMailOwner(cfg: TlsmgrConfig, args: DaemonArgs): { uid: number; gid: number } | undefined {
  const owner = lookupUser(cfg.mail_owner);
  const where = cfg.main_cf_path ? `file ${cfg.main_cf_path}: ` : "";
  if (!owner) {
    if (args.home !== undefined) return undefined;
    msgFatal(`${where}parameter mail_owner: unknown user name value: ${cfg.mail_owner}`);
  }
  if (owner.uid === 0 && args.underMaster)
    msgFatal(`${where}parameter mail_owner: user ${cfg.mail_owner} has privileged user ID: 0`);
  return { uid: owner.uid, gid: owner.gid };
}

async function start(args: DaemonArgs): Promise<void> {
  let configDir: string;
  let defaults: Record<string, string> | undefined;
  if (args.home !== undefined) {
    const home = resolve(args.home);
    configDir = home;
    defaults = embeddedDefaults(home);
    try {
      makeDirs(join(home, "data"), 0o700);
    } catch (err) {
      msgFatal(`create directory ${join(home, "data")}: ${errorText(err)}`);
    }
  } else {
    configDir = args.configDir ?? process.env.MAIL_CONFIG ?? "/etc/postfix";
  }
  // -i and -m are accepted as master passes them; tlsmgr, like Postfix's,
  // never exits for idleness or use count. -n names the service.
  const cfg: TlsmgrConfig = loadConfig({
    configDir,
    overrides: [...args.overrides, `service_name=${args.serviceName}`],
    ...(defaults ? { defaults } : {}),
    allowMissingMainCf: args.home !== undefined,
  });

  setupLogging({
    underMaster: args.underMaster,
    standalone: args.standalone,
    foreground: args.foreground,
    syslog_facility: cfg.syslog_facility,
    syslog_name: cfg.syslog_name,
    process_name: "tlsmgr",
    maillog_file: cfg.maillog_file,
    queue_directory: cfg.queue_directory,
    postlog_service_name: cfg.postlog_service_name,
    chroot: args.chroot,
    alsoStderr: args.verify,
    maillog_file_prefixes: cfg.maillog_file_prefixes,
    config_directory: cfg.config_directory,
    ...(cfg.lookup("myhostname") ? { myhostname: cfg.lookup("myhostname")! } : {}),
  });

  if (args.underMaster) run.link = openMasterLink(args, process.env, cfg.daemon_timeout);

  const ownerIds = checkMailOwner(cfg, args);
  // As Postfix's daemons: work from the queue directory (relative paths in
  // main.cf are relative to it). A command-line socket path was made absolute.
  const socketArg = args.socket !== undefined ? resolve(args.socket) : undefined;
  try {
    makeDirs(cfg.queue_directory, 0o755);
    process.chdir(cfg.queue_directory);
  } catch (err) {
    msgFatal(`chdir ${cfg.queue_directory}: ${errorText(err)}`);
  }

  // One tlsmgr per data directory, before any cache is truncated or socket taken over.
  await takeInstanceLock(cfg.data_directory, args.underMaster ? INSTANCE_LOCK_WAIT_MS : 0);

  // Open what needs privileges first: PRNG exchange file, caches, socket.
  // Files are created with mail_owner's ids, as Postfix's tlsmgr does.
  const exchangeName = await dataRedirectFile(cfg.tls_random_exchange_name, {
    data_directory: cfg.data_directory,
    mail_owner: cfg.mail_owner,
    ownerUid: await dataRedirectOwnerUid(cfg.mail_owner),
  });
  const pool = (run.pool = await withEffectiveIds(ownerIds, () =>
    PrngPool.open({ ...cfg, tls_random_exchange_name: exchangeName }),
  ));
  const caches = (run.caches = await withEffectiveIds(ownerIds, () =>
    // Entries met by the sweep feed the pool (as Postfix's tlsmgr does); a
    // bounded part of each keeps the sweep's cost per entry small.
    openCacheSet(cfg, { onSweepEntry: (_type, id, value) => pool.mixEntry(id, value.subarray(0, SWEEP_MIX_BYTES)) }),
  ));
  run.tickets = await openTicketKeySource(cfg);
  const state: TlsmgrState = {
    cache: (type) => caches.get(type),
    timeout: (type) => caches.timeout(type),
    tickets: run.tickets,
    seed: (n) => pool.generate(n),
  };
  caches.startSweeps();

  // The time of day goes into the pool once per event-loop turn that served
  // requests, as Postfix's tlsmgr_loop does once per event-loop iteration.
  let timeMixPending = false;
  const mixTimeOncePerTurn = () => {
    if (timeMixPending) return;
    timeMixPending = true;
    setImmediate(() => {
      timeMixPending = false;
      pool.mixTimeOfDay();
    });
  };
  const limits = {
    nameLimit: cfg.tlsmgr_attr_name_limit,
    valueLimit: cfg.tlsmgr_attr_value_limit,
    countLimit: cfg.tlsmgr_attr_count_limit,
  };
  if (args.standalone) {
    // -S: one client on standard input and output, then exit (Postfix's stand-alone mode).
    dropPrivilegesAsAsked(args, cfg);
    const stdio = Duplex.from({ readable: process.stdin, writable: process.stdout });
    stdio.on("close", () => void shutdown(run, "stand-alone client done").finally(() => process.exit(0)));
    serveConnection(stdio, "stdin", state, { limits, ipcTimeout: cfg.ipc_timeout, afterRequest: mixTimeOncePerTurn });
    return;
  }

  const socketPath = run.link
    ? undefined
    : (socketArg ?? join(cfg.queue_directory, "private", args.serviceName || cfg.tlsmgr_service_name));
  run.listener = await startListener(state, {
    limits,
    ipcTimeout: cfg.ipc_timeout,
    // under master: a served request counts as a use (master-link.ts requestServed)
    afterRequest: () => {
      mixTimeOncePerTurn();
      run.link?.requestServed();
    },
    ...(run.link ? { fds: run.link.listenFds } : {}),
    ...(socketPath ? { path: socketPath } : {}),
    ...(socketPath && ownerIds ? { dirOwner: ownerIds } : {}),
  });

  dropPrivilegesAsAsked(args, cfg);

  for (const type of CACHE_TYPES) {
    if (caches.get(type)) msgInfo(`${type} session cache: ${cfg[`${type}_tls_session_cache_database`]}, timeout ${caches.timeout(type)}s`);
  }
  if (args.home !== undefined)
    msgInfo(`embedded mode: main.cf (optional), queue and data directories under ${configDir}`);
  if (socketPath) msgInfo(`listening on ${socketPath}`);

  let stopping = false;
  const stop = (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    shutdown(run, why).finally(() => process.exit(code));
  };
  process.on("SIGTERM", () => stop("terminating on signal SIGTERM", 0));
  process.on("SIGINT", () => stop("terminating on signal SIGINT", 0));
  run.link?.onMasterGone(() => stop("master gone or reloading: saving PRNG exchange file and exiting", 0));
}

export async function main(argv: string[]): Promise<void> {
  setProcessName("tlsmgr");
  try {
    const args = parseDaemonArgs(argv, process.env);
    setMsgVerbose(args.verbose);
    requireSolitary(args);
    await start(args);
  } catch (err) {
    if (!(err instanceof FatalError)) {
      process.stderr.write(`tlsmgr[${process.pid}]: fatal: ${(err as Error).stack ?? String(err)}\n`);
    }
    // Leave no socket behind; the stores are closed unsaved-safe.
    await run.listener?.close().catch(() => undefined);
    await run.caches?.close().catch(() => undefined);
    process.exit(1);
  }
}

void main(process.argv.slice(2));
