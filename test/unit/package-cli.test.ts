/**
 * package-cli.test.ts - what an administrator meets first (issue 15):
 *                       --help/-h and --version on every command, the
 *                       daemon's name in ps/pgrep/pidof, tlsmgr-client
 *                       refusing bad arguments before it connects, the
 *                       install tree check, and the main.cf settings that
 *                       install declares and uninstall comments out.
 * Not here: the packed and installed package (postfix/package-install.test.ts),
 *           master(8) (postfix/under-master.test.ts).
 * See also: src/cli/usage.ts, src/master/process-title.ts, src/client/cli.ts,
 *           src/util/tree-check.ts, src/tools/main-cf-restore.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { unreadableEntry, unsafeEntries } from "../../src/util/tree-check.js";
import {
  declareArgs, mapType, ownParamsSet, settingsPostfixRefuses, withoutDeclareArgs,
} from "../../src/tools/main-cf-restore.js";
import { fileTicketKeysOpen } from "../../src/tickets/file-keys.js";
import { tempDir } from "../helpers/temp-dir.js";

const ROOT = realpathSync(fileURLToPath(new URL("../../../", import.meta.url)));
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version;
const AS_ROOT = process.getuid?.() === 0;
const work = tempDir("tlsmgr-pkgcli-");

/** bin - run bin/NAME ARGS */
function bin(name: string, args: string[]) {
  return spawnSync(path.join(ROOT, "bin", name), args, { encoding: "utf8", timeout: 60_000 });
}

test("--help, -h and --version: usage or version on standard output, exit 0, on every command", () => {
  for (const cmd of ["tlsmgr", "tlsmgr-client", "tlsmgr-postfix"]) {
    for (const flag of ["--help", "-h"]) {
      const r = bin(cmd, [flag]);
      assert.equal(r.status, 0, `${cmd} ${flag}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^usage: ${cmd} `), `${cmd} ${flag}`);
      assert.equal(r.stderr, "");
    }
    const v = bin(cmd, ["--version"]);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout, `${cmd} (tlsmgr-ts) ${VERSION}\n`);
  }
  assert.match(bin("tlsmgr-client", ["--help"]).stdout, /--hex +lookup prints the session itself, as hexadecimal/);
  assert.equal(bin("tlsmgr-postfix", ["install", "--help"]).status, 0);
  // a daemon option it does not know is still Postfix's fatal usage line
  const bad = bin("tlsmgr", ["-h", "x"]);
  assert.equal(bad.status, 0, "-h first wins");
  const wrong = bin("tlsmgr", ["-Q"]);
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, /fatal: usage: tlsmgr .*\(invalid option: -Q\)/);
});

