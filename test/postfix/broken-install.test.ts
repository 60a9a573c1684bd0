/**
 * broken-install.test.ts - an installation that cannot start, under Debian's
 *                          Postfix master(8) (issue 12, "What must be shown"):
 *                          the cause reaches the mail log, and a tree being
 *                          rebuilt is never what master starts.
 * Owns: in a private instance whose tlsmgr line `tlsmgr-postfix install`
 *       points at a snapshot of a copy of this tree: the start-up line naming
 *       version, snapshot and Node.js; the copy broken as a half-done
 *       `npm ci` leaves it while master restarts the daemon (it still starts,
 *       from the snapshot); then the snapshot itself broken four ways (a
 *       package removed, a syntax error in a built file, a Node.js too old, a
 *       fatal error before main.cf's logging settings are in force), each
 *       time master's "bad command startup -- throttling" and our cause in
 *       maillog_file as postfix/tlsmgr[pid]: fatal: ...; and an upgrade
 *       (install of a new version, postfix reload) putting it right.
 * Not here: the snapshot's making in detail (test/unit/snapshot.test.ts);
 *           the daemon's normal life under master (under-master.test.ts).
 * See also: src/boot.cts, src/log/postlog-command.cts, src/log/early-sink.ts,
 *           src/tools/snapshot.ts, README.md "Upgrade"
 *
 * master(8) throttles a service whose process dies before its first use
 * for 60 s (and `postfix reload` keeps the throttle): each breakage is
 * followed by `postfix stop` and `start`. The daemon is started by a request
 * on private/tlsmgr (what smtpd's first TLS step does).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { appendFileSync, chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createPostfixInstance, postfixSkipReason, type PostfixInstance } from "../helpers/postfix-instance.js";
import { escapeRe, masterPid, ourDaemonsUnderMaster, pidAlive, procPpid, waitFor } from "../helpers/master-procs.js";
import { tlsmgrRequest, tlsmgrStatus } from "../helpers/daemon.js";
import { oldNode, OLD_NODE_VERSION } from "../helpers/old-node.js";

const skip = postfixSkipReason();

/** This file is dist/test/postfix/broken-install.test.js. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
const PATH_WITH_SBIN = `${process.env["PATH"] ?? ""}:/usr/sbin:/usr/bin:/sbin:/bin`;
/** What of the tree an installation has: copied, so that it can be broken. */
const PARTS = ["package.json", "package-lock.json", "bin", "dist", "build", "man", "prebuilds", "node_modules"];

