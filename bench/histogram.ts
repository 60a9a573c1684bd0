/**
 * histogram.ts - latency histogram of the load generator: log buckets of 1 %
 *                width, mergeable across connections and processes.
 * Owns: recording a latency in microseconds, count/min/max/mean, percentiles
 *       (nearest rank), merging, and a compact JSON form for IPC.
 * Not here: timing itself (bench/load.ts), presentation (bench/report.ts).
 * See also: bench/load.ts, bench/test/histogram.test.ts
 *
 * Bucket i >= 1 holds values in [G^(i-1), G^i) microseconds with G = 1.01;
 * bucket 0 holds values below 1 us. A percentile is answered with the
 * geometric middle of its bucket, clamped to the exact min and max seen, so
 * its error is at most half a bucket (0.5 %). 2,048 buckets reach beyond
 * 10^8 us (100 s), which is far past any request timeout.
 */

const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
export const HISTOGRAM_BUCKETS = 2048;

export interface HistogramJson {
  count: number;
  min: number;
  max: number;
  sum: number;
  /** [bucket index, count] pairs of the non-empty buckets */
  buckets: Array<[number, number]>;
}

export class LatencyHistogram {
  readonly counts = new Float64Array(HISTOGRAM_BUCKETS);
  count = 0;
  min = Number.POSITIVE_INFINITY;
  max = 0;
  sum = 0;

  /** bucketOf - the bucket index of a value in microseconds */
  static bucketOf(us: number): number {
    if (!(us >= 1)) return 0;
    const i = Math.floor(Math.log(us) / LOG_GROWTH) + 1;
    return i < HISTOGRAM_BUCKETS ? i : HISTOGRAM_BUCKETS - 1;
  }

  /** bucketMiddle - the value reported for a bucket (geometric middle) */
  static bucketMiddle(i: number): number {
    if (i === 0) return 0.5;
    return Math.pow(GROWTH, i - 0.5);
  }

  /** record - add one latency, in microseconds */
  record(us: number): void {
    this.counts[LatencyHistogram.bucketOf(us)]! += 1;
    this.count++;
    this.sum += us;
    if (us < this.min) this.min = us;
    if (us > this.max) this.max = us;
  }

  /** merge - add every sample of another histogram to this one */
  merge(other: LatencyHistogram): this {
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.sum += other.sum;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
    return this;
  }

  /** mean - the exact mean in microseconds (0 when empty) */
  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }

  /**
   * percentile - nearest-rank percentile p (0 < p <= 100) in microseconds:
   * the value of the sample of rank ceil(p/100 * count). 0 when empty.
   */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    if (!(p > 0 && p <= 100)) throw new RangeError(`percentile ${p} out of range (0, 100]`);
    const rank = Math.max(1, Math.ceil((p / 100) * this.count - 1e-9));
    if (rank >= this.count) return this.max;
    let seen = 0;
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, LatencyHistogram.bucketMiddle(i)));
    }
    return this.max;
  }

  toJSON(): HistogramJson {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) if (this.counts[i]! > 0) buckets.push([i, this.counts[i]!]);
    return { count: this.count, min: this.count === 0 ? 0 : this.min, max: this.max, sum: this.sum, buckets };
  }

  static fromJSON(j: HistogramJson): LatencyHistogram {
    const h = new LatencyHistogram();
    for (const [i, n] of j.buckets) h.counts[i]! += n;
    h.count = j.count;
    h.sum = j.sum;
    h.min = j.count === 0 ? Number.POSITIVE_INFINITY : j.min;
    h.max = j.max;
    return h;
  }
}

/** exactPercentile - nearest-rank percentile of raw samples (reference for tests and small sets) */
export function exactPercentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length - 1e-9));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}
