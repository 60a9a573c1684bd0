/**
 * ticket-keys.test.ts - session-ticket key lifetime: T/2 schedule, current
 * and previous key, the 88-byte record, under a controlled clock.
 * See also: src/tickets/ticket-keys.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryTicketKeys, parseTicketKeyRecord, ticketKeyRecord } from "../../src/tickets/ticket-keys.js";
import { layoutForTimeSize } from "../../src/tickets/key-record-layout.js";
import { manualClock } from "../../src/util/clock.js";

const T = 3600;

test("a new key encrypts until now + T/2 - 1 and is returned again until then", () => {
  const clock = manualClock(1_000_000);
  const keys = new MemoryTicketKeys({ clock });
  const k1 = keys.tktkey(undefined, T)!;
  assert.equal(k1.tout, 1_000_000 + T / 2 - 1);
  assert.equal(k1.name.length, 16);
  assert.equal(k1.bits.length, 32);
  assert.equal(k1.hmac.length, 32);
  clock.advance(T / 2 - 2);
  assert.equal(keys.tktkey(undefined, T), k1, "still current one second before tout");
  clock.advance(1);
  const k2 = keys.tktkey(undefined, T)!;
  assert.notEqual(k2, k1, "a new key once tout is reached");
  assert.ok(!k2.name.equals(k1.name));
});

test("a key decrypts until tout + T/2, by name, and only the two newest keys are kept", () => {
  const clock = manualClock(2_000_000);
  const keys = new MemoryTicketKeys({ clock });
  const k1 = keys.tktkey(undefined, T)!;
  clock.advance(T / 2);
  const k2 = keys.tktkey(undefined, T)!;
  assert.equal(keys.tktkey(k1.name, T), k1, "previous key still decrypts");
  assert.equal(keys.tktkey(k2.name, T), k2);
  clock.set(k1.tout + T / 2 - 1);
  assert.equal(keys.tktkey(k1.name, T), k1, "last second of decryption");
  clock.set(k1.tout + T / 2);
  assert.equal(keys.tktkey(k1.name, T), undefined, "expired for decryption");
  clock.set(k2.tout);
  const k3 = keys.tktkey(undefined, T)!;
  assert.equal(keys.tktkey(k1.name, T), undefined, "third key pushed the first out");
  assert.equal(keys.tktkey(k2.name, T), k2);
  assert.equal(keys.tktkey(k3.name, T), k3);
  assert.equal(keys.tktkey(Buffer.alloc(16, 9), T), undefined, "unknown name");
});

test("odd timeouts halve as C integer division", () => {
  const clock = manualClock(100);
  const keys = new MemoryTicketKeys({ clock });
  assert.equal(keys.tktkey(undefined, 121)!.tout, 100 + 60 - 1);
});

test("the record with a 64-bit time_t: 88 bytes, name, AES key, HMAC key, native-endian 64-bit tout", () => {
  const key = {
    name: Buffer.alloc(16, 1),
    bits: Buffer.alloc(32, 2),
    hmac: Buffer.alloc(32, 3),
    tout: 0x1_2345_6789,
  };
  const layout = layoutForTimeSize(8, "arch");
  const rec = ticketKeyRecord(key, layout);
  assert.equal(rec.length, 88);
  assert.deepEqual(rec.subarray(0, 16), key.name);
  assert.deepEqual(rec.subarray(16, 48), key.bits);
  assert.deepEqual(rec.subarray(48, 80), key.hmac);
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  assert.equal(le ? rec.readBigInt64LE(80) : rec.readBigInt64BE(80), 0x1_2345_6789n);
  assert.deepEqual(parseTicketKeyRecord(rec, layout), key);
});
