/**
 * ticket-key-file-trust.test.ts - a ticket key file is used only when
 * nobody but its rightful owner could have put it there (issue 13, finding
 * 5), against the real daemon started as root: a file planted by nobody,
 * a file in a directory of nobody's or one that others may write, a link
 * (symbolic or hard) are refused (an error line; keys from memory, as
 * Postfix's, never the planted ones), the target untouched (mail_owner is
 * postfix there, nobody another local user); in mail_owner's
 * data_directory, a key planted by mail_owner with a deadline in 2100 is
 * dropped with a warning and never handed out.
 * See also: src/tickets/file-keys.ts (the rule), docs/security.md
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, linkSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { describe, it } from "node:test";
import { startDaemon, tlsmgrTktkey } from "../helpers/daemon.js";
import { mainCfLines, NOBODY, ROOT_SKIP, runAsNobody } from "../helpers/second-user.js";
import { tempDir } from "../helpers/temp-dir.js";
import { fileKeysSlotEncode } from "../../src/tickets/file-keys.js";
import type { TicketKey } from "../../src/tickets/ticket-keys.js";

/** postfix's ids: mail_owner here, so that nobody is another local user. */
const POSTFIX = ROOT_SKIP ? { uid: -1, gid: -1 } : {
  uid: Number(execFileSync("/usr/bin/id", ["-u", "postfix"], { encoding: "utf8" })),
  gid: Number(execFileSync("/usr/bin/id", ["-g", "postfix"], { encoding: "utf8" })),
};

/** home - a configuration dir for a daemon (mail_owner postfix) whose key file is keyFile. */
function home(root: string, name: string, keyFile: string): string {
  const h = join(root, name);
  mkdirSync(join(h, "data"), { recursive: true });
  chownSync(join(h, "data"), POSTFIX.uid, POSTFIX.gid);
  writeFileSync(join(h, "main.cf"), mainCfLines(h, [`tlsmgr_ticket_key_database = ${keyFile}`]).replace("mail_owner = nobody", "mail_owner = postfix"));
  return h;
}

/** keyFileBytes - a key file holding one key of the attacker's. */
function keyFileBytes(key: TicketKey): Buffer {
  const slot = fileKeysSlotEncode(1n, [key]);
  return Buffer.concat([slot, slot]);
}

const attackerKey = (): TicketKey => ({ name: Buffer.from("ATTACKER-KEYNAME"), bits: randomBytes(32), hmac: randomBytes(32), tout: 4_102_444_800 });

/**
 * refused - the daemon does not use the key file: it says why (an error
 * line), serves keys from memory (not the planted one), and leaves the file
 * as it was. Its stderr.
 */
async function refused(configDir: string, socket: string, keyFile: string): Promise<string> {
  let before: Buffer | undefined;
  try {
    before = readFileSync(keyFile);
  } catch {
    /* a link that leads nowhere readable */
  }
  const d = await startDaemon({ configDir, socket });
  try {
    assert.match(d.stderr(), /warning: .*tlsmgr_ticket_key_database: .* is unavailable: session ticket keys are kept in memory/);
    const cur = await tlsmgrTktkey(d.socket);
    assert.equal(cur.status, 0);
    assert.notDeepEqual(cur.keybuf.subarray(0, 16), Buffer.from("ATTACKER-KEYNAME"), "not the planted key");
    return d.stderr();
  } finally {
    await d.stop();
    if (before !== undefined) assert.deepEqual(readFileSync(keyFile), before, `${keyFile} left as it was`);
  }
}

