/**
 * redis-daemons.test.ts - two tlsmgr daemons of this project ("host A" and
 * "host B", each its own configuration directory and socket) on one real
 * redis-server: they race to create the first ticket key and end with one,
 * share session cache entries, and keep answering while redis-server is
 * killed under load, then work again when it returns, without a restart.
 * See also: src/cache/backends/redis.ts, src/tickets/redis-keys.ts,
 *           test/helpers/daemon.ts, test/helpers/redis-server.ts
 *
 * Needs the redis: map type registered in the daemon (cache/backends/index.ts).
 * No timing assertions: each request has HANG_MS to answer, which only
 * tells "answered" from "waiting for Redis"; latencies are diagnostics.
 * Tables use a 1 s bound so a busy machine does not turn served requests
 * into misses (a dead server is refused at once whatever the bound).
 */

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { startDaemon, tlsmgrRequest, tlsmgrStatus, tlsmgrTktkey, type RunningDaemon } from "../helpers/daemon.js";
import { redisSkipReason, startRedisServer, writeRedisTable, type RedisServerHandle } from "../helpers/redis-server.js";
import { keygen } from "../../src/tools/keygen.js";

const HANG_MS = 5000;

let dir = "";
let server: RedisServerHandle;
let a: RunningDaemon;
let b: RunningDaemon;

/** makeHome - a configuration directory dir/NAME with a data directory and a main.cf of these extra lines. */
function makeHome(name: string, extra: string[]): string {
  const home = join(dir, name);
  mkdirSync(join(home, "data"), { recursive: true, mode: 0o700 });
  writeFileSync(
    join(home, "main.cf"),
    [
      `queue_directory = ${home}/queue`,
      `data_directory = ${home}/data`,
      `mail_owner = ${mailOwner()}`,
      ...extra,
      `tls_random_exchange_name = \${data_directory}/prng_exch`,
      "",
    ].join("\n"),
  );
  return home;
}

/** hostConfig - a configuration directory for one "host" using redis for smtpd, smtp and ticket keys. */
async function hostConfig(name: string, wrapFile: string): Promise<string> {
  const home = join(dir, name);
  mkdirSync(home, { recursive: true });
  const smtpd = await writeRedisTable(join(home, "tls-redis.cf"), {
    servers: `127.0.0.1:${server.port}`,
    keyPrefix: "farm:smtpd:",
    keyWrapFile: wrapFile,
    timeout: "1s",
  });
  const smtp = await writeRedisTable(join(home, "tls-redis-smtp.cf"), {
    servers: `127.0.0.1:${server.port}`,
    keyPrefix: "farm:smtp:",
    keyWrapFile: wrapFile,
    timeout: "1s",
  });
  return makeHome(name, [
    `smtpd_tls_session_cache_database = redis:${smtpd}`,
    `smtp_tls_session_cache_database = redis:${smtp}`,
    `tlsmgr_ticket_key_database = redis:${smtpd}`,
  ]);
}

const b64 = (b: Buffer) => b.toString("base64");

/** mailOwner - the account the test daemons run as. */
function mailOwner(): string {
  return process.getuid?.() === 0 ? "root" : userInfo().username;
}

/** update - one update request; its status. */
async function update(d: RunningDaemon, type: string, id: string, session: Buffer): Promise<number> {
  const r = await tlsmgrRequest(d.socket, [["request", "update"], ["cache_type", type], ["cache_id", id], ["session", b64(session)]], HANG_MS);
  return tlsmgrStatus(r);
}

/** lookup - one lookup request; status and session. */
async function lookup(d: RunningDaemon, type: string, id: string): Promise<{ status: number; session: Buffer }> {
  const r = await tlsmgrRequest(d.socket, [["request", "lookup"], ["cache_type", type], ["cache_id", id]], HANG_MS);
  return { status: tlsmgrStatus(r), session: Buffer.from(r.get("session") ?? "", "base64") };
}

