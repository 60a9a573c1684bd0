/**
 * tree-guard.test.ts - our tlsmgr started by a real master(8), as root, from
 * a copy of this tree (issue 13, finding 6): a copy only root can change
 * starts without a word about it; once a file of it is writable by a group,
 * the next start says so loudly (SECURITY warnings naming the file), and
 * still serves.
 * See also: src/master/tree-guard.ts, src/util/tree-check.ts,
 *           test/integration/root-start.test.ts, docs/security.md
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, symlinkSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";
import { REPO_ROOT, tlsmgrRequest, tlsmgrStatus } from "../helpers/daemon.js";
import { createPostfixInstance, postfixSkipReason } from "../helpers/postfix-instance.js";
import { ROOT_SKIP } from "../helpers/second-user.js";
import { tempDir } from "../helpers/temp-dir.js";

const skip = postfixSkipReason() ?? ROOT_SKIP;

/** copyTree - bin/, dist/src, build/ and package.json copied, node_modules linked: a tree of root's, mode go-w. */
function copyTree(dir: string): string {
  const tree = join(dir, "tlsmgr-ts");
  mkdirSync(join(tree, "dist"), { recursive: true });
  for (const part of ["bin", "build", "package.json", join("dist", "src")]) cpSync(join(REPO_ROOT, part), join(tree, part), { recursive: true });
  symlinkSync(join(REPO_ROOT, "node_modules"), join(tree, "node_modules"));
  execFileSync("/bin/chown", ["-R", "-h", "root:root", tree]);
  execFileSync("/bin/chmod", ["-R", "go-w", tree]);
  return tree;
}

/** seed - one seed request answered (master starts tlsmgr on demand; one exiting after a reload may drop it: again). */
async function seed(socket: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      assert.equal(tlsmgrStatus(await tlsmgrRequest(socket, [["request", "seed"], ["size", "8"]], 20_000)), 0);
      return;
    } catch (err) {
      if (i >= 20) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

test("under master, a tree others than root can change is named in SECURITY warnings at start", { skip, timeout: 120_000 }, async (t) => {
  const dir = tempDir("tlsmgr-treeguard-");
  chmodSync(dir, 0o755);
  const tree = copyTree(dir);
  // master runs $daemon_directory/COMMAND: the command is the tree's launcher seen from there.
  const daemonDir = execFileSync("/usr/sbin/postconf", ["-dh", "daemon_directory"], { encoding: "utf8" }).trim();
  const pf = await createPostfixInstance({ tlsmgr: { command: relative(daemonDir, join(tree, "bin", "tlsmgr")) } });
  t.after(async () => {
    if (process.env["TREE_GUARD_DEBUG"]) process.stderr.write(await pf.logText());
    await pf.destroy();
  });
  await pf.start();
  await seed(pf.tlsmgrSocket);
  await pf.waitForLog(/postfix\/tlsmgr\[\d+\]: /, 15_000);
  assert.doesNotMatch(await pf.logText(), /SECURITY/, "a tree of root's: nothing to say");

  const loose = join(tree, "dist", "src", "main.js");
  chmodSync(loose, 0o664);
  await pf.reload();
  await seed(pf.tlsmgrSocket);
  await pf.waitForLog(/postfix\/tlsmgr\[\d+\]: warning: SECURITY: this tlsmgr runs as root from files that others than root can change/, 15_000);
  const line = await pf.waitForLog(/postfix\/tlsmgr\[\d+\]: warning: SECURITY: changeable by others than root: /, 15_000);
  assert.match(line, new RegExp(`${loose.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: mode 0664: writable by group 0`));
});
