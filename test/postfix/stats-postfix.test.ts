/**
 * stats-postfix.test.ts - the statistics of our daemon serving a real
 *                         Postfix (Debian's smtpd(8) and smtp(8)), read back
 *                         exactly through the stats request and an HTTP
 *                         scrape, checked against what Postfix itself logs
 *                         (smtpd_tls_loglevel and smtp_tls_loglevel 2); and
 *                         tlsmgr_smtpd_cache_shared_services letting a TLS 1.2
 *                         session made by one smtpd service resume on another.
 * Owns: the proofs with real clients: session tickets (one key made, a fresh
 *       smtpd process looks the ticket's key up by name and finds it), the
 *       smtp cache (lookups, hits, updates equal smtp's own log lines), the
 *       smtpd cache (a lookup miss on a second service by default; a hit
 *       with the two services listed).
 * Not here: the counters without Postfix (test/integration/stats.test.ts).
 * See also: test/helpers/postfix-instance.ts, postfix/src/tls/tls_server.c
 *           (GEN_CACHE_ID), postfix/src/tls/tls_client.c, src/cache/service-alias.ts
 *
 * The instance's two smtpd services are named by master(8) after their
 * master.cf first column, 127.0.0.1:PORT and 127.0.0.1:PORT2, so their
 * smtpd cache ids differ in the "&s=" part: that is the situation of two MX
 * hosts whose smtpd services are bound to their own addresses.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { TlsmgrClient } from "../../src/client/tlsmgr-client.js";
import type { StatsSnapshot } from "../../src/stats/stats-snapshot.js";
import { createPostfixInstance, postfixSkipReason, type PostfixInstance } from "../helpers/postfix-instance.js";
import { startDaemon, type RunningDaemon } from "../helpers/daemon.js";
import { freeLoopbackPort } from "../helpers/free-port.js";
import { sample, waitForScrape } from "../helpers/metrics-scrape.js";
import { opensslHandshake } from "../helpers/openssl-probe.js";

const skip = postfixSkipReason();

/** stats - one stats request. */
async function stats(d: RunningDaemon): Promise<StatsSnapshot> {
  const c = await TlsmgrClient.connect(d.socket);
  try {
    return (await c.stats()).stats!;
  } finally {
    c.close();
  }
}

/** count - maillog lines matching re. */
async function count(pf: PostfixInstance, re: RegExp): Promise<number> {
  return (await pf.logText()).split("\n").filter((l) => re.test(l)).length;
}

/** settled - poll until fn() gives the same value twice 300 ms apart (Postfix logs and our counters catch up). */
async function settled<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = JSON.stringify(await fn());
  for (;;) {
    await new Promise((r) => setTimeout(r, 300));
    const v = await fn();
    const now = JSON.stringify(v);
    if (now === last || Date.now() > deadline) return v;
    last = now;
  }
}

