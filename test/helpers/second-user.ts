/**
 * second-user.ts - a second uid for tests of what one local user can do to
 *                  another: `nobody`, its ids, running code as it, and the
 *                  skip reason when this process is not root.
 * Owns: NOBODY (uid, gid), runAsNobody() (a Node.js snippet in a child with
 *       nobody's ids), ROOT_SKIP, and mainCfLines() for a daemon started as
 *       root with mail_owner = nobody.
 * Not here: starting the daemon (daemon.ts), temporary directories (temp-dir.ts).
 * See also: docs/security.md (the tests named there)
 */

import { execFileSync, spawnSync } from "node:child_process";

/** Why a test needs root: undefined (false) when this process is root. */
export const ROOT_SKIP: string | false = process.getuid?.() === 0 ? false : "needs root: it starts the daemon as root and acts as the user nobody";

/** idOf - `id -u` / `id -g` of a user. */
function idOf(flag: "-u" | "-g", user: string): number {
  return Number(execFileSync("/usr/bin/id", [flag, user], { encoding: "utf8" }).trim());
}

/** nobody's uid and gid (65534 on Debian); meaningful when root. */
export const NOBODY = ROOT_SKIP ? { uid: -1, gid: -1 } : { uid: idOf("-u", "nobody"), gid: idOf("-g", "nobody") };

/** runAsNobody - run a Node.js ES module snippet as nobody; its status, stdout and stderr. */
export function runAsNobody(code: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], {
    uid: NOBODY.uid,
    gid: NOBODY.gid,
    encoding: "utf8",
    cwd: "/",
    timeout: 30_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** mainCfLines - a main.cf for a daemon in dir, mail_owner nobody, plus extra lines. */
export function mainCfLines(dir: string, extra: string[] = []): string {
  return [
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    "mail_owner = nobody",
    ...extra,
    "",
  ].join("\n");
}
