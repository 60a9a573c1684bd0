#!/usr/bin/env node
/**
 * build-native.mjs - build the small POSIX addon (native/posix.c) into build/Release/posix.node.
 * Owns: finding node-gyp (the copy npm bundles) and the Node headers, running the build,
 *       checking that the result loads.
 * Not here: the addon itself (native/posix.c), its loader (src/native/posix.ts).
 * See also: binding.gyp, scripts/prepare.mjs (calls this)
 *
 * Usage: node scripts/build-native.mjs [--force] [--verbose]
 * Always exits 0: when the addon cannot be built it prints a `warning:` line
 * and the program runs without it (src/native/posix.ts reports it as absent).
 * Skips the build when build/Release/posix.node is newer than its sources
 * and loads (unless --force).
 */
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const output = path.join(root, "build", "Release", "posix.node");
const sources = [path.join(root, "native", "posix.c"), path.join(root, "binding.gyp")];
const force = process.argv.includes("--force");
const verbose = process.argv.includes("--verbose");

/** warn - one clear warning line; the build is optional */
function warn(text) {
  process.stderr.write(`build-native: warning: ${text}\n`);
}

/** info - progress line */
function info(text) {
  process.stdout.write(`build-native: ${text}\n`);
}

/** loads - true when the built addon loads in this Node */
function loads() {
  try {
    const mod = createRequire(import.meta.url)(output);
    return typeof mod.flock === "function";
  } catch {
    return false;
  }
}

/** upToDate - the output exists, is newer than every source, and loads */
function upToDate() {
  if (!existsSync(output)) return false;
  const built = statSync(output).mtimeMs;
  for (const src of sources) if (!existsSync(src) || statSync(src).mtimeMs > built) return false;
  return loads();
}

/** findNodeGyp - the node-gyp.js npm bundles (also used by scripts/prebuild.mjs), or one npm names in its environment */
export function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  const npmBundled = (prefix) =>
    path.join(prefix, "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js");
  candidates.push(npmBundled(path.resolve(path.dirname(process.execPath), "..")));
  const npmPrefix = spawnSync("npm", ["prefix", "-g"], { encoding: "utf8", timeout: 30_000 });
  if (npmPrefix.status === 0 && npmPrefix.stdout.trim()) candidates.push(npmBundled(npmPrefix.stdout.trim()));
  try {
    candidates.push(createRequire(path.join(root, "package.json")).resolve("node-gyp/bin/node-gyp.js"));
  } catch {
    /* not installed locally: fine */
  }
  return candidates.find((c) => existsSync(c));
}

/** nodeDirArgs - point node-gyp at installed headers so it never downloads them */
export function nodeDirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = path.resolve(path.dirname(process.execPath), "..");
  if (existsSync(path.join(prefix, "include", "node", "node_api.h"))) return [`--nodedir=${prefix}`];
  return [];
}

function main() {
  if (process.platform === "win32") {
    warn("the POSIX addon is not built on Windows; flock, chroot and unix datagram sockets are unavailable");
    return;
  }
  if (!force && upToDate()) {
    info(`up to date: ${path.relative(root, output)}`);
    return;
  }
  const gyp = findNodeGyp();
  if (!gyp) {
    warn("cannot find node-gyp (bundled with npm); the POSIX addon is not built: flock of the PRNG exchange file, chroot and unix datagram logging are unavailable");
    return;
  }
  // configure + build, not rebuild: "rebuild" removes all of build/, where other files live (build/node-path).
  let run;
  for (const step of ["configure", "build"]) {
    const args = [gyp, step, ...nodeDirArgs()];
    if (verbose) info(`running ${process.execPath} ${args.join(" ")}`);
    run = spawnSync(process.execPath, args, {
      cwd: root,
      encoding: "utf8",
      timeout: 300_000,
      env: { ...process.env, npm_config_loglevel: process.env.npm_config_loglevel ?? "warn" },
    });
    if (run.error || run.status !== 0) break;
  }
  if (run.error || run.status !== 0) {
    const tail = `${run.stdout ?? ""}${run.stderr ?? ""}`.trim().split("\n").slice(-25).join("\n");
    if (tail) process.stderr.write(`${tail}\n`);
    warn(
      `node-gyp failed (${run.error ? run.error.message : `exit status ${run.status}`}); the POSIX addon is not built: ` +
        "flock of the PRNG exchange file, chroot and unix datagram logging are unavailable " +
        "(needs a C compiler, make, python3 and the Node headers)",
    );
    return;
  }
  if (!loads()) {
    warn(`${path.relative(root, output)} was built but does not load; the POSIX addon is unavailable`);
    return;
  }
  info(`built ${path.relative(root, output)}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  try {
    main();
  } catch (err) {
    warn(`unexpected error: ${err instanceof Error ? err.message : String(err)}; the POSIX addon is not built`);
  }
  process.exitCode = 0;
}
