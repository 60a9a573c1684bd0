/**
 * snapshot.ts - `tlsmgr-postfix install`: the copy of this installation that
 *               master(8) runs, so that rebuilding or upgrading the tree
 *               (`git pull && npm ci`, `npm install -g` of a new tarball)
 *               never changes the files of a daemon being started.
 * Owns: the versions directory (default /var/lib/tlsmgr-ts), what a snapshot
 *       holds (package.json, bin/, dist/src/, man/, prebuilds/, the built
 *       addon and build/node-path, the packages of node_modules/ that are not
 *       development-only), its name VERSION-HASH (SHA-256 of what it holds),
 *       making one (a copy under a temporary name, modes made root's alone,
 *       one rename), the check that it starts (its bin/tlsmgr --version with
 *       no environment, as master runs it), its build/snapshot.json, and the
 *       removal of old snapshots.
 * Not here: rewriting master.cf to run it (tools/tlsmgr-postfix.ts), the
 *           safety walk of a tree (util/tree-check.ts).
 * See also: README.md "Upgrade", man/tlsmgr.8 (INSTALLATION), bin/tlsmgr
 *
 * A snapshot is never changed once it has its name: the same content gets
 * the same name, so installing the same tree again reuses it. The switch from
 * one snapshot to the next is install's rewrite of the master.cf command
 * (postconf -M writes a new master.cf and renames it), which master(8) reads
 * at `postfix reload`; until then master keeps starting the old snapshot,
 * which is kept. Synchronous file I/O: a one-shot admin command.
 */

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync,
  renameSync, rmSync, statSync, writeFileSync, type Stats,
} from "node:fs";
import path from "node:path";
import { errorText } from "../log/errors.js";
import { msgFatal } from "../log/msg.js";

/** Where snapshots go unless --versions says otherwise. */
export const DEF_VERSIONS_DIR = "/var/lib/tlsmgr-ts";
/** How many snapshots install keeps besides the new one and the one master ran until now. */
export const KEEP_OTHERS = 2;
/** A snapshot's directory name: VERSION-HASH (12 hexadecimal digits of SHA-256). */
export const SNAPSHOT_NAME = /^[0-9][0-9A-Za-z.+-]*-[0-9a-f]{12}$/;
/** A temporary copy left by an install that did not finish is removed after this long. */
const STALE_TEMP_MS = 3600_000;

/** What the snapshot of a tree is, and whether this install made it. */
export interface Snapshot {
  /** the snapshot's directory: VERSIONS/VERSION-HASH */
  root: string;
  /** VERSION-HASH */
  name: string;
  /** false when a snapshot of the same content was already there */
  made: boolean;
}

/** packageVersionOf - "version" of root/package.json; fatal when it has none */
function packageVersionOf(root: string): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version?: unknown };
    if (typeof pkg.version === "string" && /^[0-9][0-9A-Za-z.+-]*$/.test(pkg.version)) return pkg.version;
  } catch (err) {
    msgFatal(`cannot read ${path.join(root, "package.json")}: ${errorText(err)}`);
  }
  msgFatal(`${path.join(root, "package.json")}: no usable version`);
}

/**
 * devOnlyPackages - node_modules/NAME entries that the lock file marks
 * development-only (dev or devOptional): typescript and the like are not copied
 */
export function devOnlyPackages(root: string): Set<string> {
  const out = new Set<string>();
  for (const lock of ["package-lock.json", path.join("node_modules", ".package-lock.json")]) {
    let packages: Record<string, { dev?: boolean; devOptional?: boolean }>;
    try {
      packages = (JSON.parse(readFileSync(path.join(root, lock), "utf8")) as { packages?: typeof packages }).packages ?? {};
    } catch {
      continue;
    }
    for (const [key, info] of Object.entries(packages)) {
      const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)$/.exec(key);
      if (m && (info.dev === true || info.devOptional === true)) out.add(m[1]!);
    }
    return out;
  }
  return out;
}

