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
import { lmdbBackendInfo, lmdbFileFor, lmdbOpen } from "../../src/cache/backends/lmdb.js";
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
