/**
 * cache-set.test.ts - the three caches from main.cf values, by tlsmgr's start-up
 *                     rules: enabling, timeout sanitising, duplicate and unknown
 *                     databases (fatal), create-or-truncate, the info line,
 *                     loglevel, sweeps, and the data_directory redirect.
 * See also: src/cache/cache-set.ts, postfix/src/tlsmgr/tlsmgr.c (tlsmgr_pre_init),
 *           test/unit/config-data-redirect.test.ts (the redirect rule itself)
 */

import assert from "node:assert/strict";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  TLS_SESSION_LIFEMIN,
  openCacheSet,
  scacheTimeoutSanitize,
  tlsLogCache,
  type CacheSetConfig,
} from "../../src/cache/cache-set.js";
import { SCACHE_PARAMS } from "../../src/config/params.js";
import { CACHE_TYPES } from "../../src/protocol/tlsmgr-proto.js";
import { manualClock } from "../../src/util/clock.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";
import { cacheUnavailable } from "../../src/cache/unavailable-cache.js";
import { tempDir } from "../helpers/temp-dir.js";

const lines = captureMsgsEach();
const tmp = tempDir("tlsmgr-cacheset-");

const myUid = process.geteuid?.() ?? 0;
/** Our own uid is mail_owner's: no redirect. */
const ownUid = myUid;

let serial = 0;
/**
 * config - Postfix defaults (lmtp: no database), files in a fresh directory;
 * `over` in main.cf's names (smtp_tls_session_cache_timeout: 0, mail_owner: "x").
 */
async function config(over: Record<string, string | number> = {}): Promise<{ cfg: CacheSetConfig; dir: string }> {
  const dir = join(tmp, `d${++serial}`);
  await mkdir(dir);
  const flat: Record<string, string | number> = {
    mail_owner: "postfix",
    smtpd_tls_session_cache_database: `btree:${dir}/smtpd_scache`,
    smtp_tls_session_cache_database: `btree:${dir}/smtp_scache`,
    lmtp_tls_session_cache_database: "",
    ...over,
  };
  const cache = (type: (typeof CACHE_TYPES)[number]) => {
    const param = SCACHE_PARAMS[type];
    return {
      database: String(flat[param.database]),
      timeout: Number(flat[param.timeout] ?? 3600),
      loglevel: String(flat[param.loglevel] ?? "0"),
      param,
    };
  };
  const cfg: CacheSetConfig = {
    data_directory: dir,
    mail_owner: String(flat.mail_owner),
    caches: { smtpd: cache("smtpd"), smtp: cache("smtp"), lmtp: cache("lmtp") },
  };
  return { cfg, dir };
}

describe("cache-set rules", () => {
  it("sanitises timeouts as tlsmgr: > 0 and < 120 => 120, <= 0 => 0", () => {
    assert.equal(TLS_SESSION_LIFEMIN, 120);
    assert.equal(scacheTimeoutSanitize(0), 0);
    assert.equal(scacheTimeoutSanitize(-5), 0);
    assert.equal(scacheTimeoutSanitize(Number.NaN), 0);
    assert.equal(scacheTimeoutSanitize(1), 120);
    assert.equal(scacheTimeoutSanitize(119), 120);
    assert.equal(scacheTimeoutSanitize(120), 120);
    assert.equal(scacheTimeoutSanitize(3600), 3600);
    assert.equal(scacheTimeoutSanitize(8_640_000), 8_640_000);
  });

  it("turns cache logging on at loglevel 2 and above, or with the cache word", () => {
    // The words are main.cf's, read by config/tls-log-mask.ts (unknown ones are a warning there).
    const cacheLogging = (v: string) => tlsLogCache("smtpd_tls_loglevel", v);
    for (const v of ["0", "1", "none", "routine", "summary, verbose", ""]) assert.equal(cacheLogging(v), false, v);
    for (const v of ["2", "3", "4", "9", "debug", "ssl-expert", "ssl-developer", "cache", "1, cache", "routine CACHE"])
      assert.equal(cacheLogging(v), true, v);
    assert.deepEqual(lines, []);
  });
});

