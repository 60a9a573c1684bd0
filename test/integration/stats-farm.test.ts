/**
 * stats-farm.test.ts - the farm check of the statistics, with two daemons of
 *                      this project ("hosts" A and B) on one real
 *                      redis-server: each host's stats say whether its
 *                      shared stores are reachable and whether the ticket key
 *                      it hands out is the shared one, in the stats request,
 *                      in tlsmgr-client's table and in /metrics; while
 *                      redis-server is down they say so, and a host started
 *                      during the outage shows its local key.
 * See also: src/stats/stats-snapshot.ts (farm), src/redis/link.ts (state),
 *           src/tickets/redis-keys.ts (inUse), README (How to check that a farm works)
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { TlsmgrClient } from "../../src/client/tlsmgr-client.js";
import type { StatsSnapshot } from "../../src/stats/stats-snapshot.js";
import { keygen } from "../../src/tools/keygen.js";
import { REPO_ROOT, startDaemon, type RunningDaemon } from "../helpers/daemon.js";
import { freeLoopbackPort } from "../helpers/free-port.js";
import { sample, waitForScrape } from "../helpers/metrics-scrape.js";
import { redisSkipReason, startRedisServer, writeRedisTable, type RedisServerHandle } from "../helpers/redis-server.js";
import { tempDir } from "../helpers/temp-dir.js";

interface Host {
  daemon: RunningDaemon;
  metrics: string;
  tables: string[];
}

/** stats - one stats request to a host. */
async function stats(h: Host): Promise<StatsSnapshot> {
  const c = await TlsmgrClient.connect(h.daemon.socket);
  try {
    const r = await c.stats();
    assert.equal(r.status, 0);
    return r.stats!;
  } finally {
    c.close();
  }
}

/** ask - one request on a fresh connection. */
async function ask<T>(h: Host, fn: (c: TlsmgrClient) => Promise<T>): Promise<T> {
  const c = await TlsmgrClient.connect(h.daemon.socket);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** table - tlsmgr-client stats as printed. */
function table(h: Host): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(join(REPO_ROOT, "bin", "tlsmgr-client"), ["-s", h.daemon.socket, "stats"], (err, out) => (err ? reject(err) : resolve(out))));
}

