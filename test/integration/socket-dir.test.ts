/**
 * socket-dir.test.ts - the daemon started as root outside master(8) with
 * mail_owner nobody, and the directory of its socket (issue 13, findings 2,
 * 3 and 7): an existing directory is checked and never changed (a 1777
 * directory is refused and stays 1777); only a directory the daemon creates
 * is mail_owner's; the socket is made with mail_owner's ids and the umask,
 * with no chmod or chown of any path (strace shows it), so a mail_owner
 * process that swaps the socket for a symbolic link changes nothing of
 * root's; and a socket other users could reach is refused while it would
 * hand out ticket keys or sessions.
 * See also: src/server/socket-path.ts, src/server/listener.ts, docs/security.md
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DAEMON_MAIN, REPO_ROOT, startDaemon, tlsmgrRequest, tlsmgrStatus } from "../helpers/daemon.js";
import { mainCfLines, NOBODY, ROOT_SKIP } from "../helpers/second-user.js";
import { programPath, skipReason } from "../helpers/skip.js";
import { tempDir } from "../helpers/temp-dir.js";

const STRACE = programPath("strace");

/** home - a configuration directory for a daemon with mail_owner nobody; extra main.cf lines. */
function home(root: string, name: string, extra: string[] = []): string {
  const h = join(root, name);
  mkdirSync(join(h, "data"), { recursive: true });
  chownSync(join(h, "data"), NOBODY.uid, NOBODY.gid);
  writeFileSync(join(h, "main.cf"), mainCfLines(h, extra));
  return h;
}

/** refused - start a daemon that must refuse to start; its stderr. */
async function refused(configDir: string, socket: string): Promise<string> {
  const started = startDaemon({ configDir, socket, readyTimeoutMs: 15_000 });
  started.then((d) => d.stop(), () => undefined);
  let text = "";
  await assert.rejects(started, (err: Error) => {
    text = err.message;
    return true;
  });
  return text;
}

/** modeOf - owner, group and mode bits of a path (not followed). */
function modeOf(path: string): [number, number, number] {
  const st = lstatSync(path);
  return [st.uid, st.gid, st.mode & 0o7777];
}

