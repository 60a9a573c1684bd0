/**
 * snapshot.test.ts - the snapshot `tlsmgr-postfix install` makes for master(8)
 *                    to run (src/tools/snapshot.ts), made from a copy of this
 *                    tree in temporary directories.
 * Owns: what a snapshot holds and leaves out (tests, source maps,
 *       development-only packages), its modes, its name VERSION-HASH and the
 *       reuse of an equal one, the refusal of a tree that does not start (and
 *       nothing left behind), and which old snapshots pruning keeps.
 * Not here: a snapshot under master(8) (test/postfix/broken-install.test.ts);
 *           the master.cf line (tools-tlsmgr-postfix.test.ts).
 * See also: src/tools/snapshot.ts, README.md "Upgrade"
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FatalError } from "../../src/log/msg.js";
import { KEEP_OTHERS, devOnlyPackages, makeSnapshot, pruneSnapshots, snapshotOf } from "../../src/tools/snapshot.js";
import { captureMsgs } from "../helpers/msg-capture.js";

/** This file is dist/test/unit/snapshot.test.js. */
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version;

// tempDir - a directory removed after the test
function tempDir(t: { after(fn: () => void): void }, prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// treeCopy - what an installation in a clone has, copied
function treeCopy(dir: string): string {
  for (const part of ["package.json", "package-lock.json", "bin", "dist", "build", "man", "prebuilds", "node_modules"]) {
    if (existsSync(path.join(ROOT, part))) cpSync(path.join(ROOT, part), path.join(dir, part), { recursive: true, verbatimSymlinks: true });
  }
  return dir;
}

test("a snapshot holds what runs the daemon, root's alone, named VERSION-HASH; the same tree again reuses it", (t) => {
  const tree = treeCopy(tempDir(t, "tlsmgr-snaptree-"));
  const versions = path.join(tempDir(t, "tlsmgr-snapver-"), "versions");
  const first = makeSnapshot(tree, versions);
  assert.equal(first.made, true);
  assert.match(first.name, new RegExp(`^${VERSION.replace(/\./g, "\\.")}-[0-9a-f]{12}$`));
  assert.equal(first.root, path.join(versions, first.name));
  for (const f of ["package.json", "bin/tlsmgr", "bin/tlsmgr-postfix", "dist/src/boot.cjs", "dist/src/main.js",
    "node_modules/ioredis/package.json", "node_modules/lmdb/package.json", "build/node-path", "man/tlsmgr.8"]) {
    assert.ok(existsSync(path.join(first.root, f)), `${f} in the snapshot`);
  }
  const dev = devOnlyPackages(tree);
  assert.ok(dev.has("typescript") && dev.has("@types/node"), [...dev].join(" "));
  for (const f of ["dist/test", "node_modules/typescript", "node_modules/@types/node", "node_modules/.bin", "src", "test"]) {
    assert.equal(existsSync(path.join(first.root, f)), false, `${f} not in the snapshot`);
  }
  assert.equal(readdirSync(path.join(first.root, "dist", "src")).some((f) => f.endsWith(".map")), false, "no source maps");
  assert.equal(statSync(first.root).mode & 0o7777, 0o755);
  assert.equal(statSync(path.join(first.root, "bin", "tlsmgr")).mode & 0o7777, 0o755);
  assert.equal(statSync(path.join(first.root, "dist", "src", "main.js")).mode & 0o7777, 0o644);
  const made = JSON.parse(readFileSync(path.join(first.root, "build", "snapshot.json"), "utf8")) as { name: string; from: string };
  assert.deepEqual([made.name, made.from], [first.name, tree]);
  assert.equal(snapshotOf(path.join(first.root, "bin", "tlsmgr"), versions), first.root);
  assert.equal(snapshotOf(path.join(tree, "bin", "tlsmgr"), versions), undefined);

  const again = makeSnapshot(tree, versions);
  assert.deepEqual(again, { ...first, made: false });
  // a snapshot of the snapshot is itself (an admin running the snapshot's own tlsmgr-postfix)
  assert.equal(makeSnapshot(first.root, versions).root, first.root);
  assert.deepEqual(readdirSync(versions), [first.name], "no temporary copy left");

  // a change in the tree is another snapshot
  writeFileSync(path.join(tree, "dist", "src", "extra.js"), "export {};\n");
  const changed = makeSnapshot(tree, versions);
  assert.equal(changed.made, true);
  assert.notEqual(changed.name, first.name);
});

test("a tree that does not start (a build half done) is refused, and nothing is left in the versions directory", (t) => {
  const tree = treeCopy(tempDir(t, "tlsmgr-snaptree-"));
  const versions = path.join(tempDir(t, "tlsmgr-snapver-"), "versions");
  rmSync(path.join(tree, "node_modules", "ioredis"), { recursive: true });
  const r = captureMsgs(() => makeSnapshot(tree, versions));
  assert.ok(r.error instanceof FatalError, String(r.error));
  assert.equal(r.lines.length, 1, r.lines.join("\n"));
  assert.match(r.lines[0]!, new RegExp(`^fatal: a copy of ${tree.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} does not start: `
    + `\\S+/bin/tlsmgr --version: exit status 1: tlsmgr\\[\\d+\\]: fatal: cannot load \\S+/main\\.js: ERR_MODULE_NOT_FOUND: `
    + "Cannot find package 'ioredis' .*: is the tree being built\\? \\(run install again when it is done\\)$"));
  assert.deepEqual(readdirSync(versions), []);
});

test("pruning keeps the snapshots named, the newest others, and the temporary copies of installs under way", (t) => {
  const versions = tempDir(t, "tlsmgr-snapver-");
  const names = ["0.1.0-000000000001", "0.1.0-000000000002", "0.1.0-000000000003", "0.2.0-000000000004", "0.2.0-000000000005"];
  names.forEach((n, i) => {
    mkdirSync(path.join(versions, n, "build"), { recursive: true });
    writeFileSync(path.join(versions, n, "build", "snapshot.json"),
      JSON.stringify({ name: n, from: "/x", made: new Date(Date.UTC(2026, 0, 1 + i)).toISOString() }));
  });
  mkdirSync(path.join(versions, "not-a-snapshot"));
  mkdirSync(path.join(versions, ".new-fresh"));
  mkdirSync(path.join(versions, ".new-stale"));
  const old = new Date(Date.now() - 2 * 3600_000);
  utimesSync(path.join(versions, ".new-stale"), old, old);
  // keep: the new one (newest) and the one master ran until now (the oldest)
  const removed = pruneSnapshots(versions, [path.join(versions, names[4]!), path.join(versions, names[0]!)]);
  assert.equal(KEEP_OTHERS, 2);
  assert.deepEqual(removed, [path.join(versions, names[1]!)]);
  assert.deepEqual(readdirSync(versions).sort(),
    [".new-fresh", names[0], names[2], names[3], names[4], "not-a-snapshot"].sort());
});
