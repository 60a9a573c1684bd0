/**
 * prng-pool-block.test.ts - the PRNG pool's seed block: seeds served in order
 *                           from one DRBG generate call, never twice, zeroed
 *                           once handed out; reseeds and exchange file updates
 *                           drop the rest; queued inputs go into the next
 *                           block's generate; the reseed interval counts blocks.
 * See also: src/prng/pool.ts (header: the seed block), test/integration/prng-pool.test.ts
 *           (the pool on real sources and a real exchange file)
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, test } from "node:test";
import { DrbgError, HmacDrbg, type HmacDrbgOptions } from "../../src/prng/drbg.js";
import { POOL_SEED_BLOCK_BYTES, PrngPool, type PrngPoolConfig, type PrngPoolOptions } from "../../src/prng/pool.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";
import { tempDir } from "../helpers/temp-dir.js";

/** One generate call of the pool's DRBG: its size, additional input, output (kept) and the buffer handed back. */
interface GenerateCall {
  n: number;
  additional: Buffer;
  output: Buffer;
  returned: Buffer;
}

/** SpyDrbg - the real HMAC_DRBG, with a record of its generate calls */
class SpyDrbg extends HmacDrbg {
  readonly calls: GenerateCall[] = [];
  entropyCalls = 0;
  readonly opts: HmacDrbgOptions;

  constructor(opts: HmacDrbgOptions) {
    const getEntropy = opts.getEntropy!;
    super({ ...opts, getEntropy: (n) => (this.entropyCalls++, getEntropy(n)) });
    this.opts = opts;
  }

  override generate(n: number, additional?: Buffer, predictionResistance?: boolean): Buffer {
    const out = super.generate(n, additional, predictionResistance);
    this.calls.push({ n, additional: Buffer.from(additional ?? []), output: Buffer.from(out), returned: out });
    return out;
  }
}

const dir = tempDir("prng-pool-block-");
const pools: PrngPool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
});
const lines = captureMsgsEach();

/** openSpied - a pool without source or exchange file (unless given), its DRBG spied on, timers that never fire */
async function openSpied(
  over: Partial<PrngPoolConfig> = {},
  opts: PrngPoolOptions = {},
): Promise<{ pool: PrngPool; drbg: SpyDrbg }> {
  const made: { drbg?: SpyDrbg } = {};
  const pool = await PrngPool.open(
    {
      tls_random_source: "dev:/dev/urandom",
      tls_random_bytes: 32,
      tls_random_exchange_name: "",
      tls_random_reseed_period: 3600,
      tls_random_prng_update_period: 3600,
      ...over,
    },
    {
      timers: { setTimeout: () => 0, clearTimeout: () => undefined },
      randomByte: () => 255,
      createDrbg: (o) => (made.drbg = new SpyDrbg(o)),
      ...opts,
    },
  );
  pools.push(pool);
  return { pool, drbg: made.drbg! };
}

/** framed - the pool's framing of a queued input: label NUL, 4-byte big-endian length, data */
function framed(label: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([Buffer.from(`${label}\0`, "latin1"), len, data]);
}

test("seeds are the seed block's bytes in order, from one generate call per block, never twice", async () => {
  const block = 256;
  const { pool, drbg } = await openSpied({}, { seedBlockBytes: block });
  assert.equal(drbg.calls.length, 0, "no generate call before the first seed");

  // Mixed sizes; a request longer than what is left starts a new block.
  const sizes = Array.from({ length: 300 }, (_, i) => [32, 1, 255, 17, 32, 100, 64][i % 7]!);
  let blockIdx = -1;
  let pos = block;
  const seen = new Set<string>();
  for (const n of sizes) {
    const out = pool.generate(n);
    assert.equal(out.length, n);
    if (block - pos < n) {
      blockIdx += 1;
      pos = 0;
    }
    const call = drbg.calls[blockIdx];
    assert.ok(call, `block ${blockIdx} made`);
    assert.equal(call.n, block);
    assert.deepEqual(out, call.output.subarray(pos, pos + n), `request of ${n} at offset ${pos} of block ${blockIdx}`);
    pos += n;
    if (n >= 16) {
      const hex = out.toString("hex");
      assert.ok(!seen.has(hex), "no seed served twice");
      seen.add(hex);
    }
  }
  assert.equal(drbg.calls.length, blockIdx + 1, "one generate call per block and none other");
  assert.equal(pool.stats().seedBlocks, blockIdx + 1);
  assert.equal(pool.stats().drbgGenerates, blockIdx + 1);
  // Blocks before the current one were used up or dropped: nothing of them is left in memory.
  for (const call of drbg.calls.slice(0, -1)) assert.deepEqual(call.returned, Buffer.alloc(block));
  assert.ok(pool.stats().seedBytesDiscarded > 0, "rests too short for a request were dropped");
});

