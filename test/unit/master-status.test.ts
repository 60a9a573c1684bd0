/**
 * master-status.test.ts - the 12-byte status message and GENERATION, and the
 * bytes a child really writes on its fd 5 (a socketpair, as master gives).
 * See also: src/master/master-status.ts, src/master/master-link.ts,
 *           postfix/src/master/master_proto.h
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { endianness } from "node:os";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import {
  MASTER_STAT_AVAIL,
  MASTER_STAT_TAKEN,
  MASTER_STATUS_SIZE,
  masterStatusDecode,
  masterStatusEncode,
  parseGeneration,
} from "../../src/master/master-status.js";

test("the struct {int pid; unsigned gen; int avail} in this machine's byte order", () => {
  const buf = masterStatusEncode(0x01020304, 0x8000000f, MASTER_STAT_AVAIL);
  assert.equal(buf.length, MASTER_STATUS_SIZE);
  const expected =
    endianness() === "LE"
      ? [0x04, 0x03, 0x02, 0x01, 0x0f, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00, 0x00]
      : [0x01, 0x02, 0x03, 0x04, 0x80, 0x00, 0x00, 0x0f, 0x00, 0x00, 0x00, 0x01];
  assert.deepEqual([...buf], expected);
  assert.deepEqual(masterStatusDecode(buf), { pid: 0x01020304, gen: 0x8000000f, avail: 1 });
  assert.deepEqual(masterStatusDecode(masterStatusEncode(7, 0, MASTER_STAT_TAKEN)), { pid: 7, gen: 0, avail: 0 });
  assert.throws(() => masterStatusDecode(Buffer.alloc(11)), RangeError);
});

test("GENERATION is octal digits, unsigned 32-bit, as master_spawn writes it with %o", () => {
  assert.equal(parseGeneration("0"), 0);
  assert.equal(parseGeneration("17"), 15);
  assert.equal(parseGeneration((0xffffffff).toString(8)), 0xffffffff);
  assert.equal(parseGeneration("40000000000"), 0, "wraps as the C macro does");
  assert.equal(parseGeneration(""), undefined);
  assert.equal(parseGeneration("1x"), undefined);
  assert.equal(parseGeneration("-1"), undefined);
  assert.equal(parseGeneration(" 7"), undefined);
});

const linkModule = fileURLToPath(new URL("../../src/master/master-link.js", import.meta.url));
const argsModule = fileURLToPath(new URL("../../src/cli/args.js", import.meta.url));

/** collect - everything a stream gives; wait(n) resolves once n bytes came */
function collect(stream: Readable): { all(): Buffer; wait(n: number): Promise<void> } {
  const chunks: Buffer[] = [];
  let size = 0;
  let waiter: { n: number; resolve: () => void } | undefined;
  stream.on("data", (d: Buffer) => {
    chunks.push(d);
    size += d.length;
    if (waiter && size >= waiter.n) waiter.resolve();
  });
  return {
    all: () => Buffer.concat(chunks),
    wait: (n) =>
      new Promise<void>((resolve) => {
        if (size >= n) resolve();
        else waiter = { n, resolve };
      }),
  };
}

test("a child under master writes taken then available on fd 5 for served requests, once per loop turn", async () => {
  // The child: three requests served in one event-loop turn, then one more in
  // a later turn: two taken/available pairs (master counts a use on each).
  const code = `
    const { parseDaemonArgs } = await import(${JSON.stringify(argsModule)});
    const { masterPresent, openMasterLink } = await import(${JSON.stringify(linkModule)});
    const args = parseDaemonArgs(["-l", "-t", "unix"], process.env, { underMaster: masterPresent(process.env) });
    const link = openMasterLink(args, process.env, 0);
    link.requestServed(); link.requestServed(); link.requestServed();
    setTimeout(() => link.requestServed(), 50);
    link.onMasterGone(() => { process.stdout.write("gone"); link.close(); });`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", code], {
    env: { GENERATION: "1234" },
    stdio: ["ignore", "pipe", "pipe", "ignore", "ignore", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const statusEnd = (child.stdio as unknown as Array<Readable & { end(): void }>)[5];
  const status = collect(statusEnd);
  await status.wait(4 * MASTER_STATUS_SIZE);
  const bytes = status.all();
  const messages = [0, 1, 2, 3].map((i) => masterStatusDecode(bytes.subarray(i * 12, i * 12 + 12)));
  for (const m of messages) {
    assert.equal(m.pid, child.pid);
    assert.equal(m.gen, 0o1234);
  }
  assert.deepEqual(
    messages.map((m) => m.avail),
    [MASTER_STAT_TAKEN, MASTER_STAT_AVAIL, MASTER_STAT_TAKEN, MASTER_STAT_AVAIL],
  );
  // Master goes away: its end of the pair closes, the child's callback runs.
  statusEnd.end();
  const exitCode = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  assert.equal(exitCode, 0, stderr);
  assert.equal(stdout, "gone");
  assert.equal(status.all().length, 4 * MASTER_STATUS_SIZE, "only two pairs were told");
});
