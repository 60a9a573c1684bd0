/**
 * redis-one-table.test.ts - one redis: table file for the whole farm (issue
 *                           17, item 5): the smtpd, smtp and lmtp caches and
 *                           tlsmgr_ticket_key_database all name one table,
 *                           on a real redis-server.
 * Owns: the proofs that one table is accepted, keeps each cache's entries
 *       apart under key_prefix + cache type (the key layout of
 *       src/cache/backends/redis.ts), serves them and the ticket keys over
 *       one connection, is shared by two daemons ("hosts"); that separate
 *       tables (their own prefixes, or one prefix) still work; and that one
 *       *file* named by two caches is still refused.
 * Not here: the duplicate rules with files only (test/unit/cache-set.test.ts),
 *           the backend contract (test/conformance/redis.test.ts), two hosts
 *           with a table per cache (test/integration/redis-daemons.test.ts),
 *           real Postfix on one table (test/postfix/redis-farm.test.ts).
 * See also: src/cache/cache-set.ts, src/cache/backends/redis.ts, man/tlsmgr.8
 */

import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openCacheSet, type CacheSetConfig } from "../../src/cache/cache-set.js";
import { SCACHE_PARAMS } from "../../src/config/params.js";
import { CACHE_TYPES, type CacheType } from "../../src/protocol/tlsmgr-proto.js";
import { openTicketKeySource } from "../../src/tickets/key-source.js";
import { keygen } from "../../src/tools/keygen.js";
import { startDaemon, tlsmgrRequest, tlsmgrStatus, tlsmgrTktkey, type RunningDaemon } from "../helpers/daemon.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";
import { redisSkipReason, startRedisServer, writeRedisTable, type RedisServerHandle } from "../helpers/redis-server.js";

const HANG_MS = 5000;
const lines = captureMsgsEach();

let dir = "";
let server: RedisServerHandle;
let wrap = "";

/** cacheConfig - the three caches on these databases (all enabled, timeout 3600 s). */
function cacheConfig(db: Record<CacheType, string>): CacheSetConfig {
  const cache = (type: CacheType) => ({ database: db[type], timeout: 3600, loglevel: "0", param: SCACHE_PARAMS[type] });
  return {
    data_directory: dir,
    mail_owner: userInfo().username,
    caches: { smtpd: cache("smtpd"), smtp: cache("smtp"), lmtp: cache("lmtp") },
  };
}

/** keys - the keys in Redis matching a pattern, sorted. */
async function keys(pattern: string): Promise<string[]> {
  return (await server.cli("--scan", "--pattern", pattern)).split("\n").filter((l) => l !== "").sort();
}

/** tlsmgrClients - connections named "tlsmgr" (link.ts connectionName) that redis-server has now. */
async function tlsmgrClients(): Promise<number> {
  return (await server.cli("client", "list")).split("\n").filter((l) => / name=tlsmgr /.test(l)).length;
}

let serial = 0;
/** table - a fresh table file on the test server. */
async function table(keyPrefix: string): Promise<string> {
  // Every redis: table needs key_wrap_file: session entries are sealed with it, ticket keys wrapped.
  return writeRedisTable(join(dir, `t${++serial}.cf`), {
    servers: `127.0.0.1:${server.port}`,
    keyPrefix,
    timeout: "1s",
    keyWrapFile: wrap,
  });
}

