/**
 * redis-key-names.test.ts - a client cannot make the daemon fetch Redis keys
 * of its choosing through the first bytes of a ticket key name (issue 13,
 * finding 7), against the real daemon on a real redis-server: names of
 * another epoch length, or of epochs outside the window, cost no GET; an
 * unknown name of a slot already fetched costs none either, however often
 * it is sent; genuine names still resolve.
 * See also: src/tickets/redis-keys.ts (#byName), docs/security.md
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startDaemon, writeTestMainCf, tlsmgrTktkey, type RunningDaemon } from "../helpers/daemon.js";
import { redisSkipReason, startRedisServer, writeRedisTable, type RedisServerHandle } from "../helpers/redis-server.js";
import { tempDir } from "../helpers/temp-dir.js";
import { keygen } from "../../src/tools/keygen.js";
import { ticketEpochLength, ticketEpochOf } from "../../src/tickets/redis-keys.js";

const L = ticketEpochLength(3600);

/** gets - GET commands the server has run so far. */
async function gets(server: RedisServerHandle): Promise<number> {
  const m = /cmdstat_get:calls=(\d+)/.exec(await server.cli("INFO", "commandstats"));
  return m ? Number(m[1]) : 0;
}

/** keyName - a 16-byte name claiming epoch length len and epoch e. */
function keyName(len: number, e: number, rest: Buffer = randomBytes(8)): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(len >>> 0, 0);
  b.writeUInt32BE(e >>> 0, 4);
  rest.copy(b, 8);
  return b;
}

describe("ticket key names do not choose Redis keys (finding 7)", { skip: redisSkipReason() ?? false }, () => {
  const dir = tempDir("tlsmgr-keynames-");
  let server: RedisServerHandle;
  let d: RunningDaemon;

  before(async () => {
    server = await startRedisServer();
    const wrap = join(dir, "key-wrap");
    keygen(wrap);
    const table = await writeRedisTable(join(dir, "keys.cf"), { servers: `127.0.0.1:${server.port}`, keyPrefix: "kn:", keyWrapFile: wrap, timeout: "2s" });
    writeTestMainCf(dir, [
      `tlsmgr_ticket_key_database = redis:${table}`,
    ]);
    d = await startDaemon({ configDir: dir, socket: join(dir, "tlsmgr.sock") });
  });

  after(async () => {
    await d?.stop();
    await server?.stop();
  });

  it("fetches nothing for names of another epoch length or outside the window, and once per slot for unknown names", async () => {
    const cur = await tlsmgrTktkey(d.socket);
    assert.equal(cur.status, 0);
    const now = Math.floor(Date.now() / 1000);
    const e = ticketEpochOf(now, L);
    const before = await gets(server);
    // Other epoch lengths (each a slot of its own before), and far epochs.
    for (let i = 0; i < 60; i++) {
      const len = 1 + i * 7;
      if (len === L) continue;
      assert.equal((await tlsmgrTktkey(d.socket, keyName(len, ticketEpochOf(now, len)))).status, -1);
    }
    for (const far of [e - 5, e + 3, 0, 0xffffffff]) assert.equal((await tlsmgrTktkey(d.socket, keyName(L, far))).status, -1);
    assert.equal(await gets(server), before, "no GET for names that cannot be ours");
    // Unknown names of the current and previous slots, sent again and again.
    for (let i = 0; i < 40; i++) {
      assert.equal((await tlsmgrTktkey(d.socket, keyName(L, e))).status, -1);
      assert.equal((await tlsmgrTktkey(d.socket, keyName(L, e - 1, Buffer.alloc(8, i)))).status, -1);
    }
    const spent = (await gets(server)) - before;
    assert.ok(spent <= 2, `${spent} GETs for 80 unknown names of two slots`);
    // The genuine key by its name.
    const byName = await tlsmgrTktkey(d.socket, cur.keybuf.subarray(0, 16));
    assert.equal(byName.status, 0);
    assert.deepEqual(byName.keybuf, cur.keybuf);
  });
});
