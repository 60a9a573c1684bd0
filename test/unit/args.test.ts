/**
 * args.test.ts - the daemon command line: every generic Postfix option, our
 * long options, the environment, and each bad usage's fatal text.
 * See also: src/cli/args.ts, postfix/src/master/multi_server.c,
 *           test/unit/master-link.test.ts (masterPresent: fd 5 and GENERATION)
 */
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseDaemonArgs, requireSolitary, type DaemonArgs } from "../../src/cli/args.js";
import { FatalError, getMsgSinks, setMsgSinks, type MsgSink } from "../../src/log/msg.js";

const saved = getMsgSinks();
let lines: string[] = [];
const capture: MsgSink = { write: (level, text) => lines.push(`${level}: ${text}`) };
afterEach(() => {
  setMsgSinks(saved);
  lines = [];
});

/** parse - with the log captured */
function parse(argv: string[], env: NodeJS.ProcessEnv = {}): DaemonArgs {
  setMsgSinks([capture]);
  return parseDaemonArgs(argv, env);
}

/** fatalOf - the fatal line that argv produces */
function fatalOf(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  lines = [];
  setMsgSinks([capture]);
  assert.throws(() => parseDaemonArgs(argv, env), FatalError);
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(lines[0], /^fatal: /);
  return lines[0].slice("fatal: ".length);
}

test("defaults: no options, no environment", () => {
  const a = parse([]);
  assert.deepEqual(a, {
    chroot: false,
    debugger: false,
    solitary: false,
    serviceName: "tlsmgr",
    overrides: [],
    socketCount: 1,
    standalone: false,
    transport: "unix",
    dropPrivileges: false,
    verbose: 0,
    verify: false,
    z: false,
    foreground: false,
    underMaster: false,
    operands: [],
    configDir: "/etc/postfix",
  });
});

test("what master(8) passes for the stock tlsmgr line", () => {
  const a = parse(["-l", "-t", "unix", "-u", "-c"]);
  assert.equal(a.solitary, true);
  assert.equal(a.transport, "unix");
  assert.equal(a.dropPrivileges, true);
  assert.equal(a.chroot, true);
  assert.equal(a.serviceName, "tlsmgr");
});

test("every flag, clustered and separate", () => {
  const a = parse(["-cdDlSuvVz", "-v"]);
  assert.equal(a.chroot, true);
  assert.equal(a.foreground, true);
  assert.equal(a.debugger, true);
  assert.equal(a.solitary, true);
  assert.equal(a.standalone, true);
  assert.equal(a.dropPrivileges, true);
  assert.equal(a.verbose, 2);
  assert.equal(a.verify, true);
  assert.equal(a.z, true);
});

test("options with values: separate, attached, and after flags in a cluster", () => {
  const a = parse(["-n", "tls2", "-s3", "-i", "2m", "-m", "50", "-tunix", "-vo", "syslog_name = other "]);
  assert.equal(a.serviceName, "tls2");
  assert.equal(a.socketCount, 3);
  assert.equal(a.maxIdle, 120);
  assert.equal(a.maxUse, 50);
  assert.equal(a.transport, "unix");
  assert.equal(a.verbose, 1);
  assert.deepEqual(a.overrides, ["syslog_name = other "]);
});

test("-i takes Postfix time units; plain numbers are seconds", () => {
  assert.equal(parse(["-i", "100"]).maxIdle, 100);
  assert.equal(parse(["-i", "1h"]).maxIdle, 3600);
  assert.equal(parse(["-i", "2d"]).maxIdle, 172800);
  assert.equal(parse(["-i", "1w"]).maxIdle, 604800);
});

test("-o keeps every override in order, and -t inet is accepted in any case", () => {
  const a = parse(["-o", "a=1", "-o", "b=", "-o", "a=3", "-t", "INET"]);
  assert.deepEqual(a.overrides, ["a=1", "b=", "a=3"]);
  assert.equal(a.transport, "inet");
});

test("long options: separate value, =value, mixed with short options", () => {
  const a = parse(["--socket", "/tmp/s", "-v", "--home=/tmp/h", "--config", "/tmp/c"]);
  assert.equal(a.socket, "/tmp/s");
  assert.equal(a.home, "/tmp/h");
  assert.equal(a.configDir, "/tmp/c");
  assert.equal(a.verbose, 1);
});

test("operands end the options (getopt '+'), and -- ends them too", () => {
  const a = parse(["-v", "extra", "-u"]);
  assert.equal(a.dropPrivileges, false);
  assert.deepEqual(a.operands, ["extra", "-u"]);
  const b = parse(["-v", "--", "-u"]);
  assert.deepEqual(b.operands, ["-u"]);
  assert.equal(b.dropPrivileges, false);
  assert.deepEqual(parse(["-"]).operands, ["-"]);
});

