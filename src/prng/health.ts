/**
 * health.ts - NIST SP 800-90B continuous health tests (section 4.4) on external source bytes.
 * Owns: the Repetition Count Test (4.4.1) and the Adaptive Proportion Test
 *       (4.4.2, window 512 for non-binary samples), their cutoffs computed from
 *       the assessed min-entropy per byte H and the false-alarm rate
 *       alpha = 2^-20, and their state, which runs on across reads (the tests
 *       are continuous: a stuck source keeps failing while it stays stuck).
 * Not here: what happens to bytes that fail (prng/pool.ts discards them).
 * See also: SP 800-90B sections 4.4.1, 4.4.2; prng/source.ts
 *
 * A source is an untrusted input to the pool (the pool always adds operating
 * system randomness), so H is a modest claim: DEFAULT_SOURCE_MIN_ENTROPY = 2
 * bits per byte gives an RCT cutoff of 11 identical bytes in a row and an APT
 * cutoff of 177 copies of one value in a window of 512.
 */

/** Assessed min-entropy per source byte assumed by default (bits). */
export const DEFAULT_SOURCE_MIN_ENTROPY = 2;
/** False-alarm probability per test: alpha = 2^-ALPHA_EXP (90B recommends 2^-20 .. 2^-40). */
export const HEALTH_ALPHA_EXP = 20;
/** APT window for non-binary samples (90B 4.4.2). */
export const APT_WINDOW = 512;

export type HealthTestName = "repetition count" | "adaptive proportion";

export interface HealthVerdict {
  ok: boolean;
  /** The test that failed (when !ok). */
  failed?: HealthTestName;
}

/** rctCutoff - C = 1 + ceil(alphaExp / H) (90B 4.4.1) */
export function rctCutoff(minEntropy: number, alphaExp = HEALTH_ALPHA_EXP): number {
  return 1 + Math.ceil(alphaExp / minEntropy);
}

/** logBinomialPmf - ln P(X = k) for X ~ Binomial(n, p) */
function logBinomialPmf(n: number, k: number, p: number, lnFact: number[]): number {
  return lnFact[n]! - lnFact[k]! - lnFact[n - k]! + k * Math.log(p) + (n - k) * Math.log1p(-p);
}

/**
 * aptCutoff - C = 1 + CRITBINOM(W, 2^-H, 1 - alpha) (90B 4.4.2): the smallest
 * count c with P(X > c - 1) <= alpha, computed by summing the upper tail.
 */
export function aptCutoff(minEntropy: number, window = APT_WINDOW, alphaExp = HEALTH_ALPHA_EXP): number {
  const p = 2 ** -minEntropy;
  const alpha = 2 ** -alphaExp;
  const lnFact: number[] = [0];
  for (let i = 1; i <= window; i++) lnFact[i] = lnFact[i - 1]! + Math.log(i);
  // CRITBINOM(n, p, 1 - alpha) = least k with CDF(k) >= 1 - alpha, i.e. upper tail P(X > k) <= alpha.
  let tail = 0; // P(X > k), accumulated from the top down
  for (let k = window; k >= 0; k--) {
    const next = tail + Math.exp(logBinomialPmf(window, k, p, lnFact)); // P(X > k - 1)
    if (next > alpha) return 1 + k;
    tail = next;
  }
  return 1;
}

/** SourceHealth - continuous RCT and APT over one source's bytes */
export class SourceHealth {
  readonly rctCutoff: number;
  readonly aptCutoff: number;
  readonly window: number;
  #rctLast = -1;
  #rctCount = 0;
  #aptRef = -1;
  #aptCount = 0;
  #aptSeen = 0;

  constructor(opts: { minEntropy?: number; alphaExp?: number; window?: number } = {}) {
    const h = opts.minEntropy ?? DEFAULT_SOURCE_MIN_ENTROPY;
    if (!(h > 0 && h <= 8)) throw new RangeError(`min-entropy ${h} outside (0, 8] bits per byte`);
    const a = opts.alphaExp ?? HEALTH_ALPHA_EXP;
    this.window = opts.window ?? APT_WINDOW;
    this.rctCutoff = rctCutoff(h, a);
    this.aptCutoff = aptCutoff(h, this.window, a);
  }

  /**
   * check - run both tests over the bytes of one read, in order; the verdict
   * is a failure if either test fails anywhere in them. State carries over.
   */
  check(bytes: Uint8Array): HealthVerdict {
    let failed: HealthTestName | undefined;
    for (const b of bytes) {
      // 4.4.1 Repetition Count Test
      if (b === this.#rctLast) {
        this.#rctCount += 1;
        if (this.#rctCount >= this.rctCutoff) failed ??= "repetition count";
      } else {
        this.#rctLast = b;
        this.#rctCount = 1;
      }
      // 4.4.2 Adaptive Proportion Test
      if (this.#aptSeen === 0) {
        this.#aptRef = b;
        this.#aptCount = 1;
        this.#aptSeen = 1;
      } else {
        if (b === this.#aptRef) this.#aptCount += 1;
        this.#aptSeen += 1;
      }
      if (this.#aptCount >= this.aptCutoff) failed ??= "adaptive proportion";
      if (this.#aptSeen >= this.window) this.#aptSeen = 0;
    }
    return failed ? { ok: false, failed } : { ok: true };
  }
}
