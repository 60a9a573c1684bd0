/**
 * master-link.test.ts - a child process with master's descriptors: telling
 * whether master started us (masterPresent), EOF on fd 5 runs the callback,
 * the listening fds, GENERATION checks, the inert link outside master, and
 * the daemon_timeout watchdog (a stuck loop is killed with "fatal: watchdog
 * timeout", on stderr and on the configured logger).
 * See also: src/master/master-link.ts, src/master/watchdog.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type StdioOptions } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { masterPresent } from "../../src/master/master-link.js";
import { startDgramReceiver } from "../helpers/unix-dgram-receiver.js";

const mod = (rel: string): string => JSON.stringify(fileURLToPath(new URL(`../../src/${rel}`, import.meta.url)));

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** runChild - node -e code with these descriptors; onSpawn may act on them */
function runChild(
  code: string,
  env: NodeJS.ProcessEnv,
  stdio: StdioOptions,
  onSpawn?: (child: ReturnType<typeof spawn>) => void,
): Promise<Ran> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", code], { env, stdio });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  onSpawn?.(child);
  return new Promise((resolve) => child.once("exit", (c, s) => resolve({ code: c, signal: s, stdout, stderr })));
}

/** fd5 - the parent's end of the child's fd 5 (master's end of the status socketpair) */
function fd5(child: ReturnType<typeof spawn>): Writable {
  return (child.stdio as unknown as Writable[])[5];
}

const MASTER_STDIO: StdioOptions = ["ignore", "pipe", "pipe", "ignore", "ignore", "pipe", "pipe", "pipe"];

const LINK_PRELUDE = `
  const { parseDaemonArgs } = await import(${mod("cli/args.js")});
  const { masterPresent, openMasterLink } = await import(${mod("master/master-link.js")});
  const argsOf = (argv) => parseDaemonArgs(argv, process.env, { underMaster: masterPresent(process.env) });
  const { setMsgSinks } = await import(${mod("log/msg.js")});
  setMsgSinks([{ write: (l, t) => process.stderr.write(l + ": " + t + "\\n") }]);`;

test("masterPresent: GENERATION and fd 5 a socket; here fd 5 is one of Node's own pipes", async () => {
  assert.equal(masterPresent({ GENERATION: "17" }), false);
  assert.equal(masterPresent({}), false);
  const ran = await runChild(
    `const { masterPresent } = await import(${mod("master/master-link.js")});
     process.stdout.write(JSON.stringify([masterPresent(process.env), masterPresent({})]));`,
    { GENERATION: "3" },
    MASTER_STDIO,
  );
  assert.equal(ran.code, 0, ran.stderr);
  assert.deepEqual(JSON.parse(ran.stdout), [true, false]);
});

test("EOF on fd 5 runs the callback once, with no status message ever sent", async () => {
  const code = `${LINK_PRELUDE}
    const link = openMasterLink(argsOf(["-l", "-t", "unix", "-s", "2"]), process.env, 0);
    process.stdout.write(JSON.stringify({ fds: link.listenFds, gen: link.generation }) + "\\n");
    let calls = 0;
    link.onMasterGone(() => { calls++; });
    link.onMasterGone(() => { setTimeout(() => { process.stdout.write("calls=" + calls); link.close(); }, 50); });`;
  const ran = await runChild(code, { GENERATION: "7" }, MASTER_STDIO, (child) => {
    child.stdout!.once("data", () => fd5(child).end());
  });
  assert.equal(ran.code, 0, ran.stderr);
  const [first, last] = ran.stdout.split("\n");
  assert.deepEqual(JSON.parse(first), { fds: [6, 7], gen: 7 });
  assert.equal(last, "calls=1");
});

test("a callback registered after master went away still runs", async () => {
  const code = `${LINK_PRELUDE}
    const link = openMasterLink(argsOf(["-l", "-t", "unix"]), process.env, 0);
    link.onMasterGone(() => {
      link.onMasterGone(() => { process.stdout.write("late"); link.close(); });
    });
    process.stdout.write("ready\\n");`;
  const ran = await runChild(code, { GENERATION: "1" }, MASTER_STDIO, (child) => {
    child.stdout!.once("data", () => fd5(child).end());
  });
  assert.equal(ran.code, 0, ran.stderr);
  assert.equal(ran.stdout, "ready\nlate");
});

