/**
 * key-source.ts - choose where session-ticket keys live, from
 *                 tlsmgr_ticket_key_database.
 * Owns: the mapping from that parameter's value to a TicketKeySource, and
 *       the start-up checks of each form:
 *         ""           in memory, as Postfix's tlsmgr (the default);
 *         redis:TABLE  shared by every tlsmgr on the same servers (needs
 *                      key_wrap_file in TABLE; refuses to start without);
 *         /path        a 0600 file: the keys survive restarts on one host.
 * Not here: the stores themselves (tickets/ticket-keys.ts, redis-keys.ts,
 *           file-keys.ts); the lifetime rules (tickets/ticket-keys.ts).
 * See also: man/tlsmgr.8, redis/table.ts, tickets/key-wrap.ts
 *
 * Called at start-up before privileges are dropped and before chroot: the
 * key file is opened, and the table, password and key wrap files are read, then.
 */

import type { TicketKeySource } from "./ticket-keys.js";
import { MemoryTicketKeys } from "./ticket-keys.js";
import { RedisTicketKeys } from "./redis-keys.js";
import { fileTicketKeysOpen } from "./file-keys.js";
import { keyWrapFileRead } from "./key-wrap.js";
import { redisTableRead } from "../redis/table.js";
import { redisLinkOpen } from "../redis/link.js";
import { msgFatal } from "../log/msg.js";
import type { Clock } from "../util/clock.js";

export interface KeySourceConfig {
  tlsmgr_ticket_key_database: string;
  main_cf_path: string;
  /** Tests: the time source of the key store. */
  clock?: Clock;
  /** mail_owner's ids: a key file in a directory mail_owner owns is given to it (file-keys.ts). */
  keyFileOwner?: { uid: number; gid: number };
}

/** openTicketKeySource - the key store named by the configuration (fatal when it cannot be used). */
export async function openTicketKeySource(cfg: KeySourceConfig): Promise<TicketKeySource> {
  const spec = cfg.tlsmgr_ticket_key_database.trim();
  const where = `${cfg.main_cf_path || "main.cf"}: parameter tlsmgr_ticket_key_database`;
  const opts = cfg.clock ? { clock: cfg.clock } : {};
  if (spec === "") return new MemoryTicketKeys(opts);
  if (spec.startsWith("redis:")) {
    const path = spec.slice("redis:".length);
    if (path === "") msgFatal(`${where}: expecting "redis:/path/to/table" instead of "${spec}"`);
    const table = redisTableRead(path);
    if (table.keyWrapFile === undefined)
      msgFatal(
        `${where}: ${spec}: sharing session ticket keys needs key_wrap_file in ${path}:` +
          " keys are never stored in plain in Redis; make the file once with" +
          " \"tlsmgr-postfix keygen /etc/postfix/tlsmgr-key-wrap\", copy it (mode 0600) to every host," +
          " and name it in the table (key_wrap_file = /etc/postfix/tlsmgr-key-wrap)",
      );
    const wrap = keyWrapFileRead(table.keyWrapFile, path);
    const link = await redisLinkOpen(path, { table });
    return new RedisTicketKeys(link, wrap, opts);
  }
  if (spec.startsWith("/")) return fileTicketKeysOpen(spec, where, cfg.keyFileOwner ? { ...opts, owner: cfg.keyFileOwner } : opts);
  if (/^[A-Za-z0-9_.-]+:/.test(spec))
    msgFatal(`${where}: unsupported key store type "${spec.slice(0, spec.indexOf(":"))}" (expecting redis:TABLE or an absolute pathname)`);
  return msgFatal(`${where}: "${spec}" is not an absolute pathname (expecting empty, redis:TABLE or /path/to/file)`);
}
