/**
 * backend-suite.ts - the conformance suite every session cache backend passes.
 * Owns: what CacheBackend promises (cache/backend.ts): missing keys, binary
 *       round trips (empty, 2 MiB), overwrite, delete results, the walk and
 *       deletes during it, truncate at open, persistence, odd keys.
 * Not here: timestamps and expiry (test/unit/scache.test.ts).
 * See also: test/conformance/memory.test.ts, lmdb.test.ts; cache/backend.ts
 *
 * backendConformance(name, openFn, caps): openFn(storeName, opts) opens the
 * store called storeName (each test uses its own name; the same name must
 * reach the same store when caps.persistent).
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BackendOpenOptions, CacheBackend } from "../../src/cache/backend.js";

export interface BackendCapabilities {
  /** Entries survive close() and a reopen without truncate. */
  persistent: boolean;
  /**
   * One store shared by many hosts (Redis): opening with truncate must NOT
   * empty it, or one host's restart would wipe every host's sessions.
   */
  shared?: boolean;
}

export type BackendOpenFn = (storeName: string, opts: BackendOpenOptions) => Promise<CacheBackend>;

/** allBytes - every byte value, in an odd order. */
function allBytes(): Buffer {
  const b = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) b[i] = (i * 167 + 13) & 0xff;
  return b;
}

/** collect - the whole walk as [id, value] pairs. */
async function collect(b: CacheBackend): Promise<[string, Buffer][]> {
  const out: [string, Buffer][] = [];
  for await (const e of b.sequence()) out.push(e);
  return out;
}

/** ODD_KEYS - ids a hostile or unusual client may send. */
export const ODD_KEYS = [
  "smtp&[mail.example.com]:25&192.0.2.1&&0123456789ABCDEF",
  "ключ-сеанса-😀-日本語",
  "a&b&c",
  "[",
  "]",
  "[x]:25",
  "%s%n\\x00",
  "tab\there newline\nthere",
  "x".repeat(1000),
  "é".repeat(1000), // 2000 UTF-8 bytes
  "😀".repeat(1000), // 4000 UTF-8 bytes
  "y".repeat(5000),
  "",
];

