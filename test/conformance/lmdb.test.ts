/**
 * lmdb.test.ts - the backend conformance suite over LMDB files in a temp directory,
 *                plus what only the LMDB backend promises (file name, raw bytes on disk).
 * See also: test/conformance/backend-suite.ts, src/cache/backends/lmdb.ts
 */

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  FLUSH_DELAY_MS,
  lmdbSetLoopGauge,
  FLUSH_MAX_ENTRIES,
  lmdbBackendInfo,
  lmdbFileFor,
  lmdbOpen,
} from "../../src/cache/backends/lmdb.js";
import { backendConformance } from "./backend-suite.js";

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tlsmgr-lmdb-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

backendConformance("lmdb", (store, opts) => lmdbOpen(join(dir, store), opts), { persistent: true });

describe("lmdb backend specifics", () => {
  it("serves lmdb, btree and hash from name + .lmdb", () => {
    assert.deepEqual(lmdbBackendInfo.types, ["lmdb", "btree", "hash"]);
    assert.equal(lmdbFileFor("/x/smtpd_scache"), "/x/smtpd_scache.lmdb");
    assert.equal(lmdbBackendInfo.fileFor!("/x/smtpd_scache"), "/x/smtpd_scache.lmdb");
  });

  it("creates name.lmdb, mode 0600, and reports the map type it was opened as", async () => {
    const name = join(dir, "smtpd_scache");
    const b = await lmdbOpen(name, { truncate: true, type: "btree" });
    try {
      assert.equal(b.type, "btree");
      assert.equal(b.name, name);
      assert.equal(b.file, name + ".lmdb");
      const st = await stat(name + ".lmdb");
      assert.ok(st.isFile());
      assert.equal(st.mode & 0o777, 0o600);
    } finally {
      await b.close();
    }
  });

  it("stores raw bytes: the value is in the file as given, not hex", async () => {
    const name = join(dir, "rawcheck");
    const b = await lmdbOpen(name, { truncate: true });
    const marker = Buffer.from("\x00\x01RAW-SESSION-MARKER\xfe\xff", "latin1");
    await b.update("id-raw", marker);
    await b.close();
    const file = await readFile(name + ".lmdb");
    assert.ok(file.includes(marker), "raw value bytes present");
    assert.ok(!file.includes(Buffer.from(marker.toString("hex"))), "no hex copy");
    assert.ok(file.includes(Buffer.from("id-raw")), "raw key bytes present");
  });

  it("writes at the end of the turn while the event loop is not busy, in batches by timer while it is", async () => {
    const name = join(dir, "turn-end");
    const b = await lmdbOpen(name, { truncate: true });
    const old = lmdbSetLoopGauge({ busy: () => false });
    try {
      b.update("quiet", Buffer.from("q"));
      assert.equal(b.pendingWrites, 1, "not in the request's own turn");
      await new Promise<void>((resolve) => setImmediate(resolve));
      assert.equal(b.pendingWrites, 0, "written at the end of the turn");
      lmdbSetLoopGauge({ busy: () => true });
      b.update("busy-1", Buffer.from("1"));
      await new Promise<void>((resolve) => setImmediate(resolve));
      b.update("busy-2", Buffer.from("2"));
      assert.equal(b.pendingWrites, 2, "a busy loop batches across turns");
      await sleep(FLUSH_DELAY_MS * 10);
      assert.equal(b.pendingWrites, 0, "the timer flushed the batch");
      assert.deepEqual(b.lookup("busy-2"), Buffer.from("2"));
    } finally {
      lmdbSetLoopGauge(old);
      await b.close();
    }
  });

  it("batches writes: visible at once, in the file after FLUSH_DELAY_MS or FLUSH_MAX_ENTRIES writes", async () => {
    const name = join(dir, "batching");
    const b = await lmdbOpen(name, { truncate: true });
    const old = lmdbSetLoopGauge({ busy: () => true });
    try {
      b.update("one", Buffer.from("v1"));
      assert.equal(b.pendingWrites, 1, "the write waits in the overlay");
      assert.deepEqual(b.lookup("one"), Buffer.from("v1"), "and is seen by the next lookup");
      assert.equal(b.delete("one"), true);
      assert.equal(b.lookup("one"), undefined, "a delete is seen at once too");
      await sleep(FLUSH_DELAY_MS * 10);
      assert.equal(b.pendingWrites, 0, "the timer flushed the overlay");
      for (let i = 0; i < FLUSH_MAX_ENTRIES - 1; i++) b.update(`id-${i}`, Buffer.from(`value-${i}`));
      assert.equal(b.pendingWrites, FLUSH_MAX_ENTRIES - 1);
      b.update("last", Buffer.from("x"));
      assert.equal(b.pendingWrites, 0, "a full overlay is flushed at once");
      assert.deepEqual(b.lookup("id-7"), Buffer.from("value-7"), "flushed entries are read from the file");
      assert.equal(b.lookup("one"), undefined);
    } finally {
      lmdbSetLoopGauge(old);
      await b.close();
    }
    const again = await lmdbOpen(name, { truncate: false });
    try {
      assert.deepEqual(again.lookup(`id-${FLUSH_MAX_ENTRIES - 2}`), Buffer.from(`value-${FLUSH_MAX_ENTRIES - 2}`));
      assert.deepEqual(again.lookup("last"), Buffer.from("x"));
    } finally {
      await again.close();
    }
  });

  it("walks correctly when a flush lands mid-walk (deletes of entries ahead, new entries)", async () => {
    const b = await lmdbOpen(join(dir, "flushwalk"), { truncate: true });
    try {
      const ids = Array.from({ length: 1000 }, (_, i) => `e${String(i).padStart(4, "0")}`);
      for (const id of ids) b.update(id, Buffer.from(id));
      const deleted = new Set<string>();
      const met: string[] = [];
      for (const [id, value] of b.sequence()) {
        assert.ok(!deleted.has(id), `met after its delete: ${id}`);
        assert.deepEqual(value, Buffer.from(id));
        met.push(id);
        if (met.length === 10) {
          // More deletes than FLUSH_MAX_ENTRIES: the overlay is flushed while the walk stands here.
          for (let i = 500; i < 500 + FLUSH_MAX_ENTRIES + 100; i++) {
            b.delete(ids[i]!);
            deleted.add(ids[i]!);
          }
          assert.ok(b.pendingWrites < FLUSH_MAX_ENTRIES, "the deletes were flushed during the walk");
        }
      }
      assert.equal(new Set(met).size, met.length, "no entry met twice");
      assert.deepEqual(
        met.sort(),
        ids.filter((id) => !deleted.has(id)),
        "every entry not deleted is met",
      );
    } finally {
      await b.close();
    }
  });

  it("truncates a file that is not LMDB at all (a crashed or foreign file)", async () => {
    const name = join(dir, "garbage");
    await writeFile(name + ".lmdb", Buffer.alloc(10000, 0x5a));
    await writeFile(name + ".lmdb-lock", Buffer.alloc(100, 0x5a));
    const b = await lmdbOpen(name, { truncate: true });
    try {
      await b.update("k", Buffer.from("v"));
      assert.deepEqual(await b.lookup("k"), Buffer.from("v"));
    } finally {
      await b.close();
    }
  });

  it("refuses a directory that does not exist (as Postfix), instead of creating it", async () => {
    await assert.rejects(lmdbOpen(join(dir, "no", "such", "dir", "cache"), { truncate: true }), { code: "ENOENT" });
    await assert.rejects(stat(join(dir, "no")), { code: "ENOENT" });
  });
});
