/**
 * tree-guard.ts - at start-up as root under master(8): say loudly when the
 *                 files this daemon runs from could be changed by anyone but
 *                 root (whoever can change them runs code as root).
 * Owns: finding the running tree (this file's package root, the Node.js
 *       binary) and the warning lines.
 * Not here: the walk and its rules (util/tree-check.ts, shared with
 *           `tlsmgr-postfix install`, which refuses such a tree).
 * See also: README.md (Install: who owns it), docs/security.md
 *
 * A warning, not a refusal: master would restart a refusing tlsmgr for
 * ever, and the files have run as root already by the time this runs.
 * The walk is synchronous: start-up only, a few thousand entries.
 */

import path from "node:path";
import { fileURLToPath } from "node:url";
import { msgWarn } from "../log/msg.js";
import { unsafeEntries } from "../util/tree-check.js";

/** At most this many entries are named. */
const TREE_GUARD_LIMIT = 10;

/** runningTree - the package root: ../../.. from dist/src/master, ../.. from src/master. */
export function runningTree(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const up = path.basename(path.dirname(path.dirname(here))) === "dist" ? "../../.." : "../..";
  return path.resolve(here, up);
}

/** treeGuard - warn about each entry of the running tree (and Node.js) others than root can change; the number warned about. */
export function treeGuard(root: string = runningTree()): number {
  let unsafe: string[];
  try {
    unsafe = unsafeEntries(root, [process.execPath], TREE_GUARD_LIMIT);
  } catch {
    return 0; // the walk itself failed (a file vanished): nothing to say for sure
  }
  if (unsafe.length === 0) return 0;
  msgWarn(
    `SECURITY: this tlsmgr runs as root from files that others than root can change: whoever can change` +
      ` them runs code as root; make ${root} and the directories above it root's and not writable by group or` +
      " others (chown -R root:root; chmod -R go-w), as tlsmgr-postfix install requires",
  );
  for (const e of unsafe) msgWarn(`SECURITY: changeable by others than root: ${e}`);
  return unsafe.length;
}
