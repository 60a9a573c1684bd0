/**
 * key-source.ts - choose where session-ticket keys live, from
 *                 tlsmgr_ticket_key_database.
 * Owns: the mapping from that parameter's value to a TicketKeySource.
 *       Empty (the default): in memory, as Postfix's tlsmgr.
 * Not here: the lifetime rules (tickets/ticket-keys.ts).
 * See also: tickets/ticket-keys.ts, man/tlsmgr.8
 */

import type { TicketKeySource } from "./ticket-keys.js";
import { MemoryTicketKeys } from "./ticket-keys.js";
import { msgFatal } from "../log/msg.js";

export interface KeySourceConfig {
  tlsmgr_ticket_key_database: string;
  main_cf_path: string;
}

/** openTicketKeySource - the key store named by the configuration. */
export async function openTicketKeySource(cfg: KeySourceConfig): Promise<TicketKeySource> {
  const spec = cfg.tlsmgr_ticket_key_database.trim();
  if (spec === "") return new MemoryTicketKeys();
  return msgFatal(
    `${cfg.main_cf_path || "main.cf"}: parameter tlsmgr_ticket_key_database: unsupported key store: ${spec}`,
  );
}
