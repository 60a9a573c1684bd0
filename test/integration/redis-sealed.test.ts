/**
 * redis-sealed.test.ts - whoever reaches Redis can neither read nor forge
 * session cache entries (issue 13, finding 1), against the real daemon on a
 * real redis-server: values written with redis-cli -x SET (forged, far in
 * the future, copied from another id or cache type) are misses through the
 * daemon and are deleted; no session bytes are in Redis in clear; a redis:
 * cache without key_wrap_file is not used (served unavailable, as a cache
 * that cannot be opened) and the error says how to make one.
 * See also: src/cache/session-seal.ts, src/cache/backends/redis.ts,
 *           docs/security.md (Redis operator)
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { startDaemon, writeTestMainCf, tlsmgrLookup, tlsmgrRequest, tlsmgrStatus, type RunningDaemon } from "../helpers/daemon.js";
import { redisCliPath, redisSkipReason, startRedisServer, writeRedisTable, type RedisServerHandle } from "../helpers/redis-server.js";
import { tempDir } from "../helpers/temp-dir.js";
import { keygen } from "../../src/tools/keygen.js";
import { scacheEncode } from "../../src/cache/scache.js";

const execFileP = promisify(execFile);
const HANG_MS = 5000;

/** cliRaw - redis-cli against server, raw bytes of stdout; input, when given, is its standard input (for -x). */
async function cliRaw(server: RedisServerHandle, args: string[], input?: Buffer): Promise<Buffer> {
  const p = execFileP(redisCliPath(), ["-h", "127.0.0.1", "-p", String(server.port), ...args], { encoding: "buffer" });
  if (input !== undefined) {
    p.child.stdin!.end(input);
  }
  return (await p).stdout;
}

/** get - the raw value under key (redis-cli --raw adds a newline). */
async function getRaw(server: RedisServerHandle, key: string): Promise<Buffer> {
  const out = await cliRaw(server, ["--raw", "GET", key]);
  return out.subarray(0, out.length - 1);
}

/** setRaw - redis-cli -x SET key < value: what an attacker who reaches Redis does. */
async function setRaw(server: RedisServerHandle, key: string, value: Buffer): Promise<void> {
  const out = (await cliRaw(server, ["-x", "SET", key], value)).toString().trim();
  assert.equal(out, "OK");
}

async function exists(server: RedisServerHandle, key: string): Promise<boolean> {
  return (await server.cli("EXISTS", key)).trim() === "1";
}

async function update(d: RunningDaemon, type: string, id: string, session: Buffer): Promise<number> {
  const r = await tlsmgrRequest(d.socket, [["request", "update"], ["cache_type", type], ["cache_id", id], ["session", session.toString("base64")]], HANG_MS);
  return tlsmgrStatus(r);
}

/** eventually - poll fn until true (a delete the daemon sends after answering), at most 5 s. */
async function eventually(what: string, fn: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(what);
}