/** copyFilter - what of the tree goes into a snapshot (rel is relative to the tree) */
function snapshotFilter(dev: Set<string>): (rel: string) => boolean {
  return (rel) => {
    if (rel === "" || rel === "package.json") return true;
    const parts = rel.split(path.sep);
    const top = parts[0]!;
    if (top === "bin" || top === "man" || top === "prebuilds") return true;
    if (top === "dist") return parts.length === 1 || (parts[1] === "src" && !rel.endsWith(".map"));
    if (top === "build") {
      if (parts.length === 1 || rel === path.join("build", "node-path")) return true;
      return parts[1] === "Release" && (parts.length === 2 || (parts.length === 3 && rel.endsWith(".node")));
    }
    if (top === "node_modules") {
      if (parts.length === 1) return true;
      const name = parts[1]!.startsWith("@") && parts.length > 2 ? `${parts[1]}/${parts[2]}` : parts[1]!;
      if (parts[1] === ".bin" || parts[1]!.startsWith(".package-lock")) return false;
      return !dev.has(name);
    }
    return false;
  };
}

/** walkTree - every entry below dir, sorted, depth first (lstat; links listed, not followed) */
function walkTree(dir: string, visit: (rel: string, full: string, st: Stats) => void, rel = ""): void {
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    const r = rel === "" ? name : path.join(rel, name);
    const st = lstatSync(full);
    visit(r, full, st);
    if (st.isDirectory()) walkTree(full, visit, r);
  }
}

/** settleModes - directories 0755, files 0755 when executable by anyone else 0644: root's alone, readable by all */
function settleModes(root: string): void {
  chmodSync(root, 0o755);
  walkTree(root, (_rel, full, st) => {
    if (st.isSymbolicLink()) return;
    const mode = st.isDirectory() || (st.mode & 0o111) !== 0 ? 0o755 : 0o644;
    if ((st.mode & 0o7777) !== mode) chmodSync(full, mode);
  });
}

/** contentHash - SHA-256 over every entry's path, kind, mode and content (or link target) */
export function contentHash(root: string): string {
  const h = createHash("sha256");
  walkTree(root, (rel, full, st) => {
    if (rel === path.join("build", "snapshot.json")) return;
    if (st.isSymbolicLink()) h.update(`l ${rel} ${readlinkSync(full)}\n`);
    else if (st.isDirectory()) h.update(`d ${rel} ${(st.mode & 0o7777).toString(8)}\n`);
    else {
      h.update(`f ${rel} ${(st.mode & 0o7777).toString(8)} ${st.size}\n`);
      h.update(readFileSync(full));
    }
  });
  return h.digest("hex");
}

/**
 * startsCleanly - "" when DIR/bin/tlsmgr --version, run with no environment
 * as master(8) runs it, loads all of the daemon's code and prints its version;
 * else what it printed
 */
export function startsCleanly(root: string, version: string): string {
  const bin = path.join(root, "bin", "tlsmgr");
  const r = spawnSync(bin, ["--version"], { env: {}, encoding: "utf8", timeout: 60_000, stdio: ["ignore", "pipe", "pipe"] });
  if (r.status === 0 && r.stdout === `tlsmgr (tlsmgr-ts) ${version}\n`) return "";
  const said = `${r.stderr ?? ""}${r.stdout ?? ""}`.trim().split("\n").slice(0, 3).join("; ");
  return `${bin} --version: ${r.error ? errorText(r.error) : `exit status ${r.status}`}${said ? `: ${said}` : ""}`;
}

/**
 * makeSnapshot - the snapshot of the tree at from in versionsDir: made (copy,
 * modes, hash, one rename), or the one already there with the same content.
 * Fatal when it cannot be made or does not start.
 */
