/**
 * accept-under-load.test.ts - a new client is not kept waiting behind
 *                             clients that pipeline floods of requests.
 * Owns: the order in which the daemon serves: while 8 clients each have
 *       thousands of requests (and big values) queued, a new client is
 *       announced and served after at most a few turns' worth of their work.
 *       The daemon's own cache is the clock: each flooding client j stores
 *       its request counter under clock-j, so the new client's lookups of
 *       clock-0..7 tell how many of their requests the daemon served before
 *       it served the new client. No timing is measured.
 * Not here: many idle connections (robustness/faults.test.ts).
 * See also: src/server/turn-budget.ts, src/server/connection.ts
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { startDaemon } from "../helpers/daemon.js";
import type { RunningDaemon } from "../helpers/daemon.js";
import { attr0ListSplit, openAnnounced, Raw, rawTestInstance } from "../helpers/raw-conn.js";
import type { RawTestInstance } from "../helpers/raw-conn.js";
import { TURN_BUDGET_UNITS } from "../../src/server/turn-budget.js";

const FLOODERS = 8;
/** Requests each flooding client has queued when the new client comes. */
const PER_FLOODER = 4000;
/** Every BIG_EVERY-th request of a flooder stores a big value. */
const BIG_EVERY = 200;
const BIG_SESSION = Buffer.alloc(64 * 1024, 0x42).toString("base64");

let inst: RawTestInstance;
let daemon: RunningDaemon;

before(async () => {
  inst = rawTestInstance("accept", [
    "smtpd_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache",
  ]);
  daemon = await startDaemon({ configDir: inst.dir, socket: inst.socket });
});

after(async () => {
  const code = await daemon?.stop();
  inst?.cleanup();
  assert.equal(code, 0, "the daemon stops cleanly on SIGTERM");
});

const counter = (k: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(k);
  return b.toString("base64");
};

/** flood - client j's requests 1..n: each stores its number under clock-j (every BIG_EVERY-th also a big value). */
function flood(j: number, n: number): Buffer {
  const parts: string[] = [];
  for (let k = 1; k <= n; k++) {
    if (k % BIG_EVERY === 0) parts.push(`request\0update\0cache_type\0smtpd\0cache_id\0big-${j}\0session\0${BIG_SESSION}\0\0`);
    parts.push(`request\0update\0cache_type\0smtpd\0cache_id\0clock-${j}\0session\0${counter(k)}\0\0`);
  }
  return Buffer.from(parts.join(""), "latin1");
}

test("while 8 clients flood pipelined requests, a new client is announced and served within a few turns of their work", async (t) => {
  const flooders: Raw[] = await Promise.all(Array.from({ length: FLOODERS }, () => openAnnounced(daemon.socket)));
  const batches = flooders.map((_, j) => flood(j, PER_FLOODER));
  const repliesPerFlooder = PER_FLOODER + Math.floor(PER_FLOODER / BIG_EVERY);
  try {
    // All floods written, then at once the new client: its lookups go out with its connect.
    flooders.forEach((f, j) => f.sock.write(batches[j]!));
    const lookups = Array.from({ length: FLOODERS }, (_, j) =>
      `request\0lookup\0cache_type\0smtpd\0cache_id\0clock-${j}\0\0`).join("");
    const sock = connect({ path: daemon.socket });
    sock.write(Buffer.from(lookups, "latin1"));
    const fresh = new Raw(sock);
    await fresh.until(() => attr0ListSplit(fresh.received).lists.length >= 1 + FLOODERS, "the announcement and 8 replies", 60_000);

    const { lists } = attr0ListSplit(fresh.received);
    assert.deepEqual(lists[0], [["protocol", "tlsmgr_protocol"]], "announcement first");
    const seen = lists.slice(1, 1 + FLOODERS).map((l, j) => {
      if (l[0]?.[1] === "4294967295") return 0; // nothing stored yet under clock-j
      assert.equal(l[0]?.[1], "0", `lookup of clock-${j}: ${JSON.stringify(l)}`);
      return Buffer.from(l[1]![1], "base64").readUInt32BE(0);
    });
    const servedBefore = seen.reduce((a, b) => a + b, 0);
    // At most: the turn in progress, then the waiting flooders' slices in
    // the next turns before the new client's turn comes (src/server/turn-budget.ts).
    const bound = 6 * TURN_BUDGET_UNITS;
    t.diagnostic(`flood requests served before the new client: ${servedBefore} (${seen.join(" ")}), bound ${bound}`);
    assert.ok(servedBefore <= bound,
      `the daemon served ${servedBefore} flood requests (${seen.join(" ")}) before the new client, more than ${bound}`);
    fresh.close();

    // And the flooders are all served in full, in order.
    await Promise.all(flooders.map((f) =>
      f.until(() => attr0ListSplit(f.received).lists.length >= repliesPerFlooder, `${repliesPerFlooder} replies`, 120_000)));
    for (const f of flooders) {
      const { lists: got, rest } = attr0ListSplit(f.received);
      assert.equal(rest.length, 0);
      assert.equal(got.length, repliesPerFlooder);
      assert.ok(got.every((l) => l.length === 1 && l[0]![0] === "status" && l[0]![1] === "0"));
    }
    const last = await openAnnounced(daemon.socket);
    const r = await last.reply("request\0lookup\0cache_type\0smtpd\0cache_id\0clock-3\0\0");
    assert.equal(r, `status\x000\0session\0${counter(PER_FLOODER)}\0\0`, "the last request of a flood was the last stored");
    last.close();
  } finally {
    for (const f of flooders) f.close();
  }
});
