/**
 * key-fallback.ts - session-ticket keys when their configured store cannot
 *                   be used: from memory, as Postfix's tlsmgr keeps them.
 * Owns: the start-up rule for tlsmgr_ticket_key_database: a store that
 *       cannot be opened (a bad value, a key file with a wrong mode or
 *       owner, a redis: table that cannot be read or has no usable
 *       key_wrap_file) logs `error: CAUSE` and one warning that says where
 *       the keys come from instead, and tlsmgr serves keys from memory.
 * Not here: the stores and their checks (tickets/key-source.ts,
 *           file-keys.ts, redis-keys.ts, key-wrap.ts); the memory keys
 *           (tickets/ticket-keys.ts).
 * See also: cache/unavailable-cache.ts (the same rule for caches),
 *           man/tlsmgr.8 (DIAGNOSTICS)
 *
 * Memory keys are what Postfix's tlsmgr always uses: tickets resume on the
 * smtpd processes of this host until tlsmgr restarts, not across hosts or
 * restarts. Fixing main.cf (or the file) and `postfix reload` starts a new
 * tlsmgr on the configured store.
 */

import { errorText } from "../log/errors.js";
import { FatalError, msgError, msgWarn, withFatalAsError } from "../log/msg.js";
import { openTicketKeySource, type KeySourceConfig } from "./key-source.js";
import { MemoryTicketKeys, type TicketKeySource } from "./ticket-keys.js";

/** What ticketKeysOrMemory gives: the store, and whether it is the fallback. */
export interface OpenedKeys {
  source: TicketKeySource;
  /** The configured store failed: keys come from memory. */
  fallback: boolean;
}

/** ticketKeysOrMemory - the configured key store, or memory keys (with an error line) when it cannot be used. */
export async function ticketKeysOrMemory(cfg: KeySourceConfig): Promise<OpenedKeys> {
  try {
    return { source: await withFatalAsError(() => openTicketKeySource(cfg)), fallback: false };
  } catch (err) {
    const spec = cfg.tlsmgr_ticket_key_database.trim();
    const where = `${cfg.main_cf_path || "main.cf"}: parameter tlsmgr_ticket_key_database`;
    if (!(err instanceof FatalError)) msgError(`${where}: cannot open key store ${spec}: ${errorText(err)}`);
    msgWarn(`${where}: ${spec} is unavailable: session ticket keys are kept in memory, as Postfix's tlsmgr keeps them`);
    return { source: new MemoryTicketKeys(cfg.clock ? { clock: cfg.clock } : {}), fallback: true };
  }
}
