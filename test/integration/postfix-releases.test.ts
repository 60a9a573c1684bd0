/**
 * postfix-releases.test.ts - the built daemon as each Postfix release's
 * clients need it, on a temporary socket: no server announcement for a 3.5
 * (a 3.5 client's first request answered as its first list), the announcement
 * for 3.6 and later, found again at each start (a 3.5 -> 3.8 upgrade);
 * main.cf files of 3.11 (${default_cache_db_type}) and of 3.12 snapshots
 * (smtpd_tls_loglevel = 1,trace) start and serve; tktkey failures answered
 * as 3.5-3.11 answer them; keybuf as long as TLS_TICKET_KEY here.
 * The Postfix asked is a postconf script of the test's own (fake-postconf.ts),
 * and Debian's installed 3.7 where the test says so.
 * See also: src/config/postfix-release.ts, test/postfix/release-matrix.test.ts
 *           (the same against the real releases)
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT, startDaemon, tlsmgrRequest, tlsmgrStatus, tlsmgrTktkey, type ClientProtocol } from "../helpers/daemon.js";
import { fakeCommandDirectory, postconfSays } from "../helpers/fake-postconf.js";
import { Raw, RAW_ANNOUNCE } from "../helpers/raw-conn.js";
import { tempDir } from "../helpers/temp-dir.js";
import { ticketKeyLayout } from "../../src/tickets/key-record-layout.js";

const root = tempDir("tlsmgr-releases-");
let n = 0;

const SAYS_35 = postconfSays({ mail_version: "3.5.27", default_database_type: "hash" }, ["default_cache_db_type"]);
const SAYS_38 = postconfSays({ mail_version: "3.8.20", default_database_type: "hash" }, ["default_cache_db_type"]);
const SAYS_311_NO_BDB = postconfSays({ mail_version: "3.11.6", default_database_type: "lmdb", default_cache_db_type: "lmdb" });

/** instance - a config directory (main.cf LINES, command_directory with this postconf script) and its socket. */
function instance(script: string | undefined, lines: string[]): { dir: string; socket: string; bin: string } {
  const dir = join(root, `i${++n}`);
  mkdirSync(join(dir, "data"), { recursive: true, mode: 0o700 });
  const bin = script === "debian" ? "/usr/sbin" : fakeCommandDirectory(dir, script);
  writeFileSync(join(dir, "main.cf"), [
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    "mail_owner = root",
    `command_directory = ${bin}`,
    ...lines,
    "",
  ].join("\n"));
  return { dir, socket: join(dir, "tlsmgr.sock"), bin };
}

/** firstBytes - what a client that writes nothing gets within a short while (the announcement or nothing). */
async function firstBytes(socket: string): Promise<string> {
  const raw = await Raw.open(socket);
  try {
    await raw.until(() => raw.received.length >= RAW_ANNOUNCE.length, "the announcement", 1000).catch(() => undefined);
    return raw.received.toString("latin1");
  } finally {
    raw.close();
  }
}

/** seedAs - a seed request as a client of that protocol; the reply's status. */
async function seedAs(socket: string, client: ClientProtocol): Promise<number> {
  return tlsmgrStatus(await tlsmgrRequest(socket, [["request", "seed"], ["size", "16"]], 10_000, client));
}

const CACHE = "smtpd_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache";

/** tlsmgrClientCli - bin/tlsmgr-client ARGS; its stdout. */
function tlsmgrClientCli(...args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    execFile(join(REPO_ROOT, "bin", "tlsmgr-client"), args, { timeout: 20_000 },
      (err, stdout, stderr) => (err ? rej(new Error(`tlsmgr-client ${args.join(" ")}: ${err.message}\n${stderr}`)) : res(stdout)));
  });
}

