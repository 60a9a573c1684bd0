/**
 * options.test.ts - the command line of npm run bench.
 * See also: bench/options.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseBenchArgs } from "../options.js";
import { DEFAULT_MIX } from "../mix.js";

test("defaults: 1, 8 and 64 clients, 10 s, 20,000 entries, the default mix, ours and postfix", () => {
  const o = parseBenchArgs([]);
  assert.deepEqual(o.clients, [1, 8, 64]);
  assert.equal(o.durationSec, 10);
  assert.equal(o.prefill, 20_000);
  assert.deepEqual(o.mix, DEFAULT_MIX);
  assert.deepEqual(o.impls, ["ours", "postfix"]);
  assert.equal(o.sweep, false);
  assert.equal(o.sweepEntries, 1_000_000);
  assert.equal(o.repeat, 1);
});

test("every option, in both --name value and --name=value forms", () => {
  const o = parseBenchArgs(["--clients", "2,16", "--duration=3", "--warmup", "0", "--prefill", "500",
    "--mix", "lookup=1,seed=1", "--impl=ours,postfix-lmdb,node-floor", "--session-size", "100-200", "--seed", "9",
    "--sweep", "--sweep-entries", "20000", "--sweep-timeout=300", "--sweep-clients", "4", "--repeat", "3",
    "--tmp", "/tmp", "--json", "out.json", "--plot", "p.png", "--cpu-prof", "prof"]);
  assert.deepEqual(o.clients, [2, 16]);
  assert.equal(o.durationSec, 3);
  assert.equal(o.warmupSec, 0);
  assert.equal(o.prefill, 500);
  assert.deepEqual(o.mix, { lookup: 1, seed: 1 });
  assert.deepEqual(o.impls, ["ours", "postfix-lmdb", "node-floor"]);
  assert.equal(o.sessionMin, 100);
  assert.equal(o.sessionMax, 200);
  assert.equal(o.seed, 9);
  assert.equal(o.sweep, true);
  assert.equal(o.sweepOnly, false);
  assert.equal(o.sweepEntries, 20_000);
  assert.equal(o.sweepTimeout, 300);
  assert.equal(o.sweepClients, 4);
  assert.equal(o.repeat, 3);
  assert.equal(o.tmp, "/tmp");
  assert.equal(o.json, "out.json");
  assert.equal(o.plot, "p.png");
  assert.equal(o.cpuProf, "prof");
  assert.equal(parseBenchArgs(["--sweep-only"]).sweepOnly, true);
});

test("mistakes are refused with the usage", () => {
  assert.throws(() => parseBenchArgs(["--clients", "0"]), /bad value for --clients.*\n.*usage/s);
  assert.throws(() => parseBenchArgs(["--impl", "exim"]), /unknown implementation "exim"/);
  assert.throws(() => parseBenchArgs(["--duration"]), /needs a value/);
  assert.throws(() => parseBenchArgs(["--sweep-timeout", "60"]), /bad value for --sweep-timeout/);
  assert.throws(() => parseBenchArgs(["--session-size", "4096-1024"]), /MAX < MIN/);
  assert.throws(() => parseBenchArgs(["--mix", "lookup=x"]), /weight must be a number/);
  assert.throws(() => parseBenchArgs(["--frobnicate"]), /unknown option --frobnicate/);
});

test("farm options: host counts, a Cluster instead of one server, the table timeout, the pause", () => {
  const o = parseBenchArgs(["--impl", "ours,ours-redis,ours-valkey", "--hosts", "1,2,4", "--redis-cluster", "--redis-timeout", "50ms"]);
  assert.deepEqual(o.hosts, [1, 2, 4]);
  assert.deepEqual(o.impls, ["ours", "ours-redis-cluster", "ours-valkey-cluster"]);
  assert.equal(o.redisTimeout, "50ms");
  assert.equal(o.pauseStore, undefined);
  const p = parseBenchArgs(["--impl", "ours-redis", "--pause-store", "10"]);
  assert.equal(p.pauseStore, 10);
  assert.deepEqual(p.hosts, [4], "a degradation run is a farm run, 4 hosts unless told");
  assert.throws(() => parseBenchArgs(["--hosts", "0"]), /bad value for --hosts/);
  assert.throws(() => parseBenchArgs(["--redis-timeout", "soon"]), /bad --redis-timeout/);
});

test("--metrics off|on|both (default off) and --baseline TREE", () => {
  assert.equal(parseBenchArgs([]).metrics, "off");
  assert.equal(parseBenchArgs([]).baseline, undefined);
  const o = parseBenchArgs(["--metrics", "both", "--baseline=/tmp/base"]);
  assert.equal(o.metrics, "both");
  assert.equal(o.baseline, "/tmp/base");
  assert.equal(parseBenchArgs(["--metrics=on"]).metrics, "on");
  assert.throws(() => parseBenchArgs(["--metrics", "sometimes"]), /bad value for --metrics: sometimes \(expected off, on or both\)/);
});
