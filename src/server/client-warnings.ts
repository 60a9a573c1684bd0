/**
 * client-warnings.ts - warnings about one client's requests, rate-limited:
 *                      a client that repeats bad requests cannot fill the log.
 * Owns: the per-client allowance (a burst of CLIENT_WARN_BURST lines, then
 *       one more every CLIENT_WARN_INTERVAL_MS), the count of lines not
 *       logged, and its summary ("<client>: N more warnings not logged"),
 *       written when a line is allowed again and when the client leaves.
 * Not here: what the warnings say (server/handlers.ts, protocol/attr0-scan.ts);
 *           escaping client text (log/msg.ts printable(), and every line is
 *           sanitised in log/msg.ts).
 * See also: server/connection.ts (one per connection), docs/reliability.md
 *
 * A flood of 2.1 million bad requests once wrote 257 MB of log. With this,
 * one client costs at most CLIENT_WARN_BURST lines, then one line per
 * interval, whatever it sends; every bad request is still answered.
 */

import { msgWarn } from "../log/msg.js";

/** Warnings a client may cause before the rest are counted instead of logged. */
export const CLIENT_WARN_BURST = 5;
/** After the burst, one warning per this many milliseconds (with the count of those skipped). */
export const CLIENT_WARN_INTERVAL_MS = 60_000;

/** ClientWarnings - the warning function of one client, and its end. */
export interface ClientWarnings {
  /** warn - log text, unless this client used up its allowance. */
  warn(text: string): void;
  /** close - the client left: log how many lines were not logged, if any. */
  close(): void;
}

/** clientWarnings - a limiter for the client named `peer` (`now` for tests). */
export function clientWarnings(peer: string, now: () => number = Date.now): ClientWarnings {
  let logged = 0;
  let skipped = 0;
  let nextAt = 0;
  const summary = (): void => {
    if (skipped === 0) return;
    msgWarn(`${peer}: ${skipped} more warning${skipped === 1 ? "" : "s"} not logged`);
    skipped = 0;
  };
  return {
    warn(text) {
      if (logged < CLIENT_WARN_BURST) {
        logged++;
        msgWarn(text);
        return;
      }
      const t = now();
      if (t < nextAt || nextAt === 0) {
        if (nextAt === 0) nextAt = t + CLIENT_WARN_INTERVAL_MS;
        skipped++;
        return;
      }
      summary();
      msgWarn(text);
      nextAt = t + CLIENT_WARN_INTERVAL_MS;
    },
    close: summary,
  };
}
