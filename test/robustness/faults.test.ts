/**
 * faults.test.ts - clients that misbehave at the socket level: they vanish in
 *                  the middle of a request or of a reply, never read, drip one
 *                  byte at a time, stop half-way, or come 500 at once.
 * Owns: the daemon's behaviour under those clients: it keeps serving the
 *       others, closes a half-sent request after ipc_timeout with a warning,
 *       leaves idle clients alone, and keeps its memory bounded by pausing its
 *       reads while a client does not read its replies.
 * Not here: the content of replies (integration/daemon-replies.test.ts), byte
 *           fuzzing (robustness/fuzz-socket.test.ts).
 * See also: src/server/connection.ts (back-pressure, ipc_timeout),
 *           postfix/src/tlsmgr/tlsmgr.c (tlsmgr_request_receive: read_wait)
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startDaemon } from "../helpers/daemon.js";
import type { RunningDaemon } from "../helpers/daemon.js";
import { openAnnounced, processRssMiB, rawTestInstance } from "../helpers/raw-conn.js";
import type { Raw, RawTestInstance } from "../helpers/raw-conn.js";

const POLICY_REQ = "request\0policy\0cache_type\0smtpd\0\0";
const POLICY_SMTPD = "status\x000\0cachable\x001\0timeout\x003600\0\0";
const OK = "status\x000\0\0";
/** One MiB of session, its base64 text, and the lookup reply that carries it. */
const BIG_SESSION = Buffer.alloc(1 << 20, 0xa5);
const BIG_B64 = BIG_SESSION.toString("base64");
const BIG_REPLY = `status\x000\0session\0${BIG_B64}\0\0`;
const BIG_LOOKUP = "request\0lookup\0cache_type\0smtpd\0cache_id\0big\0\0";

/** The instance every test here uses: ipc_timeout 2 s, room for a 1 MiB session. */
const CONFIG = [
  "smtpd_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache",
  "ipc_timeout = 2s",
  "tlsmgr_attr_value_limit = 2000000",
];

let inst: RawTestInstance;
let daemon: RunningDaemon;

before(async () => {
  inst = rawTestInstance("faults", CONFIG);
  daemon = await startDaemon({ configDir: inst.dir, socket: inst.socket });
  await storeBigSession(daemon);
});

after(async () => {
  const code = await daemon?.stop();
  inst?.cleanup();
  assert.equal(code, 0, "the daemon stops cleanly on SIGTERM");
});

async function storeBigSession(d: RunningDaemon): Promise<void> {
  const c = await openAnnounced(d.socket);
  const req = `request\0update\0cache_type\0smtpd\0cache_id\0big\0session\0${BIG_B64}\0\0`;
  assert.equal(await c.exchange(req, OK), OK);
  c.close();
}

// stillServing - a new client gets a correct policy reply, and the daemon runs
async function stillServing(d: RunningDaemon = daemon): Promise<void> {
  assert.equal(d.proc.exitCode, null, "daemon running");
  const c = await openAnnounced(d.socket);
  assert.equal(await c.exchange(POLICY_REQ, POLICY_SMTPD), POLICY_SMTPD);
  c.close();
}