test("Postfix 3.5: no server announcement; a 3.5 client's request is answered as its first list", async (t) => {
  const inst = instance(SAYS_35, [CACHE]);
  const d = await startDaemon({ configDir: inst.dir, socket: inst.socket, announces: false });
  t.after(() => d.stop());
  assert.match(d.stderr(), new RegExp(`: postfix release 3\\.5\\.27 \\(from ${inst.bin}/postconf -d mail_version\\): no server announcement: `));
  assert.equal(await seedAs(inst.socket, "3.5"), 0);
  const key = await tlsmgrTktkey(inst.socket, Buffer.alloc(0), "3.5");
  assert.equal(key.status, 0);
  assert.equal(key.keybuf.length, ticketKeyLayout().size);
  assert.equal(await firstBytes(inst.socket), "", "nothing before the client's request");
  const cli = await tlsmgrClientCli("-s", inst.socket, "--no-announcement", "seed", "16");
  assert.equal(cli, "status=0 seed=16 bytes\n");
  assert.doesNotMatch(d.stderr(), /warning: /);
});

test("Postfix 3.8 (and 3.6 and later): the announcement comes first; a 3.6 client is served", async (t) => {
  const inst = instance(SAYS_38, [CACHE]);
  const d = await startDaemon({ configDir: inst.dir, socket: inst.socket });
  t.after(() => d.stop());
  assert.match(d.stderr(), /: postfix release 3\.8\.20 \(from .*\): sending the server announcement that clients of postfix 3\.6 and later wait for$/m);
  assert.equal(await firstBytes(inst.socket), RAW_ANNOUNCE);
  assert.equal(await seedAs(inst.socket, "3.6"), 0);
});

test("an upgrade 3.5 -> 3.8: the next start asks again and announces", async () => {
  const inst = instance(SAYS_35, [CACHE]);
  const before = await startDaemon({ configDir: inst.dir, socket: inst.socket, announces: false });
  assert.equal(await seedAs(inst.socket, "3.5"), 0);
  assert.equal(await before.stop(), 0);
  fakeCommandDirectory(inst.dir, SAYS_38); // the new release's postconf, as `make upgrade` installs it
  const after = await startDaemon({ configDir: inst.dir, socket: inst.socket });
  try {
    assert.match(after.stderr(), /: postfix release 3\.8\.20 .*: sending the server announcement/);
    assert.equal(await firstBytes(inst.socket), RAW_ANNOUNCE);
    assert.equal(await seedAs(inst.socket, "3.6"), 0);
  } finally {
    await after.stop();
  }
});

test("tlsmgr_server_announcement = no / yes override what the release says", async () => {
  const off = instance("debian", [CACHE, "tlsmgr_server_announcement = no"]);
  const a = await startDaemon({ configDir: off.dir, socket: off.socket, announces: false });
  try {
    assert.match(a.stderr(), /: tlsmgr_server_announcement = no: no server announcement; postfix release 3\.7\.\d+ \(from \/usr\/sbin\/postconf -d mail_version\)$/m);
    assert.equal(await seedAs(off.socket, "3.5"), 0);
  } finally {
    await a.stop();
  }
  const on = instance(SAYS_35, [CACHE]);
  const b = await startDaemon({ configDir: on.dir, socket: on.socket, args: ["-o", "tlsmgr_server_announcement=yes"] });
  try {
    assert.equal(await firstBytes(on.socket), RAW_ANNOUNCE);
  } finally {
    await b.stop();
  }
});

test("no Postfix to ask: it says why and announces", async (t) => {
  const inst = instance(undefined, [CACHE]);
  const d = await startDaemon({ configDir: inst.dir, socket: inst.socket });
  t.after(() => d.stop());
  assert.match(d.stderr(), new RegExp(`: no postfix release found: ${inst.bin}/postconf: No such file or directory: sending the server announcement `));
  assert.equal(await firstBytes(inst.socket), RAW_ANNOUNCE);
});

