/**
 * soak.ts - `npm run soak -- --minutes N`: 64 clients of mixed load against
 *           a daemon of its own for N minutes; its memory and descriptors
 *           sampled every 10 s; a verdict on their growth.
 * Owns: the clients (each like an smtpd: one connection, one request at a
 *       time, 0-20 ms apart; lookups, updates, deletes, tktkey, seed, policy,
 *       a few bad requests, now and then a big value, a reconnect, or a burst
 *       of pipelined lookups ended by a half-close), the check of every reply
 *       (a hit returns the bytes stored; entries expire after 120 s and the
 *       sweep runs every 120 s, so misses are allowed only around expiry),
 *       the samples, the growth verdict, and the report.
 * Not here: the oracle of arbitrary input (stress/fuzz.ts), sampling
 *           (stress/proc-sample.ts).
 * See also: docs/reliability.md
 *
 * Verdict: after a warm-up (the first fifth of the run, at least 60 s), the
 * median RSS of the last fifth may exceed that of the first fifth after the
 * warm-up by at most max(24 MiB, 10 %), and the descriptors open at the end
 * (clients gone) may exceed those before the clients came by at most 4.
 * Exit status 0 when the verdict is PASS and no reply was wrong.
 */

import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Rng } from "../bench/mix.js";
import { startDaemon } from "../test/helpers/daemon.js";
import { attr0ListSplit, rawTestInstance } from "../test/helpers/raw-conn.js";
import type { RawAttr } from "../test/helpers/raw-conn.js";
import { show, STAT_ERR, STAT_FAIL, STAT_OK } from "../test/helpers/reply-model.js";
import { parseStressArgs } from "./options.js";
import type { StressOptions } from "./options.js";
import { openFds, ProcSampler } from "./proc-sample.js";
import type { ProcSample } from "./proc-sample.js";

/** The session cache timeout of the soaked daemon (the least Postfix allows: sweeps run this often). */
const TIMEOUT_S = 120;
/** Seconds around expiry in which a lookup may hit or miss (clock granularity, a busy machine). */
const SLACK_S = 3;
const IDS_PER_CLIENT = 300;
const SAMPLE_MS = 10_000;
/** A reply that takes longer than this is a hang. */
const REPLY_TIMEOUT_MS = 30_000;

/** listsEnd - the offset just after the first n whole attribute lists of buf (they are there). */
function listsEnd(buf: Buffer, n: number): number {
  let pos = 0;
  for (let i = 0; i < n; i++) {
    for (;;) {
      const nameEnd = buf.indexOf(0, pos);
      if (nameEnd === pos) {
        pos = nameEnd + 1;
        break;
      }
      pos = buf.indexOf(0, nameEnd + 1) + 1;
    }
  }
  return pos;
}

/** SoakConn - one connection: write a request, get the next whole reply list. */
class SoakConn {
  #buf: Buffer = Buffer.alloc(0);
  #waiting: { n: number; resolve: (l: RawAttr[][]) => void; reject: (e: Error) => void } | undefined;
  #closed = false;

  private constructor(readonly sock: Socket) {
    sock.on("data", (d: Buffer) => {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
      this.#check();
    });
    sock.on("close", () => {
      this.#closed = true;
      this.#waiting?.reject(new Error("the daemon closed the connection"));
      this.#waiting = undefined;
    });
    sock.on("error", () => undefined);
  }

  /** open - connect and read the announcement. */
  static async open(path: string): Promise<SoakConn> {
    const sock = connect({ path });
    await new Promise<void>((resolve, reject) => {
      sock.once("connect", resolve);
      sock.once("error", reject);
    });
    const c = new SoakConn(sock);
    const [hello] = await c.lists(1);
    if (show(hello!) !== show([["protocol", "tlsmgr_protocol"]])) throw new Error(`bad announcement ${show(hello!)}`);
    return c;
  }

