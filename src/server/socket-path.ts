/**
 * socket-path.ts - the directory of a socket the daemon creates itself
 *                  (outside master(8): --socket, or
 *                  $queue_directory/private/$service), made or checked so
 *                  that a daemon started as root gives nothing away.
 * Owns: the rules for that directory and the directories above it, making
 *       a missing one (mode 0700, given to mail_owner through its descriptor,
 *       never by path), clearing a stale socket, which ids bind the socket
 *       (withSocketIds), and the refusal of a socket other users could reach
 *       while it hands out secrets.
 * Not here: listening and serving (server/listener.ts); master's sockets
 *           (inherited, never created here); the effective-id switch
 *           (master/eugid.ts).
 * See also: postfix/src/master/master_listen.c (set_eugid around
 *           LOCAL_LISTEN), postfix/src/util/unix_listen.c, docs/security.md
 *
 * An existing directory is never changed: it must be a directory owned by
 * root, mail_owner or this process's user, that neither group nor others
 * may write (a 1777 directory such as /tmp is refused: anyone could put
 * a socket of their own in its place), below directories that are owned
 * by those users and not writable by others (sticky ones excepted). A
 * missing one is made by root, mode 0700, then given to mail_owner with
 * fchown() on a descriptor opened O_NOFOLLOW: only its parent's owner
 * (checked above) could have swapped it meanwhile.
 *
 * The socket is made with the ids of its directory's owner when that is
 * mail_owner (as master makes its listeners with mail_owner's effective
 * ids), else with this process's, and with umask 0111 so that it is mode
 * 0666 as Postfix's, without a chmod() that would follow a link put in its
 * place.
 *
 * Reach: a socket is private when some directory on its path is closed to
 * other users (owned by a trusted user, no search permission for others,
 * nor for a group other than root's or mail_owner's). One that is not,
 * while it hands out session ticket keys or cached sessions, is refused:
 * every local user could ask for them.
 */

import { closeSync, constants, fchownSync, fstatSync, lstatSync, mkdirSync, openSync, realpathSync, statSync, unlinkSync, type Stats } from "node:fs";
import { dirname } from "node:path";
import { errorCode, errorText } from "../log/errors.js";
import { FatalError, msgFatal } from "../log/msg.js";
import { withEffectiveIdsSync } from "../master/eugid.js";
import { makeDirs } from "../util/make-dirs.js";

export type Ids = { uid: number; gid: number };

export interface SocketPathOptions {
  /** mail_owner: a directory made here is given to it; a directory of its own binds the socket with its ids. */
  owner?: Ids | undefined;
  /** What the socket hands out that others must not have ("session ticket keys", "cached sessions"); [] for none. */
  secrets: readonly string[];
}

/** modeText - "0755" */
function modeText(st: Stats): string {
  return (st.mode & 0o7777).toString(8).padStart(4, "0");
}

/** trustedUids - root, mail_owner, and this process's user. */
function trustedUids(owner: Ids | undefined): Set<number> {
  return new Set([0, process.geteuid?.() ?? 0, ...(owner ? [owner.uid] : [])]);
}

/** ancestorsOf - "/", "/a", "/a/b" for "/a/b/c" (c excluded). */
function ancestorsOf(dir: string): string[] {
  const out: string[] = [];
  for (let d = dirname(dir); ; d = dirname(d)) {
    out.unshift(d);
    if (dirname(d) === d) return out;
  }
}

/** unsafeAncestor - why a directory above the socket directory lets others replace it, or undefined. */
function unsafeAncestor(dir: string, trusted: Set<number>): string | undefined {
  for (const a of ancestorsOf(dir)) {
    const st = statSync(a);
    if (!trusted.has(st.uid)) return `parent directory ${a} is owned by uid ${st.uid}`;
    if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) return `parent directory ${a} is mode ${modeText(st)}: others may replace what is in it`;
  }
  return undefined;
}

/** unsafeDirectory - why an existing socket directory is not fit, or undefined. */
function unsafeDirectory(st: Stats, trusted: Set<number>): string | undefined {
  if (!st.isDirectory()) return "not a directory";
  if (!trusted.has(st.uid)) return `owned by uid ${st.uid}, not by root or mail_owner`;
  if ((st.mode & 0o022) !== 0) return `mode ${modeText(st)} lets other users write in it, and put their own socket in place of this one`;
  return undefined;
}

