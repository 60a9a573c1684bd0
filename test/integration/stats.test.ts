/**
 * stats.test.ts - the built daemon's statistics, read back exactly after
 *                 real traffic from the client library: through the stats
 *                 request, through an HTTP scrape of /metrics, and as
 *                 tlsmgr-client prints them; a bounded LMDB cache filled
 *                 past its limit; the metrics address refused outside
 *                 loopback, and taken once the port is free.
 * See also: src/stats/*, src/cache/cache-bound.ts, src/client/cli.ts,
 *           test/helpers/metrics-scrape.ts
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { TlsmgrClient } from "../../src/client/tlsmgr-client.js";
import { SCACHE_HEADER_LEN } from "../../src/cache/scache.js";
import type { StatsSnapshot } from "../../src/stats/stats-snapshot.js";
import { REPO_ROOT, startDaemon, type RunningDaemon } from "../helpers/daemon.js";
import { freeLoopbackPort } from "../helpers/free-port.js";
import { sample, scrape, waitForScrape, type Scrape } from "../helpers/metrics-scrape.js";
import { tempDir } from "../helpers/temp-dir.js";

const dir = tempDir("tlsmgr-stats-");

/** home - a configuration directory dir/NAME with its data directory and a main.cf of these lines. */
function home(name: string, lines: string[]): string {
  const h = join(dir, name);
  mkdirSync(join(h, "data"), { recursive: true, mode: 0o700 });
  writeFileSync(join(h, "main.cf"), [
    `queue_directory = ${h}/queue`,
    `data_directory = ${h}/data`,
    `mail_owner = ${process.getuid?.() === 0 ? "root" : process.env["USER"]}`,
    `tls_random_exchange_name = \${data_directory}/prng_exch`,
    ...lines,
    "",
  ].join("\n"));
  return h;
}

/** cli - bin/tlsmgr-client with these arguments; its stdout and exit status. */
function cli(...args: string[]): Promise<{ stdout: string; code: number }> {
  return new Promise((resolve) => {
    execFile(join(REPO_ROOT, "bin", "tlsmgr-client"), args, (err, stdout) =>
      resolve({ stdout, code: err ? Number((err as { code?: number }).code ?? 2) : 0 }));
  });
}

/** stored - what an entry counts for: id bytes, the 8-byte time stamp, the session. */
const stored = (id: string, len: number) => Buffer.byteLength(id) + SCACHE_HEADER_LEN + len;

