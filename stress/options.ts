/**
 * options.ts - the command lines of `npm run fuzz` and `npm run soak`.
 * Owns: option names, defaults, checking values, the usage texts.
 * Not here: running anything (stress/fuzz.ts, stress/soak.ts).
 * See also: docs/reliability.md
 */

import { tmpdir } from "node:os";
import { join } from "node:path";

export interface StressOptions {
  /** How long the load runs, minutes. */
  minutes: number;
  /** Connections (fuzz) or clients (soak) at once. */
  connections: number;
  /** Seed of the random choices (a run can be repeated). */
  seed: number;
  /** Where failing cases and samples are written. */
  out: string;
  /** Write the figures as JSON to this file too. */
  json: string | undefined;
}

const USAGE = {
  fuzz: "usage: npm run fuzz -- --minutes N [--connections 8] [--seed 1] [--out DIR] [--json FILE]",
  soak: "usage: npm run soak -- --minutes N [--clients 64] [--seed 1] [--out DIR] [--json FILE]",
};

/** parseStressArgs - argv to options for `tool`; throws with the usage on a mistake. */
export function parseStressArgs(tool: "fuzz" | "soak", argv: string[]): StressOptions {
  const o: StressOptions = {
    minutes: 1,
    connections: tool === "fuzz" ? 8 : 64,
    seed: 1,
    out: join(tmpdir(), `tlsmgr-${tool}-${process.pid}`),
    json: undefined,
  };
  const num = (name: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (v === undefined || v === "" || !Number.isFinite(n) || n < min || n > max)
      throw new Error(`bad value for --${name}: ${v ?? "(none)"} (expected ${min}..${max})\n${USAGE[tool]}`);
    return n;
  };
  const countName = tool === "fuzz" ? "--connections" : "--clients";
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    if (a === "--minutes") o.minutes = num("minutes", v, 0.05, 1440);
    else if (a === countName) o.connections = Math.floor(num(countName.slice(2), v, 1, 1000));
    else if (a === "--seed") o.seed = Math.floor(num("seed", v, 0, 2 ** 32 - 1));
    else if (a === "--out" && v) o.out = v;
    else if (a === "--json" && v) o.json = v;
    else if (a === "--help" || a === "-h") throw new Error(USAGE[tool]);
    else throw new Error(`unknown argument: ${a}\n${USAGE[tool]}`);
    i++;
  }
  return o;
}
