/**
 * privileges.ts - give up what a daemon does not need: root, and the view of
 *                 the whole file system.
 * Owns: looking up a user (mail_owner) through the system's name service,
 *       setgid + initgroups (supplementary groups), chroot(2) through the
 *       native addon, setuid, in Postfix's order and with Postfix's fatal
 *       texts, and the refusal to serve as root.
 * Not here: opening what needs privileges first (caches, exchange file,
 *           sockets, the entropy source: the service's pre-init and the
 *           listener, which master/multi-server.ts runs before calling here),
 *           effective ids for a while (master/eugid.ts), the chroot system
 *           call (native/posix.ts).
 * See also: postfix/src/util/chroot_uid.c, postfix/src/master/multi_server.c
 *
 * After chroot nothing outside queue_directory can be opened: every module,
 * the addon and every file must be loaded or opened before dropPrivileges.
 */

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { errorText } from "../log/errors.js";
import { msgFatal, msgVerbose, msgInfo } from "../log/msg.js";
import { loggingEnteredChroot } from "../log/setup.js";
import { chroot, nativeAvailable, nativeLoadError } from "../native/posix.js";

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  dir: string;
}

/** Where getent(1) is looked for first: master(8) gives its children no PATH. */
const GETENT_PATHS = ["/usr/bin/getent", "/bin/getent"];
/** How long a name service look-up may take (an LDAP server that does not answer). */
const GETENT_TIMEOUT_MS = 30_000;

/** passwdLine - one passwd(5) line of that user, or undefined. */
function passwdLine(line: string, name: string): PasswdEntry | undefined {
  const f = line.split(":");
  if (f.length < 7 || f[0] !== name || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) return undefined;
  return { name, uid: Number(f[2]), gid: Number(f[3]), dir: f[5]! };
}

/**
 * lookupUser - getpwnam(3) through the system's name service (getent(1):
 * files, LDAP, NIS, systemd, as nsswitch.conf says), the same for root and
 * for any other user. undefined when there is no such user. Only where
 * getent is missing, /etc/passwd is read instead. Start-up only (it waits).
 */
export function lookupUser(name: string): PasswdEntry | undefined {
  if (name === "" || /[:\n]/.test(name)) return undefined;
  for (const cmd of [...GETENT_PATHS.filter((p) => existsSync(p)), "getent"]) {
    const r = spawnSync(cmd, ["passwd", "--", name], { encoding: "utf8", timeout: GETENT_TIMEOUT_MS });
    if ((r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") continue;
    if (r.error) msgFatal(`cannot look up user ${name}: ${cmd}: ${errorText(r.error)}`);
    // Exit 2: no such key. A numeric name finds a uid: only the name itself counts.
    if (r.status !== 0) return undefined;
    return passwdLine(r.stdout.split("\n")[0]!, name);
  }
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const pw = passwdLine(line, name);
      if (pw) return pw;
    }
  } catch {
    /* no /etc/passwd: unknown */
  }
  return undefined;
}

export interface DropPrivilegesOptions {
  /** -u: mail_owner, as looked up (lookupUser), or its name ("" or absent: keep the user) */
  mailOwner?: PasswdEntry | string;
  /** -c: queue_directory */
  chrootDir?: string;
  /** master.cf service name, for the advice in fatal messages (default tlsmgr) */
  serviceName?: string;
}

/**
 * dropPrivileges - chroot_uid(): look up the user, setgid, initgroups, chroot,
 * setuid. Fatal (msgFatal) on any failure; with chroot requested but no
 * native addon, fatal before anything changed, saying to set the chroot
 * column of the service to n.
 */
export function dropPrivileges(opts: DropPrivilegesOptions): void {
  const service = opts.serviceName ?? "tlsmgr";
  const owner = opts.mailOwner || undefined;
  const user = typeof owner === "string" ? owner : owner?.name;
  const root = opts.chrootDir || undefined;
  if (root && !nativeAvailable()) {
    msgFatal(
      `cannot chroot to ${root}: ${nativeLoadError()}; ` +
        `set the chroot column of the ${service} service in master.cf to n ` +
        `(postconf -F ${service}/unix/chroot=n; postfix reload)`,
    );
  }
  let pw: PasswdEntry | undefined;
  if (user) {
    pw = typeof owner === "object" ? owner : lookupUser(user);
    if (!pw) msgFatal(`unknown user: ${user}`);
    try {
      process.setgid!(pw.gid);
    } catch (err) {
      msgFatal(`setgid(${pw.gid}): ${errorText(err)}`);
    }
    try {
      // process.initgroups exists on POSIX Node but is missing from @types/node 20.
      (process as unknown as { initgroups(user: string, extra: number): void }).initgroups(user, pw.gid);
    } catch (err) {
      msgFatal(`initgroups: ${errorText(err)}`);
    }
  }
  if (root) {
    try {
      chroot(root); // the addon does chdir("/") too
    } catch (err) {
      msgFatal(`chroot(${root}): ${errorText(err)}`);
    }
    try {
      process.chdir("/"); // again through Node, which caches the working directory
    } catch (err) {
      msgFatal(`chdir(/): ${errorText(err)}`);
    }
    loggingEnteredChroot(root);
  }
  if (pw) {
    try {
      process.setuid!(pw.uid);
    } catch (err) {
      msgFatal(`setuid(${pw.uid}): ${errorText(err)}`);
    }
  }
  if (msgVerbose() > 1) msgInfo(`chroot ${root ?? "(none)"} user ${user ?? "(none)"}`);
}

/**
 * refuseRoot - fatal when the process would serve with root privileges
 * (real or effective uid 0): tlsmgr handles untrusted input.
 */
export function refuseRoot(serviceName = "tlsmgr"): void {
  if (process.getuid?.() === 0 || process.geteuid?.() === 0) {
    msgFatal(
      `${serviceName} must not serve requests with root privileges: ` +
        `set the unpriv column of the ${serviceName} service in master.cf to - or y, ` +
        `or give -u to drop to mail_owner`,
    );
  }
}
