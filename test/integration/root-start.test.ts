/**
 * root-start.test.ts - what runs as root when the daemon starts as root
 * (issue 13, finding 6): the Redis connections of the caches and of the
 * ticket key store are made after the drop to mail_owner (the owner of
 * their sockets in /proc/net/tcp shows it); and the launchers, run as
 * root, do not let NODE_OPTIONS or TLSMGR_POSIX_ADDON run code of someone
 * else's (a marker file that such code would write stays away). (NODE_PATH
 * is cleared too, but ES modules never read it: nothing to show.)
 * See also: src/redis/link.ts (redisDeferConnects), src/main.ts, bin/tlsmgr,
 *           src/native/posix.ts, test/postfix/tree-guard.test.ts, docs/security.md
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { REPO_ROOT, startDaemon, tlsmgrRequest, tlsmgrStatus, tlsmgrTktkey } from "../helpers/daemon.js";
import { redisSkipReason, startRedisServer, writeRedisTable } from "../helpers/redis-server.js";
import { mainCfLines, NOBODY, ROOT_SKIP } from "../helpers/second-user.js";
import { tempDir } from "../helpers/temp-dir.js";
import { keygen } from "../../src/tools/keygen.js";

/** socketUids - the owners of the TCP sockets of process pid connected to port (from /proc/net/tcp and tcp6). */
function socketUids(pid: number, port: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      /* closed meanwhile */
    }
  }
  const uids: number[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const remotePort = parseInt(f[2]!.split(":")[1]!, 16);
      if (remotePort === port && inodes.has(f[9]!)) uids.push(Number(f[7]));
    }
  }
  return uids;
}

describe("what runs as root at start-up (finding 6)", { skip: ROOT_SKIP }, () => {
  const root = tempDir("tlsmgr-rootstart-");
  chmodSync(root, 0o755);

  it("connects to Redis (caches and ticket keys) only after dropping to mail_owner", { skip: redisSkipReason() ?? false }, async () => {
    const server = await startRedisServer();
    try {
      const h = join(root, "redis");
      mkdirSync(join(h, "data"), { recursive: true });
      chownSync(join(h, "data"), NOBODY.uid, NOBODY.gid);
      const wrap = join(h, "key-wrap");
      keygen(wrap);
      const servers = `127.0.0.1:${server.port}`;
      const cache = await writeRedisTable(join(h, "cache.cf"), { servers, keyPrefix: "c:", keyWrapFile: wrap, timeout: "2s" });
      const keys = await writeRedisTable(join(h, "keys.cf"), { servers, keyPrefix: "k:", keyWrapFile: wrap, timeout: "2s" });
      writeFileSync(join(h, "main.cf"), mainCfLines(h, [`smtpd_tls_session_cache_database = redis:${cache}`, `tlsmgr_ticket_key_database = redis:${keys}`]));
      const d = await startDaemon({ configDir: h, socket: join(h, "queue", "private", "tlsmgr"), args: ["-u"] });
      try {
        assert.equal((await tlsmgrTktkey(d.socket)).status, 0);
        const up = await tlsmgrRequest(d.socket, [["request", "update"], ["cache_type", "smtpd"], ["cache_id", "x"], ["session", "AAAA"]]);
        assert.equal(tlsmgrStatus(up), 0);
        const uids = socketUids(d.proc.pid!, server.port);
        assert.equal(uids.length, 2, `two links (cache, keys): ${uids.join(",")}`);
        assert.deepEqual(uids, [NOBODY.uid, NOBODY.uid], "sockets made by mail_owner, not root");
        assert.doesNotMatch(d.stderr(), /server unavailable/, "no outage at start-up");
      } finally {
        await d.stop();
      }
    } finally {
      await server.stop();
    }
  });

  it("the launchers run as root ignore NODE_OPTIONS and TLSMGR_POSIX_ADDON", () => {
    const marker = join(root, "ran-as-root");
    const evil = join(root, "evil.cjs");
    writeFileSync(evil, `require("fs").writeFileSync(${JSON.stringify(marker)}, String(process.getuid()));\n`);
    const cases: [string, string[], NodeJS.ProcessEnv][] = [
      [join(REPO_ROOT, "bin", "tlsmgr"), ["--version"], { NODE_OPTIONS: `--require=${evil}` }],
      [join(REPO_ROOT, "bin", "tlsmgr-client"), ["--version"], { NODE_OPTIONS: `--require ${evil}` }],
      [join(REPO_ROOT, "bin", "tlsmgr-postfix"), ["--version"], { NODE_OPTIONS: `-r ${evil}` }],
      [join(REPO_ROOT, "bin", "tlsmgr"), ["--version"], { TLSMGR_POSIX_ADDON: evil }],
      // The module itself, without the launcher: posix.ts ignores the variable as root.
      [process.execPath, [join(REPO_ROOT, "dist", "src", "main.js"), "--version"], { TLSMGR_POSIX_ADDON: evil }],
    ];
    for (const [cmd, args, env] of cases) {
      rmSync(marker, { force: true });
      const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: "utf8" });
      assert.equal(r.status, 0, `${cmd} ${JSON.stringify(env)}: ${r.stderr}`);
      assert.equal(existsSync(marker), false, `${cmd} ran the code named by ${Object.keys(env).join(",")} as root`);
    }
  });
});
