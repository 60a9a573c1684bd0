/**
 * source.ts - the external entropy source named by tls_random_source.
 * Owns: the EntropySource interface, parsing `dev:/path`, `egd:/path` or a
 *       plain file path, opening the right kind, the 255-byte cap of dev and
 *       egd reads, and Postfix's %m-like error text.
 * Not here: the kinds themselves (prng/source-dev.ts, source-egd.ts,
 *       source-file.ts), health tests (prng/health.ts), reopen policy (prng/pool.ts).
 * See also: postfix/src/tls/tls_prng.h, postfix/src/tlsmgr/tlsmgr.c (DEV_PREF, EGD_PREF)
 */
import { getSystemErrorMap } from "node:util";
// Static, not import(): a lazy import would run after privileges are dropped
// (mail_owner may not read this code) or after chroot (the code is outside).
import { openDevSource } from "./source-dev.js";
import { openEgdSource } from "./source-egd.js";
import { openFileSource } from "./source-file.js";

/** Postfix's per-read limit for dev: and egd: sources (UCHAR_MAX). */
export const SOURCE_MAX_READ = 255;
/** Postfix's TLS_MGR_TIMEOUT: 10 seconds for source opens and reads. */
export const SOURCE_TIMEOUT_MS = 10_000;

export type SourceKind = "dev" | "egd" | "file";

export interface SourceSpec {
  kind: SourceKind;
  /** The path without its `dev:` / `egd:` prefix. */
  path: string;
}

/** One opened external source. Reads throw a SourceError whose message reads as a Postfix diagnostic. */
export interface EntropySource {
  readonly kind: SourceKind;
  readonly path: string;
  /** read - up to len bytes (dev/egd: at most 255); never an empty result, it throws instead */
  read(len: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** A failed open or read: message is the whole diagnostic, code the errno-like cause. */
export class SourceError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** parseSourceSpec - tls_random_source -> kind and path; undefined when empty */
export function parseSourceSpec(value: string): SourceSpec | undefined {
  if (!value) return undefined;
  if (value.startsWith("dev:")) return { kind: "dev", path: value.slice(4) };
  if (value.startsWith("egd:")) return { kind: "egd", path: value.slice(4) };
  return { kind: "file", path: value };
}

/** sourceLabel - how diagnostics name a source kind, as Postfix does */
export function sourceLabel(kind: SourceKind): string {
  return kind === "dev" ? "entropy device" : kind === "egd" ? "EGD server" : "entropy file";
}

let errnoMap: Map<number, [string, string]> | undefined;

/** errorText - Postfix's %m for an error: the system's text for its errno, else its message */
export function errorText(err: unknown): string {
  if (err instanceof SourceError) return err.message;
  const e = err as { errno?: unknown; code?: unknown; message?: unknown } | null;
  if (e && typeof e.errno === "number") {
    errnoMap ??= getSystemErrorMap();
    // Node's errors carry -errno; the native addon's carry +errno.
    const hit = errnoMap.get(e.errno < 0 ? e.errno : -e.errno);
    if (hit) return hit[1];
  }
  if (e && typeof e.message === "string" && e.message) return e.message;
  return String(err);
}

/** errorCode - the errno name of an error, or "EIO" */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "EIO";
}

/** delay - wait ms on the real clock (source timeouts are real time) */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface OpenSourceOptions {
  /** Open and read timeout (default SOURCE_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** openSource - open a source of the given spec; throws SourceError with Postfix's words */
export async function openSource(spec: SourceSpec, opts: OpenSourceOptions = {}): Promise<EntropySource> {
  const timeoutMs = opts.timeoutMs ?? SOURCE_TIMEOUT_MS;
  switch (spec.kind) {
    case "dev":
      return openDevSource(spec.path, timeoutMs);
    case "egd":
      return openEgdSource(spec.path, timeoutMs);
    case "file":
      return openFileSource(spec.path);
  }
}
