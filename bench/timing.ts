/**
 * Timing: warm-up runs (excluded; the first call compiles pipelines), then N timed runs, each one awaited
 * to completion by the peer (GPU peers resolve only after their queue is done). N is capped by a time
 * budget per measurement so slow peers finish; the count actually run is reported. The harness makes a run
 * several calls back to back where one call is short (bench/main.ts).
 */

export interface TimingOptions {
  warmup: number;
  runs: number;
  /** Stop adding timed runs once their estimated total passes this (at least `minRuns` run). */
  budgetMs: number;
  minRuns?: number;
}

export interface Timing {
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Quartiles of the timed runs. */
  q1Ms: number;
  q3Ms: number;
  n: number;
  warmup: number;
}

/** The q-quantile of sorted samples, interpolated (q = 0.5: the median). */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 1) return sorted[0];
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarise(samples: number[], warmup: number): Timing {
  const s = [...samples].sort((a, b) => a - b);
  return { medianMs: quantile(s, 0.5), minMs: s[0], maxMs: s[s.length - 1], q1Ms: quantile(s, 0.25), q3Ms: quantile(s, 0.75), n: s.length, warmup };
}

/** Half the interquartile range as a fraction of the median: the spread the table prints as ±%. */
export function spread(t: Timing): number {
  return t.medianMs > 0 ? (t.q3Ms - t.q1Ms) / 2 / t.medianMs : 0;
}

export async function measure(fn: () => Promise<void>, opts: TimingOptions): Promise<Timing> {
  const minRuns = Math.min(opts.minRuns ?? 3, opts.runs);
  let last = 0;
  let warm = 0;
  let warmSpent = 0;
  // Warm-ups (the first call compiles; a caller that has already called passes fewer), the second and later
  // only while they cost under half the budget (slow peers).
  while (warm < opts.warmup && (warm === 0 || warmSpent < opts.budgetMs / 2)) {
    const t0 = performance.now();
    await fn();
    last = performance.now() - t0;
    warmSpent += last;
    warm++;
  }
  const samples: number[] = [];
  let spent = 0;
  while (samples.length < opts.runs) {
    if (samples.length >= minRuns && spent + (samples.length ? spent / samples.length : last) > opts.budgetMs) break;
    const t0 = performance.now();
    await fn();
    const dt = performance.now() - t0;
    samples.push(dt);
    spent += dt;
  }
  return summarise(samples, warm);
}

/**
 * Largest power of two <= `max` whose estimated call time (`fixedMs` + batch * `msPerItem`) fits `targetMs`
 * (at least 1); `max` itself when it fits.
 */
export function fitBatch(msPerItem: number, targetMs: number, max: number, fixedMs = 0): number {
  const fits = (b: number) => fixedMs + b * msPerItem <= targetMs;
  if (fits(max)) return max;
  let b = 1;
  while (b * 2 <= max && fits(b * 2)) b *= 2;
  return b;
}

/**
 * A call's cost as fixed + per item, from calls timed at two batch sizes. A call at a small batch is mostly
 * fixed cost on a fast engine (dispatches, small kernels), so scaling it alone overstates the per-item cost.
 */
export function callModel(b1: number, ms1: number, b2: number, ms2: number): { fixedMs: number; msPerItem: number } {
  if (b2 === b1) return { fixedMs: 0, msPerItem: ms1 / b1 };
  const msPerItem = (ms2 - ms1) / (b2 - b1);
  // Noise can tilt the line the wrong way: then scale the larger call alone (the cautious reading).
  if (!(msPerItem > 0)) return { fixedMs: 0, msPerItem: ms2 / b2 };
  return { fixedMs: Math.min(Math.max(ms1 - msPerItem * b1, 0), ms1), msPerItem };
}
