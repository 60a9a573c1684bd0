/**
 * instance-lock.ts - one tlsmgr per data directory: an exclusive flock(2)
 *                    on $data_directory/tlsmgr.lock, held for the life of
 *                    the process.
 * Owns: taking the lock before anything is opened (with mail_owner's ids,
 *       never through a link: openLockFile; a second daemon would
 *       truncate the first one's caches at open and take over its socket),
 *       the pid written into the lock file for the refusal's text, and the
 *       short wait under master(8) (a process being replaced may still be
 *       saving its PRNG exchange file when its successor starts).
 * Not here: master's own guarantee of one process per service (process
 *           limit 1 in master.cf); the flock call (native/posix.ts).
 * See also: postfix/src/master/master.c (master.lock in data_directory,
 *           "the Postfix mail system is already running"), src/main.ts
 */

import { closeSync, constants, fstatSync, ftruncateSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { errorCode, errorText } from "../log/errors.js";
import { withEffectiveIdsSync } from "./eugid.js";
import { msgFatal, msgInfo, msgWarn } from "../log/msg.js";
import { flock, isWouldBlock, nativeAvailable, nativeLoadError } from "../native/posix.js";

/** The lock file's name in data_directory. */
export const INSTANCE_LOCK_NAME = "tlsmgr.lock";
/** How long a daemon started by master waits for its predecessor to let go. */
export const INSTANCE_LOCK_WAIT_MS = 10_000;
const RETRY_MS = 100;

/**
 * takeInstanceLock - lock DATA_DIR/tlsmgr.lock or end with a fatal error
 * naming the process that holds it. waitMs > 0: try again for that long
 * first. Returns the descriptor (kept open: closing it would let go).
 */
export async function takeInstanceLock(dataDir: string, waitMs: number, ids?: { uid: number; gid: number }): Promise<number | undefined> {
  const path = join(dataDir, INSTANCE_LOCK_NAME);
  if (!nativeAvailable()) {
    msgWarn(`cannot lock ${path}: ${nativeLoadError()}: a second tlsmgr on this configuration would not be refused`);
    return undefined;
  }
  const fd = openLockFile(path, ids);
  const deadline = Date.now() + waitMs;
  let waited = false;
  for (;;) {
    try {
      flock(fd, "ex", true);
      break;
    } catch (err) {
      if (!isWouldBlock(err)) {
        closeSync(fd);
        msgFatal(`lock file ${path}: ${errorText(err)}`);
      }
      if (Date.now() >= deadline) {
        closeSync(fd);
        msgFatal(`another tlsmgr is running on data directory ${dataDir}${holder(path)}: lock file ${path} is held`);
      }
      waited = true;
      await sleep(RETRY_MS);
    }
  }
  if (waited) msgInfo(`lock file ${path} taken after the previous tlsmgr let go`);
  ftruncateSync(fd, 0);
  writeSync(fd, `${String(process.pid).padStart(10)}\n`, 0);
  return fd;
}

/**
 * openLockFile - open or create the lock file with mail_owner's ids (as
 * Postfix's master opens data_directory/master.lock, with safe_open()): a
 * symbolic link, anything but a regular file, or a file with another hard
 * link is refused (data_directory is mail_owner's: a link planted there
 * would have root truncate and write its target).
 */
function openLockFile(path: string, ids: { uid: number; gid: number } | undefined): number {
  let fd: number;
  try {
    fd = withEffectiveIdsSync(ids, () =>
      openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY, 0o600),
    );
  } catch (err) {
    if (errorCode(err) === "ELOOP") msgFatal(`open lock file ${path}: it is a symbolic link (not followed)`);
    msgFatal(`open lock file ${path}: ${errorText(err)}`);
  }
  const st = fstatSync(fd);
  const why = !st.isFile() ? "not a regular file" : st.nlink !== 1 ? `it has ${st.nlink} hard links` : undefined;
  if (why !== undefined) {
    closeSync(fd);
    msgFatal(`open lock file ${path}: ${why}`);
  }
  return fd;
}

/** holder - " (pid N)" from the lock file, or "" when it names nobody. */
function holder(path: string): string {
  try {
    const pid = readFileSync(path, "latin1").trim();
    return /^\d+$/.test(pid) ? ` (pid ${pid})` : "";
  } catch {
    return "";
  }
}
