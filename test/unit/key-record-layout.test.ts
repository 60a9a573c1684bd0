/**
 * key-record-layout.test.ts - the ticket key record (keybuf) is as long as the
 * client's TLS_TICKET_KEY on its platform: 80 bytes then a native time_t.
 * See also: src/tickets/key-record-layout.ts, native/posix.c (ticketKeyLayout)
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { nativeAvailable, nativeTicketKeyLayout } from "../../src/native/posix.js";
import { archTicketKeyLayout, layoutForTimeSize, ticketKeyLayout } from "../../src/tickets/key-record-layout.js";
import { parseTicketKeyRecord, ticketKeyRecord } from "../../src/tickets/ticket-keys.js";

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

test("this platform: the addon's sizeof(TLS_TICKET_KEY) when it is built, and the arch table agrees", () => {
  const layout = ticketKeyLayout();
  const table = archTicketKeyLayout(process.arch);
  if (nativeAvailable()) {
    const native = nativeTicketKeyLayout();
    assert.ok(native !== undefined, "the addon has ticketKeyLayout");
    assert.equal(layout.source, "addon");
    assert.deepEqual({ size: layout.size, timeSize: layout.timeSize, toutOffset: layout.toutOffset }, native);
  } else {
    assert.equal(layout.source, "arch");
  }
  // Node's own ABI: the table and the compiler agree here (x64, arm64: 88 bytes)
  assert.equal(layout.size, table.size);
  assert.equal(layout.toutOffset, 80);
  if (["x64", "arm64", "ppc64", "s390x", "riscv64", "loong64"].includes(process.arch)) assert.equal(layout.size, 88);
});

test("the arch table: 64-bit ABIs have an 8-byte time_t (88), 32-bit ones a 4-byte one (84)", () => {
  for (const arch of ["x64", "arm64", "ppc64", "s390x", "riscv64", "loong64", "mips64el"])
    assert.deepEqual(archTicketKeyLayout(arch), { size: 88, timeSize: 8, toutOffset: 80, source: "arch" }, arch);
  for (const arch of ["ia32", "arm", "mips", "mipsel", "ppc", "s390"])
    assert.deepEqual(archTicketKeyLayout(arch), { size: 84, timeSize: 4, toutOffset: 80, source: "arch" }, arch);
});

test("a record with a 32-bit time_t: 84 bytes, tout a native-endian int32 at 80, read back the same", () => {
  const key = { name: Buffer.alloc(16, 7), bits: Buffer.alloc(32, 8), hmac: Buffer.alloc(32, 9), tout: 1_900_000_000 };
  const layout = layoutForTimeSize(4, "arch");
  const rec = ticketKeyRecord(key, layout);
  assert.equal(rec.length, 84);
  assert.deepEqual(rec.subarray(0, 16), key.name);
  assert.deepEqual(rec.subarray(48, 80), key.hmac);
  assert.equal(LE ? rec.readInt32LE(80) : rec.readInt32BE(80), 1_900_000_000);
  assert.deepEqual(parseTicketKeyRecord(rec, layout), key);
  assert.throws(() => parseTicketKeyRecord(Buffer.alloc(88), layout), /ticket key record length 88/);
});

test("the default record is the platform's", () => {
  const key = { name: Buffer.alloc(16, 1), bits: Buffer.alloc(32, 2), hmac: Buffer.alloc(32, 3), tout: 12345 };
  const rec = ticketKeyRecord(key);
  assert.equal(rec.length, ticketKeyLayout().size);
  assert.deepEqual(parseTicketKeyRecord(rec), key);
});
