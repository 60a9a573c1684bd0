/**
 * redis-farm.test.ts - an MX farm of two real Postfix instances, each with
 *                      its own tlsmgr of this project, on one real
 *                      redis-server; and ticket keys in a file surviving
 *                      kill -9 on one host (issue 6, "What must be shown",
 *                      the parts that need real Postfix).
 * Owns: the end-to-end proofs:
 *       - host A's smtpd session resumes on host B's smtpd, by ticket (TLS
 *         1.3, shared ticket keys) and by session id (TLS 1.2 without
 *         tickets, the shared smtpd session cache); B's smtp(8) reuses the
 *         session A's smtp(8) cached for the same destination;
 *       - redis-server killed under smtpd load: every handshake completes
 *         (full handshakes where only Redis could resume), each daemon
 *         warns once per table for the outage, and after redis-server
 *         returns on the same port cross-host resumption works again with
 *         the same daemons;
 *       - tlsmgr_ticket_key_database = /path: after kill -9 of our daemon
 *         and a restart (by this test, not by master), a ticket issued by
 *         one smtpd process resumes on a newly started one; with keys in
 *         memory (Postfix's way) it does not.
 * Not here: two daemons without Postfix (test/integration/redis-daemons.test.ts),
 *           the key race, Cluster, auth and TLS to Redis (test/integration/redis-*.test.ts),
 *           our daemon under master(8) (under-master.test.ts).
 * See also: test/helpers/postfix-instance.ts, test/helpers/redis-server.ts,
 *           test/helpers/openssl-probe.ts, src/cache/backends/redis.ts,
 *           src/tickets/redis-keys.ts, src/tickets/file-keys.ts
 *
 * The two "hosts" are two instances on one machine, both on 127.0.0.1.
 * A real farm runs every host's smtpd as the master.cf service "smtp"
 * (port 25 of its own address). The service name matters: smtpd's session
 * cache id is HEX(session id) "&s=" SERVICE "&l=" OpenSSL version
 * (tls_server.c, GEN_CACHE_ID), so hosts share session-id resumption only
 * when their smtpd services have the same name (and OpenSSL version).
 * Two instances on one address need two ports, and master(8) names an inet
 * service by its host:port (a bare port with a different inet_interfaces
 * each would do, but Postfix refuses 127.0.0.2, which is no configured
 * interface address here). So each host's first smtpd gets "-n smtp" at
 * the end of its master.cf command: master passes "-n 127.0.0.1:PORT"
 * first, the later -n wins (single_server.c getopt), and smtpd calls itself
 * "smtp" as on a real MX. Tickets do not depend on the service name.
 *
 * Daemons use tables with a 1 s bound (not the 50 ms default) so that a
 * busy machine does not turn served requests into misses and outages; a
 * killed redis-server is refused at once whatever the bound.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  createPostfixInstance, postfixSkipReason, sessionTicketKeyName, type PostfixInstance,
} from "../helpers/postfix-instance.js";
import { REPO_ROOT, startDaemon, tlsmgrTktkey, type RunningDaemon } from "../helpers/daemon.js";
import { redisCliPath, redisSkipReason, startRedisServer, writeRedisTable, type RedisServerHandle } from "../helpers/redis-server.js";
import { opensslHandshake, type HandshakeResult } from "../helpers/openssl-probe.js";

const skip = postfixSkipReason();

/** The table of each host: one for the smtpd cache, the smtp cache and the ticket keys, as a new user would write it. */
const TABLES = ["farm-redis.cf"] as const;

interface FarmHost {
  name: string;
  pf: PostfixInstance;
  daemon: RunningDaemon;
  /** The smtpd service that calls itself "smtp" (on 127.0.0.1). */
  port: number;
}

// nameSmtpdService - give the instance's first smtpd service the service name smtp (see the header)
async function nameSmtpdService(pf: PostfixInstance): Promise<void> {
  const file = join(pf.configDir, "master.cf");
  const lines = (await readFile(file, "utf8")).split("\n");
  const at = lines.findIndex((l) => l.startsWith(`127.0.0.1:${pf.smtpdPort} inet `));
  assert.ok(at >= 0 && lines[at]!.endsWith(" smtpd"), `no "127.0.0.1:${pf.smtpdPort} inet ... smtpd" line in ${file}`);
  lines[at] += " -n smtp";
  await writeFile(file, lines.join("\n"));
}