test("statistics with a real Postfix: ticket keys, the smtp cache, the smtpd cache and service names", { skip: skip ?? false }, async (t) => {
  const pf = await createPostfixInstance({ tlsmgr: "none" });
  const port = await freeLoopbackPort();
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  let daemon: RunningDaemon | undefined;
  t.after(async () => {
    await daemon?.stop();
    await pf.destroy();
  });
  await pf.start();
  const start = (extra: string[] = []) =>
    startDaemon({ configDir: pf.configDir, args: ["-o", `tlsmgr_metrics_address=127.0.0.1:${port}`, ...extra] });
  daemon = await start();
  await waitForScrape(metricsUrl);

  await t.test("session tickets: one key made; a fresh smtpd process finds the ticket's key by name", async () => {
    const sess = join(pf.dir, "tls13.pem");
    const first = await opensslHandshake({ port: pf.smtpdPort, sessOut: sess, tls: "1.3" });
    assert.equal(first.reused, false, first.output);
    const other = await opensslHandshake({ port: pf.smtpdPort2, sessIn: sess, tls: "1.3" });
    assert.equal(other.reused, true, other.output);
    await pf.waitForLog(/other postfix\/smtpd\[\d+\]: .*Reusing old session \(RFC 5077 session ticket\)/, 10_000);
    const s = await stats(daemon!);
    // The second service's smtpd had never asked for a key: tls_mgr_key() finds
    // none in its own cache and asks us for the ticket's key by its name.
    assert.deepEqual([s.tickets!.made, s.tickets!.lookups.found, s.tickets!.lookups.not_found, s.tickets!.lookups.stale], [1, 1, 0, 0]);
    assert.equal(s.requests.tktkey.err + s.requests.tktkey.fail, 0);
    assert.ok(s.requests.policy.ok >= 2, "each smtpd asks the smtpd cache policy");
    assert.ok(s.requests.seed.ok >= 2, "each smtpd asks for seed");
    const m = await waitForScrape(metricsUrl);
    assert.equal(sample(m, "tlsmgr_ticket_key_lookups_total", { result: "found" }), 1);
    assert.equal(sample(m, "tlsmgr_ticket_keys_made_total"), 1);
    assert.equal(sample(m, "tlsmgr_requests_total", { request: "tktkey", status: "ok" }), s.requests.tktkey.ok);
  });

  await t.test("the smtp cache: lookups, hits and updates are smtp's own log lines, one entry", async () => {
    for (const to of ["first@example.com", "second@example.com"]) {
      await pf.sendmail(to);
      await pf.waitForLog(new RegExp(`to=<${to.replace(".", "\\.")}>.*status=sent`), 60_000);
    }
    await pf.waitForLog(/postfix\/smtp\[\d+\]: .*Reusing old session/, 5_000);
    const logged = await settled(async () => ({
      lookups: await count(pf, /postfix\/smtp\[\d+\]: looking for session \S+ in smtp cache/),
      hits: await count(pf, /postfix\/smtp\[\d+\]: reloaded session \S+ from smtp cache/),
      saves: await count(pf, /postfix\/smtp\[\d+\]: save session \S+ to smtp cache/),
    }));
    assert.ok(logged.lookups >= 2 && logged.hits >= 1 && logged.saves >= 1, JSON.stringify(logged));
    const s = await stats(daemon!);
    const smtp = s.caches["smtp"]!;
    assert.deepEqual(
      { lookups: smtp.lookups.hit + smtp.lookups.miss + smtp.lookups.expired + smtp.lookups.error, hits: smtp.lookups.hit, saves: smtp.updates },
      logged,
    );
    assert.deepEqual([smtp.lookups.expired, smtp.lookups.error, smtp.deletes], [0, 0, 0]);
    assert.equal(smtp.entries, 1, "one destination");
    assert.equal(smtp.hit_rate, logged.hits / logged.lookups);
    const m = await waitForScrape(metricsUrl);
    assert.equal(sample(m, "tlsmgr_cache_lookups_total", { cache: "smtp", result: "hit" }), logged.hits);
    assert.equal(sample(m, "tlsmgr_cache_lookups_total", { cache: "smtp", result: "miss" }), logged.lookups - logged.hits);
    assert.equal(sample(m, "tlsmgr_cache_updates_total", { cache: "smtp" }), logged.saves);
    assert.equal(sample(m, "tlsmgr_cache_entries", { cache: "smtp" }), 1);
  });

  /** smtpdCache - a TLS 1.2 session without a ticket made on the first service, offered to the second. */
  const smtpdCache = async (name: string) => {
    const sess = join(pf.dir, `${name}.pem`);
    const before = (await stats(daemon!)).caches["smtpd"]!;
    const made = await opensslHandshake({ port: pf.smtpdPort, sessOut: sess, tls: "1.2", noTicket: true });
    assert.equal(made.reused, false, made.output);
    await settled(async () => (await stats(daemon!)).caches["smtpd"]!.updates);
    const offered = await opensslHandshake({ port: pf.smtpdPort2, sessIn: sess, tls: "1.2", noTicket: true });
    const after = await settled(async () => (await stats(daemon!)).caches["smtpd"]!);
    return { reused: offered.reused, output: offered.output, before, after };
  };

  await t.test("the smtpd cache: by default a session of one service misses on the other", async () => {
    const r = await smtpdCache("apart");
    assert.equal(r.reused, false, r.output);
    await pf.waitForLog(new RegExp(`other postfix/smtpd\\[\\d+\\]: .*looking up session [0-9A-F]+&s=127\\.0\\.0\\.1:${pf.smtpdPort2}&l=\\d+ in smtpd cache`), 10_000);
    assert.equal(r.after.lookups.miss - r.before.lookups.miss, 1);
    assert.equal(r.after.lookups.hit - r.before.lookups.hit, 0);
    assert.equal(r.after.updates - r.before.updates, 2, "each service saved its own new session");
  });

  await t.test("tlsmgr_smtpd_cache_shared_services: listed, the two services resume each other's sessions", async () => {
    await daemon!.stop();
    daemon = undefined;
    daemon = await start(["-o", `tlsmgr_smtpd_cache_shared_services=127.0.0.1:${pf.smtpdPort} 127.0.0.1:${pf.smtpdPort2}`]);
    await waitForScrape(metricsUrl);
    const r = await smtpdCache("shared");
    assert.equal(r.reused, true, r.output);
    await pf.waitForLog(/other postfix\/smtpd\[\d+\]: .*Reusing old session$/, 10_000);
    assert.deepEqual([r.after.lookups.hit, r.after.lookups.miss, r.after.updates], [1, 0, 1]);
    // both services' ids are stored under the first name (our daemon logs cache operations at smtpd_tls_loglevel 2)
    const err = daemon.stderr();
    assert.match(err, new RegExp(`: lookup smtpd session id=[0-9A-F]+&s=127\\.0\\.0\\.1:${pf.smtpdPort}&l=\\d+$`, "m"));
    assert.doesNotMatch(err, new RegExp(`session id=[0-9A-F]+&s=127\\.0\\.0\\.1:${pf.smtpdPort2}&`));
    const m = await waitForScrape(metricsUrl);
    assert.equal(sample(m, "tlsmgr_cache_lookups_total", { cache: "smtpd", result: "hit" }), 1);
    assert.doesNotMatch(err, /(warning|error|fatal|panic): /);
  });
});
