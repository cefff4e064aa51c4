/**
 * The agreement check: every peer computes the same outputs (and gradients) from the same weights
 * and inputs; each is compared with the reference peer's (unroll where it runs the case, else the
 * first peer that did, tfjs-cpu in the default order). The error of an array is
 * max |a - ref| / max |ref|: relative to the array's scale, so one tolerance serves logits, losses
 * and gradients of every size. A peer above tolerance is reported as disagreeing, not timed as a win.
 */

/** Forward values: f32 sums in a different order differ by ~1e-6 relative; recurrence and layer norm amplify that. */
export const FORWARD_TOLERANCE = 1e-3;
/** Gradients pass back through T steps of layer norm and ReLU, whose kinks amplify the forward's rounding. */
export const GRADIENT_TOLERANCE = 1e-2;

export function toleranceFor(key: string): number {
  return /^(grad\.|d)/.test(key) ? GRADIENT_TOLERANCE : FORWARD_TOLERANCE;
}

export interface KeyError {
  key: string;
  error: number;
  tolerance: number;
  ok: boolean;
}

export interface Agreement {
  ok: boolean;
  /** The largest error relative to its tolerance. */
  worst: KeyError | null;
  errors: KeyError[];
  /** Keys the reference has and the peer lacks, or with mismatched lengths, or non-finite values. */
  problems: string[];
}

export function relativeError(a: Float32Array, ref: Float32Array): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(a[i] - ref[i]);
    if (!(d <= diff)) diff = d; // also catches NaN
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  if (Number.isNaN(diff)) return Infinity;
  return scale > 0 ? diff / scale : diff;
}

export function compare(out: Record<string, Float32Array>, ref: Record<string, Float32Array>): Agreement {
  const errors: KeyError[] = [];
  const problems: string[] = [];
  for (const [key, r] of Object.entries(ref)) {
    const a = out[key];
    if (!a) {
      problems.push(`${key}: missing`);
      continue;
    }
    if (a.length !== r.length) {
      problems.push(`${key}: ${a.length} values, reference has ${r.length}`);
      continue;
    }
    const error = relativeError(a, r);
    const tolerance = toleranceFor(key);
    errors.push({ key, error, tolerance, ok: error <= tolerance });
  }
  let worst: KeyError | null = null;
  for (const e of errors) if (!worst || e.error / e.tolerance > worst.error / worst.tolerance) worst = e;
  return { ok: problems.length === 0 && errors.every((e) => e.ok), worst, errors, problems };
}

export function describeAgreement(a: Agreement): string {
  if (a.problems.length) return a.problems.join('; ');
  if (!a.worst) return 'nothing compared';
  return `${a.worst.key} ${a.worst.error.toExponential(1)} (tol ${a.worst.tolerance.toExponential(0)})`;
}
