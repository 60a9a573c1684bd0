/**
 * make-dirs.ts - create a directory and its missing parents, one component
 *                at a time, with a bounded number of steps.
 * Owns: makeDirs() (what `mkdir -p` does), which fails with the errno of the
 *       component that cannot be made.
 * Not here: ownership and modes of Postfix's directories (server/socket-path.ts,
 *           master/privileges.ts).
 * See also: postfix/src/util/make_dirs.c
 *
 * Node 20's mkdirSync(path, { recursive: true }) never returns for a path
 * under /proc/1 (procfs answers ENOENT to mkdir and EEXIST-like lookups to
 * the retry): `queue_directory = /proc/1/nope` hung the daemon at start-up.
 * Here each component is tried once, so the loop ends after as many steps as
 * the path has components.
 */

import { mkdirSync, statSync } from "node:fs";
import { resolve, sep } from "node:path";

/** makeDirs - mkdir -p PATH with MODE for the directories made; throws the failing component's error. */
export function makeDirs(path: string, mode: number): void {
  const parts = resolve(path).split(sep).filter((p) => p !== "");
  let dir = "";
  for (const part of parts) {
    dir += sep + part;
    try {
      mkdirSync(dir, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (!statSync(dir).isDirectory()) {
        const e = new Error(`ENOTDIR: not a directory, mkdir '${dir}'`) as NodeJS.ErrnoException;
        e.code = "ENOTDIR";
        throw e;
      }
    }
  }
}