/** What a test must clean up, filled as things start. */
interface Started {
  instances: PostfixInstance[];
  daemons: RunningDaemon[];
}

// farmHost - a Postfix instance with the farm's tables, started, and our daemon on its private/tlsmgr
async function farmHost(name: string, redis: RedisServerHandle, wrapFile: string,
  relayhost: (pf: PostfixInstance) => string, started: Started): Promise<FarmHost> {
  const pf = await createPostfixInstance({ tlsmgr: "none" });
  started.instances.push(pf);
  const table = (t: string) => join(pf.configDir, t);
  const servers = `${redis.host}:${redis.port}`;
  // One table: keys farm:smtpd:session:ID, farm:smtp:session:ID, farm:tktkey:L:E (src/cache/backends/redis.ts).
  await writeRedisTable(table("farm-redis.cf"), { servers, keyPrefix: "farm:", timeout: "1s", keyWrapFile: wrapFile });
  await nameSmtpdService(pf);
  await pf.postconf("-e",
    `smtpd_tls_session_cache_database = redis:${table("farm-redis.cf")}`,
    `smtp_tls_session_cache_database = redis:${table("farm-redis.cf")}`,
    `tlsmgr_ticket_key_database = redis:${table("farm-redis.cf")}`,
    `relayhost = ${relayhost(pf)}`);
  await pf.start();
  const daemon = await startDaemon({ configDir: pf.configDir });
  started.daemons.push(daemon);
  return { name, pf, daemon, port: pf.smtpdPort };
}

// alive - the daemon process has not exited
function alive(d: RunningDaemon): boolean {
  return d.proc.exitCode === null && d.proc.signalCode === null;
}

// outageWarnings - the daemon's "server unavailable" warnings, counted by table file name
function outageWarnings(d: RunningDaemon): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of d.stderr().matchAll(/^tlsmgr\[\d+\]: warning: redis:\S*\/([^/\s]+): server unavailable: /gm)) {
    counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
  }
  return counts;
}

// recoveries - the daemon's "server answers again" lines, counted by table file name
function recoveries(d: RunningDaemon): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of d.stderr().matchAll(/^tlsmgr\[\d+\]: redis:\S*\/([^/\s]+): server answers again$/gm)) {
    counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
  }
  return counts;
}

