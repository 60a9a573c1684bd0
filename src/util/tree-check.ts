/**
 * tree-check.ts - is the installed tree safe for master(8) to run as root,
 *                 and can mail_owner read it? (`tlsmgr-postfix install`,
 *                 and the daemon at start-up: master/tree-guard.ts)
 * Owns: the walk of the project tree (and its parent directories, and the
 *       Node.js that runs it) for entries that anyone but root could change,
 *       and for directories or files that mail_owner cannot reach.
 * Not here: what install does with the answers (tools/tlsmgr-postfix.ts),
 *           the daemon's warnings (master/tree-guard.ts).
 * See also: README.md (Install), postfix/conf/postfix-script (check-perms)
 *
 * master(8) starts the command as root, so whoever can change bin/tlsmgr,
 * dist/, node_modules/ or a directory above them can run code as root:
 * every entry must belong to root and be writable by no group or other
 * (a sticky directory such as /tmp is accepted above the tree: others cannot
 * replace root's entries in it). The daemon loads its code before it drops to
 * mail_owner, but modules loaded later (and a chroot column of y) need the
 * tree readable by mail_owner: that is a warning, not a refusal.
 * Symbolic links are not followed inside the tree (npm's .bin links point
 * into it); the walk is synchronous: a one-shot admin command, not the daemon.
 */

import { lstatSync, readdirSync, realpathSync, statSync, type Stats } from "node:fs";
import path from "node:path";

/** Ids of the user whose access is judged. */
export interface UserIds {
  uid: number;
  groups: readonly number[];
}

/** modeText - "0775" */
function modeText(st: Stats): string {
  return (st.mode & 0o7777).toString(8).padStart(4, "0");
}

/** changeableByOthers - why someone other than root can change this entry, or undefined */
function changeableByOthers(st: Stats, asParent: boolean): string | undefined {
  if (st.uid !== 0) return `owned by uid ${st.uid}, not root`;
  if ((st.mode & 0o022) === 0 || st.isSymbolicLink()) return undefined;
  if (asParent && st.isDirectory() && (st.mode & 0o1000) !== 0) return undefined; // sticky: /tmp
  return `mode ${modeText(st)}: writable by ${(st.mode & 0o002) !== 0 ? "everyone" : `group ${st.gid}`}`;
}

/** parentsOf - "/", "/opt", "/opt/x" for "/opt/x" */
function parentsOf(dir: string): string[] {
  const list: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    list.unshift(d);
    if (path.dirname(d) === d) return list;
  }
}

/** walk - every entry below dir (lstat), depth first; symbolic links are listed, not followed */
function walk(dir: string, visit: (file: string, st: Stats) => void): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    let st: Stats;
    try {
      st = lstatSync(file);
    } catch {
      continue;
    }
    visit(file, st);
    if (st.isDirectory()) walk(file, visit);
  }
}

/**
 * unsafeEntries - "PATH: why" for each entry that anyone but root could
 * change: the tree, its parent directories, and each extra file (the node
 * binary) with its own parents. At most limit lines.
 */
export function unsafeEntries(root: string, extraFiles: readonly string[], limit = 10): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const check = (file: string, st: Stats, asParent: boolean) => {
    if (seen.has(file) || out.length >= limit) return;
    seen.add(file);
    const why = changeableByOthers(st, asParent);
    if (why) out.push(`${file}: ${why}`);
  };
  const realRoot = realpathSync(root);
  for (const f of extraFiles) {
    let real: string;
    try {
      real = realpathSync(f);
    } catch {
      continue;
    }
    for (const d of parentsOf(path.dirname(real))) check(d, statSync(d), true);
    check(real, statSync(real), false);
  }
  for (const d of parentsOf(path.dirname(realRoot))) check(d, statSync(d), true);
  check(realRoot, statSync(realRoot), false);
  walk(realRoot, (file, st) => check(file, st, false));
  return out;
}

/** canAccess - whether ids may use st with these permission bits (4 read, 1 search), by mode bits alone */
function canAccess(st: Stats, ids: UserIds, bits: number): boolean {
  if (ids.uid === 0) return true;
  const shift = st.uid === ids.uid ? 6 : ids.groups.includes(st.gid) ? 3 : 0;
  return ((st.mode >> shift) & bits) === bits;
}

/**
 * unreadableEntry - the first directory mail_owner cannot search (from / down)
 * or entry of the tree it cannot read, as "PATH (mode M)"; undefined when none.
 */
export function unreadableEntry(root: string, ids: UserIds): string | undefined {
  const realRoot = realpathSync(root);
  for (const d of parentsOf(realRoot)) {
    const st = statSync(d);
    if (!canAccess(st, ids, 1)) return `${d} (mode ${modeText(st)}, owner ${st.uid}, group ${st.gid})`;
  }
  let found: string | undefined;
  walk(realRoot, (file, st) => {
    if (found !== undefined || st.isSymbolicLink()) return;
    if (!canAccess(st, ids, st.isDirectory() ? 5 : 4)) found = `${file} (mode ${modeText(st)}, owner ${st.uid}, group ${st.gid})`;
  });
  return found;
}