export function makeSnapshot(from: string, versionsDir: string): Snapshot {
  const version = packageVersionOf(from);
  try {
    mkdirSync(versionsDir, { recursive: true, mode: 0o755 });
  } catch (err) {
    msgFatal(`create directory ${versionsDir}: ${errorText(err)}`);
  }
  let temp = "";
  try {
    temp = mkdtempSync(path.join(versionsDir, ".new-"));
    const keep = snapshotFilter(devOnlyPackages(from));
    cpSync(from, temp, {
      recursive: true,
      dereference: true, // a linked package is copied: the snapshot must not depend on the tree
      filter: (src) => keep(path.relative(from, src)),
    });
    settleModes(temp);
  } catch (err) {
    if (temp !== "") rmSync(temp, { recursive: true, force: true });
    msgFatal(`cannot copy ${from} to ${versionsDir}: ${errorText(err)}`);
  }
  const name = `${version}-${contentHash(temp).slice(0, 12)}`;
  const root = path.join(versionsDir, name);
  let made = false;
  if (existsSync(root)) {
    rmSync(temp, { recursive: true, force: true });
  } else {
    const why = startsCleanly(temp, version);
    if (why !== "") {
      rmSync(temp, { recursive: true, force: true });
      msgFatal(`a copy of ${from} does not start: ${why}: is the tree being built? (run install again when it is done)`);
    }
    writeFileSync(path.join(temp, "build", "snapshot.json"),
      `${JSON.stringify({ name, from, made: new Date().toISOString() })}\n`, { mode: 0o644 });
    try {
      renameSync(temp, root);
      made = true;
    } catch (err) {
      rmSync(temp, { recursive: true, force: true });
      // another install of the same content won the rename
      if (!existsSync(root)) msgFatal(`rename ${temp} to ${root}: ${errorText(err)}`);
    }
  }
  if (!made) {
    const why = startsCleanly(root, version);
    if (why !== "") msgFatal(`snapshot ${root} does not start: ${why}: remove it and run install again`);
  }
  return { root, name, made };
}

/** snapshotOf - the snapshot directory (VERSIONS/NAME) that file lies in, or undefined */
export function snapshotOf(file: string, versionsDir: string): string | undefined {
  const rel = path.relative(path.resolve(versionsDir), path.resolve(file));
  if (rel === "" || rel.startsWith("..") || path.isAbsolute(rel)) return undefined;
  const name = rel.split(path.sep)[0]!;
  return SNAPSHOT_NAME.test(name) ? path.join(path.resolve(versionsDir), name) : undefined;
}

/** madeAt - when a snapshot was made (its build/snapshot.json, else its directory's mtime) */
function madeAt(dir: string): number {
  try {
    const made = Date.parse((JSON.parse(readFileSync(path.join(dir, "build", "snapshot.json"), "utf8")) as { made: string }).made);
    if (Number.isFinite(made)) return made;
  } catch {
    /* the directory's own time */
  }
  return statSync(dir).mtimeMs;
}

/**
 * pruneSnapshots - remove the snapshots of versionsDir but those in keep and
 * the KEEP_OTHERS newest others (and temporary copies older than an hour);
 * the removed directories, or "path: why" for one that could not be removed
 */
export function pruneSnapshots(versionsDir: string, keep: readonly string[]): string[] {
  const kept = new Set(keep.map((k) => path.resolve(k)));
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(versionsDir);
  } catch {
    return out;
  }
  const others: Array<{ dir: string; at: number }> = [];
  for (const n of names) {
    const dir = path.join(path.resolve(versionsDir), n);
    if (n.startsWith(".new-")) {
      try {
        if (Date.now() - statSync(dir).mtimeMs > STALE_TEMP_MS) rmSync(dir, { recursive: true, force: true });
      } catch {
        /* another install's, gone already */
      }
      continue;
    }
    if (!SNAPSHOT_NAME.test(n) || kept.has(dir)) continue;
    try {
      if (statSync(dir).isDirectory()) others.push({ dir, at: madeAt(dir) });
    } catch {
      /* gone */
    }
  }
  others.sort((a, b) => b.at - a.at);
  for (const { dir } of others.slice(KEEP_OTHERS)) {
    try {
      rmSync(dir, { recursive: true, force: true });
      out.push(dir);
    } catch (err) {
      out.push(`${dir}: ${errorText(err)}`);
    }
  }
  return out;
}
