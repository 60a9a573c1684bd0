#!/usr/bin/env node
/**
 * install.mjs - the package's install script (npm install, npm ci, npm install -g
 *               of the tarball): record this Node.js for bin/*, and make sure the
 *               POSIX addon loads: a prebuild for this platform, else a build
 *               from source, else a warning (the program runs without it).
 * Owns: build/node-path, the choice prebuild -> source build.
 * Not here: the source build itself (scripts/build-native.mjs), making the
 *           prebuilds (scripts/prebuild.mjs), TypeScript (scripts/prepare.mjs).
 * See also: bin/tlsmgr (reads build/node-path), src/native/posix.ts
 *
 * Always exits 0: no step of it is needed to run the daemon. The launchers
 * find a Node.js without build/node-path, and the addon only adds flock of the
 * PRNG exchange file, chroot and unix datagram logging.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** recordNode - build/node-path: the Node.js that ran the install, for the launchers */
function recordNode() {
  try {
    mkdirSync(path.join(root, "build"), { recursive: true });
    writeFileSync(path.join(root, "build", "node-path"), process.execPath + "\n");
  } catch (err) {
    process.stderr.write(`install: warning: cannot record the Node.js path in build/node-path: ${err.message}\n`);
  }
}

/** addonLoads - the file node-gyp-build finds for this platform, when it loads */
function addonLoads() {
  try {
    const require = createRequire(path.join(root, "package.json"));
    const file = require("node-gyp-build").resolve(root);
    return typeof require(file).flock === "function" ? file : undefined;
  } catch {
    return undefined;
  }
}

recordNode();
const found = addonLoads();
if (found) {
  process.stdout.write(`install: POSIX addon: ${path.relative(root, found)}\n`);
} else if (existsSync(path.join(root, "scripts", "build-native.mjs")) && existsSync(path.join(root, "binding.gyp"))) {
  process.stdout.write(`install: no prebuilt POSIX addon for ${process.platform}-${process.arch}: building it from source\n`);
  spawnSync(process.execPath, [path.join(root, "scripts", "build-native.mjs")], { stdio: "inherit", cwd: root });
}
process.exitCode = 0;
