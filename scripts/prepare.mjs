// prepare.mjs - run by `npm ci`/`npm install`: record this Node.js for bin/*,
// build the native addon (flock, chroot, unix datagrams), compile TypeScript.
// See also: bin/tlsmgr, scripts/build-native.mjs
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
execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], {
  stdio: "inherit",
  cwd: root,
});
