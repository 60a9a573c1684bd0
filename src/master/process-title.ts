/**
 * process-title.ts - make the daemon look like Postfix's tlsmgr to whoever
 *                    looks: `tlsmgr -l -t unix -u -c` in ps, `tlsmgr` for
 *                    pgrep -x, pidof, ps -C, top.
 * Owns: the command line shown (/proc/PID/cmdline) and the command name
 *       (/proc/PID/comm).
 * Not here: the log tag (log/msg.ts setProcessName), argv parsing (cli/args.ts).
 * See also: bin/tlsmgr, test/postfix/under-master.test.ts
 *
 * What each tool reads (procps-ng, Debian's sysvinit-utils pidof):
 * - ps -f / ps aux, pgrep -f, top's c: /proc/PID/cmdline. Node's process.title
 *   overwrites the argv area (libuv), so "node .../dist/src/main.js -l ..."
 *   becomes the title, NUL-padded.
 * - pgrep / pgrep -x, ps -C, ps -e, top: /proc/PID/comm (15 bytes at most).
 *   libuv also sets it from the title (prctl PR_SET_NAME), truncated to
 *   "tlsmgr -l -t un"; writing /proc/self/comm afterwards puts back "tlsmgr".
 *   Node's main JavaScript thread is the thread group leader, whose comm
 *   /proc/PID/comm shows.
 * - pidof (killall5): the basename of argv[0] from cmdline, and, when argv[0]
 *   holds a blank (a program that set its own title), the comm: "tlsmgr".
 * The title keeps master's arguments, as Postfix's tlsmgr shows them.
 */

import { writeFileSync } from "node:fs";

/** setProcessTitle - command line "NAME ARGS..." and command name NAME; false when comm could not be set */
export function setProcessTitle(name: string, argv: readonly string[]): boolean {
  try {
    process.title = [name, ...argv].join(" ");
  } catch {
    /* a platform without titles: the name below still helps */
  }
  try {
    // once, at start-up, before chroot (no /proc inside the jail): not on the request path
    writeFileSync("/proc/self/comm", name.slice(0, 15));
    return true;
  } catch {
    return false;
  }
}
