/**
 * log-sinks.test.ts - the syslog and postlogd line formats, byte for byte, and
 * what really arrives on a unix datagram socket bound by the test.
 * See also: src/log/syslog-sink.ts, src/log/postlog-sink.ts,
 *           postfix/src/util/msg_syslog.c, postfix/src/util/msg_logger.c
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  MSG_SYSLOG_RECLEN,
  SYSLOG_FACILITIES,
  syslogFacility,
  syslogFormat,
  syslogSink,
  syslogTimestamp,
} from "../../src/log/syslog-sink.js";
import { postlogFormat, postlogSink, postlogTimestamp, rebasePath, shortHostname } from "../../src/log/postlog-sink.js";
import { startDgramReceiver, type DgramReceiver } from "../helpers/unix-dgram-receiver.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

before(() => {
  // The sinks need the POSIX addon; build it when this checkout has not yet.
  if (!existsSync(path.join(ROOT, "build", "Release", "posix.node"))) {
    execFileSync(process.execPath, [path.join(ROOT, "scripts", "build-native.mjs")], { stdio: "inherit", cwd: ROOT });
  }
});

/** withReceiver - a fresh datagram socket in a temporary directory */
async function withReceiver(fn: (r: DgramReceiver, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), "tlsmgr-log-"));
  const r = await startDgramReceiver(path.join(dir, "log"));
  try {
    await fn(r, dir);
  } finally {
    r.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const MAIL = 2 << 3;

test("syslog facilities are Linux's codes; unknown names are refused", () => {
  assert.equal(syslogFacility("mail"), 16);
  assert.equal(syslogFacility("local7"), 23 << 3);
  assert.equal(syslogFacility("authpriv"), 80);
  assert.equal(syslogFacility("kern"), 0);
  assert.equal(syslogFacility("MAIL"), undefined);
  assert.equal(syslogFacility("toString"), undefined);
  assert.equal(Object.keys(SYSLOG_FACILITIES).length, 20);
});

test("syslog line: <PRI>Mmm dd hh:mm:ss TAG[pid]: with %e (space-padded) day", () => {
  const date = new Date(2024, 10, 6, 9, 5, 1); // local time, as syslog(3) uses
  assert.equal(syslogTimestamp(date), "Nov  6 09:05:01");
  assert.equal(syslogTimestamp(new Date(2024, 0, 31, 23, 59, 59)), "Jan 31 23:59:59");
  const base = { facility: MAIL, tag: "postfix/tlsmgr", pid: 4242, date };
  assert.equal(syslogFormat({ ...base, level: "info", text: "hello" }), "<22>Nov  6 09:05:01 postfix/tlsmgr[4242]: hello");
  assert.equal(syslogFormat({ ...base, level: "warning", text: "w" }), "<20>Nov  6 09:05:01 postfix/tlsmgr[4242]: warning: w");
  assert.equal(syslogFormat({ ...base, level: "error", text: "e" }), "<19>Nov  6 09:05:01 postfix/tlsmgr[4242]: error: e");
  assert.equal(syslogFormat({ ...base, level: "fatal", text: "f" }), "<18>Nov  6 09:05:01 postfix/tlsmgr[4242]: fatal: f");
  assert.equal(syslogFormat({ ...base, level: "panic", text: "p" }), "<18>Nov  6 09:05:01 postfix/tlsmgr[4242]: panic: p");
  assert.equal(
    syslogFormat({ ...base, facility: 23 << 3, level: "info", text: "x" }),
    "<190>Nov  6 09:05:01 postfix/tlsmgr[4242]: x",
  );
});

test("log text is cut at 2000 characters and control characters become '?'", () => {
  const date = new Date(2024, 10, 16, 1, 2, 3);
  const long = syslogFormat({ facility: MAIL, tag: "t", pid: 1, date, level: "warning", text: "a".repeat(3000) });
  assert.equal(long, `<20>Nov 16 01:02:03 t[1]: warning: ${"a".repeat(MSG_SYSLOG_RECLEN)}`);
  const ctl = syslogFormat({ facility: MAIL, tag: "t", pid: 1, date, level: "info", text: "a\nb\r\0c\x7f" });
  assert.equal(ctl, "<22>Nov 16 01:02:03 t[1]: a?b??c?");
});

test("postlogd line: Mmm dd (zero-padded) hh:mm:ss HOST TAG[pid]: as msg_logger", () => {
  const date = new Date(2024, 10, 6, 9, 5, 1);
  assert.equal(postlogTimestamp(date), "Nov 06 09:05:01");
  assert.equal(shortHostname("mx1.example.com"), "mx1");
  assert.equal(shortHostname("localhost"), "localhost");
  const base = { hostname: "mx1.example.com", tag: "postfix/tlsmgr", pid: 77, date };
  assert.equal(postlogFormat({ ...base, level: "info", text: "hi" }), "Nov 06 09:05:01 mx1 postfix/tlsmgr[77]: hi");
  assert.equal(
    postlogFormat({ ...base, level: "warning", text: "bogus cache type" }),
    "Nov 06 09:05:01 mx1 postfix/tlsmgr[77]: warning: bogus cache type",
  );
  assert.equal(postlogFormat({ ...base, level: "fatal", text: "x\ny" }), "Nov 06 09:05:01 mx1 postfix/tlsmgr[77]: fatal: x?y");
});

test("rebasePath: a path under the chroot is seen from the new root", () => {
  assert.equal(rebasePath("/var/spool/postfix/public/postlog", "/var/spool/postfix"), "/public/postlog");
  assert.equal(rebasePath("/var/spool/postfix/public/postlog", "/var/spool/postfix/"), "/public/postlog");
  assert.equal(rebasePath("/var/spool/postfixx/public/postlog", "/var/spool/postfix"), "/var/spool/postfixx/public/postlog");
  assert.equal(rebasePath("/dev/log", "/var/spool/postfix"), "/dev/log");
});

test("syslog sink: each line is one datagram with this process's pid", async () => {
  await withReceiver(async (r) => {
    const sink = syslogSink({ facility: syslogFacility("local3")!, tag: "postfix/tlsmgr", path: r.path });
    try {
      sink.write("info", "starting");
      sink.write("warning", 'bogus cache type "x" in "lookup" request');
      const first = (await r.next()).toString();
      const second = (await r.next()).toString();
      const pri = (19 << 3) | 6;
      assert.match(first, new RegExp(`^<${pri}>[A-Z][a-z]{2} [ 123]\\d \\d\\d:\\d\\d:\\d\\d postfix/tlsmgr\\[${process.pid}\\]: starting$`));
      assert.match(
        second,
        new RegExp(`^<${(19 << 3) | 4}>.{15} postfix/tlsmgr\\[${process.pid}\\]: warning: bogus cache type "x" in "lookup" request$`),
      );
      assert.equal(sink.dropped, 0);
    } finally {
      sink.close();
    }
  });
});

test("postlog sink: one datagram per line, no newline; after rebase the path is resolved from the new root", async () => {
  await withReceiver(async (r, dir) => {
    const sink = postlogSink({ path: r.path, hostname: "mx9.example.net", tag: "postfix/tlsmgr" });
    try {
      sink.write("error", "something");
      const line = (await r.next()).toString();
      assert.match(line, new RegExp(`^[A-Z][a-z]{2} \\d\\d \\d\\d:\\d\\d:\\d\\d mx9 postfix/tlsmgr\\[${process.pid}\\]: error: something$`));
      sink.rebase(dir);
      assert.equal(sink.path, "/log");
      sink.write("info", "lost"); // "/log" does not exist outside a chroot: dropped, no throw
      assert.equal(sink.dropped, 1);
    } finally {
      sink.close();
    }
  });
});

test("no receiver: lines are dropped and counted, never thrown; close twice is harmless", () => {
  const sink = syslogSink({ facility: MAIL, tag: "postfix/tlsmgr", path: path.join(tmpdir(), `no-such-${process.pid}`) });
  sink.write("info", "a");
  sink.write("fatal", "b");
  assert.equal(sink.dropped, 2);
  sink.close();
  sink.close();
  sink.write("info", "after close");
  assert.equal(sink.dropped, 2, "a closed sink does not try");
});