describe("farm diagnostics: two hosts on one redis-server", { skip: redisSkipReason() ?? false }, () => {
  const dir = tempDir("tlsmgr-stats-farm-");
  let server: RedisServerHandle;
  const hosts: Host[] = [];
  let wrap = "";

  /** startHost - a host whose smtpd cache, smtp cache and ticket keys are in the redis-server, with /metrics on. */
  async function startHost(name: string): Promise<Host> {
    const home = join(dir, name);
    mkdirSync(join(home, "data"), { recursive: true, mode: 0o700 });
    const servers = `127.0.0.1:${server.port}`;
    const smtpd = await writeRedisTable(join(home, "smtpd-redis.cf"), { servers, keyPrefix: "farm:smtpd:", timeout: "1s", keyWrapFile: wrap });
    const smtp = await writeRedisTable(join(home, "smtp-redis.cf"), { servers, keyPrefix: "farm:smtp:", timeout: "1s", keyWrapFile: wrap });
    const keys = await writeRedisTable(join(home, "keys-redis.cf"), { servers, keyPrefix: "farm:keys:", timeout: "1s", keyWrapFile: wrap });
    const port = await freeLoopbackPort();
    writeFileSync(join(home, "main.cf"), [
      `queue_directory = ${home}/queue`,
      `data_directory = ${home}/data`,
      `mail_owner = ${process.getuid?.() === 0 ? "root" : process.env["USER"]}`,
      `tls_random_exchange_name = \${data_directory}/prng_exch`,
      `smtpd_tls_session_cache_database = redis:${smtpd}`,
      `smtp_tls_session_cache_database = redis:${smtp}`,
      `tlsmgr_ticket_key_database = redis:${keys}`,
      `tlsmgr_metrics_address = 127.0.0.1:${port}`,
      "",
    ].join("\n"));
    const daemon = await startDaemon({ configDir: home, socket: join(home, "tlsmgr.sock") });
    const h = { daemon, metrics: `http://127.0.0.1:${port}/metrics`, tables: [smtpd, smtp, keys] };
    hosts.push(h);
    await waitForScrape(h.metrics);
    return h;
  }

  before(async () => {
    server = await startRedisServer();
    wrap = join(dir, "key-wrap");
    keygen(wrap);
  });

  after(async () => {
    for (const h of hosts) await h.daemon.stop();
    await server?.stop();
  });

  it("healthy: every shared store up, the same shared ticket key on both hosts", async () => {
    const a = await startHost("a");
    const b = await startHost("b");
    const names = [];
    for (const h of [a, b]) {
      const k = await ask(h, (c) => c.tktkey());
      assert.equal(k.status, 0);
      names.push(k.keybuf.subarray(0, 16).toString("hex"));
    }
    assert.equal(names[0], names[1]);
    for (const h of [a, b]) {
      const s = await stats(h);
      assert.deepEqual(s.links.map((l) => [l.label, l.state, l.servers]).sort(),
        h.tables.map((t) => [`redis:${t}`, "up", [`127.0.0.1:${server.port}`]]).sort());
      assert.deepEqual(s.farm, { shared_stores: 3, reachable: true, ticket_key_shared: true });
      assert.deepEqual(s.tickets!.in_use, { name: names[0], expires: s.tickets!.in_use!.expires, shared: true });
      assert.equal(s.caches["smtpd"]!.shared, true);
      assert.equal(s.caches["smtpd"]!.entries, null, "a shared store keeps no account");
      assert.match(await table(h), /^farm: shared stores reachable: yes; ticket key in use is the shared one: yes$/m);
      const m = await waitForScrape(h.metrics);
      for (const t of h.tables) assert.equal(sample(m, "tlsmgr_shared_store_up", { store: `redis:${t}` }), 1);
      assert.equal(sample(m, "tlsmgr_ticket_key_shared"), 1);
      assert.equal(m.samples.has('tlsmgr_cache_entries{cache="smtpd"}'), false);
    }
    // B made no key: it adopted A's
    assert.deepEqual([(await stats(a)).tickets!.made, (await stats(b)).tickets!.made], [1, 0]);
  });

  it("redis-server down: the stores show down with the reason, and a host started now hands out a local key", async () => {
    const a = hosts[0]!;
    const before = await stats(a);
    await server.kill();
    const miss = await ask(a, (c) => c.lookup("smtpd", "some-id"));
    assert.equal(miss.status, -1, "answered as a miss");
    const s = await stats(a);
    assert.ok(s.links.every((l) => l.state !== "up"), JSON.stringify(s.links));
    assert.equal(s.links.find((l) => l.label.endsWith("smtpd-redis.cf"))!.state, "down");
    assert.equal(s.farm.reachable, false);
    assert.equal(s.farm.ticket_key_shared, true, "the shared key known before the outage is still handed out");
    assert.equal(s.caches["smtpd"]!.lookups.error - before.caches["smtpd"]!.lookups.error, 1);
    assert.ok(s.backends.redis.errors > before.backends.redis.errors);
    const m = await waitForScrape(a.metrics);
    assert.equal(sample(m, "tlsmgr_shared_store_up", { store: `redis:${a.tables[0]}` }), 0);

    const c = await startHost("c");
    assert.equal((await ask(c, (cl) => cl.tktkey())).status, 0);
    const sc = await stats(c);
    assert.equal(sc.tickets!.in_use!.shared, false);
    assert.deepEqual([sc.farm.reachable, sc.farm.ticket_key_shared], [false, false]);
    assert.match(await table(c), /^farm: shared stores reachable: NO; ticket key in use is the shared one: NO$/m);
    assert.match(await table(c), /^ {2}redis:\S+keys-redis\.cf \(127\.0\.0\.1:\d+\): (down|connecting|reconnecting)/m);
    assert.equal(sample(await waitForScrape(c.metrics), "tlsmgr_ticket_key_shared"), 0);
  });

  it("redis-server back: the stores show up again, without a restart", async () => {
    const a = hosts[0]!;
    await server.start();
    const deadline = Date.now() + 20_000;
    let s = await stats(a);
    while (!s.farm.reachable && Date.now() < deadline) {
      await ask(a, (c) => c.lookup("smtpd", "some-id")); // a success ends the outage after a quiet time
      await sleep(250);
      s = await stats(a);
    }
    assert.deepEqual(s.farm, { shared_stores: 3, reachable: true, ticket_key_shared: true });
    assert.ok(s.links.every((l) => l.state === "up" && l.reason === null), JSON.stringify(s.links));
  });
});
