/**
 * drbg.test.ts - HMAC_DRBG (SHA-256) behaviour beyond the vectors: seeding
 *                rules, prediction resistance, the reseed interval, limits.
 * See also: src/prng/drbg.ts, test/unit/drbg-vectors.test.ts
 */
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { test } from "node:test";
import { DRBG_MAX_REQUEST_BYTES, DrbgError, HmacDrbg } from "../../src/prng/drbg.js";

const hex = (s: string) => Buffer.from(s, "hex");

// CAVP HMAC_DRBG SHA-256 no_reseed, COUNT 0 (the first case of the NIST file; also in hmac-drbg@1.0.1).
const CAVP0 = {
  entropy: hex("ca851911349384bffe89de1cbdc46e6831e44d34a4fb935ee285dd14b71a7488"),
  nonce: hex("659ba96c601dc69fc902940805ec0ca8"),
  expected:
    "e528e9abf2dece54d47c7e75e5fe302149f817ea9fb4bee6f4199697d04d5b89d54fbb978a15b5c443c9ec21036d2460b6f73ebad0dc2aba6e624abf07745bc107694bb7547bb0995f70de25d6b29e2d3011bb19d27676c07162c8b5ccde0668961df86803482cb37ed6d5c0bb8d50cf1f50d476aa0458bdaba806f48be9dcb8",
};

function expectCode(fn: () => unknown, code: DrbgError["code"]): void {
  assert.throws(fn, (err: unknown) => err instanceof DrbgError && err.code === code);
}

test("a known answer through the public API (CAVP no_reseed COUNT 0)", () => {
  const d = new HmacDrbg();
  d.instantiate(CAVP0.entropy, CAVP0.nonce);
  d.generate(128);
  assert.equal(d.generate(128).toString("hex"), CAVP0.expected);
});

test("generate and reseed refuse an uninstantiated DRBG, and after uninstantiate", () => {
  const d = new HmacDrbg({ getEntropy: (n) => randomBytes(n) });
  expectCode(() => d.generate(32), "DRBG_UNINSTANTIATED");
  expectCode(() => d.reseed(randomBytes(32)), "DRBG_UNINSTANTIATED");
  d.instantiate();
  assert.equal(d.generate(32).length, 32);
  d.uninstantiate();
  assert.equal(d.instantiated, false);
  expectCode(() => d.generate(32), "DRBG_UNINSTANTIATED");
});

test("instantiate without entropy and without a source fails; short entropy or nonce is refused", () => {
  expectCode(() => new HmacDrbg().instantiate(), "DRBG_NO_ENTROPY");
  expectCode(() => new HmacDrbg().instantiate(randomBytes(31), randomBytes(16)), "DRBG_BAD_INPUT");
  expectCode(() => new HmacDrbg().instantiate(randomBytes(32), randomBytes(15)), "DRBG_BAD_INPUT");
  const d = new HmacDrbg();
  d.instantiate(randomBytes(32), randomBytes(16));
  expectCode(() => d.reseed(randomBytes(16)), "DRBG_BAD_INPUT");
});

test("a source returning too little is refused", () => {
  const d = new HmacDrbg({ getEntropy: () => Buffer.alloc(8) });
  expectCode(() => d.instantiate(), "DRBG_NO_ENTROPY");
});

test("the reseed interval forces a reseed from the source, with the additional input", () => {
  const calls: number[] = [];
  const d = new HmacDrbg({
    reseedInterval: 2,
    getEntropy: (n) => {
      calls.push(n);
      return Buffer.alloc(n, 7);
    },
  });
  d.instantiate(CAVP0.entropy, CAVP0.nonce);
  assert.equal(d.reseedCounter, 1);
  d.generate(16);
  d.generate(16);
  assert.deepEqual(calls, [], "no reseed within the interval");
  assert.equal(d.reseedCounter, 3);
  // The third request exceeds the interval: reseed(entropy, additional), then generate without it.
  const add = Buffer.from("additional");
  const out = d.generate(16, add);
  assert.deepEqual(calls, [32]);
  assert.equal(d.reseedCounter, 2);

  // The same steps done by hand give the same output.
  const twin = new HmacDrbg();
  twin.instantiate(CAVP0.entropy, CAVP0.nonce);
  twin.generate(16);
  twin.generate(16);
  twin.reseed(Buffer.alloc(32, 7), add);
  assert.deepEqual(twin.generate(16), out);
});

test("an exhausted DRBG whose source fails gives no output at all", () => {
  let fail = false;
  const d = new HmacDrbg({
    reseedInterval: 1,
    getEntropy: (n) => {
      if (fail) throw new Error("source down");
      return randomBytes(n);
    },
  });
  d.instantiate();
  d.generate(8);
  fail = true;
  assert.throws(() => d.generate(8), /source down/);
  assert.throws(() => d.generate(8), /source down/, "still no output on the next call");
  fail = false;
  assert.equal(d.generate(8).length, 8);
});

test("prediction resistance reseeds before every generate", () => {
  let n = 0;
  const d = new HmacDrbg({
    getEntropy: (len) => {
      n += 1;
      return randomBytes(len);
    },
  });
  d.instantiate();
  const afterInstantiate = n;
  d.generate(32, Buffer.alloc(0), true);
  d.generate(32, Buffer.from("x"), true);
  assert.equal(n - afterInstantiate, 2);
  d.generate(32);
  assert.equal(n - afterInstantiate, 2, "no reseed without prediction resistance");
});

test("personalization and additional input change the output", () => {
  const make = (perso?: Buffer) => {
    const d = new HmacDrbg();
    d.instantiate(CAVP0.entropy, CAVP0.nonce, perso);
    return d;
  };
  const plain = make().generate(32);
  assert.notDeepEqual(make(Buffer.from("p")).generate(32), plain);
  assert.notDeepEqual(make().generate(32, Buffer.from("a")), plain);
  assert.deepEqual(make().generate(32), plain, "deterministic for equal inputs");
});

test("the update function is SP 800-90A 10.1.2.2 (first block by hand)", () => {
  // instantiate with empty nonce/perso: K = HMAC(0^32, 1^32 || 00 || seed), V = HMAC(K, V), ...
  const seed = Buffer.alloc(32, 0xab);
  let K = Buffer.alloc(32, 0);
  let V = Buffer.alloc(32, 1);
  K = createHmac("sha256", K).update(Buffer.concat([V, Buffer.from([0]), seed])).digest();
  V = createHmac("sha256", K).update(V).digest();
  K = createHmac("sha256", K).update(Buffer.concat([V, Buffer.from([1]), seed])).digest();
  V = createHmac("sha256", K).update(V).digest();
  const first = createHmac("sha256", K).update(V).digest();
  const d = new HmacDrbg({ minNonceBytes: 0 });
  d.instantiate(seed, Buffer.alloc(0));
  assert.deepEqual(d.generate(32), first);
});

test("request size limits", () => {
  const d = new HmacDrbg();
  d.instantiate(randomBytes(32), randomBytes(16));
  assert.equal(d.generate(0).length, 0);
  assert.equal(d.generate(DRBG_MAX_REQUEST_BYTES).length, DRBG_MAX_REQUEST_BYTES);
  expectCode(() => d.generate(DRBG_MAX_REQUEST_BYTES + 1), "DRBG_BAD_INPUT");
  expectCode(() => d.generate(-1), "DRBG_BAD_INPUT");
  expectCode(() => d.generate(1.5), "DRBG_BAD_INPUT");
  assert.throws(() => new HmacDrbg({ reseedInterval: 0 }), DrbgError);
});