  #check(): void {
    const w = this.#waiting;
    if (!w) return;
    const { lists, rest } = attr0ListSplit(this.#buf);
    if (lists.length < w.n) return;
    this.#waiting = undefined;
    // Whole lists beyond n stay for the next call.
    const taken = lists.length === w.n ? this.#buf.length - rest.length : listsEnd(this.#buf, w.n);
    this.#buf = this.#buf.subarray(taken);
    w.resolve(lists.slice(0, w.n));
  }

  /** lists - the next n reply lists. */
  lists(n: number): Promise<RawAttr[][]> {
    if (this.#closed) return Promise.reject(new Error("connection closed"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply within ${REPLY_TIMEOUT_MS} ms`)), REPLY_TIMEOUT_MS);
      this.#waiting = {
        n,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#check();
    });
  }

  async ask(req: string, n = 1): Promise<RawAttr[][]> {
    const got = this.lists(n);
    this.sock.write(Buffer.from(req, "latin1"));
    return got;
  }

  close(): void {
    this.sock.destroy();
  }
}

interface Totals {
  requests: number;
  wrong: number;
  hangs: number;
  reconnects: number;
  bursts: number;
  firstWrong: string[];
}

const now = () => Date.now() / 1000;

/** client - one soak client until endAt. */
async function client(k: number, path: string, seed: number, endAt: number, t: Totals): Promise<void> {
  const rng = new Rng(seed * 7919 + k);
  /** id -> [time stored (s), session base64], or [time deleted, null] */
  const stored = new Map<string, [number, string | null]>();
  let keyName: Buffer | undefined;
  let c = await SoakConn.open(path);
  const wrong = (what: string, got: RawAttr[]) => {
    t.wrong++;
    if (t.firstWrong.length < 20) t.firstWrong.push(`client ${k}: ${what}: got ${show(got)}`);
  };
  const id = () => `soak${k}-${rng.int(IDS_PER_CLIENT)}`;
  const type = "smtpd";
  while (Date.now() < endAt) {
    await sleep(rng.int(21));
    const r = rng.int(1000);
    try {
      if (r < 2) {
        // reconnect, as smtpd after ipc_ttl
        c.close();
        c = await SoakConn.open(path);
        t.reconnects++;
        continue;
      }
      if (r < 3) {
        // a burst of pipelined lookups, then a half-close: every one answered, then the close
        const n = 20 + rng.int(40);
        const lists = c.ask(`request\0lookup\0cache_type\0${type}\0cache_id\0${id()}\0\0`.repeat(n), n);
        c.sock.end();
        const got = await lists;
        t.requests += n;
        for (const l of got) if (!(l[0]?.[0] === "status" && (l[0][1] === STAT_OK || l[0][1] === STAT_ERR))) wrong("burst lookup", l);
        c.close();
        c = await SoakConn.open(path);
        t.bursts++;
        continue;
      }
      t.requests++;
      if (r < 550) {
        const i = id();
        const [got] = await c.ask(`request\0lookup\0cache_type\0${type}\0cache_id\0${i}\0\0`);
        const s = stored.get(i);
        const age = s ? now() - s[0] : Infinity;
        const status = got![0]?.[1];
        const value = got![1]?.[1];
        if (got!.length !== 2 || got![0]![0] !== "status" || got![1]![0] !== "session") wrong("lookup shape", got!);
        else if (status === STAT_OK) {
          if (!s || s[1] === null || value !== s[1]) {
            // A hit must be what was stored, and never a deleted or unknown entry.
            if (!(s && s[1] === null && age < SLACK_S)) wrong(`lookup ${i} hit (stored ${s ? `${age.toFixed(0)} s ago` : "never"})`, got!);
          }
        } else if (status === STAT_ERR) {
          if (s && s[1] !== null && age < TIMEOUT_S - SLACK_S) wrong(`lookup ${i} missed, stored ${age.toFixed(1)} s ago`, got!);
        } else wrong("lookup status", got!);
      } else if (r < 800) {
        const i = id();
        const size = rng.int(200) === 0 ? 30000 + rng.int(10000) : 500 + rng.int(3500);
        const b64 = randomBytes(size).toString("base64");
        const [got] = await c.ask(`request\0update\0cache_type\0${type}\0cache_id\0${i}\0session\0${b64}\0\0`);
        if (show(got!) !== show([["status", STAT_OK]])) wrong("update", got!);
        stored.set(i, [now(), b64]);
      } else if (r < 830) {
        const i = id();
        const [got] = await c.ask(`request\0delete\0cache_type\0${type}\0cache_id\0${i}\0\0`);
        const s = stored.get(i);
        const status = got![0]?.[1];
        const fresh = s && s[1] !== null && now() - s[0] < TIMEOUT_S - SLACK_S;
        if (got!.length !== 1 || (status !== STAT_OK && status !== STAT_ERR)) wrong("delete shape", got!);
        else if (fresh && status !== STAT_OK) wrong(`delete ${i} of a fresh entry`, got!);
        else if (!s && status !== STAT_ERR) wrong(`delete ${i} never stored`, got!);
        stored.set(i, [now(), null]);
      } else if (r < 910) {
        const byName = keyName !== undefined && rng.int(2) === 0;
        const name = byName ? keyName!.toString("base64") : "";
        const [got] = await c.ask(`request\0tktkey\0keyname\0${name}\0\0`);
        const rec = Buffer.from(got![1]?.[1] ?? "", "base64");
        if (got![0]?.[1] === STAT_OK && rec.length === 88) {
          if (byName && !rec.subarray(0, 16).equals(keyName!)) wrong("tktkey by name: another key", got!);
          if (!byName) keyName = rec.subarray(0, 16);
        } else if (!(byName && got![0]?.[1] === STAT_ERR)) wrong("tktkey", got!);
      } else if (r < 960) {
        const [got] = await c.ask("request\0seed\0size\x0032\0\0");
        if (got![0]?.[1] !== STAT_OK || Buffer.from(got![1]?.[1] ?? "", "base64").length !== 32) wrong("seed", got!);
      } else if (r < 980) {
        const [got] = await c.ask(`request\0policy\0cache_type\0${type}\0\0`);
        if (show(got!) !== show([["status", STAT_OK], ["cachable", "1"], ["timeout", String(TIMEOUT_S)]])) wrong("policy", got!);
      } else {
        // a bad request: answered -2, a warning (rate-limited per client)
        const [got] = await c.ask(rng.int(2) ? "request\0frobnicate\0\0" : `request\0seed\0size\0${rng.int(1000) + 256}\0\0`);
        if (got![0]?.[1] !== STAT_FAIL) wrong("bad request", got!);
      }
    } catch (err) {
      t.hangs++;
      if (t.firstWrong.length < 20) t.firstWrong.push(`client ${k}: ${(err as Error).message}`);
      c.close();
      if (Date.now() < endAt) c = await SoakConn.open(path);
    }
  }
  c.close();
}

