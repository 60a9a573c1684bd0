/**
 * options.ts - the command line of `npm run bench`.
 * Owns: option names, defaults, checking values, the usage text.
 * Not here: running anything (bench/run.ts).
 * See also: docs/benchmarks.md, bench/test/options.test.ts
 */

import { tmpdir } from "node:os";
import { existsSync } from "node:fs";
import { parseMix, DEFAULT_MIX, type Mix } from "./mix.js";
import { IMPLS, isImplName, type ImplName } from "./targets.js";

export interface BenchOptions {
  clients: number[];
  durationSec: number;
  warmupSec: number;
  prefill: number;
  mix: Mix;
  impls: ImplName[];
  sessionMin: number;
  sessionMax: number;
  seed: number;
  sweep: boolean;
  sweepOnly: boolean;
  sweepEntries: number;
  sweepTimeout: number;
  sweepClients: number;
  /** repetitions of each (implementation, clients) run, interleaved; the median is reported */
  repeat: number;
  /** where daemons' temporary directories (and so their cache files) go */
  tmp: string;
  json: string | undefined;
  plot: string | undefined;
  sweepPlot: string | undefined;
  cpuProf: string | undefined;
  /** directory for our daemon's trace figures (bench/daemon-trace.ts) */
  trace: string | undefined;
  /** extra node options for our daemon, e.g. "--trace-gc --max-semi-space-size=32" */
  nodeArgs: string[];
  /** farm mode (bench/farm.ts): host counts; --clients are then the total, spread over the hosts */
  hosts: number[] | undefined;
  /** ours-redis / ours-valkey run on a three-node Cluster (ours-redis-cluster / ours-valkey-cluster) */
  redisCluster: boolean;
  /** the redis: table's timeout for the farm's daemons, e.g. "50ms" (default: the table's default, 50ms) */
  redisTimeout: string | undefined;
  /** degradation run: seconds the store is stopped (SIGSTOP) under load; undefined = none */
  pauseStore: number | undefined;
  /** plot of the degradation run */
  pausePlot: string | undefined;
  /** our daemon with Prometheus metrics off (the default), on (scraped every second), or both, side by side */
  metrics: "off" | "on" | "both";
  /** another build of this project (a tree with dist/src/main.js) run beside ours, e.g. the commit before a change */
  baseline: string | undefined;
}

/** defaultTmp - /dev/shm when there is one (cache files in RAM, see docs/benchmarks.md), else os.tmpdir() */
export function defaultTmp(): string {
  return existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
}

const USAGE = "usage: npm run bench -- [--clients 1,8,64] [--duration 10] [--warmup 2] [--prefill 20000]\n"
  + "  [--mix lookup=60,update=25,tktkey=10,seed=5] [--impl ours,postfix] [--session-size 1024-4096] [--seed 1]\n"
  + "  [--sweep] [--sweep-only] [--sweep-entries 1000000] [--sweep-timeout 180] [--sweep-clients 8]\n"
  + "  [--repeat 1] [--tmp DIR] [--json FILE] [--plot FILE] [--sweep-plot FILE] [--cpu-prof DIR] [--trace DIR]\n"
  + "  [--node-args \"NODE OPTIONS for our daemon\"] [--metrics off|on|both] [--baseline TREE]\n"
  + "  farm: [--hosts 1,2,4] [--redis-cluster] [--redis-timeout 50ms] [--pause-store 10] [--pause-plot FILE]\n"
  + "  --metrics: our daemon with /metrics off, on (scraped every second during the runs), or both in one run\n"
  + "  --baseline: also our daemon from another build (TREE/dist/src/main.js), e.g. the commit before a change\n"
  + `  implementations: ${IMPLS.join(", ")}`;

