/**
 * package-install.test.ts - the npm package as an administrator gets it
 *                           (issue 15, "What must be shown"): `npm pack` of
 *                           a copy of this tree, `npm install -g` of the
 *                           tarball into a temporary prefix with no compiler
 *                           on PATH, the three commands through their links,
 *                           then `tlsmgr-postfix install` into a private
 *                           Postfix instance and a session resumed through it.
 * Owns: the tarball's contents (dist/src without tests, the man page, the
 *       prebuilt addon for linux x64 and arm64 as real ELF files of those
 *       machines), an install that compiles nothing, the launchers from any
 *       link, `npm install --prefix` (the /opt/tlsmgr-ts layout), and the
 *       installed daemon under master(8): pgrep -x tlsmgr, postfix check.
 * Not here: the daemon's behaviour under master in depth (under-master.test.ts).
 * See also: package.json (files, scripts), scripts/prebuild.mjs,
 *           scripts/install.mjs, bin/tlsmgr, README.md (Install)
 *
 * The copy (not this tree) is packed: npm pack runs tsc and node-gyp, which
 * must not rewrite the dist/ and build/ other test files are running from.
 * The copy shares this tree's node_modules (a symbolic link): npm ci has run.
 * The installs use npm's cache (--prefer-offline): npm ci filled it.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { arch, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { createPostfixInstance, opensslResumes, postfixSkipReason } from "../helpers/postfix-instance.js";

const skip = postfixSkipReason();

/** This file is dist/test/postfix/package-install.test.js. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
const SBIN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";
/** What a mail host without build tools has: Node.js, npm and the basic tools. */
const BASIC_TOOLS = ["node", "npm", "sh", "env", "readlink", "id", "ls", "cat", "mkdir", "rm", "chmod", "cp", "mv", "ln",
  "uname", "dirname", "basename", "grep", "sed", "tr", "head", "tail", "sort", "tar", "gzip"];
const COMPILERS = ["cc", "gcc", "c++", "g++", "make", "python", "python3", "aarch64-linux-gnu-gcc"];
/** Entries of the source tree that are not copied: built or installed things. */
const NOT_COPIED = new Set(["node_modules", "dist", "build", "prebuilds", "var", ".git"]);

interface Run { status: number; stdout: string; stderr: string }

// run - a command with this environment plus env; never rejects (the status says)
function run(file: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((res) => {
    execFile(file, args, {
      cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 300_000, maxBuffer: 16 << 20,
    }, (err, stdout, stderr) => {
      const status = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
      res({ status, stdout, stderr: `${stderr}${err && status === -1 ? err.message : ""}` });
    });
  });
}

// which - the full path of a program on PATH plus the sbin directories, or undefined
function which(name: string): string | undefined {
  for (const d of `${process.env["PATH"] ?? ""}:${SBIN_PATH}`.split(":")) {
    if (d !== "" && existsSync(join(d, name))) return join(d, name);
  }
  return undefined;
}

// elfMachine - e_machine of an ELF file: 62 x86-64, 183 aarch64; -1 when not ELF
function elfMachine(file: string): number {
  const buf = readFileSync(file);
  return buf.subarray(0, 4).toString("latin1") === "\x7fELF" ? buf.readUInt16LE(18) : -1;
}

// procComm - /proc/PID/comm without its newline
function procComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

