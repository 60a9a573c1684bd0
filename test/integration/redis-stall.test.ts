/**
 * redis-stall.test.ts - a standalone redis-server that keeps its connection
 *                       but stops answering (SIGSTOP): after the first
 *                       request times out, requests are refused at once
 *                       instead of each waiting the table's timeout, the
 *                       link probes with PING, and its answer ends the
 *                       stall (src/redis/link.ts, "Stalled server"); a
 *                       Cluster with one node stopped is not stalled. Real redis-server; no timing assertions:
 *                       counts of commands the server received, replies,
 *                       and the link's state.
 * Not here: the outage warnings and the misses under load
 *           (test/integration/redis-degradation.test.ts).
 * See also: src/redis/link.ts, docs/benchmarks.md ("Store paused under load")
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { redisLinkOpen } from "../../src/redis/link.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";
import {
  redisSkipReason, startRedisCluster, startRedisServer, writeRedisTable, type RedisClusterHandle, type RedisServerHandle,
} from "../helpers/redis-server.js";
import { tempDir } from "../helpers/temp-dir.js";

const dir = tempDir("tlsmgr-redis-stall-");
captureMsgsEach();

/** getCalls, pingCalls - how many GET and PING commands the server has executed (INFO commandstats). */
async function getCalls(server: RedisServerHandle): Promise<number> {
  const m = /cmdstat_get:calls=(\d+)/.exec(await server.cli("info", "commandstats"));
  return m ? Number(m[1]) : 0;
}
async function pingCalls(server: RedisServerHandle): Promise<number> {
  const m = /cmdstat_ping:calls=(\d+)/.exec(await server.cli("info", "commandstats"));
  return m ? Number(m[1]) : 0;
}

describe("a stalled redis-server (SIGSTOP)", { skip: redisSkipReason() ?? false }, () => {
  let server: RedisServerHandle;
  before(async () => {
    server = await startRedisServer();
  });
  after(async () => {
    await server?.stop();
  });

  it("refuses requests at once after a timeout, probes with PING, and serves again after SIGCONT", async () => {
    const table = await writeRedisTable(join(dir, "stall.cf"), { servers: `127.0.0.1:${server.port}`, keyPrefix: "stall:", timeout: "100ms" });
    const link = await redisLinkOpen(table);
    try {
      assert.equal(await link.run((c) => c.set("stall:k", "v")), "OK");
      await server.cli("config", "resetstat");
      server.pause();
      await assert.rejects(link.run((c) => c.get("stall:k")), /no reply within 100 ms/);
      assert.equal(link.stalled, true, "a timeout marks the server stalled");
      // waves of 50 requests at once, as many clients would send them: all refused, none sent
      const WAVES = 4;
      let refused = 0;
      for (let w = 0; w < WAVES; w++) {
        const r = await Promise.allSettled(Array.from({ length: 50 }, () => link.run((c) => c.get("stall:k"))));
        refused += r.filter((x) => x.status === "rejected").length;
      }
      assert.equal(refused, WAVES * 50);
      assert.equal(link.stalled, true);
      server.resume();
      let value: string | null = null;
      for (let i = 0; i < 200 && value === null; i++) {
        value = await link.run((c) => c.get("stall:k")).catch(() => null);
        if (value === null) await sleep(20);
      }
      assert.equal(value, "v", "served again after SIGCONT");
      assert.equal(link.stalled, false, "the probe's answer ended the stall");
      const sent = await getCalls(server);
      assert.ok(sent <= 3, `GET commands that reached the server: ${sent} (the one that timed out, the last ones; none of the ${WAVES * 50} refused)`);
      assert.ok(await pingCalls(server) >= 1, "the link probed with PING");
    } finally {
      server.resume();
      await link.release();
    }
  });

});

describe("a stalled redis-server: the requests already waiting", { skip: redisSkipReason() ?? false }, () => {
  let server: RedisServerHandle;
  before(async () => {
    server = await startRedisServer();
  });
  after(async () => {
    await server?.stop();
  });

  it("are answered when the first of them times out, not each at its own timeout", async () => {
    const table = await writeRedisTable(join(dir, "waiting.cf"), { servers: `127.0.0.1:${server.port}`, keyPrefix: "w:", timeout: "200ms" });
    const link = await redisLinkOpen(table);
    try {
      assert.equal(await link.run((c) => c.set("w:k", "v")), "OK");
      server.pause();
      const first = link.run((c) => c.get("w:k"));
      first.catch(() => undefined);
      await sleep(20);
      const later = [link.run((c) => c.get("w:k")), link.run((c) => c.get("w:k"))];
      const results = await Promise.allSettled([first, ...later]);
      const reason = (r: PromiseSettledResult<unknown>) => (r.status === "rejected" ? String((r.reason as Error).message) : "answered");
      assert.match(reason(results[0]!), /^no reply within 200 ms$/, "the first waited its timeout");
      for (const r of results.slice(1)) assert.match(reason(r), /\(server stalled\)$/, "the later ones were answered with it, before their own timeouts");
    } finally {
      server.resume();
      await link.release();
    }
  });
});

describe("a Cluster with one node stopped (SIGSTOP)", { skip: redisSkipReason() ?? false }, () => {
  let cluster: RedisClusterHandle;
  before(async () => {
    cluster = await startRedisCluster(3);
  });
  after(async () => {
    await cluster?.stop();
  });

  it("is not marked stalled: keys on the other nodes are still served", async () => {
    const servers = cluster.nodes.map((n) => `127.0.0.1:${n.port}`).join(" ");
    const table = await writeRedisTable(join(dir, "cluster.cf"), { servers, cluster: true, keyPrefix: "c:", timeout: "200ms" });
    const link = await redisLinkOpen(table);
    const keys = Array.from({ length: 30 }, (_, i) => `c:key-${i}`);
    try {
      for (const k of keys) assert.equal(await link.run((c) => c.set(k, "v")), "OK");
      cluster.nodes[0]!.pause();
      const first = await Promise.allSettled(keys.map((k) => link.run((c) => c.get(k))));
      const second = await Promise.allSettled(keys.map((k) => link.run((c) => c.get(k))));
      cluster.nodes[0]!.resume();
      const served = (r: PromiseSettledResult<string | null>[]) => r.filter((x) => x.status === "fulfilled" && x.value === "v").length;
      assert.ok(first.some((x) => x.status === "rejected"), "the stopped node's keys time out");
      assert.ok(served(second) > 0 && served(second) < keys.length, `after the timeouts the other nodes' keys are still served: ${served(second)} of ${keys.length}`);
      assert.equal(link.stalled, false);
    } finally {
      cluster.nodes[0]!.resume();
      await link.release();
    }
  });
});
