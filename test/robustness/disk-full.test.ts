/**
 * disk-full.test.ts - the daemon when its session cache file cannot grow:
 *                     the real daemon with a file size limit (RLIMIT_FSIZE,
 *                     set on the running process with prlimit(1)), as on a
 *                     full disk.
 * Owns: what an administrator sees: one warning naming the cache and the
 *       cause (not one per batch of writes), every request still answered,
 *       entries stored before the limit still found, writes stored again
 *       (and one info line) once the file can grow and the back-off is over,
 *       a clean stop.
 * Not here: the batching itself (test/conformance/lmdb.test.ts).
 * See also: src/cache/backends/lmdb.ts (LmdbBackend.flush, #writeFailed)
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { startDaemon, tlsmgrLookup } from "../helpers/daemon.js";
import type { RunningDaemon } from "../helpers/daemon.js";
import { openAnnounced, rawTestInstance } from "../helpers/raw-conn.js";
import type { RawTestInstance } from "../helpers/raw-conn.js";
import { WRITE_BACKOFF_FIRST_MS } from "../../src/cache/backends/lmdb.js";

const OK = "status\x000\0\0";
/** The largest file the daemon may write: room for a few hundred 3 KB sessions. */
const FILE_SIZE_LIMIT = 1024 * 1024;
const ENTRIES = 800;

const session = (i: number) => Buffer.alloc(3000, i & 0xff);
const update = (i: number) =>
  `request\0update\0cache_type\0smtpd\0cache_id\0id-${i}\0session\0${session(i).toString("base64")}\0\0`;

let inst: RawTestInstance;
let daemon: RunningDaemon;

before(async () => {
  inst = rawTestInstance("diskfull", ["smtpd_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache"]);
  daemon = await startDaemon({ configDir: inst.dir, socket: inst.socket });
  execFileSync("prlimit", ["--pid", String(daemon.proc.pid), `--fsize=${FILE_SIZE_LIMIT}:unlimited`]);
});

after(async () => {
  if (daemon?.proc.exitCode === null) await daemon.stop();
  inst?.cleanup();
});

test("a cache file that cannot grow: one warning, every request answered, stored entries found; writes again once it can", async () => {
  const c = await openAnnounced(daemon.socket);
  try {
    // 2.4 MB of sessions into a file limited to 1 MiB: updates are answered
    // at once (they wait in the overlay); the writes that do not fit are lost.
    for (let i = 0; i < ENTRIES; i++) {
      let reply = "";
      try {
        reply = await c.exchange(update(i), OK);
      } catch {
        /* reported below */
      }
      if (reply !== OK) {
        await sleep(200);
        assert.fail(`update ${i}: no reply; daemon exit ${daemon.proc.exitCode} ${daemon.proc.signalCode}; it said:\n${daemon.stderr()}`);
      }
      if (i % 50 === 49) await sleep(5); // let the flush timer run between bursts
    }
    await sleep(50);
    let found = 0;
    let missed = 0;
    for (let i = 0; i < ENTRIES; i++) {
      const r = await tlsmgrLookup(daemon.socket, "smtpd", `id-${i}`);
      if (r.status === 0 && r.session.equals(session(i))) found++;
      else if (r.status === -1 && r.session.length === 0) missed++;
      else assert.fail(`lookup ${i}: status ${r.status}, ${r.session.length} bytes`);
    }
    assert.ok(found > 0, "entries written before the limit are found");
    assert.ok(missed > 0, "entries that did not fit are misses");
    assert.equal(found + missed, ENTRIES);
  } finally {
    c.close();
  }
  // One warning per run of failed writes, one info line when writes succeed
  // again: never one per batch. After a failure no write is tried for 10 s,
  // longer than this test runs, so here: one warning and no recovery.
  const log = daemon.stderr();
  const warnings = log.split("\n").filter((l) => l.includes("warning:"));
  const recoveries = log.split("\n").filter((l) => /cache writes succeed again; \d+ entries were not stored$/.test(l));
  assert.ok(warnings.length >= 1, "the failure is reported");
  for (const w of warnings)
    assert.match(w, /warning: lmdb:.*smtpd_scache: cannot write cache entries: .+; new entries are not stored for 10s, then tried again$/);
  assert.equal(warnings.length, 1, `one warning:\n${log}`);
  assert.equal(recoveries.length, 0, `no write tried during the back-off:\n${log}`);

  // Room again (the limit lifted): once the back-off is over, writes are
  // tried, stored, and one info line says how many entries were lost.
  execFileSync("prlimit", ["--pid", String(daemon.proc.pid), "--fsize=unlimited:unlimited"]);
  await sleep(WRITE_BACKOFF_FIRST_MS + 500);
  const again = await openAnnounced(daemon.socket);
  try {
    for (let i = ENTRIES; i < ENTRIES + 20; i++) assert.equal(await again.exchange(update(i), OK), OK);
  } finally {
    again.close();
  }
  await sleep(50);
  for (let i = ENTRIES; i < ENTRIES + 20; i++) {
    const r = await tlsmgrLookup(daemon.socket, "smtpd", `id-${i}`);
    assert.ok(r.status === 0 && r.session.equals(session(i)), `entry ${i} stored after the back-off`);
  }
  const after = daemon.stderr().split("\n").filter((l) => /cache writes succeed again; \d+ entries were not stored$/.test(l));
  assert.equal(after.length, 1, `one info line when writes succeed again:\n${daemon.stderr()}`);
  assert.equal(await daemon.stop(), 0, "the daemon stops cleanly on SIGTERM");
});
