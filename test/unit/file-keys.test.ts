/**
 * file-keys.test.ts - the 0600 session-ticket key file: keys survive a
 * reopen, Postfix's lifetime rules hold, a torn save leaves the other copy,
 * keys that left the list leave the file, and unsafe files are refused.
 * See also: src/tickets/file-keys.ts, src/tickets/key-source.ts
 */

import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  FILE_KEYS_SLOT_SIZE,
  FileTicketKeys,
  fileKeysSlotDecode,
  fileKeysSlotEncode,
  fileTicketKeysOpen,
} from "../../src/tickets/file-keys.js";
import { openTicketKeySource } from "../../src/tickets/key-source.js";
import { MemoryTicketKeys, type TicketKey } from "../../src/tickets/ticket-keys.js";
import { FatalError } from "../../src/log/msg.js";
import { manualClock } from "../../src/util/clock.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";
import { tempDir } from "../helpers/temp-dir.js";

const T = 3600;
const dir = tempDir("tlsmgr-file-keys-");
let serial = 0;
const fresh = () => join(dir, `keys${++serial}`);

const lines = captureMsgsEach();

/** snap - a copy of a key: the store zeroes the bytes of keys it drops (and at close). */
const snap = (k: TicketKey | undefined): TicketKey | undefined =>
  k && { name: Buffer.from(k.name), bits: Buffer.from(k.bits), hmac: Buffer.from(k.hmac), tout: k.tout };

const same = (x: TicketKey | undefined, y: TicketKey | undefined) =>
  x !== undefined && y !== undefined && x.name.equals(y.name) && x.bits.equals(y.bits) && x.hmac.equals(y.hmac) && x.tout === y.tout;

async function open(path: string, clock = manualClock(1_000_000)) {
  const keys = (await openTicketKeySource({ tlsmgr_ticket_key_database: path, main_cf_path: "/etc/postfix/main.cf", clock })) as FileTicketKeys;
  assert.ok(keys instanceof FileTicketKeys);
  return { keys, clock };
}