/** openTo - the first directory that lets others on the way to dir (itself included), or undefined when one closes it. */
function openTo(dir: string, trusted: Set<number>, owner: Ids | undefined): { open: boolean; widest: string } {
  const groups = new Set([0, process.getegid?.() ?? 0, ...(owner ? [owner.gid] : [])]);
  let widest = "";
  for (const d of [...ancestorsOf(dir), dir]) {
    const st = statSync(d);
    const closed = trusted.has(st.uid) && (st.mode & 0o001) === 0 && ((st.mode & 0o010) === 0 || groups.has(st.gid));
    if (closed) return { open: false, widest };
    widest = `${d} is mode ${modeText(st)}`;
  }
  return { open: true, widest };
}

/** makeSocketDirectory - mkdir 0700 as this process, then give it to owner through a descriptor (see the header). */
function makeSocketDirectory(dir: string, owner: Ids | undefined): void {
  makeDirs(dirname(dir), 0o755);
  mkdirSync(dir, { mode: 0o700 });
  if (!owner || owner.uid === (process.geteuid?.() ?? 0) || process.geteuid?.() !== 0) return;
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (st.uid !== 0 || (st.mode & 0o077) !== 0) throw Object.assign(new Error("changed while it was made"), { code: "EEXIST" });
    fchownSync(fd, owner.uid, owner.gid);
  } finally {
    closeSync(fd);
  }
}

/**
 * prepareSocketPath - make or check the directory of PATH (see the header),
 * remove a stale socket (or a symbolic link) there, refuse a path others
 * could reach while secrets are served. Fatal on any failure. Returns the
 * ids the socket is to be made with (undefined: this process's).
 */
export function prepareSocketPath(path: string, opts: SocketPathOptions): Ids | undefined {
  const dir = dirname(path);
  const trusted = trustedUids(opts.owner);
  let real: string;
  try {
    let st: Stats | undefined;
    try {
      st = statSync(dir);
    } catch (err) {
      if (errorCode(err) !== "ENOENT") throw err;
    }
    if (st === undefined) {
      const why = unsafeAncestor(dir, trusted);
      if (why) msgFatal(`socket directory ${dir}: ${why}`);
      makeSocketDirectory(dir, opts.owner);
    }
    real = realpathSync(dir);
    const why = unsafeDirectory(statSync(real), trusted) ?? unsafeAncestor(real, trusted);
    if (why) msgFatal(`socket directory ${dir}: ${why}; use a directory of its own, mode 0700 (the daemon makes one for mail_owner when it does not exist)`);
  } catch (err) {
    if (err instanceof FatalError) throw err;
    return msgFatal(`create directory ${dir}: ${errorText(err)}`);
  }
  const reach = openTo(real, trusted, opts.owner);
  if (reach.open && opts.secrets.length > 0)
    msgFatal(
      `${path}: other users can reach it (${reach.widest}), and it hands out ${opts.secrets.join(" and ")}:` +
        " put it in a directory only mail_owner can enter (mode 0700)",
    );
  const dirUid = statSync(real).uid;
  const ids = opts.owner && dirUid === opts.owner.uid ? opts.owner : undefined;
  withEffectiveIdsSync(ids, () => clearStaleSocket(path));
  return ids;
}

/** clearStaleSocket - unlink a socket (or a symbolic link) left at path; fatal for anything else. */
function clearStaleSocket(path: string): void {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (err) {
    if (errorCode(err) === "ENOENT") return;
    return msgFatal(`${path}: ${errorText(err)}`);
  }
  if (!st.isSocket() && !st.isSymbolicLink()) msgFatal(`${path}: exists and is not a socket`);
  try {
    unlinkSync(path);
  } catch (err) {
    msgFatal(`remove old socket ${path}: ${errorText(err)}`);
  }
}

/** withSocketIds - fn() (which binds the socket) with those ids and umask 0111: a socket of mode 0666 without chmod. */
export function withSocketIds<T>(ids: Ids | undefined, fn: () => T): T {
  return withEffectiveIdsSync(ids, () => {
    const old = process.umask(0o111);
    try {
      return fn();
    } finally {
      process.umask(old);
    }
  });
}
