/**
 * data-redirect.ts - redirect files in non-Postfix directories to data_directory.
 * Owns: Postfix's data_redirect_file()/data_redirect_map() rules and their two
 *       warnings; which map types are redirected; the uid that counts as
 *       mail_owner's when there is no such account.
 * Not here: opening anything (cache/scache.ts, prng/*); looking mail_owner
 *           up (master/privileges.ts lookupUser, once, by the daemon skeleton).
 * See also: postfix/src/global/data_redirect.c, cache/cache-set.ts,
 *           main.ts (the PRNG exchange file)
 *
 * Here in config/ and not in cache/: the rule is about where configured
 * names (main.cf's *_tls_session_cache_database and tls_random_exchange_name)
 * lead, from two parameters (data_directory, mail_owner), and it serves the
 * session caches and the PRNG exchange file alike, as global/ does in Postfix.
 *
 * Rule: when the directory of the path exists and is not owned by the
 * mail_owner uid, log
 *   warning: request to update table X in non-postfix directory D
 *   warning: redirecting the request to postfix-owned data_directory DIR
 * ("file" instead of "table" for a plain file) and use DIR/basename instead.
 * A directory that does not exist is left alone (the open then fails).
 *
 * When there is no mail_owner account (a non-root test or development
 * instance without a "postfix" user), the effective uid of this process
 * stands in: it is the uid that will own the files created, which is what
 * the check is about.
 */

import { stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { msgDebug, msgWarn } from "../log/msg.js";

/** Map types whose files are redirected (data_redirect_map_types[]). */
export const DATA_REDIRECT_MAP_TYPES = ["hash", "btree", "dbm", "lmdb", "cdb", "sdbm", "dbz"];

export interface DataRedirectEnv {
  data_directory: string;
  mail_owner: string;
  /** The uid that counts as "postfix-owned". */
  ownerUid: number;
}

/** dataRedirectOwnerUid - mail_owner's uid (owner as looked up), or this process's euid when there is no such account. */
export function dataRedirectOwnerUid(owner: { uid: number } | undefined, mailOwner: string): number {
  if (owner !== undefined) return owner.uid;
  const euid = process.geteuid?.() ?? 0;
  msgDebug(`no ${mailOwner} account: taking uid ${euid} as the owner of ${mailOwner}-owned directories`);
  return euid;
}

/** dataRedirectPath - data_redirect_path(): path itself, or data_directory/basename with the two warnings. */
export async function dataRedirectPath(
  path: string,
  logType: string,
  logName: string,
  env: DataRedirectEnv,
): Promise<string> {
  const dir = dirname(path);
  let uid: number;
  try {
    uid = (await stat(dir)).uid;
  } catch {
    return path;
  }
  if (uid === env.ownerUid) return path;
  msgWarn(`request to update ${logType} ${logName} in non-${env.mail_owner} directory ${dir}`);
  msgWarn(`redirecting the request to ${env.mail_owner}-owned data_directory ${env.data_directory}`);
  return env.data_directory + "/" + basename(path);
}

/** dataRedirectFile - data_redirect_file(): for a plain file such as the PRNG exchange file. */
export function dataRedirectFile(path: string, env: DataRedirectEnv): Promise<string> {
  return dataRedirectPath(path, "file", path, env);
}

/**
 * dataRedirectMap - data_redirect_map(): "type:name" (or a bare name, which
 * takes defaultType) to "type:name", the name redirected for file-based types.
 */
export async function dataRedirectMap(map: string, env: DataRedirectEnv, defaultType = "hash"): Promise<string> {
  const colon = map.indexOf(":");
  const type = colon >= 0 ? map.slice(0, colon) : defaultType;
  const name = colon >= 0 ? map.slice(colon + 1) : map;
  if (!DATA_REDIRECT_MAP_TYPES.includes(type)) return `${type}:${name}`;
  return `${type}:${await dataRedirectPath(name, "table", map, env)}`;
}