describe("the socket directory of a daemon started as root (findings 2, 3, 7)", { skip: ROOT_SKIP }, () => {
  const root = tempDir("tlsmgr-sockdir-");
  chmodSync(root, 0o755); // others may pass: the directories below decide

  it("refuses an existing directory others can write (1777) and leaves it as it was", async () => {
    const h = home(root, "sticky");
    const x = join(root, "x");
    mkdirSync(x);
    chmodSync(x, 0o1777);
    const err = await refused(h, join(x, "probe.sock"));
    assert.match(err, /fatal: .*x: .*(mode 1777|writable by)/);
    assert.deepEqual(modeOf(x), [0, 0, 0o1777], "the directory is unchanged");
    assert.equal(existsSync(join(x, "probe.sock")), false);
  });

  it("refuses an existing directory of another user, and leaves it as it was", async () => {
    const h = home(root, "other-owner");
    const d = join(root, "someone-else");
    mkdirSync(d, { mode: 0o700 });
    chownSync(d, 4242, 4242);
    const err = await refused(h, join(d, "tlsmgr.sock"));
    assert.match(err, /fatal: .*someone-else: owned by uid 4242/);
    assert.deepEqual(modeOf(d), [4242, 4242, 0o700]);
  });

  it("gives mail_owner a directory it creates, and makes the socket as mail_owner, mode 0666, with the umask", async () => {
    const h = home(root, "fresh");
    const priv = join(h, "queue", "private");
    const d = await startDaemon({ configDir: h, socket: join(priv, "tlsmgr") });
    try {
      assert.deepEqual(modeOf(priv), [NOBODY.uid, NOBODY.gid, 0o700], "private/ made for mail_owner");
      const st = lstatSync(join(priv, "tlsmgr"));
      assert.ok(st.isSocket());
      assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [NOBODY.uid, NOBODY.gid, 0o666], "socket made as mail_owner");
      assert.equal(tlsmgrStatus(await tlsmgrRequest(d.socket, [["request", "seed"], ["size", "8"]])), 0);
    } finally {
      await d.stop();
    }
    // Started again: the directory is mail_owner's already, and is used as it is.
    const again = await startDaemon({ configDir: h, socket: join(priv, "tlsmgr") });
    await again.stop();
    assert.deepEqual(modeOf(priv), [NOBODY.uid, NOBODY.gid, 0o700]);
  });

  it("makes no chmod or chown of any path at start-up (strace)", { skip: skipReason("strace", STRACE === undefined ? "strace not installed" : undefined) ?? false }, async () => {
    const h = home(root, "traced");
    const sock = join(h, "queue", "private", "tlsmgr");
    const trace = join(h, "strace.out");
    const proc = spawn(STRACE!, ["-f", "-qq", "-o", trace, "-e", "signal=none", "-e", "trace=chmod,fchmodat,chown,lchown,fchownat",
      process.execPath, DAEMON_MAIN, "--socket", sock], { cwd: REPO_ROOT, env: { ...process.env, MAIL_CONFIG: h }, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    proc.stderr!.on("data", (b: Buffer) => (err += b.toString()));
    const exited = new Promise((r) => proc.once("exit", r));
    try {
      for (let i = 0; i < 400 && !/listening on /.test(err) && proc.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(err, /listening on /, err);
    } finally {
      // The daemon itself, not strace (which would only let go of it).
      const pid = /tlsmgr\[(\d+)\]/.exec(err)?.[1];
      if (pid !== undefined && proc.exitCode === null) process.kill(Number(pid), "SIGTERM");
      else proc.kill("SIGKILL");
      await exited;
    }
    const calls = readFileSync(trace, "utf8").split("\n").filter((l) => /(chmod|chown)/.test(l) && !/AT_EMPTY_PATH/.test(l));
    assert.deepEqual(calls, [], "chmod/chown of a path");
  });

  it("changes nothing of root's when a mail_owner process swaps the socket for a symbolic link as it appears", async () => {
    const h = home(root, "race");
    const priv = join(h, "queue", "private");
    mkdirSync(join(h, "queue"), { mode: 0o755 });
    mkdirSync(priv, { mode: 0o700 });
    chownSync(priv, NOBODY.uid, NOBODY.gid); // master's private/ is mail_owner's
    const victim = join(root, "root-only");
    writeFileSync(victim, "root's 0600 file\n", { mode: 0o600 });
    const watcher = [
      'import { renameSync, symlinkSync, watch } from "node:fs";',
      `const dir = ${JSON.stringify(priv)};`,
      "let done = false;",
      'const w = watch(dir, (ev, f) => { if (f !== "tlsmgr" || done) return;',
      `  try { renameSync(dir + "/tlsmgr", dir + "/moved"); symlinkSync(${JSON.stringify(victim)}, dir + "/tlsmgr"); done = true; console.log("swapped"); } catch {} });`,
      "process.stdin.on('end', () => { w.close(); process.exit(0); }); process.stdin.resume();",
      'console.log("watching");',
    ].join("\n");
    for (let attempt = 0; attempt < 6; attempt++) {
      for (const f of readdirSync(priv)) rmSync(join(priv, f), { force: true }); // the last attempt's link and socket
      const w = spawn(process.execPath, ["--input-type=module", "-e", watcher], { uid: NOBODY.uid, gid: NOBODY.gid, cwd: "/", stdio: ["pipe", "pipe", "inherit"] });
      const wExited = new Promise((r) => w.once("exit", r));
      let out = "";
      w.stdout!.on("data", (b: Buffer) => (out += b.toString()));
      for (let i = 0; i < 200 && !out.includes("watching"); i++) await new Promise((r) => setTimeout(r, 25));
      const d = spawn(process.execPath, [DAEMON_MAIN, "--socket", join(priv, "tlsmgr")], { cwd: REPO_ROOT, env: { ...process.env, MAIL_CONFIG: h }, stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      d.stderr!.on("data", (b: Buffer) => (err += b.toString()));
      const exited = new Promise((r) => d.once("exit", r));
      for (let i = 0; i < 400 && !/listening on |fatal:/.test(err) && d.exitCode === null; i++) await new Promise((r) => setTimeout(r, 25));
      d.kill("SIGTERM");
      await exited;
      w.stdin!.end();
      await wExited;
      assert.match(out, /swapped/, `attempt ${attempt}: the watcher swapped the socket`);
      const st = statSync(victim);
      assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [0, 0, 0o600], `attempt ${attempt}: ${out.trim()} ${err}`);
      assert.equal(readFileSync(victim, "utf8"), "root's 0600 file\n");
    }
  });

  it("refuses a socket other users can reach while it would hand out ticket keys; serves seed and policy there otherwise", async () => {
    const open = join(root, "open");
    mkdirSync(open, { mode: 0o755 }); // root's, 0755: every user can enter it (and the directories above)
    chmodSync(open, 0o755);
    const keys = home(root, "keys");
    const err = await refused(keys, join(open, "tlsmgr.sock"));
    assert.match(err, /fatal: .*open\/tlsmgr\.sock: other users can reach it .*ticket keys/);
    const none = home(root, "none", ["smtpd_tls_session_cache_timeout = 0"]);
    const d = await startDaemon({ configDir: none, socket: join(open, "tlsmgr.sock") });
    try {
      assert.equal(tlsmgrStatus(await tlsmgrRequest(d.socket, [["request", "seed"], ["size", "8"]])), 0);
    } finally {
      await d.stop();
    }
    assert.deepEqual(modeOf(open), [0, 0, 0o755]);
  });
});
