/**
 * log-setup.test.ts - which sinks are chosen (stderr / syslog / postlogd), the
 * syslog_facility and maillog_file_prefixes checks, and msgWarn reaching a real
 * postlogd-like socket under $queue_directory/public/postlog, before and after
 * the chroot rebase.
 * See also: src/log/setup.ts, postfix/src/global/maillog_client.c
 */
import { afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FatalError, getMsgSinks, msgInfo, msgWarn, setMsgSinks, type MsgSink } from "../../src/log/msg.js";
import {
  closeLogging,
  logPlan,
  logPlanFor,
  loggingEnteredChroot,
  onLogPlanChange,
  setupLogging,
  type LoggingOptions,
} from "../../src/log/setup.js";
import { startDgramReceiver } from "../helpers/unix-dgram-receiver.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

before(() => {
  if (!existsSync(path.join(ROOT, "build", "Release", "posix.node"))) {
    execFileSync(process.execPath, [path.join(ROOT, "scripts", "build-native.mjs")], { stdio: "inherit", cwd: ROOT });
  }
});

const saved = getMsgSinks();
afterEach(() => {
  closeLogging();
  setMsgSinks(saved);
});

const BASE: LoggingOptions = {
  underMaster: true,
  standalone: false,
  foreground: false,
  syslog_facility: "mail",
  syslog_name: "postfix",
  process_name: "tlsmgr",
  maillog_file: "",
  queue_directory: "/var/spool/postfix",
  postlog_service_name: "postlog",
  chroot: false,
};

test("under master, no maillog_file: syslog only, facility mail, tag postfix/tlsmgr", () => {
  const p = logPlanFor(BASE);
  assert.deepEqual(p, {
    processName: "tlsmgr",
    stderr: false,
    syslog: { path: "/dev/log", facility: 16, tag: "postfix/tlsmgr" },
    chrootRoot: "",
  });
});

test("under master with maillog_file: postlogd only (never both), host from myhostname", () => {
  const p = logPlanFor({ ...BASE, maillog_file: "/var/log/postfix.log", myhostname: "mx.example", syslog_name: "pf2" });
  assert.equal(p.syslog, undefined);
  assert.deepEqual(p.postlog, { path: "/var/spool/postfix/public/postlog", hostname: "mx.example", tag: "pf2/tlsmgr" });
  const q = logPlanFor({ ...BASE, maillog_file: "/var/log/x", postlog_service_name: "plog" }, { POSTLOG_HOSTNAME: "h.env" });
  assert.equal(q.postlog!.path, "/var/spool/postfix/public/plog");
  assert.equal(q.postlog!.hostname, "h.env");
});

test("stderr: with -d, -S, -V, and whenever not under master", () => {
  assert.equal(logPlanFor({ ...BASE, foreground: true }).stderr, true);
  assert.equal(logPlanFor({ ...BASE, standalone: true }).stderr, true);
  assert.equal(logPlanFor({ ...BASE, alsoStderr: true }).stderr, true);
  const outside = logPlanFor({ ...BASE, underMaster: false, maillog_file: "/var/log/x" });
  assert.equal(outside.stderr, true);
  assert.equal(outside.syslog, undefined);
  assert.equal(outside.postlog, undefined);
});

test("bad syslog_facility and maillog_file outside maillog_file_prefixes are fatal, in Postfix's words", () => {
  const lines: string[] = [];
  setMsgSinks([{ write: (l, t) => lines.push(`${l}: ${t}`) }]);
  assert.throws(() => logPlanFor({ ...BASE, syslog_facility: "mial", config_directory: "/etc/postfix" }), FatalError);
  assert.throws(
    () => logPlanFor({ ...BASE, maillog_file: "/tmp/maillog", maillog_file_prefixes: "/var, /dev/stdout" }),
    FatalError,
  );
  assert.deepEqual(lines, [
    "fatal: file /etc/postfix/main.cf: parameter syslog_facility: unrecognized value: mial",
    "fatal: maillog_file value '/tmp/maillog' does not match any prefix in maillog_file_prefixes",
  ]);
  assert.doesNotThrow(() =>
    logPlanFor({ ...BASE, maillog_file: "/dev/stdout", maillog_file_prefixes: "/var, /dev/stdout" }),
  );
});

test("setupLogging installs the sinks: msgWarn reaches postlogd's socket; after chroot the path is rebased", async () => {
  const queue = mkdtempSync(path.join(tmpdir(), "tlsmgr-q-"));
  mkdirSync(path.join(queue, "public"));
  const r = await startDgramReceiver(path.join(queue, "public", "postlog"));
  const plans: string[] = [];
  const off = onLogPlanChange((p) => plans.push(p.chrootRoot));
  try {
    setupLogging({ ...BASE, maillog_file: "/var/log/maillog", queue_directory: queue, myhostname: "mx3.test", chroot: true });
    assert.equal(getMsgSinks().length, 1, "postlogd only: no stderr under master");
    msgWarn("first line");
    assert.match((await r.next()).toString(), new RegExp(`^.{15} mx3 postfix/tlsmgr\\[${process.pid}\\]: warning: first line$`));

    loggingEnteredChroot(); // the directory setupLogging was given (queue_directory, with chroot)
    assert.equal(logPlan()!.chrootRoot, queue);
    assert.deepEqual(plans, ["", queue], "listeners hear of each plan");
    // This process is not really chrooted: "/public/postlog" does not exist here, the line is dropped.
    msgInfo("after rebase");
  } finally {
    off();
    r.close();
    rmSync(queue, { recursive: true, force: true });
  }
  assert.equal(r.received.length, 1);
});

test("setupLogging again replaces the sinks (defaults first, main.cf later)", () => {
  setupLogging({ ...BASE, underMaster: false });
  const first = getMsgSinks();
  assert.equal(first.length, 1);
  setupLogging({ ...BASE, underMaster: false, foreground: true });
  assert.notEqual(getMsgSinks()[0], first[0]);
  assert.equal(getMsgSinks().length, 1);
  assert.equal(logPlan()!.stderr, true);
});

test("closeLogging keeps sinks it did not make (a test's capture)", () => {
  const lines: string[] = [];
  const capture: MsgSink = { write: (l, t) => lines.push(`${l}: ${t}`) };
  setupLogging({ ...BASE });
  setMsgSinks([...getMsgSinks(), capture]);
  closeLogging();
  assert.deepEqual(getMsgSinks(), [capture]);
  assert.equal(logPlan(), undefined);
});
