/**
 * temp-dir.ts - a temporary directory for the tests of one file or suite.
 * Owns: making it (at once, under the system temporary directory) and
 *       removing it, with everything in it, after the suite's last test.
 * Not here: directories one test makes and removes itself; Postfix instance
 *           directories (test/helpers/postfix-instance.ts).
 * See also: node:test after()
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";

/** tempDir - a fresh directory named PREFIX + random, removed by an after() hook of the calling suite. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