describe("sealed session entries in Redis (finding 1)", { skip: redisSkipReason() ?? false }, () => {
  const dir = tempDir("tlsmgr-sealed-");
  let server: RedisServerHandle;
  let d: RunningDaemon;
  const now = () => Math.floor(Date.now() / 1000);

  before(async () => {
    server = await startRedisServer();
    const wrap = join(dir, "key-wrap");
    keygen(wrap);
    // One table for both caches: keys mx:smtpd:session:ID and mx:smtp:session:ID (cache/backends/redis.ts).
    const table = await writeRedisTable(join(dir, "mx-redis.cf"), { servers: `127.0.0.1:${server.port}`, keyPrefix: "mx:", keyWrapFile: wrap, timeout: "2s" });
    writeTestMainCf(dir, [
      `smtpd_tls_session_cache_database = redis:${table}`,
      `smtp_tls_session_cache_database = redis:${table}`,
    ]);
    d = await startDaemon({ configDir: dir, socket: join(dir, "tlsmgr.sock") });
  });

  after(async () => {
    await d?.stop();
    await server?.stop();
  });

  it("keeps no session bytes in clear in Redis", async () => {
    const session = Buffer.concat([Buffer.from("MASTER-SECRET-MARKER:"), randomBytes(48)]);
    assert.equal(await update(d, "smtp", "smtp:[mx.example.com]:25", session), 0);
    assert.equal(await update(d, "smtpd", "0123456789ABCDEF", session), 0);
    const keys = (await server.cli("--scan", "--pattern", "mx:*")).trim().split("\n").filter((k) => k !== "");
    assert.ok(keys.length >= 2, `keys: ${keys.join(", ")}`);
    for (const key of keys) {
      const v = await getRaw(server, key);
      assert.ok(v.length >= session.length, `${key}: value of ${v.length} bytes`);
      // Neither the session nor any 16 bytes of it, in any form a reader would try.
      for (let at = 0; at + 16 <= session.length; at += 8) {
        const piece = session.subarray(at, at + 16);
        assert.equal(v.indexOf(piece), -1, `${key} holds session bytes ${at}..${at + 16} in clear`);
        assert.equal(v.indexOf(Buffer.from(piece.toString("hex"))), -1, `${key} holds session bytes in hex`);
      }
      assert.equal(v.indexOf(Buffer.from(session.toString("base64").slice(0, 20))), -1, `${key} holds the session in base64`);
    }
    const back = await tlsmgrLookup(d.socket, "smtp", "smtp:[mx.example.com]:25");
    assert.equal(back.status, 0);
    assert.deepEqual(back.session, session, "the daemon still gets its own entries back");
  });

  it("takes a value planted with redis-cli -x SET for a miss, and deletes it", async () => {
    const id = "smtp:[bank.example]:25";
    const key = `mx:smtp:session:${id}`;
    // What the store held before sealing: the time, then the session; a far-future time kept it for ever.
    for (const stamp of [now(), now() + 100 * 365 * 86400]) {
      await setRaw(server, key, scacheEncode(stamp, Buffer.from("FORGED SESSION: attacker's master secret")));
      const r = await tlsmgrLookup(d.socket, "smtp", id);
      assert.equal(r.status, -1, `forged entry (time ${stamp}) served: ${r.session.toString("latin1")}`);
      assert.equal(r.session.length, 0);
      await eventually(`forged entry ${key} not deleted`, async () => !(await exists(server, key)));
    }
    // Random bytes and a short value: misses too.
    for (const forged of [randomBytes(200), Buffer.from("x")]) {
      await setRaw(server, key, forged);
      assert.equal((await tlsmgrLookup(d.socket, "smtp", id)).status, -1);
    }
  });

  it("takes a genuine value copied to another cache id or cache type for a miss", async () => {
    const session = randomBytes(300);
    const id = "smtp:[good.example]:25";
    assert.equal(await update(d, "smtp", id, session), 0);
    const sealed = await getRaw(server, `mx:smtp:session:${id}`);
    // Another destination of the same cache.
    await setRaw(server, "mx:smtp:session:smtp:[victim.example]:25", sealed);
    assert.equal((await tlsmgrLookup(d.socket, "smtp", "smtp:[victim.example]:25")).status, -1, "copy to another id served");
    // The same id in the smtpd cache (another cache type, same table and key_prefix).
    await setRaw(server, `mx:smtpd:session:${id}`, sealed);
    assert.equal((await tlsmgrLookup(d.socket, "smtpd", id)).status, -1, "copy to another cache type served");
    // A bit changed in the sealed value.
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 20]! ^= 1;
    await setRaw(server, `mx:smtp:session:${id}`, flipped);
    assert.equal((await tlsmgrLookup(d.socket, "smtp", id)).status, -1, "altered value served");
    // The genuine value put back still opens.
    await setRaw(server, `mx:smtp:session:${id}`, sealed);
    const back = await tlsmgrLookup(d.socket, "smtp", id);
    assert.equal(back.status, 0);
    assert.deepEqual(back.session, session);
  });

  it("does not use a redis: session cache without key_wrap_file (served unavailable), naming tlsmgr-postfix keygen; nothing reaches Redis", async () => {
    const home = join(dir, "nowrap");
    mkdirSync(join(home, "data"), { recursive: true, mode: 0o700 });
    const table = await writeRedisTable(join(home, "t.cf"), { servers: `127.0.0.1:${server.port}`, keyPrefix: "nowrap:" });
    writeFileSync(join(home, "main.cf"), [
      `queue_directory = ${home}/queue`,
      `data_directory = ${home}/data`,
      `mail_owner = ${process.getuid?.() === 0 ? "root" : process.env["USER"] ?? "nobody"}`,
      `smtp_tls_session_cache_database = redis:${table}`,
      "",
    ].join("\n"));
    const nowrap = await startDaemon({ configDir: home, socket: join(home, "tlsmgr.sock") });
    try {
      assert.match(nowrap.stderr(), /error: .*key_wrap_file.*tlsmgr-postfix keygen/);
      await update(nowrap, "smtp", "smtp:[x.example]:25", Buffer.from("session in clear"));
      assert.equal((await tlsmgrLookup(nowrap.socket, "smtp", "smtp:[x.example]:25")).status, -1);
      assert.equal((await server.cli("--scan", "--pattern", "nowrap:*")).trim(), "", "nothing stored unsealed");
    } finally {
      await nowrap.stop();
    }
  });
});
