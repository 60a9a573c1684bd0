/**
 * hostile-sources.test.ts - an entropy source that misbehaves on purpose:
 *                           the daemon's memory stays bounded and it says so.
 * Owns: an EGD server (test/helpers/egd-server.ts, flood mode) that answers
 *       the first read and then sends bytes nobody asked for, against the
 *       real daemon: the connection is dropped with a warning after a few
 *       hundred bytes, the daemon's memory does not grow, requests are served.
 * Not here: the EGD protocol itself and zero/hang-up/silent servers
 *           (integration/prng-sources.test.ts).
 * See also: src/prng/source-egd.ts, postfix/src/tls/tls_prng_egd.c
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startDaemon } from "../helpers/daemon.js";
import type { RunningDaemon } from "../helpers/daemon.js";
import { EgdServer } from "../helpers/egd-server.js";
import { openAnnounced, processRssMiB, rawTestInstance } from "../helpers/raw-conn.js";
import type { RawTestInstance } from "../helpers/raw-conn.js";

const POLICY_REQ = "request\0policy\0cache_type\0smtpd\0\0";
const POLICY_SMTPD = "status\x000\0cachable\x001\0timeout\x003600\0\0";
/** The most the flooding server sends on one connection: far more than any bound the daemon may keep. */
const FLOOD_LIMIT = 128 * 1024 * 1024;

let inst: RawTestInstance;
let egd: EgdServer;
let daemon: RunningDaemon;

before(async () => {
  inst = rawTestInstance("egdflood", ["smtpd_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache"]);
  egd = await EgdServer.start(join(inst.dir, "egd"), { mode: "flood", floodLimit: FLOOD_LIMIT });
  appendFileSync(inst.mainCf, `tls_random_source = egd:${egd.path}\n`);
  daemon = await startDaemon({ configDir: inst.dir, socket: inst.socket });
});

after(async () => {
  const code = await daemon?.stop();
  await egd?.close();
  inst?.cleanup();
  assert.equal(code, 0, "the daemon stops cleanly on SIGTERM");
});

test("an EGD server sending unrequested bytes: dropped with a warning after a few hundred bytes, memory bounded", async () => {
  const pid = daemon.proc.pid!;
  const deadline = Date.now() + 20_000;
  // The daemon read the source at start-up; the flood follows that reply.
  while (egd.floodsCut === 0 && egd.floodsFinished === 0 && Date.now() < deadline) await sleep(20);
  const rss = processRssMiB(pid);
  assert.equal(egd.floodsFinished, 0, `the daemon took all ${FLOOD_LIMIT} unrequested bytes (RSS ${rss.toFixed(0)} MiB)`);
  assert.equal(egd.floodsCut, 1, "the daemon hung up on the flooding server");
  // What was sent before the hang-up sat in socket buffers; the daemon itself keeps at most 256 bytes.
  assert.ok(egd.flooded < 8 * 1024 * 1024, `${egd.flooded} bytes sent before the hang-up`);
  assert.ok(rss < 400, `daemon RSS ${rss.toFixed(0)} MiB`);
  const warned = /warning: EGD server .*egd sent \d+ bytes that were not asked for: closing the connection/;
  for (let i = 0; i < 250 && !warned.test(daemon.stderr()); i++) await sleep(20); // stderr comes through a pipe
  assert.match(daemon.stderr(), warned);
  const c = await openAnnounced(daemon.socket);
  assert.equal(await c.exchange(POLICY_REQ, POLICY_SMTPD), POLICY_SMTPD, "the daemon serves");
  c.close();
});
