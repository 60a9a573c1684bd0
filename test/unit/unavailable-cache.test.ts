/**
 * unavailable-cache.test.ts - the surrogate of a cache that could not be
 *                             opened, and ticket keys from memory when their
 *                             store cannot be used (issue 12).
 * Owns: the surrogate's answers through SessionCache (lookup misses, update
 *       "succeeds" as over Postfix's surrogate, delete fails, no sweep), its
 *       rate-limited warning, cacheOpenAttempt's error lines (fatal text as
 *       error, one line, the reason without the context), withFatalAsError's
 *       scope, and ticketKeysOrMemory.
 * Not here: the cache set's use of it (unit/cache-set.test.ts); the daemon
 *           and Postfix (robustness/bad-config.test.ts, postfix/fail-soft.test.ts).
 * See also: src/cache/unavailable-cache.ts, src/tickets/key-fallback.ts
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  UNAVAILABLE_WARN_INTERVAL, cacheOpenAttempt, cacheUnavailable, unavailableCache,
} from "../../src/cache/unavailable-cache.js";
import { FatalError, msgFatal, withFatalAsError } from "../../src/log/msg.js";
import { ticketKeysOrMemory } from "../../src/tickets/key-fallback.js";
import { MemoryTicketKeys } from "../../src/tickets/ticket-keys.js";
import { manualClock } from "../../src/util/clock.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";
import { tempDir } from "../helpers/temp-dir.js";

const lines = captureMsgsEach();
const dir = tempDir("tlsmgr-unavailable-");
const WHERE = "/etc/postfix/main.cf: parameter smtpd_tls_session_cache_database: ";
const WARNING = `warning: ${WHERE}lmbd:/x is unavailable. unsupported dictionary type: lmbd`;

describe("unavailable cache", () => {
  it("misses, drops updates, fails deletes, never sweeps; warns at first use, then once per interval", async () => {
    const clock = manualClock();
    const cache = unavailableCache("smtpd", { type: "lmbd", name: "/x" }, "unsupported dictionary type: lmbd", 3600, WHERE, { clock });
    assert.ok(cacheUnavailable(cache));
    assert.deepEqual(lines, [], "nothing until it is used (the error line is the opener's)");
    assert.equal(await cache.lookup("a"), undefined);
    assert.deepEqual(lines, [WARNING]);
    assert.equal(await cache.update("a", Buffer.from("s")), true, "status 0, as tls_scache_update over a surrogate");
    assert.equal(await cache.lookup("a"), undefined, "nothing was stored");
    assert.equal(await cache.delete("a"), false);
    assert.deepEqual(lines, [WARNING], "one warning per interval, and no per-request warning of scache's own");
    clock.advance(UNAVAILABLE_WARN_INTERVAL);
    await cache.lookup("b");
    assert.deepEqual(lines, [WARNING, `${WARNING} (3 more requests since the last warning)`]);
    cache.startSweepTimer();
    assert.equal(cache.sweeping, false, "no sweep of a surrogate");
    await cache.close();
  });
});

describe("cacheOpenAttempt", () => {
  it("logs a fatal text of the step as one error line, and gives the reason without the context", async () => {
    const r = await cacheOpenAttempt(WHERE, "lmbd:/x", async () => msgFatal(`${WHERE}unsupported dictionary type: lmbd`));
    assert.deepEqual(r, { ok: false, reason: "unsupported dictionary type: lmbd" });
    assert.deepEqual(lines, [`error: ${WHERE}unsupported dictionary type: lmbd`]);
  });

  it("logs any other failure as an error naming what it opened", async () => {
    const r = await cacheOpenAttempt(WHERE, "lmdb:/x", async () => {
      throw Object.assign(new Error("EACCES: permission denied, open '/x.lmdb'"), { code: "EACCES" });
    });
    assert.equal(r.ok, false);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^error: \/etc\/postfix\/main\.cf: parameter smtpd_tls_session_cache_database: cannot open lmdb:\/x: /);
  });

  it("without surrogates (daemon_table_open_error_is_fatal = yes) is fatal", async () => {
    await assert.rejects(cacheOpenAttempt(WHERE, "lmbd:/x", async () => msgFatal(`${WHERE}unsupported dictionary type: lmbd`), false),
      FatalError);
    assert.deepEqual(lines, [`fatal: ${WHERE}unsupported dictionary type: lmbd`]);
  });

  it("withFatalAsError is scoped: a fatal outside it, even meanwhile, stays fatal", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inside = withFatalAsError(async () => {
      await gate;
      msgFatal("inside");
    }).catch((e: unknown) => e);
    assert.throws(() => msgFatal("outside"), FatalError);
    release();
    assert.ok((await inside) instanceof FatalError);
    assert.deepEqual(lines, ["fatal: outside", "error: inside"]);
  });
});

describe("ticketKeysOrMemory", () => {
  const cfg = (db: string) => ({ tlsmgr_ticket_key_database: db, main_cf_path: "/etc/postfix/main.cf" });

  it("a key file others may read: one error, a warning, keys from memory", async () => {
    const file = join(dir, "keys-0644");
    await writeFile(file, "");
    await chmod(file, 0o644);
    const { source, fallback } = await ticketKeysOrMemory(cfg(file));
    try {
      assert.equal(fallback, true);
      assert.ok(source instanceof MemoryTicketKeys);
      assert.equal(lines.length, 2, lines.join("\n"));
      assert.match(lines[0]!, /^error: \/etc\/postfix\/main\.cf: parameter tlsmgr_ticket_key_database: .*keys-0644: mode 0644 lets others read or change the keys: chmod 600 /);
      assert.match(lines[1]!, /^warning: \/etc\/postfix\/main\.cf: parameter tlsmgr_ticket_key_database: \S+keys-0644 is unavailable: session ticket keys are kept in memory/);
      assert.equal((await source.tktkey(undefined, 3600))?.name.length, 16);
    } finally {
      await source.close();
    }
  });

  it("an unknown store type and a relative path: the same fallback", async () => {
    for (const db of ["ldap:/x", "keys"]) {
      lines.length = 0;
      const { source, fallback } = await ticketKeysOrMemory(cfg(db));
      await source.close();
      assert.equal(fallback, true, db);
      assert.match(lines[0]!, /^error: .*parameter tlsmgr_ticket_key_database: /, db);
      assert.ok(!lines.some((l) => l.startsWith("fatal: ")), db);
    }
  });

  it("a usable store is used", async () => {
    const { source, fallback } = await ticketKeysOrMemory(cfg(""));
    await source.close();
    assert.equal(fallback, false);
    assert.deepEqual(lines, []);
  });
});
