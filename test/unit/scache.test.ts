/**
 * scache.test.ts - the session cache rules over a backend, under a manual clock:
 *                  stored format, expiry at lookup, malformed entries, delete,
 *                  logging, and the expiry sweep (exactness under concurrent
 *                  requests, cursor protection, one at a time, close, timer).
 * See also: src/cache/scache.ts, postfix/src/tls/tls_scache.c
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, it, mock } from "node:test";
import { fileURLToPath } from "node:url";
import type { CacheBackend } from "../../src/cache/backend.js";
import { lmdbOpen } from "../../src/cache/backends/lmdb.js";
import { memoryOpen } from "../../src/cache/backends/memory.js";
import {
  SCACHE_CLOCK_SKEW,
  SCACHE_HEADER_LEN,
  SWEEP_SLICE_MAX,
  SessionCache,
  scacheEncode,
  scacheOpen,
  scacheTime,
  type SessionCacheOptions,
} from "../../src/cache/scache.js";
import "../../src/cache/backends/index.js";
import { manualClock } from "../../src/util/clock.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";
import { tempDir } from "../helpers/temp-dir.js";

const TIMEOUT = 3600;

const lines = captureMsgsEach();
const tmp = tempDir("tlsmgr-scache-");

let serial = 0;
type BackendKind = "memory" | "lmdb";
async function openBackend(kind: BackendKind): Promise<CacheBackend> {
  if (kind === "memory") return memoryOpen(`m${++serial}`, { truncate: true });
  return lmdbOpen(join(tmp, `c${++serial}`), { truncate: true });
}

async function makeCache(kind: BackendKind = "memory", extra: Partial<SessionCacheOptions> = {}) {
  const clock = manualClock();
  const backend = await openBackend(kind);
  const cache = new SessionCache({ label: "smtpd", backend, timeout: TIMEOUT, clock, ...extra });
  return { clock, backend, cache };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("scache stored format", () => {
  it("is an 8-byte big-endian timestamp followed by the session bytes", () => {
    const v = scacheEncode(1_700_000_000, Buffer.from([1, 2, 3]));
    assert.equal(SCACHE_HEADER_LEN, 8);
    assert.deepEqual(v, Buffer.from([0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00, 1, 2, 3]));
    assert.equal(scacheTime(v), 1_700_000_000);
    for (const t of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, -1, -(2 ** 33)]) {
      assert.equal(scacheTime(scacheEncode(t, Buffer.alloc(0))), t, `time ${t}`);
    }
    assert.equal(scacheTime(Buffer.alloc(7)), undefined);
  });

  it("stores the update time and the bytes, raw", async () => {
    const { clock, backend, cache } = await makeCache();
    const session = Buffer.from([0, 255, 10, 13, 0x80]);
    assert.equal(await cache.update("id", session), true);
    const raw = await backend.lookup("id");
    assert.deepEqual(raw, Buffer.concat([scacheEncode(clock.now(), Buffer.alloc(0)), session]));
    assert.deepEqual(await cache.lookup("id"), session);
    await cache.close();
  });

  it("returns an empty session as an empty hit, not a miss", async () => {
    const { cache } = await makeCache();
    await cache.update("empty", Buffer.alloc(0));
    const got = await cache.lookup("empty");
    assert.ok(got !== undefined);
    assert.equal(got.length, 0);
    await cache.close();
  });
});

for (const kind of ["memory", "lmdb"] as const) {
  describe(`scache lookup and delete (${kind})`, () => {
    it("expires an entry older than timeout at lookup, and deletes it", async () => {
      const { clock, backend, cache } = await makeCache(kind);
      await cache.update("old", Buffer.from("s1"));
      clock.advance(TIMEOUT); // timestamp + timeout == now: still valid (Postfix: expired when <)
      assert.deepEqual(await cache.lookup("old"), Buffer.from("s1"));
      clock.advance(1);
      assert.equal(await cache.lookup("old"), undefined);
      assert.equal(await backend.lookup("old"), undefined, "expired entry deleted");
      assert.equal(await cache.delete("old"), false);
      await cache.close();
    });

    it("update restamps an entry", async () => {
      const { clock, cache } = await makeCache(kind);
      await cache.update("k", Buffer.from("a"));
      clock.advance(TIMEOUT);
      await cache.update("k", Buffer.from("b"));
      clock.advance(TIMEOUT);
      assert.deepEqual(await cache.lookup("k"), Buffer.from("b"));
      await cache.close();
    });

    it("treats a malformed entry as a miss, deletes it, and warns without its bytes", async () => {
      const { backend, cache } = await makeCache(kind);
      await backend.update("bad", Buffer.from("SECRET!"));
      assert.equal(await cache.lookup("bad"), undefined);
      assert.equal(await backend.lookup("bad"), undefined);
      assert.deepEqual(lines, ["warning: smtpd TLS cache: truncated entry for bad"]);
      await cache.close();
    });

    it("takes an entry dated beyond the clock skew in the future for malformed: a miss, deleted, one warning", async () => {
      const { clock, backend, cache } = await makeCache(kind);
      await backend.update("near", scacheEncode(clock.now() + SCACHE_CLOCK_SKEW, Buffer.from("ok")));
      assert.deepEqual(await cache.lookup("near"), Buffer.from("ok"), "within the skew: another host's clock");
      for (const ahead of [SCACHE_CLOCK_SKEW + 1, 100 * 365 * 86400]) {
        await backend.update("far", scacheEncode(clock.now() + ahead, Buffer.from("planted")));
        assert.equal(await cache.lookup("far"), undefined, `${ahead}s ahead`);
        assert.equal(await backend.lookup("far"), undefined, "deleted");
      }
      assert.equal(lines.length, 1, lines.join("\n"));
      assert.match(lines[0]!, /^warning: smtpd TLS cache: entry for far is dated 61s in the future: deleted/);
      // The sweep deletes them too.
      await backend.update("far2", scacheEncode(clock.now() + 3600, Buffer.from("planted")));
      cache.startSweep();
      await cache.sweepDone();
      assert.equal(await backend.lookup("far2"), undefined, "swept");
      assert.deepEqual(await cache.lookup("near"), Buffer.from("ok"));
      await cache.close();
    });

    it("delete answers true when removed, false when absent", async () => {
      const { backend, cache } = await makeCache(kind);
      await cache.update("d", Buffer.from("x"));
      assert.equal(await cache.delete("d"), true);
      assert.equal(await backend.lookup("d"), undefined);
      assert.equal(await cache.delete("d"), false);
      assert.equal(await cache.lookup("d"), undefined);
      await cache.close();
    });
  });
}

describe("scache after close", () => {
  it("misses and refuses without touching the closed backend", async () => {
    const { cache } = await makeCache("lmdb");
    await cache.update("a", Buffer.from("1"));
    await cache.close();
    assert.equal(await cache.lookup("a"), undefined);
    assert.equal(await cache.update("a", Buffer.from("2")), false);
    assert.equal(await cache.delete("a"), false);
    assert.deepEqual(lines, []);
  });
});

describe("scache logging", () => {
  it("logs cache operations like tls_scache when verbose, never session bytes", async () => {
    const marker = Buffer.from("SESSION-BYTES-MARKER");
    const clock = manualClock(1_700_000_000);
    const cache = await scacheOpen("memory:smtpd_scache", "smtpd", true, TIMEOUT, { clock });
    await cache.update("host&[a]:25", marker);
    await cache.lookup("host&[a]:25");
    await cache.lookup("nope");
    await cache.delete("host&[a]:25");
    await cache.close();
    assert.deepEqual(lines, [
      "info: open smtpd TLS cache memory:smtpd_scache",
      "info: put smtpd session id=host&[a]:25 [data 20 bytes]",
      "info: write smtpd TLS cache entry host&[a]:25: time=1700000000 [data 20 bytes]",
      "info: lookup smtpd session id=host&[a]:25",
      "info: read smtpd TLS cache entry host&[a]:25: time=1700000000 [data 20 bytes]",
      "info: lookup smtpd session id=nope",
      "info: delete smtpd session id=host&[a]:25",
      "info: close smtpd TLS cache memory:smtpd_scache",
    ]);
    for (const l of lines) {
      assert.ok(!l.includes(marker.toString()) && !l.includes(marker.toString("hex")) && !l.includes(marker.toString("base64")));
    }
  });

  it("logs nothing when not verbose", async () => {
    const cache = await scacheOpen("memory:x", "smtp", false, TIMEOUT, { clock: manualClock() });
    await cache.update("a", Buffer.from("b"));
    await cache.lookup("a");
    await cache.delete("a");
    cache.startSweep();
    await cache.sweepDone();
    await cache.close();
    assert.deepEqual(lines, []);
  });

  it("makes ids printable and bounded in log lines", async () => {
    const cache = await scacheOpen("memory:x", "lmtp", true, TIMEOUT, { clock: manualClock() });
    await cache.lookup("a\nb\x00c" + "z".repeat(1000));
    await cache.close();
    const line = lines.find((l) => l.includes("lookup lmtp"))!;
    assert.ok(line.startsWith("info: lookup lmtp session id=a?b?c"));
    assert.ok(line.length < 400);
  });

  it("is fatal (as Postfix) for an unknown map type or a bad form", async () => {
    await assert.rejects(scacheOpen("foo:/x", "smtpd", false, TIMEOUT), { code: "TLSMGR_FATAL" });
    assert.deepEqual(lines, ["fatal: unsupported dictionary type: foo"]);
    lines.length = 0;
    await assert.rejects(scacheOpen("nocolon", "smtpd", false, TIMEOUT), { code: "TLSMGR_FATAL" });
    assert.deepEqual(lines, ['fatal: open dictionary: expecting "type:name" form instead of "nocolon"']);
    lines.length = 0;
    await assert.rejects(scacheOpen(`lmdb:${tmp}/no/such/dir/x`, "smtpd", false, TIMEOUT), { code: "TLSMGR_FATAL" });
    assert.deepEqual(lines, [`fatal: cannot open lmdb:${tmp}/no/such/dir/x: No such file or directory`]);
  });
});

for (const kind of ["memory", "lmdb"] as const) {
  describe(`scache sweep (${kind})`, () => {
    it("deletes exactly the expired and malformed entries", async () => {
      const { clock, backend, cache } = await makeCache(kind);
      for (let i = 0; i < 3000; i++) await cache.update(`old${i}`, Buffer.from(`o${i}`));
      clock.advance(TIMEOUT / 2);
      for (let i = 0; i < 3000; i++) await cache.update(`new${i}`, Buffer.from(`n${i}`));
      for (let i = 0; i < 10; i++) await backend.update(`bad${i}`, Buffer.alloc(i % 8));
      clock.advance(TIMEOUT / 2 + 1); // old* are now timeout+1 old, new* timeout/2+1
      assert.equal(cache.startSweep(), true);
      await cache.sweepDone();
      assert.equal(cache.sweeping, false);
      const left = new Set<string>();
      for await (const [k] of backend.sequence()) left.add(k);
      assert.equal(left.size, 3000);
      for (let i = 0; i < 3000; i++) assert.ok(left.has(`new${i}`));
      assert.equal(cache.lastSweep?.seen, 6010);
      assert.equal(cache.lastSweep?.deleted, 3010);
      assert.equal(cache.lastSweep?.completed, true);
      assert.equal(lines.filter((l) => l.startsWith("warning: smtpd TLS cache: truncated entry for bad")).length, 10);
      await cache.close();
    });

    it("stays exact while lookups, updates and deletes run during the sweep", async () => {
      const { clock, backend, cache } = await makeCache(kind);
      const n = 8000; // many slices: the sweep spans many event-loop turns
      for (let i = 0; i < n; i++) await cache.update(`e${i}`, Buffer.from(`v${i}`));
      clock.advance(TIMEOUT / 2);
      for (let i = 0; i < n; i += 2) await cache.update(`e${i}`, Buffer.from(`v${i}`)); // even ones fresher
      clock.advance(TIMEOUT / 2 + 1); // odd ones expired, even ones valid

      const expectPresent = new Map<string, Buffer>();
      const expectAbsent = new Set<string>();
      for (let i = 0; i < n; i++) {
        if (i % 2 === 0) expectPresent.set(`e${i}`, Buffer.from(`v${i}`));
        else expectAbsent.add(`e${i}`);
      }

      assert.equal(cache.startSweep(), true);
      let turns = 0;
      let rng = 12345;
      const next = (m: number) => {
        rng = (rng * 1103515245 + 12345) & 0x7fffffff;
        return rng % m;
      };
      while (cache.sweeping) {
        turns++;
        for (let j = 0; j < 20; j++) {
          const i = next(n);
          const id = `e${i}`;
          switch (next(4)) {
            case 0: {
              // refresh: must survive even if expired
              const v = Buffer.from(`r${i}-${turns}`);
              assert.equal(await cache.update(id, v), true);
              expectAbsent.delete(id);
              expectPresent.set(id, v);
              break;
            }
            case 1: {
              // client delete: removed, unless the sweep stands on it
              const onCursor = cache.sweepCursor === id;
              const had = expectPresent.has(id);
              const r = await cache.delete(id);
              if (onCursor) {
                assert.equal(r, true);
              } else {
                if (had) assert.equal(r, true, `delete of present ${id}`);
                expectPresent.delete(id);
                expectAbsent.add(id);
              }
              break;
            }
            case 2: {
              // lookup: hit exactly when expected present
              const got = await cache.lookup(id);
              if (expectPresent.has(id)) assert.deepEqual(got, expectPresent.get(id), `lookup ${id}`);
              else assert.equal(got, undefined, `lookup ${id}`);
              break;
            }
            default: {
              const nid = `fresh${turns}-${j}`;
              await cache.update(nid, Buffer.from(nid));
              expectPresent.set(nid, Buffer.from(nid));
            }
          }
        }
        await turn();
      }
      await cache.sweepDone();
      assert.ok(turns > 1, "the sweep ran across several event-loop turns");
      assert.ok((cache.lastSweep?.seen ?? 0) >= n / 2);

      const left = new Map<string, Buffer>();
      for await (const [k, v] of backend.sequence()) left.set(k, v.subarray(SCACHE_HEADER_LEN));
      for (const [id, v] of expectPresent) assert.deepEqual(left.get(id), v, `present: ${id}`);
      for (const id of expectAbsent) assert.equal(left.has(id), false, `absent: ${id}`);
      assert.equal(left.size, expectPresent.size);
      await cache.close();
    });

    it("protects the entry under the cursor from client deletes, and keeps an expired one a client refreshed", async () => {
      const { clock, backend, cache } = await makeCache(kind);
      await cache.update("valid-a", Buffer.from("a"));
      await cache.update("expired-b", Buffer.from("b"));
      await cache.update("expired-c", Buffer.from("c"));
      clock.advance(TIMEOUT + 1);
      await cache.update("valid-a", Buffer.from("a2"));
      const results = new Map<string, unknown>();
      cache.onSweepEntry = (id) => {
        assert.equal(cache.sweepCursor, id);
        if (id === "valid-a") results.set(id, cache.delete(id)); // refused: stays
        if (id === "expired-b") results.set(id, cache.update(id, Buffer.from("b2"))); // refreshed: stays
        if (id === "expired-c") results.set(id, cache.lookup(id)); // miss; the sweep deletes it
      };
      cache.startSweep();
      await cache.sweepDone();
      assert.equal(await results.get("valid-a"), true);
      assert.equal(await results.get("expired-b"), true);
      assert.equal(await results.get("expired-c"), undefined);
      assert.deepEqual(await cache.lookup("valid-a"), Buffer.from("a2"));
      assert.deepEqual(await cache.lookup("expired-b"), Buffer.from("b2"));
      assert.equal(await backend.lookup("expired-c"), undefined);
      assert.equal(cache.sweepCursor, undefined);
      // Once the sweep is over, the same delete works.
      assert.equal(await cache.delete("valid-a"), true);
      assert.equal(await cache.lookup("valid-a"), undefined);
      await cache.close();
    });

    it("does not delete behind an entry updated between its re-read and its delete", async () => {
      const clock = manualClock();
      const inner = await openBackend(kind);
      let cache: SessionCache | undefined;
      let fired = false;
      // A backend whose lookup lets a client update slip in right after the read.
      const racy: CacheBackend = {
        type: inner.type,
        name: inner.name,
        lookup: async (k) => {
          const v = await inner.lookup(k);
          if (k === "racy" && cache?.sweepCursor === "racy" && !fired) {
            fired = true;
            void cache.update("racy", Buffer.from("fresh"));
          }
          return v;
        },
        update: (k, v) => inner.update(k, v),
        delete: (k) => inner.delete(k),
        sequence: () => inner.sequence(),
        close: () => inner.close(),
      };
      cache = new SessionCache({ label: "smtpd", backend: racy, timeout: TIMEOUT, clock });
      await cache.update("racy", Buffer.from("stale"));
      clock.advance(TIMEOUT + 1);
      cache.startSweep();
      await cache.sweepDone();
      assert.equal(fired, true);
      assert.deepEqual(await cache.lookup("racy"), Buffer.from("fresh"));
      assert.equal(cache.lastSweep?.deleted, 0);
      await cache.close();
    });

    it("re-reads an expired entry before deleting it (the walk may hold an old copy)", async () => {
      const clock = manualClock();
      const inner = await openBackend(kind);
      // A legal backend whose walk reads everything first (values may be old by the time they are met).
      const snapshotting: CacheBackend = {
        type: inner.type,
        name: inner.name,
        lookup: (k) => inner.lookup(k),
        update: (k, v) => inner.update(k, v),
        delete: (k) => inner.delete(k),
        async *sequence() {
          const all: [string, Buffer][] = [];
          for await (const e of inner.sequence()) all.push(e);
          yield* all;
        },
        close: () => inner.close(),
      };
      const cache = new SessionCache({ label: "smtpd", backend: snapshotting, timeout: TIMEOUT, clock });
      const id = (i: number) => `k${String(i).padStart(3, "0")}`;
      for (let i = 0; i < 600; i++) await cache.update(id(i), Buffer.from("old"));
      clock.advance(TIMEOUT + 1);
      let first = true;
      cache.onSweepEntry = () => {
        // While the walk stands on the first entry, refresh one further on.
        if (first) void cache.update(id(100), Buffer.from("refreshed"));
        first = false;
      };
      cache.startSweep();
      await cache.sweepDone();
      assert.deepEqual(await cache.lookup(id(100)), Buffer.from("refreshed"));
      assert.equal(cache.lastSweep?.deleted, 599);
      let left = 0;
      for await (const _ of inner.sequence()) left++;
      assert.equal(left, 1);
      await cache.close();
    });

    it("walks at most SWEEP_SLICE_MAX entries per event-loop turn", async () => {
      let met = 0;
      const { cache } = await makeCache(kind, { onSweepEntry: () => met++ });
      for (let i = 0; i < SWEEP_SLICE_MAX * 3; i++) await cache.update(`k${i}`, Buffer.from("v"));
      cache.startSweep();
      let before = 0;
      let turns = 0;
      while (cache.sweeping) {
        await turn();
        turns++;
        assert.ok(met - before <= SWEEP_SLICE_MAX, `entries in one turn: ${met - before}`);
        before = met;
      }
      assert.ok(turns >= 3);
      assert.equal(met, SWEEP_SLICE_MAX * 3);
      await cache.close();
    });

    it("runs one sweep at a time", async () => {
      const { cache } = await makeCache(kind);
      for (let i = 0; i < SWEEP_SLICE_MAX * 3; i++) await cache.update(`k${i}`, Buffer.from("v"));
      await cache.sweepDone(); // none running: resolves
      assert.equal(cache.startSweep(), true);
      assert.equal(cache.sweeping, true);
      assert.equal(cache.startSweep(), false);
      await turn();
      assert.equal(cache.sweeping, true, "a sweep of 3 slices is still running after one turn");
      assert.equal(cache.startSweep(), false);
      await cache.sweepDone();
      assert.equal(cache.lastSweep?.seen, SWEEP_SLICE_MAX * 3);
      assert.equal(cache.startSweep(), true);
      await cache.sweepDone();
      await cache.close();
    });

    it("stops a running sweep at close", async () => {
      const { cache } = await makeCache(kind);
      for (let i = 0; i < SWEEP_SLICE_MAX * 4; i++) await cache.update(`k${i}`, Buffer.from("v"));
      cache.startSweep();
      await turn();
      await cache.close();
      assert.equal(cache.sweeping, false);
      assert.equal(cache.lastSweep?.completed, false);
      assert.ok(cache.lastSweep!.seen < SWEEP_SLICE_MAX * 4);
      assert.equal(cache.startSweep(), false);
    });
  });
}

describe("scache sweep hook and statistics", () => {
  it("shows every entry to onSweepEntry, with its stored value", async () => {
    const met = new Map<string, Buffer>();
    const { clock, cache } = await makeCache("memory", { onSweepEntry: (id, v) => met.set(id, Buffer.from(v)) });
    for (let i = 0; i < 100; i++) await cache.update(`h${i}`, Buffer.from(`s${i}`));
    cache.startSweep();
    await cache.sweepDone();
    assert.equal(met.size, 100);
    assert.deepEqual(met.get("h7"), scacheEncode(clock.now(), Buffer.from("s7")));
    await cache.close();
  });

  it("keeps sweeping when the hook throws", async () => {
    const { cache } = await makeCache("memory", {
      onSweepEntry: () => {
        throw new Error("broken hook");
      },
    });
    for (let i = 0; i < 10; i++) await cache.update(`h${i}`, Buffer.from("s"));
    cache.startSweep();
    await cache.sweepDone();
    assert.equal(cache.lastSweep?.seen, 10);
    await cache.close();
  });

  it("logs the start (timer) and end of a sweep when verbose", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const { clock, cache } = await makeCache("memory", { verbose: true });
      await cache.update("a", Buffer.from("1"));
      clock.advance(TIMEOUT + 1);
      lines.length = 0;
      cache.startSweepTimer();
      await cache.sweepDone();
      assert.equal(lines[0], "info: tlsmgr_cache_run_event: start TLS smtpd session cache cleanup");
      assert.ok(lines.includes("info: delete smtpd session id=a"));
      const end = lines.at(-1)!;
      assert.match(end, /^info: tlsmgr_cache_run_event: end TLS smtpd session cache cleanup: 1 entries, 1 removed, [\d.]+ ms$/);
      await cache.close();
    } finally {
      mock.timers.reset();
    }
  });
});

describe("scache sweep timer", () => {
  it("sweeps at once, then every timeout seconds, skipping a tick while a sweep runs", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      let met = 0;
      const { clock, cache } = await makeCache("memory", { onSweepEntry: () => met++ });
      await cache.update("a", Buffer.from("1"));
      cache.startSweepTimer();
      assert.equal(cache.sweeping, true, "first sweep starts at once");
      await cache.sweepDone();
      assert.equal(met, 1);
      mock.timers.tick(TIMEOUT * 1000 - 1);
      assert.equal(cache.sweeping, false);
      mock.timers.tick(1);
      assert.equal(cache.sweeping, true, "second sweep after timeout seconds");
      await cache.sweepDone();
      assert.equal(met, 2);
      cache.startSweepTimer(); // already running: no second timer
      mock.timers.tick(TIMEOUT * 1000);
      await cache.sweepDone();
      assert.equal(met, 3);
      // The entry expires; the next tick's sweep removes it.
      clock.advance(TIMEOUT + 1);
      mock.timers.tick(TIMEOUT * 1000);
      await cache.sweepDone();
      assert.equal(cache.lastSweep?.deleted, 1);
      await cache.close();
      mock.timers.tick(TIMEOUT * 1000 * 3);
      assert.equal(cache.sweeping, false, "no sweep after close");
    } finally {
      mock.timers.reset();
    }
  });

  it("handles a timeout longer than setTimeout() can wait (100 days)", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      let met = 0;
      const clock = manualClock();
      const backend = await memoryOpen("long", { truncate: true });
      const cache = new SessionCache({ label: "smtp", backend, timeout: 8_640_000, clock, onSweepEntry: () => met++ });
      await cache.update("a", Buffer.from("1"));
      cache.startSweepTimer();
      await cache.sweepDone();
      assert.equal(met, 1);
      // Tick to each intermediate wake-up exactly (the mock re-arms from the tick's end).
      const MAX = 2 ** 31 - 1;
      for (let i = 0; i < 4; i++) {
        mock.timers.tick(MAX);
        assert.equal(cache.sweeping, false, `no sweep after ${i + 1} x 24.8 days`);
      }
      mock.timers.tick(8_640_000 * 1000 - 4 * MAX - 1);
      assert.equal(cache.sweeping, false, "no sweep 1 ms before 100 days");
      mock.timers.tick(1);
      assert.equal(cache.sweeping, true, "after 100 days");
      await cache.sweepDone();
      await cache.close();
    } finally {
      mock.timers.reset();
    }
  });

  it("runs no periodic sweep over a backend that expires entries by itself", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const inner = await memoryOpen("ttl", { truncate: true });
      const selfExpiring: CacheBackend = {
        type: "ttl",
        name: "x",
        expiresByItself: true,
        lookup: (k) => inner.lookup(k),
        update: (k, v) => inner.update(k, v),
        delete: (k) => inner.delete(k),
        sequence: () => inner.sequence(),
        close: () => inner.close(),
      };
      const cache = new SessionCache({ label: "smtpd", backend: selfExpiring, timeout: TIMEOUT, clock: manualClock() });
      await cache.update("a", Buffer.from("1"));
      cache.startSweepTimer();
      assert.equal(cache.sweeping, false);
      mock.timers.tick(TIMEOUT * 1000 * 2);
      assert.equal(cache.sweeping, false);
      assert.equal(cache.lastSweep === undefined, true, "no sweep ran");
      assert.equal(cache.startSweep(), true, "an explicit sweep still runs");
      await cache.sweepDone();
      assert.equal(cache.lastSweep?.seen, 1);
      await cache.close();
    } finally {
      mock.timers.reset();
    }
  });

  it("does not keep the process alive (unref'd timer)", async () => {
    const scacheJs = fileURLToPath(new URL("../../src/cache/scache.js", import.meta.url));
    const memoryJs = fileURLToPath(new URL("../../src/cache/backends/memory.js", import.meta.url));
    const script = `
      const { SessionCache } = await import(${JSON.stringify(scacheJs)});
      const { memoryOpen } = await import(${JSON.stringify(memoryJs)});
      const backend = await memoryOpen("x", { truncate: true });
      const cache = new SessionCache({ label: "smtpd", backend, timeout: 120 });
      await cache.update("a", Buffer.from("b"));
      cache.startSweepTimer();
      await cache.sweepDone();
      console.log("swept");
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    clearTimeout(killer);
    assert.equal(code, 0, "the process exited by itself");
    assert.equal(out.trim(), "swept");
  });
});
