/**
 * workload.test.ts - what the generator sends: cache ids shaped like
 * Postfix's, the key space, session sizes, and where lookups and updates go.
 * See also: bench/workload.ts, bench/load.ts (RequestBuilder)
 */
import { test } from "node:test";
import { SESSION_TAG_MARK } from "../wire.js";
import assert from "node:assert/strict";
import { Rng } from "../mix.js";
import { RequestBuilder } from "../load.js";
import { chooseId, makeKeyspace, makeSessionPool, smtpCacheId, smtpdCacheId, hex64 } from "../workload.js";

test("ids look like smtpd's and smtp's cache ids", () => {
  const h = hex64(new Rng(3));
  assert.match(h, /^[0-9A-F]{64}$/);
  assert.match(smtpdCacheId(h), /^[0-9A-F]{64}&s=smtpd&l=\d+$/);
  assert.match(smtpCacheId(77, h), /^smtp&\[example77\.net\]:25&mx\d\.example77\.net&198\.1[89]\.\d+\.\d+&&[0-9A-F]{64}$/);
});

test("a key space alternates smtpd and smtp, has no duplicates and repeats with its seed", () => {
  const ks = makeKeyspace(10_000, 5);
  assert.equal(ks.ids.length, 10_000);
  assert.equal(ks.types.filter((t) => t === "smtpd").length, 5_000);
  assert.equal(new Set(ks.ids).size, 10_000);
  ks.ids.forEach((id, i) => assert.ok(ks.types[i] === "smtpd" ? /&s=smtpd&/.test(id) : id.startsWith("smtp&"), id));
  assert.deepEqual(makeKeyspace(100, 5).ids, ks.ids.slice(0, 100));
  assert.notDeepEqual(makeKeyspace(100, 6).ids, ks.ids.slice(0, 100));
});

test("session values have lengths in the range, spread across it, as base64", () => {
  const pool = makeSessionPool(500, 1024, 4096, 1);
  assert.equal(pool.b64.length, 500);
  pool.b64.forEach((b, i) => assert.equal(Buffer.from(b, "base64").length, pool.sizes[i]));
  assert.ok(Math.min(...pool.sizes) >= 1024 && Math.max(...pool.sizes) <= 4096);
  const mean = pool.sizes.reduce((a, b) => a + b, 0) / pool.sizes.length;
  assert.ok(mean > 2300 && mean < 2820, `mean ${mean}`);
  assert.throws(() => makeSessionPool(1, 10, 5, 1), /bad session size range/);
});

test("chooseId: the share inside the range, and fresh ids outside the key space", () => {
  const ks = makeKeyspace(1000, 1);
  const rng = new Rng(9);
  let inside = 0;
  const n = 20_000;
  for (let i = 0; i < n; i++) {
    const c = chooseId(ks, 200, 400, 0.9, rng);
    if (c.index >= 0) {
      inside++;
      assert.ok(c.index >= 200 && c.index < 400);
      assert.equal(c.id, ks.ids[c.index]);
      assert.equal(c.type, ks.types[c.index]);
    } else {
      assert.ok(!ks.ids.includes(c.id));
    }
  }
  assert.ok(Math.abs(inside / n - 0.9) < 0.01, `inside ${inside / n}`);
  assert.equal(chooseId(ks, 5, 5, 1, rng).index, -1, "an empty range gives fresh ids");
});

test("RequestBuilder follows the mix and sends named tktkey requests at the asked share", () => {
  const ks = makeKeyspace(100, 1);
  const sessions = makeSessionPool(8, 1024, 2048, 1);
  const b = new RequestBuilder({
    socket: "", clients: 1, durationSec: 1, warmupSec: 0, keyspace: ks, sessions, seed: 1,
    mix: { lookup: 50, tktkey: 50 }, tktkeyNamed: 0.25,
  }, 11, Buffer.alloc(16, 1).toString("base64"));
  let lookups = 0;
  let named = 0;
  let anon = 0;
  for (let i = 0; i < 10_000; i++) {
    const [kind, text] = b.next();
    if (kind === "lookup") {
      lookups++;
      assert.match(text, /^request\0lookup\0cache_type\0(smtpd|smtp)\0cache_id\0[^\0]+\0\0$/);
    } else {
      assert.equal(kind, "tktkey");
      if (text === "request\0tktkey\0keyname\0\0\0") anon++;
      else {
        assert.equal(text, `request\0tktkey\0keyname\0${Buffer.alloc(16, 1).toString("base64")}\0\0`);
        named++;
      }
    }
  }
  assert.ok(Math.abs(lookups / 10_000 - 0.5) < 0.02);
  assert.ok(Math.abs(named / (named + anon) - 0.25) < 0.03, `named share ${named / (named + anon)}`);
});

test("a tagged session pool marks every value with its host, an untagged one does not", () => {
  const tagged = makeSessionPool(20, 2, 64, 9, 5);
  for (const b of tagged.b64) assert.deepEqual([...Buffer.from(b, "base64").subarray(0, 2)], [SESSION_TAG_MARK, 5]);
  const plain = makeSessionPool(20, 2, 64, 9);
  assert.ok(plain.b64.some((b) => Buffer.from(b, "base64")[0] !== SESSION_TAG_MARK));
  assert.throws(() => makeSessionPool(1, 1, 4, 1, 0), /2 bytes or more/);
});
