/**
 * hostile-startup.test.ts - start-ups and surroundings that once ended in a
 *                           stack trace, a hang, a wrong cause or a lost cache.
 * Owns: main.cf macros nested far too deep (one clear fatal line, as
 *       Postfix's "unreasonable macro call nesting"); a queue_directory that
 *       cannot be made (/proc/1/nope: a fatal line, not a hang); a second
 *       daemon on the same configuration (refused: the first keeps its socket
 *       and its cache); a full disk under the cache (the warning says "No
 *       space left on device"); an open file limit that is too low (one
 *       warning, the clients that fit are served, later ones again once
 *       others leave).
 * Not here: one bad parameter value each (robustness/bad-config.test.ts);
 *           a file size limit (robustness/disk-full.test.ts).
 * See also: src/config/main-cf.ts, src/util/make-dirs.ts,
 *           src/master/instance-lock.ts, src/cache/backends/lmdb-errno.ts,
 *           src/server/listener.ts, postfix/src/util/mac_expand.c
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startDaemon, tlsmgrLookup } from "../helpers/daemon.js";
import { daemonExitProblems, daemonRunToExit, openAnnounced, rawTestInstance } from "../helpers/raw-conn.js";
import type { Raw } from "../helpers/raw-conn.js";

const CACHE = "smtpd_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache";
const OK = "status\x000\0\0";
const POLICY_REQ = "request\0policy\0cache_type\0smtpd\0\0";
const POLICY_SMTPD = "status\x000\0cachable\x001\0timeout\x003600\0\0";

/** logged - until text() has a line matching re (a daemon's stderr comes through a pipe, later than socket events). */
async function logged(text: () => string, re: RegExp, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!re.test(text())) {
    if (Date.now() > deadline) assert.fail(`no log line ${re} in:\n${text()}`);
    await sleep(20);
  }
}

/** nested - ${{...} == {y}?y} around "y", n deep. */
function nested(n: number): string {
  let s = "y";
  for (let i = 0; i < n; i++) s = `\${{${s}} == {y}?y}`;
  return s;
}

for (const depth of [1500, 20000]) {
  test(`main.cf: relational macros nested ${depth} deep: one fatal line naming the parameter, no stack trace`, async () => {
    const inst = rawTestInstance("nest", [`syslog_name = ${nested(depth)}`]);
    try {
      const exit = await daemonRunToExit(inst.dir, inst.socket);
      assert.deepEqual(daemonExitProblems(exit, inst.socket, ["syslog_name", inst.mainCf, "unreasonable macro call nesting"]), [],
        `stderr:\n${exit.stderr.slice(0, 2000)}`);
      const fatal = exit.stderr.split("\n").find((l) => l.includes("fatal:"))!;
      assert.ok(fatal.length < 600, `the fatal line is short (${fatal.length} characters)`);
    } finally {
      inst.cleanup();
    }
  });
}

test("main.cf: relational macros nested 50 deep still expand (well within the bound)", async () => {
  const inst = rawTestInstance("nest-ok", [CACHE, `syslog_name = ${nested(50)}`]);
  try {
    const d = await startDaemon({ configDir: inst.dir, socket: inst.socket });
    assert.equal(await d.stop(), 0);
  } finally {
    inst.cleanup();
  }
});

for (const dir of ["/proc/1/nope", "/proc/1/nope/deeper"]) {
  test(`queue_directory = ${dir}: a fatal line naming it, not a hang`, async () => {
    const inst = rawTestInstance("procq", [`queue_directory = ${dir}`]);
    try {
      const exit = await daemonRunToExit(inst.dir, inst.socket, { timeoutMs: 20_000 });
      assert.deepEqual(daemonExitProblems(exit, inst.socket, [dir]), [], `stderr:\n${exit.stderr}`);
      assert.match(exit.stderr, /fatal: .*: No such file or directory\n/);
    } finally {
      inst.cleanup();
    }
  });
}