test("bad GENERATION is fatal with Postfix's text", async () => {
  const code = `${LINK_PRELUDE}
    try { openMasterLink(argsOf(["-l", "-t", "unix"]), process.env, 0); }
    catch { process.exitCode = 1; }`;
  const ran = await runChild(code, { GENERATION: "12a" }, MASTER_STDIO, (child) =>
    fd5(child).end(),
  );
  assert.equal(ran.code, 1);
  assert.equal(ran.stderr, "fatal: bad generation: 12a\n");
});

test("outside master the link is inert: no fds, no status, never 'gone'", async () => {
  const code = `${LINK_PRELUDE}
    const link = openMasterLink(argsOf([]), process.env, 0);
    link.requestServed(); link.requestServed();
    let gone = false;
    link.onMasterGone(() => { gone = true; });
    setTimeout(() => { process.stdout.write(JSON.stringify({ fds: link.listenFds, gone })); link.close(); }, 100);`;
  const ran = await runChild(code, {}, ["ignore", "pipe", "pipe"]);
  assert.equal(ran.code, 0, ran.stderr);
  assert.deepEqual(JSON.parse(ran.stdout), { fds: [], gone: false });
});

const WATCHDOG_PRELUDE = `
  const { watchdogCreate } = await import(${mod("master/watchdog.js")});
  const { setupLogging } = await import(${mod("log/setup.js")});`;

test("watchdog: a stuck event loop is killed with 'fatal: watchdog timeout' on stderr", async () => {
  const code = `${WATCHDOG_PRELUDE}
    setupLogging({ underMaster: false, standalone: false, foreground: true, syslog_facility: "mail",
      syslog_name: "postfix", process_name: "tlsmgr", maillog_file: "", queue_directory: "/nonexistent",
      postlog_service_name: "postlog", chroot: false });
    watchdogCreate(1);
    process.stdout.write("stuck\\n");
    for (;;) {}`;
  const ran = await runChild(code, {}, ["ignore", "pipe", "pipe"]);
  assert.equal(ran.signal, "SIGKILL");
  assert.equal(ran.stdout, "stuck\n");
  assert.match(ran.stderr, /^tlsmgr\[\d+\]: fatal: watchdog timeout\n$/);
});

test("watchdog: an idle loop that keeps turning is not killed, and stop() ends the thread", async () => {
  const code = `${WATCHDOG_PRELUDE}
    const wd = watchdogCreate(2);
    let turns = 0;
    const tick = () => { if (++turns < 50) setTimeout(tick, 100); else { wd.stop(); process.stdout.write("done"); } };
    tick();`;
  const ran = await runChild(code, {}, ["ignore", "pipe", "pipe"]);
  assert.equal(ran.signal, null, ran.stderr);
  assert.equal(ran.code, 0, ran.stderr);
  assert.equal(ran.stdout, "done");
  assert.equal(ran.stderr, "");
});

test("watchdog: the last words go to postlogd too, with the plan set after the watchdog started", async () => {
  const queue = mkdtempSync(path.join(tmpdir(), "tlsmgr-wd-"));
  mkdirSync(path.join(queue, "public"));
  const receiver = await startDgramReceiver(path.join(queue, "public", "postlog"));
  try {
    const code = `${WATCHDOG_PRELUDE}
      watchdogCreate(1);
      setupLogging({ underMaster: true, standalone: false, foreground: false, syslog_facility: "mail",
        syslog_name: "postfix", process_name: "tlsmgr", maillog_file: "/var/log/maillog",
        queue_directory: ${JSON.stringify(queue)}, postlog_service_name: "postlog", chroot: false,
        myhostname: "mx1.example.com" });
      for (;;) {}`;
    const ran = await runChild(code, {}, ["ignore", "pipe", "pipe"]);
    assert.equal(ran.signal, "SIGKILL");
    assert.equal(ran.stderr, "", "under master without -d: nothing on stderr");
    const line = (await receiver.next()).toString();
    assert.match(line, /^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d mx1 postfix\/tlsmgr\[\d+\]: fatal: watchdog timeout$/);
  } finally {
    receiver.close();
    rmSync(queue, { recursive: true, force: true });
  }
});
