/**
 * Timing: warm-up calls (excluded; the first one compiles pipelines), then N timed calls, each one
 * awaited to completion by the peer (GPU peers resolve only after their queue is done). N is capped
 * by a time budget per measurement so slow peers finish; the count actually run is reported.
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

function quantile(sorted: number[], q: number): number {
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
  // At least one warm-up (it compiles); more only while they cost under half the budget (slow peers).
  while (warm < Math.max(1, opts.warmup) && (warm === 0 || warmSpent < opts.budgetMs / 2)) {
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

/** Largest power of two <= `max` whose estimated call time fits `targetMs` (at least 1). */
export function fitBatch(msPerItem: number, targetMs: number, max: number): number {
  let b = 1;
  while (b * 2 <= max && b * 2 * msPerItem <= targetMs) b *= 2;
  if (max <= targetMs / Math.max(msPerItem, 1e-9)) b = max;
  return b;
}
