/**
 * effective-ids.test.ts - while tlsmgr works with mail_owner's effective
 * ids at start-up, it has mail_owner's access and no more (issue 13,
 * finding 4): root's supplementary groups are dropped for the switch and
 * restored after (Postfix's set_eugid), and a symbolic link planted as the
 * PRNG exchange file or the instance lock file in the mail_owner-writable
 * data_directory is not followed, against the real daemon started as root
 * with mail_owner nobody.
 * See also: src/master/eugid.ts, src/prng/exchange.ts, docs/security.md
 */

import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdirSync, openSync, closeSync, readFileSync, statSync, symlinkSync, writeFileSync, constants } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startDaemon } from "../helpers/daemon.js";
import { mainCfLines, NOBODY, ROOT_SKIP } from "../helpers/second-user.js";
import { tempDir } from "../helpers/temp-dir.js";
import { withEffectiveIds } from "../../src/master/eugid.js";

/** victimFile - a root:root 0660 file (group root may write it) in a directory everyone can search. */
function victimFile(dir: string, name: string): { path: string; content: Buffer } {
  const d = join(dir, `${name}-dir`);
  mkdirSync(d, { mode: 0o755 });
  chmodSync(d, 0o755);
  const path = join(d, name);
  const content = Buffer.from(`root's own ${name}, not to be changed\n`);
  writeFileSync(path, content, { mode: 0o660 });
  chownSync(path, 0, 0);
  chmodSync(path, 0o660);
  return { path, content };
}

describe("mail_owner's effective ids at start-up (finding 4)", { skip: ROOT_SKIP }, () => {
  const dir = tempDir("tlsmgr-eugid-");
  chmodSync(dir, 0o755);
  // As under sudo or a root login shell (initgroups): root with group root
  // among its supplementary groups; the daemons started here inherit them.
  let saved: number[] = [];
  before(() => {
    saved = process.getgroups!();
    process.setgroups!([0]);
  });
  after(() => process.setgroups!(saved));

  it("drops root's supplementary groups for the switch and gives them back after", async () => {
    const before = process.getgroups!();
    assert.ok(before.includes(0), `group 0 among this process's groups: ${before.join(",")}`);
    const victim = victimFile(dir, "groups-victim");
    let inside: number[] = [];
    let opened: string | undefined;
    await withEffectiveIds(NOBODY, async () => {
      inside = process.getgroups!();
      try {
        closeSync(openSync(victim.path, constants.O_WRONLY));
        opened = "opened for writing";
      } catch (err) {
        opened = (err as NodeJS.ErrnoException).code;
      }
    });
    assert.deepEqual(inside, [NOBODY.gid], "groups while switched");
    assert.equal(opened, "EACCES", "a root:root 0660 file is closed to mail_owner's ids");
    assert.deepEqual(process.getgroups!(), before, "groups restored");
    assert.equal(process.geteuid!(), 0);
    assert.equal(process.getegid!(), 0);
  });

  it("does not follow a symbolic link planted as the instance lock file (tlsmgr.lock), and leaves its target alone", async () => {
    const home = join(dir, "lock-home");
    mkdirSync(join(home, "data"), { recursive: true });
    chownSync(join(home, "data"), NOBODY.uid, NOBODY.gid);
    const victim = victimFile(dir, "lock-victim");
    chmodSync(victim.path, 0o644); // root's, not even group-writable: only root itself could change it
    symlinkSync(victim.path, join(home, "data", "tlsmgr.lock"));
    writeFileSync(join(home, "main.cf"), mainCfLines(home));
    const started = startDaemon({ configDir: home, socket: join(home, "s", "tlsmgr.sock"), readyTimeoutMs: 15_000 });
    started.then((d) => d.stop(), () => undefined);
    await assert.rejects(started, (err: Error) => {
      assert.match(err.message, /fatal: .*tlsmgr\.lock.*symbolic link/);
      return true;
    });
    assert.deepEqual(readFileSync(victim.path), victim.content, "target unchanged (it was truncated to a pid before)");
    const st = statSync(victim.path);
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [0, 0, 0o644]);
  });

  it("does not follow a symbolic link planted as the PRNG exchange file, and leaves its target alone", async () => {
    const home = join(dir, "home");
    mkdirSync(join(home, "data"), { recursive: true });
    chownSync(join(home, "data"), NOBODY.uid, NOBODY.gid);
    const victim = victimFile(dir, "exch-victim");
    // What a mail_owner process can do in its own data_directory.
    symlinkSync(victim.path, join(home, "data", "prng_exch"));
    writeFileSync(join(home, "main.cf"), mainCfLines(home, ["tls_random_exchange_name = ${data_directory}/prng_exch"]));
    const started = startDaemon({ configDir: home, socket: join(home, "s", "tlsmgr.sock"), readyTimeoutMs: 15_000 });
    started.then((d) => d.stop(), () => undefined);
    await assert.rejects(started, (err: Error) => {
      assert.match(err.message, /fatal: .*PRNG exchange file .*prng_exch.*(symbolic link|Too many levels of symbolic links)/);
      return true;
    });
    assert.deepEqual(readFileSync(victim.path), victim.content, "target unchanged");
    const st = statSync(victim.path);
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [0, 0, 0o660]);
  });
});