// waitFor - poll cond until it holds; fail with what() after timeoutMs
async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what()}`);
    await sleep(100);
  }
}

// tlsmgrTrouble - maillog lines in which Postfix complains about its tlsmgr
async function tlsmgrTrouble(pf: PostfixInstance): Promise<string[]> {
  return (await pf.logText()).split("\n").filter((l) => /(warning|error|fatal|panic): .*tlsmgr/.test(l));
}

test("an MX farm: two Postfix hosts, each with our tlsmgr, on one redis-server", { skip: skip ?? redisSkipReason() ?? false }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "tlsmgr-farm-"));
  let redis: RedisServerHandle | undefined;
  const hosts: FarmHost[] = [];
  const started: Started = { instances: [], daemons: [] };
  t.after(async () => {
    for (const d of started.daemons) await d.stop();
    for (const pf of started.instances) await pf.destroy();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  redis = await startRedisServer();
  // the key wrap secret every host of the farm shares, made as an administrator would
  const wrapFile = join(dir, "key-wrap");
  execFileSync(join(REPO_ROOT, "bin", "tlsmgr-postfix"), ["keygen", wrapFile], { stdio: "pipe" });
  assert.equal((await stat(wrapFile)).mode & 0o777, 0o600);

  const a = await farmHost("A", redis, wrapFile, (pf) => `[127.0.0.1]:${pf.smtpdPort2}`, started);
  hosts.push(a);
  // B relays to the same destination as A: A's second smtpd ("other.test", discards)
  const b = await farmHost("B", redis, wrapFile, () => `[127.0.0.1]:${a.pf.smtpdPort2}`, started);
  hosts.push(b);
  const r = redis;

  await t.test("a ticket from host A's smtpd resumes on host B's smtpd (shared ticket keys)", async () => {
    const sess = join(dir, "ticket.pem");
    const first = await opensslHandshake({ port: a.port, sessOut: sess, tls: "1.3" });
    assert.equal(first.reused, false, first.output);
    const name = await sessionTicketKeyName(sess);
    assert.ok(name !== undefined, "the session carries a ticket");
    // both daemons hand out that key as the current one, and it is stored wrapped in Redis
    for (const h of [a, b]) {
      const k = await tlsmgrTktkey(h.daemon.socket);
      assert.equal(k.status, 0);
      assert.equal(k.keybuf.subarray(0, 16).toString("hex"), name, `host ${h.name}'s current key`);
    }
    const slots = (await r.cli("--scan", "--pattern", "farm:tktkey:*")).trim().split("\n");
    assert.equal(slots.length, 1, slots.join(","));
    const blob = execFileSync(redisCliPath(), ["-h", r.host, "-p", String(r.port), "--raw", "get", slots[0]!]);
    const keyB = (await tlsmgrTktkey(b.daemon.socket)).keybuf;
    assert.ok(blob.length > 80, `stored blob of ${blob.length} bytes`);
    for (const [what, part] of [["AES key", keyB.subarray(16, 48)], ["HMAC key", keyB.subarray(48, 80)]] as const) {
      assert.equal(blob.includes(part), false, `the plain ${what} is not in Redis`);
    }

    const onB = await opensslHandshake({ port: b.port, sessIn: sess, tls: "1.3" });
    assert.equal(onB.reused, true, onB.output);
    await b.pf.waitForLog(/postfix\/smtpd\[\d+\]: .*Reusing old session \(RFC 5077 session ticket\)/, 10_000);
  });

  await t.test("a session id from host A's smtpd resumes on host B's smtpd (shared smtpd session cache)", async () => {
    const sess = join(dir, "sessid.pem");
    const sessionKeys = async () =>
      new Set((await r.cli("--scan", "--pattern", "farm:smtpd:session:*")).split("\n").filter((l) => l !== ""));
    const had = await sessionKeys();
    const first = await opensslHandshake({ port: a.port, sessOut: sess, tls: "1.2", noTicket: true });
    assert.equal(first.reused, false, first.output);
    assert.equal(first.protocol, "TLSv1.2");
    // smtpd saves the session as its handshake ends: poll for its entry
    let stored: string[] = [];
    await waitFor(async () => (stored = [...await sessionKeys()].filter((k) => !had.has(k))).length > 0, 10_000,
      () => "no new farm:smtpd:session: entry in Redis");
    assert.equal(stored.length, 1, stored.join(","));
    // the id names the service: the same on both hosts (see the header)
    assert.match(stored[0]!, new RegExp(`^farm:smtpd:session:[0-9A-F]+&s=smtp&l=\\d+$`));

    const onB = await opensslHandshake({ port: b.port, sessIn: sess, tls: "1.2", noTicket: true });
    assert.equal(onB.reused, true, onB.output);
    const id = stored[0]!.slice("farm:smtpd:session:".length);
    await a.pf.waitForLog(new RegExp(`postfix/smtpd\\[\\d+\\]: .*save session ${id} to smtpd cache`), 10_000);
    await b.pf.waitForLog(new RegExp(`postfix/smtpd\\[\\d+\\]: .*looking up session ${id} in smtpd cache`), 10_000);
    await b.pf.waitForLog(/postfix\/smtpd\[\d+\]: .*Reusing old session$/, 10_000);
  });

  await t.test("host B's smtp client reuses the session host A's smtp client cached for the same destination", async () => {
    // The smtp cache id (smtp_proto.c, smtp_key_prefix; tls_fprint.c,
    // tls_serverid_digest) is
    //   SERVICE "&" [nexthop]:port "&" host "&" address "&" "&" SHA-256 hex
    // with SERVICE the master.cf transport name (smtp on both hosts) and the
    // digest over the SERVER's EHLO reply name (here other.test, the one
    // destination), the OpenSSL runtime version, smtp_tls_protocols, the
    // cipher list, and DANE/SNI settings (none at "encrypt"). Nothing in it
    // is host-specific (not myhostname, not smtp_helo_name, not the source
    // address), so hosts with the same transport name, TLS settings and
    // OpenSSL version compute the same id for the same destination.
    await a.pf.sendmail("via-a@example.com");
    await a.pf.waitForLog(/to=<via-a@example\.com>.*status=sent/, 60_000);
    const lookA = await a.pf.waitForLog(/postfix\/smtp\[\d+\]: looking for session smtp&\S+ in smtp cache/, 1_000);
    const idA = /looking for session (smtp&\S+) in smtp cache/.exec(lookA)![1]!;
    assert.match(idA, new RegExp(`^smtp&\\[127\\.0\\.0\\.1\\]:${a.pf.smtpdPort2}&127\\.0\\.0\\.1&127\\.0\\.0\\.1&&[0-9A-F]{64}$`));
    await a.pf.waitForLog(/postfix\/smtp\[\d+\]: save session smtp&\S+ to smtp cache/, 1_000);
    assert.equal((await r.cli("exists", `farm:smtp:session:${idA}`)).trim(), "1", "A's smtp session is in Redis");

    await b.pf.sendmail("via-b@example.com");
    await b.pf.waitForLog(/to=<via-b@example\.com>.*status=sent/, 60_000);
    const lookB = await b.pf.waitForLog(/postfix\/smtp\[\d+\]: looking for session smtp&\S+ in smtp cache/, 1_000);
    assert.equal(/looking for session (smtp&\S+) in smtp cache/.exec(lookB)![1], idA, "the same id on both hosts");
    await b.pf.waitForLog(new RegExp(`postfix/smtp\\[\\d+\\]: 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${a.pf.smtpdPort2}: Reusing old session`), 1_000);
    await b.pf.waitForLog(/postfix\/smtp\[\d+\]: reloaded session smtp&\S+ from smtp cache/, 1_000);
    // B's first delivery ever: nothing of B's was saved before it looked, so the session came from A through Redis
    const logB = await b.pf.logText();
    const saved = logB.search(/postfix\/smtp\[\d+\]: save session /);
    assert.ok(saved < 0 || saved > logB.search(/postfix\/smtp\[\d+\]: looking for session /), logB);
  });

  await t.test("redis-server killed under smtpd load: handshakes complete, one warning per outage, recovery without restarts", async (st) => {
    const pids = hosts.map((h) => h.daemon.proc.pid);
    // a TLS 1.2 session of A that B resumes only through the shared smtpd cache
    const shared = join(dir, "load-shared.pem");
    await opensslHandshake({ port: a.port, sessOut: shared, tls: "1.2", noTicket: true });
    assert.equal((await opensslHandshake({ port: b.port, sessIn: shared, tls: "1.2", noTicket: true })).reused, true);
    assert.deepEqual([...outageWarnings(a.daemon).values(), ...outageWarnings(b.daemon).values()], [], "no outage yet");

    // Phases: "before", then per outage n "downN" (from the kill's end to the
    // restart) and "upN" (after the restart); a handshake counts for a phase
    // when it started and ended in it.
    const OUTAGES = 2;
    let phase = "before";
    let stop = false;
    const done: { start: string; end: string; kind: "new" | "resume"; res?: HandshakeResult; err?: Error }[] = [];
    const inPhase = (p: string) => done.filter((d) => d.start === p && d.end === p);
    // worker - handshakes until told to stop: fresh ones on A and B (tickets) and B resuming A's session id
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const start = phase;
        const kind = i % 2 === 0 ? "new" : "resume";
        const h = (w + i) % 2 === 0 ? a : b;
        const p = kind === "new"
          ? opensslHandshake({ port: h.port, sessOut: join(dir, `load-${w}.pem`), timeoutMs: 20_000 })
          : opensslHandshake({ port: b.port, sessIn: shared, tls: "1.2", noTicket: true, timeoutMs: 20_000 });
        const rec: (typeof done)[number] = { start, end: "", kind };
        try {
          rec.res = await p;
        } catch (e) {
          rec.err = e as Error;
        }
        rec.end = phase;
        done.push(rec);
      }
    };
    // everyTable - each host's daemon has logged n of these lines for each of its tables
    const everyTable = (lines: (d: RunningDaemon) => Map<string, number>, n: number) =>
      hosts.every((h) => TABLES.every((tb) => lines(h.daemon).get(tb) === n));
    const stderrs = () => hosts.map((h) => `host ${h.name}:\n${h.daemon.stderr()}`).join("\n");
    const workers = [0, 1, 2, 3].map(worker);
    try {
      await waitFor(() => inPhase("before").length >= 8, 30_000, () => `${done.length} handshakes before the outage`);
      for (let n = 1; n <= OUTAGES; n++) {
        phase = `kill${n}`;
        await r.kill();
        phase = `down${n}`;
        await waitFor(() => inPhase(`down${n}`).length >= 8 && everyTable(outageWarnings, n), 30_000,
          () => `outage ${n}: ${inPhase(`down${n}`).length} handshakes; ${stderrs()}`);
        phase = `restart${n}`;
        await r.start();
        phase = `up${n}`;
        // the outage ends (an info line) once the link has worked REDIS_RECOVERY_QUIET_MS without failures
        await waitFor(() => inPhase(`up${n}`).length >= 4 && everyTable(recoveries, n), 30_000,
          () => `after outage ${n}: ${inPhase(`up${n}`).length} handshakes; ${stderrs()}`);
      }
    } finally {
      stop = true;
      await Promise.all(workers);
    }

    const tally = (p: string) => `${p} ${inPhase(p).length} (${inPhase(p).filter((d) => d.res?.reused).length} reused)`;
    const phases = ["before", ...Array.from({ length: OUTAGES }, (_, i) => [`down${i + 1}`, `up${i + 1}`]).flat()];
    st.diagnostic(`handshakes: ${phases.map(tally).join(", ")}; all ${done.length}`);
    const failed = done.filter((d) => d.err !== undefined);
    assert.deepEqual(failed.map((d) => d.err!.message), [], "every handshake completed");
    const before = inPhase("before").filter((d) => d.kind === "resume");
    const down = done.filter((d) => /^down\d$/.test(d.start) && d.end === d.start && d.kind === "resume");
    assert.ok(before.length > 0 && down.length > 0, `resume probes: ${before.length} before, ${down.length} during`);
    assert.ok(before.every((d) => d.res!.reused), "before the outage B resumes A's session from Redis");
    assert.ok(down.every((d) => !d.res!.reused), "during an outage the lookup misses: full handshakes");
    assert.ok(hosts.every((h) => alive(h.daemon)), "no daemon exited");
    assert.deepEqual(hosts.map((h) => h.daemon.proc.pid), pids);

    // exactly one warning and one recovery line per table per outage
    for (const h of hosts) {
      assert.deepEqual([...outageWarnings(h.daemon)].sort(), TABLES.map((tb) => [tb, OUTAGES]).sort(), h.daemon.stderr());
      assert.deepEqual([...recoveries(h.daemon)].sort(), TABLES.map((tb) => [tb, OUTAGES]).sort(), h.daemon.stderr());
      assert.deepEqual(await tlsmgrTrouble(h.pf), [], `host ${h.name}: Postfix complained about tlsmgr`);
    }

    // the restarted redis-server is empty (no persistence): session-id
    // resumption across hosts works again through an entry written after
    // its return; tickets too (the daemons kept the shared key they had)
    const again = join(dir, "load-again.pem");
    await opensslHandshake({ port: a.port, sessOut: again, tls: "1.2", noTicket: true });
    const onB = await opensslHandshake({ port: b.port, sessIn: again, tls: "1.2", noTicket: true });
    assert.equal(onB.reused, true, onB.output);
    assert.notEqual((await r.cli("--scan", "--pattern", "farm:smtpd:session:*")).trim(), "", "written after the return");
    const ticket = join(dir, "load-ticket.pem");
    await opensslHandshake({ port: b.port, sessOut: ticket, tls: "1.3" });
    const onA = await opensslHandshake({ port: a.port, sessIn: ticket, tls: "1.3" });
    assert.equal(onA.reused, true, onA.output);
    assert.deepEqual(hosts.map((h) => h.daemon.proc.pid), pids, "the same daemons");
  });

  await t.test("nobody complained about tlsmgr, and SIGTERM ends both daemons cleanly", async () => {
    for (const h of hosts) {
      assert.deepEqual(await tlsmgrTrouble(h.pf), []);
      assert.doesNotMatch(h.daemon.stderr(), /(error|fatal|panic): /);
      assert.equal(await h.daemon.stop(), 0);
    }
  });
});

