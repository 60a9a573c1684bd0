/**
 * source.ts - what every external entropy source (tls_random_source) shares:
 *             its kinds, its spec, the interface of an opened one, its error.
 * Owns: the EntropySource interface, parsing `dev:/path`, `egd:/path` or a
 *       plain file path, how diagnostics name each kind, the 255-byte cap of
 *       dev and egd reads, the open and read timeout, SourceError.
 * Not here: the kinds themselves (prng/source-dev.ts, source-egd.ts,
 *       source-file.ts), opening by kind, reads, health and reopening
 *       (prng/source-keeper.ts), error texts (log/errors.ts).
 * See also: postfix/src/tls/tls_prng.h, postfix/src/tlsmgr/tlsmgr.c (DEV_PREF, EGD_PREF)
 */
import { TlsmgrError } from "../log/errors.js";

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

/**
 * A failed open or read: message is the whole diagnostic (errorText() gives
 * it as it is), code the errno-like cause ("ENOENT", "ETIMEDOUT", "EOF").
 */
export class SourceError extends TlsmgrError {}

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
