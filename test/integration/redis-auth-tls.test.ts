/**
 * redis-auth-tls.test.ts - the redis: table's password_file, username and
 * tls settings against real redis-server processes (requirepass, an ACL
 * user, a TLS-only server with a test CA): right settings work, wrong ones
 * give misses and one warning, never a crash, and never the password in a log line.
 * See also: src/redis/table.ts, src/redis/link.ts,
 *           test/helpers/redis-server.ts (makeTestCerts)
 *
 * A TLS socket can emit a second error after the one ioredis handles (the
 * server's alert arriving after the client refused its certificate: about
 * one connection in a thousand here); the link's connector keeps it handled
 * (src/redis/link.ts, "Streams"), which the last test checks on a refused stream.
 */

import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import type { Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { redisOpen, type RedisBackend } from "../../src/cache/backends/redis.js";
import { ERR_BACKEND_UNAVAILABLE } from "../../src/log/errors.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";
import {
  makeTestCerts,
  redisSkipReason,
  startRedisServer,
  testKeyWrapFile,
  writeRedisTable,
  type RedisServerHandle,
  type TestCerts,
} from "../helpers/redis-server.js";
import { tempDir } from "../helpers/temp-dir.js";

const PASSWORD = "pw-9f1c-secret";
const skip = redisSkipReason();

const dir = tempDir("tlsmgr-redis-auth-");
const lines = captureMsgsEach();
let serial = 0;

/** works - one update and lookup through the backend succeed. */
async function works(b: RedisBackend): Promise<boolean> {
  try {
    await b.update("k", Buffer.from("v"));
    return (await b.lookup("k"))?.equals(Buffer.from("v")) ?? false;
  } catch {
    return false;
  }
}

/** refused - both requests fail as misses (rejections with the unavailable code). */
async function refused(b: RedisBackend): Promise<boolean> {
  const u = await b.update("k", Buffer.from("v")).then(() => "stored", (e: { code?: string }) => e.code);
  const l = await b.lookup("k").then((v) => (v === undefined ? "absent" : "found"), (e: { code?: string }) => e.code);
  return u === ERR_BACKEND_UNAVAILABLE && l === ERR_BACKEND_UNAVAILABLE;
}

async function open(o: Parameters<typeof writeRedisTable>[1]): Promise<RedisBackend> {
  return redisOpen(await writeRedisTable(join(dir, `t${++serial}.cf`), { keyWrapFile: testKeyWrapFile(), ...o }), { truncate: true, timeout: 600 });
}

describe("redis password and ACL user", { skip: skip ?? false }, () => {
  let server: RedisServerHandle;
  let pwFile = "";
  before(async () => {
    server = await startRedisServer({ password: PASSWORD });
    pwFile = join(dir, "redis-password");
    await writeFile(pwFile, `${PASSWORD}\n`, { mode: 0o600 });
    await server.cli("acl", "setuser", "tlsmgr", "on", ">user-pw-77", "~tlsmgr:*", "+@all");
  });
  after(async () => {
    await server?.stop();
  });

  it("authenticates with password_file", async () => {
    const b = await open({ servers: `127.0.0.1:${server.port}`, passwordFile: pwFile });
    try {
      assert.ok(await works(b));
      assert.deepEqual(lines, []);
    } finally {
      await b.close();
    }
  });

  it("authenticates an ACL user with username and password_file", async () => {
    const upw = join(dir, "user-password");
    await writeFile(upw, "user-pw-77\n", { mode: 0o600 });
    const b = await open({ servers: `127.0.0.1:${server.port}`, passwordFile: upw, extra: "username = tlsmgr" });
    try {
      assert.ok(await works(b));
      assert.match(await server.cli("client", "list"), /name=tlsmgr .*user=tlsmgr /, "connected as the ACL user");
    } finally {
      await b.close();
    }
  });

  it("without or with a wrong password: misses, one warning, no password in the log", async () => {
    const wrong = join(dir, "wrong-password");
    await writeFile(wrong, "not-it\n", { mode: 0o600 });
    for (const o of [{}, { passwordFile: wrong }]) {
      lines.length = 0;
      const b = await open({ servers: `127.0.0.1:${server.port}`, ...o });
      try {
        assert.ok(await refused(b));
        assert.ok(await refused(b));
        const warnings = lines.filter((l) => l.startsWith("warning:"));
        assert.equal(warnings.length, 1, lines.join("\n"));
        assert.match(warnings[0]!, /server unavailable: .*(NOAUTH|WRONGPASS|not connected|Authentication)/i);
      } finally {
        await b.close();
      }
      assert.ok(lines.every((l) => !l.includes(PASSWORD) && !l.includes("not-it")));
    }
  });
});

describe("redis over TLS", { skip: skip ?? false }, () => {
  let server: RedisServerHandle;
  let certs: TestCerts;
  let otherCa = "";
  before(async () => {
    await mkdir(join(dir, "certs"));
    await mkdir(join(dir, "other"));
    certs = await makeTestCerts(join(dir, "certs"));
    otherCa = (await makeTestCerts(join(dir, "other"))).ca;
    server = await startRedisServer({ tls: certs });
  });
  after(async () => {
    await server?.stop();
  });

  it("connects with tls = yes and the CA that signed the server certificate", async () => {
    const b = await open({ servers: `127.0.0.1:${server.port}`, extra: `tls = yes\ntls_ca_file = ${certs.ca}` });
    try {
      assert.ok(await works(b));
      assert.equal((await server.cli("exists", "tlsmgr:session:k")).trim(), "1", "stored through TLS");
    } finally {
      await b.close();
    }
  });

  it("refuses a server certificate from another CA, and plain text to a TLS port: misses, one warning", async () => {
    for (const extra of [`tls = yes\ntls_ca_file = ${otherCa}`, "tls = no"]) {
      lines.length = 0;
      const b = await open({ servers: `127.0.0.1:${server.port}`, extra });
      try {
        assert.ok(await refused(b), extra);
        assert.equal(lines.filter((l) => l.startsWith("warning:")).length, 1, lines.join("\n"));
      } finally {
        await b.close();
      }
    }
  });

  it("a second error on a refused TLS stream (a late alert from the server) is handled, not an uncaught exception", async (t) => {
    const b = await open({ servers: `127.0.0.1:${server.port}`, extra: `tls = yes\ntls_ca_file = ${otherCa}` });
    t.after(() => b.close());
    const client = b.link.client as Redis;
    // the stream of the next refused connect attempt, taken when its first error reaches ioredis
    const refusedStream = await new Promise<Socket>((resolve) => client.once("error", () => resolve(client.stream)));
    assert.ok(refusedStream.listenerCount("error") > 0, "the refused stream still has an error listener");
    const late = Object.assign(new Error("tlsv1 alert decode error"), { code: "ERR_SSL_TLSV1_ALERT_DECODE_ERROR" });
    assert.doesNotThrow(() => refusedStream.emit("error", late));
    assert.equal(lines.filter((l) => l.startsWith("warning:")).length, 1, lines.join("\n"));
  });
});