test("a seed handed out is the caller's: zeroed in the block, changing it changes nothing else", async () => {
  const { pool, drbg } = await openSpied({}, { seedBlockBytes: 128 });
  const a = pool.generate(32);
  const [call] = drbg.calls;
  assert.ok(call);
  assert.deepEqual(a, call.output.subarray(0, 32));
  assert.deepEqual(call.returned.subarray(0, 32), Buffer.alloc(32), "served bytes zeroed in the block");
  assert.deepEqual(call.returned.subarray(32), call.output.subarray(32), "the rest waits");
  a.fill(0xee);
  assert.deepEqual(pool.generate(32), call.output.subarray(32, 64));
});

test("a reseed drops the rest of the block: later seeds come from a new generate call", async () => {
  const { pool, drbg } = await openSpied({}, { seedBlockBytes: 256 });
  const first = pool.generate(32);
  const [old] = drbg.calls;
  assert.ok(old);
  assert.deepEqual(first, old.output.subarray(0, 32));
  const discarded = pool.stats().seedBytesDiscarded;

  await pool.reseed();
  assert.deepEqual(old.returned, Buffer.alloc(256), "the unserved rest is zeroed at the reseed");
  assert.equal(pool.stats().seedBytesDiscarded, discarded + 224);

  const next = pool.generate(32);
  assert.equal(drbg.calls.length, 2, "a new block after the reseed");
  assert.deepEqual(next, drbg.calls[1]!.output.subarray(0, 32));
  for (let off = 0; off + 32 <= 256; off += 32) {
    assert.notDeepEqual(next, old.output.subarray(off, off + 32), "no byte of the old block after the reseed");
  }
});

test("queued inputs go in as the additional input of the next block's generate call", async () => {
  const { pool, drbg } = await openSpied({}, { seedBlockBytes: 64 });
  pool.generate(32);
  assert.equal(drbg.calls[0]!.additional.length, 0, "nothing queued since the start-up reseed");

  const value = randomBytes(300);
  pool.mixEntry("smtpd:abc", value);
  pool.mixEntry(Buffer.from([1, 2, 3]), Buffer.alloc(0));
  pool.generate(32);
  assert.equal(drbg.calls.length, 1, "the block lasts: the inputs wait");

  pool.generate(32);
  assert.equal(drbg.calls.length, 2);
  const expected = createHash("sha256")
    .update(framed("cache-id", Buffer.from("smtpd:abc")))
    .update(framed("cache-value", value))
    .update(framed("cache-id", Buffer.from([1, 2, 3])))
    .update(framed("cache-value", Buffer.alloc(0)))
    .digest();
  assert.deepEqual(drbg.calls[1]!.additional, expected, "SHA-256 of the framed inputs, in order");

  pool.mixTimeOfDay();
  pool.generate(64);
  assert.equal(drbg.calls.length, 3);
  assert.equal(drbg.calls[2]!.additional.length, 32, "the time of day goes in the same way");
  pool.generate(64);
  assert.equal(drbg.calls[3]!.additional.length, 0, "and only once");
});

