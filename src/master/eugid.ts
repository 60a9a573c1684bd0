/**
 * eugid.ts - run start-up work with mail_owner's effective uid and gid, as
 *            Postfix's tlsmgr opens its caches and PRNG exchange file, so
 *            that the files it creates belong to mail_owner.
 * Owns: switching the effective ids and switching back.
 * Not here: giving privileges up for good (master/privileges.ts), looking
 *           mail_owner up (master/privileges.ts lookupUser).
 * See also: postfix/src/util/set_eugid.c, postfix/src/tlsmgr/tlsmgr.c
 *           (tlsmgr_pre_init), master/privileges.ts
 */

/** withEffectiveIds - fn() with euid/egid set to uid/gid when running as root; restored after. */
export async function withEffectiveIds<T>(ids: { uid: number; gid: number } | undefined, fn: () => Promise<T>): Promise<T> {
  if (ids === undefined || typeof process.geteuid !== "function" || process.geteuid() !== 0 || ids.uid === 0) return fn();
  const saved = { uid: process.geteuid(), gid: process.getegid!() };
  process.setegid!(ids.gid);
  process.seteuid!(ids.uid);
  try {
    return await fn();
  } finally {
    process.seteuid!(saved.uid);
    process.setegid!(saved.gid);
  }
}
