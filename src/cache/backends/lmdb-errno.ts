/**
 * lmdb-errno.ts - the real cause of a failed LMDB write, for its warning.
 * Owns: lmdbWriteErrorText(): the text of an LMDB error (numeric errno from
 *       lmdb-js), and when LMDB says EIO, finding out whether the file
 *       system is full (statfs) or the file may not grow (RLIMIT_FSIZE), so
 *       that a full disk is logged as "No space left on device".
 * Not here: the write batching and its back-off (cache/backends/lmdb.ts).
 * See also: liblmdb mdb.c (mdb_page_flush: a short write(2) becomes EIO,
 *           "TODO: Use which error code?"), src/log/errors.ts (errorText)
 *
 * The errno is lost inside LMDB: when the disk fills, write(2) writes part of
 * a commit's pages and returns a short count; LMDB turns every short write
 * into EIO, so lmdb-js reports "Input/output error" (code 5).
 */

import { readFile, stat, statfs } from "node:fs/promises";
import { dirname } from "node:path";
import { errorText } from "../../log/errors.js";

/** Less free room than this (or than twice the batch) after a failed write: the file system is full. */
const FULL_BELOW_BYTES = 1024 * 1024;
const EIO = 5;

/** errnoOf - lmdb-js's numeric code, or a Node error's errno, or undefined. */
function errnoOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; errno?: unknown } | null;
  if (typeof e?.code === "number") return e.code;
  if (typeof e?.errno === "number") return Math.abs(e.errno);
  return undefined;
}

/** fileSizeLimit - this process's RLIMIT_FSIZE soft limit in bytes (undefined: unlimited or unknown). */
async function fileSizeLimit(): Promise<number | undefined> {
  try {
    const m = /^Max file size\s+(\S+)/m.exec(await readFile("/proc/self/limits", "latin1"));
    return m && /^\d+$/.test(m[1]!) ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * lmdbWriteErrorText - Postfix's %m for a failed write of `batchBytes` to
 * FILE: errorText() of the error, except that an EIO on a full file system
 * is "No space left on device" and an EIO on a file at its size limit is
 * "File too large".
 */
export async function lmdbWriteErrorText(err: unknown, file: string, batchBytes: number): Promise<string> {
  const errno = errnoOf(err);
  if (errno !== EIO) return errno !== undefined ? errorText({ errno }) : errorText(err);
  const io = errorText({ errno: EIO });
  try {
    const fs = await statfs(dirname(file));
    const root = process.getuid?.() === 0;
    const free = (root ? fs.bfree : fs.bavail) * fs.bsize;
    if (free < Math.max(FULL_BELOW_BYTES, 2 * batchBytes)) return errorText({ code: "ENOSPC" });
  } catch {
    return io;
  }
  const limit = await fileSizeLimit();
  if (limit !== undefined) {
    const size = await stat(file).then((st) => st.size, () => 0);
    if (size + batchBytes >= limit) return errorText({ code: "EFBIG" });
  }
  return io;
}