describe("one redis: table for every cache and the ticket keys", { skip: redisSkipReason() ?? false }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tlsmgr-one-table-"));
    server = await startRedisServer();
    wrap = join(dir, "key-wrap");
    keygen(wrap);
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("opens smtpd, smtp and lmtp on one table, each cache's keys under key_prefix + its type", async () => {
    const t = await table("one:");
    const set = await openCacheSet(cacheConfig({ smtpd: `redis:${t}`, smtp: `redis:${t}`, lmtp: `redis:${t}` }));
    try {
      assert.deepEqual(lines.filter((l) => !l.startsWith("info:")), [], "no warning, no fatal");
      for (const type of CACHE_TYPES) assert.ok(set.get(type), `${type} cache enabled`);
      // the same id in every cache: three entries, each cache sees its own
      for (const type of CACHE_TYPES) assert.equal(await set.get(type)!.update("ID1", Buffer.from(`${type} session`)), true);
      for (const type of CACHE_TYPES) {
        const got = await set.get(type)!.lookup("ID1");
        assert.equal(got?.toString(), `${type} session`);
      }
      assert.deepEqual(await keys("one:*"), ["one:lmtp:session:ID1", "one:smtp:session:ID1", "one:smtpd:session:ID1"]);
      assert.equal(await set.get("smtp")!.delete("ID1"), true);
      assert.equal(await set.get("smtp")!.lookup("ID1"), undefined, "deleted from smtp");
      assert.equal((await set.get("smtpd")!.lookup("ID1"))?.toString(), "smtpd session", "smtpd keeps its entry");
      assert.equal(await tlsmgrClients(), 1, "three caches, one connection");
    } finally {
      await set.close();
    }
  });

  it("serves the ticket keys from the same table over the same connection, beside the caches", async () => {
    const t = await table("kt:");
    const set = await openCacheSet(cacheConfig({ smtpd: `redis:${t}`, smtp: `redis:${t}`, lmtp: "" }));
    const keysSource = await openTicketKeySource({ tlsmgr_ticket_key_database: `redis:${t}`, main_cf_path: "" });
    try {
      const key = await keysSource.tktkey(undefined, 3600);
      assert.ok(key !== undefined && key.name.length === 16, "a current key");
      await set.get("smtpd")!.update("S", Buffer.from("x"));
      const found = await keys("kt:*");
      assert.equal(found.filter((k) => /^kt:tktkey:1799:\d+$/.test(k)).length, 1, found.join(" "));
      assert.ok(found.includes("kt:smtpd:session:S"), found.join(" "));
      assert.equal(await tlsmgrClients(), 1, "caches and keys, one connection");
    } finally {
      await keysSource.close();
      await set.close();
    }
    assert.equal(await tlsmgrClients(), 0, "closed when the last user is done");
  });

  it("still works with a table per cache, with prefixes of their own or one prefix shared", async () => {
    const own = { smtpd: await table("old:smtpd:"), smtp: await table("old:smtp:") };
    const same = { smtpd: await table("same:"), smtp: await table("same:") };
    for (const t of [own, same]) {
      const set = await openCacheSet(cacheConfig({ smtpd: `redis:${t.smtpd}`, smtp: `redis:${t.smtp}`, lmtp: "" }));
      try {
        await set.get("smtpd")!.update("ID", Buffer.from("d"));
        await set.get("smtp")!.update("ID", Buffer.from("t"));
        assert.equal((await set.get("smtpd")!.lookup("ID"))?.toString(), "d");
        assert.equal((await set.get("smtp")!.lookup("ID"))?.toString(), "t", "no collision between the caches");
      } finally {
        await set.close();
      }
    }
    assert.deepEqual(await keys("old:*"), ["old:smtp:smtp:session:ID", "old:smtpd:smtpd:session:ID"]);
    assert.deepEqual(await keys("same:*"), ["same:smtp:session:ID", "same:smtpd:session:ID"]);
  });

  it("still refuses one file for two caches beside a shared table", async () => {
    const t = await table("f:");
    const file = `lmdb:${dir}/scache`;
    await assert.rejects(openCacheSet(cacheConfig({ smtpd: `redis:${t}`, smtp: file, lmtp: file })), { code: "TLSMGR_FATAL" });
    assert.equal(lines.at(-1), "fatal: parameters smtp_tls_session_cache_database and lmtp_tls_session_cache_database: "
      + `do not use the same TLS cache file ${file} for smtp and lmtp`);
    assert.equal(await tlsmgrClients(), 0, "the table opened before the fatal error was closed");
  });
});

