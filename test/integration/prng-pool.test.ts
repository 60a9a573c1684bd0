/**
 * prng-pool.test.ts - the PRNG pool on real sources, a real exchange file and flock(1):
 *                     start-up, health tests, reopen/reconnect, exchange file locking,
 *                     failed writes, a removed file, the schedules, fresh output per start.
 * See also: src/prng/pool.ts, src/prng/exchange.ts, test/helpers/egd-server.ts
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { afterEach, beforeEach, test } from "node:test";
import { fileURLToPath } from "node:url";
import { FatalError } from "../../src/log/msg.js";
import { PrngPool, type PrngPoolConfig, type PrngPoolOptions } from "../../src/prng/pool.js";
import type { Timers } from "../../src/prng/schedule.js";
import { manualClock } from "../../src/util/clock.js";
import { EgdServer } from "../helpers/egd-server.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";
import { tempDir } from "../helpers/temp-dir.js";

const distRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

const dir = tempDir("prng-pool-");
let exch = "";
const pools: PrngPool[] = [];

beforeEach(() => {
  exch = path.join(dir, `prng_exch.${randomBytes(4).toString("hex")}`);
});
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
});
// after the hook above: pools close while their lines are still captured
const lines = captureMsgsEach();

function cfg(over: Partial<PrngPoolConfig> = {}): PrngPoolConfig {
  return {
    tls_random_source: "dev:/dev/urandom",
    tls_random_bytes: 32,
    tls_random_exchange_name: exch,
    tls_random_reseed_period: 3600,
    tls_random_prng_update_period: 3600,
    ...over,
  };
}

/** openPool - open and remember for closing; the schedules use r = 255 (3600 s) */
async function openPool(over: Partial<PrngPoolConfig> = {}, opts: PrngPoolOptions = {}): Promise<PrngPool> {
  const pool = await PrngPool.open(cfg(over), { randomByte: () => 255, ...opts });
  pools.push(pool);
  return pool;
}

