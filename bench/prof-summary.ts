/**
 * prof-summary.ts - read a V8 .cpuprofile (node --cpu-prof) and print where
 *                   the time went: self time by function and by file, and
 *                   total (inclusive) time of the project's own functions.
 * Owns: the profile tree walk and the tables.
 * Not here: taking the profile (bench/run.ts --cpu-prof starts our daemon
 *           with node --cpu-prof).
 * See also: docs/benchmarks.md (profile findings)
 *
 * Usage: node dist/bench/prof-summary.js FILE.cpuprofile [--top 30] [--window FROM_S TO_S]
 */

import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfLine {
  name: string;
  selfMs: number;
  totalMs: number;
}

// shortUrl - a file url without the repository prefix
function shortUrl(url: string): string {
  if (url === "") return "(native)";
  const i = url.indexOf("/dist/");
  if (i >= 0) return url.slice(i + 1);
  const nm = url.indexOf("/node_modules/");
  if (nm >= 0) return url.slice(nm + 1);
  return url.replace(/^file:\/\//, "");
}

/**
 * summarizeProfile - self and inclusive ms per function and per file; with a
 * window [fromSec, toSec) only the samples taken in it (seconds since the
 * profile's start).
 */
export function summarizeProfile(p: Profile, window?: [number, number]):
  { byFunction: ProfLine[]; byFile: ProfLine[]; totalMs: number } {
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  // sample time per node from samples/timeDeltas (more exact than hitCount)
  const selfUs = new Map<number, number>();
  if (p.samples && p.timeDeltas) {
    let t = 0;
    for (let i = 0; i < p.samples.length; i++) {
      t += p.timeDeltas[i] ?? 0;
      if (window && (t < window[0] * 1e6 || t >= window[1] * 1e6)) continue;
      const id = p.samples[i]!;
      const dt = p.timeDeltas[i + 1] ?? 0;
      selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
    }
  } else {
    const per = p.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0);
    for (const n of p.nodes) selfUs.set(n.id, ((n.hitCount ?? 0) / Math.max(1, per)) * (p.endTime - p.startTime));
  }
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const fn = new Map<string, ProfLine>();
  const file = new Map<string, ProfLine>();
  let totalUs = 0;
  const keyOf = (n: ProfileNode): string =>
    `${n.callFrame.functionName || "(anonymous)"} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  for (const n of p.nodes) {
    const us = selfUs.get(n.id) ?? 0;
    totalUs += us;
    if (us === 0) continue;
    const k = keyOf(n);
    const f = fn.get(k) ?? { name: k, selfMs: 0, totalMs: 0 };
    f.selfMs += us / 1000;
    fn.set(k, f);
    const fk = shortUrl(n.callFrame.url);
    const g = file.get(fk) ?? { name: fk, selfMs: 0, totalMs: 0 };
    g.selfMs += us / 1000;
    file.set(fk, g);
    // inclusive: credit each distinct function on the stack once
    const seen = new Set<string>();
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
      const a = byId.get(id)!;
      const ak = keyOf(a);
      if (seen.has(ak)) continue;
      seen.add(ak);
      const e = fn.get(ak) ?? { name: ak, selfMs: 0, totalMs: 0 };
      e.totalMs += us / 1000;
      fn.set(ak, e);
    }
  }
  return {
    byFunction: [...fn.values()],
    byFile: [...file.values()].sort((a, b) => b.selfMs - a.selfMs),
    totalMs: totalUs / 1000,
  };
}

// main - print the tables of one profile
function main(argv: string[]): void {
  const file = argv[0];
  if (file === undefined) {
    process.stderr.write("usage: node dist/bench/prof-summary.js FILE.cpuprofile [--top N] [--window FROM_S TO_S]\n");
    process.exitCode = 2;
    return;
  }
  let top = 30;
  let window: [number, number] | undefined;
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === "--top") top = Number(argv[++i]);
    else if (argv[i] === "--window") window = [Number(argv[++i]), Number(argv[++i])];
  }
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const s = summarizeProfile(p, window);
  const pct = (ms: number) => `${((ms / s.totalMs) * 100).toFixed(1).padStart(5)}%`;
  process.stdout.write(`profile ${file}: ${s.totalMs.toFixed(0)} ms sampled`
    + `${window ? ` in ${window[0]}-${window[1]} s` : ""}\n\nself time by function:\n`);
  for (const l of [...s.byFunction].sort((a, b) => b.selfMs - a.selfMs).slice(0, top))
    process.stdout.write(`${pct(l.selfMs)} ${l.selfMs.toFixed(0).padStart(7)} ms  ${l.name}\n`);
  process.stdout.write(`\nself time by file:\n`);
  for (const l of s.byFile.slice(0, top)) process.stdout.write(`${pct(l.selfMs)} ${l.selfMs.toFixed(0).padStart(7)} ms  ${l.name}\n`);
  process.stdout.write(`\ninclusive time of the project's functions (dist/src):\n`);
  for (const l of s.byFunction.filter((x) => x.name.includes("dist/src/")).sort((a, b) => b.totalMs - a.totalMs).slice(0, top))
    process.stdout.write(`${pct(l.totalMs)} ${l.totalMs.toFixed(0).padStart(7)} ms  ${l.name}\n`);
}

if (process.argv[1] !== undefined && /prof-summary\.js$/.test(process.argv[1])) {
  process.stdout.on("error", () => undefined); // output cut short (| head)
  main(process.argv.slice(2));
}
