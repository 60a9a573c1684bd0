/**
 * eugid.ts - run start-up work with mail_owner's effective uid and gid, as
 *            Postfix's tlsmgr opens its caches and PRNG exchange file, so
 *            that the files it creates belong to mail_owner and its access
 *            is mail_owner's; and step back to the start-up user for a
 *            moment (secret files only root may read).
 * Owns: switching the effective ids and the supplementary groups (to
 *       mail_owner's group alone, as Postfix's set_eugid(): root's groups
 *       would otherwise still open files of those groups) and switching
 *       back, groups included.
 * Not here: giving privileges up for good (master/privileges.ts), looking
 *           mail_owner up (master/privileges.ts lookupUser).
 * See also: postfix/src/util/set_eugid.c, postfix/src/tlsmgr/tlsmgr.c
 *           (tlsmgr_pre_init), master/privileges.ts, docs/security.md
 *
 * Only a process whose effective uid is 0 switches; otherwise (a daemon run
 * by a user, mail_owner root) these run fn as it is. Switches do not nest.
 */

/** The switch in force, if any: the ids taken and the start-up ids to go back to. */
interface Switch {
  uid: number;
  gid: number;
  savedGid: number;
  savedGroups: number[];
}
let active: Switch | undefined;

type Ids = { uid: number; gid: number } | undefined;

/** canSwitch - true when ids ask for a switch that this process can make. */
function canSwitch(ids: Ids): ids is { uid: number; gid: number } {
  return ids !== undefined && ids.uid !== 0 && typeof process.geteuid === "function" && process.geteuid() === 0 && active === undefined;
}

/** become - set_eugid(uid, gid): groups [gid] while still root, then egid, then euid. */
function become(ids: { uid: number; gid: number }): Switch {
  const sw: Switch = { uid: ids.uid, gid: ids.gid, savedGid: process.getegid!(), savedGroups: process.getgroups!() };
  process.setgroups!([ids.gid]);
  process.setegid!(ids.gid);
  process.seteuid!(ids.uid);
  return sw;
}

/** unbecome - back to root's effective ids and its own supplementary groups. */
function unbecome(sw: Switch): void {
  process.seteuid!(0);
  process.setegid!(sw.savedGid);
  process.setgroups!(sw.savedGroups);
}

/** withEffectiveIds - fn() with euid/egid and groups set to uid/gid/[gid] when running as root; restored after. */
export async function withEffectiveIds<T>(ids: Ids, fn: () => Promise<T>): Promise<T> {
  if (!canSwitch(ids)) return fn();
  const sw = become(ids);
  active = sw;
  try {
    return await fn();
  } finally {
    active = undefined;
    unbecome(sw);
  }
}

/** withEffectiveIdsSync - withEffectiveIds for synchronous work (binding the socket). */
export function withEffectiveIdsSync<T>(ids: Ids, fn: () => T): T {
  if (!canSwitch(ids)) return fn();
  const sw = become(ids);
  active = sw;
  try {
    return fn();
  } finally {
    active = undefined;
    unbecome(sw);
  }
}

/**
 * asStartUser - fn() with the ids the process started with (root) while a
 * switch is in force, then mail_owner's again: for files that must be
 * root's alone (key_wrap_file, password_file) read while a cache is opened
 * with mail_owner's ids. Synchronous work only.
 */
export function asStartUser<T>(fn: () => T): T {
  const sw = active;
  if (sw === undefined) return fn();
  unbecome(sw);
  try {
    return fn();
  } finally {
    become(sw);
  }
}