describe("two daemons, each with one table for both caches and the keys", { skip: redisSkipReason() ?? false }, () => {
  let home = "";
  const daemons: RunningDaemon[] = [];
  let rs: RedisServerHandle;

  /** host - a configuration directory whose main.cf names one table for everything. */
  async function host(name: string, keyWrap: string): Promise<string> {
    const h = join(home, name);
    await mkdir(join(h, "data"), { recursive: true, mode: 0o700 });
    const t = await writeRedisTable(join(h, "tls-redis.cf"), {
      servers: `127.0.0.1:${rs.port}`, keyPrefix: "mx:", timeout: "1s", keyWrapFile: keyWrap,
    });
    await writeFile(join(h, "main.cf"), [
      `queue_directory = ${h}/queue`,
      `data_directory = ${h}/data`,
      `mail_owner = ${process.getuid?.() === 0 ? "root" : userInfo().username}`,
      `smtpd_tls_session_cache_database = redis:${t}`,
      `smtp_tls_session_cache_database = redis:${t}`,
      `tlsmgr_ticket_key_database = redis:${t}`,
      "tls_random_exchange_name = ${data_directory}/prng_exch",
      "",
    ].join("\n"));
    return h;
  }

  before(async () => {
    home = await mkdtemp(join(tmpdir(), "tlsmgr-one-table-d-"));
    rs = await startRedisServer();
    const keyWrap = join(home, "key-wrap");
    keygen(keyWrap);
    for (const name of ["a", "b"]) {
      const h = await host(name, keyWrap);
      daemons.push(await startDaemon({ configDir: h, socket: join(h, "tlsmgr.sock") }));
    }
  });
  after(async () => {
    for (const d of daemons) await d.stop();
    await rs?.stop();
    await rm(home, { recursive: true, force: true });
  });

  it("start without the duplicate-database fatal, share sessions per cache type and one ticket key", async () => {
    const [a, b] = daemons as [RunningDaemon, RunningDaemon];
    for (const d of daemons) assert.doesNotMatch(d.stderr(), /fatal|warning/, d.stderr());
    const req = (d: RunningDaemon, attrs: [string, string][]) => tlsmgrRequest(d.socket, attrs, HANG_MS);
    const upd = (d: RunningDaemon, type: string, id: string, s: string) =>
      req(d, [["request", "update"], ["cache_type", type], ["cache_id", id], ["session", Buffer.from(s).toString("base64")]]);
    const look = async (d: RunningDaemon, type: string, id: string) => {
      const r = await req(d, [["request", "lookup"], ["cache_type", type], ["cache_id", id]]);
      return { status: tlsmgrStatus(r), session: Buffer.from(r.get("session") ?? "", "base64").toString() };
    };
    assert.equal(tlsmgrStatus(await upd(a, "smtpd", "X", "from A smtpd")), 0);
    assert.equal(tlsmgrStatus(await upd(a, "smtp", "X", "from A smtp")), 0);
    assert.deepEqual(await look(b, "smtpd", "X"), { status: 0, session: "from A smtpd" });
    assert.deepEqual(await look(b, "smtp", "X"), { status: 0, session: "from A smtp" });
    const ka = await tlsmgrTktkey(a.socket);
    const kb = await tlsmgrTktkey(b.socket);
    assert.equal(ka.status, 0);
    assert.deepEqual(kb.keybuf, ka.keybuf, "one current ticket key for both hosts");
    const stored = (await rs.cli("--scan", "--pattern", "mx:*")).split("\n").filter((l) => l !== "").sort();
    assert.deepEqual(stored.filter((k) => k.includes(":session:")), ["mx:smtp:session:X", "mx:smtpd:session:X"]);
    assert.equal(stored.filter((k) => k.startsWith("mx:tktkey:")).length, 1, stored.join(" "));
  });
});