describe("openCacheSet", () => {
  it("opens smtpd and smtp, leaves lmtp (no database) off with its timeout, says which file serves btree", async () => {
    const { cfg, dir } = await config();
    const set = await openCacheSet(cfg, { ownerUid: ownUid, clock: manualClock() });
    try {
      assert.ok(set.get("smtpd"));
      assert.ok(set.get("smtp"));
      assert.equal(set.get("lmtp"), undefined);
      assert.equal(set.timeout("smtpd"), 3600);
      assert.equal(set.timeout("lmtp"), 3600, "policy reports the timeout of a disabled cache (status=0 cachable=0 timeout=3600)");
      assert.equal(set.get("smtpd")!.label, "smtpd");
      assert.deepEqual(lines, [
        `info: btree:${dir}/smtpd_scache is served by LMDB file ${dir}/smtpd_scache.lmdb`,
        `info: btree:${dir}/smtp_scache is served by LMDB file ${dir}/smtp_scache.lmdb`,
      ]);
      assert.ok((await stat(`${dir}/smtpd_scache.lmdb`)).isFile());
      const smtpd = set.get("smtpd")!;
      assert.equal(await smtpd.update("id", Buffer.from("sess")), true);
      assert.deepEqual(await smtpd.lookup("id"), Buffer.from("sess"));
      assert.equal(await set.get("smtp")!.lookup("id"), undefined, "separate caches");
    } finally {
      await set.close();
    }
  });

  it("logs no info line for lmdb: and memory: (nothing is substituted)", async () => {
    const { cfg, dir } = await config({
      smtpd_tls_session_cache_database: "",
      smtp_tls_session_cache_database: "",
    });
    cfg.caches.smtpd.database = `lmdb:${dir}/smtpd_scache`;
    cfg.caches.smtp.database = "memory:smtp";
    cfg.caches.lmtp.database = "internal:lmtp";
    const set = await openCacheSet(cfg, { ownerUid: ownUid });
    try {
      assert.deepEqual(lines, []);
      assert.equal(set.get("smtpd")!.backend.type, "lmdb");
      assert.equal(set.get("smtp")!.backend.type, "memory");
      assert.equal(set.get("lmtp")!.backend.type, "internal");
    } finally {
      await set.close();
    }
  });

  it("sanitises each timeout and disables a cache with timeout <= 0 or no database", async () => {
    const { cfg } = await config({
      smtpd_tls_session_cache_timeout: 30,
      smtp_tls_session_cache_timeout: 0,
      lmtp_tls_session_cache_database: "memory:lmtp",
      lmtp_tls_session_cache_timeout: -1,
    });
    const set = await openCacheSet(cfg, { ownerUid: ownUid });
    try {
      assert.equal(set.timeout("smtpd"), 120);
      assert.equal(set.get("smtpd")!.timeout, 120);
      assert.equal(set.timeout("smtp"), 0);
      assert.equal(set.get("smtp"), undefined);
      assert.equal(set.timeout("lmtp"), 0);
      assert.equal(set.get("lmtp"), undefined);
    } finally {
      await set.close();
    }
  });

  it("is fatal when two enabled caches name the same database", async () => {
    const { cfg } = await config();
    cfg.caches.smtp.database = cfg.caches.smtpd.database;
    await assert.rejects(openCacheSet(cfg, { ownerUid: ownUid }), { code: "TLSMGR_FATAL" });
    assert.equal(lines.at(-1), `fatal: parameters smtpd_tls_session_cache_database and smtp_tls_session_cache_database: do not use the same TLS cache file ${cfg.caches.smtpd.database} for smtpd and smtp`);
    // The smtpd cache opened before the fatal error was closed: the file opens again.
    lines.length = 0;
    cfg.caches.smtp.database = "";
    const set = await openCacheSet(cfg, { ownerUid: ownUid });
    await set.close();
  });

  it("is fatal when two databases would share one file (btree: and lmdb: of one name)", async () => {
    const { cfg, dir } = await config();
    cfg.caches.smtp.database = `lmdb:${dir}/smtpd_scache`;
    await assert.rejects(openCacheSet(cfg, { ownerUid: ownUid }), { code: "TLSMGR_FATAL" });
    assert.equal(lines.at(-1), `fatal: parameters smtpd_tls_session_cache_database and smtp_tls_session_cache_database: do not use the same TLS cache file ${dir}/smtpd_scache.lmdb for smtpd and smtp`);
  });

  it("is fatal when the redirect sends two caches to one file", async () => {
    const { cfg, dir } = await config({ lmtp_tls_session_cache_database: "" });
    await mkdir(join(dir, "a"));
    await mkdir(join(dir, "b"));
    cfg.caches.smtpd.database = `btree:${dir}/a/scache`;
    cfg.caches.smtp.database = `btree:${dir}/b/scache`;
    await assert.rejects(openCacheSet(cfg, { ownerUid: myUid + 1 }), { code: "TLSMGR_FATAL" });
    assert.equal(lines.at(-1), `fatal: parameters smtpd_tls_session_cache_database and smtp_tls_session_cache_database: do not use the same TLS cache file ${dir}/scache.lmdb for smtpd and smtp`);
  });

  it("allows the same database for a cache that is disabled", async () => {
    const { cfg } = await config({ lmtp_tls_session_cache_timeout: 0 });
    cfg.caches.lmtp.database = cfg.caches.smtpd.database;
    const set = await openCacheSet(cfg, { ownerUid: ownUid });
    assert.equal(set.get("lmtp"), undefined);
    await set.close();
  });

  it("serves an unsupported map type as unavailable, with one error naming the parameter", async () => {
    const { cfg } = await config({ smtp_tls_session_cache_database: "foo:/x/smtp_scache" });
    const set = await openCacheSet(cfg, { ownerUid: ownUid });
    try {
      assert.deepEqual(lines.filter((l) => !l.startsWith("info: ")), ["error: parameter smtp_tls_session_cache_database: unsupported dictionary type: foo"]);
      const smtp = set.get("smtp")!;
      assert.ok(cacheUnavailable(smtp), "a surrogate");
      assert.ok(!cacheUnavailable(set.get("smtpd")!), "the other cache is opened");
      assert.equal(set.timeout("smtp"), 3600, "policy reports its timeout, as Postfix's surrogate");
      assert.equal(await smtp.lookup("id"), undefined);
      assert.equal(lines.at(-1), "warning: parameter smtp_tls_session_cache_database: foo:/x/smtp_scache is unavailable. unsupported dictionary type: foo");
    } finally {
      await set.close();
    }
    lines.length = 0;
    const bad = await config({ smtpd_tls_session_cache_database: "btree:" });
    const set2 = await openCacheSet(bad.cfg, { ownerUid: ownUid });
    await set2.close();
    assert.deepEqual(lines.filter((l) => !l.startsWith("info: ")), ['error: parameter smtpd_tls_session_cache_database: open dictionary: expecting "type:name" form instead of "btree:"']);
  });

  it("serves a cache that cannot be opened as unavailable; fatal with surrogates off", async () => {
    const { cfg } = await config({ smtpd_tls_session_cache_database: `lmdb:${tmp}/missing-dir/smtpd_scache` });
    const set = await openCacheSet(cfg, { ownerUid: ownUid });
    await set.close();
    assert.deepEqual(lines.filter((l) => !l.startsWith("info: ")), [`error: parameter smtpd_tls_session_cache_database: cannot open lmdb:${tmp}/missing-dir/smtpd_scache: No such file or directory`]);
    assert.ok(cacheUnavailable(set.get("smtpd")!));
    lines.length = 0;
    await assert.rejects(openCacheSet(cfg, { ownerUid: ownUid, surrogates: false }), { code: "TLSMGR_FATAL" });
    assert.equal(lines.at(-1), `fatal: parameter smtpd_tls_session_cache_database: cannot open lmdb:${tmp}/missing-dir/smtpd_scache: No such file or directory`);
  });

  it("takes default_database_type (hash unless set) for a database without a type", async () => {
    const { cfg, dir } = await config({ smtp_tls_session_cache_database: "" });
    cfg.caches.smtpd.database = `${dir}/smtpd_scache`;
    const set = await openCacheSet(cfg, { ownerUid: ownUid });
    try {
      assert.equal(set.get("smtpd")!.backend.type, "hash");
      assert.deepEqual(lines, [`info: hash:${dir}/smtpd_scache is served by LMDB file ${dir}/smtpd_scache.lmdb`]);
    } finally {
      await set.close();
    }
  });

  it("creates or truncates each cache at start-up", async () => {
    const { cfg, dir } = await config();
    await writeFile(`${dir}/smtp_scache.lmdb`, Buffer.alloc(8192, 0x41)); // junk left behind
    const first = await openCacheSet(cfg, { ownerUid: ownUid });
    await first.get("smtpd")!.update("kept?", Buffer.from("no"));
    await first.get("smtp")!.update("kept?", Buffer.from("no"));
    await first.close();
    const second = await openCacheSet(cfg, { ownerUid: ownUid });
    try {
      assert.equal(await second.get("smtpd")!.lookup("kept?"), undefined);
      assert.equal(await second.get("smtp")!.lookup("kept?"), undefined);
    } finally {
      await second.close();
    }
  });

  it("logs cache operations for a cache whose loglevel is 2", async () => {
    const { cfg, dir } = await config({ smtp_tls_loglevel: 2, smtpd_tls_loglevel: 1 });
    const set = await openCacheSet(cfg, { ownerUid: ownUid });
    try {
      assert.ok(lines.includes(`info: open smtp TLS cache btree:${dir}/smtp_scache`));
      assert.ok(!lines.some((l) => l.includes("open smtpd TLS cache")));
      assert.equal(set.get("smtp")!.verbose, true);
      assert.equal(set.get("smtpd")!.verbose, false);
    } finally {
      await set.close();
    }
  });

  it("starts each enabled cache's sweep, and hands sweep entries to the hook with the cache type", async () => {
    const { cfg } = await config();
    const met: string[] = [];
    const set = await openCacheSet(cfg, { ownerUid: ownUid, onSweepEntry: (type, id) => met.push(`${type}/${id}`) });
    try {
      await set.get("smtpd")!.update("a", Buffer.from("1"));
      await set.get("smtp")!.update("b", Buffer.from("2"));
      set.startSweeps();
      assert.equal(set.get("smtpd")!.sweeping, true);
      await set.get("smtpd")!.sweepDone();
      await set.get("smtp")!.sweepDone();
      assert.deepEqual(met.sort(), ["smtp/b", "smtpd/a"]);
    } finally {
      await set.close();
    }
  });
});

