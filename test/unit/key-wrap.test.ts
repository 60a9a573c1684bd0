/**
 * key-wrap.test.ts - sealing ticket keys: round trip, tamper and misuse
 * detection, the secret file's checks, and keygen.
 * See also: src/tickets/key-wrap.ts, src/tools/keygen.ts
 */

import assert from "node:assert/strict";
import { chmodSync, chownSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  KEY_WRAP_OVERHEAD,
  KEY_WRAP_SECRET_LEN,
  KeyWrapper,
  keyWrapFileRead,
  keyWrapSecretParse,
  keyWrapSecretText,
} from "../../src/tickets/key-wrap.js";
import { keygen } from "../../src/tools/keygen.js";
import { withEffectiveIds } from "../../src/master/eugid.js";
import { FatalError } from "../../src/log/msg.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";
import { tempDir } from "../helpers/temp-dir.js";

const dir = tempDir("tlsmgr-keywrap-");

const lines = captureMsgsEach();

const secretA = Buffer.alloc(KEY_WRAP_SECRET_LEN, 0xa1);
const secretB = Buffer.alloc(KEY_WRAP_SECRET_LEN, 0xb2);
const plain = Buffer.from(Array.from({ length: 88 }, (_, i) => i));
const aad = Buffer.from("tlsmgr-ts tktkey 1799:944444");

describe("key wrapping", () => {
  it("round-trips, and the blob does not contain the plaintext", () => {
    const w = new KeyWrapper(secretA);
    const blob = w.wrap(plain, aad);
    assert.equal(blob.length, plain.length + KEY_WRAP_OVERHEAD);
    assert.equal(blob[0], 1);
    assert.equal(blob.indexOf(plain.subarray(16, 48)), -1, "AES key bytes not in the blob");
    assert.deepEqual(w.unwrap(blob, aad), plain);
    assert.deepEqual(new KeyWrapper(Buffer.from(secretA)).unwrap(blob, aad), plain, "same secret, other wrapper");
    assert.notDeepEqual(w.wrap(plain, aad), blob, "fresh IV every time");
  });

  it("refuses another secret, another slot, altered or short blobs", () => {
    const w = new KeyWrapper(secretA);
    const blob = w.wrap(plain, aad);
    assert.equal(new KeyWrapper(secretB).unwrap(blob, aad), undefined, "other secret");
    assert.equal(w.unwrap(blob, Buffer.from("tlsmgr-ts tktkey 1799:944445")), undefined, "other slot");
    for (const at of [0, 1, 13, 40, blob.length - 1]) {
      const bad = Buffer.from(blob);
      bad[at]! ^= 1;
      assert.equal(w.unwrap(bad, aad), undefined, `bit flipped at ${at}`);
    }
    assert.equal(w.unwrap(blob.subarray(0, KEY_WRAP_OVERHEAD - 1), aad), undefined);
    assert.equal(w.unwrap(Buffer.alloc(0), aad), undefined);
  });

  it("parses the secret file text", () => {
    assert.deepEqual(keyWrapSecretParse(keyWrapSecretText(secretA)), secretA);
    assert.match(String(keyWrapSecretParse("# only a comment\n")), /no secret/);
    assert.match(String(keyWrapSecretParse("AAAA\n")), /3 bytes, expected 32/);
    assert.match(String(keyWrapSecretParse("not base64 at all!\n")), /not base64/);
    assert.match(String(keyWrapSecretParse(`${secretA.toString("base64")}\n${secretB.toString("base64")}\n`)), /more than one/);
  });
});

describe("key_wrap_file and keygen", () => {
  it("keygen makes a 0600 file with a fresh 32-byte secret that keyWrapFileRead accepts", () => {
    const f1 = join(dir, "wrap1");
    const f2 = join(dir, "wrap2");
    keygen(f1);
    keygen(f2);
    assert.equal(statSync(f1).mode & 0o777, 0o600);
    const s1 = keyWrapSecretParse(readFileSync(f1, "utf8"));
    const s2 = keyWrapSecretParse(readFileSync(f2, "utf8"));
    assert.ok(Buffer.isBuffer(s1) && Buffer.isBuffer(s2));
    assert.notDeepEqual(s1, s2);
    const w = keyWrapFileRead(f1, "/etc/postfix/tls-redis.cf");
    assert.deepEqual(new KeyWrapper(s1 as Buffer).unwrap(w.wrap(plain, aad), aad), plain);
  });

  it("keygen never replaces an existing file", () => {
    const f = join(dir, "exists");
    writeFileSync(f, "precious\n", { mode: 0o600 });
    assert.throws(() => keygen(f), (e: unknown) => e instanceof FatalError && /exists: not replacing/.test(e.message));
    assert.equal(readFileSync(f, "utf8"), "precious\n");
    assert.throws(() => keygen(join(dir, "no", "such", "dir")), /cannot create .*No such file or directory/);
  });

  it("refuses a secret file others can read, a missing one, a directory, a malformed one", () => {
    const f = join(dir, "loose");
    keygen(f);
    chmodSync(f, 0o640);
    assert.throws(() => keyWrapFileRead(f, "T.cf"), /T\.cf: key_wrap_file .*loose: mode 0640 lets others read or change it: chmod 600/);
    assert.throws(() => keyWrapFileRead(join(dir, "none"), "T.cf"), /key_wrap_file .*none: cannot read: No such file or directory/);
    assert.throws(() => keyWrapFileRead(dir, "T.cf"), /not a regular file/);
    const bad = join(dir, "bad");
    writeFileSync(bad, "xyz\n", { mode: 0o600 });
    assert.throws(() => keyWrapFileRead(bad, "T.cf"), /the secret is 2 bytes, expected 32 \(make one with: tlsmgr-postfix keygen FILE\)/);
    assert.ok(lines.every((l) => l.startsWith("fatal: ")));
    assert.ok(lines.every((l) => !l.includes(readFileSync(f, "utf8").split("\n")[2]!)), "secret never logged");
  });

  it("refuses a symbolic link to a secret file, and one owned by another user; reads it as root while switched to mail_owner", async () => {
    const f = join(dir, "good");
    keygen(f);
    const link = join(dir, "good-link");
    symlinkSync(f, link);
    assert.throws(() => keyWrapFileRead(link, "T.cf"), /key_wrap_file .*good-link: is a symbolic link/);
    if (process.getuid?.() !== 0) return; // the rest needs root (chown, effective ids)
    // Read while start-up work runs with mail_owner's ids (caches): still root's file, read as root.
    await withEffectiveIds({ uid: 65534, gid: 65534 }, async () => {
      assert.ok(keyWrapFileRead(f, "T.cf"));
    });
    chownSync(f, 65534, 65534);
    assert.throws(() => keyWrapFileRead(f, "T.cf"), /key_wrap_file .*good: owned by uid 65534, not by root/);
  });
});
