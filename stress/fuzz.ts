/**
 * fuzz.ts - `npm run fuzz -- --minutes N`: the daemon against mutated real
 *           requests for N minutes, every reply judged by an oracle.
 * Owns: starting a daemon of its own (a throw-away instance, smtpd and smtp
 *       caches in LMDB), the fuzzing connections (8 by default, each with its
 *       own cache ids and its own model; ids another connection's mutation may
 *       have touched are judged leniently), one fresh connection per case, the
 *       verdicts (wrong reply, hang: nothing decisive within HANG_MS, crash:
 *       the daemon died or logged fatal/panic; then it is started again), the
 *       failing cases written to --out, peak RSS, and the report.
 * Not here: the cases (stress/fuzz-cases.ts), the oracle
 *           (test/helpers/reply-model.ts), sampling (stress/proc-sample.ts).
 * See also: docs/reliability.md, robustness/fuzz-socket.test.ts
 *
 * Exit status 0 when there were no wrong replies, hangs or crashes, else 1.
 * Loopback only (a unix socket in a temporary directory).
 */

import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { startDaemon } from "../test/helpers/daemon.js";
import type { RunningDaemon } from "../test/helpers/daemon.js";
import { attr0ListSplit, Raw, RAW_ANNOUNCE, rawTestInstance } from "../test/helpers/raw-conn.js";
import type { RawTestInstance } from "../test/helpers/raw-conn.js";
import { ReplyModel, show, STAT_FAIL, STAT_OK, STAT_ERR } from "../test/helpers/reply-model.js";
import type { Check } from "../test/helpers/reply-model.js";
import { FUZZ_LIMITS, FuzzGen } from "./fuzz-cases.js";
import type { FuzzCase } from "./fuzz-cases.js";
import { parseStressArgs } from "./options.js";
import type { StressOptions } from "./options.js";
import { ProcSampler } from "./proc-sample.js";

/** A case that has not come to its end (all replies, or the close) after this long hangs. */
const HANG_MS = 20_000;
/** Failing cases kept on disk, at most. */
const KEEP_FAILURES = 50;
const POLICY_REQ = Buffer.from("request\0policy\0cache_type\0smtpd\0\0", "latin1");
const POLICY: Record<string, [string, string]> = { smtpd: ["1", "86400"], smtp: ["1", "86400"], lmtp: ["0", "3600"] };
const WELL_FORMED_STATUS = new Set([STAT_OK, STAT_ERR, STAT_FAIL]);

interface Figures {
  minutes: number;
  connections: number;
  seed: number;
  cases: number;
  requests: number;
  bytesSent: number;
  wrongReplies: number;
  hangs: number;
  crashes: number;
  peakRssMiB: number;
  /** Of which anonymous memory at most (the rest: mapped pages of the LMDB files). */
  peakAnonMiB: number;
  /** Size of the cache files at the end. */
  cacheFileMiB: number;
  warningLines: number;
  fatalOrPanicLines: number;
  failedRequestLines: number;
  cleanStop: boolean;
}

/** The running daemon and what is known of it (replaced after a crash). */
interface Target {
  inst: RawTestInstance;
  daemon: RunningDaemon;
  generation: number;
}

class Fuzzer {
  readonly f: Figures;
  readonly #taint = new Set<string>();
  #target!: Target;
  #sampler!: ProcSampler;
  #failures = 0;
  #restarting: Promise<void> | undefined;

  constructor(readonly o: StressOptions) {
    this.f = {
      minutes: o.minutes, connections: o.connections, seed: o.seed, cases: 0, requests: 0, bytesSent: 0,
      wrongReplies: 0, hangs: 0, crashes: 0, peakRssMiB: 0, peakAnonMiB: 0, cacheFileMiB: 0, warningLines: 0, fatalOrPanicLines: 0, failedRequestLines: 0,
      cleanStop: false,
    };
  }