test("a second daemon on the same configuration is refused; the first keeps its socket and its cache", async () => {
  const inst = rawTestInstance("second", [CACHE]);
  const first = await startDaemon({ configDir: inst.dir, socket: inst.socket });
  try {
    const c = await openAnnounced(first.socket);
    const session = Buffer.alloc(500, 0x33).toString("base64");
    assert.equal(await c.exchange(`request\0update\0cache_type\0smtpd\0cache_id\0keep\0session\0${session}\0\0`, OK), OK);
    await sleep(300); // the write batch is flushed to the file
    // The same socket, and another socket on the same configuration.
    for (const socket of [inst.socket, join(inst.dir, "other.sock")]) {
      const exit = await daemonRunToExit(inst.dir, socket, { timeoutMs: 20_000 });
      // The first daemon's socket is there, as it must be; no other leftover.
      const problems = daemonExitProblems(exit, socket, [inst.dataDir]).filter((p) => !p.includes(`${inst.socket} left behind`));
      assert.deepEqual(problems, [], `stderr:\n${exit.stderr}`);
      assert.match(exit.stderr, /fatal: .*another tlsmgr .*is running/);
    }
    // The first daemon: same connection still works, new connections too, the entry is there.
    assert.equal(await c.exchange(POLICY_REQ, POLICY_SMTPD), POLICY_SMTPD);
    c.close();
    const r = await tlsmgrLookup(first.socket, "smtpd", "keep");
    assert.equal(r.status, 0, "the first daemon's cache entry survives");
    assert.equal(r.session.toString("base64"), session);
  } finally {
    assert.equal(await first.stop(), 0);
  }
  // Once the first is gone, a new one starts.
  const again = await startDaemon({ configDir: inst.dir, socket: inst.socket });
  assert.equal(await again.stop(), 0);
  inst.cleanup();
});

/** tmpfsSkip - why a private tmpfs cannot be mounted here (undefined: it can). */
function tmpfsSkip(): string | false {
  if (process.getuid?.() !== 0) return "mounting a tmpfs needs root";
  try {
    execFileSync("unshare", ["-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], { stdio: "pipe" });
    return false;
  } catch (err) {
    return `cannot mount a tmpfs in a private mount namespace: ${(err as Error).message.split("\n")[0]}`;
  }
}

test("a full disk under the cache: the warning says No space left on device", { skip: tmpfsSkip() }, async () => {
  const inst = rawTestInstance("enospc", [CACHE]);
  // The data directory is a 2 MiB tmpfs in the daemon's own mount namespace: gone with it.
  const d = await startDaemon({
    configDir: inst.dir,
    socket: inst.socket,
    wrapper: ["unshare", "-m", "--propagation", "private", "sh", "-c",
      'mount -t tmpfs -o size=2m,mode=0700 tmpfs "$0" && exec "$@"', inst.dataDir],
  });
  try {
    const c = await openAnnounced(d.socket);
    const session = Buffer.alloc(3000, 0x44).toString("base64");
    for (let i = 0; i < 1500 && !/cannot write cache entries/.test(d.stderr()); i++) {
      assert.equal(await c.exchange(`request\0update\0cache_type\0smtpd\0cache_id\0id-${i}\0session\0${session}\0\0`, OK), OK);
      if (i % 50 === 49) await sleep(5);
    }
    c.close();
    await sleep(300);
    await logged(() => d.stderr(), /cannot write cache entries/);
    const warning = d.stderr().split("\n").find((l) => l.includes("cannot write cache entries"));
    assert.ok(warning, `a write failure was reported:\n${d.stderr()}`);
    assert.match(warning, /: cannot write cache entries: No space left on device; /);
  } finally {
    assert.equal(await d.stop(), 0);
    inst.cleanup();
  }
});

test("an open file limit too low for the clients: one warning, those that fit are served, later ones once others leave", async () => {
  const inst = rawTestInstance("nofile", [CACHE]);
  const d = await startDaemon({ configDir: inst.dir, socket: inst.socket, wrapper: ["prlimit", "--nofile=64:64"] });
  const conns: Raw[] = [];
  try {
    let announced = 0;
    let refused = 0;
    for (let i = 0; i < 100; i++) {
      try {
        const c = await openAnnounced(d.socket);
        conns.push(c);
        announced++;
      } catch {
        refused++;
      }
    }
    assert.ok(announced >= 10, `${announced} clients announced`);
    assert.ok(refused > 0, "the rest were closed");
    for (const c of conns.slice(0, 5)) assert.equal(await c.exchange(POLICY_REQ, POLICY_SMTPD), POLICY_SMTPD);
    await logged(() => d.stderr(), /open file limit/);
    await sleep(200); // a second warning, if there were one, would be here by now
    const warnings = d.stderr().split("\n").filter((l) => l.includes("warning:"));
    assert.equal(warnings.length, 1, d.stderr());
    assert.match(warnings[0]!, /open file limit 64 .*\(ulimit -n\)/);
    for (const c of conns.splice(0)) c.close();
    await sleep(200);
    const c = await openAnnounced(d.socket);
    assert.equal(await c.exchange(POLICY_REQ, POLICY_SMTPD), POLICY_SMTPD, "served again once clients left");
    c.close();
    await logged(() => d.stderr(), /accepting clients .* again; \d+ connections were closed/);
  } finally {
    for (const c of conns) c.close();
    assert.equal(await d.stop(), 0);
    inst.cleanup();
  }
});
