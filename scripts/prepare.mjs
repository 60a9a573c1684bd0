// prepare.mjs - run by `npm ci`/`npm install` and `npm pack` (and scripts/test.sh):
// record this Node.js for bin/*, build the native addon (flock, chroot, unix
// datagrams), compile TypeScript. Not run when the packed tarball is installed
// (scripts/install.mjs is).
// See also: bin/tlsmgr, scripts/build-native.mjs, scripts/install.mjs
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
mkdirSync(join(root, "build"), { recursive: true });
writeFileSync(join(root, "build", "node-path"), process.execPath + "\n");
if (existsSync(join(root, "scripts", "build-native.mjs"))) {
  execFileSync(process.execPath, [join(root, "scripts", "build-native.mjs")], { stdio: "inherit", cwd: root });
}
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
if (!existsSync(tsc)) {
  process.stderr.write(`prepare: error: ${tsc} not found: run npm ci first (it installs TypeScript, then builds)\n`);
  process.exit(1);
}
execFileSync(process.execPath, [tsc, "-p", "tsconfig.json"], {
  stdio: "inherit",
  cwd: root,
});