  /** #start - a fresh instance and daemon; its log lines are counted, not kept. */
  async #start(generation: number): Promise<Target> {
    const inst = rawTestInstance("fuzz-cmd", [
      "smtpd_tls_session_cache_database = lmdb:${data_directory}/smtpd_scache",
      "smtp_tls_session_cache_database = lmdb:${data_directory}/smtp_scache",
      "smtpd_tls_session_cache_timeout = 86400s",
      "smtp_tls_session_cache_timeout = 86400s",
      `tlsmgr_attr_name_limit = ${FUZZ_LIMITS.nameLimit}`,
      `tlsmgr_attr_value_limit = ${FUZZ_LIMITS.valueLimit}`,
      `tlsmgr_attr_count_limit = ${FUZZ_LIMITS.countLimit}`,
    ]);
    const daemon = await startDaemon({
      configDir: inst.dir,
      socket: inst.socket,
      stderrKeep: 20_000,
      onStderrLine: (l) => {
        if (l.includes(": warning: ")) this.f.warningLines++;
        if (/: (fatal|panic): /.test(l)) {
          this.f.fatalOrPanicLines++;
          this.#keep("daemon-fatal", Buffer.from(l), [l]);
        }
        if (/request from .* failed/.test(l)) this.f.failedRequestLines++;
      },
    });
    return { inst, daemon, generation };
  }

  /** #keep - write a failing case to --out (the first KEEP_FAILURES). */
  #keep(kind: string, input: Buffer, notes: string[]): void {
    if (this.#failures >= KEEP_FAILURES) return;
    const n = ++this.#failures;
    mkdirSync(this.o.out, { recursive: true });
    writeFileSync(join(this.o.out, `${n}-${kind}.bin`), input);
    writeFileSync(join(this.o.out, `${n}-${kind}.txt`), notes.join("\n") + "\n");
  }

  /** #crashed - the daemon died: count it, start another, forget the state the models knew. */
  async #crashed(t: Target, why: string): Promise<void> {
    if (this.#target !== t) return this.#restarting; // already replaced
    if (this.#restarting) return this.#restarting;
    this.f.crashes++;
    this.#keep("crash", Buffer.from(t.daemon.stderr()), [why]);
    this.#restarting = (async () => {
      await t.daemon.stop().catch(() => undefined);
      t.inst.cleanup();
      this.#target = await this.#start(t.generation + 1);
      this.#sampler.follow(this.#target.daemon.proc.pid!);
      this.#taint.clear();
      this.#restarting = undefined;
    })();
    return this.#restarting;
  }

  /** #alive - false when the daemon of t is gone. */
  #alive(t: Target): boolean {
    return t.daemon.proc.exitCode === null && t.daemon.proc.signalCode === null;
  }

  /** #worker - one fuzzing connection at a time, until the end. */
  async #worker(k: number, endAt: number): Promise<void> {
    const tag = `f${k}.`;
    const gen = new FuzzGen(tag, this.o.seed * 1000 + k);
    let generation = -1;
    let model!: ReplyModel;
    while (Date.now() < endAt) {
      if (this.#restarting) await this.#restarting;
      const t = this.#target;
      if (t.generation !== generation) {
        generation = t.generation;
        model = new ReplyModel({
          ...FUZZ_LIMITS,
          policy: POLICY,
          enabled: ["smtpd", "smtp"],
          lenient: (type, id, writes) => {
            const key = `${type}\0${id}`;
            if (!id.startsWith(tag)) {
              if (writes) this.#taint.add(key);
              return true;
            }
            return this.#taint.has(key);
          },
        });
      }
      await this.#case(t, model, gen.next(), gen);
    }
  }

  /** #case - one case on a fresh connection, judged. */
  async #case(t: Target, model: ReplyModel, c: FuzzCase, gen: FuzzGen): Promise<void> {
    // A case that ends at a list boundary gets a policy request last: any reply the model did not expect shows.
    let input = c.input;
    if (!c.end && attr0ListSplit(input).rest.length === 0 && !input.subarray(0, 2).equals(Buffer.from("W\0")))
      input = Buffer.concat([input, POLICY_REQ]);
    const want = model.run(input, c.end);
    const send = want.cut === undefined ? input : input.subarray(0, want.cut);
    this.f.cases++;
    this.f.requests += want.checks.length;
    this.f.bytesSent += send.length;
    const sock = connect({ path: t.daemon.socket });
    const raw = new Raw(sock);
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once("connect", resolve);
        sock.once("error", reject);
      });
      let at = 0;
      for (const p of [...c.cuts.filter((x) => x < send.length), send.length]) {
        if (p > at) sock.write(send.subarray(at, p));
        at = Math.max(at, p);
      }
      if (c.end) sock.end();
      const expected = 1 + want.checks.length; // the announcement, then the replies
      try {
        await raw.until(() => raw.closed || (!want.closes && attr0ListSplit(raw.received).lists.length >= expected), "the case's end", HANG_MS);
      } catch {
        if (!this.#alive(t)) return void (await this.#crashed(t, "the daemon died"));
        this.f.hangs++;
        this.#keep("hang", send, [...c.mutations, `expected ${want.checks.length} replies${want.closes ? " and a close" : ""}`,
          `got ${raw.received.length} bytes`]);
        return;
      }
      if (!this.#alive(t)) return void (await this.#crashed(t, "the daemon died"));
      const why = this.#judge(raw.received, want.checks, want.closes, raw.closed);
      if (why !== undefined) {
        this.f.wrongReplies++;
        this.#keep("wrong", send, [...c.mutations, why]);
      }
      if (model.ticket) gen.knownKeyName = model.ticket.subarray(0, 16);
    } catch (err) {
      if (!this.#alive(t)) return void (await this.#crashed(t, "the daemon died"));
      // A connect refused under load is the machine's, not the daemon's: it counts as nothing.
      this.f.cases--;
      this.f.requests -= want.checks.length;
      this.f.bytesSent -= send.length;
      void err;
    } finally {
      sock.destroy();
    }
  }

  /** #judge - undefined when the bytes received are what the model says, else why not. */
  #judge(received: Buffer, checks: Check[], closes: boolean, closed: boolean): string | undefined {
    const { lists, rest } = attr0ListSplit(received);
    if (lists.length === 0 || show(lists[0]!) !== show([["protocol", "tlsmgr_protocol"]]))
      return `no announcement: ${JSON.stringify(received.subarray(0, RAW_ANNOUNCE.length).toString("latin1"))}`;
    const replies = lists.slice(1);
    if (rest.length !== 0) return `bytes after the last whole reply: ${JSON.stringify(rest.subarray(0, 80).toString("latin1"))}`;
    for (const l of replies)
      if (!(l.length >= 1 && l[0]![0] === "status" && WELL_FORMED_STATUS.has(l[0]![1]))) return `reply not status first: ${show(l)}`;
    if (replies.length !== checks.length) return `${replies.length} replies, expected ${checks.length}: ${replies.map(show).join(" ")}`;
    for (let i = 0; i < replies.length; i++) {
      const why = checks[i]!(replies[i]!);
      if (why !== undefined) return `reply ${i + 1} of ${replies.length}: ${why}`;
    }
    if (closes && !closed) return "the connection was not closed";
    return undefined;
  }

  /** run - the whole run; the figures. */
  async run(): Promise<Figures> {
    this.#target = await this.#start(0);
    this.#sampler = new ProcSampler(this.#target.daemon.proc.pid!, 1000).start();
    const endAt = Date.now() + this.o.minutes * 60_000;
    const progress = setInterval(() => {
      process.stderr.write(`fuzz: ${this.f.cases} cases, ${this.f.requests} requests, ${this.f.wrongReplies} wrong, ` +
        `${this.f.hangs} hangs, ${this.f.crashes} crashes, RSS ${(this.#sampler.samples.at(-1)?.rssKiB ?? 0) >> 10} MiB ` +
        `(anonymous ${(this.#sampler.samples.at(-1)?.rssAnonKiB ?? 0) >> 10} MiB)\n`);
    }, 30_000);
    progress.unref();
    await Promise.all(Array.from({ length: this.o.connections }, (_, k) => this.#worker(k, endAt)));
    clearInterval(progress);
    if (this.#restarting) await this.#restarting;
    this.#sampler.sample();
    this.#sampler.stop();
    this.f.peakRssMiB = Math.round(this.#sampler.peakRssKiB / 1024);
    this.f.peakAnonMiB = Math.round(this.#sampler.peakAnonKiB / 1024);
    const t = this.#target;
    const files = readdirSync(t.inst.dataDir).filter((n) => n.endsWith(".lmdb"));
    this.f.cacheFileMiB = Math.round(files.reduce((a, n) => a + statSync(join(t.inst.dataDir, n)).size, 0) / 1048576);
    const code = await t.daemon.stop();
    this.f.cleanStop = code === 0;
    if (!this.f.cleanStop) this.f.crashes++;
    t.inst.cleanup();
    return this.f;
  }
}

async function main(): Promise<void> {
  let o: StressOptions;
  try {
    o = parseStressArgs("fuzz", process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  const started = Date.now();
  const f = await new Fuzzer(o).run();
  const secs = (Date.now() - started) / 1000;
  const fmt = (n: number) => n.toLocaleString("en-US");
  const ok = f.wrongReplies === 0 && f.hangs === 0 && f.crashes === 0 && f.fatalOrPanicLines === 0;
  const lines = [
    `fuzz: ${f.minutes} min, ${f.connections} connections, seed ${f.seed}`,
    `  cases ${fmt(f.cases)}, requests sent ${fmt(f.requests)} (${fmt(Math.round(f.requests / secs))}/s), ` +
      `${(f.bytesSent / 1e6).toFixed(1)} MB`,
    `  wrong replies ${f.wrongReplies}, hangs ${f.hangs}, crashes ${f.crashes}`,
    `  daemon: peak RSS ${f.peakRssMiB} MiB (anonymous at most ${f.peakAnonMiB} MiB; cache files ${f.cacheFileMiB} MiB at the end), warning lines ${fmt(f.warningLines)}, fatal/panic lines ${f.fatalOrPanicLines}, ` +
      `failed requests ${f.failedRequestLines}, stopped cleanly on SIGTERM: ${f.cleanStop ? "yes" : "no"}`,
    `  verdict: ${ok ? "PASS" : `FAIL (cases kept in ${o.out})`}`,
  ];
  process.stdout.write(lines.join("\n") + "\n");
  if (o.json) writeFileSync(o.json, JSON.stringify({ ...f, seconds: secs, pass: ok }, null, 2) + "\n");
  process.exit(ok ? 0 : 1);
}

void main();
