/**
 * under-master.test.ts - our tlsmgr started, watched and restarted by
 *                        Debian's Postfix 3.7 master(8) (issue 4, "What must
 *                        be shown").
 * Owns: the end-to-end proof in a private Postfix instance whose master.cf
 *       tlsmgr line is rewritten by `bin/tlsmgr-postfix install`: ticket keys
 *       shared by two smtpd services (openssl -sess_out / -sess_in, Reused),
 *       smtp(8) reusing its cached session, `postfix reload` (the daemon
 *       saves the PRNG exchange file and exits; master starts a new one),
 *       `kill -9` (master restarts it), maillog lines tagged
 *       postfix/tlsmgr[pid], -u (runs as the postfix user), chroot y (runs in
 *       queue_directory, or fails with the documented message), and
 *       `bin/tlsmgr-postfix uninstall` giving the line back to Postfix.
 * Not here: our daemon started outside master (real-client.test.ts), Postfix's
 *           own tlsmgr alone (postfix-baseline.test.ts).
 * See also: test/helpers/postfix-instance.ts, src/tools/tlsmgr-postfix.ts,
 *           src/master/master-link.ts, src/master/privileges.ts
 *
 * Our daemon is the process whose executable is this Node.js and whose
 * environment has MAIL_CONFIG = this instance's config directory (found by
 * reading /proc): other test files run their own daemons and instances at the
 * same time. It calls itself tlsmgr (comm and command line, as Postfix's
 * tlsmgr): pgrep -x, pidof and ps must find it under that name.
 * main.cf sets two of this project's parameters (a ticket key file in
 * data_directory, an attribute limit): `postfix check` must say nothing about
 * them, nor about the key file's owner, before and after uninstall.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  createPostfixInstance, opensslResumes, postfixSkipReason, type PostfixInstance,
} from "../helpers/postfix-instance.js";
import { nativeAvailable } from "../../src/native/posix.js";
import {
  TLSMGR_POSTFIX, escapeRe, masterChildren, masterPid, pidAlive, procEnv, procPpid, procStatusIds, procs, snapshotSource, tlsmgrPostfix,
  waitFor,
} from "../helpers/master-procs.js";

const skip = postfixSkipReason();

/** This file is dist/test/postfix/under-master.test.js. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const MAIN_JS = join(ROOT, "dist", "src", "main.js");
const NODE = realpathSync(process.execPath);
/** What install adds to the tlsmgr line for this test's main.cf (see tools/main-cf-restore.ts). */
const DECLARE = ["-o", "smtpd_restriction_classes=tlsmgr_ticket_key_database,tlsmgr_attr_count_limit"];
/** Master's arguments for a solitary unprivileged unix service, then the line's own (master_ent.c). */
const TITLE = ["tlsmgr", "-l", "-t", "unix", "-u", ...DECLARE].join(" ");
const TITLE_CHROOT = ["tlsmgr", "-l", "-t", "unix", "-u", "-c", ...DECLARE].join(" ");
const SBIN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";
const PATH_WITH_SBIN = `${process.env["PATH"] ?? ""}:${SBIN_PATH}`;


// idsOf - uid, gid and group list of a user
function idsOf(user: string): { uid: number; gid: number; groups: number[] } {
  const id = (flag: string): string => execFileSync("id", [flag, user]).toString().trim();
  return { uid: Number(id("-u")), gid: Number(id("-g")), groups: id("-G").split(/\s+/).map(Number) };
}