describe("openCacheSet data_directory redirect", () => {
  it("redirects a cache in a directory not owned by mail_owner, with Postfix's two warnings", async () => {
    const { cfg, dir } = await config({ smtp_tls_session_cache_database: "" });
    const foreign = join(dir, "foreign");
    await mkdir(foreign);
    cfg.data_directory = join(dir, "data");
    await mkdir(cfg.data_directory);
    cfg.caches.smtpd.database = `btree:${foreign}/smtpd_scache`;
    const set = await openCacheSet(cfg, { ownerUid: myUid + 1 });
    try {
      assert.deepEqual(lines, [
        `warning: request to update table btree:${foreign}/smtpd_scache in non-postfix directory ${foreign}`,
        `warning: redirecting the request to postfix-owned data_directory ${cfg.data_directory}`,
        `info: btree:${cfg.data_directory}/smtpd_scache is served by LMDB file ${cfg.data_directory}/smtpd_scache.lmdb`,
      ]);
      assert.equal(set.get("smtpd")!.backend.name, `${cfg.data_directory}/smtpd_scache`);
      assert.ok((await stat(`${cfg.data_directory}/smtpd_scache.lmdb`)).isFile());
      await assert.rejects(stat(`${foreign}/smtpd_scache.lmdb`), { code: "ENOENT" });
    } finally {
      await set.close();
    }
  });

  it("names mail_owner in the warnings, and does not redirect memory: maps", async () => {
    const { cfg, dir } = await config({ mail_owner: "mailer", smtp_tls_session_cache_database: "memory:/etc/smtp" });
    const set = await openCacheSet(cfg, { ownerUid: myUid + 7 });
    try {
      assert.deepEqual(lines.slice(0, 2), [
        `warning: request to update table btree:${dir}/smtpd_scache in non-mailer directory ${dir}`,
        `warning: redirecting the request to mailer-owned data_directory ${dir}`,
      ]);
      assert.equal(set.get("smtp")!.backend.name, "/etc/smtp");
    } finally {
      await set.close();
    }
  });

  it("takes this process's uid as mail_owner's when none is given", async () => {
    const { cfg } = await config();
    const set = await openCacheSet(cfg);
    await set.close();
    assert.ok(!lines.some((l) => l.startsWith("warning:")));
  });
});
