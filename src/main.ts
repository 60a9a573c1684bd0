/**
 * main.ts - the tlsmgr executable: tlsmgr's work hooked into the daemon
 *           skeleton, as tlsmgr.c's main() hands its hooks to multi_server_main.
 * Owns: tlsmgr's hooks: pre-init (with privileges and mail_owner's effective
 *       ids: the PRNG exchange file and pool, the session caches, the ticket
 *       keys, a store that cannot be used giving way as Postfix's do; the
 *       request handlers' state and its statistics), post-init (connecting
 *       to Redis, now that privileges are dropped; the cache sweeps, the
 *       metrics server, the start-up info lines), before-exit (save the PRNG
 *       exchange file),
 *       the --home mode's cache defaults, and what runs after each request
 *       (the time of day into the PRNG pool).
 * Not here: the daemon's life cycle, command line, configuration, logging,
 *           master link, privileges, signals and the close-all path
 *           (master/multi-server.ts); the parts themselves (see the imports).
 * See also: postfix/src/tlsmgr/tlsmgr.c (main, tlsmgr_pre_init,
 *           tlsmgr_post_init, tlsmgr_before_exit)
 */

import { openCacheSet, type CacheSet } from "./cache/cache-set.js";
import { smtpdServiceAliases } from "./cache/service-alias.js";
import { scacheLimitsOf } from "./config/params.js";
import { probePostfixRelease, serverAnnouncement, type PostfixReleaseProbe } from "./config/postfix-release.js";
import { dataRedirectFile, dataRedirectOwnerUid } from "./config/data-redirect.js";
import { errorText } from "./log/errors.js";
import { msgInfo, msgWarn } from "./log/msg.js";
import { withEffectiveIds } from "./master/eugid.js";
import { INSTANCE_LOCK_WAIT_MS, takeInstanceLock } from "./master/instance-lock.js";
import {
  multiServerMain,
  type BuiltinsQuery,
  type MultiServerContext,
  type MultiServerService,
} from "./master/multi-server.js";
import { PrngPool } from "./prng/pool.js";
import { CACHE_TYPES } from "./protocol/tlsmgr-proto.js";
import { DAEMON_HELP, infoOption } from "./cli/usage.js";
import { serveConnection, type ConnectionOptions } from "./server/connection.js";
import type { TlsmgrState } from "./server/handlers.js";
import { startListener } from "./server/listener.js";
import { statsSources } from "./server/stats-sources.js";
import { metricsAddressOf, startMetricsServer } from "./stats/metrics-server.js";
import type { StatsSources } from "./stats/stats-view.js";
import { ticketKeysOrMemory } from "./tickets/key-fallback.js";
import { cacheUnavailable } from "./cache/unavailable-cache.js";
import { redisConnectDeferred, redisDeferConnects } from "./redis/link.js";

/** Bytes of each cache entry (time stamp and session start) that the sweep mixes into the PRNG pool. */
const SWEEP_MIX_BYTES = 64;

/** The --home DIR mode's caches: on, in its data directory. */
const EMBEDDED_CACHES: Record<string, string> = {
  smtpd_tls_session_cache_database: "lmdb:${data_directory}/smtpd_scache",
  smtp_tls_session_cache_database: "lmdb:${data_directory}/smtp_scache",
  lmtp_tls_session_cache_database: "lmdb:${data_directory}/lmtp_scache",
};

/** tlsmgr as the skeleton runs it: serving, plus what post-init and before-exit need. */
interface Tlsmgr extends MultiServerService {
  pool: PrngPool;
  caches: CacheSet;
  stats: StatsSources;
}

/**
 * mixTimeOncePerTurn - a function that puts the time of day into the pool
 * once per event-loop turn that served requests, as Postfix's tlsmgr_loop
 * does once per event-loop iteration.
 */
function mixTimeOncePerTurn(pool: PrngPool): () => void {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    setImmediate(() => {
      pending = false;
      pool.mixTimeOfDay();
    });
  };
}

/**
 * tlsmgrPreInit - tlsmgr_pre_init(): with privileges, open the PRNG exchange
 * file (redirected to data_directory as Postfix does) and pool, the session
 * caches, and the ticket keys. Files are created with mail_owner's ids.
 */