/** parseBenchArgs - the command line to options; throws with the usage on a mistake */
export function parseBenchArgs(argv: string[]): BenchOptions {
  const o: BenchOptions = {
    clients: [1, 8, 64], durationSec: 10, warmupSec: 2, prefill: 20_000, mix: DEFAULT_MIX,
    impls: ["ours", "postfix"], sessionMin: 1024, sessionMax: 4096, seed: 1,
    sweep: false, sweepOnly: false, sweepEntries: 1_000_000, sweepTimeout: 180, sweepClients: 8,
    repeat: 1, tmp: defaultTmp(), json: undefined, plot: undefined, sweepPlot: undefined, cpuProf: undefined,
    trace: undefined, nodeArgs: [],
    hosts: undefined, redisCluster: false, redisTimeout: undefined, pauseStore: undefined, pausePlot: undefined,
    metrics: "off", baseline: undefined,
  };
  const num = (name: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (v === undefined || v === "" || !Number.isFinite(n) || n < min || n > max)
      throw new Error(`bad value for --${name}: ${v ?? "(none)"} (expected ${min}..${max})\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let val: string | undefined;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) {
      val = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const take = (): string => {
      if (val !== undefined) return val;
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
      return v;
    };
    switch (arg) {
      case "--clients":
        o.clients = take().split(",").map((c) => Math.floor(num("clients", c.trim(), 1, 4096)));
        break;
      case "--duration": o.durationSec = num("duration", take(), 0.1, 3600); break;
      case "--warmup": o.warmupSec = num("warmup", take(), 0, 600); break;
      case "--prefill": o.prefill = num("prefill", take(), 0, 10_000_000); break;
      case "--mix": o.mix = parseMix(take()); break;
      case "--impl": {
        const names = take().split(",").map((s) => s.trim()).filter((s) => s !== "");
        for (const n of names) if (!isImplName(n)) throw new Error(`unknown implementation "${n}"\n${USAGE}`);
        o.impls = names as ImplName[];
        break;
      }
      case "--session-size": {
        const m = /^(\d+)-(\d+)$/.exec(take());
        if (!m) throw new Error(`bad --session-size (expected MIN-MAX bytes)\n${USAGE}`);
        o.sessionMin = Number(m[1]);
        o.sessionMax = Number(m[2]);
        if (o.sessionMax < o.sessionMin) throw new Error(`bad --session-size: MAX < MIN\n${USAGE}`);
        break;
      }
      case "--seed": o.seed = num("seed", take(), 0, 2 ** 31); break;
      case "--sweep": o.sweep = true; break;
      case "--sweep-only": o.sweep = true; o.sweepOnly = true; break;
      case "--sweep-entries": o.sweepEntries = num("sweep-entries", take(), 1000, 10_000_000); break;
      case "--sweep-timeout": o.sweepTimeout = num("sweep-timeout", take(), 120, 8_640_000); break;
      case "--sweep-clients": o.sweepClients = num("sweep-clients", take(), 1, 4096); break;
      case "--repeat": o.repeat = num("repeat", take(), 1, 100); break;
      case "--tmp": o.tmp = take(); break;
      case "--json": o.json = take(); break;
      case "--plot": o.plot = take(); break;
      case "--sweep-plot": o.sweepPlot = take(); break;
      case "--cpu-prof": o.cpuProf = take(); break;
      case "--trace": o.trace = take(); break;
      case "--node-args": o.nodeArgs = take().split(/\s+/).filter((a) => a !== ""); break;
      case "--hosts":
        o.hosts = take().split(",").map((c) => Math.floor(num("hosts", c.trim(), 1, 64)));
        break;
      case "--redis-cluster": o.redisCluster = true; break;
      case "--redis-timeout":
        o.redisTimeout = take();
        if (!/^[0-9]{1,9}(ms|s)?$/.test(o.redisTimeout)) throw new Error(`bad --redis-timeout (expected e.g. 50ms or 1s)\n${USAGE}`);
        break;
      case "--pause-store": o.pauseStore = num("pause-store", take(), 1, 300); break;
      case "--pause-plot": o.pausePlot = take(); break;
      case "--metrics": {
        const v = take();
        if (v !== "off" && v !== "on" && v !== "both") throw new Error(`bad value for --metrics: ${v} (expected off, on or both)\n${USAGE}`);
        o.metrics = v;
        break;
      }
      case "--baseline": o.baseline = take(); break;
      case "--help": case "-h": throw new Error(USAGE);
      default: throw new Error(`unknown option ${arg}\n${USAGE}`);
    }
  }
  if (o.redisCluster) o.impls = o.impls.map((i) => (i === "ours-redis" ? "ours-redis-cluster" : i === "ours-valkey" ? "ours-valkey-cluster" : i));
  if (o.pauseStore !== undefined && o.hosts === undefined) o.hosts = [4];
  return o;
}