test("the exchange file content is a generate call of its own and never overlaps served seeds", async () => {
  const exch = path.join(dir, "prng_exch");
  const { pool, drbg } = await openSpied({ tls_random_exchange_name: exch }, { seedBlockBytes: 256 });
  assert.deepEqual(
    drbg.calls.map((c) => c.n),
    [1024],
    "start-up: the file content only",
  );
  const served: Buffer[] = [];
  for (let i = 0; i < 3; i++) served.push(pool.generate(32));
  const blockA = drbg.calls[1]!;

  assert.equal(await pool.updateExchange(), true);
  const file = readFileSync(exch);
  assert.deepEqual(
    drbg.calls.map((c) => c.n),
    [1024, 256, 1024],
  );
  assert.deepEqual(file, drbg.calls[2]!.output, "the file holds the update's own generate output");
  assert.deepEqual(blockA.returned, Buffer.alloc(256), "the seed block was dropped at the update's reseed");

  for (let i = 0; i < 20; i++) served.push(pool.generate(32));
  assert.deepEqual(served[3], drbg.calls[3]!.output.subarray(0, 32), "a new block after the update");
  const files = [drbg.calls[0]!.output, file];
  for (const s of served) {
    for (const f of files) assert.equal(f.indexOf(s.subarray(0, 8)), -1, "no served bytes in the file");
    assert.equal(blockA.output.subarray(96).indexOf(s.subarray(0, 8)), -1, "no bytes of the dropped block");
  }
});

test("a request longer than a block gets a generate call of its own and drops the block", async () => {
  const { pool, drbg } = await openSpied({}, { seedBlockBytes: 128 });
  pool.generate(32);
  const long = pool.generate(300);
  assert.deepEqual(
    drbg.calls.map((c) => c.n),
    [128, 300],
  );
  assert.deepEqual(long, drbg.calls[1]!.output);
  assert.deepEqual(drbg.calls[0]!.returned, Buffer.alloc(128), "the block's rest is dropped");
  assert.deepEqual(pool.generate(32), drbg.calls[2]!.output.subarray(0, 32));
});

test("bad request sizes are refused; close zeroes the block and refuses seeds", async () => {
  const { pool, drbg } = await openSpied({}, { seedBlockBytes: 128 });
  for (const n of [-1, 1.5, Number.NaN, 65537]) {
    assert.throws(() => pool.generate(n), (err: unknown) => err instanceof DrbgError && err.code === "DRBG_BAD_INPUT");
  }
  assert.equal(pool.generate(0).length, 0);
  assert.equal(pool.generate(65536).length, 65536, "the DRBG's largest request");
  pool.generate(32);
  const block = drbg.calls.at(-1)!;
  assert.equal(block.n, 128);
  pools.pop();
  await pool.close();
  assert.deepEqual(block.returned, Buffer.alloc(128));
  assert.throws(() => pool.generate(32), (err: unknown) => (err as { code?: string }).code === "PRNG_CLOSED");
});

test("the reseed interval counts DRBG generate calls, so blocks; by default 16 MiB of blocks", async () => {
  const { drbg: plain } = await openSpied();
  assert.equal(POOL_SEED_BLOCK_BYTES, 4096);
  assert.equal(plain.opts.reseedInterval, 4096);

  const { pool, drbg } = await openSpied({ tls_random_source: "" }, { seedBlockBytes: 64, reseedInterval: 2 });
  assert.match(lines.join("\n"), /no entropy source specified/);
  const atStart = drbg.entropyCalls;
  for (let i = 0; i < 4; i++) pool.generate(32); // two blocks: within the interval
  assert.equal(drbg.entropyCalls, atStart);
  assert.equal(drbg.reseedCounter, 3);
  pool.generate(32); // the third block: a forced reseed from the operating system first
  assert.equal(drbg.entropyCalls, atStart + 1);
  assert.equal(drbg.reseedCounter, 2);
});

test("a seed block size outside 1..65536 is refused", async () => {
  for (const seedBlockBytes of [0, 65537, 2.5]) {
    await assert.rejects(
      PrngPool.open(
        {
          tls_random_source: "",
          tls_random_bytes: 32,
          tls_random_exchange_name: "",
          tls_random_reseed_period: 3600,
          tls_random_prng_update_period: 3600,
        },
        { seedBlockBytes },
      ),
      RangeError,
    );
  }
});
