/**
 * seal-bench.ts - what sealing Redis session entries costs per lookup and
 *                 update (issue 13): the seal alone (AES-256-GCM of the
 *                 value, in process), and a lookup and an update through the
 *                 redis: backend over a real redis-server on loopback, next to
 *                 the same GET and SET of the raw value on the same
 *                 connection (what the backend did before values were sealed).
 * Owns: starting a redis-server of its own (a free loopback port, no
 *       persistence), the timed loops, the printed figures. Not a test.
 * Not here: the seal (src/cache/session-seal.ts), the backend
 *           (src/cache/backends/redis.ts); the daemon-level benchmark (bench/run.ts).
 * See also: docs/security.md (the figures), bench/seed-bench.ts
 *
 * Usage: npm run build; node dist/bench/seal-bench.js [ops per case (default 20000)] [rounds (default 3)]
 * Requests are sequential (one in flight): latency, not throughput. Each
 * figure is the median of the rounds (the cases interleaved), for a shared,
 * noisy machine.
 */

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { redisOpen } from "../src/cache/backends/redis.js";
import { scacheEncode } from "../src/cache/scache.js";
import { SessionSeal } from "../src/cache/session-seal.js";
import { setMsgSinks } from "../src/log/msg.js";
import { keyWrapSecretText } from "../src/tickets/key-wrap.js";

const SIZES = [256, 1024, 4096];

/** freePort - a TCP port free on 127.0.0.1 now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A case's cost per operation: wall-clock and this process's CPU (user + system), microseconds. */
interface Cost {
  wall: number;
  cpu: number;
}

/** perOp - the cost of one call of fn, over n calls (after n/10 warm-up calls). */
async function perOp(n: number, fn: (i: number) => unknown): Promise<Cost> {
  for (let i = 0; i < n / 10; i++) await fn(i);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  const wall = Number(process.hrtime.bigint() - t0) / 1e3 / n;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / n };
}

/** cpuOnly - seal and open alone, in process: microseconds each. */
function cpuOnly(n: number, size: number): { seal: number; open: number } {
  const seal = new SessionSeal(randomBytes(32), "smtpd", "tlsmgr:");
  const value = scacheEncode(1_700_000_000, randomBytes(size));
  const ids = Array.from({ length: 64 }, (_, i) => `0123456789ABCDEF0123456789ABCDEF&s=smtp&l=${i}`);
  const sealed = ids.map((id) => seal.seal(id, value));
  for (let i = 0; i < n / 10; i++) seal.open(ids[i & 63]!, sealed[i & 63]!);
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) seal.seal(ids[i & 63]!, value);
  const sealUs = Number(process.hrtime.bigint() - t0) / 1e3 / n;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) seal.open(ids[i & 63]!, sealed[i & 63]!);
  return { seal: sealUs, open: Number(process.hrtime.bigint() - t0) / 1e3 / n };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 20_000) || 20_000;
  setMsgSinks([]);
  const dir = mkdtempSync(path.join(tmpdir(), "seal-bench-"));
  const port = await freePort();
  const server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
  try {
    const wrap = path.join(dir, "key-wrap");
    writeFileSync(wrap, keyWrapSecretText(randomBytes(32)), { mode: 0o600 });
    const table = path.join(dir, "bench.cf");
    writeFileSync(table, `servers = 127.0.0.1:${port}\nkey_prefix = bench:\nkey_wrap_file = ${wrap}\ntimeout = 5s\n`);
    let backend: Awaited<ReturnType<typeof redisOpen>> | undefined;
    for (let i = 0; i < 100 && backend === undefined; i++) {
      try {
        const b = await redisOpen(table, { truncate: true, timeout: 3600, cache: "smtpd" });
        if (b.link.client.status === "ready") backend = b;
        else await b.close();
      } catch {
        /* not up yet */
      }
      if (backend === undefined) await sleep(50);
    }
    if (backend === undefined) throw new Error("redis-server does not answer (is it installed?)");
    const b = backend;
    const link = b.link;
    const rounds = Number(process.argv[3] ?? 3) || 3;
    process.stdout.write(`node ${process.version}, ${n} sequential operations per case, median of ${rounds} rounds, redis-server on 127.0.0.1\n`);
    process.stdout.write("                          |  update: wall raw/sealed   cpu raw/sealed |  lookup: wall raw/sealed   cpu raw/sealed\n");
    process.stdout.write("size     seal(us) open(us) |\n");
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    const med = (cs: Cost[]): Cost => ({ wall: median(cs.map((c) => c.wall)), cpu: median(cs.map((c) => c.cpu)) });
    const f = (x: number) => x.toFixed(1).padStart(6);
    for (const size of SIZES) {
      const value = scacheEncode(1_700_000_000, randomBytes(size));
      const ids = Array.from({ length: 1000 }, (_, i) => `0123456789ABCDEF0123456789ABCDEF&s=smtp&l=${i}`);
      const rawKey = (i: number) => `bench:raw:${ids[i % 1000]}`;
      const r = { seal: [] as number[], open: [] as number[], rawSet: [] as Cost[], sealedSet: [] as Cost[], rawGet: [] as Cost[], sealedGet: [] as Cost[] };
      for (let round = 0; round < rounds; round++) {
        const c = cpuOnly(n * 5, size);
        r.seal.push(c.seal);
        r.open.push(c.open);
        r.rawSet.push(await perOp(n, (i) => link.run((cl) => cl.set(rawKey(i), value, "EX", 3601))));
        r.sealedSet.push(await perOp(n, (i) => b.update(ids[i % 1000]!, value)));
        r.rawGet.push(await perOp(n, (i) => link.run((cl) => cl.getBuffer(rawKey(i)))));
        r.sealedGet.push(await perOp(n, (i) => b.lookup(ids[i % 1000]!)));
      }
      const cpu = { seal: median(r.seal), open: median(r.open) };
      const [rawSet, sealedSet, rawGet, sealedGet] = [med(r.rawSet), med(r.sealedSet), med(r.rawGet), med(r.sealedGet)];
      process.stdout.write(
        `${String(size).padEnd(8)} ${cpu.seal.toFixed(2).padStart(8)} ${cpu.open.toFixed(2).padStart(8)} |` +
          `         ${f(rawSet.wall)} ${f(sealedSet.wall)}   ${f(rawSet.cpu)} ${f(sealedSet.cpu)} |` +
          `         ${f(rawGet.wall)} ${f(sealedGet.wall)}   ${f(rawGet.cpu)} ${f(sealedGet.cpu)}\n`,
      );
    }
    process.stdout.write(
      "(microseconds per operation; raw = GET/SET of the unsealed value on the same connection;\n" +
        " cpu = this process's user + system time, the part a busy machine disturbs least)\n",
    );
    await b.close();
  } finally {
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
