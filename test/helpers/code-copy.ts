/**
 * code-copy.ts - the built daemon where another user may run it: the tree
 *                itself when that user can read it, else a copy of what the
 *                daemon needs (dist/, build/, node_modules/, package.json).
 * Owns: the check (a child process running as that user tries to read the
 *       daemon's entry, its addon and its packages), the copy (hard links
 *       when they are readable, else a copy opened to all), one note on
 *       stderr saying so, and removing the copy at exit.
 * Not here: running the daemon (test/helpers/raw-conn.ts daemonRunToExit,
 *           test/helpers/daemon.ts).
 * See also: test/robustness/stored-state.test.ts (the daemon as nobody)
 *
 * Why: a clone under a directory other users may not enter (root's 0700
 * home, a `mktemp -d` directory) cannot be run by a process that starts as
 * nobody. A daemon started as root loads its code before it drops
 * privileges and needs none of this (src/native/posix.ts).
 */

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { DAEMON_MAIN, REPO_ROOT as ROOT_DIR } from "./daemon.js";
import { exitHook } from "./exit-hook.js";

/** The project root, without daemon.ts's trailing slash (it goes into messages). */
const REPO_ROOT = ROOT_DIR.replace(/\/+$/, "");

/** What the daemon reads from the tree to start: copied as they are. */
const PARTS = ["package.json", "dist", "build", "node_modules"];
/** Files whose reading stands for the rest: the entry, the addon, the packages. */
const PROBES = ["dist/src/main.js", "build/Release/posix.node", "node_modules/lmdb/package.json", "node_modules/ioredis/package.json"];

/** root -> copies made for a uid:gid, reused by the whole test process. */
const copies = new Map<string, string>();
const installExitHook = exitHook(() => {
  for (const dir of copies.values()) rmSync(dir, { recursive: true, force: true });
});

/** readableBy - every probe that exists under root can be read by uid:gid */
function readableBy(root: string, uid: number, gid: number): boolean {
  const files = PROBES.map((p) => join(root, p)).filter((p) => existsSync(p));
  const r = spawnSync(
    process.execPath,
    ["-e", "const fs = require('node:fs'); for (const f of process.argv.slice(1)) fs.accessSync(f, fs.constants.R_OK);", ...files],
    { uid, gid, stdio: "ignore", timeout: 20_000 },
  );
  return r.status === 0;
}

/** copyTree - PARTS of the tree into dir, with `cp -a` (hard links with -l) */
function copyTree(dir: string, links: boolean): boolean {
  for (const part of PARTS) {
    if (!existsSync(join(REPO_ROOT, part))) continue;
    const r = spawnSync("cp", [links ? "-al" : "-a", join(REPO_ROOT, part), join(dir, part)], { stdio: "ignore" });
    if (r.status !== 0) return false;
  }
  return true;
}

/**
 * treeReadableBy - a project root whose built code uid:gid can run: the tree
 * itself when that user can read it, else a copy of PARTS under os.tmpdir()
 * (made once per test process and uid:gid). Throws, saying what is needed,
 * when neither can be read.
 */
export function treeReadableBy(uid: number, gid: number): string {
  if (readableBy(REPO_ROOT, uid, gid)) return REPO_ROOT;
  const key = `${uid}:${gid}`;
  const known = copies.get(key);
  if (known !== undefined) return known;
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), "tlsmgr-code-"));
  copies.set(key, dir);
  chmodSync(dir, 0o755);
  // Hard links share the files' modes: enough when only a directory on the way was closed.
  let ok = copyTree(dir, true) && readableBy(dir, uid, gid);
  if (!ok) {
    for (const part of PARTS) rmSync(join(dir, part), { recursive: true, force: true });
    ok = copyTree(dir, false) && spawnSync("chmod", ["-R", "a+rX", dir]).status === 0 && readableBy(dir, uid, gid);
  }
  if (!ok) {
    throw new Error(
      `uid ${uid} can read neither ${REPO_ROOT} nor a copy of it in ${dir}: ` +
        "clone the project where other users may read it (every parent directory searchable), or set TMPDIR to such a directory",
    );
  }
  process.stderr.write(`note: ${REPO_ROOT} cannot be read by uid ${uid}: its code runs as that user from a copy in ${dir}\n`);
  return dir;
}

/** daemonMainFor - dist/src/main.js of treeReadableBy(uid, gid) */
export function daemonMainFor(uid: number, gid: number): string {
  return join(treeReadableBy(uid, gid), relative(REPO_ROOT, DAEMON_MAIN));
}
