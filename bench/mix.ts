/**
 * mix.ts - the request mix of the load generator and its random numbers.
 * Owns: parsing `--mix lookup=60,update=25,tktkey=10,seed=5`, choosing the
 *       next request kind by weight, and a small seeded PRNG so that a run's
 *       request sequence can be repeated.
 * Not here: what each request carries (bench/workload.ts, bench/wire.ts).
 * See also: bench/load.ts, bench/test/mix.test.ts
 */

/** The request kinds the generator sends (Postfix's request names). */
export const REQUEST_KINDS = ["lookup", "update", "tktkey", "seed", "delete", "policy"] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

export function isRequestKind(s: string): s is RequestKind {
  return (REQUEST_KINDS as readonly string[]).includes(s);
}

/** Weights by kind; kinds absent are not sent. */
export type Mix = Partial<Record<RequestKind, number>>;

export const DEFAULT_MIX: Mix = { lookup: 60, update: 25, tktkey: 10, seed: 5 };

/** parseMix - "lookup=60,update=25,..." to weights; throws on unknown kinds or bad numbers */
export function parseMix(text: string): Mix {
  const mix: Mix = {};
  let total = 0;
  for (const part of text.split(",")) {
    const item = part.trim();
    if (item === "") continue;
    const eq = item.indexOf("=");
    if (eq < 0) throw new Error(`bad mix item "${item}": expected kind=weight`);
    const kind = item.slice(0, eq).trim();
    const weight = Number(item.slice(eq + 1).trim());
    if (!isRequestKind(kind)) throw new Error(`bad mix item "${item}": unknown request kind (one of ${REQUEST_KINDS.join(", ")})`);
    if (!Number.isFinite(weight) || weight < 0 || item.slice(eq + 1).trim() === "")
      throw new Error(`bad mix item "${item}": weight must be a number >= 0`);
    if (mix[kind] !== undefined) throw new Error(`bad mix: "${kind}" given twice`);
    mix[kind] = weight;
    total += weight;
  }
  if (!(total > 0)) throw new Error(`bad mix "${text}": the weights add up to 0`);
  return mix;
}

/** formatMix - the canonical text of a mix */
export function formatMix(mix: Mix): string {
  return REQUEST_KINDS.filter((k) => (mix[k] ?? 0) > 0).map((k) => `${k}=${mix[k]}`).join(",");
}

/** MixPicker - turns a uniform number in [0, 1) into a request kind, in proportion to the weights */
export class MixPicker {
  readonly #kinds: RequestKind[] = [];
  readonly #bounds: number[] = [];

  constructor(mix: Mix) {
    let total = 0;
    for (const k of REQUEST_KINDS) total += mix[k] ?? 0;
    if (!(total > 0)) throw new Error("mix has no request kind with a weight above 0");
    let acc = 0;
    for (const k of REQUEST_KINDS) {
      const w = mix[k] ?? 0;
      if (w <= 0) continue;
      acc += w / total;
      this.#kinds.push(k);
      this.#bounds.push(acc);
    }
    this.#bounds[this.#bounds.length - 1] = 1;
  }

  /** pick - the kind for u in [0, 1) */
  pick(u: number): RequestKind {
    const b = this.#bounds;
    for (let i = 0; i < b.length; i++) if (u < b[i]!) return this.#kinds[i]!;
    return this.#kinds[this.#kinds.length - 1]!;
  }

  /** kinds - the kinds with a weight above 0, in REQUEST_KINDS order */
  get kinds(): readonly RequestKind[] {
    return this.#kinds;
  }
}

/** Rng - xorshift128+ style generator over 32-bit halves (fast, seedable, not for secrets) */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    // splitmix32 to spread a small seed over the state
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = next();
    this.#b = next();
    this.#c = next();
    this.#d = next() | 1;
  }

  /** u32 - the next 32-bit unsigned integer (xoshiro128**) */
  u32(): number {
    const r = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0;
    const t = this.#b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return r;
  }

  /** next - uniform in [0, 1) */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** int - uniform integer in [0, n) */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