describe("who may own the ticket key file (finding 5)", { skip: ROOT_SKIP }, () => {
  const root = tempDir("tlsmgr-keytrust-");
  chmodSync(root, 0o755);

  it("refuses a key file nobody planted in a directory of its own, and one of nobody's in root's directory", async () => {
    const nobodys = join(root, "nobodys");
    mkdirSync(nobodys, { mode: 0o700 });
    chownSync(nobodys, NOBODY.uid, NOBODY.gid);
    const planted = join(nobodys, "tls-keys");
    const r = runAsNobody(`import { writeFileSync } from "node:fs"; writeFileSync(${JSON.stringify(planted)}, Buffer.from(${JSON.stringify(keyFileBytes(attackerKey()).toString("base64"))}, "base64"), { mode: 0o600 });`);
    assert.equal(r.status, 0, r.stderr);
    const h1 = home(root, "h1", planted);
    assert.match(await refused(h1, join(h1, "s", "tlsmgr"), planted), /error: .*tls-keys: .*directory .*nobodys is owned by uid 65534, not by root or mail_owner/);

    const rootDir = join(root, "rootdir");
    mkdirSync(rootDir, { mode: 0o700 });
    const theirs = join(rootDir, "tls-keys");
    writeFileSync(theirs, keyFileBytes(attackerKey()), { mode: 0o600 });
    chownSync(theirs, NOBODY.uid, NOBODY.gid);
    const h2 = home(root, "h2", theirs);
    assert.match(await refused(h2, join(h2, "s", "tlsmgr"), theirs), /error: .*tls-keys: owned by uid 65534, not by uid 0/);
    assert.equal(statSync(theirs).uid, NOBODY.uid, "left as it was");
  });

  it("refuses a key file in a directory others may write, a symbolic link, and a file with another hard link", async () => {
    const open = join(root, "open");
    mkdirSync(open);
    chmodSync(open, 0o1777);
    const f = join(open, "tls-keys");
    writeFileSync(f, "", { mode: 0o600 });
    const h3 = home(root, "h3", f);
    assert.match(await refused(h3, join(h3, "s", "tlsmgr"), f), /error: .*tls-keys: .*directory .*open is mode 1777/);

    const safe = join(root, "safe");
    mkdirSync(safe, { mode: 0o700 });
    const target = join(safe, "real-keys");
    const content = keyFileBytes(attackerKey());
    writeFileSync(target, content, { mode: 0o600 });
    symlinkSync(target, join(safe, "link-keys"));
    const h4 = home(root, "h4", join(safe, "link-keys"));
    assert.match(await refused(h4, join(h4, "s", "tlsmgr"), join(safe, "link-keys")), /error: .*link-keys: .*symbolic link/);
    linkSync(target, join(safe, "hard-keys"));
    const h5 = home(root, "h5", join(safe, "hard-keys"));
    assert.match(await refused(h5, join(h5, "s", "tlsmgr"), join(safe, "hard-keys")), /error: .*hard-keys: .*2 hard links/);
    assert.deepEqual(readFileSync(target), content, "untouched");
  });

  it("drops, with a warning, a key whose deadline is beyond now + T/2 (one mail_owner planted in its data_directory)", async () => {
    const h = join(root, "planted");
    mkdirSync(join(h, "data"), { recursive: true });
    chownSync(join(h, "data"), NOBODY.uid, NOBODY.gid);
    const keyFile = join(h, "data", "tls-keys");
    const key = attackerKey();
    const r = runAsNobody(`import { writeFileSync } from "node:fs"; writeFileSync(${JSON.stringify(keyFile)}, Buffer.from(${JSON.stringify(keyFileBytes(key).toString("base64"))}, "base64"), { mode: 0o600 });`);
    assert.equal(r.status, 0, r.stderr);
    writeFileSync(join(h, "main.cf"), mainCfLines(h, [`tlsmgr_ticket_key_database = ${keyFile}`]));
    const d = await startDaemon({ configDir: h, socket: join(h, "s", "tlsmgr") });
    try {
      const cur = await tlsmgrTktkey(d.socket);
      assert.equal(cur.status, 0);
      assert.notDeepEqual(cur.keybuf.subarray(0, 16), key.name, "the planted key is not the current key");
      assert.ok(cur.keybuf.indexOf(key.bits) < 0);
      assert.equal((await tlsmgrTktkey(d.socket, key.name)).status, -1, "nor found by its name");
      assert.match(d.stderr(), /warning: .*tls-keys: dropped a session ticket key whose deadline .* is beyond now \+ 1800s/);
    } finally {
      await d.stop();
    }
    assert.equal(readFileSync(keyFile).indexOf(key.bits), -1, "gone from the file");
    assert.equal(statSync(keyFile).uid, NOBODY.uid, "mail_owner's file in mail_owner's directory");
  });
});
