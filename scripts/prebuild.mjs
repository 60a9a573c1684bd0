#!/usr/bin/env node
/**
 * prebuild.mjs - `npm pack` (prepack): prebuild the POSIX addon for linux x64
 *                and arm64 into prebuilds/linux-ARCH/tlsmgr-ts.glibc.node, with
 *                prebuildify, so that an install needs no compiler.
 * Owns: the list of targets, the cross compiler (Debian's gcc-aarch64-linux-gnu,
 *       installed through apt-get when root and missing), building in a scratch
 *       copy (node-gyp rebuild would wipe this tree's build/), and checking each
 *       result's ELF machine.
 * Not here: the addon (native/posix.c), the build on the installing host
 *           (scripts/build-native.mjs, scripts/install.mjs), loading it
 *           (src/native/posix.ts, through node-gyp-build).
 * See also: binding.gyp, package.json (files, scripts.prepack)
 *
 * Usage: node scripts/prebuild.mjs [--arch x64,arm64]
 * (or TLSMGR_PREBUILD_ARCHS=x64). Exits 1, saying why, when a target cannot be
 * built: a tarball without one of its prebuilds is not the package.
 * The prebuilds are N-API (one file serves every Node >= 20) and tagged glibc,
 * so that node-gyp-build never loads them on musl (it builds from source there).
 */
import { spawnSync } from "node:child_process";
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { findNodeGyp } from "./build-native.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const NAME = "tlsmgr-ts";

/** Per target: the ELF e_machine value, and the cross toolchain prefix used when it is not this host. */
const TARGETS = {
  x64: { machine: 62, triple: "x86_64-linux-gnu", apt: "gcc-x86-64-linux-gnu" },
  arm64: { machine: 183, triple: "aarch64-linux-gnu", apt: "gcc-aarch64-linux-gnu" },
};

/** info - progress line */
function info(text) {
  process.stdout.write(`prebuild: ${text}\n`);
}

/** fail - one error line and exit 1 */
function fail(text) {
  process.stderr.write(`prebuild: error: ${text}\n`);
  process.exit(1);
}

/** which - the full path of a program on PATH, or undefined */
function which(name) {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** ensureCrossCompiler - TRIPLE-gcc on PATH, installed through apt-get when root and missing */
function ensureCrossCompiler(target) {
  const gcc = `${target.triple}-gcc`;
  if (which(gcc)) return;
  if (process.getuid?.() !== 0 || !which("apt-get"))
    fail(`${gcc} not found: install it (apt-get install ${target.apt}), or pack for this host only with TLSMGR_PREBUILD_ARCHS=${os.arch()}`);
  info(`installing ${target.apt} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  let r = spawnSync("apt-get", ["install", "-y", "-q", target.apt], { stdio: ["ignore", "ignore", "pipe"], env, timeout: 600_000 });
  if (r.status !== 0) {
    spawnSync("apt-get", ["update", "-q"], { stdio: "ignore", env, timeout: 600_000 });
    r = spawnSync("apt-get", ["install", "-y", "-q", target.apt], { stdio: ["ignore", "ignore", "pipe"], env, timeout: 600_000 });
  }
  if (r.status !== 0 || !which(gcc)) fail(`apt-get install ${target.apt} failed: ${String(r.stderr ?? "").trim().split("\n").pop()}`);
}

/** elfMachine - e_machine of an ELF file (little-endian), or -1 when it is not one */
function elfMachine(file) {
  const buf = Buffer.alloc(20);
  const fd = openSync(file, "r");
  try {
    readSync(fd, buf, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  if (buf.toString("latin1", 0, 4) !== "\x7fELF") return -1;
  return buf.readUInt16LE(18);
}

/** targetArchs - from --arch, TLSMGR_PREBUILD_ARCHS, or both */
function targetArchs() {
  const at = process.argv.indexOf("--arch");
  const list = (at > 0 ? process.argv[at + 1] : process.env.TLSMGR_PREBUILD_ARCHS) || Object.keys(TARGETS).join(",");
  const archs = list.split(",").map((a) => a.trim()).filter((a) => a !== "");
  for (const a of archs) if (!TARGETS[a]) fail(`unknown target architecture ${a} (expecting ${Object.keys(TARGETS).join(", ")})`);
  return archs;
}

/** main - build every target into prebuilds/, or exit 1 saying why */
function main() {
  if (process.platform !== "linux") fail("prebuilds are made on linux");
  const gyp = findNodeGyp();
  if (!gyp) fail("cannot find node-gyp (npm bundles one)");
  const prebuildify = createRequire(path.join(root, "package.json")).resolve("prebuildify/bin.js");
  // node-gyp would download the Node headers; use the installed ones (no network here or on CI)
  const nodeDir = path.resolve(path.dirname(process.execPath), "..");
  if (!process.env.npm_config_nodedir && !existsSync(path.join(nodeDir, "include", "node", "node_api.h")))
    fail(`no Node headers in ${nodeDir}/include/node (set npm_config_nodedir)`);

  // A scratch copy: `node-gyp rebuild` empties build/, which holds this tree's own build.
  const scratch = mkdtempSync(path.join(os.tmpdir(), "tlsmgr-prebuild-"));
  try {
    cpSync(path.join(root, "binding.gyp"), path.join(scratch, "binding.gyp"));
    cpSync(path.join(root, "native"), path.join(scratch, "native"), { recursive: true });
    writeFileSync(path.join(scratch, "package.json"), JSON.stringify({ name: NAME, private: true }) + "\n");
    rmSync(path.join(root, "prebuilds"), { recursive: true, force: true });

    for (const arch of targetArchs()) {
      const target = TARGETS[arch];
      const env = {
        ...process.env,
        PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ""}`,
        npm_config_nodedir: process.env.npm_config_nodedir ?? nodeDir,
        PREBUILD_NODE_GYP: gyp,
      };
      const args = [prebuildify, "--napi", "--strip", "--tag-libc", "--arch", arch, "--cwd", scratch, "--out", root];
      if (arch !== os.arch()) {
        ensureCrossCompiler(target);
        Object.assign(env, { CC: `${target.triple}-gcc`, CXX: `${target.triple}-gcc`, LINK: `${target.triple}-gcc` });
        args.push("--strip-bin", `${target.triple}-strip`);
      }
      info(`building for linux-${arch}`);
      const r = spawnSync(process.execPath, args, { cwd: scratch, env, encoding: "utf8", timeout: 600_000 });
      if (r.status !== 0) {
        process.stderr.write(`${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n").slice(-25).join("\n") + "\n");
        fail(`prebuildify for linux-${arch} failed (exit status ${r.status})`);
      }
      const dir = path.join(root, "prebuilds", `linux-${arch}`);
      const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".node")) : [];
      if (files.length !== 1) fail(`expected one .node file in ${dir}, found ${files.length}`);
      const file = path.join(dir, files[0]);
      const machine = elfMachine(file);
      if (machine !== target.machine) fail(`${file}: ELF machine ${machine}, expected ${target.machine} (${arch})`);
      info(`built ${path.relative(root, file)}`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  mkdirSync(path.join(root, "prebuilds"), { recursive: true });
}

main();
