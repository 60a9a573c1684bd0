/**
 * tools-tlsmgr-postfix.test.ts - bin/tlsmgr-postfix install / uninstall
 * against temporary copies of /etc/postfix, through the real postconf(1):
 * the command master(8) will run, the columns kept, chroot y -> n when the
 * addon is missing (and back on uninstall), the LMDB cache files uninstall
 * removes, the launcher without PATH.
 * See also: src/tools/tlsmgr-postfix.ts, bin/tlsmgr-postfix, postfix/src/master/master_ent.c
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = realpathSync(fileURLToPath(new URL("../../../", import.meta.url)));
const TOOL = path.join(ROOT, "dist", "src", "tools", "tlsmgr-postfix.js");
const temps: string[] = [];
before(() => {
  // install keeps chroot y only when the addon (chroot) is there: build it if this checkout has not.
  if (!existsSync(path.join(ROOT, "build", "Release", "posix.node"))) {
    execFileSync(process.execPath, [path.join(ROOT, "scripts", "build-native.mjs")], { stdio: "inherit", cwd: ROOT });
  }
});
after(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

/**
 * instance - a temporary copy of /etc/postfix's main.cf and master.cf, with
 * data_directory and queue_directory inside it (uninstall removes cache files
 * there: never the system's)
 */
function instance(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "tlsmgr-pfcfg-"));
  temps.push(dir);
  copyFileSync("/etc/postfix/main.cf", path.join(dir, "main.cf"));
  copyFileSync("/etc/postfix/master.cf", path.join(dir, "master.cf"));
  mkdirSync(path.join(dir, "data"));
  mkdirSync(path.join(dir, "queue"));
  execFileSync("postconf", ["-c", dir, "-e", `data_directory = ${dir}/data`, `queue_directory = ${dir}/queue`]);
  return dir;
}