// copyTree - an installation of this tree's build in dir (what `npm ci` in a clone leaves)
function copyTree(dir: string): void {
  for (const part of PARTS) {
    try {
      cpSync(join(ROOT, part), join(dir, part), { recursive: true, verbatimSymlinks: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  rmSync(join(dir, "dist", "test"), { recursive: true, force: true });
  rmSync(join(dir, "build", "postfix-install"), { recursive: true, force: true });
}

// seed - one request on private/tlsmgr: master starts the daemon for it; its status, or the error (e.g. no reply in time)
async function seed(pf: PostfixInstance, timeoutMs = 15_000): Promise<number | string> {
  try {
    return tlsmgrStatus(await tlsmgrRequest(pf.tlsmgrSocket, [["request", "seed"], ["size", "32"]], timeoutMs));
  } catch (err) {
    return (err as Error).message;
  }
}

test("a broken installation under master(8): the cause in the mail log; a tree being rebuilt is not what master runs",
  { skip: skip ?? false, timeout: 300_000 }, async (t) => {
    const work = mkdtempSync(join(tmpdir(), "tlsmgr-broken-"));
    t.after(() => rmSync(work, { recursive: true, force: true }));
    chmodSync(work, 0o755);
    const tree = join(work, "tree");
    const versions = join(work, "versions");
    mkdirSync(tree);
    copyTree(tree);

    const pf = await createPostfixInstance({ tlsmgr: "postfix" });
    t.after(() => pf.destroy());
    const daemonDir = (await pf.postconf("-h", "daemon_directory")).trim();
    const started = Date.now();
    const phase = (what: string) => t.diagnostic(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);

    // install - tlsmgr-postfix install of that tree (its own copy of the tool); the snapshot master will run
    const install = async (): Promise<string> => {
      // as an admin runs it: the tree's own tool, with a PATH that has postconf
      const out = await new Promise<string>((res, rej) => {
        execFile(join(tree, "bin", "tlsmgr-postfix"), ["install", "--versions", versions, pf.configDir],
          { env: { ...process.env, PATH: PATH_WITH_SBIN } },
          (err, stdout, stderr) => (err ? rej(new Error(`install: ${err.message}\n${stdout}${stderr}`)) : res(stdout)));
      });
      const m = /snapshot (\S+) of /.exec(out);
      assert.ok(m, out);
      const command = (await pf.postconf("-M", "tlsmgr/unix")).trim().split(/\s+/)[7]!;
      assert.equal(realpathSync(join(daemonDir, command)), join(m[1]!, "bin", "tlsmgr"), "master.cf runs the snapshot");
      return m[1]!;
    };
    // daemon - our one live daemon under this master (not notPid)
    const daemon = (what: string, notPid?: number): Promise<number> =>
      waitFor(what, 20_000, () => {
        const pids = ourDaemonsUnderMaster(pf, daemonDir).filter((p) => p !== notPid);
        return pids.length === 1 && procPpid(pids[0]!) === masterPid(pf) ? pids[0] : undefined;
      });
    // startupLine - the daemon's first info line: version, where its code is, Node.js
    const startupLine = (pid: number, version: string, snapshot: string): Promise<string> =>
      pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${pid}\\]: starting tlsmgr-ts ${escapeRe(version)} from ${escapeRe(snapshot)}, `
        + `Node\\.js ${escapeRe(process.version)} \\(${escapeRe(realpathSync(process.execPath))}\\)$`), 15_000);
    // brokenStart - a request makes master start the broken daemon: it exits 1, master throttles, the cause is logged
    /** lines of the maillog already looked at (whole lines: the text ends with a newline) */
    let logSeen = 0;
    const logLines = async (): Promise<string[]> => (await pf.logText()).split("\n").slice(0, -1);
    // freshLines - the maillog lines since logSeen, once one matches re (within 30 s)
    const freshLines = async (re: RegExp): Promise<string[]> => {
      let fresh: string[] = [];
      await waitFor(`a maillog line matching ${re}`, 30_000, async () => {
        fresh = (await logLines()).slice(logSeen);
        return fresh.some((l) => re.test(l)) ? true : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}; maillog since:\n${fresh.join("\n")}`);
      });
      return fresh;
    };
    const brokenStart = async (cause: RegExp): Promise<string> => {
      // (the connection waits in master's queue after the daemon died: no answer is coming)
      const r = await seed(pf, 2_000);
      assert.notEqual(r, 0, "a broken daemon answered");
      const exitRe = /postfix\/master\[\d+\]: warning: process \S+\/bin\/tlsmgr pid \d+ exit status 1$/;
      await freshLines(/postfix\/master\[\d+\]: warning: \S+\/bin\/tlsmgr: bad command startup -- throttling$/);
      // postlogd writes what reaches it in turn: ours may come after master's lines
      const fresh = await freshLines(/postfix\/tlsmgr\[\d+\]: fatal: /);
      const exit = fresh.find((l) => exitRe.test(l));
      assert.ok(exit !== undefined, `master logged no exit status 1:\n${fresh.join("\n")}`);
      logSeen += fresh.length;
      const hit = fresh.find((l) => /postfix\/tlsmgr\[\d+\]: fatal: /.test(l));
      assert.ok(hit !== undefined, `no fatal line from tlsmgr before ${exit}:\n${fresh.join("\n")}`);
      assert.match(hit, cause);
      // the master's line names the daemon's pid; the fatal line, postlog's (postlog(1) logs with its own)
      return hit;
    };
    // restart - postfix stop and start: master forgets the throttle
    const restart = async (): Promise<void> => {
      await pf.stop();
      await pf.start();
      logSeen = (await logLines()).length;
    };

    const snapshot = await install();
    assert.equal(dirname(snapshot), realpathSync(versions));
    assert.match(snapshot, new RegExp(`/${escapeRe(VERSION)}-[0-9a-f]{12}$`));
    await pf.start();

    await t.test("it runs from the snapshot and says so: version, snapshot, Node.js", async () => {
      assert.equal(await seed(pf), 0);
      const pid = await daemon("our daemon started by master");
      await startupLine(pid, VERSION, snapshot);
      phase("served from the snapshot");
    });

    await t.test("the tree half rebuilt (npm ci, tsc): master restarts the daemon from the untouched snapshot", async () => {
      rmSync(join(tree, "node_modules"), { recursive: true, force: true }); // npm ci removes node_modules first
      writeFileSync(join(tree, "dist", "src", "main.js"), "export const half = "); // tsc halfway
      const old = await daemon("the daemon before the kill");
      process.kill(old, "SIGKILL");
      await waitFor(`pid ${old} to die`, 10_000, () => (pidAlive(old) ? undefined : true));
      assert.equal(await seed(pf), 0, "the restarted daemon serves");
      const pid = await daemon("the daemon restarted after kill -9", old);
      await startupLine(pid, VERSION, snapshot);
      copyTree(tree); // the build finished
      phase("restarted during a rebuild");
    });

    await t.test("a package missing from what master runs: ERR_MODULE_NOT_FOUND in the mail log", async () => {
      await pf.stop();
      const ioredis = join(snapshot, "node_modules", "ioredis");
      cpSync(ioredis, join(work, "ioredis"), { recursive: true });
      rmSync(ioredis, { recursive: true });
      try {
        await pf.start();
        logSeen = (await logLines()).length;
        await brokenStart(new RegExp(`postfix/tlsmgr\\[\\d+\\]: fatal: cannot load ${escapeRe(join(snapshot, "dist", "src", "main.js"))}: `
          + `ERR_MODULE_NOT_FOUND: Cannot find package 'ioredis' imported from ${escapeRe(join(snapshot, "dist", "src", "redis", "link.js"))}$`));
      } finally {
        cpSync(join(work, "ioredis"), ioredis, { recursive: true });
      }
      phase("missing package logged");
    });

    await t.test("a syntax error in a built file: the file, the line and the error in the mail log", async () => {
      await restart();
      const file = join(snapshot, "dist", "src", "log", "errors.js");
      const text = readFileSync(file, "utf8");
      const line = text.split("\n").length + 1;
      appendFileSync(file, "\n}}}\n");
      try {
        await brokenStart(new RegExp(`fatal: cannot load \\S+/main\\.js: ${escapeRe(file)}, line ${line}: SyntaxError: Unexpected token '}'$`));
      } finally {
        writeFileSync(file, text);
      }
      phase("syntax error logged");
    });

    await t.test(`a Node.js too old (${OLD_NODE_VERSION}): the version and what is needed in the mail log`, async () => {
      const node = await oldNode();
      await restart();
      const nodePath = join(snapshot, "build", "node-path");
      const was = readFileSync(nodePath, "utf8");
      writeFileSync(nodePath, `${node}\n`);
      try {
        await brokenStart(new RegExp(`fatal: Node\\.js v${escapeRe(OLD_NODE_VERSION)} \\(${escapeRe(node)}\\) cannot run tlsmgr-ts `
          + `${escapeRe(VERSION)}: it needs Node\\.js 20 or later \\(package\\.json engines\\)$`));
      } finally {
        writeFileSync(nodePath, was);
      }
      phase("old Node.js logged");
    });

    await t.test("a fatal error before the logging settings are in force goes to the mail log too", async () => {
      await restart();
      await pf.postconf("-e", "tlsmgr_attr_count_limit = lots");
      try {
        await brokenStart(new RegExp(`fatal: ${escapeRe(join(pf.configDir, "main.cf"))}: bad numerical configuration: `
          + "tlsmgr_attr_count_limit = lots$"));
      } finally {
        await pf.postconf("-X", "tlsmgr_attr_count_limit");
      }
      phase("early fatal logged");
    });

    await t.test("an upgrade: install of a new version, postfix reload; the old snapshot is kept", async () => {
      await restart();
      assert.equal(await seed(pf), 0, "put right, the old snapshot serves again");
      const old = await daemon("the daemon of the old snapshot");
      const next = `${VERSION}-upgrade.1`;
      const pkg = JSON.parse(readFileSync(join(tree, "package.json"), "utf8")) as { version: string };
      writeFileSync(join(tree, "package.json"), `${JSON.stringify({ ...pkg, version: next }, null, 2)}\n`);
      const upgraded = await install();
      assert.notEqual(upgraded, snapshot);
      assert.match(upgraded, new RegExp(`/${escapeRe(next)}-[0-9a-f]{12}$`));
      await pf.reload();
      await waitFor(`pid ${old} to exit after postfix reload`, 20_000, () => (pidAlive(old) ? undefined : true));
      assert.equal(await seed(pf), 0);
      await startupLine(await daemon("the upgraded daemon", old), next, upgraded);
      assert.ok(readFileSync(join(snapshot, "package.json")), "the old snapshot is still there");
      phase("upgraded");
    });
  });
