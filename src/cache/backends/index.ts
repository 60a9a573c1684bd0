/**
 * index.ts - registers the built-in session cache backends.
 * Owns: which map types exist without extra configuration: memory/internal
 *       (in-process), lmdb/btree/hash (LMDB files) and redis (a shared
 *       Redis or Valkey, configured by a table file).
 * Not here: the backends themselves.
 * See also: cache/backend.ts (registry), postfix/src/util/dict_open.c (dict_open_info[])
 */

import { registerBackend } from "../backend.js";
import { lmdbBackendInfo } from "./lmdb.js";
import { memoryBackendInfo } from "./memory.js";
import { redisBackendInfo } from "./redis.js";

let done = false;

/** registerBuiltinBackends - make memory:, internal:, lmdb:, btree:, hash: and redis: openable (idempotent). */
export function registerBuiltinBackends(): void {
  if (done) return;
  done = true;
  registerBackend(memoryBackendInfo);
  registerBackend(lmdbBackendInfo);
  registerBackend(redisBackendInfo);
}

registerBuiltinBackends();
