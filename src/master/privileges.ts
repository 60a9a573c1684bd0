/**
 * privileges.ts - give up what a daemon does not need: root, and the view of
 *                 the whole file system.
 * Owns: looking up mail_owner, setgid + initgroups (supplementary groups),
 *       chroot(2) through the native addon, setuid, in Postfix's order and
 *       with Postfix's fatal texts, and the refusal to serve as root.
 * Not here: opening what needs privileges first (caches, exchange file,
 *           sockets, the entropy source: main.ts does that before calling here),
 *           the chroot system call (native/posix.ts).
 * See also: postfix/src/util/chroot_uid.c, postfix/src/master/multi_server.c
 *
 * After chroot nothing outside queue_directory can be opened: every module,
 * the addon and every file must be loaded or opened before dropPrivileges.
 */

import { readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { getSystemErrorMap } from "node:util";
import { msgFatal, msgVerbose, msgInfo } from "../log/msg.js";
import { loggingEnteredChroot } from "../log/setup.js";
import { chroot, nativeAvailable, nativeLoadError } from "../native/posix.js";

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  dir: string;
}

let errorTexts: Map<string, string> | undefined;

/** errnoText - "%m" for an error from Node or the addon: "operation not permitted" */
export function errnoText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === "string" ? e.code : "";
  if (!errorTexts) {
    errorTexts = new Map();
    for (const [name, text] of getSystemErrorMap().values()) errorTexts.set(name, text);
  }
  return errorTexts.get(code) ?? (typeof e?.message === "string" ? e.message : String(err));
}

/**
 * lookupUser - getpwnam(3). As root: through the system's name service
 * (seteuid to the user, read os.userInfo(), seteuid back). Otherwise from
 * /etc/passwd. undefined when there is no such user.
 */
export function lookupUser(name: string): PasswdEntry | undefined {
  if (process.geteuid?.() === 0 && process.seteuid) {
    try {
      process.seteuid(name);
    } catch {
      return undefined; // ERR_UNKNOWN_CREDENTIAL
    }
    try {
      const info = userInfo();
      return { name, uid: info.uid, gid: info.gid, dir: info.homedir };
    } finally {
      process.seteuid(0);
    }
  }
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const f = line.split(":");
      if (f.length >= 7 && f[0] === name) return { name, uid: Number(f[2]), gid: Number(f[3]), dir: f[5] };
    }
  } catch {
    /* no /etc/passwd: unknown */
  }
  return undefined;
}

export interface DropPrivilegesOptions {
  /** -u: mail_owner ("" or absent: keep the user) */
  mailOwner?: string;
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
  const user = opts.mailOwner || undefined;
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
    pw = lookupUser(user);
    if (!pw) msgFatal(`unknown user: ${user}`);
    try {
      process.setgid!(pw.gid);
    } catch (err) {
      msgFatal(`setgid(${pw.gid}): ${errnoText(err)}`);
    }
    try {
      // process.initgroups exists on POSIX Node but is missing from @types/node 20.
      (process as unknown as { initgroups(user: string, extra: number): void }).initgroups(user, pw.gid);
    } catch (err) {
      msgFatal(`initgroups: ${errnoText(err)}`);
    }
  }
  if (root) {
    try {
      chroot(root); // the addon does chdir("/") too
    } catch (err) {
      msgFatal(`chroot(${root}): ${errnoText(err)}`);
    }
    try {
      process.chdir("/"); // again through Node, which caches the working directory
    } catch (err) {
      msgFatal(`chdir(/): ${errnoText(err)}`);
    }
    loggingEnteredChroot(root);
  }
  if (pw) {
    try {
      process.setuid!(pw.uid);
    } catch (err) {
      msgFatal(`setuid(${pw.uid}): ${errnoText(err)}`);
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
