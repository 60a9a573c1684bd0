/**
 * redis-degradation.test.ts - a session cache on a real redis-server that is
 * killed (kill -9) or frozen (SIGSTOP) under load: every request is answered
 * (a miss: lookup undefined, update false), nothing waits for Redis to come
 * back, the outage is logged once, and the cache works again after Redis
 * returns, with the same objects (no reopen).
 * See also: src/redis/link.ts, src/cache/backends/redis.ts,
 *           test/helpers/redis-server.ts
 *
 * No timing assertions: a request that takes longer than HANG_MS counts as
 * hung (HANG_MS only tells "answered" from "waiting for Redis"). The
 * latencies are reported as diagnostics. Bounds here are longer than the
 * 50 ms default so that a busy machine does not turn served requests into
 * misses; a frozen server shows the bound at work (p50 = the bound).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it, type TestContext } from "node:test";
import "../../src/cache/backends/index.js";
import { scacheOpen, type SessionCache } from "../../src/cache/scache.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";
import { redisSkipReason, startRedisServer, testKeyWrapFile, writeRedisTable, type RedisServerHandle } from "../helpers/redis-server.js";
import { tempDir } from "../helpers/temp-dir.js";

const HANG_MS = 3000;
const WORKERS = 16;

const dir = tempDir("tlsmgr-redis-degr-");
const lines = captureMsgsEach();

interface Op {
  kind: "update" | "lookup";
  start: number;
  ms: number;
  ok: boolean;
  hung: boolean;
}

/** timed - run one cache operation, noting how long it took and whether it answered at all. */
async function timed(kind: Op["kind"], fn: () => boolean | Promise<boolean>): Promise<Op> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<"hung">((r) => (timer = setTimeout(() => r("hung"), HANG_MS)));
  const r = await Promise.race([fn(), hang]);
  clearTimeout(timer);
  return { kind, start, ms: performance.now() - start, ok: r === true, hung: r === "hung" };
}

/** load - WORKERS loops of update-then-lookup until stop() is called. */
function load(cache: SessionCache): { ops: Op[]; stop(): Promise<void> } {
  const ops: Op[] = [];
  let running = true;
  const loops = Array.from({ length: WORKERS }, async (_, w) => {
    for (let i = 0; running; i++) {
      const id = `w${w}-${i % 50}`;
      const session = Buffer.from(`session ${w} ${i}`);
      ops.push(await timed("update", () => cache.update(id, session)));
      ops.push(
        await timed("lookup", async () => {
          const got = await cache.lookup(id);
          return got !== undefined && got.equals(session);
        }),
      );
      await new Promise((r) => setImmediate(r));
    }
  });
  return {
    ops,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** report - latency figures for a phase, as test diagnostics. */
function report(t: TestContext, name: string, ops: Op[]): void {
  if (ops.length === 0) return;
  const ms = ops.map((o) => o.ms).sort((a, b) => a - b);
  const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]!.toFixed(1);
  t.diagnostic(`${name}: ${ops.length} requests, ${ops.filter((o) => o.ok).length} hits/stored, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms`);
}

/** untilWorks - wait (bounded) until an update and lookup through the cache succeed again. */
async function untilWorks(cache: SessionCache): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if ((await cache.update("probe", Buffer.from("p"))) && (await cache.lookup("probe"))?.equals(Buffer.from("p"))) return true;
    await sleep(50);
  }
  return false;
}

const linkLines = (re: RegExp) => lines.filter((l) => re.test(l));

/** againLogged - wait (bounded) for the end-of-outage line, logged once the server has answered for a while. */
async function againLogged(): Promise<number> {
  for (let i = 0; i < 200 && linkLines(/server answers again/).length === 0; i++) await sleep(50);
  return linkLines(/^info: redis:.*: server answers again$/).length;
}

