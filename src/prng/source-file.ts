/**
 * source-file.ts - plain file entropy source: read tls_random_bytes bytes once.
 * Owns: opening the file and reading up to len bytes from its start (the pool
 *       then closes it and stops using it, as Postfix does).
 * Not here: the "once" policy (prng/source-keeper.ts).
 * See also: postfix/src/tls/tls_prng_file.c, prng/source.ts
 */
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { errorCode, errorText } from "../log/errors.js";
import { SourceError, type EntropySource } from "./source.js";

/** A sanity bound on one file read; Postfix reads tls_random_bytes without a cap. */
export const FILE_SOURCE_MAX_READ = 1 << 20;

/** openFileSource - open the file read-only */
export async function openFileSource(path: string): Promise<EntropySource> {
  try {
    return new FileSource(path, await open(path, constants.O_RDONLY | constants.O_NOCTTY));
  } catch (err) {
    throw new SourceError(`cannot open entropy file ${path}: ${errorText(err)}`, errorCode(err));
  }
}

class FileSource implements EntropySource {
  readonly kind = "file" as const;
  #closed = false;

  constructor(
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  /** read - up to len bytes from offset 0 (tls_prng_file_read); fewer at end of file */
  async read(len: number): Promise<Buffer> {
    const want = Math.min(Math.max(1, Math.floor(len)), FILE_SOURCE_MAX_READ);
    const buf = Buffer.alloc(want);
    let got = 0;
    try {
      while (got < want) {
        const { bytesRead } = await this.fh.read(buf, got, want - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
    } catch (err) {
      throw new SourceError(`cannot read from entropy file ${this.path}: ${errorText(err)}`, errorCode(err));
    }
    if (got === 0) throw new SourceError(`cannot read from entropy file ${this.path}: file is empty`, "EOF");
    return buf.subarray(0, got);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.fh.close().catch(() => undefined);
  }
}
