/**
 * posix.ts - typed loader for the small POSIX addon (native/posix.c).
 * Owns: finding and loading the addon once, when this module is imported, the
 *       typed API (flock, chroot, unix datagram socket, the C layout of
 *       TLS_TICKET_KEY), and reporting why it is absent.
 * Not here: the C code (native/posix.c), building it (scripts/build-native.mjs,
 *       scripts/prebuild.mjs), policy about locking or logging (prng/exchange.ts,
 *       log/ sinks).
 * See also: binding.gyp, scripts/install.mjs, postfix/src/util/myflock.c
 *
 * Where it is looked for, as node-gyp-build does: $TLSMGR_POSIX_ADDON when
 * set and this process is not root (loading a file is running its code:
 * root runs only the addon of its own tree); else build/Release/posix.node
 * (a build from source on this host), then prebuilds/PLATFORM-ARCH/*.node
 * (prebuilt by `npm pack`, for linux x64 and arm64, matched on libc).
 *
 * Every function throws when the addon is absent (code "ERR_NATIVE_UNAVAILABLE");
 * callers check nativeAvailable() first when they have a fallback. A failing
 * system call throws an Error with .code (errno name, e.g. "EWOULDBLOCK"),
 * .errno (number) and .syscall, like Node's own errors.
 *
 * The addon is loaded as this module is evaluated, not at the first call: a
 * daemon imports its modules before it changes its (effective) user or
 * chroots, and after that the file may be out of reach (an installation
 * under a 0700 directory, a file outside the jail): loaded at the first
 * flock(), under mail_owner's effective uid, it would be unreadable.
 * This module imports nothing of the project's (log/ is built on it).
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

export type FlockOp = "sh" | "ex" | "un";

/** The error a failing system call throws. */
export interface PosixError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

interface PosixAddon {
  flock(fd: number, op: number, nonblock: boolean): void;
  chroot(path: string): void;
  unixDgramSocket(): number;
  unixDgramSend(fd: number, path: string, data: Buffer): void;
  closeFd(fd: number): void;
  /** absent from addons built before it was added */
  ticketKeyLayout?(): NativeTicketKeyLayout;
}

/** sizeof(TLS_TICKET_KEY), sizeof(time_t) and offsetof(tout), as the C compiler here lays them out. */
export interface NativeTicketKeyLayout {
  size: number;
  timeSize: number;
  toutOffset: number;
}

const FLOCK_OPS: Record<FlockOp, number> = { un: 0, sh: 1, ex: 2 };

let addon: PosixAddon | undefined;
let loadError = "";
let loaded = false;

/** projectRoot - the directory of package.json: ../.. from src/native, ../../.. from dist/src/native */
function projectRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const up = path.basename(path.dirname(path.dirname(here))) === "dist" ? "../../.." : "../..";
  return path.resolve(here, up);
}

/** addonFromEnv - $TLSMGR_POSIX_ADDON, unless this process is root (see the header) */
function addonFromEnv(): string | undefined {
  const uid = process.getuid?.() ?? 0;
  const euid = process.geteuid?.() ?? 0;
  return uid === 0 || euid === 0 ? undefined : process.env.TLSMGR_POSIX_ADDON || undefined;
}

/** loadAddon - load once; remember why it failed */
function loadAddon(): PosixAddon | undefined {
  if (loaded) return addon;
  loaded = true;
  const require = createRequire(import.meta.url);
  const fromEnv = addonFromEnv();
  let file: string;
  try {
    if (fromEnv) {
      if (!existsSync(fromEnv)) throw new Error(`TLSMGR_POSIX_ADDON=${fromEnv}: no such file`);
      file = fromEnv;
    } else {
      // node-gyp-build's own search: build/Release, then prebuilds/ for this platform
      const gypBuild = require("node-gyp-build") as { resolve(dir: string): string };
      file = gypBuild.resolve(projectRoot());
    }
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).trim().replace(/\s*\n\s*/g, "; ");
    loadError = `POSIX addon not found (${why}; build it with node scripts/build-native.mjs)`;
    return undefined;
  }
  try {
    addon = require(file) as PosixAddon;
    return addon;
  } catch (err) {
    loadError = `cannot load ${file}: ${err instanceof Error ? err.message : String(err)}`;
    return undefined;
  }
}

/** nativeAddonPath - the file the addon was loaded from, or undefined when it is absent */
export function nativeAddonPath(): string | undefined {
  if (!loadAddon()) return undefined;
  const fromEnv = addonFromEnv();
  if (fromEnv) return fromEnv;
  const gypBuild = createRequire(import.meta.url)("node-gyp-build") as { resolve(dir: string): string };
  return gypBuild.resolve(projectRoot());
}

// Now, while this process may still read every file it was started with.
loadAddon();

/** need - the addon, or throw ERR_NATIVE_UNAVAILABLE */
function need(): PosixAddon {
  const a = loadAddon();
  if (!a) {
    const err = new Error(loadError) as Error & { code: string };
    err.code = "ERR_NATIVE_UNAVAILABLE";
    throw err;
  }
  return a;
}

/** nativeAvailable - true when the addon is built and loads */
export function nativeAvailable(): boolean {
  return loadAddon() !== undefined;
}

/** nativeLoadError - why the addon is unavailable ("" when it loaded) */
export function nativeLoadError(): string {
  loadAddon();
  return addon ? "" : loadError;
}

/** flock - flock(2) on fd: "sh" shared, "ex" exclusive, "un" unlock; nonblock adds LOCK_NB */
export function flock(fd: number, op: FlockOp, nonblock = false): void {
  const code = FLOCK_OPS[op];
  if (code === undefined) throw new TypeError(`bad flock operation: ${String(op)}`);
  need().flock(fd, code, nonblock);
}

/** isWouldBlock - the error a non-blocking flock gives when someone else holds the lock */
export function isWouldBlock(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "EWOULDBLOCK" || code === "EAGAIN";
}

/** chroot - chroot(2) to path, then chdir("/") */
export function chroot(dir: string): void {
  need().chroot(dir);
}

/** unixDgramSocket - a new non-blocking, close-on-exec AF_UNIX datagram socket fd */
export function unixDgramSocket(): number {
  return need().unixDgramSocket();
}

/**
 * unixDgramSend - send one datagram to the socket at path (e.g. /dev/log).
 * The socket is non-blocking: a full receiver queue throws code "EAGAIN".
 */
export function unixDgramSend(fd: number, socketPath: string, data: Buffer): void {
  need().unixDgramSend(fd, socketPath, data);
}

/** closeFd - close(2) a descriptor made by unixDgramSocket */
export function closeFd(fd: number): void {
  need().closeFd(fd);
}

/** nativeTicketKeyLayout - the C layout of TLS_TICKET_KEY, or undefined without the addon (or an old build of it) */
export function nativeTicketKeyLayout(): NativeTicketKeyLayout | undefined {
  return loadAddon()?.ticketKeyLayout?.();
}