describe("session ticket key file", () => {
  it("creates a 0600 file and gives back the same keys after a reopen (a restart)", async () => {
    const path = fresh();
    const { keys, clock } = await open(path);
    const k1 = snap(await keys.tktkey(undefined, T))!;
    assert.equal(k1.tout, 1_000_000 + T / 2 - 1);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(path).size, 2 * FILE_KEYS_SLOT_SIZE);
    clock.set(k1.tout);
    const k2 = snap(await keys.tktkey(undefined, T))!;
    assert.ok(!same(k1, k2));
    await keys.close();

    const again = await open(path, manualClock(k1.tout + 10));
    assert.ok(same(await again.keys.tktkey(undefined, T), k2), "current key survives");
    assert.ok(same(await again.keys.tktkey(k1.name, T), k1), "previous key still decrypts");
    assert.ok(same(await again.keys.tktkey(k2.name, T), k2));
    again.clock.set(k1.tout + T / 2);
    assert.equal(await again.keys.tktkey(k1.name, T), undefined, "expired for decryption");
    await again.keys.close();
  });

  it("behaves as Postfix's in-memory keys under the same clock and randomness", async () => {
    let n = 0;
    const random = (len: number) => Buffer.alloc(len, ++n);
    let m = 0;
    const random2 = (len: number) => Buffer.alloc(len, ++m);
    const c1 = manualClock(5_000_000);
    const c2 = manualClock(5_000_000);
    const file = await fileTicketKeysOpen(fresh(), "test", { clock: c1, random });
    const mem = new MemoryTicketKeys({ clock: c2, random: random2 });
    const names: Buffer[] = [];
    for (let step = 0; step < 12; step++) {
      const f = await file.tktkey(undefined, T);
      const g = mem.tktkey(undefined, T);
      assert.ok(same(f, g), `step ${step}`);
      names.push(f!.name);
      for (const name of names) {
        const x = await file.tktkey(name, T);
        const y = mem.tktkey(name, T);
        assert.ok(x === undefined ? y === undefined : same(x, y), `step ${step}: lookup by name`);
      }
      c1.advance(700);
      c2.advance(700);
    }
    await file.close();
  });

  it("makes one key for concurrent requests and saves it before handing it out", async () => {
    const path = fresh();
    const { keys } = await open(path);
    const got = await Promise.all(Array.from({ length: 20 }, () => keys.tktkey(undefined, T)));
    assert.ok(got.every((k) => same(k, got[0])));
    const slot = fileKeysSlotDecode(readFileSync(path).subarray(0, FILE_KEYS_SLOT_SIZE))!;
    assert.equal(slot.keys.length, 1);
    assert.ok(same(slot.keys[0], got[0]));
    await keys.close();
  });

  it("after a torn save, the other copy is used; with no intact copy, it starts empty with a warning", async () => {
    const path = fresh();
    const { keys, clock } = await open(path);
    const k1 = snap(await keys.tktkey(undefined, T))!;
    clock.set(k1.tout);
    const k2 = snap(await keys.tktkey(undefined, T))!;
    await keys.close();
    const whole = readFileSync(path);

    // A crash while writing the first slot of the save that made k2: slot 0 torn, slot 1 holds [k1].
    const torn = Buffer.from(whole);
    torn.fill(0x55, 40, 200);
    fileKeysSlotEncode(1n, [k1]).copy(torn, FILE_KEYS_SLOT_SIZE);
    writeFileSync(path, torn);
    let r = await open(path, manualClock(k1.tout - 5));
    assert.ok(same(await r.keys.tktkey(undefined, T), k1), "the old list");
    await r.keys.close();

    // A crash while writing the second slot: slot 0 holds the new list.
    const torn2 = Buffer.from(whole);
    torn2.fill(0x55, FILE_KEYS_SLOT_SIZE + 40, FILE_KEYS_SLOT_SIZE + 200);
    writeFileSync(path, torn2);
    r = await open(path, manualClock(k1.tout + 5));
    assert.ok(same(await r.keys.tktkey(undefined, T), k2), "the new list");
    assert.ok(same(await r.keys.tktkey(k1.name, T), k1));
    await r.keys.close();
    assert.deepEqual(lines, []);

    writeFileSync(path, Buffer.alloc(100, 7));
    r = await open(path, manualClock(k1.tout + 5));
    assert.equal(await r.keys.tktkey(k1.name, T), undefined);
    assert.ok((await r.keys.tktkey(undefined, T)) !== undefined, "a fresh key");
    await r.keys.close();
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^warning: session ticket key file .*: no intact key list in it: starting with no keys$/);
  });

  it("forgets a key that left the list: its bytes are no longer in the file", async () => {
    const path = fresh();
    const { keys, clock } = await open(path);
    const k1 = snap(await keys.tktkey(undefined, T))!;
    assert.ok(readFileSync(path).includes(k1.bits));
    clock.set(k1.tout);
    await keys.tktkey(undefined, T);
    assert.ok(readFileSync(path).includes(k1.bits), "still the previous key");
    clock.advance(T / 2);
    await keys.tktkey(undefined, T);
    const bytes = readFileSync(path);
    assert.ok(!bytes.includes(k1.bits) && !bytes.includes(k1.hmac), "gone from both copies");
    await keys.close();
  });

  it("refuses a file others can read, a relative path, a directory; says which parameter", async () => {
    const loose = fresh();
    writeFileSync(loose, "", { mode: 0o600 });
    chmodSync(loose, 0o644);
    await assert.rejects(open(loose), (e: unknown) => {
      assert.ok(e instanceof FatalError);
      assert.match(e.message, /^\/etc\/postfix\/main\.cf: parameter tlsmgr_ticket_key_database: .*: mode 0644 lets others read or change the keys: chmod 600 /);
      return true;
    });
    await assert.rejects(open("relative/keys"), /tlsmgr_ticket_key_database: "relative\/keys" is not an absolute pathname/);
    const sub = join(dir, "a-directory");
    mkdirSync(sub, { mode: 0o700 });
    await assert.rejects(open(sub), /cannot open session ticket key file .*: Is a directory|is not a regular file/);
    await assert.rejects(open("memcache:/x"), /unsupported key store type "memcache"/);
  });

  it("rejects damaged slots: wrong magic, bad checksum, too many keys", () => {
    const k: TicketKey = { name: Buffer.alloc(16, 1), bits: Buffer.alloc(32, 2), hmac: Buffer.alloc(32, 3), tout: 42 };
    const slot = fileKeysSlotEncode(7n, [k, k]);
    assert.equal(fileKeysSlotDecode(slot)?.gen, 7n);
    const bad = Buffer.from(slot);
    bad[0] = 0;
    assert.equal(fileKeysSlotDecode(bad), undefined);
    const bad2 = Buffer.from(slot);
    bad2[60]! ^= 1;
    assert.equal(fileKeysSlotDecode(bad2), undefined);
    const bad3 = Buffer.from(slot);
    bad3[16] = 3;
    assert.equal(fileKeysSlotDecode(bad3), undefined);
    assert.equal(fileKeysSlotDecode(slot.subarray(0, 100)), undefined);
  });
});