describe("statistics after real traffic", () => {
  let daemon: RunningDaemon;
  let client: TlsmgrClient;
  let port: number;
  let url: string;
  const sessions = new Map<string, Buffer>();
  let keybuf: Buffer = Buffer.alloc(0);
  let h = "";

  before(async () => {
    port = await freeLoopbackPort();
    url = `http://127.0.0.1:${port}/metrics`;
    h = home("traffic", [
      `smtpd_tls_session_cache_database = lmdb:\${data_directory}/smtpd_scache`,
      `smtp_tls_session_cache_database = lmdb:\${data_directory}/smtp_scache`,
      `lmtp_tls_session_cache_database = memory:lmtp`,
      `tlsmgr_smtp_cache_entry_limit = 5`,
      `tlsmgr_metrics_address = 127.0.0.1:${port}`,
    ]);
    daemon = await startDaemon({ configDir: h, socket: join(h, "tlsmgr.sock") });
    await waitForScrape(url);
    client = await TlsmgrClient.connect(daemon.socket);

    // the traffic whose counts the tests read back
    for (const t of ["smtpd", "smtp", "lmtp"]) assert.equal((await client.policy(t)).status, 0);
    assert.equal((await client.policy("pop3")).status, -2);
    for (let i = 0; i < 2; i++) assert.equal((await client.seed(32)).status, 0);
    assert.equal((await client.seed(0)).status, -2);
    for (let i = 0; i < 8; i++) {
      const s = randomBytes(100 + i);
      sessions.set(`smtp&[192.0.2.${i}]:25&mx&192.0.2.${i}&&${"AB".repeat(32)}`, s);
      assert.equal((await client.update("smtp", [...sessions.keys()][i]!, s)).status, 0);
    }
    const ids = [...sessions.keys()];
    assert.equal((await client.lookup("smtp", ids[0]!)).status, -1, "the oldest was evicted");
    assert.deepEqual((await client.lookup("smtp", ids[7]!)).session, sessions.get(ids[7]!));
    assert.equal((await client.lookup("smtp", ids[6]!)).status, 0);
    const sd = randomBytes(300);
    sessions.set("sd1", sd);
    assert.equal((await client.update("smtpd", "sd1", sd)).status, 0);
    assert.equal((await client.lookup("smtpd", "sd1")).status, 0);
    assert.equal((await client.delete("smtpd", "sd1")).status, 0);
    assert.equal((await client.delete("smtpd", "sd1")).status, -1);
    assert.equal((await client.lookup("smtpd", "sd1")).status, -1);
    assert.equal((await client.update("lmtp", "l1", Buffer.from("lmtp session"))).status, 0);
    assert.equal((await client.lookup("lmtp", "l1")).status, 0);
    const key = await client.tktkey();
    assert.equal(key.status, 0);
    keybuf = key.keybuf;
    assert.equal((await client.tktkey(key.keybuf.subarray(0, 16))).status, 0);
    assert.equal((await client.tktkey(randomBytes(16))).status, -1);
    assert.equal((await client.tktkey(Buffer.alloc(5))).status, -2);
    assert.equal((await client.lookup("pop3", "x")).status, -2);
    const unknown = await client.request([["request", "frobnicate"]]);
    assert.equal(unknown.get("status")?.toString(), "4294967294");
  });

  after(async () => {
    client?.close();
    await daemon?.stop();
  });

  /** expectedRequests - the request table the traffic above makes (stats: those asked before). */
  const expectedRequests = (stats: number) => ({
    seed: { ok: 2, err: 0, fail: 1 },
    policy: { ok: 3, err: 0, fail: 1 },
    lookup: { ok: 4, err: 2, fail: 1 },
    update: { ok: 10, err: 0, fail: 0 },
    delete: { ok: 1, err: 1, fail: 0 },
    tktkey: { ok: 2, err: 1, fail: 1 },
    stats: { ok: stats, err: 0, fail: 0 },
    other: { ok: 0, err: 0, fail: 1 },
  });

  let first: StatsSnapshot;

  it("the stats request: every request by kind and status, per cache counts, entries and bytes, ticket keys", async () => {
    const r = await client.stats();
    assert.equal(r.status, 0);
    const s = r.stats!;
    first = s;
    assert.equal(s.version, 1);
    assert.equal(s.pid, daemon.proc.pid);
    assert.deepEqual(s.requests, expectedRequests(0), "a stats request counts itself after its reply");

    const ids = [...sessions.keys()];
    const smtp = s.caches["smtp"]!;
    assert.deepEqual(smtp.lookups, { hit: 2, miss: 1, expired: 0, error: 0 });
    assert.equal(smtp.hit_rate, 2 / 3);
    assert.deepEqual([smtp.updates, smtp.deletes, smtp.evictions], [8, 0, 3]);
    assert.deepEqual([smtp.entries, smtp.entry_limit, smtp.byte_limit], [5, 5, 0]);
    assert.equal(smtp.bytes, ids.slice(3, 8).reduce((n, id) => n + stored(id, sessions.get(id)!.length), 0));
    assert.equal(smtp.backend, "lmdb");
    assert.equal(smtp.database, `lmdb:${h}/data/smtp_scache`);

    const smtpd = s.caches["smtpd"]!;
    assert.deepEqual(smtpd.lookups, { hit: 1, miss: 1, expired: 0, error: 0 });
    assert.deepEqual([smtpd.updates, smtpd.deletes, smtpd.entries, smtpd.bytes, smtpd.evictions], [1, 2, 0, 0, 0], "deletes: the requests");
    const lmtp = s.caches["lmtp"]!;
    assert.deepEqual([lmtp.backend, lmtp.lookups.hit, lmtp.entries, lmtp.bytes], ["memory", 1, 1, stored("l1", 12)]);
    for (const c of [smtp, smtpd, lmtp]) {
      assert.equal(c.enabled, true);
      assert.equal(c.sweeps, 1, "the start-up sweep of an empty cache");
      assert.equal(c.sweep_checked, 0);
    }

    assert.deepEqual(s.tickets, {
      database: "",
      made: 1,
      rotated: 0,
      lookups: { found: 1, not_found: 1, stale: 0 },
      in_use: s.tickets!.in_use,
    });
    assert.equal(s.tickets!.in_use!.name, keybuf.subarray(0, 16).toString("hex"));
    assert.equal(s.tickets!.in_use!.shared, false);
    assert.ok(s.prng!.reseeds >= 1 && s.prng!.exchange_writes >= 1 && s.prng!.source_failures === 0, JSON.stringify(s.prng));
    assert.equal(s.backends.lmdb.errors, 0);
    assert.ok(s.backends.lmdb.read_seconds.count > 0 && s.backends.lmdb.commit_seconds.count > 0);
    assert.deepEqual(s.links, []);
    assert.deepEqual(s.farm, { shared_stores: 0, reachable: true, ticket_key_shared: null });
    assert.equal(s.metrics_address, `127.0.0.1:${port}`);

    const again = (await client.stats()).stats!;
    assert.deepEqual(again.requests.stats, { ok: 1, err: 0, fail: 0 });
  });

  it("an HTTP scrape of /metrics: the same counts, with Prometheus's names, types and labels", async () => {
    const m: Scrape = await scrape(url);
    assert.equal(m.status, 200);
    assert.match(m.contentType, /^text\/plain; version=0\.0\.4/);
    const want = expectedRequests(2);
    for (const [request, row] of Object.entries(want))
      for (const [status, n] of Object.entries(row)) assert.equal(sample(m, "tlsmgr_requests_total", { request, status }), n, `${request} ${status}`);
    const lookups = (cache: string, result: string) => sample(m, "tlsmgr_cache_lookups_total", { cache, result });
    assert.deepEqual([lookups("smtp", "hit"), lookups("smtp", "miss"), lookups("smtp", "expired"), lookups("smtp", "error")], [2, 1, 0, 0]);
    assert.deepEqual([lookups("smtpd", "hit"), lookups("smtpd", "miss"), lookups("lmtp", "hit")], [1, 1, 1]);
    assert.equal(sample(m, "tlsmgr_cache_entries", { cache: "smtp" }), 5);
    assert.equal(sample(m, "tlsmgr_cache_bytes", { cache: "smtp" }), first.caches["smtp"]!.bytes);
    assert.equal(sample(m, "tlsmgr_cache_evictions_total", { cache: "smtp" }), 3);
    assert.equal(sample(m, "tlsmgr_cache_entry_limit", { cache: "smtp" }), 5);
    assert.equal(sample(m, "tlsmgr_cache_updates_total", { cache: "smtp" }), 8);
    assert.equal(sample(m, "tlsmgr_cache_deletes_total", { cache: "smtpd" }), 2);
    assert.equal(sample(m, "tlsmgr_cache_sweep_duration_seconds_count", { cache: "smtp" }), 1);
    assert.equal(sample(m, "tlsmgr_cache_sweep_duration_seconds_bucket", { cache: "smtp", le: "+Inf" }), 1);
    assert.equal(sample(m, "tlsmgr_ticket_key_lookups_total", { result: "found" }), 1);
    assert.equal(sample(m, "tlsmgr_ticket_key_lookups_total", { result: "not_found" }), 1);
    assert.equal(sample(m, "tlsmgr_ticket_key_lookups_total", { result: "stale" }), 0);
    assert.equal(sample(m, "tlsmgr_ticket_keys_made_total"), 1);
    assert.equal(sample(m, "tlsmgr_backend_errors_total", { backend: "lmdb" }), 0);
    assert.equal(sample(m, "tlsmgr_backend_errors_total", { backend: "redis" }), 0);
    assert.ok(sample(m, "tlsmgr_backend_latency_seconds_count", { backend: "lmdb", op: "read" }) > 0);
    assert.ok(sample(m, "tlsmgr_prng_reseeds_total") >= 1);
    for (const [name, type] of [["tlsmgr_requests_total", "counter"], ["tlsmgr_cache_entries", "gauge"],
      ["tlsmgr_backend_latency_seconds", "histogram"], ["tlsmgr_cache_lookups_total", "counter"]] as const)
      assert.equal(m.types.get(name), type, name);
    for (const name of m.types.keys()) assert.match(name, /^(tlsmgr_|process_)/);
    for (const [name, type] of m.types) if (type === "counter") assert.match(name, /_total$/, name);
    // buckets are cumulative and end with +Inf = count
    const le = [...m.samples.keys()].filter((k) => k.startsWith('tlsmgr_backend_latency_seconds_bucket{backend="lmdb",le=')).length;
    assert.ok(le > 10, `${le} buckets`);
  });

  it("neither the stats nor /metrics carry session bytes or key material", async () => {
    const json = JSON.stringify((await client.stats()).stats);
    const text = (await scrape(url)).text;
    for (const s of sessions.values()) {
      for (const enc of ["hex", "base64"] as const) {
        const probe = s.subarray(0, 24).toString(enc);
        assert.equal(json.includes(probe) || text.includes(probe), false, `session bytes (${enc})`);
      }
    }
    for (const part of [keybuf.subarray(16, 48), keybuf.subarray(48, 80)])
      for (const enc of ["hex", "base64"] as const) assert.equal(json.includes(part.toString(enc)) || text.includes(part.toString(enc)), false, "key material");
  });

  it("tlsmgr-client stats prints a table with the hit rate per cache, and --json the document", async () => {
    const t = await cli("-s", daemon.socket, "stats");
    assert.equal(t.code, 0);
    assert.match(t.stdout, /^tlsmgr on \S+, pid \d+, up /);
    assert.match(t.stdout, /^ {2}hit rate +50\.0 % +66\.7 % +100\.0 %$/m);
    assert.match(t.stdout, /^ {2}evictions +0 +3 +0$/m);
    assert.match(t.stdout, /^ {2}limits +none +5 entries +none$/m);
    assert.match(t.stdout, /^ {2}lookup +4 +2 +1$/m);
    assert.match(t.stdout, /^ {2}made 1, rotated 0; looked up by name: found 1, not found 1, stale 0$/m);
    assert.match(t.stdout, new RegExp(`^metrics: http://127\\.0\\.0\\.1:${port}/metrics$`, "m"));
    const j = await cli("-s", daemon.socket, "stats", "--json");
    assert.equal(j.code, 0);
    const doc = JSON.parse(j.stdout) as StatsSnapshot;
    assert.deepEqual(doc.caches["smtp"]!.lookups, { hit: 2, miss: 1, expired: 0, error: 0 });
    assert.equal(doc.requests.stats.ok, 4, "the three before, the table's");
  });

  it("GET /metrics only: other paths 404, other methods 405, HEAD without a body", async () => {
    assert.equal((await scrape(`http://127.0.0.1:${port}/`)).status, 404);
    assert.equal((await scrape(url, "POST")).status, 405);
    const head = await scrape(url, "HEAD");
    assert.deepEqual([head.status, head.text], [200, ""]);
  });
});