test("ticket keys in a file survive kill -9 of our tlsmgr; in memory (Postfix's way) they do not", { skip: skip ?? false }, async (t) => {
  const pf = await createPostfixInstance({ tlsmgr: "none" });
  const keyFile = join(pf.dir, "ticket-keys");
  let daemon: RunningDaemon | undefined;
  t.after(async () => {
    await daemon?.stop();
    await pf.destroy();
  });

  // killAndRestart - kill -9 our daemon, then start a new one on the same socket
  const killAndRestart = async (d: RunningDaemon): Promise<RunningDaemon> => {
    d.proc.kill("SIGKILL");
    await waitFor(() => !alive(d), 10_000, () => "the daemon survives SIGKILL");
    assert.equal(d.proc.signalCode, "SIGKILL");
    return startDaemon({ configDir: pf.configDir });
  };
  // smtpdPids - the pids of the smtpd processes that logged under host label (the maillog field after the time)
  const smtpdPids = async (label: string): Promise<Set<string>> => {
    const re = new RegExp(` ${label} postfix/smtpd\\[(\\d+)\\]: `);
    return new Set((await pf.logText()).split("\n").map((l) => re.exec(l)?.[1]).filter((p): p is string => p !== undefined));
  };
  const mainHost = (await pf.postconf("-h", "myhostname")).trim().split(".")[0]!;
  // ticketThenRestart - a TLS 1.3 session with a ticket saved to sess, then kill -9 and restart of
  // our daemon (kept in daemon); the ticket's key name and the restarted daemon's current key
  const ticketThenRestart = async (sess: string) => {
    const first = await opensslHandshake({ port: pf.smtpdPort, sessOut: sess, tls: "1.3" });
    assert.equal(first.reused, false, first.output);
    const name = await sessionTicketKeyName(sess);
    assert.ok(name !== undefined, "the session carries a ticket");
    daemon = await killAndRestart(daemon!);
    return { name, current: await tlsmgrTktkey(daemon.socket) };
  };

  await t.test("file keys: a ticket from one smtpd process resumes on another started after kill -9 and restart", async () => {
    await pf.postconf("-e", `tlsmgr_ticket_key_database = ${keyFile}`);
    await pf.start();
    daemon = await startDaemon({ configDir: pf.configDir });
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);

    const sess = join(pf.dir, "file-keys.pem");
    const { name, current } = await ticketThenRestart(sess);
    assert.equal(current.status, 0);
    assert.equal(current.keybuf.subarray(0, 16).toString("hex"), name, "the restarted daemon has the key from the file");

    // the second smtpd service was never used: its process starts now and must ask tlsmgr
    assert.equal((await smtpdPids("other")).size, 0);
    const other = await opensslHandshake({ port: pf.smtpdPort2, sessIn: sess, tls: "1.3" });
    assert.equal(other.reused, true, other.output);
    await pf.waitForLog(/ other postfix\/smtpd\[\d+\]: .*Reusing old session \(RFC 5077 session ticket\)/, 10_000);
    const [x] = await smtpdPids(mainHost);
    const [y] = await smtpdPids("other");
    assert.ok(x !== undefined && y !== undefined && x !== y, `smtpd processes ${x} and ${y}`);
  });

  await t.test("memory keys (the default, as Postfix): after kill -9 and restart the ticket does not resume on a new smtpd process", async () => {
    // a clean start: no smtpd process of the first part survives with keys in its memory
    await daemon!.stop();
    await pf.stop();
    await pf.postconf("-e", "tlsmgr_ticket_key_database =");
    await rm(pf.maillog, { force: true });
    await pf.start();
    daemon = await startDaemon({ configDir: pf.configDir });

    const sess = join(pf.dir, "memory-keys.pem");
    const { name, current } = await ticketThenRestart(sess);
    assert.notEqual(current.keybuf.subarray(0, 16).toString("hex"), name, "the restarted daemon made a new key");

    // deterministic: the new smtpd process has no keys of its own, and the new daemon has lost the ticket's key
    assert.equal((await smtpdPids("other")).size, 0);
    const other = await opensslHandshake({ port: pf.smtpdPort2, sessIn: sess, tls: "1.3" });
    assert.equal(other.reused, false, other.output);
    assert.equal(await daemon.stop(), 0);
  });
});
