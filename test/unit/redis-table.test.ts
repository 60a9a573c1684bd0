/**
 * redis-table.test.ts - the redis: table file: names, defaults, values, the
 * files it names, and the fatal message (file, line, name) for bad input.
 * See also: src/redis/table.ts, memcache_table(5)
 */

import assert from "node:assert/strict";
import { chmodSync, chownSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  parseRedisServer,
  parseRedisTimeout,
  redisTableParse,
  redisTableRead,
  REDIS_DEFAULT_KEY_PREFIX,
  REDIS_DEFAULT_TIMEOUT_MS,
} from "../../src/redis/table.js";
import { FatalError } from "../../src/log/msg.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";
import { tempDir } from "../helpers/temp-dir.js";

const dir = tempDir("tlsmgr-redis-table-");

const lines = captureMsgsEach();

/** fatalOf - the fatal text parsing `text` as table "T" gives. */
function fatalOf(text: string, path = "/etc/postfix/tls-redis.cf"): string {
  try {
    redisTableParse(text, path);
  } catch (err) {
    assert.ok(err instanceof FatalError, String(err));
    return err.message;
  }
  assert.fail(`no fatal error for ${JSON.stringify(text)}`);
}

describe("redis table file", () => {
  it("needs only servers; the rest have defaults", () => {
    const t = redisTableParse("servers = 127.0.0.1:6380\n", "/t.cf");
    assert.deepEqual(t.servers, [{ host: "127.0.0.1", port: 6380 }]);
    assert.equal(t.cluster, false);
    assert.equal(t.database, 0);
    assert.equal(t.keyPrefix, REDIS_DEFAULT_KEY_PREFIX);
    assert.equal(t.timeoutMs, REDIS_DEFAULT_TIMEOUT_MS);
    assert.equal(t.timeoutMs, 50);
    assert.equal(t.tls, undefined);
    assert.equal(t.password, undefined);
    assert.equal(t.username, undefined);
    assert.equal(t.keyWrapFile, undefined);
    assert.equal(t.path, "/t.cf");
  });

  it("reads every name, with comments, blank lines and continuation lines", () => {
    const pw = join(dir, "pw");
    writeFileSync(pw, "s3cret pass\nignored second line\n", { mode: 0o600 });
    const ca = join(dir, "ca.pem");
    writeFileSync(ca, "CA PEM");
    const t = redisTableParse(
      [
        "# a comment",
        "",
        "servers = 10.0.0.1:7000, [::1]:7001",
        "    redis.example.com unix:/run/redis.sock /run/other.sock inet:h:1",
        "cluster = no",
        "database = 3",
        "key_prefix = mx:smtpd:",
        "username = tlsmgr",
        `password_file = ${pw}`,
        "tls = yes",
        `tls_ca_file = ${ca}`,
        "tls_server_name = redis.example.com",
        "timeout = 2s",
        "key_wrap_file = /etc/postfix/tlsmgr-key-wrap",
      ].join("\n"),
      "/t.cf",
    );
    assert.deepEqual(t.servers, [
      { host: "10.0.0.1", port: 7000 },
      { host: "::1", port: 7001 },
      { host: "redis.example.com", port: 6379 },
      { path: "/run/redis.sock" },
      { path: "/run/other.sock" },
      { host: "h", port: 1 },
    ]);
    assert.equal(t.database, 3);
    assert.equal(t.keyPrefix, "mx:smtpd:");
    assert.equal(t.username, "tlsmgr");
    assert.equal(t.password, "s3cret pass");
    assert.deepEqual(t.tls, { ca: Buffer.from("CA PEM"), servername: "redis.example.com" });
    assert.equal(t.timeoutMs, 2000);
    assert.equal(t.keyWrapFile, "/etc/postfix/tlsmgr-key-wrap");
    assert.deepEqual(lines, []);
  });

  it("is fatal on an unknown name, naming file, line and name", () => {
    const msg = fatalOf("servers = a:1\n\n# x\nmemcache = b:2\n");
    assert.match(msg, /^\/etc\/postfix\/tls-redis\.cf, line 4: unknown name "memcache"/);
    assert.deepEqual(lines, [`fatal: ${msg}`]);
  });

  it("is fatal on bad values, naming file, line and name", () => {
    const cases: [string, RegExp][] = [
      ["servers = a:1\ncluster = maybe\n", /, line 2: cluster: bad value "maybe": expected yes or no/],
      ["servers = a:1\ndatabase = -1\n", /, line 2: database: bad value "-1"/],
      ["servers = a:1\ndatabase = x\n", /, line 2: database: bad value "x"/],
      ["servers = a:1\ntimeout = 0\n", /, line 2: timeout: bad value "0"/],
      ["servers = a:1\ntimeout = 5m\n", /, line 2: timeout: bad value "5m"/],
      ["servers = a:1\ntimeout = 61s\n", /, line 2: timeout: bad value "61s"/],
      ["servers = a:1\ntls = yes\ntls = often\n", /, line 3: tls: bad value "often"/],
      ["servers = a:99999\n", /, line 1: servers: bad value "a:99999": "a:99999": bad port "99999"/],
      ["servers = a:1 ::1:2\n", /, line 1: servers: .*IPv6/],
      ["servers = unix:relative\n", /, line 1: servers: .*absolute/],
      ["servers = a:1\ncluster = yes\ndatabase = 2\n", /, line 3: database: .*database 0 only/],
      ["servers = a:1 /run/r.sock\ncluster = yes\n", /, line 1: servers: .*TCP only/],
      ["servers = a:1\nkey_wrap_file = relative/file\n", /, line 2: key_wrap_file: .*absolute/],
      ["servers = a:1\npassword_file = /nonexistent/pw\n", /, line 2: password_file \/nonexistent\/pw: cannot read: No such file/],
      ["servers = a:1\nusername = u\n", /, line 2: username: .*password_file/],
      ["servers = a:1\nthis line has no equals\n", /, line 2: missing '=' after attribute name/],
    ];
    for (const [text, re] of cases) assert.match(fatalOf(text), re, text);
  });

  it("is fatal without servers", () => {
    assert.match(fatalOf("cluster = yes\n"), /^\/etc\/postfix\/tls-redis\.cf: missing required name "servers"/);
    assert.match(fatalOf("servers =\n"), /missing required name "servers"/);
  });

  it("warns on a name given twice and on TLS files without tls = yes; the later value wins", () => {
    const t = redisTableParse("servers = a:1\nkey_prefix = x:\nkey_prefix = y:\ntls_ca_file = /x\n", "/t.cf");
    assert.equal(t.keyPrefix, "y:");
    assert.equal(t.tls, undefined);
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^warning: \/t\.cf, line 3: overriding earlier entry of key_prefix \(line 2\)/);
    assert.match(lines[1]!, /^warning: \/t\.cf, line 4: tls_ca_file is ignored without tls = yes/);
  });

  it("refuses a password_file others can read or change, a symbolic link, or another user's file", () => {
    const pw = join(dir, "pw-loose");
    writeFileSync(pw, "hunter3\n", { mode: 0o644 });
    chmodSync(pw, 0o644);
    assert.match(fatalOf(`servers = a:1\npassword_file = ${pw}\n`), /, line 2: password_file .*pw-loose: mode 0644 lets others read or change it: chmod 600/);
    chmodSync(pw, 0o640);
    assert.match(fatalOf(`servers = a:1\npassword_file = ${pw}\n`), /mode 0640 lets others read/);
    chmodSync(pw, 0o600);
    const link = join(dir, "pw-link");
    symlinkSync(pw, link);
    assert.match(fatalOf(`servers = a:1\npassword_file = ${link}\n`), /password_file .*pw-link: is a symbolic link/);
    if (process.getuid?.() === 0) {
      chownSync(pw, 65534, 65534);
      assert.match(fatalOf(`servers = a:1\npassword_file = ${pw}\n`), /password_file .*pw-loose: owned by uid 65534, not by root/);
    }
  });

  it("never puts the password in a message", () => {
    const pw = join(dir, "pw2");
    writeFileSync(pw, "hunter2\n", { mode: 0o600 });
    const msg = fatalOf(`servers = a:1\npassword_file = ${pw}\ntls = bogus\n`);
    assert.ok(!msg.includes("hunter2"));
  });

  it("reads a table file by absolute path; fatal when missing, unreadable or relative", () => {
    const f = join(dir, "t.cf");
    writeFileSync(f, "servers = 127.0.0.1:1\n");
    assert.deepEqual(redisTableRead(f).servers, [{ host: "127.0.0.1", port: 1 }]);
    assert.throws(() => redisTableRead(join(dir, "none.cf")), /open redis table .*none\.cf: No such file or directory/);
    assert.throws(() => redisTableRead("relative.cf"), /needs an absolute pathname/);
    if (process.getuid?.() !== 0) {
      chmodSync(f, 0);
      assert.throws(() => redisTableRead(f), /Permission denied/);
    }
  });

  it("parses servers and timeouts", () => {
    assert.deepEqual(parseRedisServer("[2001:db8::1]"), { host: "2001:db8::1", port: 6379 });
    assert.deepEqual(parseRedisServer("inet:[::1]:7"), { host: "::1", port: 7 });
    assert.equal(typeof parseRedisServer(":5"), "string");
    assert.equal(typeof parseRedisServer("[::1"), "string");
    assert.equal(typeof parseRedisServer("[::1]x"), "string");
    assert.equal(typeof parseRedisServer("h:0"), "string");
    assert.equal(parseRedisTimeout("50"), 50);
    assert.equal(parseRedisTimeout("50ms"), 50);
    assert.equal(parseRedisTimeout("1s"), 1000);
    assert.equal(parseRedisTimeout("60s"), 60000);
    assert.equal(parseRedisTimeout("60001"), undefined);
    assert.equal(parseRedisTimeout(""), undefined);
    assert.equal(parseRedisTimeout("1.5s"), undefined);
  });
});