/** postconf - run the real postconf on that directory */
function postconf(dir: string, ...args: string[]): string {
  return execFileSync("postconf", ["-c", dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** entry - the tlsmgr/unix line as fields ([] when absent) */
function entry(dir: string): string[] {
  return postconf(dir, "-M", "tlsmgr/unix").trim().split(/\s+/).filter((f) => f !== "");
}

/**
 * tool - run the compiled tool (or another copy of it); install runs this
 * tree itself (--in-place): the snapshots have tests of their own (snapshot.test.ts)
 */
function tool(args: string[], script = TOOL): { status: number | null; stdout: string; stderr: string } {
  const argv = args[0] === "install" && args.length > 1 ? ["install", "--in-place", ...args.slice(1)] : args;
  const r = spawnSync(process.execPath, [script, ...argv], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const daemonDir = realpathSync(execFileSync("postconf", ["-h", "daemon_directory"], { encoding: "utf8" }).trim());

test("install: command runs this bin/tlsmgr from daemon_directory, other columns kept; uninstall restores", () => {
  const dir = instance();
  postconf(dir, "-Me", "tlsmgr/unix=tlsmgr unix - - y 1000? 1 tlsmgr -o tls_random_bytes=64");
  const before = entry(dir);
  const r = tool(["install", dir]);
  assert.equal(r.status, 0, r.stderr);
  const after = entry(dir);
  assert.deepEqual(after.slice(0, 7), before.slice(0, 7), "service, type and five columns as they were (chroot y kept: the addon is built)");
  const command = after[7];
  assert.ok(!path.isAbsolute(command), "master prefixes daemon_directory: the command is relative to it");
  assert.equal(path.resolve(daemonDir, command), path.join(ROOT, "bin", "tlsmgr"));
  assert.equal(path.basename(command), "tlsmgr", "process_name stays tlsmgr");
  assert.deepEqual(after.slice(8), ["-o", "tls_random_bytes=64"], "arguments kept");
  assert.match(r.stdout, /tlsmgr\/unix now runs .*\/bin\/tlsmgr\n/);
  assert.match(r.stdout, new RegExp(`run "postfix -c ${dir} reload"`));

  const u = tool(["uninstall", dir]);
  assert.equal(u.status, 0, u.stderr);
  assert.deepEqual(entry(dir), before);
});

test("install adds the line when master.cf has none; uninstall puts Postfix's own back", () => {
  const dir = instance();
  postconf(dir, "-MX", "tlsmgr/unix");
  assert.deepEqual(entry(dir), []);
  assert.equal(tool(["install", dir]).status, 0);
  const e = entry(dir);
  assert.deepEqual(e.slice(0, 7), ["tlsmgr", "unix", "-", "-", "n", "1000?", "1"]);
  assert.equal(path.resolve(daemonDir, e[7]), path.join(ROOT, "bin", "tlsmgr"));
  postconf(dir, "-MX", "tlsmgr/unix");
  assert.equal(tool(["uninstall", dir]).status, 0);
  assert.deepEqual(entry(dir), ["tlsmgr", "unix", "-", "-", "n", "1000?", "1", "tlsmgr"]);
});

test("without the native addon: chroot y becomes n with a message, and uninstall sets it back to y", () => {
  // A copy of the compiled code with no build/Release/posix.node beside it.
  const copy = mkdtempSync(path.join(tmpdir(), "tlsmgr-noaddon-"));
  temps.push(copy);
  cpSync(path.join(ROOT, "dist", "src"), path.join(copy, "dist", "src"), { recursive: true });
  writeFileSync(path.join(copy, "package.json"), '{ "type": "module" }\n');
  const copyTool = path.join(copy, "dist", "src", "tools", "tlsmgr-postfix.js");
  const dir = instance();
  postconf(dir, "-Me", "tlsmgr/unix=tlsmgr unix - - y 1000? 1 tlsmgr");

  const r = tool(["install", dir], copyTool);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /chroot cannot be honoured \(.*\): chroot column of tlsmgr\/unix changed from y to n\n/);
  assert.match(r.stderr, /warning: .*\/bin\/tlsmgr is missing or not executable/);
  const e = entry(dir);
  assert.equal(e[4], "n");
  assert.equal(path.resolve(daemonDir, e[7]), path.join(copy, "bin", "tlsmgr"));

  const u = tool(["uninstall", dir], copyTool);
  assert.equal(u.status, 0, u.stderr);
  assert.match(u.stdout, /chroot column of tlsmgr\/unix set back to y/);
  assert.deepEqual(entry(dir), ["tlsmgr", "unix", "-", "-", "y", "1000?", "1", "tlsmgr"]);
});

test("uninstall removes this daemon's LMDB cache files (Postfix's LMDB cannot open them), and nothing else", () => {
  const dir = instance();
  postconf(dir, "-e", "smtpd_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache",
    "smtp_tls_session_cache_database = btree:smtp_scache", "lmtp_tls_session_cache_database =");
  const gone = [path.join(dir, "data", "smtpd_scache.lmdb"), path.join(dir, "data", "smtpd_scache.lmdb-lock"),
    path.join(dir, "queue", "smtp_scache.lmdb")];
  const kept = [path.join(dir, "data", "other.lmdb"), path.join(dir, "queue", "smtp_scache.db"), path.join(dir, "data", "prng_exch")];
  for (const f of [...gone, ...kept]) writeFileSync(f, "x");
  assert.equal(tool(["install", dir]).status, 0);
  for (const f of gone) assert.ok(existsSync(f), `install leaves ${f}`);
  const u = tool(["uninstall", dir]);
  assert.equal(u.status, 0, u.stderr);
  for (const f of gone) {
    assert.ok(!existsSync(f), `${f} removed`);
    assert.match(u.stdout, new RegExp(`removed ${f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `));
  }
  for (const f of kept) assert.ok(existsSync(f), `${f} kept`);
});

test("a non-default tlsmgr_service_name is the line that is rewritten", () => {
  const dir = instance();
  postconf(dir, "-e", "tlsmgr_service_name = tlsmgr2");
  assert.equal(tool(["install", dir]).status, 0);
  const e = postconf(dir, "-M", "tlsmgr2/unix").trim().split(/\s+/);
  assert.equal(e[0], "tlsmgr2");
  assert.equal(path.resolve(daemonDir, e[7]), path.join(ROOT, "bin", "tlsmgr"));
});

test("bad usage and a directory that is not a Postfix configuration: exit 1 with a fatal line", () => {
  const none = tool([]);
  assert.equal(none.status, 1);
  assert.equal(none.stderr,
    "tlsmgr-postfix: fatal: usage: tlsmgr-postfix install [--force] [--versions DIR | --in-place] [CONFIG_DIR] | uninstall [--keep-main-cf] [CONFIG_DIR] | keygen FILE\n");
  assert.equal(tool(["frobnicate"]).status, 1);
  assert.equal(tool(["install", "a", "b"]).status, 1);
  const empty = mkdtempSync(path.join(tmpdir(), "tlsmgr-empty-"));
  temps.push(empty);
  const r = tool(["install", empty]);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `tlsmgr-postfix: fatal: ${empty}/main.cf: no such file: is this a Postfix configuration directory?\n`);
});

test("bin/tlsmgr-postfix runs with no PATH at all: the Node.js recorded in build/node-path, else a usual place", () => {
  // A tree of its own: bin/ (the launcher), build/node-path, and dist/ linked to this checkout's.
  const tree = mkdtempSync(path.join(tmpdir(), "tlsmgr-launch-"));
  temps.push(tree);
  mkdirSync(path.join(tree, "bin"));
  mkdirSync(path.join(tree, "build"));
  copyFileSync(path.join(ROOT, "bin", "tlsmgr-postfix"), path.join(tree, "bin", "tlsmgr-postfix"));
  writeFileSync(path.join(tree, "build", "node-path"), `${process.execPath}\n`);
  symlinkSync(path.join(ROOT, "dist"), path.join(tree, "dist"));
  const dir = instance();
  const r = spawnSync(path.join(tree, "bin", "tlsmgr-postfix"), ["install", "--in-place", dir], { env: {}, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(path.resolve(daemonDir, entry(dir)[7]), path.join(ROOT, "bin", "tlsmgr"));

  // a recorded Node.js that is gone: node on PATH, else /usr/local/bin/node or /usr/bin/node
  writeFileSync(path.join(tree, "build", "node-path"), "/nonexistent/node\n");
  const usual = ["/usr/local/bin/node", "/usr/bin/node"].find((n) => existsSync(n));
  const fallback = spawnSync(path.join(tree, "bin", "tlsmgr-postfix"), ["--version"], { env: {}, encoding: "utf8" });
  if (usual !== undefined) {
    assert.equal(fallback.status, 0, fallback.stderr);
    assert.match(fallback.stdout, /^tlsmgr-postfix \(tlsmgr-ts\) \d+\.\d+\.\d+/);
  } else {
    assert.equal(fallback.status, 1);
    assert.match(fallback.stderr, /^tlsmgr-postfix: fatal: cannot find Node\.js: /);
  }
});

test("tlsmgr-postfix keygen FILE makes a 0600 secret once and refuses to overwrite it", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "tlsmgr-keygen-"));
  try {
    const file = path.join(dir, "wrap");
    const bin = path.join(ROOT, "bin", "tlsmgr-postfix");
    const first = spawnSync(bin, ["keygen", file], { encoding: "utf8" });
    assert.equal(first.status, 0, first.stderr);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const secret = readFileSync(file);
    const second = spawnSync(bin, ["keygen", file], { encoding: "utf8" });
    assert.equal(second.status, 1);
    assert.match(second.stderr, /fatal: keygen: .* exists: not replacing/);
    assert.deepEqual(readFileSync(file), secret, "the existing secret is kept");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