describe("the metrics address", () => {
  it("outside loopback it is refused with a warning and nothing listens", async () => {
    const port = await freeLoopbackPort();
    const h = home("remote", [`tlsmgr_metrics_address = 0.0.0.0:${port}`]);
    const d = await startDaemon({ configDir: h, socket: join(h, "tlsmgr.sock") });
    try {
      const c = await TlsmgrClient.connect(d.socket);
      const s = (await c.stats()).stats!;
      c.close();
      assert.equal(s.metrics_address, "");
      assert.match(d.stderr(), new RegExp(`warning: tlsmgr_metrics_address = 0\\.0\\.0\\.0:${port}: not a loopback address: metrics are off \\(set tlsmgr_metrics_allow_remote = yes to serve them there\\)`));
      await assert.rejects(scrape(`http://127.0.0.1:${port}/metrics`), /ECONNREFUSED/);
    } finally {
      await d.stop();
    }
  });

  it("a port still held (a tlsmgr being replaced) is taken once it is free", async () => {
    const port = await freeLoopbackPort();
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(port, "127.0.0.1", () => resolve()));
    const h = home("held", [`tlsmgr_metrics_address = 127.0.0.1:${port}`]);
    const d = await startDaemon({ configDir: h, socket: join(h, "tlsmgr.sock") });
    try {
      await sleep(1500);
      assert.doesNotMatch(d.stderr(), /metrics: serving/);
      await new Promise<void>((resolve) => holder.close(() => resolve()));
      const m = await waitForScrape(`http://127.0.0.1:${port}/metrics`, 20_000);
      assert.equal(sample(m, "tlsmgr_requests_total", { request: "seed", status: "ok" }), 0);
      assert.match(d.stderr(), new RegExp(`metrics: serving http://127\\.0\\.0\\.1:${port}/metrics`));
      assert.doesNotMatch(d.stderr(), /warning:/);
    } finally {
      holder.close();
      await d.stop();
    }
  });
});
