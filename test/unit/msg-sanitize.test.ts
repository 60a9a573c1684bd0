/**
 * msg-sanitize.test.ts - a diagnostic that carries control characters reaches
 *                        every sink as one line with '?' in their place, as
 *                        Postfix's msg_output() sanitises every message.
 * Owns: the escaping done once for all sinks (stderr, syslog, postlogd, any
 *       sink a test installs); printable() of peer text.
 * Not here: the line formats (unit/log-sinks.test.ts); which daemon warnings
 *           carry client text (robustness/hostile-clients.test.ts).
 * See also: src/log/msg.ts, postfix/src/util/msg_output.c (msg_text)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { getMsgSinks, msgInfo, msgWarn, printable, setMsgSinks, stderrSink } from "../../src/log/msg.js";
import { syslogSink } from "../../src/log/syslog-sink.js";
import { postlogSink } from "../../src/log/postlog-sink.js";
import { msgLineSink } from "../helpers/msg-capture.js";
import { startDgramReceiver } from "../helpers/unix-dgram-receiver.js";

const FORGED = "name\nfatal: forged\x1b[2J\r\x07\x9b1m\u00e9t\u00e9";

test("every sink gets one line: C0, DEL and C1 controls become '?', other text is kept", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "tlsmgr-sanitize-"));
  const syslogRx = await startDgramReceiver(path.join(dir, "log"));
  const postlogRx = await startDgramReceiver(path.join(dir, "postlog"));
  const lines: string[] = [];
  const syslog = syslogSink({ facility: 2 << 3, tag: "postfix/tlsmgr", path: syslogRx.path });
  const postlog = postlogSink({ path: postlogRx.path, hostname: "mx.example.org", tag: "postfix/tlsmgr" });
  const written: string[] = [];
  const saved = getMsgSinks();
  const realWrite = process.stderr.write.bind(process.stderr);
  try {
    process.stderr.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    setMsgSinks([msgLineSink(lines), stderrSink(), syslog, postlog]);
    msgWarn(`value of attribute ${FORGED} exceeds limit 4`);
    msgInfo("tab\there");
  } finally {
    process.stderr.write = realWrite;
    setMsgSinks(saved);
  }
  try {
    const want = "value of attribute name?fatal: forged?[2J???1m\u00e9t\u00e9 exceeds limit 4";
    assert.deepEqual(lines, [`warning: ${want}`, "info: tab?here"]);
    assert.deepEqual(written, [`tlsmgr[${process.pid}]: warning: ${want}\n`, `tlsmgr[${process.pid}]: tab?here\n`]);
    const s = (await syslogRx.next()).toString("utf8");
    const p = (await postlogRx.next()).toString("utf8");
    assert.ok(s.endsWith(`: warning: ${want}`), s);
    assert.ok(p.endsWith(`: warning: ${want}`), p);
  } finally {
    syslog.close();
    postlog.close();
    syslogRx.close();
    postlogRx.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("printable: peer bytes outside printable ASCII are '?', cut to the limit", () => {
  assert.equal(printable(Buffer.from([0x41, 0x0a, 0xff, 0x1b, 0x42])), "A???B");
  assert.equal(printable("x".repeat(300)).length, 100);
  assert.equal(printable("\u00e9"), "?");
});
