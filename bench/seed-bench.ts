/**
 * seed-bench.ts - how many `seed` requests per second the PRNG pool serves (sizes 32 and 255).
 * Owns: a timed loop of what the server does per seed request: generate(n) then
 *       mixTimeOfDay(), and the cost of mixTimeOfDay() alone. Prints figures;
 *       not a test (no assertions on speed).
 * Not here: the wire protocol cost (bench/run.ts).
 * See also: src/prng/pool.ts, docs/benchmarks.md (the seed block)
 *
 * Usage: node dist/bench/seed-bench.js [seconds-per-size (default 2)] [seed-block-bytes (default the pool's)]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setMsgSinks } from "../src/log/msg.js";
import { POOL_SEED_BLOCK_BYTES, PrngPool } from "../src/prng/pool.js";

/** run - requests per second of generate(size) + mixTimeOfDay() over about `seconds` */
function run(pool: PrngPool, size: number, seconds: number): number {
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  let n = 0;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 1000; i++) {
      pool.generate(size);
      pool.mixTimeOfDay();
    }
    n += 1000;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}

/** runMix - calls per second of mixTimeOfDay() alone over about `seconds` */
function runMix(pool: PrngPool, seconds: number): number {
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  let n = 0;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 10_000; i++) pool.mixTimeOfDay();
    n += 10_000;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 2) || 2;
  const blockBytes = Number(process.argv[3] ?? POOL_SEED_BLOCK_BYTES) || POOL_SEED_BLOCK_BYTES;
  const dir = mkdtempSync(path.join(tmpdir(), "seed-bench-"));
  setMsgSinks([]);
  const pool = await PrngPool.open({
    tls_random_source: "dev:/dev/urandom",
    tls_random_bytes: 32,
    tls_random_exchange_name: path.join(dir, "prng_exch"),
    tls_random_reseed_period: 3600,
    tls_random_prng_update_period: 3600,
  }, { seedBlockBytes: blockBytes });
  try {
    run(pool, 32, 0.3); // warm-up
    process.stdout.write(`seed block ${blockBytes} bytes\n`);
    for (const size of [32, 255]) {
      const rate = run(pool, size, seconds);
      process.stdout.write(`seed size ${size}: ${Math.round(rate)} requests/s (${(1e6 / rate).toFixed(2)} us each)\n`);
    }
    const mix = runMix(pool, Math.min(seconds, 1));
    process.stdout.write(`mixTimeOfDay: ${Math.round(mix)} calls/s (${(1e6 / mix).toFixed(3)} us each)\n`);
  } finally {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