describe("redis session cache under failure", { skip: redisSkipReason() ?? false }, () => {
  let server: RedisServerHandle;
  let cache: SessionCache;

  before(async () => {
    server = await startRedisServer();
  });
  after(async () => {
    await server?.stop();
  });

  it("kill -9 of redis-server under load: every request answered as a miss, one warning, works again after restart", async (t) => {
    // A dead server refuses at once whatever the bound; a long bound keeps a busy machine from timing out the "up" phase.
    const table = await writeRedisTable(join(dir, "kill.cf"), { keyWrapFile: testKeyWrapFile(), servers: `127.0.0.1:${server.port}`, keyPrefix: "kill:", timeout: "2s" });
    cache = await scacheOpen(`redis:${table}`, "smtpd", false, 3600);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    try {
      const run = load(cache);
      await sleep(300);
      const before = run.ops.length;
      await server.kill();
      const killedAt = performance.now();
      delay.enable();
      await sleep(800);
      delay.disable();
      const restartAt = performance.now();
      await server.start();
      assert.ok(await untilWorks(cache), "the cache works again after redis-server returns, without a reopen");
      await sleep(300);
      await run.stop();

      const up = run.ops.slice(0, before);
      const down = run.ops.filter((o) => o.start > killedAt + 5 && o.start + o.ms < restartAt);
      const after = run.ops.filter((o) => o.start > restartAt + 5000);
      report(t, "before the kill", up);
      report(t, "while redis-server is dead", down);
      t.diagnostic(`event loop delay while dead: max ${(delay.max / 1e6).toFixed(1)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms`);
      assert.equal(run.ops.filter((o) => o.hung).length, 0, "no request waited for Redis");
      assert.ok(up.length > 0 && up.every((o) => o.ok), "all requests served before the kill");
      assert.ok(down.length > 100, `load went on during the outage (${down.length} requests)`);
      assert.ok(down.every((o) => !o.ok), "during the outage: lookups miss, updates fail");
      assert.ok(after.every((o) => o.ok));
      const session = Buffer.from("after the outage");
      assert.equal(await cache.update("again", session), true);
      assert.deepEqual(await cache.lookup("again"), session);
      assert.equal(linkLines(/^warning: redis:.*: server unavailable: /).length, 1, lines.filter((l) => l.includes("redis:")).join("\n"));
      assert.equal(await againLogged(), 1);
    } finally {
      await cache.close();
    }
  });

  it("a frozen redis-server (SIGSTOP): requests answered as misses within the bound, then served again (SIGCONT)", async (t) => {
    const table = await writeRedisTable(join(dir, "stop.cf"), { keyWrapFile: testKeyWrapFile(), servers: `127.0.0.1:${server.port}`, keyPrefix: "stop:", timeout: "250ms" });
    cache = await scacheOpen(`redis:${table}`, "smtpd", false, 3600);
    try {
      assert.equal(await cache.update("kept", Buffer.from("v")), true);
      server.pause();
      const pausedAt = performance.now();
      const run = load(cache);
      await sleep(600);
      await run.stop();
      server.resume();
      report(t, "while redis-server is frozen", run.ops);
      assert.equal(run.ops.filter((o) => o.hung).length, 0, "no request waited for the frozen server");
      assert.ok(run.ops.length >= WORKERS * 2);
      assert.ok(run.ops.every((o) => !o.ok && o.start >= pausedAt));
      assert.equal(linkLines(/^warning: redis:.*: server unavailable: no reply within 250 ms/).length, 1, lines.join("\n"));
      assert.ok(await untilWorks(cache), "served again once the server runs");
      assert.deepEqual(await cache.lookup("kept"), Buffer.from("v"));
      assert.equal(await againLogged(), 1);
    } finally {
      server.resume();
      await cache.close();
    }
  });

  it("redis-server down at start-up: the cache opens, misses, and starts working when the server comes", async () => {
    const late = await startRedisServer();
    await late.kill();
    const table = await writeRedisTable(join(dir, "late.cf"), { keyWrapFile: testKeyWrapFile(), servers: `127.0.0.1:${late.port}`, keyPrefix: "late:" });
    try {
      cache = await scacheOpen(`redis:${table}`, "smtpd", false, 3600);
      assert.equal(await cache.update("x", Buffer.from("1")), false);
      assert.equal(await cache.lookup("x"), undefined);
      assert.equal(linkLines(/server unavailable/).length, 1);
      await late.start();
      assert.ok(await untilWorks(cache));
      assert.equal(await againLogged(), 1);
    } finally {
      await cache.close();
      await late.stop();
    }
  });

  it("several standalone servers are a failover list: the next one is used when the first is down", async () => {
    const dead = await startRedisServer();
    await dead.kill();
    const table = await writeRedisTable(join(dir, "failover.cf"), {
      servers: `127.0.0.1:${dead.port} 127.0.0.1:${server.port}`,
      keyPrefix: "fo:",
      keyWrapFile: testKeyWrapFile(),
    });
    try {
      cache = await scacheOpen(`redis:${table}`, "smtpd", false, 3600);
      assert.ok(await untilWorks(cache), "served by the second server");
      assert.equal((await server.cli("exists", "fo:smtpd:session:probe")).trim(), "1");
    } finally {
      await cache.close();
      await dead.stop();
    }
  });
});