test("tlsmgr-client: bad arguments are refused with a clear message, exit 2, before anything is sent", async () => {
  const sock = path.join(work, "listen.sock");
  let connections = 0;
  const srv = createServer((c) => {
    connections++;
    c.destroy();
  });
  await new Promise<void>((res) => srv.listen(sock, res));
  try {
    const cases: Array<[string[], RegExp]> = [
      [["policy", "smtpx"], /policy: unknown cache TYPE "smtpx" \(expecting smtpd, smtp, lmtp\)/],
      [["seed", "999"], /seed: SIZE must be a whole number from 1 to 255, not "999"/],
      [["seed", "0"], /seed: SIZE must be a whole number from 1 to 255, not "0"/],
      [["seed", "12x"], /seed: SIZE must be a whole number from 1 to 255, not "12x"/],
      [["lookup", "smtp"], /lookup: expecting 2 argument\(s\), got 1/],
      [["delete", "smtpd", ""], /delete: empty ID/],
      [["tktkey", "00ff"], /tktkey: NAME-HEX must be 32 hexadecimal digits/],
      [["frob"], /unknown request "frob"/],
      [[], /missing REQUEST/],
      [["--bogus", "seed", "1"], /unknown option --bogus/],
    ];
    for (const [args, re] of cases) {
      const r = await new Promise<{ status: number | null; stderr: string }>((res) => {
        const p = spawn(path.join(ROOT, "bin", "tlsmgr-client"), ["-s", sock, ...args], { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        p.on("close", (status) => res({ status, stderr }));
      });
      assert.equal(r.status, 2, args.join(" "));
      assert.match(r.stderr, new RegExp(`^tlsmgr-client: fatal: ${re.source}[^\\n]*\\nusage: tlsmgr-client `), args.join(" "));
    }
    await sleep(50);
    assert.equal(connections, 0, "nothing was sent");
  } finally {
    srv.close();
  }
});

test("the daemon calls itself tlsmgr: comm for pgrep -x, ps -C, pidof; its arguments in the command line", async () => {
  const home = path.join(work, "home");
  const socket = path.join(work, "title.sock");
  const p = spawn(path.join(ROOT, "bin", "tlsmgr"), ["--home", home, "--socket", socket], { stdio: ["ignore", "ignore", "pipe"] });
  try {
    // the launcher (/bin/sh running bin/tlsmgr) is called tlsmgr too: wait for the Node.js it execs to set its title
    let comm = "";
    let exe = "";
    for (let i = 0; i < 100 && (comm !== "tlsmgr" || exe !== realpathSync(process.execPath)); i++) {
      await sleep(50);
      try {
        comm = readFileSync(`/proc/${p.pid}/comm`, "utf8").trim();
        exe = readlinkSync(`/proc/${p.pid}/exe`);
      } catch {
        break;
      }
    }
    assert.equal(comm, "tlsmgr");
    const cmdline = readFileSync(`/proc/${p.pid}/cmdline`, "utf8").split("\0").filter((a) => a !== "").join(" ");
    assert.equal(cmdline, `tlsmgr --home ${home} --socket ${socket}`);
    const pidof = spawnSync("pidof", ["tlsmgr"], { encoding: "utf8" });
    if (pidof.error === undefined) assert.ok(pidof.stdout.trim().split(/\s+/).includes(String(p.pid)), `pidof: ${pidof.stdout}`);
    const pgrep = spawnSync("pgrep", ["-x", "tlsmgr"], { encoding: "utf8" });
    if (pgrep.error === undefined) assert.ok(pgrep.stdout.trim().split(/\s+/).includes(String(p.pid)), `pgrep -x: ${pgrep.stdout}`);
  } finally {
    p.kill("SIGTERM");
    await new Promise((res) => p.on("close", res));
  }
});

test("tree check: entries others than root can change are named; a sticky parent such as /tmp is accepted", { skip: !AS_ROOT && "needs root (files owned by root, chown)" }, () => {
  const tree = mkdtempSync(path.join(tmpdir(), "tlsmgr-tree-"));
  try {
    mkdirSync(path.join(tree, "bin"));
    writeFileSync(path.join(tree, "bin", "tlsmgr"), "#!/bin/sh\n", { mode: 0o755 });
    chmodSync(tree, 0o755);
    assert.deepEqual(unsafeEntries(tree, []), [], "root's, 0755 under /tmp (sticky)");
    chmodSync(path.join(tree, "bin", "tlsmgr"), 0o775);
    assert.deepEqual(unsafeEntries(tree, []), [`${realpathSync(tree)}/bin/tlsmgr: mode 0775: writable by group 0`]);
    chmodSync(path.join(tree, "bin", "tlsmgr"), 0o755);
    const nobody = Number(execFileSync("id", ["-u", "nobody"], { encoding: "utf8" }).trim());
    chownSync(path.join(tree, "bin"), nobody, 0);
    assert.deepEqual(unsafeEntries(tree, []), [`${realpathSync(tree)}/bin: owned by uid ${nobody}, not root`]);
    chownSync(path.join(tree, "bin"), 0, 0);
    // mail_owner's view: a 0700 directory on the way
    assert.equal(unreadableEntry(tree, { uid: nobody, groups: [] }), undefined);
    chmodSync(tree, 0o700);
    assert.match(unreadableEntry(tree, { uid: nobody, groups: [] }) ?? "", new RegExp(`^${realpathSync(tree)} \\(mode 0700, `));
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
});

test("tlsmgr-postfix install refuses a tree others can change, unless --force", { skip: !AS_ROOT && "needs root" }, () => {
  // a copy of the compiled code in a group-writable directory
  const copy = mkdtempSync(path.join(tmpdir(), "tlsmgr-unsafe-"));
  try {
    execFileSync("cp", ["-a", path.join(ROOT, "dist"), path.join(copy, "dist")]);
    copyFileSync(path.join(ROOT, "package.json"), path.join(copy, "package.json"));
    chmodSync(copy, 0o775);
    const cfg = path.join(work, "cfg-unsafe");
    mkdirSync(cfg);
    copyFileSync("/etc/postfix/main.cf", path.join(cfg, "main.cf"));
    copyFileSync("/etc/postfix/master.cf", path.join(cfg, "master.cf"));
    const tool = path.join(copy, "dist", "src", "tools", "tlsmgr-postfix.js");
    const before = readFileSync(path.join(cfg, "master.cf"), "utf8");
    const r = spawnSync(process.execPath, [tool, "install", "--in-place", cfg], { encoding: "utf8" });
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`fatal: master\\(8\\) runs .* as root, and this can be changed by others than root: ${copy}: mode 0775: writable by group 0 \\(`));
    assert.match(r.stderr, /--force installs anyway\n$/);
    assert.equal(readFileSync(path.join(cfg, "master.cf"), "utf8"), before, "master.cf untouched");
    const f = spawnSync(process.execPath, [tool, "install", "--in-place", "--force", cfg], { encoding: "utf8" });
    assert.equal(f.status, 0, f.stderr);
    assert.match(f.stderr, /warning: master\(8\) runs [\s\S]*installing anyway \(--force\)/);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});

test("main.cf: the parameters install declares, the -o it adds and removes, the settings uninstall comments out", () => {
  const mainCf = new Map([
    ["tlsmgr_ticket_key_database", "${data_directory}/tls-keys"],
    ["tlsmgr_attr_count_limit", "20"],
    ["smtpd_tls_session_cache_database", "redis:/etc/postfix/smtpd-redis.cf"],
    ["smtp_tls_session_cache_database", "$my_cache"],
    ["lmtp_tls_session_cache_database", "btree:${data_directory}/lmtp_scache"],
  ]);
  assert.deepEqual(ownParamsSet(mainCf), ["tlsmgr_ticket_key_database", "tlsmgr_attr_count_limit"]);
  const o = declareArgs(ownParamsSet(mainCf));
  assert.deepEqual(o, ["-o", "smtpd_restriction_classes=tlsmgr_ticket_key_database,tlsmgr_attr_count_limit"]);
  assert.deepEqual(declareArgs([]), []);
  assert.deepEqual(withoutDeclareArgs(["-o", "syslog_name=x", ...o]), ["-o", "syslog_name=x"]);
  // an admin's own restriction classes on that line stay
  assert.deepEqual(withoutDeclareArgs(["-o", "smtpd_restriction_classes=mine"]), ["-o", "smtpd_restriction_classes=mine"]);
  const expanded = new Map([["smtp_tls_session_cache_database", "memory:x"]]);
  assert.deepEqual(settingsPostfixRefuses(mainCf, expanded, ["btree", "hash", "lmdb"]),
    ["tlsmgr_ticket_key_database", "tlsmgr_attr_count_limit", "smtpd_tls_session_cache_database", "smtp_tls_session_cache_database"]);
  assert.equal(mapType(" lmdb:/x"), "lmdb");
  assert.equal(mapType("/x"), "");
});

test("uninstall --keep-main-cf prints the lines and the postconf -# command, and changes nothing in main.cf", () => {
  const cfg = path.join(work, "cfg-keep");
  mkdirSync(path.join(cfg, "data"), { recursive: true });
  copyFileSync("/etc/postfix/main.cf", path.join(cfg, "main.cf"));
  copyFileSync("/etc/postfix/master.cf", path.join(cfg, "master.cf"));
  execFileSync("postconf", ["-c", cfg, "-e", `data_directory = ${cfg}/data`, "tlsmgr_attr_count_limit = 20",
    "smtpd_tls_session_cache_database = redis:/etc/postfix/smtpd-redis.cf"], { stdio: "ignore" });
  const before = readFileSync(path.join(cfg, "main.cf"), "utf8");
  const r = bin("tlsmgr-postfix", ["uninstall", "--keep-main-cf", cfg]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`Postfix's tlsmgr cannot use these settings; comment them out with: postconf -c ${cfg} -# tlsmgr_attr_count_limit smtpd_tls_session_cache_database\\n`));
  assert.match(r.stdout, /  smtpd_tls_session_cache_database = redis:\/etc\/postfix\/smtpd-redis\.cf    \(Postfix has no redis: map type\)\n/);
  assert.equal(readFileSync(path.join(cfg, "main.cf"), "utf8"), before);
  const u = bin("tlsmgr-postfix", ["uninstall", cfg]);
  assert.equal(u.status, 0, u.stderr);
  const after = readFileSync(path.join(cfg, "main.cf"), "utf8");
  assert.match(after, /^#tlsmgr_attr_count_limit = 20$/m);
  assert.match(after, /^#smtpd_tls_session_cache_database = redis:/m);
  // postconf no longer warns about them
  const pc = spawnSync("postconf", ["-c", cfg, "-n"], { encoding: "utf8" });
  assert.doesNotMatch(pc.stderr, /tlsmgr_/);
});

test("a ticket key file the daemon makes in mail_owner's directory belongs to mail_owner; in root's it is root's", { skip: !AS_ROOT && "needs root (chown)" }, async () => {
  const nobody = { uid: Number(execFileSync("id", ["-u", "nobody"], { encoding: "utf8" }).trim()),
    gid: Number(execFileSync("id", ["-g", "nobody"], { encoding: "utf8" }).trim()) };
  // mail_owner opens the file in its directory: the way there must be open to it, as data_directory's is.
  const reachable = path.join(work, "reachable");
  mkdirSync(reachable);
  chmodSync(work, 0o755);
  chmodSync(reachable, 0o755);
  const data = path.join(reachable, "owned-data");
  mkdirSync(data);
  chownSync(data, nobody.uid, nobody.gid);
  const keys = await fileTicketKeysOpen(path.join(data, "tls-keys"), "test", { owner: nobody });
  await keys.close();
  assert.equal(statSync(path.join(data, "tls-keys")).uid, nobody.uid);
  assert.equal(statSync(path.join(data, "tls-keys")).mode & 0o777, 0o600);
  const rootDir = path.join(work, "root-dir");
  mkdirSync(rootDir, { mode: 0o700 });
  const k2 = await fileTicketKeysOpen(path.join(rootDir, "tls-keys"), "test", { owner: nobody });
  await k2.close();
  assert.equal(statSync(path.join(rootDir, "tls-keys")).uid, 0);
});