/** median - of the values (0 when none). */
function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  let o: StressOptions;
  try {
    o = parseStressArgs("soak", process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  const inst = rawTestInstance("soak", [
    "smtpd_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache",
    `smtpd_tls_session_cache_timeout = ${TIMEOUT_S}s`,
  ]);
  let warnings = 0;
  let fatal = 0;
  const daemon = await startDaemon({
    configDir: inst.dir,
    socket: inst.socket,
    stderrKeep: 20_000,
    onStderrLine: (l) => {
      if (l.includes(": warning: ")) warnings++;
      if (/: (fatal|panic): /.test(l)) fatal++;
    },
  });
  const pid = daemon.proc.pid!;
  await sleep(500);
  const fdsBefore = openFds(pid);
  const sampler = new ProcSampler(pid, SAMPLE_MS).start();
  const durationMs = o.minutes * 60_000;
  const started = Date.now();
  const endAt = started + durationMs;
  const t: Totals = { requests: 0, wrong: 0, hangs: 0, reconnects: 0, bursts: 0, firstWrong: [] };
  const show10 = (s: ProcSample) =>
    `t=${s.t.toFixed(0)}s RSS ${(s.rssKiB / 1024).toFixed(1)} MiB (anon ${(s.rssAnonKiB / 1024).toFixed(1)}), fds ${s.fds}`;
  const progress = setInterval(() => {
    const s = sampler.samples.at(-1);
    if (s) process.stderr.write(`soak: ${t.requests} requests, ${t.wrong} wrong, ${t.hangs} hangs; ${show10(s)}\n`);
  }, 60_000);
  progress.unref();
  await Promise.all(Array.from({ length: o.connections }, (_, k) => client(k, inst.socket, o.seed, endAt, t)));
  clearInterval(progress);
  const secs = (Date.now() - started) / 1000;
  await sleep(1000); // the clients' connections closed
  sampler.sample();
  sampler.stop();
  const fdsAfter = openFds(pid);
  const code = await daemon.stop();
  inst.cleanup();

  // The verdict, from the samples taken while the clients ran.
  const during = sampler.samples.filter((s) => s.t <= durationMs / 1000);
  const warmS = Math.max(60, durationMs / 1000 / 5);
  const fifth = Math.max(SAMPLE_MS / 1000, (durationMs / 1000 - warmS) / 5);
  const early = during.filter((s) => s.t >= warmS && s.t < warmS + fifth).map((s) => s.rssKiB / 1024);
  const late = during.filter((s) => s.t >= durationMs / 1000 - fifth).map((s) => s.rssKiB / 1024);
  const rssEarly = median(early);
  const rssLate = median(late);
  const allowed = Math.max(24, rssEarly * 0.1);
  const rssOk = early.length > 0 && late.length > 0 && rssLate - rssEarly <= allowed;
  const fdsOk = fdsAfter >= 0 && fdsAfter <= fdsBefore + 4;
  const pass = rssOk && fdsOk && t.wrong === 0 && t.hangs === 0 && fatal === 0 && code === 0;
  const fmt = (n: number) => n.toLocaleString("en-US");
  const out = [
    `soak: ${o.minutes} min, ${o.connections} clients, seed ${o.seed}`,
    `  requests ${fmt(t.requests)} (${fmt(Math.round(t.requests / secs))}/s), reconnects ${t.reconnects}, ` +
      `pipelined bursts with half-close ${t.bursts}; wrong replies ${t.wrong}, hangs ${t.hangs}`,
    `  RSS: median ${rssEarly.toFixed(1)} MiB after warm-up (${warmS.toFixed(0)} s), ${rssLate.toFixed(1)} MiB in the last ` +
      `${fifth.toFixed(0)} s (growth ${(rssLate - rssEarly).toFixed(1)} MiB, allowed ${allowed.toFixed(1)}), ` +
      `peak ${(sampler.peakRssKiB / 1024).toFixed(1)} MiB`,
    `  descriptors: ${fdsBefore} before the clients, ${median(during.filter((s) => s.t >= warmS).map((s) => s.fds))} ` +
      `(median) with them, ${fdsAfter} after`,
    `  daemon: warning lines ${fmt(warnings)}, fatal/panic ${fatal}, stopped cleanly on SIGTERM: ${code === 0 ? "yes" : "no"}`,
    `  samples (every ${SAMPLE_MS / 1000} s): ${during.map((s) => `${s.t.toFixed(0)}:${(s.rssKiB / 1024).toFixed(0)}/${s.fds}`).join(" ")}`,
    ...t.firstWrong.map((w) => `  ! ${w}`),
    `  verdict: ${pass ? "PASS" : "FAIL"}${rssOk ? "" : " (memory grew)"}${fdsOk ? "" : " (descriptors grew)"}`,
  ];
  process.stdout.write(out.join("\n") + "\n");
  if (o.json)
    writeFileSync(o.json, JSON.stringify({ ...t, minutes: o.minutes, clients: o.connections, seconds: secs, rssEarly, rssLate,
      allowed, fdsBefore, fdsAfter, warnings, fatal, samples: sampler.samples, pass }, null, 2) + "\n");
  process.exit(pass ? 0 : 1);
}

void main();
