/**
 * errors.ts - the one way to turn an error into text, and the project's error
 *             base class with stable codes.
 * Owns: errorText() (Postfix's "%m": the C library's text for an errno, else
 *       the error's message), errorCode(), TlsmgrError and the ERR_* codes that
 *       callers compare instead of message text.
 * Not here: writing diagnostics (log/msg.ts); printable() for peer text.
 * See also: postfix/src/util/msg.c (%m), undici lib/core/errors.js (codes)
 */

import { getSystemErrorMap } from "node:util";

/** Stable codes of the errors this project throws; compare these, never messages. */
export const ERR_FATAL = "TLSMGR_FATAL";
export const ERR_PANIC = "TLSMGR_PANIC";
/** A shared store cannot answer in time: the backend logged the outage; callers treat it as a miss. */
export const ERR_BACKEND_UNAVAILABLE = "TLSMGR_BACKEND_UNAVAILABLE";

/** TlsmgrError - base of the project's own errors: a message and a stable code. */
export class TlsmgrError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * The C library's texts (glibc, as Postfix's %m prints them) for the errnos a
 * daemon meets; other errnos fall back to libuv's text, capitalised.
 */
const C_TEXT: Readonly<Record<string, string>> = {
  EPERM: "Operation not permitted",
  ENOENT: "No such file or directory",
  ESRCH: "No such process",
  EINTR: "Interrupted system call",
  EIO: "Input/output error",
  ENXIO: "No such device or address",
  E2BIG: "Argument list too long",
  ENOEXEC: "Exec format error",
  EBADF: "Bad file descriptor",
  ECHILD: "No child processes",
  EAGAIN: "Resource temporarily unavailable",
  ENOMEM: "Cannot allocate memory",
  EACCES: "Permission denied",
  EFAULT: "Bad address",
  EBUSY: "Device or resource busy",
  EEXIST: "File exists",
  EXDEV: "Invalid cross-device link",
  ENODEV: "No such device",
  ENOTDIR: "Not a directory",
  EISDIR: "Is a directory",
  EINVAL: "Invalid argument",
  ENFILE: "Too many open files in system",
  EMFILE: "Too many open files",
  ENOTTY: "Inappropriate ioctl for device",
  ETXTBSY: "Text file busy",
  EFBIG: "File too large",
  ENOSPC: "No space left on device",
  ESPIPE: "Illegal seek",
  EROFS: "Read-only file system",
  EMLINK: "Too many links",
  EPIPE: "Broken pipe",
  ERANGE: "Numerical result out of range",
  EDEADLK: "Resource deadlock avoided",
  ENAMETOOLONG: "File name too long",
  ENOLCK: "No locks available",
  ENOSYS: "Function not implemented",
  ENOTEMPTY: "Directory not empty",
  ELOOP: "Too many levels of symbolic links",
  EOPNOTSUPP: "Operation not supported",
  EADDRINUSE: "Address already in use",
  EADDRNOTAVAIL: "Cannot assign requested address",
  ENETDOWN: "Network is down",
  ENETUNREACH: "Network is unreachable",
  ECONNABORTED: "Software caused connection abort",
  ECONNRESET: "Connection reset by peer",
  ENOBUFS: "No buffer space available",
  EISCONN: "Transport endpoint is already connected",
  ENOTCONN: "Transport endpoint is not connected",
  ETIMEDOUT: "Connection timed out",
  ECONNREFUSED: "Connection refused",
  EHOSTUNREACH: "No route to host",
  EALREADY: "Operation already in progress",
  EINPROGRESS: "Operation now in progress",
  EDQUOT: "Disk quota exceeded",
  ENOTSOCK: "Socket operation on non-socket",
  EPROTO: "Protocol error",
  EMSGSIZE: "Message too long",
  ECANCELED: "Operation canceled",
};

/** errno -> [name, text]; Node keys it by the negative errno. */
let byErrno: Map<number, [string, string]> | undefined;
/** errno name ("ENOENT") -> text, built from the same map. */
let byName: Map<string, string> | undefined;

function systemTexts(): { byErrno: Map<number, [string, string]>; byName: Map<string, string> } {
  if (!byErrno || !byName) {
    byErrno = getSystemErrorMap();
    byName = new Map();
    for (const [name, text] of byErrno.values()) byName.set(name, text);
  }
  return { byErrno, byName };
}

/**
 * errorText - Postfix's %m for any thrown value: the system's text for its
 * errno (Node's errors carry -errno, the native addon's +errno) or errno name
 * ("No such file or directory"), else its message, else String(err).
 */
export function errorText(err: unknown): string {
  const e = err as { errno?: unknown; code?: unknown; message?: unknown } | null | undefined;
  if (e && typeof e === "object" && !(e instanceof TlsmgrError)) {
    const maps = systemTexts();
    let name = typeof e.code === "string" ? e.code : undefined;
    let text = name !== undefined ? maps.byName.get(name) : undefined;
    if (typeof e.errno === "number") {
      const hit = maps.byErrno.get(e.errno < 0 ? e.errno : -e.errno);
      if (hit) [name, text] = hit;
    }
    if (name !== undefined && text !== undefined) return C_TEXT[name] ?? capitalise(text);
  }
  if (e && typeof e.message === "string" && e.message) return e.message;
  return String(err);
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** errorCode - the code of an error (an errno name or a TlsmgrError code), or `fallback`. */
export function errorCode(err: unknown, fallback = "EIO"): string {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" && code ? code : fallback;
}