test("npm pack, npm install -g with no compiler, the commands through their links, install into Postfix, resumption",
  { skip: skip ?? false, timeout: 600_000 }, async (t) => {
    const work = mkdtempSync(join(tmpdir(), "tlsmgr-pkg-"));
    t.after(() => rmSync(work, { recursive: true, force: true }));
    chmodSync(work, 0o755); // the postfix user reads the installed tree
    const started = Date.now();
    const phase = (what: string) => t.diagnostic(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);

    // a fresh tree: the sources, this tree's node_modules (npm ci has run)
    const src = join(work, "src");
    mkdirSync(src);
    for (const name of readdirSync(ROOT)) {
      if (NOT_COPIED.has(name) || name.endsWith(".tgz")) continue;
      cpSync(join(ROOT, name), join(src, name), { recursive: true });
    }
    symlinkSync(join(ROOT, "node_modules"), join(src, "node_modules"));

    let tarball = "";
    await t.test("npm pack: dist/src, the man page, the addon prebuilt for linux x64 and arm64; no tests", async () => {
      const r = await run("npm", ["pack", "--pack-destination", work], { cwd: src });
      assert.equal(r.status, 0, `npm pack:\n${r.stdout}\n${r.stderr}`);
      tarball = join(work, r.stdout.trim().split("\n").pop()!);
      assert.ok(existsSync(tarball), tarball);
      const list = (await run("tar", ["tzf", tarball])).stdout.split("\n").filter((l) => l !== "");
      for (const f of ["package/package.json", "package/bin/tlsmgr", "package/bin/tlsmgr-client", "package/bin/tlsmgr-postfix",
        "package/dist/src/main.js", "package/dist/src/client/cli.js", "package/dist/src/tools/tlsmgr-postfix.js",
        "package/man/tlsmgr.8", "package/native/posix.c", "package/binding.gyp", "package/scripts/install.mjs",
        "package/scripts/build-native.mjs"]) {
        assert.ok(list.includes(f), `${f} in the tarball`);
      }
      assert.deepEqual(list.filter((f) => /^package\/(dist\/(test|bench)\/|src\/|test\/|bench\/)|\.map$|\.ts$/.test(f)), [],
        "no tests, sources or source maps");
      const prebuilds = list.filter((f) => f.startsWith("package/prebuilds/")).sort();
      assert.deepEqual(prebuilds.map((f) => f.split("/")[2]), ["linux-arm64", "linux-x64"], prebuilds.join(" "));
      const unpacked = join(work, "unpacked");
      mkdirSync(unpacked);
      assert.equal((await run("tar", ["xzf", tarball, "-C", unpacked])).status, 0);
      const machines: Record<string, number> = { "linux-x64": 62, "linux-arm64": 183 };
      for (const f of prebuilds) {
        const file = join(unpacked, f);
        assert.equal(elfMachine(file), machines[f.split("/")[2]!], `${f}: ELF machine`);
        if (which("file") !== undefined) {
          const desc = (await run("file", ["-b", file])).stdout;
          assert.match(desc, f.includes("arm64") ? /ELF 64-bit LSB shared object, ARM aarch64/ : /ELF 64-bit LSB shared object, x86-64/);
        }
      }
      phase("packed");
    });

    // PATH for the mail host: links to Node.js, npm and basic tools only
    const hostPath = join(work, "host-bin");
    mkdirSync(hostPath);
    for (const tool of BASIC_TOOLS) {
      const found = which(tool);
      if (found !== undefined) symlinkSync(found, join(hostPath, tool));
    }
    const hostEnv = { PATH: hostPath };
    const prefix = join(work, "prefix");
    const pkgDir = join(prefix, "lib", "node_modules", "tlsmgr-ts");

    await t.test("npm install -g of the tarball with no compiler on PATH compiles nothing", async () => {
      for (const c of COMPILERS) assert.equal(existsSync(join(hostPath, c)), false, `${c} on the host PATH`);
      const r = await run("npm", ["install", "-g", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", tarball],
        { env: hostEnv });
      assert.equal(r.status, 0, `npm install -g:\n${r.stdout}\n${r.stderr}`);
      assert.equal(existsSync(join(pkgDir, "build", "Release")), false, "no build from source");
      const posix = await run(join(hostPath, "node"), ["--input-type=module", "-e",
        `import { nativeAddonPath } from ${JSON.stringify(join(pkgDir, "dist", "src", "native", "posix.js"))};` +
        "console.log(nativeAddonPath() ?? 'absent')"], { env: hostEnv });
      assert.equal(posix.stdout.trim(), realpathSync(join(pkgDir, "prebuilds", `linux-${arch()}`, readdirSync(join(pkgDir, "prebuilds", `linux-${arch()}`))[0]!)),
        posix.stderr);
      assert.ok(existsSync(join(prefix, "share", "man", "man8", "tlsmgr.8")), "man page linked");
      phase("installed -g");
    });

    await t.test("the three commands run through their links, and through a link to a link with no PATH", async () => {
      for (const cmd of ["tlsmgr", "tlsmgr-client", "tlsmgr-postfix"]) {
        const link = join(prefix, "bin", cmd);
        assert.ok(readlinkSync(link).length > 0, `${link} is a link`);
        const v = await run(link, ["--version"], { env: hostEnv });
        assert.equal(v.status, 0, v.stderr);
        assert.equal(v.stdout, `${cmd} (tlsmgr-ts) ${VERSION}\n`);
        const h = await run(link, ["--help"], { env: hostEnv });
        assert.equal(h.status, 0, h.stderr);
        assert.match(h.stdout, new RegExp(`^usage: ${cmd} `));
        const again = join(work, `again-${cmd}`);
        symlinkSync(link, again);
        const bare = await run(again, ["--version"], { env: { PATH: "" } });
        assert.equal(bare.status, 0, bare.stderr);
        assert.equal(bare.stdout, `${cmd} (tlsmgr-ts) ${VERSION}\n`);
      }
      // tlsmgr-client checks its arguments before it connects
      const bad = await run(join(prefix, "bin", "tlsmgr-client"), ["-s", join(work, "no-socket"), "seed", "999"], { env: hostEnv });
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /^tlsmgr-client: fatal: seed: SIZE must be a whole number from 1 to 255, not "999"\n/);
    });

    await t.test("npm install --prefix DIR (the /opt/tlsmgr-ts layout): the commands run through node_modules/.bin", async () => {
      const opt = join(work, "opt-tlsmgr-ts");
      const r = await run("npm", ["install", "--prefix", opt, "--prefer-offline", "--no-audit", "--no-fund", tarball], { env: hostEnv });
      assert.equal(r.status, 0, `npm install --prefix:\n${r.stdout}\n${r.stderr}`);
      for (const cmd of ["tlsmgr", "tlsmgr-client", "tlsmgr-postfix"]) {
        const v = await run(join(opt, "node_modules", ".bin", cmd), ["--version"], { env: { PATH: "" } });
        assert.equal(v.stdout, `${cmd} (tlsmgr-ts) ${VERSION}\n`, v.stderr);
      }
      phase("installed --prefix");
    });

    await t.test("tlsmgr-postfix install into a private Postfix: sessions resume, pgrep -x finds it, postfix check is silent", async () => {
      const pf = await createPostfixInstance({ tlsmgr: "postfix", mainCf: { tlsmgr_attr_count_limit: "16" } });
      t.after(() => pf.destroy());
      const versions = join(work, "versions");
      const inst = await run(join(prefix, "bin", "tlsmgr-postfix"), ["install", "--versions", versions, pf.configDir], { env: hostEnv });
      assert.equal(inst.status, 0, inst.stderr);
      assert.equal(inst.stderr, "", "no warning: the tree is root's and readable by postfix");
      const command = (await pf.postconf("-M", "tlsmgr/unix")).trim().split(/\s+/)[7]!;
      const daemonDir = (await pf.postconf("-h", "daemon_directory")).trim();
      // master runs a snapshot of the installed package (README, Upgrade), not the package itself
      const ran = realpathSync(join(daemonDir, command));
      assert.equal(dirname(dirname(dirname(ran))), realpathSync(versions), ran);
      const made = JSON.parse(readFileSync(join(dirname(dirname(ran)), "build", "snapshot.json"), "utf8")) as { from: string };
      assert.equal(made.from, realpathSync(pkgDir));
      await pf.start();
      const r = await opensslResumes(pf.smtpdPort, join(pf.dir, "sess.pem"), { port2: pf.smtpdPort2 });
      assert.equal(r.reused, true, `not resumed through the installed tlsmgr:\n${r.output}`);
      const master = Number(readFileSync(join(pf.queueDir, "pid", "master.pid"), "utf8").trim());
      let pids: string[] = [];
      for (let i = 0; i < 100 && pids.length === 0; i++) {
        const p = await run("pgrep", ["-x", "-P", String(master), "tlsmgr"], { env: { PATH: SBIN_PATH } });
        pids = p.stdout.split(/\s+/).filter((x) => x !== "");
        if (pids.length === 0) await sleep(100);
      }
      assert.equal(pids.length, 1, "pgrep -x tlsmgr under this master");
      assert.equal(readlinkSync(`/proc/${pids[0]}/exe`), realpathSync(process.execPath), "it is ours (Node.js), not Postfix's");
      assert.equal(procComm(Number(pids[0])), "tlsmgr");
      const client = await run(join(prefix, "bin", "tlsmgr-client"), ["-s", pf.tlsmgrSocket, "policy", "smtpd"], { env: hostEnv });
      assert.equal(client.status, 0, client.stderr);
      assert.match(client.stdout, /^status=0 cachable=1 timeout=\d+\n$/);
      const check = await run("postfix", ["-c", pf.configDir, "check"], { env: { PATH: SBIN_PATH } });
      assert.equal(`${check.stdout}${check.stderr}`, "", "postfix check output");
      assert.equal(check.status, 0);
      phase("served under master");
    });
  });
