/**
 * fake-postconf.ts - a command_directory whose postconf is a script of the
 *                    test's own, so that every answer about the Postfix
 *                    release (and every failure) is exact.
 * Owns: writing the script (postconfSays: the lines `postconf -d` of a release
 *       prints, warnings for parameters it does not know) into DIR/sbin.
 * Not here: real Postfix releases (postfix-releases.ts, postfix-instance.ts).
 * See also: src/config/postfix-release.ts (what asks it), test/unit/postfix-release.test.ts
 */

import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** postconfSays - a script that answers like `postconf -d` of a release that knows these parameters. */
export function postconfSays(values: Record<string, string>, unknown: string[] = []): string {
  return [`[ "$1" = -d ] || exit 2`,
    ...Object.entries(values).map(([k, v]) => `echo '${k} = ${v}'`),
    ...unknown.map((u) => `echo 'postconf: warning: ${u}: unknown parameter' >&2`)].join("\n");
}

/** fakeCommandDirectory - DIR/sbin holding postconf with SCRIPT as its body (no postconf when undefined); the sbin path. */
export function fakeCommandDirectory(dir: string, script: string | undefined): string {
  const bin = join(dir, "sbin");
  mkdirSync(bin, { recursive: true });
  if (script !== undefined) {
    writeFileSync(join(bin, "postconf"), `#!/bin/sh\n${script}\n`);
    chmodSync(join(bin, "postconf"), 0o755);
  }
  return bin;
}