/** waitFor - poll until cond() holds (bounded so a broken test stops) */
async function waitFor(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; log:\n${lines.join("\n")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function hasLine(re: RegExp): boolean {
  return lines.some((l) => re.test(l));
}

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** holdLock - flock(1) holds an exclusive lock on file until release() */
async function holdLock(file: string): Promise<{ release(): Promise<number | null> }> {
  const child = spawn("flock", ["-x", file, "sh", "-c", "echo locked; exec cat >/dev/null"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.stdout.on("data", (d: Buffer) => {
      if (d.toString().includes("locked")) resolve();
    });
  });
  return {
    release: () =>
      new Promise((resolve) => {
        child.once("exit", (code) => resolve(code));
        child.stdin.end();
      }),
  };
}

test("start-up: source read, exchange file created (1024 bytes, 0600) and updated, seeds served", async () => {
  const pool = await openPool();
  const st = statSync(exch);
  assert.equal(st.size, 1024);
  assert.equal(st.mode & 0o777, 0o600);
  const s = pool.stats();
  assert.equal(s.sourceReads, 1);
  assert.equal(s.sourceBytesUsed, 32);
  assert.equal(s.exchangeUpdates, 1);
  const a = pool.generate(32);
  const b = pool.generate(32);
  assert.equal(a.length, 32);
  assert.notDeepEqual(a, b);
  assert.equal(pool.generate(255).length, 255);
  assert.deepEqual(lines, [], "nothing logged at start-up");

  const before = readFileSync(exch);
  pools.pop();
  await pool.close();
  const saved = readFileSync(exch);
  assert.equal(saved.length, 1024);
  assert.notDeepEqual(saved, before, "the exchange file is updated before exit");
  assert.throws(() => pool.generate(32), (err: unknown) => (err as { code?: string }).code === "PRNG_CLOSED");
});

test("an empty tls_random_source gives Postfix's two warnings", async () => {
  const pool = await openPool({ tls_random_source: "" });
  assert.deepEqual(lines, [
    "warning: no entropy source specified with parameter tls_random_source",
    "warning: encryption keys etc. may be predictable",
  ]);
  assert.equal(pool.stats().sourceReads, 0);
  assert.equal(pool.generate(32).length, 32);
});

test("an all-zero source is rejected by the health tests", async () => {
  const pool = await openPool({ tls_random_source: "dev:/dev/zero" });
  assert.ok(
    hasLine(/^warning: entropy device \/dev\/zero failed the repetition count health test -- 32 bytes not used$/),
    lines.join("\n"),
  );
  const s = pool.stats();
  assert.equal(s.sourceBytesUsed, 0);
  assert.equal(s.sourceBytesRejected, 32);
  await pool.reseed();
  assert.equal(pool.stats().sourceBytesRejected, 64, "still stuck, still rejected");
  assert.notDeepEqual(pool.generate(32), Buffer.alloc(32));
});

test("seed output differs across restarts even when the source and the exchange file are all zeros", () => {
  const zeroExch = path.join(dir, "zero_exch");
  const script = `
    import { PrngPool } from ${JSON.stringify(path.join(distRoot, "src/prng/pool.js"))};
    import { manualClock } from ${JSON.stringify(path.join(distRoot, "src/util/clock.js"))};
    const pool = await PrngPool.open({
      tls_random_source: "dev:/dev/zero", tls_random_bytes: 32,
      tls_random_exchange_name: ${JSON.stringify(zeroExch)},
      tls_random_reseed_period: 3600, tls_random_prng_update_period: 3600,
    }, { clock: manualClock(1700000000), randomByte: () => 0 });
    process.stdout.write(pool.generate(32).toString("hex"));
    await pool.close();`;
  const outputs: string[] = [];
  for (let i = 0; i < 3; i++) {
    writeFileSync(zeroExch, Buffer.alloc(1024));
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^[0-9a-f]{64}$/);
    outputs.push(r.stdout);
  }
  assert.equal(new Set(outputs).size, 3, "three starts, three different seeds");
  assert.ok(!outputs.includes("0".repeat(64)));

  // The same holds within one process.
  return (async () => {
    const seeds: string[] = [];
    for (let i = 0; i < 2; i++) {
      writeFileSync(zeroExch, Buffer.alloc(1024));
      const pool = await PrngPool.open(cfg({ tls_random_source: "dev:/dev/zero", tls_random_exchange_name: zeroExch }), {
        clock: manualClock(1_700_000_000),
        randomByte: () => 0,
        timers: { setTimeout: () => 0, clearTimeout: () => undefined },
      });
      seeds.push(pool.generate(32).toString("hex"));
      await pool.close();
    }
    assert.notEqual(seeds[0], seeds[1]);
  })();
});

test("a file source is read once, then closed", async () => {
  const file = path.join(dir, "entropy-file");
  writeFileSync(file, randomBytes(64));
  const pool = await openPool({ tls_random_source: file, tls_random_bytes: 48 });
  assert.equal(pool.stats().sourceReads, 1);
  assert.equal(pool.stats().sourceBytesUsed, 48);
  const reseeds = pool.stats().reseeds;
  await pool.reseed();
  assert.equal(pool.stats().sourceReads, 1, "not read again");
  assert.equal(pool.stats().reseeds, reseeds + 1, "the reseed still happens (from the OS)");
});

test("a dev source that times out is closed and reopened with back-off", async () => {
  const fifo = path.join(dir, `fifo-${randomBytes(3).toString("hex")}`);
  execFileSync("mkfifo", [fifo]);
  const pool = await openPool(
    { tls_random_source: `dev:${fifo}` },
    { sourceTimeoutMs: 200, reopenBackoff: { firstMs: 50, maxMs: 100 } },
  );
  assert.ok(
    hasLine(new RegExp(`^warning: cannot read from entropy device ${esc(fifo)}: timed out -- reopening$`)),
    lines.join("\n"),
  );
  await waitFor(() => pool.stats().sourceReopens >= 1, "a reopen");
  assert.ok(hasLine(new RegExp(`^info: reopened entropy device ${esc(fifo)}$`)));
  assert.equal(pool.stats().sourceBytesUsed, 0);
  assert.equal(pool.generate(32).length, 32, "the pool serves meanwhile");
});

test("a missing dev source is retried with growing delays until it appears", async () => {
  const dev = path.join(dir, `late-device-${randomBytes(3).toString("hex")}`);
  const pool = await openPool({ tls_random_source: `dev:${dev}` }, { reopenBackoff: { firstMs: 20, maxMs: 80 } });
  assert.equal(lines[0], `warning: cannot open entropy device ${dev}: No such file or directory`);
  await waitFor(() => lines.length >= 3, "retries");
  assert.match(lines[1]!, new RegExp(`^warning: cannot open entropy device ${esc(dev)}: No such file or directory -- retrying in 1s$`));
  writeFileSync(dev, randomBytes(4096));
  await waitFor(() => pool.stats().sourceBytesUsed === 32, "source bytes after the reopen");
  assert.ok(hasLine(new RegExp(`^info: reopened entropy device ${esc(dev)}$`)));
});

test("egd: bytes used; a zero answer and a hang-up lead to reconnects", async () => {
  const sock = path.join(dir, `egd-${randomBytes(3).toString("hex")}`);
  const server = await EgdServer.start(sock);
  try {
    const pool = await openPool({ tls_random_source: `egd:${sock}` }, { reopenBackoff: { firstMs: 20, maxMs: 100 } });
    assert.equal(pool.stats().sourceBytesUsed, 32);

    server.mode = "zero";
    await pool.reseed();
    assert.ok(hasLine(new RegExp(`^warning: EGD server ${esc(sock)} reports zero bytes available -- reconnecting$`)), lines.join("\n"));
    server.mode = "normal";
    await waitFor(() => pool.stats().sourceReopens >= 1 && pool.stats().sourceBytesUsed === 64, "reconnect 1");
    assert.ok(hasLine(new RegExp(`^info: reconnected to EGD server ${esc(sock)}$`)));

    server.mode = "hangup";
    await pool.reseed();
    assert.ok(hasLine(new RegExp(`^warning: cannot read from EGD server ${esc(sock)}: lost connection -- reconnecting$`)));
    server.mode = "normal";
    await waitFor(() => pool.stats().sourceReopens >= 2 && pool.stats().sourceBytesUsed === 96, "reconnect 2");
    assert.equal(pool.stats().sourceFailures, 2);
  } finally {
    await server.close();
  }
});

test("egd: no server at start-up, then one appears", async () => {
  const sock = path.join(dir, `egd-late-${randomBytes(3).toString("hex")}`);
  const pool = await openPool({ tls_random_source: `egd:${sock}` }, { reopenBackoff: { firstMs: 20, maxMs: 100 } });
  assert.equal(lines[0], `warning: cannot connect to EGD server ${sock}: No such file or directory`);
  const server = await EgdServer.start(sock);
  try {
    await waitFor(() => pool.stats().sourceBytesUsed === 32, "bytes from the late server");
  } finally {
    await server.close();
  }
});

test("an exchange file that cannot be opened is fatal", async () => {
  const bad = path.join(dir, "no-such-dir", "prng_exch");
  await assert.rejects(PrngPool.open(cfg({ tls_random_exchange_name: bad })), FatalError);
  assert.ok(hasLine(new RegExp(`^fatal: cannot open PRNG exchange file ${esc(bad)}: No such file or directory$`)), lines.join("\n"));
});

test("two processes contend for the exchange file lock: the update waits for flock(1)", async () => {
  const pool = await openPool({}, { lockTimeoutMs: 30_000 });
  const before = readFileSync(exch);
  const holder = await holdLock(exch);
  let settled = false;
  const update = pool.updateExchange().finally(() => {
    settled = true;
  });
  await sleep(300);
  assert.equal(settled, false, "the update waits while flock(1) holds the lock");
  assert.deepEqual(readFileSync(exch), before, "and does not write");
  assert.equal(pool.generate(32).length, 32, "the event loop is free meanwhile");
  assert.equal(await holder.release(), 0);
  assert.equal(await update, true);
  assert.notDeepEqual(readFileSync(exch), before);
  assert.deepEqual(lines, []);
});

test("a lock held too long: the update is skipped with a warning, the file unchanged", async () => {
  const pool = await openPool({}, { lockTimeoutMs: 200 });
  const before = readFileSync(exch);
  const holder = await holdLock(exch);
  try {
    assert.equal(await pool.updateExchange(), false);
    assert.ok(hasLine(new RegExp(`^warning: cannot lock PRNG exchange file ${esc(exch)}: timed out`)), lines.join("\n"));
    assert.deepEqual(readFileSync(exch), before);
  } finally {
    await holder.release();
  }
  assert.equal(await pool.updateExchange(), true, "the next update works");
});

test("a removed exchange file is reopened with a warning", async () => {
  const pool = await openPool();
  unlinkSync(exch);
  assert.equal(await pool.updateExchange(), true);
  assert.ok(hasLine(/^warning: PRNG exchange file was removed -- reopening$/), lines.join("\n"));
  const st = statSync(exch);
  assert.equal(st.size, 1024);
  assert.equal(st.mode & 0o777, 0o600);
  // The new file is the one locked and written from now on.
  const before = readFileSync(exch);
  assert.equal(await pool.updateExchange(), true);
  assert.notDeepEqual(readFileSync(exch), before);
});

/** flakyWriter - a positional write that can be told to fail the next update part-way */
function flakyWriter() {
  const state = { mode: "ok" as "ok" | "fail-once" | "no-progress", errno: -5, code: "EIO" };
  const write = async (fh: FileHandle, buf: Buffer, offset: number, length: number, position: number) => {
    if (state.mode === "no-progress") return 0;
    if (state.mode === "fail-once") {
      // Part of the new bytes reach the file, then the write fails; the restore that follows goes through.
      state.mode = "ok";
      await fh.write(buf, offset, Math.min(length, 100), position);
      throw Object.assign(new Error(`${state.code}: write failed`), { code: state.code, errno: state.errno });
    }
    return (await fh.write(buf, offset, length, position)).bytesWritten;
  };
  return { state, write };
}

test("a failed write leaves the old content, and a write without progress too", async () => {
  const w = flakyWriter();
  const pool = await openPool({}, { exchangeWrite: w.write });
  const good = readFileSync(exch);
  assert.equal(good.length, 1024);

  w.state.mode = "fail-once";
  assert.equal(await pool.updateExchange(), false);
  assert.ok(hasLine(new RegExp(`^warning: cannot write PRNG exchange file ${esc(exch)}: Input/output error$`)), lines.join("\n"));
  assert.deepEqual(readFileSync(exch), good, "the old bytes are back");

  w.state.mode = "no-progress";
  assert.equal(await pool.updateExchange(), false);
  assert.ok(hasLine(new RegExp(`^warning: cannot write PRNG exchange file ${esc(exch)}: short write$`)), lines.join("\n"));
  assert.deepEqual(readFileSync(exch), good);

  w.state.mode = "ok";
  assert.equal(await pool.updateExchange(), true);
  assert.notDeepEqual(readFileSync(exch), good);
});

test("a failed start-up write keeps an existing file's content and a new file's emptiness", async () => {
  const old = randomBytes(1024);
  writeFileSync(exch, old);
  const w = flakyWriter();
  w.state.mode = "fail-once";
  w.state.code = "ENOSPC";
  w.state.errno = -28;
  const pool = await openPool({}, { exchangeWrite: w.write });
  assert.ok(hasLine(/^warning: cannot write PRNG exchange file .*: No space left on device$/), lines.join("\n"));
  assert.deepEqual(readFileSync(exch), old);
  assert.equal(pool.stats().exchangeUpdates, 0);

  const fresh = path.join(dir, `fresh_exch-${randomBytes(3).toString("hex")}`);
  const w2 = flakyWriter();
  w2.state.mode = "fail-once";
  const pool2 = await openPool({ tls_random_exchange_name: fresh }, { exchangeWrite: w2.write });
  assert.equal(statSync(fresh).size, 0, "a new file stays empty, not half written");
  assert.equal(await pool2.updateExchange(), true);
  assert.equal(statSync(fresh).size, 1024);
});

test("schedules: period * r / 255 with a fresh random byte each time", async () => {
  const pending = new Map<number, { fn: () => void; ms: number }>();
  let id = 0;
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      pending.set(++id, { fn, ms });
      return id;
    },
    clearTimeout: (h) => {
      pending.delete(h as number);
    },
  };
  const bytes = [51, 102, 255, 0];
  const scheduled: string[] = [];
  const pool = await openPool(
    { tls_random_reseed_period: 3600, tls_random_prng_update_period: 1000 },
    { timers, randomByte: () => bytes.shift() ?? 1, onScheduled: (what, d) => scheduled.push(`${what} ${d}`) },
  );
  // floor(3600 * 51 / 255) = 720, floor(1000 * 102 / 255) = 400
  assert.deepEqual(scheduled, ["reseed 720", "exchange 400"]);
  assert.deepEqual([...pending.values()].map((t) => t.ms).sort((a, b) => a - b), [400_000, 720_000]);

  const fire = (ms: number) => {
    const [key, t] = [...pending.entries()].find(([, v]) => v.ms === ms)!;
    pending.delete(key);
    t.fn();
  };
  const reads = pool.stats().sourceReads;
  fire(720_000);
  await waitFor(() => scheduled.length === 3, "reseed re-armed");
  assert.equal(pool.stats().sourceReads, reads + 1);
  assert.equal(scheduled[2], "reseed 3600"); // r = 255
  const updates = pool.stats().exchangeUpdates;
  fire(400_000);
  await waitFor(() => scheduled.length === 4, "exchange re-armed");
  assert.equal(pool.stats().exchangeUpdates, updates + 1);
  assert.equal(scheduled[3], "exchange 0"); // r = 0
  pools.pop();
  await pool.close();
  assert.equal(pending.size, 0, "close cancels the timers");
});

test("time of day and cache entries can be mixed in at any time", async () => {
  const pool = await openPool({ tls_random_exchange_name: "" });
  for (let i = 0; i < 1000; i++) pool.mixTimeOfDay();
  pool.mixEntry("smtpd:abc", Buffer.alloc(2 << 20, 1));
  pool.mixEntry(Buffer.from("id"), Buffer.alloc(0));
  assert.equal(pool.generate(32).length, 32);
  assert.equal(pool.generate(1).length, 1);
});