export function backendConformance(name: string, openFn: BackendOpenFn, caps: BackendCapabilities): void {
  let serial = 0;
  /** fresh - a new, empty store with a name of its own. */
  const fresh = async (): Promise<{ b: CacheBackend; store: string }> => {
    const store = `store${++serial}`;
    return { b: await openFn(store, { truncate: true }), store };
  };

  describe(`backend conformance: ${name}`, () => {
    it("misses a key that was never stored", async () => {
      const { b } = await fresh();
      try {
        assert.equal(await b.lookup("nothing-here"), undefined);
        assert.equal(await b.delete("nothing-here"), false);
        assert.deepEqual(await collect(b), []);
      } finally {
        await b.close();
      }
    });

    it("returns binary values byte for byte, including empty and 2 MiB ones", async () => {
      const { b } = await fresh();
      try {
        const bin = allBytes();
        const big = Buffer.alloc(2 * 1024 * 1024);
        for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >>> 11)) & 0xff;
        await b.update("bin", bin);
        await b.update("empty", Buffer.alloc(0));
        await b.update("big", big);
        assert.deepEqual(await b.lookup("bin"), bin);
        const empty = await b.lookup("empty");
        assert.ok(empty !== undefined, "empty value is stored, not absent");
        assert.equal(empty.length, 0);
        const got = await b.lookup("big");
        assert.ok(got && got.equals(big), "2 MiB value round trip");
        const seq = new Map(await collect(b));
        assert.equal(seq.size, 3);
        assert.ok(seq.get("big")!.equals(big));
        assert.equal(seq.get("empty")!.length, 0);
      } finally {
        await b.close();
      }
    });

    it("hands out buffers that stay valid across later lookups", async () => {
      const { b } = await fresh();
      try {
        const v1 = Buffer.alloc(300, 1);
        const v2 = Buffer.alloc(300, 2);
        await b.update("one", v1);
        await b.update("two", v2);
        const got1 = await b.lookup("one");
        const got2 = await b.lookup("two");
        await b.lookup("missing");
        await b.update("one", Buffer.alloc(300, 3));
        assert.deepEqual(got1, v1);
        assert.deepEqual(got2, v2);
      } finally {
        await b.close();
      }
    });

    it("overwrites a value", async () => {
      const { b } = await fresh();
      try {
        await b.update("k", Buffer.from("first value, longer"));
        await b.update("k", Buffer.from("second"));
        assert.deepEqual(await b.lookup("k"), Buffer.from("second"));
        assert.equal((await collect(b)).length, 1);
      } finally {
        await b.close();
      }
    });

    it("makes an update visible to the next lookup and delete at once", async () => {
      const { b } = await fresh();
      try {
        const u = b.update("now", Buffer.from("v1"));
        assert.deepEqual(await b.lookup("now"), Buffer.from("v1"));
        const d = b.delete("now");
        assert.equal(await d, true);
        assert.equal(await b.lookup("now"), undefined);
        assert.equal(await b.delete("now"), false);
        await u;
        assert.equal(await b.lookup("now"), undefined);
        assert.deepEqual(await collect(b), []);
      } finally {
        await b.close();
      }
    });

    it("deletes: true when something was removed, false otherwise", async () => {
      const { b } = await fresh();
      try {
        await b.update("a", Buffer.from("1"));
        await b.update("b", Buffer.from("2"));
        assert.equal(await b.delete("a"), true);
        assert.equal(await b.delete("a"), false);
        assert.equal(await b.lookup("a"), undefined);
        assert.deepEqual(await b.lookup("b"), Buffer.from("2"));
        assert.deepEqual(
          (await collect(b)).map(([k]) => k),
          ["b"],
        );
      } finally {
        await b.close();
      }
    });

    it("walks every entry exactly once", async () => {
      const { b } = await fresh();
      try {
        const want = new Map<string, Buffer>();
        const writes: (void | Promise<void>)[] = [];
        for (let i = 0; i < 1500; i++) {
          const v = Buffer.from(`value-${i}-${"z".repeat(i % 50)}`);
          want.set(`id-${i}`, v);
          writes.push(b.update(`id-${i}`, v));
        }
        await Promise.all(writes);
        const got = await collect(b);
        assert.equal(got.length, want.size);
        const seen = new Set<string>();
        for (const [k, v] of got) {
          assert.ok(!seen.has(k), `met twice: ${k}`);
          seen.add(k);
          assert.deepEqual(v, want.get(k), `value of ${k}`);
        }
      } finally {
        await b.close();
      }
    });

    it("survives deletes of the current and other entries during the walk", async () => {
      const { b } = await fresh();
      try {
        const n = 1200;
        for (let i = 0; i < n; i++) await b.update(`e${i}`, Buffer.from([i & 0xff, i >> 8]));
        const seen = new Set<string>();
        const deletedUnseen = new Set<string>();
        let removedCount = 0;
        let step = 0;
        for await (const [k, v] of b.sequence()) {
          assert.ok(!seen.has(k), `met twice: ${k}`);
          assert.ok(!deletedUnseen.has(k), `met after its delete: ${k}`);
          seen.add(k);
          const i = Number(k.slice(1));
          assert.deepEqual(v, Buffer.from([i & 0xff, i >> 8]));
          step++;
          // Delete the entry the walk stands on, every third time.
          if (step % 3 === 0) {
            assert.equal(await b.delete(k), true);
            removedCount++;
          }
          // And, every seventh time, a few others (some met, some not yet).
          if (step % 7 === 0) {
            for (const j of [(i * 13 + 5) % n, (i * 29 + 11) % n, (i + 1) % n]) {
              const other = `e${j}`;
              if (other === k) continue;
              const removed = await b.delete(other);
              if (removed) removedCount++;
              if (removed && !seen.has(other)) deletedUnseen.add(other);
            }
          }
        }
        // Every entry not deleted before the walk met it was met.
        for (let i = 0; i < n; i++) {
          const k = `e${i}`;
          assert.ok(seen.has(k) || deletedUnseen.has(k), `never met: ${k}`);
        }
        assert.ok(deletedUnseen.size > 0, "the test deleted entries ahead of the walk");
        // What is left is exactly what was not deleted.
        const left = new Set((await collect(b)).map(([k]) => k));
        for (const k of left) assert.ok(!deletedUnseen.has(k));
        assert.equal(left.size, n - removedCount);
      } finally {
        await b.close();
      }
    });

    it("meets an entry updated during the walk at most once", async () => {
      const { b } = await fresh();
      try {
        for (let i = 0; i < 600; i++) await b.update(`u${i}`, Buffer.from("old"));
        const count = new Map<string, number>();
        for await (const [k] of b.sequence()) {
          count.set(k, (count.get(k) ?? 0) + 1);
          const i = Number(k.slice(1));
          await b.update(k, Buffer.from("new"));
          await b.update(`u${(i + 300) % 600}`, Buffer.from("newer"));
        }
        assert.equal(count.size, 600);
        for (const [k, c] of count) assert.equal(c, 1, `met ${c} times: ${k}`);
      } finally {
        await b.close();
      }
    });

    it("stores, walks and deletes odd keys", async () => {
      const { b } = await fresh();
      try {
        for (const [i, k] of ODD_KEYS.entries()) await b.update(k, Buffer.from(`v${i}`));
        for (const [i, k] of ODD_KEYS.entries()) assert.deepEqual(await b.lookup(k), Buffer.from(`v${i}`), `key #${i}`);
        // Near misses are misses.
        assert.equal(await b.lookup("x".repeat(999)), undefined);
        assert.equal(await b.lookup("y".repeat(5001)), undefined);
        assert.equal(await b.lookup("y".repeat(4999) + "z"), undefined);
        const walked = new Map(await collect(b));
        assert.equal(walked.size, ODD_KEYS.length);
        for (const [i, k] of ODD_KEYS.entries()) assert.deepEqual(walked.get(k), Buffer.from(`v${i}`), `walk key #${i}`);
        for (const k of ODD_KEYS) assert.equal(await b.delete(k), true);
        assert.deepEqual(await collect(b), []);
      } finally {
        await b.close();
      }
    });

    if (caps.shared) {
      it("keeps the shared store's entries when one host opens it with truncate", async () => {
        const { b, store } = await fresh();
        await b.update("kept", Buffer.from("another host's session"));
        await b.close();
        const again = await openFn(store, { truncate: true });
        try {
          assert.deepEqual(await again.lookup("kept"), Buffer.from("another host's session"));
        } finally {
          await again.close();
        }
      });
    } else it("empties the store when opened with truncate", async () => {
      const { b, store } = await fresh();
      await b.update("stale", Buffer.from("left by a crashed run"));
      await b.close();
      const again = await openFn(store, { truncate: true });
      try {
        assert.equal(await again.lookup("stale"), undefined);
        assert.deepEqual(await collect(again), []);
        await again.update("new", Buffer.from("x"));
        assert.deepEqual(await again.lookup("new"), Buffer.from("x"));
      } finally {
        await again.close();
      }
    });

    if (caps.persistent) {
      it("keeps entries across close and reopen without truncate", async () => {
        const { b, store } = await fresh();
        const big = Buffer.alloc(2 * 1024 * 1024, 0xa5);
        for (const [i, k] of ODD_KEYS.entries()) b.update(k, Buffer.from(`v${i}`));
        b.update("big", big);
        // A client waits for each reply before its next request, so the
        // delete follows a completed update (a Redis Cluster may reorder
        // writes still in flight across a slot redirect).
        await b.update("gone", Buffer.from("soon deleted"));
        await b.delete("gone");
        await b.close(); // must wait for the writes above
        const again = await openFn(store, { truncate: false });
        try {
          for (const [i, k] of ODD_KEYS.entries()) assert.deepEqual(await again.lookup(k), Buffer.from(`v${i}`));
          assert.ok((await again.lookup("big"))!.equals(big));
          assert.equal(await again.lookup("gone"), undefined);
          assert.equal((await collect(again)).length, ODD_KEYS.length + 1);
        } finally {
          await again.close();
        }
      });
    }
  });
}
