/**
 * cache-bound.test.ts - a session cache's counters and its bound, over the
 *                       memory and LMDB backends, under a manual clock:
 *                       lookups by result, updates, deletes, the exact entry
 *                       and byte account (replacements, deletes, expiry at
 *                       lookup, the sweep), and a cache filled past its entry
 *                       and byte limits: the bound holds, the oldest entries
 *                       are the ones gone, an update makes an entry young
 *                       again, one warning.
 * See also: src/cache/cache-bound.ts, src/cache/scache.ts, src/stats/counters.ts
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { CacheBackend } from "../../src/cache/backend.js";
import { lmdbOpen, type LmdbBackend } from "../../src/cache/backends/lmdb.js";
import { memoryOpen } from "../../src/cache/backends/memory.js";
import { entrySize } from "../../src/cache/cache-bound.js";
import { SCACHE_HEADER_LEN, SessionCache, type SessionCacheOptions } from "../../src/cache/scache.js";
import { manualClock } from "../../src/util/clock.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";
import { tempDir } from "../helpers/temp-dir.js";

const TIMEOUT = 3600;
const lines = captureMsgsEach();
const tmp = tempDir("tlsmgr-bound-");

let serial = 0;
type Kind = "memory" | "lmdb";
async function openBackend(kind: Kind): Promise<CacheBackend> {
  if (kind === "memory") return memoryOpen(`m${++serial}`, { truncate: true });
  return lmdbOpen(join(tmp, `c${++serial}`), { truncate: true });
}

async function makeCache(kind: Kind, extra: Partial<SessionCacheOptions> = {}) {
  const clock = manualClock();
  const backend = await openBackend(kind);
  const cache = new SessionCache({ label: "smtp", backend, timeout: TIMEOUT, clock, ...extra });
  return { clock, backend, cache };
}

/** stored - what an entry of this id and session counts for: id bytes, the time stamp, the session. */
const stored = (id: string, session: Buffer) => Buffer.byteLength(id) + SCACHE_HEADER_LEN + session.length;
const sess = (n: number, fill = 1) => Buffer.alloc(n, fill);

