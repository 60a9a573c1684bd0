/**
 * release-matrix.test.ts - our tlsmgr under master(8) of every Postfix release
 *                          administrators run (issue 11): 3.5.27 (RHEL 9),
 *                          3.7 (Debian 12's package), 3.8.20 (Ubuntu 24.04),
 *                          3.10.13 (Debian 13), 3.11.6 (current stable).
 * Owns: per release, one private instance whose master.cf tlsmgr line is ours
 *       (bin/tlsmgr-postfix install), and the end-to-end checks in sequence on
 *       it, one test each: the release found and the announcement sent or not
 *       as its clients expect; s_client resumption on the other smtpd with a
 *       ticket sealed by our current key; smtp(8) "Reusing old session" from
 *       our cache; maillog lines tagged postfix/tlsmgr[pid]; ps and
 *       `pgrep -x tlsmgr` naming it tlsmgr; postfix reload; kill -9; no
 *       complaint in the maillog. Then an upgrade 3.5.27 -> 3.8.20 (postfix
 *       stop, new binaries in place, postfix start) found by the new daemon.
 * Not here: Debian's 3.7 in more depth (under-master.test.ts: -u, chroot,
 *           uninstall; real-client.test.ts: outside master); building the
 *           releases (helpers/postfix-releases.ts, cached outside the clone).
 * See also: test/helpers/postfix-instance.ts, test/helpers/master-procs.ts,
 *           README.md "Postfix releases", src/config/postfix-release.ts
 *
 * The 3.11 instance names its caches ${default_cache_db_type}:..., as 3.11's
 * main.cf may; the other built releases btree: (they are built without LMDB).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rename, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createPostfixInstance, opensslResumes, sessionTicketKeyName, type InstanceRelease, type PostfixInstance,
} from "../helpers/postfix-instance.js";
import {
  POSTFIX_RELEASES, postfixReleaseRoot, releaseMailVersion, releaseMatrixSkipReason, type PostfixRelease,
} from "../helpers/postfix-releases.js";
import {
  escapeRe, masterChildren, ourDaemonsUnderMaster, pidAlive, procPpid, masterPid, tlsmgrPostfix, waitFor,
} from "../helpers/master-procs.js";
import { tlsmgrTktkey, type ClientProtocol } from "../helpers/daemon.js";
import { ticketKeyLayout } from "../../src/tickets/key-record-layout.js";

// run - a command's stdout ("" when it exits 1 with no output, as pgrep does when nothing matches)
function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    execFile(cmd, args, (err, stdout, stderr) => {
      if (err && !(err.code === 1 && stdout === "")) rej(new Error(`${cmd} ${args.join(" ")}: ${err.message}\n${stderr}`));
      else res(stdout);
    });
  });
}

/** cacheSettings - the session cache lines of each release's instance. */
function cacheSettings(release: PostfixRelease): Record<string, string> {
  if (release.tarball === undefined) return {}; // Debian's package has postfix-lmdb: the helper's lmdb: lines
  const type = release.name.startsWith("3.11.") ? "${default_cache_db_type}" : "btree";
  return {
    smtpd_tls_session_cache_database: `${type}:\${data_directory}/smtpd_scache`,
    smtp_tls_session_cache_database: `${type}:\${data_directory}/smtp_scache`,
  };
}

/**
 * MasterRig - one instance under master with our tlsmgr, and the steps the
 * checks share: find our daemon, resume across the two smtpd services,
 * reload and wait, read our start-up lines.
 */
class MasterRig {
  /** Our daemon as the last check found it (0: not found yet). */
  pid = 0;
  #sessN = 0;
  constructor(readonly pf: PostfixInstance, readonly daemonDir: string) {}

  /** live - the pid a check works on; never 0 (kill(0) would hit this process group). */
  get live(): number {
    assert.ok(this.pid > 0, "no daemon: an earlier check did not find it");
    return this.pid;
  }

  /** create - lay out the instance, put our tlsmgr in its master.cf, start master. */
  static async create(release: InstanceRelease | undefined, mainCf: Record<string, string>): Promise<MasterRig> {
    const pf = await createPostfixInstance({ tlsmgr: "postfix", mainCf, ...(release ? { release } : {}) });
    try {
      const out = await tlsmgrPostfix(pf.path, "install", pf.configDir);
      assert.match(out, /tlsmgr\/unix now runs /);
      const rig = new MasterRig(pf, (await pf.postconf("-h", "daemon_directory")).trim());
      await pf.start();
      return rig;
    } catch (err) {
      await pf.destroy();
      throw err;
    }
  }

