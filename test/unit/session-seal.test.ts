/**
 * session-seal.test.ts - sealed session cache values (cache/session-seal.ts):
 *                        they open only for the cache, key prefix and id
 *                        they were sealed for, under the same key_wrap_file,
 *                        and never as a ticket-key blob; the warnings about
 *                        Redis servers on other hosts (redis/exposure.ts).
 * See also: test/integration/redis-sealed.test.ts (the same against the daemon)
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { SESSION_SEAL_OVERHEAD, SessionSeal } from "../../src/cache/session-seal.js";
import { KeyWrapper } from "../../src/tickets/key-wrap.js";
import { redisExposureWarnings, redisServerIsLocal } from "../../src/redis/exposure.js";
import { redisTableParse } from "../../src/redis/table.js";

const secretA = randomBytes(32);
const secretB = randomBytes(32);
const value = Buffer.concat([Buffer.from([0, 0, 0, 0, 0x65, 0x53, 0xf1, 0]), Buffer.from("session bytes: master secret")]);

describe("session seal", () => {
  it("opens what it sealed, with a fresh nonce each time and no plaintext in the sealed value", () => {
    const s = new SessionSeal(secretA, "smtp", "mx:smtp:");
    const a = s.seal("id", value);
    const b = s.seal("id", value);
    assert.equal(a.length, value.length + SESSION_SEAL_OVERHEAD);
    assert.notDeepEqual(a, b, "fresh nonce");
    assert.deepEqual(s.open("id", a), value);
    assert.deepEqual(new SessionSeal(Buffer.from(secretA), "smtp", "mx:smtp:").open("id", b), value, "another host, same file");
    assert.equal(a.indexOf(value.subarray(8, 24)), -1);
  });

  it("does not open for another id, cache type, key prefix or secret, nor when altered or short", () => {
    const s = new SessionSeal(secretA, "smtp", "mx:smtp:");
    const sealed = s.seal("smtp:[a.example]:25", value);
    assert.equal(s.open("smtp:[b.example]:25", sealed), undefined, "other id");
    assert.equal(new SessionSeal(secretA, "smtpd", "mx:smtp:").open("smtp:[a.example]:25", sealed), undefined, "other cache");
    assert.equal(new SessionSeal(secretA, "smtp", "mx:other:").open("smtp:[a.example]:25", sealed), undefined, "other prefix");
    assert.equal(new SessionSeal(secretB, "smtp", "mx:smtp:").open("smtp:[a.example]:25", sealed), undefined, "other secret");
    // Ids and prefixes cannot shift into each other through the separator.
    const t = new SessionSeal(secretA, "smtp", "a");
    assert.equal(new SessionSeal(secretA, "smtp", "a\0b").open("c", t.seal("b\0c", value)), undefined);
    for (const at of [0, 1, 12, 20, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[at]! ^= 0x40;
      assert.equal(s.open("smtp:[a.example]:25", bad), undefined, `flipped at ${at}`);
    }
    assert.equal(s.open("smtp:[a.example]:25", sealed.subarray(0, SESSION_SEAL_OVERHEAD - 1)), undefined);
    assert.equal(s.open("smtp:[a.example]:25", value), undefined, "an unsealed value");
  });

  it("uses a key of its own: a ticket-key blob under the same secret does not open, nor the reverse", () => {
    const s = new SessionSeal(secretA, "smtpd", "k:");
    const w = new KeyWrapper(secretA);
    const aad = Buffer.from("tlsmgr-ts session v1 smtpd k: id");
    assert.equal(s.open("id", w.wrap(value, aad)), undefined);
    assert.equal(w.unwrap(s.seal("id", value), aad), undefined);
  });
});

describe("redis servers on other hosts", () => {
  const table = (text: string) => redisTableParse(`${text}\n`, "/etc/postfix/t.cf");

  it("counts UNIX-domain sockets, localhost, 127/8 and ::1 as this host", () => {
    for (const s of ["unix:/run/redis.sock", "localhost:6379", "127.0.0.1:6379", "127.1.2.3", "[::1]:6379", "[::ffff:127.0.0.1]:1"])
      assert.deepEqual(redisExposureWarnings("redis:/t", table(`servers = ${s}`)), [], s);
    assert.equal(redisServerIsLocal({ host: "0:0:0:0:0:0:0:1", port: 1 }), true);
    for (const host of ["10.0.0.5", "redis.example", "::2", "128.0.0.1", "::ffff:10.0.0.1"])
      assert.equal(redisServerIsLocal({ host, port: 6379 }), false, host);
  });

  it("warns about a server on another host without TLS, and without AUTH", () => {
    const w = redisExposureWarnings("redis:/etc/postfix/t.cf", table("servers = 127.0.0.1:1 10.0.0.5:6379"));
    assert.equal(w.length, 2, w.join("\n"));
    assert.match(w[0]!, /^redis:\/etc\/postfix\/t\.cf: server 10\.0\.0\.5:6379 is on another host and reached without TLS \(tls = no\)/);
    assert.match(w[1]!, /server 10\.0\.0\.5:6379 is on another host and reached without AUTH \(no password_file\)/);
    assert.deepEqual(redisExposureWarnings("r", { ...table("servers = [2001:db8::1]:6379"), tls: {}, password: "x" }), []);
    assert.equal(redisExposureWarnings("r", { ...table("servers = redis.example"), password: "x" }).length, 1);
  });
});