async function waitForLog(d: RunningDaemon, re: RegExp, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!re.test(d.stderr())) {
    if (Date.now() > deadline) assert.fail(`no log line ${re} in:\n${d.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("client gone in the middle of a request: warning, the others are served", async () => {
  for (let i = 0; i < 20; i++) {
    const c = await openAnnounced(daemon.socket);
    c.sock.write(Buffer.from("request\0lookup\0cache_type\0smtpd\0cache_", "latin1"));
    if (i % 2 === 0) c.sock.end();
    else c.close();
  }
  await waitForLog(daemon, /warning: premature end-of-input from .* while reading request/);
  await stillServing();
});

test("client gone in the middle of a 1 MiB reply, or before it: the daemon carries on", async () => {
  for (let i = 0; i < 20; i++) {
    const c = await openAnnounced(daemon.socket);
    c.sock.write(Buffer.from(BIG_LOOKUP.repeat(1 + (i % 3)), "latin1"));
    if (i % 2 === 0) await c.until(() => c.received.length > 0, "the start of the reply");
    c.close();
  }
  // One whole 1 MiB reply still arrives intact.
  const c = await openAnnounced(daemon.socket);
  assert.ok((await c.exchange(BIG_LOOKUP, BIG_REPLY)) === BIG_REPLY, "1 MiB lookup reply intact");
  c.close();
  await stillServing();
  assert.doesNotMatch(daemon.stderr(), /request from .* failed|read error from/);
});

test("a request dripped one byte per 20 ms is answered, and the connection stays usable", async () => {
  // Its own daemon with the default ipc_timeout (3600 s): the drip must not race a 2 s deadline
  // on a busy machine (ipc_timeout bounds the time a whole request may take, see below).
  const dripInst = rawTestInstance("drip", ["smtpd_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache"]);
  const d = await startDaemon({ configDir: dripInst.dir, socket: dripInst.socket });
  try {
    const c = await openAnnounced(d.socket);
    const req = Buffer.from(`request\0lookup\0cache_type\0smtpd\0cache_id\0drip-${"x".repeat(10)}\0\0`, "latin1");
    for (let i = 0; i < req.length; i++) {
      c.sock.write(req.subarray(i, i + 1));
      await sleep(20);
    }
    const miss = "status\x004294967295\0session\0\0\0";
    assert.equal(await c.take(miss.length), miss);
    assert.equal(await c.exchange(POLICY_REQ, POLICY_SMTPD), POLICY_SMTPD, "still in step after the drip");
    c.close();
    await stillServing(d);
  } finally {
    await d.stop();
    dripInst.cleanup();
  }
});

test("half a request then silence: closed after ipc_timeout with a warning; idle and other clients unharmed", async () => {
  const idle = await openAnnounced(daemon.socket);
  const stuck = await openAnnounced(daemon.socket);
  // ipc_timeout bounds the time from a request's first byte to its end (src/server/connection.ts),
  // so a request left half-sent is given up 2 s after it began.
  stuck.sock.write(Buffer.from("request\0lookup\0cache_type\0smt", "latin1"));
  // While it hangs, others are served.
  await stillServing();
  await stuck.waitClosed(15_000);
  assert.equal(stuck.received.length, 0, "no reply to half a request");
  await waitForLog(daemon, /warning: timeout while waiting for data from /);
  // A client idle between requests for longer than ipc_timeout is not cut off.
  assert.equal(idle.closed, false, "idle client still connected");
  assert.equal(await idle.exchange(POLICY_REQ, POLICY_SMTPD), POLICY_SMTPD);
  idle.close();
});

test("500 concurrent connections, each served", async () => {
  const conns: Raw[] = await Promise.all(Array.from({ length: 500 }, () => openAnnounced(daemon.socket)));
  try {
    const miss = "status\x004294967295\0session\0\0\0";
    const replies = await Promise.all(
      conns.map((c, i) =>
        c.exchange(`${POLICY_REQ}request\0lookup\0cache_type\0smtpd\0cache_id\0c${i}\0\0`, POLICY_SMTPD + miss)),
    );
    assert.equal(replies.filter((r) => r === POLICY_SMTPD + miss).length, 500);
  } finally {
    for (const c of conns) c.close();
  }
  await stillServing();
});

test("a client that pipelines 1 MiB lookups and never reads: reading pauses, memory stays bounded", async () => {
  // Its own daemon, so that its memory is this test's alone.
  const bpInst = rawTestInstance("backpressure", CONFIG);
  const d = await startDaemon({ configDir: bpInst.dir, socket: bpInst.socket });
  const pid = d.proc.pid!;
  const SENT_MAX = 200 * 1024 * 1024;
  const RSS_SAFETY_MIB = 1500; // the daemon is killed beyond this, to spare the machine
  let hog: Raw | undefined;
  let sampler: NodeJS.Timeout | undefined;
  try {
    await storeBigSession(d);
    // Baseline: after one whole 1 MiB lookup was served.
    const warm = await openAnnounced(d.socket);
    assert.equal(await warm.exchange(BIG_LOOKUP, BIG_REPLY), BIG_REPLY);
    warm.close();
    const baseline = processRssMiB(pid);
    const bound = baseline + 128;

    hog = await openAnnounced(d.socket);
    hog.sock.pause(); // never reads
    const batch = Buffer.from(BIG_LOOKUP.repeat(1000), "latin1");
    let sent = 0;
    let maxRss = baseline;
    let killed = false;
    sampler = setInterval(() => {
      try {
        maxRss = Math.max(maxRss, processRssMiB(pid));
      } catch {
        return; // the process is gone
      }
      if (maxRss > RSS_SAFETY_MIB && !killed) {
        killed = true;
        d.proc.kill("SIGKILL");
      }
    }, 20);
    // Write until 200 MB went out, the daemon stopped taking bytes for 2 s, or its memory passed the bound.
    const stalled = await new Promise<boolean>((resolve) => {
      const push = (): void => {
        while (sent < SENT_MAX) {
          if (maxRss > bound || d.proc.exitCode !== null || killed) return resolve(false);
          sent += batch.length;
          if (!hog!.sock.write(batch)) {
            const t = setTimeout(() => resolve(true), 2000);
            hog!.sock.once("drain", () => {
              clearTimeout(t);
              push();
            });
            return;
          }
        }
        resolve(false);
      };
      push();
    });
    // Others must be served meanwhile; and whatever the daemon already read may pile up a while longer.
    let othersStarved: string | undefined;
    if (stalled) {
      try {
        await stillServing(d);
      } catch (err) {
        othersStarved = (err as Error).message;
      }
      await sleep(500);
    }
    const findings: string[] = [];
    if (killed) findings.push(`daemon RSS passed ${RSS_SAFETY_MIB} MiB (killed to spare the machine)`);
    if (maxRss > bound)
      findings.push(
        `daemon RSS rose to ${Math.round(maxRss)} MiB (baseline ${Math.round(baseline)} MiB, bound ${Math.round(bound)} MiB) ` +
          `after ${(sent / 1e6).toFixed(1)} MB of lookups from a client that never reads`,
      );
    if (!stalled && !killed && maxRss <= bound)
      findings.push(`the daemon kept reading: ${(sent / 1e6).toFixed(1)} MB taken without back-pressure`);
    if (othersStarved !== undefined) findings.push(`a new client was not served meanwhile: ${othersStarved}`);
    // A daemon in that state may not even handle SIGTERM: do not wait for it.
    if (findings.length > 0) d.proc.kill("SIGKILL");
    assert.deepEqual(findings, []);
    hog.close();
    hog = undefined;
    await stillServing(d);
  } finally {
    clearInterval(sampler);
    hog?.close();
    await d.stop();
    bpInst.cleanup();
  }
});