for (const kind of ["memory", "lmdb"] as const) {
  describe(`${kind}: counters and the account without limits`, () => {
    it("counts lookups by result, updates and deletes, and holds the exact entries and bytes", async () => {
      const { cache, clock } = await makeCache(kind);
      const c = cache.counters;
      assert.equal(cache.account?.bounded, false);
      assert.deepEqual([c.entries, c.bytes], [0, 0]);

      assert.equal(cache.lookup("a"), undefined);
      assert.equal(cache.update("a", sess(100)), true);
      assert.equal(cache.update("b", sess(200)), true);
      assert.equal(cache.update("é-ü", sess(10)), true, "ids count by their UTF-8 bytes");
      assert.deepEqual([c.entries, c.bytes], [3, stored("a", sess(100)) + stored("b", sess(200)) + stored("é-ü", sess(10))]);
      assert.equal(entrySize("é-ü", 18), 5 + 18);

      // a replacement changes the bytes, not the entries
      assert.equal(cache.update("a", sess(50)), true);
      assert.deepEqual([c.entries, c.bytes], [3, stored("a", sess(50)) + stored("b", sess(200)) + stored("é-ü", sess(10))]);
      assert.equal((cache.lookup("a") as Buffer).length, 50);
      assert.equal(cache.lookup("b") !== undefined, true);

      assert.equal(cache.delete("b"), true);
      assert.equal(cache.delete("b"), false, "nothing left to delete");
      assert.deepEqual([c.entries, c.bytes], [2, stored("a", sess(50)) + stored("é-ü", sess(10))]);

      // expired at lookup: a miss counted as expired, the entry removed from the account
      clock.advance(TIMEOUT + 1);
      assert.equal(cache.lookup("a"), undefined);
      assert.deepEqual([c.entries, c.bytes], [1, stored("é-ü", sess(10))]);
      assert.deepEqual([c.hit, c.miss, c.expired, c.error], [2, 1, 1, 0]);
      assert.deepEqual([c.updates, c.deletes, c.evictions], [4, 2, 0]);
      await cache.close();
    });

    it("counts what a sweep looked at and removed, and its time", async () => {
      const { cache, clock } = await makeCache(kind);
      const c = cache.counters;
      for (let i = 0; i < 10; i++) cache.update(`old${i}`, sess(64));
      clock.advance(TIMEOUT + 1);
      for (let i = 0; i < 5; i++) cache.update(`new${i}`, sess(64));
      assert.equal(c.entries, 15);
      assert.equal(cache.startSweep(), true);
      await cache.sweepDone();
      assert.deepEqual([c.sweepChecked, c.swept, c.sweepSeconds.count], [15, 10, 1]);
      assert.ok(c.sweepSeconds.sum > 0 && c.sweepSeconds.sum === cache.lastSweep!.ms / 1000);
      assert.deepEqual([c.entries, c.bytes], [5, 5 * stored("new0", sess(64))]);
      assert.deepEqual([c.hit, c.miss, c.expired], [0, 0, 0], "the sweep is no lookup");
      await cache.close();
    });
  });

  describe(`${kind}: a cache filled past its limits`, () => {
    it("entry limit: holds the limit, the oldest go first, an update makes an entry young again, one warning", async () => {
      const limit = 5;
      const { cache, backend } = await makeCache(kind, {
        limits: { entries: limit, bytes: 0 },
        limitParams: { entries: "tlsmgr_smtp_cache_entry_limit", bytes: "tlsmgr_smtp_cache_byte_limit" },
      });
      const c = cache.counters;
      for (let i = 0; i < limit; i++) cache.update(`id${i}`, sess(100, i));
      assert.equal(c.evictions, 0);
      assert.equal(lines.filter((l) => l.startsWith("warning:")).length, 0);
      // id0 becomes the youngest: id1 is now the oldest
      cache.update("id0", sess(100, 9));
      assert.deepEqual(cache.account!.oldestIds(limit), ["id1", "id2", "id3", "id4", "id0"]);

      for (let i = limit; i < 12; i++) cache.update(`id${i}`, sess(100, i));
      assert.equal(c.entries, limit);
      assert.equal(c.evictions, 12 - limit);
      assert.equal(c.bytes, 3 * stored("id7", sess(100)) + 2 * stored("id10", sess(100)));
      // evicted, oldest first: id1..id4, id0, then id5, id6; kept: the five stored last
      for (const gone of ["id1", "id2", "id3", "id4", "id0", "id5", "id6"]) assert.equal(cache.lookup(gone), undefined, `${gone} evicted`);
      for (const kept of ["id7", "id8", "id9", "id10", "id11"]) assert.ok(cache.lookup(kept) !== undefined, `${kept} kept`);
      if (kind === "lmdb") (backend as LmdbBackend).flush();
      let held = 0;
      for (const [,] of backend.sequence() as Iterable<[string, Buffer]>) held++;
      assert.equal(held, limit, "the store holds what the account says");

      const warnings = lines.filter((l) => l.startsWith("warning:"));
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0]!, /^warning: smtp TLS cache (memory|lmdb):\S+: limit of 5 entries \(tlsmgr_smtp_cache_entry_limit\) reached: removing the oldest entries to make room$/);
      await cache.close();
    });

    it("byte limit: the bytes stay within the limit; an entry larger than the limit is not kept", async () => {
      const one = stored("id00", sess(1000));
      const limit = 3 * one + 10;
      const { cache } = await makeCache(kind, { limits: { entries: 0, bytes: limit } });
      const c = cache.counters;
      for (let i = 0; i < 10; i++) {
        cache.update(`id${String(i).padStart(2, "0")}`, sess(1000));
        assert.ok(c.bytes <= limit, `after update ${i}: ${c.bytes} > ${limit}`);
      }
      assert.deepEqual([c.entries, c.bytes, c.evictions], [3, 3 * one, 7]);
      assert.deepEqual(cache.account!.oldestIds(10), ["id07", "id08", "id09"]);

      cache.update("huge", sess(limit));
      assert.deepEqual([c.entries, c.bytes], [0, 0], "everything made room, the huge entry too");
      assert.equal(cache.lookup("huge"), undefined);
      assert.equal(c.evictions, 7 + 4);
      assert.match(lines.filter((l) => l.startsWith("warning:")).join("\n"), /limit of \d+ bytes reached/);
      await cache.close();
    });

    it("the warning comes again only once a sweep has found the cache well within its limits", async () => {
      const { cache, clock } = await makeCache(kind, { limits: { entries: 10, bytes: 0 } });
      const warnings = () => lines.filter((l) => l.startsWith("warning:")).length;
      for (let i = 0; i < 12; i++) cache.update(`a${i}`, sess(10));
      assert.equal(warnings(), 1);
      for (let i = 0; i < 12; i++) cache.update(`b${i}`, sess(10));
      assert.equal(warnings(), 1, "still one");
      cache.startSweep();
      await cache.sweepDone(); // nothing expired: still full, not re-armed
      for (let i = 0; i < 3; i++) cache.update(`c${i}`, sess(10));
      assert.equal(warnings(), 1);
      clock.advance(TIMEOUT + 1);
      cache.update("fresh", sess(10));
      cache.startSweep();
      await cache.sweepDone(); // removes the expired ones: 1 entry left, re-armed
      assert.equal(cache.counters.entries, 1);
      for (let i = 0; i < 11; i++) cache.update(`d${i}`, sess(10));
      assert.equal(warnings(), 2);
      await cache.close();
    });
  });
}

describe("a store that expires entries itself", () => {
  it("keeps no account, and limits on it are a warning", async () => {
    const selfExpiring: CacheBackend = {
      type: "redis", name: "/etc/postfix/t.cf", expiresByItself: true,
      lookup: async () => undefined, update: async () => undefined, delete: async () => false,
      sequence: async function* () {}, close: async () => undefined,
    };
    const cache = new SessionCache({
      label: "smtpd", backend: selfExpiring, timeout: TIMEOUT, limits: { entries: 10, bytes: 0 },
      limitParams: { entries: "tlsmgr_smtpd_cache_entry_limit", bytes: "tlsmgr_smtpd_cache_byte_limit" },
    });
    assert.equal(cache.account, undefined);
    assert.deepEqual([cache.counters.entries, cache.counters.bytes], [-1, -1]);
    assert.equal(await cache.lookup("x"), undefined);
    assert.equal(cache.counters.miss, 1);
    assert.deepEqual(lines, [
      "warning: smtpd TLS cache redis:/etc/postfix/t.cf: tlsmgr_smtpd_cache_entry_limit and tlsmgr_smtpd_cache_byte_limit" +
        " do not apply to a store that expires entries itself: bound it with the server's own memory policy",
    ]);
  });

  it("a lookup the store fails is counted as an error", async () => {
    const failing: CacheBackend = {
      type: "redis", name: "t", expiresByItself: true,
      lookup: async () => { throw new Error("down"); }, update: async () => undefined, delete: async () => false,
      sequence: async function* () {}, close: async () => undefined,
    };
    const cache = new SessionCache({ label: "smtp", backend: failing, timeout: TIMEOUT });
    assert.equal(await cache.lookup("x"), undefined);
    assert.deepEqual([cache.counters.hit, cache.counters.miss, cache.counters.error], [0, 0, 1]);
  });
});