async function tlsmgrPreInit(ctx: MultiServerContext): Promise<Tlsmgr> {
  const { cfg, owner } = ctx;
  // Redis links open now (files read with privileges) and connect after the drop (post-init).
  redisDeferConnects();
  // 3.6 and later expect the server announcement; 3.5 reads it as a reply.
  const announce = serverAnnouncement(cfg.tlsmgr_server_announcement, release, ctx.args.underMaster);
  // One tlsmgr per data directory, before any cache is truncated or socket taken over.
  const ids = owner ? { uid: owner.uid, gid: owner.gid } : undefined;
  await takeInstanceLock(cfg.data_directory, ctx.args.underMaster ? INSTANCE_LOCK_WAIT_MS : 0, ids);
  const redirect = {
    data_directory: cfg.data_directory,
    mail_owner: cfg.mail_owner,
    ownerUid: dataRedirectOwnerUid(owner, cfg.mail_owner),
  };
  const exchangeName = await dataRedirectFile(cfg.tls_random_exchange_name, redirect);
  const pool = await withEffectiveIds(ids, () => PrngPool.open({ ...cfg, tls_random_exchange_name: exchangeName }));
  const caches = await withEffectiveIds(ids, () =>
    // Entries met by the sweep feed the pool (as Postfix's tlsmgr does); a
    // bounded part of each keeps the sweep's cost per entry small.
    openCacheSet(cfg, {
      ownerUid: redirect.ownerUid,
      onSweepEntry: (_type, id, value) => pool.mixEntry(id, value.subarray(0, SWEEP_MIX_BYTES)),
      limits: (type) => scacheLimitsOf(cfg, type),
      // As Postfix's daemons: a cache that cannot be opened is served unavailable unless this says no.
      surrogates: !/^yes$/i.test(cfg.lookup("daemon_table_open_error_is_fatal") ?? "no"),
    }),
  );
  ctx.atClose(() => caches.close());
  // A key store that cannot be used gives way to memory keys (tickets/key-fallback.ts).
  const { source: tickets, fallback: keysInMemory } = await ticketKeysOrMemory({
    tlsmgr_ticket_key_database: cfg.tlsmgr_ticket_key_database,
    main_cf_path: cfg.main_cf_path,
    ...(ids ? { keyFileOwner: ids } : {}),
  });
  ctx.atClose(() => tickets.close());

  const stats = statsSources({
    caches,
    databases: { smtpd: cfg.caches.smtpd.database, smtp: cfg.caches.smtp.database, lmtp: cfg.caches.lmtp.database },
    limits: (type) => scacheLimitsOf(cfg, type).limits,
    tickets,
    // the store that serves: memory ("") when the configured one gave way
    ticketDatabase: keysInMemory ? "" : cfg.tlsmgr_ticket_key_database,
    prng: pool,
  });
  const served = smtpdServiceAliases(caches, cfg.tlsmgr_smtpd_cache_shared_services);
  const state: TlsmgrState = { caches: served, tickets, prng: pool, stats };
  const mixTime = mixTimeOncePerTurn(pool);
  const connection = (served: () => void): ConnectionOptions => ({
    limits: {
      nameLimit: cfg.tlsmgr_attr_name_limit,
      valueLimit: cfg.tlsmgr_attr_value_limit,
      countLimit: cfg.tlsmgr_attr_count_limit,
    },
    ipcTimeout: cfg.ipc_timeout,
    announce,
    afterRequest: () => {
      mixTime();
      served();
    },
  });
  return {
    pool,
    caches,
    stats,
    serveStream: (stream, peer, served) => serveConnection(stream, peer, state, connection(served)),
    listen: (target, served) => startListener(state, { ...connection(served), ...target }),
  };
}

/**
 * tlsmgrPostInit - tlsmgr_post_init(): start the cache sweeps and, when
 * asked, the metrics server (privileges are dropped by now); say which
 * caches serve.
 */
function tlsmgrPostInit(ctx: MultiServerContext, t: Tlsmgr): void {
  void redisConnectDeferred();
  t.caches.startSweeps();
  if (ctx.args.standalone) return; // -S: one client, no start-up report, no metrics
  const metricsAt = metricsAddressOf(ctx.cfg);
  if (metricsAt) {
    const metrics = startMetricsServer(t.stats, metricsAt);
    ctx.atClose(() => metrics.close());
  }
  for (const type of CACHE_TYPES) {
    const cache = t.caches.get(type);
    if (cache)
      msgInfo(`${type} session cache: ${ctx.cfg.caches[type].database}, `
        + (cacheUnavailable(cache) ? "unavailable (see the error above)" : `timeout ${t.caches.timeout(type)}s`));
  }
}

/** tlsmgrBeforeExit - tlsmgr_before_exit(): save the PRNG exchange file. */
async function tlsmgrBeforeExit(t: Tlsmgr): Promise<void> {
  await t.pool.close().catch((err: unknown) => msgWarn(`cannot save PRNG exchange file: ${errorText(err)}`));
}

/** The Postfix release that runs us, asked before main.cf is read (its built-ins are defaults there). */
let release: PostfixReleaseProbe = { kind: "config", why: "not asked", builtins: {} };

/** tlsmgrBuiltins - the release's built-in parameters ($default_cache_db_type, ...), found before privileges are dropped. */
async function tlsmgrBuiltins(where: BuiltinsQuery): Promise<Record<string, string>> {
  release = await probePostfixRelease(where);
  return release.builtins;
}

const argv = process.argv.slice(2);
if (!infoOption("tlsmgr", argv, DAEMON_HELP)) void multiServerMain(argv, {
  name: "tlsmgr",
  solitary: true,
  embeddedDefaults: EMBEDDED_CACHES,
  builtinDefaults: tlsmgrBuiltins,
  exitNote: "saving PRNG exchange file and exiting",
  preInit: tlsmgrPreInit,
  postInit: tlsmgrPostInit,
  beforeExit: tlsmgrBeforeExit,
});