// canSearch - whether this user may traverse (x) a directory, by its mode bits
function canSearch(dir: string, ids: { uid: number; groups: number[] }): boolean {
  const st = statSync(dir);
  if (st.uid === ids.uid) return (st.mode & 0o100) !== 0;
  if (ids.groups.includes(st.gid)) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/**
 * codeAccessNote - undefined when the postfix user can traverse every parent
 * of the project root; otherwise which one it cannot. master(8) starts the
 * daemon as root and it loads all its code before it drops to mail_owner or
 * chroots, so this is not required; the note goes with any failure to find
 * the daemon, so that a CI checkout under a 0700 directory explains itself.
 */
function codeAccessNote(ids: { uid: number; groups: number[] }): string | undefined {
  const dirs: string[] = [];
  for (let d = ROOT; ; d = dirname(d)) {
    dirs.unshift(d);
    if (dirname(d) === d) break;
  }
  const blocked = dirs.find((d) => !canSearch(d, ids));
  return blocked === undefined ? undefined
    : `${blocked} (mode ${(statSync(blocked).mode & 0o777).toString(8)}) is not traversable by the postfix user: `
      + "the daemon must have loaded all its code before dropping privileges";
}





// procExe - the executable of a process (undefined when gone or not ours to read)
function procExe(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

// ourDaemons - Node.js processes of this instance (MAIL_CONFIG): our daemon, whatever it calls itself
function ourDaemons(pf: PostfixInstance): number[] {
  return procs().filter((p) => procExe(p.pid) === NODE)
    .map((p) => p.pid)
    .filter((pid) => procEnv(pid).get("MAIL_CONFIG") === pf.configDir);
}

// cmdlineText - /proc/PID/cmdline as ps shows it: NULs as blanks, trailing ones dropped
function cmdlineText(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((a) => a !== "").join(" ");
}

// tool - a procps or sysvinit tool's stdout (empty when it finds nothing: exit status 1)
function tool(file: string, args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    execFile(file, args, { env: { ...process.env, PATH: `${process.env["PATH"] ?? ""}:${SBIN_PATH}` } }, (err, stdout, stderr) => {
      if (err && (err as { code?: unknown }).code !== 1) rej(new Error(`${file} ${args.join(" ")}: ${err.message}\n${stderr}`));
      else res(stdout);
    });
  });
}

// postfixCheck - `postfix -c DIR check`: everything it prints, stdout and stderr
function postfixCheck(pf: PostfixInstance): Promise<string> {
  return new Promise((res) => {
    execFile("postfix", ["-c", pf.configDir, "check"], { env: { ...process.env, PATH: `${SBIN_PATH}:${process.env["PATH"] ?? ""}` } },
      (err, stdout, stderr) => res(`${stdout}${stderr}${err ? `(exit: ${err.message})` : ""}`));
  });
}






