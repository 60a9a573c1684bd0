/**
 * boot.test.ts - the daemon's entry before its code is known to load
 *                (src/boot.cts) and the postlog(1) route to the mail log
 *                (src/log/postlog-command.cts), outside master(8).
 * Owns: a Node.js too old getting as far as saying so (Node.js 10 parses the
 *       entry), a load failure on standard error with its cause, the plain
 *       main.cf reading used before the real parser loads, syslog_name as
 *       postconf expands it, and a line through the real postlog into a
 *       maillog_file (postlog writes it itself when postlogd is not running).
 * Also: bin/tlsmgr's own fatal error (its entry missing) into a maillog_file
 *       when GENERATION says master started it.
 * Not here: the same under master(8), into the instance's maillog
 *           (test/postfix/broken-install.test.ts).
 * See also: src/boot.cts, src/log/postlog-command.cts, bin/tlsmgr
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { commandDirectory, mainCfValue, oneLine, overrideValue, postlogLine, syslogName } from "../../src/log/postlog-command.cjs";
import { postfixSkipReason } from "../helpers/postfix-instance.js";
import { OLD_NODE_VERSION, oldNode } from "../helpers/old-node.js";

/** This file is dist/test/unit/boot.test.js. */
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const BOOT = path.join(ROOT, "dist", "src", "boot.cjs");
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version;
const noPostfix = postfixSkipReason();

// tempDir - a directory removed after the test
function tempDir(t: { after(fn: () => void): void }, prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test(`Node.js ${OLD_NODE_VERSION} parses the entry and says it is too old: exit 1, one fatal line`, async () => {
  const node = await oldNode();
  const r = spawnSync(node, [BOOT, "-l", "-t", "unix", "-u"], { encoding: "utf8", env: {} });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, new RegExp(`^tlsmgr\\[\\d+\\]: fatal: Node\\.js v${OLD_NODE_VERSION.replace(/\./g, "\\.")} \\(\\S+\\) cannot run `
    + `tlsmgr-ts ${VERSION.replace(/\./g, "\\.")}: it needs Node\\.js 20 or later \\(package\\.json engines\\)\\n$`));
});

test("a package missing: the entry names the cause on standard error and exits 1 (not under master: no postlog)", (t) => {
  const tree = tempDir(t, "tlsmgr-boottree-");
  for (const part of ["package.json", "dist", "node_modules"]) cpSync(path.join(ROOT, part), path.join(tree, part), { recursive: true, verbatimSymlinks: true });
  rmSync(path.join(tree, "node_modules", "lmdb"), { recursive: true });
  const r = spawnSync(process.execPath, [path.join(tree, "dist", "src", "boot.cjs"), "--version"], { encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `tlsmgr[${r.pid}]: fatal: cannot load ${tree}/dist/src/main.js: ERR_MODULE_NOT_FOUND: `
    + `Cannot find package 'lmdb' imported from ${tree}/dist/src/cache/backends/lmdb.js\n`);
  // a whole tree: the entry runs main.js
  const ok = spawnSync(process.execPath, [BOOT, "--version"], { encoding: "utf8" });
  assert.equal(ok.stdout, `tlsmgr (tlsmgr-ts) ${VERSION}\n`, ok.stderr);
});

test("main.cf read plainly before the parser loads: comments, continuations, the last setting, -o", (t) => {
  const dir = tempDir(t, "tlsmgr-bootcf-");
  writeFileSync(path.join(dir, "main.cf"), [
    "# command_directory = /commented",
    "command_directory = /first",
    "syslog_name = a",
    "command_directory =",
    "   /opt/postfix/sbin",
    "",
    "queue_directory = $command_directory/x",
  ].join("\n"));
  assert.equal(mainCfValue(dir, "command_directory"), "/opt/postfix/sbin");
  assert.equal(mainCfValue(dir, "syslog_name"), "a");
  assert.equal(mainCfValue(dir, "nothing"), undefined);
  assert.equal(mainCfValue(path.join(dir, "none"), "syslog_name"), undefined);
  const where = (argv: string[]) => ({ name: "tlsmgr", argv, env: { MAIL_CONFIG: dir } });
  assert.equal(commandDirectory(where([])), "/opt/postfix/sbin");
  assert.equal(commandDirectory(where(["-o", "command_directory=/o/sbin"])), "/o/sbin");
  assert.equal(commandDirectory(where(["-ocommand_directory=$x"])), "/usr/sbin", "a value to expand: the default");
  assert.equal(overrideValue(["-o", "a=1", "-u", "-o", "a = 2"], "a"), "2");
  assert.equal(oneLine("a\nb\t c\u0000"), "a b  c");
});

test("syslog_name as postconf expands it; postlog writes maillog_file itself when postlogd is not running",
  { skip: noPostfix ?? false }, (t) => {
    const dir = tempDir(t, "tlsmgr-postlog-");
    chmodSync(dir, 0o755);
    const maillog = path.join(dir, "maillog");
    writeFileSync(path.join(dir, "main.cf"), [
      "compatibility_level = 3.6",
      "multi_instance_name = postfix-b",
      `queue_directory = ${dir}/queue`,
      `maillog_file = ${maillog}`,
      `maillog_file_prefixes = ${dir}`,
      "",
    ].join("\n"));
    const where = { name: "tlsmgr", argv: [], env: { ...process.env, MAIL_CONFIG: dir } };
    assert.equal(syslogName(where), "postfix-b", "Postfix's default ${multi_instance_name?{$multi_instance_name}:{postfix}}");
    assert.equal(syslogName({ ...where, argv: ["-o", "syslog_name=other"] }), "other");
    assert.equal(postlogLine("warning", "cannot load x: line\none", where), "");
    const log = readFileSync(maillog, "utf8");
    assert.match(log, /^[A-Z][a-z]{2} +\d+ \d\d:\d\d:\d\d \S+ postfix-b\/tlsmgr\[\d+\]: warning: cannot load x: line one\n$/);
  });

test("bin/tlsmgr's own fatal error (its entry missing) goes to maillog_file through postlog when master started it",
  { skip: noPostfix ?? false }, (t) => {
    const dir = tempDir(t, "tlsmgr-bootsh-");
    chmodSync(dir, 0o755);
    const maillog = path.join(dir, "maillog");
    writeFileSync(path.join(dir, "main.cf"), `maillog_file = ${maillog}\nmaillog_file_prefixes = ${dir}\nsyslog_name = pf-sh\n`);
    cpSync(path.join(ROOT, "bin", "tlsmgr"), path.join(dir, "tree", "bin", "tlsmgr"));
    // GENERATION is what master(8) sets; the launcher runs before any Node.js
    const r = spawnSync(path.join(dir, "tree", "bin", "tlsmgr"), ["-l", "-t", "unix", "-u"],
      { encoding: "utf8", env: { GENERATION: "00000001", MAIL_CONFIG: dir } });
    assert.equal(r.status, 1);
    const why = `${dir}/tree/dist/src/boot.cjs is missing: run npm install (or npm run build) in ${dir}/tree`;
    assert.equal(r.stderr, `tlsmgr: fatal: ${why}\n`);
    assert.match(readFileSync(maillog, "utf8"), new RegExp(` pf-sh/tlsmgr\\[\\d+\\]: fatal: ${why.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\n$`));
  });