describe("two tlsmgr daemons on one redis-server", { skip: redisSkipReason() ?? false }, () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "tlsmgr-redis-daemons-"));
    server = await startRedisServer();
    const wrap = join(dir, "key-wrap");
    keygen(wrap);
    const homeA = await hostConfig("host-a", wrap);
    const homeB = await hostConfig("host-b", wrap);
    [a, b] = await Promise.all([
      startDaemon({ configDir: homeA, socket: join(homeA, "tlsmgr.sock") }),
      startDaemon({ configDir: homeB, socket: join(homeB, "tlsmgr.sock") }),
    ]);
  });

  after(async () => {
    await a?.stop();
    await b?.stop();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("race to create the first ticket key and end with one key, the same on both", async () => {
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => tlsmgrTktkey((i % 2 ? a : b).socket)));
    assert.ok(replies.every((r) => r.status === 0 && r.keybuf.length === 88), JSON.stringify(replies.map((r) => r.status)));
    const names = new Set(replies.map((r) => r.keybuf.subarray(0, 16).toString("hex")));
    assert.equal(names.size, 1, "one current key on both hosts");
    assert.ok(new Set(replies.map((r) => b64(r.keybuf))).size === 1, "same key material");
    const slots = (await server.cli("--scan", "--pattern", "farm:smtpd:tktkey:*")).trim().split("\n");
    assert.equal(slots.length, 1, slots.join(","));
    const name = replies[0]!.keybuf.subarray(0, 16);
    assert.deepEqual((await tlsmgrTktkey(a.socket, name)).keybuf, replies[0]!.keybuf, "A finds it by name");
    assert.deepEqual((await tlsmgrTktkey(b.socket, name)).keybuf, replies[0]!.keybuf, "B finds it by name");
  });

  it("a session stored through host A is found through host B, for smtpd and smtp", async () => {
    const s1 = Buffer.from("smtpd session from A \x00\xff", "latin1");
    const s2 = Buffer.from("smtp session from A");
    assert.equal(await update(a, "smtpd", "0123ABCD", s1), 0);
    assert.equal(await update(a, "smtp", "smtp&[mx.example]:25&192.0.2.1&&0123", s2), 0);
    assert.deepEqual(await lookup(b, "smtpd", "0123ABCD"), { status: 0, session: s1 });
    assert.deepEqual(await lookup(b, "smtp", "smtp&[mx.example]:25&192.0.2.1&&0123"), { status: 0, session: s2 });
    assert.equal((await lookup(b, "smtp", "0123ABCD")).status, -1, "caches stay apart");
    assert.equal(
      tlsmgrStatus(await tlsmgrRequest(b.socket, [["request", "delete"], ["cache_type", "smtpd"], ["cache_id", "0123ABCD"]])),
      0,
    );
    assert.equal((await lookup(a, "smtpd", "0123ABCD")).status, -1, "B's delete seen by A");
  });

  it("a daemon told to share ticket keys without key_wrap_file says why and keeps its keys in memory", async () => {
    mkdirSync(join(dir, "no-wrap"));
    const table = await writeRedisTable(join(dir, "no-wrap", "tls-redis.cf"), { servers: `127.0.0.1:${server.port}` });
    const home = makeHome("no-wrap", [`tlsmgr_ticket_key_database = redis:${table}`]);
    const d = await startDaemon({ configDir: home, socket: join(home, "tlsmgr.sock"), readyTimeoutMs: 10_000 });
    try {
      const key = await tlsmgrTktkey(d.socket);
      assert.equal(key.status, 0);
      assert.equal(key.keybuf.length, 88);
      const errors = d.stderr().split("\n").filter((l) => /: error: /.test(l));
      assert.equal(errors.length, 1, d.stderr());
      assert.match(
        errors[0]!,
        /error: .*main\.cf: parameter tlsmgr_ticket_key_database: redis:.*tls-redis\.cf: sharing session ticket keys needs key_wrap_file in .*: keys are never stored in plain in Redis; make the file once with "tlsmgr-postfix keygen/,
      );
      assert.match(d.stderr(), /warning: .*parameter tlsmgr_ticket_key_database: redis:\S+ is unavailable: session ticket keys are kept in memory/);
      assert.doesNotMatch(d.stderr(), /fatal: /);
      // a key of this host's memory: the farm does not know it
      assert.notDeepEqual((await tlsmgrTktkey(a.socket, key.keybuf.subarray(0, 16))).keybuf, key.keybuf, "not shared with host A");
    } finally {
      await d.stop();
    }
  });

  it("killing redis-server under load: every request answered, misses, no crash; works again after it returns", async (t) => {
    const key0 = await tlsmgrTktkey(a.socket);
    let running = true;
    const results: { what: string; status: number; start: number; end: number }[] = [];
    const timed = async (what: string, fn: () => Promise<number>) => {
      const start = performance.now();
      const status = await fn();
      results.push({ what, status, start, end: performance.now() });
    };
    const worker = async (d: RunningDaemon, w: number) => {
      for (let i = 0; running; i++) {
        const id = `load-${w}-${i % 20}`;
        await timed("update", () => update(d, "smtpd", id, Buffer.from(`s${i}`)));
        await timed("lookup", async () => (await lookup(d, "smtpd", id)).status);
        await timed("tktkey", async () => (await tlsmgrTktkey(d.socket)).status);
      }
    };
    const workers = [0, 1, 2, 3].map((w) => worker(w % 2 ? b : a, w));
    await sleep(300);
    const killStart = performance.now();
    await server.kill();
    const killedAt = performance.now();
    await sleep(1000);
    const restartAt = performance.now();
    await server.start();
    let back = false;
    for (let i = 0; i < 200 && !back; i++) {
      back = (await update(a, "smtpd", "probe", Buffer.from("p"))) === 0 && (await lookup(b, "smtpd", "probe")).status === 0;
      if (!back) await sleep(50);
    }
    const backAt = performance.now();
    await sleep(300);
    running = false;
    await Promise.all(workers);

    const phases: Record<string, typeof results> = {
      up: results.filter((x) => x.end < killStart),
      down: results.filter((x) => x.start > killedAt && x.end < restartAt),
      back: results.filter((x) => x.start > backAt),
    };
    for (const ph of ["up", "down", "back"]) {
      const r = phases[ph]!;
      const ms = r.map((x) => x.end - x.start).sort((x, y) => x - y);
      t.diagnostic(`${ph}: ${r.length} requests, max ${ms[ms.length - 1]?.toFixed(1)} ms, p99 ${ms[Math.floor(ms.length * 0.99)]?.toFixed(1)} ms`);
    }
    assert.ok(back, "caches work again after redis-server returns, without restarting the daemons");
    const down = phases["down"]!;
    assert.ok(down.length > 20, `requests went on during the outage (${down.length})`);
    assert.ok(down.filter((x) => x.what !== "tktkey").every((x) => x.status === -1), "cache requests miss during the outage");
    assert.ok(down.filter((x) => x.what === "tktkey").every((x) => x.status === 0), "ticket keys keep coming (local ones)");
    assert.ok(phases["up"]!.length > 0 && phases["up"]!.every((x) => x.status === 0), "all served before the kill");
    assert.ok(phases["back"]!.length > 0 && phases["back"]!.every((x) => x.status === 0), "all served after the return");
    assert.equal(a.proc.exitCode, null, "A still running");
    assert.equal(b.proc.exitCode, null, "B still running");
    const k = await tlsmgrTktkey(a.socket, key0.keybuf.subarray(0, 16));
    assert.equal(k.status, 0, "the key from before the outage still decrypts");
    for (const d of [a, b]) {
      const unavailable = d.stderr().split("\n").filter((l) => /: server unavailable: /.test(l));
      assert.ok(unavailable.length >= 1 && unavailable.length <= 2, `one warning per connection for the outage:\n${unavailable.join("\n")}`);
      assert.ok(!/TypeError|unhandled|panic/i.test(d.stderr()), d.stderr());
    }
  });
});
