/**
 * redis-ticket-keys.test.ts - session-ticket keys shared through a real
 * redis-server: two "hosts" (two key sources, each with its own connection
 * and clock) agree on one key per epoch even when they race, find each
 * other's keys by name under clock skew, never store a key in plain, refuse
 * to start without key_wrap_file, and fall back to local keys (one warning
 * per outage) while Redis is down, then share again.
 * See also: src/tickets/redis-keys.ts, src/tickets/key-source.ts,
 *           test/helpers/redis-server.ts
 */

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { openTicketKeySource } from "../../src/tickets/key-source.js";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CURRENT_RECHECK,
  FALLBACK_TOUT_MAX,
  RedisTicketKeys,
  ticketEpochLength,
} from "../../src/tickets/redis-keys.js";
import type { TicketKey, TicketKeySource } from "../../src/tickets/ticket-keys.js";
import { keygen } from "../../src/tools/keygen.js";
import { FatalError } from "../../src/log/msg.js";
import { manualClock } from "../../src/util/clock.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";
import {
  redisSkipReason,
  startRedisCluster,
  startRedisServer,
  writeRedisTable,
  type RedisServerHandle,
} from "../helpers/redis-server.js";

const T = 3600;
const H = T / 2;
const L = ticketEpochLength(T); // 1799

let dir = "";
let server: RedisServerHandle;
let wrapFile = "";
let serial = 0;

const lines = captureMsgsEach();

/** host - a key source with its own table file (so its own connection) and clock, closed after test t. */
async function host(t: TestContext, prefix: string, start: number, extra: { wrap?: string; timeout?: string } = {}) {
  const table = await writeRedisTable(join(dir, `host${++serial}.cf`), {
    servers: `127.0.0.1:${server.port}`,
    keyPrefix: prefix,
    keyWrapFile: extra.wrap ?? wrapFile,
    timeout: extra.timeout ?? "5s",
  });
  const clock = manualClock(start);
  const keys = (await openTicketKeySource({
    tlsmgr_ticket_key_database: `redis:${table}`,
    main_cf_path: join(dir, "main.cf"),
    clock,
  })) as RedisTicketKeys;
  t.after(() => keys.close());
  assert.ok(keys instanceof RedisTicketKeys);
  return { keys, clock, table };
}

const current = async (k: TicketKeySource) => (await k.tktkey(undefined, T))!;

/** storedSlots - the ticket key slots under a prefix. */
async function storedSlots(prefix: string): Promise<string[]> {
  const out = await server.cli("--scan", "--pattern", `${prefix}tktkey:*`);
  return out.split("\n").filter((l) => l !== "").sort();
}

