/**
 * ticket-key-file.test.ts - the daemon with tlsmgr_ticket_key_database = a
 * file: after kill -9 and a restart, it hands out the same current key and
 * still finds the previous one by name (so smtpd processes started before
 * the crash keep resuming sessions).
 * See also: src/tickets/file-keys.ts, test/unit/file-keys.test.ts
 */

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { startDaemon, tlsmgrTktkey } from "../helpers/daemon.js";

let dir = "";
let keyFile = "";

before(() => {
  dir = mkdtempSync(join(tmpdir(), "tlsmgr-keyfile-"));
  mkdirSync(join(dir, "data"), { mode: 0o700 });
  keyFile = join(dir, "data", "tlsmgr_ticket_keys");
  writeFileSync(
    join(dir, "main.cf"),
    [
      `queue_directory = ${dir}/queue`,
      `data_directory = ${dir}/data`,
      `mail_owner = ${process.getuid?.() === 0 ? "root" : userInfo().username}`,
      `smtpd_tls_session_cache_database = lmdb:\${data_directory}/smtpd_scache`,
      `tlsmgr_ticket_key_database = ${keyFile}`,
      `tls_random_exchange_name = \${data_directory}/prng_exch`,
      "",
    ].join("\n"),
  );
});

after(() => rmSync(dir, { recursive: true, force: true }));

it("keys survive kill -9 of the daemon", async () => {
  const socket = join(dir, "tlsmgr.sock");
  const first = await startDaemon({ configDir: dir, socket });
  let k1;
  try {
    k1 = await tlsmgrTktkey(socket);
    assert.equal(k1.status, 0);
    assert.equal(k1.keybuf.length, 88);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  } finally {
    first.proc.kill("SIGKILL");
    await new Promise((r) => first.proc.once("exit", r));
  }
  rmSync(socket, { force: true });
  const second = await startDaemon({ configDir: dir, socket });
  try {
    const again = await tlsmgrTktkey(socket);
    assert.equal(again.status, 0);
    assert.deepEqual(again.keybuf, k1.keybuf, "the same current key after the restart");
    const byName = await tlsmgrTktkey(socket, k1.keybuf.subarray(0, 16));
    assert.deepEqual(byName.keybuf, k1.keybuf, "found by name");
  } finally {
    await second.stop();
  }
});