/** updateLookup - store a session and read it back (the cache serves); the lookup's status. */
async function updateLookup(socket: string): Promise<number> {
  const id = "smtpd&abcdef";
  const session = Buffer.from("session bytes").toString("base64");
  const up = await tlsmgrRequest(socket, [["request", "update"], ["cache_type", "smtpd"], ["cache_id", id], ["session", session]]);
  assert.equal(tlsmgrStatus(up), 0);
  const r = await tlsmgrRequest(socket, [["request", "lookup"], ["cache_type", "smtpd"], ["cache_id", id]]);
  assert.equal(r.get("session"), session);
  return tlsmgrStatus(r);
}

test("main.cf with ${default_cache_db_type}: 3.11's value (lmdb without Berkeley DB); btree for releases before 3.11", async () => {
  const line = "smtpd_tls_session_cache_database = ${default_cache_db_type}:${data_directory}/smtpd_scache";
  const nobdb = instance(SAYS_311_NO_BDB, [line]);
  const a = await startDaemon({ configDir: nobdb.dir, socket: nobdb.socket });
  try {
    assert.match(a.stderr(), new RegExp(`: smtpd session cache: lmdb:${nobdb.dir}/data/smtpd_scache, timeout 3600s$`, "m"));
    assert.equal(await updateLookup(nobdb.socket), 0);
  } finally {
    await a.stop();
  }
  // Debian's 3.7 postconf knows no default_cache_db_type: the built-in btree (Postfix < 3.11's cache type)
  const deb = instance("debian", [line]);
  const b = await startDaemon({ configDir: deb.dir, socket: deb.socket });
  try {
    assert.match(b.stderr(), new RegExp(`: smtpd session cache: btree:${deb.dir}/data/smtpd_scache, timeout 3600s$`, "m"));
    assert.equal(await updateLookup(deb.socket), 0);
    assert.ok(existsSync(join(deb.dir, "data", "smtpd_scache.lmdb")), "btree: is served by an LMDB file");
    assert.doesNotMatch(b.stderr(), /warning: /);
  } finally {
    await b.stop();
  }
});

test("main.cf with smtpd_tls_loglevel = 1,trace: a warning, and it starts and serves (cache logging off, as Postfix)", async (t) => {
  const inst = instance("debian", [CACHE, "smtpd_tls_loglevel = 1,trace"]);
  const d = await startDaemon({ configDir: inst.dir, socket: inst.socket });
  t.after(() => d.stop());
  assert.match(d.stderr(), /: warning: unknown smtpd_tls_loglevel value "trace" in "1,trace"$/m);
  assert.doesNotMatch(d.stderr(), /fatal: /);
  assert.equal(await updateLookup(inst.socket), 0);
  // Postfix's tls_log_mask returns 0 for a value with an unknown word: no "put"/"lookup" lines
  assert.doesNotMatch(d.stderr(), /: (put|lookup) smtpd session id=/);
});

test("tktkey failures as 3.5-3.11 answer: bad name length and tickets off give an empty keybuf", async () => {
  const inst = instance(SAYS_38, [CACHE]);
  const d = await startDaemon({ configDir: inst.dir, socket: inst.socket });
  try {
    const bad = await tlsmgrTktkey(inst.socket, Buffer.from("abcde"));
    assert.deepEqual([bad.status, bad.keybuf.length], [-2, 0]);
    const unknown = await tlsmgrTktkey(inst.socket, Buffer.alloc(16, 0xee));
    assert.equal(unknown.status, -1);
    assert.deepEqual(unknown.keybuf, Buffer.alloc(16, 0xee), "a name not found is echoed, as Postfix does");
    assert.match(d.stderr(), /: warning: invalid session ticket key name length: 5$/m);
  } finally {
    await d.stop();
  }
  const off = instance(SAYS_38, [CACHE, "smtpd_tls_session_cache_timeout = 0"]);
  const e = await startDaemon({ configDir: off.dir, socket: off.socket });
  try {
    for (const name of [Buffer.alloc(0), Buffer.alloc(16, 1)]) {
      const r = await tlsmgrTktkey(off.socket, name);
      assert.deepEqual([r.status, r.keybuf.length], [-1, 0], `name of ${name.length} bytes`);
    }
  } finally {
    await e.stop();
  }
});
