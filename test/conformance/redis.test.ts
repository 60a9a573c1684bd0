/**
 * redis.test.ts - the backend conformance suite over a real redis-server,
 *                 standalone and a three-node Redis Cluster on loopback,
 *                 plus what only the Redis backend promises (TTL, shared
 *                 store, registry entry).
 * See also: test/conformance/backend-suite.ts, src/cache/backends/redis.ts,
 *           test/helpers/redis-server.ts
 *
 * Tables here use a 10 s timeout: the suite checks what is stored, not the
 * bound (1500 pipelined writes of the suite may take longer than 50 ms on a
 * busy machine); test/integration/redis-*.test.ts check the bound.
 */

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { backendInfo } from "../../src/cache/backend.js";
import "../../src/cache/backends/index.js";
import { redisBackendInfo, redisOpen, REDIS_DEFAULT_TTL } from "../../src/cache/backends/redis.js";
import { backendConformance } from "./backend-suite.js";
import { FatalError } from "../../src/log/msg.js";
import { SESSION_SEAL_OVERHEAD } from "../../src/cache/session-seal.js";
import {
  redisSkipReason,
  startRedisCluster,
  startRedisServer,
  testKeyWrapFile,
  writeRedisTable,
  type RedisClusterHandle,
  type RedisServerHandle,
} from "../helpers/redis-server.js";

describe("redis backend on real redis-servers (standalone and Cluster)", { skip: redisSkipReason() ?? false }, () => {
  let dir = "";
  let server: RedisServerHandle;
  let cluster: RedisClusterHandle;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tlsmgr-redis-conf-"));
    server = await startRedisServer();
    cluster = await startRedisCluster(3);
  });

  after(async () => {
    await server?.stop();
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * persistent: entries outlive a close. shared: the store belongs to a whole
   * farm, so an open with truncate leaves it alone (see src/cache/backends/redis.ts);
   * the suite is asked (BackendCapabilities.shared) to check that instead of emptying.
   */
  const caps = { persistent: true, shared: true };

  backendConformance(
    "redis (standalone)",
    async (store, opts) =>
      redisOpen(
        await writeRedisTable(join(dir, `${store}.cf`), {
          servers: `127.0.0.1:${server.port}`,
          keyPrefix: `conf:${store}:`,
          keyWrapFile: testKeyWrapFile(),
          timeout: "10s",
        }),
        { ...opts, timeout: 3600 },
      ),
    caps,
  );

  backendConformance(
    "redis (cluster of 3)",
    async (store, opts) =>
      redisOpen(
        await writeRedisTable(join(dir, `cluster-${store}.cf`), {
          servers: cluster.nodes.map((n) => `127.0.0.1:${n.port}`).join(", "),
          cluster: true,
          keyPrefix: `conf:${store}:`,
          keyWrapFile: testKeyWrapFile(),
          timeout: "10s",
        }),
        { ...opts, timeout: 3600 },
      ),
    caps,
  );

  describe("redis backend specifics", () => {
    it("is registered as map type redis and says it expires entries by itself", async () => {
      assert.equal(backendInfo("redis"), redisBackendInfo);
      const table = await writeRedisTable(join(dir, "specifics.cf"), { servers: `127.0.0.1:${server.port}`, keyWrapFile: testKeyWrapFile(), keyPrefix: "sp:" });
      const b = await redisOpen(table, { truncate: true });
      try {
        assert.equal(b.type, "redis");
        assert.equal(b.name, table);
        assert.equal(b.expiresByItself, true);
      } finally {
        await b.close();
      }
    });

    it("sets a TTL of the cache timeout plus one second on every update, under key_prefix + session:", async () => {
      const table = await writeRedisTable(join(dir, "ttl.cf"), { servers: `127.0.0.1:${server.port}`, keyWrapFile: testKeyWrapFile(), keyPrefix: "ttl:" });
      const b = await redisOpen(table, { truncate: true, timeout: 300 });
      await assert.rejects(redisOpen(table + ".missing", { truncate: true }), FatalError, "a missing table file is fatal");
      try {
        await b.update("abc", Buffer.from("v"));
        const ttl = Number((await server.cli("ttl", "ttl:session:abc")).trim());
        assert.ok(ttl > 290 && ttl <= 301, `ttl ${ttl}`);
        // Sealed: the stored value is not the bytes given, and is longer by the seal.
        assert.equal(Number((await server.cli("strlen", "ttl:session:abc")).trim()), 1 + SESSION_SEAL_OVERHEAD);
        assert.deepEqual(await b.lookup("abc"), Buffer.from("v"));
      } finally {
        await b.close();
      }
      const table2 = await writeRedisTable(join(dir, "ttl2.cf"), { servers: `127.0.0.1:${server.port}`, keyWrapFile: testKeyWrapFile(), keyPrefix: "ttl2:" });
      const c = await redisOpen(table2, { truncate: true });
      try {
        await c.update("abc", Buffer.from("v"));
        const ttl = Number((await server.cli("ttl", "ttl2:session:abc")).trim());
        assert.ok(ttl > REDIS_DEFAULT_TTL - 10 && ttl <= REDIS_DEFAULT_TTL + 1, `default ttl ${ttl}`);
      } finally {
        await c.close();
      }
    });

    it("shares one store between two openers of tables naming the same servers and prefix", async () => {
      const t1 = await writeRedisTable(join(dir, "host-a.cf"), { servers: `127.0.0.1:${server.port}`, keyWrapFile: testKeyWrapFile(), keyPrefix: "farm:" });
      const t2 = await writeRedisTable(join(dir, "host-b.cf"), { servers: `127.0.0.1:${server.port}`, keyWrapFile: testKeyWrapFile(), keyPrefix: "farm:" });
      const a = await redisOpen(t1, { truncate: true, timeout: 3600 });
      const b = await redisOpen(t2, { truncate: true, timeout: 3600 });
      try {
        await a.update("sess", Buffer.from("from host a"));
        assert.deepEqual(await b.lookup("sess"), Buffer.from("from host a"));
        assert.equal(await b.delete("sess"), true);
        assert.equal(await a.lookup("sess"), undefined);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it("keeps entries another host stored when opened with truncate (a shared store is never emptied)", async () => {
      const t = await writeRedisTable(join(dir, "keep.cf"), { servers: `127.0.0.1:${server.port}`, keyWrapFile: testKeyWrapFile(), keyPrefix: "keep:" });
      const a = await redisOpen(t, { truncate: true, timeout: 3600 });
      await a.update("other-host", Buffer.from("x"));
      await a.close();
      const b = await redisOpen(t, { truncate: true, timeout: 3600 });
      try {
        assert.deepEqual(await b.lookup("other-host"), Buffer.from("x"));
      } finally {
        await b.close();
      }
    });
  });
});