test("our tlsmgr under Postfix's master(8): install, keys, smtp cache, reload, kill -9, -u, chroot, uninstall",
  { skip: skip ?? false, timeout: 180_000 }, async (t) => {
    for (const f of [TLSMGR_POSTFIX, join(ROOT, "bin", "tlsmgr")]) accessSync(f, constants.X_OK);
    assert.ok(existsSync(MAIN_JS), `${MAIN_JS} missing: build first (npm run build)`);
    const postfixIds = idsOf("postfix");
    const accessNote = codeAccessNote(postfixIds);
    if (accessNote !== undefined) t.diagnostic(accessNote);
    const why = accessNote === undefined ? "" : ` (note: ${accessNote})`;

    const pf = await createPostfixInstance({
      tlsmgr: "postfix",
      mainCf: { tlsmgr_ticket_key_database: "${data_directory}/tls-keys", tlsmgr_attr_count_limit: "16" },
    });
    const keyFile = join(pf.dataDir, "tls-keys");
    t.after(() => pf.destroy());
    const exchFile = join(pf.dataDir, "prng_exch");
    const originalLine = (await pf.postconf("-M", "tlsmgr/unix")).trim();
    // Debian's line, chroot off by the harness: unprivileged (-), solitary
    assert.match(originalLine, /^tlsmgr\s+unix\s+-\s+-\s+n\s+1000\?\s+1\s+tlsmgr$/);

    // theDaemon - the one daemon of this instance, started by this instance's master
    const theDaemon = (what: string, notPid?: number): Promise<number> =>
      waitFor(`${what}${why}`, 20_000, () => {
        const pids = ourDaemons(pf).filter((p) => p !== notPid && pidAlive(p));
        if (pids.length !== 1) return undefined;
        return procPpid(pids[0]!) === masterPid(pf) ? pids[0] : undefined;
      });
    // crossResume - a fresh TLS session on port 1 resumed on port 2 (both smtpds use the same keys)
    let sessN = 0;
    const crossResume = async (): Promise<void> => {
      const r = await opensslResumes(pf.smtpdPort, join(pf.dir, `sess${++sessN}.pem`), { port2: pf.smtpdPort2 });
      assert.equal(r.reused, true, `session from port ${pf.smtpdPort} not resumed on ${pf.smtpdPort2}:\n${r.output}`);
    };
    // startedLine - our own start-up line (Postfix's tlsmgr has no such line), from this pid
    const startedLine = (pid: number): Promise<string> =>
      pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${pid}\\]: smtpd session cache: lmdb:${escapeRe(pf.dataDir)}/smtpd_scache, timeout \\d+s$`), 15_000);
    // reloadAndWaitGone - postfix reload; the daemon and the smtpd processes of before have exited
    const reloadAndWaitGone = async (pid: number): Promise<void> => {
      const smtpds = masterChildren(pf, "smtpd");
      await pf.reload();
      await waitFor(`tlsmgr pid ${pid} to exit after postfix reload`, 20_000, () => (pidAlive(pid) ? undefined : true));
      await waitFor("old smtpd processes to exit after postfix reload", 20_000,
        () => (smtpds.some(pidAlive) ? undefined : true));
    };

    let pid = 0;

    await t.test("bin/tlsmgr-postfix install rewrites the tlsmgr line, keeping the other columns", async () => {
      const out = await tlsmgrPostfix(PATH_WITH_SBIN, "install", pf.configDir);
      assert.match(out, /tlsmgr\/unix now runs /);
      const line = (await pf.postconf("-M", "tlsmgr/unix")).trim();
      const f = line.split(/\s+/);
      assert.deepEqual(f.slice(0, 7), ["tlsmgr", "unix", "-", "-", "n", "1000?", "1"], line);
      // master runs $daemon_directory/COMMAND: the command names bin/tlsmgr from there
      const daemonDir = (await pf.postconf("-h", "daemon_directory")).trim();
      // a snapshot of this tree (tools/snapshot.ts), not the tree itself
      assert.equal(snapshotSource(join(daemonDir, f[7]!)), realpathSync(ROOT));
      assert.equal(basename(f[7]!), "tlsmgr");
      // the parameters main.cf sets are declared to postconf on that line
      assert.deepEqual(f.slice(8), DECLARE, line);
    });

    await pf.start();

    await t.test("master starts it on demand; two smtpd services resume each other's sessions", async () => {
      assert.deepEqual(ourDaemons(pf), [], "no daemon before the first request");
      await crossResume();
      pid = await theDaemon("our daemon started by master");
      await pf.waitForLog(/other postfix\/smtpd\[\d+\]: .*Reusing old session \(RFC 5077 session ticket\)/, 10_000);
    });

    await t.test("it is called tlsmgr with master's arguments: ps, pgrep -x, pidof find it", async () => {
      // the generic options master gives a solitary unprivileged unix service, as Postfix's tlsmgr shows them
      await waitFor(`the process title (now "${cmdlineText(pid)}")`, 10_000, () => (cmdlineText(pid) === TITLE ? true : undefined));
      assert.equal(readFileSync(`/proc/${pid}/comm`, "utf8"), "tlsmgr\n");
      assert.equal((await tool("ps", ["-o", "comm=", "-p", String(pid)])).trim(), "tlsmgr");
      assert.equal((await tool("ps", ["-o", "args=", "-p", String(pid)])).trim(), TITLE);
      assert.deepEqual((await tool("pgrep", ["-x", "-P", String(masterPid(pf)), "tlsmgr"])).trim().split(/\s+/), [String(pid)]);
      assert.ok((await tool("pidof", ["tlsmgr"])).trim().split(/\s+/).includes(String(pid)), "pidof tlsmgr");
    });

    await t.test("postfix check says nothing: parameters declared, the key file belongs to mail_owner", async () => {
      await waitFor("the ticket key file", 10_000, () => (existsSync(keyFile) ? true : undefined));
      const st = statSync(keyFile);
      assert.equal(st.uid, postfixIds.uid, "key file owner");
      assert.equal(st.mode & 0o777, 0o600, "key file mode");
      assert.equal(await postfixCheck(pf), "");
    });

    await t.test("-u: it runs as the postfix user", () => {
      const ids = procStatusIds(pid);
      assert.deepEqual(ids.uid, [postfixIds.uid, postfixIds.uid, postfixIds.uid, postfixIds.uid], `Uid of ${pid}`);
      assert.deepEqual(ids.gid, [postfixIds.gid, postfixIds.gid, postfixIds.gid, postfixIds.gid], `Gid of ${pid}`);
      assert.equal(readlinkSync(`/proc/${pid}/root`), "/", "not chrooted with chroot n");
    });

    await t.test("its log lines arrive in maillog_file tagged postfix/tlsmgr[pid]", async () => {
      const line = await startedLine(pid);
      assert.match(line, new RegExp(`^[A-Z][a-z]{2} +\\d+ \\d\\d:\\d\\d:\\d\\d \\S+ postfix/tlsmgr\\[${pid}\\]: `));
      // cache operations (smtpd_tls_loglevel = 2) come from the same process
      await pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${pid}\\]: put smtpd session id=`), 10_000);
    });

    await t.test("smtp(8) delivering twice over TLS reuses the session our daemon cached", async () => {
      await pf.sendmail("first@example.com");
      await pf.waitForLog(/to=<first@example\.com>.*relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent/, 30_000);
      await pf.waitForLog(/postfix\/smtp\[\d+\]: save session smtp&\S+ to smtp cache/, 5_000);
      assert.doesNotMatch(await pf.logText(), /postfix\/smtp\[\d+\]: .*Reusing old session/);
      await pf.sendmail("second@example.com");
      await pf.waitForLog(/to=<second@example\.com>.*status=sent/, 30_000);
      await pf.waitForLog(new RegExp(`postfix/smtp\\[\\d+\\]: 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${pf.smtpdPort2}: Reusing old session`), 5_000);
      await pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${pid}\\]: read smtp TLS cache entry smtp&`), 5_000);
      assert.deepEqual(ourDaemons(pf), [pid], "still the same daemon");
    });

    await t.test("postfix reload: it saves the exchange file and exits; master starts a new one", async () => {
      const before = await readFile(exchFile);
      const beforeSt = await stat(exchFile);
      assert.equal(before.length, 1024, "exchange file size");
      await reloadAndWaitGone(pid);
      await pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${pid}\\]: master gone or reloading: saving PRNG exchange file and exiting`), 10_000);
      const after = await readFile(exchFile);
      const afterSt = await stat(exchFile);
      assert.notDeepEqual(after, before, "exchange file content rewritten on exit");
      assert.ok(afterSt.mtimeMs > beforeSt.mtimeMs, `mtime ${beforeSt.mtimeMs} -> ${afterSt.mtimeMs}`);
      assert.deepEqual(ourDaemons(pf), [], "no daemon until the next request");

      await crossResume();
      const next = await theDaemon("a new daemon after postfix reload", pid);
      assert.notEqual(next, pid);
      await startedLine(next);
      pid = next;
    });

    await t.test("kill -9: master restarts it and smtpd keeps working", async () => {
      const killed = pid;
      process.kill(killed, "SIGKILL");
      await waitFor(`pid ${killed} to die`, 10_000, () => (pidAlive(killed) ? undefined : true));
      await pf.waitForLog(new RegExp(`postfix/master\\[\\d+\\]: warning: process \\S+/bin/tlsmgr pid ${killed} killed by signal 9`), 10_000);
      // a fresh handshake makes smtpd save its session through tlsmgr: master starts a new one
      const r = await opensslResumes(pf.smtpdPort, join(pf.dir, `sess${++sessN}.pem`));
      assert.match(r.output, /^New,/m);
      const next = await theDaemon("the daemon restarted after kill -9", killed);
      await pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${next}\\]: put smtpd session id=`), 15_000);
      // and a new pair of smtpd processes shares the new daemon's keys
      await reloadAndWaitGone(next);
      await crossResume();
      pid = await theDaemon("a new daemon after the reload that follows kill -9", next);
    });

    await t.test("chroot y: it runs inside queue_directory, or fails with the documented message", async () => {
      await pf.postconf("-F", "tlsmgr/unix/chroot=y");
      await reloadAndWaitGone(pid);
      if (!nativeAvailable()) {
        const r = await opensslResumes(pf.smtpdPort, join(pf.dir, `sess${++sessN}.pem`));
        assert.match(r.output, /^New,/m);
        await pf.waitForLog(new RegExp(`postfix/tlsmgr\\[\\d+\\]: fatal: cannot chroot to ${escapeRe(pf.queueDir)}: .*; `
          + "set the chroot column of the tlsmgr service in master\\.cf to n"), 15_000);
        await pf.postconf("-F", "tlsmgr/unix/chroot=n");
        await reloadAndWaitGone(pid);
        return;
      }
      await crossResume();
      const next = await theDaemon("the chrooted daemon", pid);
      await waitFor(`the process title (now "${cmdlineText(next)}")`, 10_000, () => (cmdlineText(next) === TITLE_CHROOT ? true : undefined));
      assert.equal(readFileSync(`/proc/${next}/comm`, "utf8"), "tlsmgr\n", "comm set before chroot");
      assert.equal(readlinkSync(`/proc/${next}/root`), realpathSync(pf.queueDir), "/proc/PID/root");
      assert.equal(procStatusIds(next).uid[1], postfixIds.uid, "effective uid");
      // it logs after chroot (public/postlog is inside the queue directory) and serves the caches
      await startedLine(next);
      await pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${next}\\]: put smtpd session id=`), 15_000);

      // on reload the chrooted daemon still saves the exchange file (opened before chroot)
      const before = await readFile(exchFile);
      await pf.postconf("-F", "tlsmgr/unix/chroot=n");
      await reloadAndWaitGone(next);
      await pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${next}\\]: master gone or reloading`), 10_000);
      assert.notDeepEqual(await readFile(exchFile), before, "exchange file rewritten by the chrooted daemon");
    });

    await t.test("bin/tlsmgr-postfix uninstall gives the line back; Postfix's tlsmgr serves again", async () => {
      const out = await tlsmgrPostfix(PATH_WITH_SBIN, "uninstall", pf.configDir);
      assert.match(out, /runs Postfix's tlsmgr again/);
      // our LMDB files are in a format Postfix's liblmdb refuses: uninstall removes them
      for (const cache of ["smtpd_scache", "smtp_scache"]) {
        assert.match(out, new RegExp(`removed ${escapeRe(join(pf.dataDir, cache))}\\.lmdb: `));
        assert.ok(!existsSync(join(pf.dataDir, `${cache}.lmdb`)), `${cache}.lmdb removed`);
      }
      assert.equal((await pf.postconf("-M", "tlsmgr/unix")).trim(), originalLine);
      // main.cf: this daemon's parameters commented out, its key file gone; postfix check still silent
      const mainCf = await readFile(join(pf.configDir, "main.cf"), "utf8");
      assert.match(mainCf, /^#tlsmgr_ticket_key_database = \$\{data_directory\}\/tls-keys$/m);
      assert.match(mainCf, /^#tlsmgr_attr_count_limit = 16$/m);
      assert.doesNotMatch(mainCf, /^tlsmgr_/m);
      assert.ok(!existsSync(keyFile), "key file removed");
      assert.equal(await postfixCheck(pf), "");
      await pf.reload();
      await waitFor("our daemons to be gone", 20_000, () => (ourDaemons(pf).some(pidAlive) ? undefined : true));
      await waitFor("old smtpd processes to exit", 20_000, () => (masterChildren(pf, "smtpd").length === 0 ? true : undefined));
      await crossResume();
      const theirs = await waitFor("Postfix's tlsmgr", 20_000, () => masterChildren(pf, "tlsmgr")[0]);
      assert.equal(readlinkSync(`/proc/${theirs}/exe`), realpathSync(join((await pf.postconf("-h", "daemon_directory")).trim(), "tlsmgr")));
      assert.equal(procEnv(theirs).get("MAIL_CONFIG"), pf.configDir);
      assert.deepEqual(ourDaemons(pf), []);
      // it made its own session cache, in the format its liblmdb reads
      await waitFor("Postfix's tlsmgr to create smtpd_scache.lmdb", 10_000,
        () => (existsSync(join(pf.dataDir, "smtpd_scache.lmdb")) ? true : undefined));
    });

    await t.test("no tlsmgr complained in the maillog (ours, then Postfix's on our files)", async () => {
      const log = await pf.logText();
      const bad = log.split("\n").filter((l) => /postfix\/tlsmgr\[\d+\]: (warning|error|fatal|panic): /.test(l))
        // without the addon the chroot fatal was expected (and asserted above)
        .filter((l) => nativeAvailable() || !/: fatal: cannot chroot to /.test(l));
      assert.deepEqual(bad, []);
    });
  });
