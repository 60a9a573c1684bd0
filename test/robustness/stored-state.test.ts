/**
 * stored-state.test.ts - the daemon started on files left in a bad state:
 *                        session cache files of garbage, PRNG exchange files
 *                        of the wrong size, unopenable or unwritable.
 * Owns: what start-up makes of them: a cache file is created afresh whatever
 *       was there (Postfix truncates at start-up, so nothing a crashed run
 *       left is trusted); an exchange file of any size is read and mixed in
 *       without complaint, then its first 1024 bytes rewritten (as Postfix);
 *       an exchange file that cannot be opened is fatal, one that cannot be
 *       written is a warning and the daemon serves on.
 * Not here: the exchange file cycle in detail (unit and integration PRNG
 *           tests); bad main.cf values (robustness/bad-config.test.ts).
 * See also: src/cache/backends/lmdb.ts (lmdbOpen), src/cache/scache.ts
 *           (scacheOpen), src/prng/exchange.ts, src/prng/pool.ts (#start),
 *           postfix/src/tls/tls_prng_exch.c, tls_scache.c
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startDaemon } from "../helpers/daemon.js";
import type { RunningDaemon } from "../helpers/daemon.js";
import { daemonExitProblems, daemonRunToExit, openAnnounced, rawTestInstance } from "../helpers/raw-conn.js";
import type { RawTestInstance } from "../helpers/raw-conn.js";

const CACHE = "smtpd_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache";
const EXCH = "tls_random_exchange_name = ${data_directory}/prng_exch";
const OK = "status\x000\0\0";
const MISS = "status\x004294967295\0session\0\0\0";
const NOBODY = 65534;

// serves - the daemon answers update, lookup (a hit and a miss) and seed correctly
async function serves(d: RunningDaemon): Promise<void> {
  const c = await openAnnounced(d.socket);
  try {
    assert.equal(await c.exchange("request\0lookup\0cache_type\0smtpd\0cache_id\0never\0\0", MISS), MISS);
    const sess = randomBytes(700).toString("base64");
    assert.equal(await c.exchange(`request\0update\0cache_type\0smtpd\0cache_id\0k\0session\0${sess}\0\0`, OK), OK);
    const hit = `status\x000\0session\0${sess}\0\0`;
    assert.equal(await c.exchange("request\0lookup\0cache_type\0smtpd\0cache_id\0k\0\0", hit), hit);
    const seed = await c.reply("request\0seed\0size\x0032\0\0");
    assert.match(seed, /^status\x000\0seed\0[A-Za-z0-9+/]{43}=\0\0$/);
  } finally {
    c.close();
  }
}

// withDaemon - start a daemon on inst, run fn, stop it; the stop must be clean
async function withDaemon(inst: RawTestInstance, fn: (d: RunningDaemon) => Promise<void>): Promise<string> {
  const d = await startDaemon({ configDir: inst.dir, socket: inst.socket });
  try {
    await fn(d);
  } finally {
    const code = await d.stop();
    assert.equal(code, 0, `clean stop; stderr:\n${d.stderr()}`);
  }
  return d.stderr();
}

for (const [what, make] of [
  ["garbage, with a garbage lock file", (f: string) => {
    writeFileSync(f, randomBytes(256 * 1024));
    writeFileSync(`${f}-lock`, randomBytes(8192));
  }],
  ["empty", (f: string) => writeFileSync(f, "")],
  ["an LMDB header with the rest garbage", (f: string) => {
    const b = randomBytes(64 * 1024);
    b.writeUInt32LE(0xbeefc0de, 16); // LMDB's magic at the meta page's place
    writeFileSync(f, b);
  }],
] as const) {
  test(`a session cache file that is ${what} at start-up is replaced by an empty cache`, async () => {
    const inst = rawTestInstance("cache", [CACHE]);
    try {
      const file = join(inst.dataDir, "smtpd_scache.lmdb");
      make(file);
      const before = readFileSync(file);
      await withDaemon(inst, serves);
      assert.ok(!readFileSync(file).subarray(0, 4096).equals(before.subarray(0, 4096)) || before.length === 0,
        "the file was recreated");
    } finally {
      inst.cleanup();
    }
  });
}

test("session cache entries do not survive a restart (truncated at start-up)", async () => {
  const inst = rawTestInstance("cache", [CACHE]);
  try {
    await withDaemon(inst, serves); // stores "k"
    await withDaemon(inst, async (d) => {
      const c = await openAnnounced(d.socket);
      assert.equal(await c.exchange("request\0lookup\0cache_type\0smtpd\0cache_id\0k\0\0", MISS), MISS);
      c.close();
    });
  } finally {
    inst.cleanup();
  }
});

test("a session cache path that is a directory: one error naming it, the cache unavailable, the daemon serves", async () => {
  const inst = rawTestInstance("cache", [CACHE]);
  try {
    mkdirSync(join(inst.dataDir, "smtpd_scache.lmdb"));
    const log = await withDaemon(inst, async (d) => {
      const c = await openAnnounced(d.socket);
      try {
        // as Postfix's surrogate: lookups miss, the update is dropped (status 0), the seed is served
        assert.equal(await c.exchange("request\0lookup\0cache_type\0smtpd\0cache_id\0k\0\0", MISS), MISS);
        assert.equal(await c.exchange("request\0update\0cache_type\0smtpd\0cache_id\0k\0session\0AAAA\0\0", OK), OK);
        assert.equal(await c.exchange("request\0lookup\0cache_type\0smtpd\0cache_id\0k\0\0", MISS), MISS);
        assert.match(await c.reply("request\0seed\0size\x0032\0\0"), /^status\x000\0seed\0/);
      } finally {
        c.close();
      }
    });
    const errors = log.split("\n").filter((l) => /: error: /.test(l));
    assert.equal(errors.length, 1, log);
    assert.ok(errors[0]!.includes(join(inst.dataDir, "smtpd_scache")), errors[0]);
    assert.doesNotMatch(log, /fatal: /);
  } finally {
    inst.cleanup();
  }
});

for (const size of [0, 10, 1023, 1025, 5000]) {
  test(`a PRNG exchange file of ${size} bytes is read and rewritten without complaint`, async () => {
    const inst = rawTestInstance("exch", [CACHE, EXCH]);
    try {
      const file = join(inst.dataDir, "prng_exch");
      const old = randomBytes(size);
      writeFileSync(file, old, { mode: 0o600 });
      const log = await withDaemon(inst, serves);
      const now = readFileSync(file);
      assert.equal(now.length, Math.max(1024, size), "1024 bytes written at offset 0, a longer tail kept (as Postfix)");
      assert.ok(!now.subarray(0, Math.min(size, 1024)).equals(old.subarray(0, 1024)) || size === 0, "new bytes");
      if (size > 1024) assert.ok(now.subarray(1024).equals(old.subarray(1024)), "the tail is untouched");
      assert.doesNotMatch(log, /exchange/i, "no diagnostic about the exchange file");
    } finally {
      inst.cleanup();
    }
  });
}

test("a PRNG exchange file that cannot be opened (a directory): fatal naming it, exit 1, no socket", async () => {
  const inst = rawTestInstance("exch", [CACHE, EXCH]);
  try {
    mkdirSync(join(inst.dataDir, "prng_exch"));
    const exit = await daemonRunToExit(inst.dir, inst.socket);
    assert.deepEqual(
      daemonExitProblems(exit, inst.socket, ["cannot open PRNG exchange file", join(inst.dataDir, "prng_exch")]),
      [],
      `stderr:\n${exit.stderr}`,
    );
  } finally {
    inst.cleanup();
  }
});

test("a PRNG exchange file its user may not read (mode 0, daemon not root): fatal naming it, exit 1, no socket", async () => {
  const inst = rawTestInstance("exch", [CACHE, EXCH, "mail_owner = nobody"]);
  try {
    const file = join(inst.dataDir, "prng_exch");
    writeFileSync(file, randomBytes(1024));
    for (const p of [inst.dir, inst.dataDir, file]) chownSync(p, NOBODY, NOBODY);
    chmodSync(file, 0);
    const exit = await daemonRunToExit(inst.dir, inst.socket, { uid: NOBODY, gid: NOBODY });
    assert.deepEqual(
      daemonExitProblems(exit, inst.socket, ["cannot open PRNG exchange file", file]),
      [],
      `stderr:\n${exit.stderr}`,
    );
  } finally {
    inst.cleanup();
  }
});

test("a PRNG exchange file that cannot be written (/dev/full): warnings, and the daemon serves", async () => {
  const inst = rawTestInstance("exch", [CACHE, "tls_random_exchange_name = /dev/full"]);
  try {
    const log = await withDaemon(inst, serves);
    assert.match(log, /warning: cannot write PRNG exchange file \/dev\/full: /);
    assert.doesNotMatch(log, /fatal:|panic:/);
    assert.equal(statSync("/dev/full").isCharacterDevice(), true, "/dev/full is still what it was");
  } finally {
    inst.cleanup();
  }
});