  /** daemon - our one live daemon, a child of this master (not notPid). */
  daemon(what: string, notPid?: number): Promise<number> {
    return waitFor(what, 20_000, () => {
      const pids = ourDaemonsUnderMaster(this.pf, this.daemonDir).filter((p) => p !== notPid);
      return pids.length === 1 && procPpid(pids[0]!) === masterPid(this.pf) ? pids[0] : undefined;
    });
  }

  /** crossResume - a fresh session on smtpd 1 resumed on smtpd 2 (one set of keys: ours); the session file. */
  async crossResume(): Promise<string> {
    const sess = join(this.pf.dir, `sess${++this.#sessN}.pem`);
    const r = await opensslResumes(this.pf.smtpdPort, sess, { port2: this.pf.smtpdPort2 });
    assert.equal(r.reused, true, `session from port ${this.pf.smtpdPort} not resumed on ${this.pf.smtpdPort2}:\n${r.output}`);
    return sess;
  }

  /** releaseLine - our start-up line about the release, from that pid. */
  releaseLine(pid: number): Promise<string> {
    return this.pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${pid}\\]: (postfix release |no postfix release found|tlsmgr_server_announcement)`), 15_000);
  }

  /** reloadAndWaitGone - postfix reload; the daemon and the smtpd processes of before have exited. */
  async reloadAndWaitGone(pid: number): Promise<void> {
    const smtpds = masterChildren(this.pf, "smtpd");
    await this.pf.reload();
    await waitFor(`tlsmgr pid ${pid} to exit after postfix reload`, 20_000, () => (pidAlive(pid) ? undefined : true));
    await waitFor("old smtpd processes to exit after postfix reload", 20_000, () => (smtpds.some(pidAlive) ? undefined : true));
  }
}

/** expectedReleaseLine - what our daemon logs for this release under auto. */
function expectedReleaseLine(version: string, commandDir: string, announces: boolean): RegExp {
  const head = `postfix release ${escapeRe(version)} \\(from ${escapeRe(commandDir)}/postconf -d mail_version\\): `;
  return new RegExp(head + (announces ? "sending the server announcement" : "no server announcement"));
}

// The symptoms of a server announcement sent to a 3.5 client, and of tlsmgr trouble in general.
// (instance paths hold "tlsmgr-": the patterns name the socket, the program and the process tag)
const COMPLAINTS = new RegExp(["missing attribute status", "problem talking to server", "no entropy for TLS key generation",
  "TLS engine is unavailable", "(warning|error|fatal|panic): .*private/tlsmgr", "(warning|error|fatal|panic): .*/bin/tlsmgr ",
  "postfix/tlsmgr\\[\\d+\\]: (warning|error|fatal|panic): "].join("|"));
// ... but for master's report of the kill -9 the test does itself
const KILL_REPORT = /postfix\/master\[\d+\]: warning: process \S+\/bin\/tlsmgr pid \d+ killed by signal 9$/;

/** complaints - maillog lines that show tlsmgr trouble. */
function complaints(log: string): string[] {
  return log.split("\n").filter((l) => COMPLAINTS.test(l) && !KILL_REPORT.test(l));
}

for (const release of POSTFIX_RELEASES) {
  const label = release.tarball === undefined ? `Postfix ${release.name} (Debian's package)` : `Postfix ${release.name}`;
  describe(label, { skip: releaseMatrixSkipReason(release) ?? false }, () => {
    let rig: MasterRig;
    let version = "";
    let commandDir = "";
    const client: ClientProtocol = release.announces ? "3.6" : "3.5";

    before(async () => {
      const build = release.tarball === undefined ? undefined : await postfixReleaseRoot(release);
      version = await releaseMailVersion(build?.root);
      rig = await MasterRig.create(build ? { root: build.root, compatibilityLevel: release.compatibilityLevel } : undefined,
        cacheSettings(release));
      commandDir = (await rig.pf.postconf("-h", "command_directory")).trim();
    }, { timeout: 600_000 });
    after(() => rig?.pf.destroy());

    it(`master starts it on demand; it asks this Postfix its release and ${release.announces ? "sends" : "sends no"} server announcement`, { timeout: 90_000 }, async () => {
      assert.deepEqual(ourDaemonsUnderMaster(rig.pf, rig.daemonDir), [], "no daemon before the first request");
      assert.match(version, new RegExp(`^${escapeRe(release.name)}(\\.|$)`));
      await rig.crossResume();
      rig.pid = await rig.daemon("our daemon started by master");
      assert.match(await rig.releaseLine(rig.live), expectedReleaseLine(version, commandDir, release.announces));
      // as this release's client speaks: 3.5 writes at once and reads the reply first; 3.6+ reads the announcement first
      const key = await tlsmgrTktkey(rig.pf.tlsmgrSocket, Buffer.alloc(0), client);
      assert.equal(key.status, 0);
    });

    it("s_client resumes on the other smtpd with a ticket sealed by our current key", { timeout: 90_000 }, async () => {
      const sess = await rig.crossResume();
      const ticketKey = await sessionTicketKeyName(sess);
      assert.ok(ticketKey !== undefined, "the saved session carries a session ticket");
      const key = await tlsmgrTktkey(rig.pf.tlsmgrSocket, Buffer.alloc(0), client);
      assert.equal(key.status, 0);
      assert.equal(key.keybuf.length, ticketKeyLayout().size, "keybuf is sizeof(TLS_TICKET_KEY)");
      assert.equal(key.keybuf.subarray(0, 16).toString("hex"), ticketKey);
      await rig.pf.waitForLog(/other postfix\/smtpd\[\d+\]: .*Reusing old session \(RFC 5077 session ticket\)/, 10_000);
    });

    it("smtp reuses its session from our cache on the second delivery", { timeout: 120_000 }, async () => {
      const { pf } = rig;
      await pf.sendmail("first@example.com");
      await pf.waitForLog(/to=<first@example\.com>.*relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent/, 60_000);
      await pf.waitForLog(/postfix\/smtp\[\d+\]: save session smtp&\S+ to smtp cache/, 5_000);
      assert.doesNotMatch(await pf.logText(), /postfix\/smtp\[\d+\]: .*Reusing old session/);
      await pf.sendmail("second@example.com");
      await pf.waitForLog(/to=<second@example\.com>.*status=sent/, 60_000);
      await pf.waitForLog(new RegExp(`postfix/smtp\\[\\d+\\]: 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${pf.smtpdPort2}: Reusing old session`), 5_000);
      await pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${rig.live}\\]: read smtp TLS cache entry smtp&`), 5_000);
      assert.deepEqual(ourDaemonsUnderMaster(pf, rig.daemonDir), [rig.live], "still the same daemon");
    });

    it("it logs to the maillog as postfix/tlsmgr[pid]", { timeout: 30_000 }, async () => {
      const db = release.tarball === undefined ? "lmdb" : "btree"; // 3.11: ${default_cache_db_type} is btree there
      const line = await rig.pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${rig.live}\\]: smtpd session cache: ${db}:${escapeRe(rig.pf.dataDir)}/smtpd_scache, timeout 3600s$`), 15_000);
      assert.match(line, new RegExp(`^[A-Z][a-z]{2} +\\d+ \\d\\d:\\d\\d:\\d\\d \\S+ postfix/tlsmgr\\[${rig.live}\\]: `));
      await rig.pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${rig.live}\\]: put smtpd session id=`), 10_000);
    });

    it("ps and pgrep -x tlsmgr find it as tlsmgr", { timeout: 30_000 }, async () => {
      const comm = (await run("ps", ["-o", "comm=", "-p", String(rig.live)])).trim();
      const pgrep = (await run("pgrep", ["-x", "tlsmgr"])).split("\n").filter((l) => l !== "").map(Number);
      assert.equal(comm, "tlsmgr", `ps -o comm= -p ${rig.live}`);
      assert.ok(pgrep.includes(rig.live), `pgrep -x tlsmgr: [${pgrep.join(", ")}], our daemon is ${rig.live}`);
    });

    it("postfix reload: it exits; master starts a new one, which asks the release again", { timeout: 90_000 }, async () => {
      const old = rig.live;
      await rig.reloadAndWaitGone(old);
      await rig.pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${old}\\]: master gone or reloading: saving PRNG exchange file and exiting`), 10_000);
      await rig.crossResume();
      rig.pid = await rig.daemon("a new daemon after postfix reload", old);
      assert.match(await rig.releaseLine(rig.live), expectedReleaseLine(version, commandDir, release.announces));
    });

    it("kill -9: master restarts it and TLS keeps working", { timeout: 90_000 }, async () => {
      const killed = rig.live;
      process.kill(killed, "SIGKILL");
      await waitFor(`pid ${killed} to die`, 10_000, () => (pidAlive(killed) ? undefined : true));
      await rig.pf.waitForLog(new RegExp(`postfix/master\\[\\d+\\]: warning: process \\S+/bin/tlsmgr pid ${killed} killed by signal 9`), 10_000);
      const r = await opensslResumes(rig.pf.smtpdPort, join(rig.pf.dir, "after-kill.pem"));
      assert.match(r.output, /^New,/m);
      const next = await rig.daemon("the daemon restarted after kill -9", killed);
      await rig.pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${next}\\]: put smtpd session id=`), 15_000);
      await rig.reloadAndWaitGone(next); // new smtpd processes, which share the new daemon's keys
      await rig.crossResume();
      rig.pid = await rig.daemon("a new daemon after the reload that follows kill -9", next);
    });

    it("no tlsmgr client or server complained in the maillog", { timeout: 30_000 }, async () => {
      assert.deepEqual(complaints(await rig.pf.logText()), []);
    });
  });
}

describe("Postfix upgrade 3.5.27 -> 3.8.20: postfix stop, the new release's files in place, postfix start",
  { skip: releaseMatrixSkipReason() ?? false }, () => {
  const from = POSTFIX_RELEASES.find((r) => r.name === "3.5.27")!;
  const to = POSTFIX_RELEASES.find((r) => r.name === "3.8.20")!;
  let rig: MasterRig;
  let linkDir = "";
  let toRoot = "";
  let current = "";

  before(async () => {
    const fromRoot = (await postfixReleaseRoot(from)).root;
    toRoot = (await postfixReleaseRoot(to)).root;
    // the install root is a symbolic link: replacing it is `make upgrade` writing the new files in place
    linkDir = await mkdtemp(join(tmpdir(), "tlsmgr-upgrade-"));
    current = join(linkDir, "postfix");
    await symlink(fromRoot, current);
    rig = await MasterRig.create({ root: current, compatibilityLevel: from.compatibilityLevel }, cacheSettings(from));
  }, { timeout: 600_000 });
  after(async () => {
    await rig?.pf.destroy();
    if (linkDir) await rm(linkDir, { recursive: true, force: true });
  });

  it("on 3.5.27: no server announcement, TLS works", { timeout: 90_000 }, async () => {
    await rig.crossResume();
    rig.pid = await rig.daemon("our daemon under 3.5.27");
    assert.match(await rig.releaseLine(rig.live), expectedReleaseLine("3.5.27", join(current, "usr", "sbin"), false));
    assert.equal((await tlsmgrTktkey(rig.pf.tlsmgrSocket, Buffer.alloc(0), "3.5")).status, 0);
  });

  it("after the upgrade to 3.8.20: the new daemon finds 3.8.20 and announces; TLS works", { timeout: 120_000 }, async () => {
    const old = rig.live;
    await rig.pf.stop();
    await waitFor(`tlsmgr pid ${old} to exit with master`, 20_000, () => (pidAlive(old) ? undefined : true));
    const next = join(linkDir, "postfix.new");
    await symlink(toRoot, next);
    await rename(next, current);
    await rig.pf.start();
    await rig.pf.waitForLog(/postfix\/master\[\d+\]: daemon started -- version 3\.8\.20/, 15_000);
    await rig.crossResume();
    rig.pid = await rig.daemon("our daemon under 3.8.20", old);
    assert.match(await rig.releaseLine(rig.live), expectedReleaseLine("3.8.20", join(current, "usr", "sbin"), true));
    assert.equal((await tlsmgrTktkey(rig.pf.tlsmgrSocket, Buffer.alloc(0), "3.6")).status, 0);
    assert.deepEqual(complaints(await rig.pf.logText()), []);
  });
});
