/**
 * index.ts - registers the built-in session cache backends.
 * Owns: which map types exist without extra configuration: memory/internal
 *       (in-process) and lmdb/btree/hash (LMDB files).
 * Not here: the backends themselves; redis (registered by its own module).
 * See also: cache/backend.ts (registry), postfix/src/util/dict_open.c (dict_open_info[])
 */

import { registerBackend } from "../backend.js";
import { lmdbBackendInfo } from "./lmdb.js";
import { memoryBackendInfo } from "./memory.js";

let done = false;

/** registerBuiltinBackends - make memory:, internal:, lmdb:, btree: and hash: openable (idempotent). */
export function registerBuiltinBackends(): void {
  if (done) return;
  done = true;
  registerBackend(memoryBackendInfo);
  registerBackend(lmdbBackendInfo);
}

registerBuiltinBackends();