test("environment: MAIL_CONFIG, MAIL_VERBOSE, MAIL_DEBUG; --config wins over MAIL_CONFIG", () => {
  const env = { MAIL_CONFIG: "/etc/postfix-out", MAIL_VERBOSE: "", MAIL_DEBUG: "" };
  const a = parse(["-v"], env);
  assert.equal(a.configDir, "/etc/postfix-out");
  assert.equal(a.verbose, 2);
  assert.equal(a.debugger, true);
  assert.equal(parse(["--config", "/x"], env).configDir, "/x");
});

test("GENERATION alone does not make 'under master': the caller says (masterPresent)", () => {
  assert.equal(parse(["-t", "unix"], { GENERATION: "17" }).underMaster, false);
  setMsgSinks([capture]);
  assert.equal(parseDaemonArgs(["-l", "-t", "unix"], {}, { underMaster: true }).underMaster, true);
});

test("bad usage: unknown short and long options, missing values", () => {
  assert.match(fatalOf(["-x"]), /^usage: tlsmgr .*\(invalid option: -x\)$/);
  assert.match(fatalOf(["-lux"]), /\(invalid option: -x\)$/);
  assert.match(fatalOf(["-:"]), /\(invalid option: -:\)$/);
  assert.match(fatalOf(["--bogus"]), /\(invalid option: --bogus\)$/);
  assert.match(fatalOf(["-n"]), /\(option requires an argument: -n\)$/);
  assert.match(fatalOf(["-l", "-o"]), /\(option requires an argument: -o\)$/);
  assert.match(fatalOf(["--socket"]), /\(option requires an argument: --socket\)$/);
  assert.match(fatalOf(["--home="]), /\(empty value for --home\)$/);
});

test("bad values, with Postfix's texts", () => {
  assert.equal(fatalOf(["-s", "0"]), "invalid socket_count: 0");
  assert.equal(fatalOf(["-s", "two"]), "invalid socket_count: two");
  assert.equal(fatalOf(["-o", "novalue"]), `invalid "-o novalue" option value: missing '=' after attribute name`);
  assert.equal(fatalOf(["-o", " = x"]), `invalid "-o  = x" option value: missing attribute name`);
  assert.equal(fatalOf(["-t", "fifo"]), "unsupported transport type: fifo");
  assert.equal(fatalOf(["-i", "soon"]), `invalid "-i soon" option value: bad max_idle time`);
  assert.equal(fatalOf(["-m", "-1"]), `invalid "-m -1" option value: bad max_use count`);
});

test("requireSolitary: nothing to say outside master", () => {
  setMsgSinks([capture]);
  requireSolitary(parse([]));
  assert.deepEqual(lines, []);
});

// Under master: a child process with fd 5 a socket (as master's socketpair) and GENERATION.
const argsModule = fileURLToPath(new URL("../../src/cli/args.js", import.meta.url));
const linkModule = fileURLToPath(new URL("../../src/master/master-link.js", import.meta.url));
const msgModule = fileURLToPath(new URL("../../src/log/msg.js", import.meta.url));

/** underMasterChild - run parseDaemonArgs(argv) in a child whose fd 5 is a socket */
function underMasterChild(argv: string[], env: NodeJS.ProcessEnv): { stdout: string; stderr: string; status: number | null } {
  const code = `
    const { parseDaemonArgs, requireSolitary } = await import(${JSON.stringify(argsModule)});
    const { masterPresent } = await import(${JSON.stringify(linkModule)});
    const { setMsgSinks } = await import(${JSON.stringify(msgModule)});
    setMsgSinks([{ write: (l, t) => process.stderr.write(l + ": " + t + "\\n") }]);
    try {
      const a = parseDaemonArgs(${JSON.stringify(argv)}, process.env, { underMaster: masterPresent(process.env) });
      requireSolitary(a);
      process.stdout.write(JSON.stringify(a));
    } catch (e) { process.exitCode = 1; }`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], {
    env: { ...env },
    stdio: ["ignore", "pipe", "pipe", "ignore", "ignore", "pipe"],
    encoding: "utf8",
    timeout: 60_000,
  });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

test("under master (fd 5 socket + GENERATION): underMaster, and -t is required", () => {
  const ok = underMasterChild(["-l", "-t", "unix"], { GENERATION: "3" });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).underMaster, true);

  const noT = underMasterChild(["-l"], { GENERATION: "3" });
  assert.equal(noT.status, 1);
  assert.equal(noT.stderr, "fatal: no transport type specified\n");

  const standalone = underMasterChild(["-l", "-S"], { GENERATION: "3" });
  assert.equal(standalone.status, 0, standalone.stderr);

  const noGen = underMasterChild(["-l"], {});
  assert.equal(noGen.status, 0, noGen.stderr);
  assert.equal(JSON.parse(noGen.stdout).underMaster, false);
});

test("under master, tlsmgr needs process limit 1 (-l), as MAIL_SERVER_SOLITARY", () => {
  const r = underMasterChild(["-t", "unix", "-n", "tlsmgr2"], { GENERATION: "3" });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, "fatal: service tlsmgr2 requires a process limit of 1\n");
});