describe("shared session ticket keys in Redis", { skip: redisSkipReason() ?? false }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tlsmgr-redis-keys-"));
    server = await startRedisServer();
    wrapFile = join(dir, "wrap");
    keygen(wrapFile);
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("two hosts racing to create the first key end with one key, the same name on both", async (t) => {
    const epochStart = 1_000_000 * L;
    const a = await host(t, "race:", epochStart);
    const b = await host(t, "race:", epochStart);
    for (let round = 0; round < 20; round++) {
      a.clock.set(epochStart + round * L);
      b.clock.set(epochStart + round * L);
      const got = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? a.keys : b.keys).tktkey(undefined, T)),
      );
      const names = new Set(got.map((k) => k!.name.toString("hex")));
      assert.equal(names.size, 1, `round ${round}: one key for everybody`);
      assert.equal(got[0]!.tout, epochStart + (round + 1) * L);
    }
    const slots = await storedSlots("race:");
    assert.equal(slots.length, 20, "one stored key per epoch");
    assert.deepEqual(slots, Array.from({ length: 20 }, (_, r) => `race:tktkey:${L}:${1_000_000 + r}`).sort());
  });

  it("follows Postfix's lifetime: tout = now + T/2 - 1 at an epoch start, decryption until tout + T/2", async (t) => {
    const e = 1_000_100;
    const start = e * L;
    const a = await host(t, "life:", start);
    const k1 = await current(a.keys);
    assert.equal(k1.tout, start + H - 1, "Postfix's tout for a key made when its epoch starts");
    a.clock.set(k1.tout - 1);
    assert.equal(await current(a.keys), k1, "still current one second before tout");
    a.clock.set(k1.tout);
    const k2 = await current(a.keys);
    assert.ok(!k2.name.equals(k1.name), "a new key once tout is reached");
    assert.equal(k2.tout, k1.tout + L);
    a.clock.set(k1.tout + H - 1);
    assert.deepEqual((await a.keys.tktkey(k1.name, T))?.name, k1.name, "last second of decryption");
    a.clock.set(k1.tout + H);
    assert.equal(await a.keys.tktkey(k1.name, T), undefined, "expired for decryption");
    assert.deepEqual((await a.keys.tktkey(k2.name, T))?.name, k2.name);
    assert.equal(await a.keys.tktkey(Buffer.alloc(16, 7), T), undefined, "unknown name");
  });

  it("after Redis forgets its keys (restart without persistence), hosts agree on one current key again", async (t) => {
    const start = 1_000_200 * L;
    /** settlesTo - ask for the current key until it is `want` (the recheck runs in the background). */
    const settlesTo = async (keys: TicketKeySource, want: TicketKey) => {
      for (let i = 0; i < 200; i++) {
        if ((await current(keys)).name.equals(want.name)) return;
        await sleep(10);
      }
      assert.fail(`the current key did not become ${want.name.toString("hex")}`);
    };
    const a = await host(t, "lost:", start);
    const b = await host(t, "lost:", start);
    const k1 = await current(a.keys);
    assert.deepEqual((await current(b.keys)).name, k1.name);
    // Redis loses everything; a host started now creates another key for the same epoch.
    await server.cli("FLUSHALL");
    const c = await host(t, "lost:", start + 5);
    const k2 = await current(c.keys);
    assert.ok(!k2.name.equals(k1.name), "a second current key exists");
    // Within CURRENT_RECHECK seconds the running hosts offer theirs again and adopt the stored one.
    a.clock.set(start + CURRENT_RECHECK);
    await settlesTo(a.keys, k2);
    b.clock.set(start + CURRENT_RECHECK);
    await settlesTo(b.keys, k2);
    assert.deepEqual((await a.keys.tktkey(k1.name, T))?.name, k1.name, "a's tickets under its old key still decrypt");
    // Redis loses everything again; this time a running host offers first and its key is stored again.
    await server.cli("FLUSHALL");
    a.clock.set(start + 2 * CURRENT_RECHECK);
    await current(a.keys);
    for (let i = 0; i < 200 && (await storedSlots("lost:")).length === 0; i++) await sleep(10);
    const d = await host(t, "lost:", start + 2 * CURRENT_RECHECK);
    assert.deepEqual((await current(d.keys)).name, k2.name, "a new host gets the key the running hosts use");
  });

  it("each host finds the other's keys by name, with clock skew of a few seconds", async (t) => {
    const e = 1_000_200;
    const a = await host(t, "skew:", e * L + L - 2); // two seconds before the epoch ends
    const b = await host(t, "skew:", e * L + L + 1); // three seconds ahead: already in the next epoch
    const ka = await current(a.keys);
    const kb = await current(b.keys);
    assert.ok(!ka.name.equals(kb.name), "each host in its own epoch");
    assert.equal(ka.tout, (e + 1) * L);
    assert.equal(kb.tout, (e + 2) * L);
    const bFindsA = await b.keys.tktkey(ka.name, T);
    const aFindsB = await a.keys.tktkey(kb.name, T);
    assert.ok(bFindsA && bFindsA.name.equals(ka.name) && bFindsA.bits.equals(ka.bits) && bFindsA.hmac.equals(ka.hmac));
    assert.ok(aFindsB && aFindsB.name.equals(kb.name) && aFindsB.bits.equals(kb.bits) && aFindsB.hmac.equals(kb.hmac));
    a.clock.advance(3);
    assert.ok((await current(a.keys)).name.equals(kb.name), "A reaches B's epoch and gets B's key");
  });

  it("stores only sealed keys: no key material in Redis, and nothing about keys in the log", async (t) => {
    const e = 1_000_300;
    const a = await host(t, "sealed:", e * L);
    const k: TicketKey = await current(a.keys);
    const dump = (await server.cli("--scan", "--pattern", "sealed:*")).trim();
    assert.equal(dump, `sealed:tktkey:${L}:${e}`);
    // Fetch the raw bytes with a plain client and look for the key material.
    const { Redis } = await import("ioredis");
    const c = new Redis({ host: "127.0.0.1", port: server.port });
    t.after(() => c.disconnect());
    const blob = (await c.getBuffer(dump))!;
    assert.equal(blob.length, 88 + 29, "88-byte key + version, IV, tag");
    for (const part of [k.bits, k.hmac, k.bits.subarray(0, 8), k.hmac.subarray(24)])
      assert.equal(blob.indexOf(part), -1, "key bytes not stored in plain");
    const ttl = await c.ttl(dump);
    assert.ok(ttl > 0, `stored key expires (ttl ${ttl})`);
    for (const l of lines) for (const part of [k.bits, k.hmac, k.name]) assert.ok(!l.includes(part.toString("hex")) && !l.includes(part.toString("base64")));
  });

  it("a host with another key_wrap_file cannot use the stored key: local keys, one warning, nothing overwritten", async (t) => {
    const other = join(dir, "other-wrap");
    keygen(other);
    const e = 1_000_400;
    const a = await host(t, "wrong:", e * L);
    const c = await host(t, "wrong:", e * L, { wrap: other });
    const ka = await current(a.keys);
    const kc1 = await current(c.keys);
    const kc2 = await current(c.keys);
    assert.ok(!kc1.name.equals(ka.name), "C does not get A's key");
    assert.equal(kc2, kc1, "C keeps its local key while it is valid");
    assert.ok(kc1.tout <= e * L + FALLBACK_TOUT_MAX, "a local key is asked for again soon");
    c.clock.advance(FALLBACK_TOUT_MAX);
    await current(c.keys);
    assert.equal(lines.filter((l) => l.startsWith("warning:")).length, 1, lines.join("\n"));
    assert.match(lines[0]!, /cannot open the session ticket key stored in wrong:tktkey:.*is key_wrap_file the same on every host/);
    const again = await a.keys.tktkey(ka.name, T);
    assert.ok(again?.bits.equals(ka.bits), "A's stored key untouched");
    assert.ok((await c.keys.tktkey(kc1.name, T))?.name.equals(kc1.name), "C's local key decrypts on C");
  });

  it("on a three-node Redis Cluster: racing hosts end with one key per epoch, found by name on every host", async (t) => {
    const cluster = await startRedisCluster(3);
    const hosts: { keys: RedisTicketKeys; clock: ReturnType<typeof manualClock> }[] = [];
    t.after(async () => {
      for (const h of hosts) await h.keys.close();
      await cluster.stop();
    });
    const servers = cluster.nodes.map((n) => `127.0.0.1:${n.port}`).join(" ");
    for (let i = 0; i < 3; i++) {
      const table = await writeRedisTable(join(dir, `cluster-host${i}.cf`), {
        servers,
        cluster: true,
        keyPrefix: "cl:",
        keyWrapFile: wrapFile,
        timeout: "5s",
      });
      const clock = manualClock(0);
      const keys = (await openTicketKeySource({ tlsmgr_ticket_key_database: `redis:${table}`, main_cf_path: "", clock })) as RedisTicketKeys;
      hosts.push({ keys, clock });
    }
    const names: Buffer[] = [];
    for (let round = 0; round < 10; round++) {
      for (const h of hosts) h.clock.set((1_000_600 + round) * L);
      const got = await Promise.all(Array.from({ length: 30 }, (_, i) => hosts[i % 3]!.keys.tktkey(undefined, T)));
      assert.equal(new Set(got.map((k) => k!.name.toString("hex"))).size, 1, `round ${round}`);
      names.push(got[0]!.name);
    }
    const fresh = (await openTicketKeySource({
      tlsmgr_ticket_key_database: `redis:${join(dir, "cluster-host0.cf")}`,
      main_cf_path: "",
      clock: manualClock((1_000_600 + 9) * L + 5),
    })) as RedisTicketKeys;
    hosts.push({ keys: fresh, clock: manualClock(0) });
    const found = await fresh.tktkey(names[9]!, T);
    assert.ok(found?.name.equals(names[9]!), "a host that never saw the key finds it by name");
    assert.deepEqual((await fresh.tktkey(names[8]!, T))?.name, names[8], "and the previous one");
    assert.equal(await fresh.tktkey(names[0]!, T), undefined, "long expired");
    let stored = 0;
    for (const n of cluster.nodes) stored += (await n.cli("--scan", "--pattern", "cl:tktkey:*")).trim().split("\n").filter(Boolean).length;
    assert.equal(stored, 10, "one stored key per epoch across the cluster");
  });

  it("refuses to share keys without key_wrap_file, saying why", async () => {
    const table = await writeRedisTable(join(dir, "nowrap.cf"), { servers: `127.0.0.1:${server.port}` });
    await assert.rejects(
      openTicketKeySource({ tlsmgr_ticket_key_database: `redis:${table}`, main_cf_path: "/etc/postfix/main.cf" }),
      (err: unknown) => {
        assert.ok(err instanceof FatalError);
        assert.match(
          err.message,
          /^\/etc\/postfix\/main\.cf: parameter tlsmgr_ticket_key_database: redis:.*nowrap\.cf: sharing session ticket keys needs key_wrap_file in .*nowrap\.cf: keys are never stored in plain in Redis; make the file once with "tlsmgr-postfix keygen/,
        );
        return true;
      },
    );
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^fatal: /);
    const loose = join(dir, "loose-wrap");
    await writeFile(loose, (await import("node:fs")).readFileSync(wrapFile), { mode: 0o644 });
    const t2 = await writeRedisTable(join(dir, "loose.cf"), { servers: `127.0.0.1:${server.port}`, keyWrapFile: loose });
    await assert.rejects(
      openTicketKeySource({ tlsmgr_ticket_key_database: `redis:${t2}`, main_cf_path: "" }),
      /key_wrap_file .*loose-wrap: mode 0644 lets others read or change it/,
    );
  });

  it("while Redis is down: local keys, one warning for the outage, known keys still decrypt; then shared again", async (t) => {
    const e = 1_000_500;
    const start = e * L;
    const a = await host(t, "outage:", start, { timeout: "1s" });
    const b = await host(t, "outage:", start, { timeout: "1s" });
    const shared = await current(a.keys);
    assert.ok((await current(b.keys)).name.equals(shared.name));
    await server.kill();
    a.clock.set(shared.tout); // the shared key is no longer current: A must ask Redis
    const local = await current(a.keys);
    assert.ok(!local.name.equals(shared.name));
    assert.ok(local.tout > shared.tout && local.tout <= shared.tout + FALLBACK_TOUT_MAX);
    const answers = await Promise.all(Array.from({ length: 50 }, () => a.keys.tktkey(undefined, T)));
    assert.ok(answers.every((k) => k?.name.equals(local.name)), "one local key during the outage");
    assert.ok((await a.keys.tktkey(shared.name, T))?.name.equals(shared.name), "known shared key still decrypts");
    assert.ok((await a.keys.tktkey(local.name, T))?.name.equals(local.name), "local key decrypts");
    assert.equal(await a.keys.tktkey(Buffer.concat([shared.name.subarray(0, 4), Buffer.alloc(12, 1)]), T), undefined);
    await current(b.keys); // B's current key is still valid: no Redis request, no warning needed
    const warnings = lines.filter((l) => l.startsWith("warning:"));
    assert.ok(warnings.length >= 1 && warnings.length <= 2, `one warning per host (connection) at most:\n${lines.join("\n")}`);
    assert.ok(warnings.every((l) => /: server unavailable: .*session ticket keys/.test(l)), lines.join("\n"));
    assert.ok(warnings.some((l) => l.includes(a.table)), "A warned");

    await server.start();
    const againLines = () => lines.filter((l) => /server answers again/.test(l)).length;
    for (let i = 0; i < 200 && againLines() < warnings.length; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(againLines(), warnings.length, lines.join("\n"));
    a.clock.set(local.tout);
    b.clock.set(local.tout);
    const ka = await current(a.keys);
    const kb = await current(b.keys);
    assert.ok(ka.name.equals(kb.name), "both hosts share a key again");
    assert.ok(!ka.name.equals(local.name));
    assert.equal(lines.filter((l) => l.startsWith("warning:")).length, warnings.length, "no more warnings");
  });
});
