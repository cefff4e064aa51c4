/**
 * Test harness in the style of tinygrad's helper_test_op: run an op on the GPU and its CPU reference
 * (test/reference, f64), compare forward outputs, then compare the GPU's gradients with central finite
 * differences of the f64 reference for a random upstream gradient.
 */
import { afterAll, expect } from 'vitest';
import { Device } from '../src/engine/device.js';
import { backward, tidy } from '../src/engine/tape.js';
import { Tensor } from '../src/engine/tensor.js';

let shared: Promise<Device> | null = null;

/** One device per test file, destroyed when the file's tests end. */
export function useDevice(): () => Promise<Device> {
  afterAll(async () => {
    if (shared) (await shared).destroy();
    shared = null;
  });
  return () => (shared ??= Device.create());
}

/** Seeded uniform random numbers (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randn(n: number, r: () => number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

/** max |a - b| / max(max |b|, floor): a relative error that does not blow up on entries near zero. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-3): number {
  expect(a.length).toBe(b.length);
  let num = 0;
  let den = floor;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-4, what = 'values'): void {
  const e = relError(actual, expected);
  if (!(e <= tol)) {
    let worst = 0;
    for (let i = 0; i < actual.length; i++) if (Math.abs(actual[i] - expected[i]) > Math.abs(actual[worst] - expected[worst])) worst = i;
    throw new Error(`${what}: relative error ${e.toExponential(2)} > ${tol} (worst at ${worst}: ${actual[worst]} vs ${expected[worst]})`);
  }
}

/** Central finite differences of sum(w * f(xs)) w.r.t. xs[k], in f64. */
export function finiteDiff(
  f: (xs: Float64Array[]) => Float64Array,
  xs: Float64Array[],
  w: Float64Array,
  k: number,
  h = 1e-5,
): Float64Array {
  const g = new Float64Array(xs[k].length);
  const dot = (y: Float64Array) => y.reduce((s, v, i) => s + v * w[i], 0);
  for (let i = 0; i < g.length; i++) {
    const orig = xs[k][i];
    xs[k][i] = orig + h;
    const up = dot(f(xs));
    xs[k][i] = orig - h;
    const down = dot(f(xs));
    xs[k][i] = orig;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

export interface OpCase {
  /** Input shapes; each input gets seeded normal values unless `inputs` gives them. */
  shapes: number[][];
  inputs?: Float64Array[];
  /** Inputs that do not take a gradient (e.g. indices); by position. */
  noGrad?: number[];
  gpu: (xs: Tensor[]) => Tensor;
  cpu: (xs: Float64Array[]) => Float64Array;
  /** Forward tolerance (relative error) and gradient tolerance. */
  fwdTol?: number;
  gradTol?: number;
  seed?: number;
}

/** Forward against the f64 reference, backward against f64 central differences of the reference. */
export async function checkOp(device: Device, c: OpCase): Promise<void> {
  const r = rng(c.seed ?? 1);
  const xs = c.inputs ?? c.shapes.map((s) => randn(s.reduce((a, b) => a * b, 1), r));
  const expected = c.cpu(xs.map((x) => Float64Array.from(x)));
  const w = randn(expected.length, r);
  const skip = new Set(c.noGrad ?? []);
  const grads = await tidy(device, () => {
    const ts = xs.map((x, k) => Tensor.from(device, x, c.shapes[k]).requireGrad(!skip.has(k)));
    const y = c.gpu(ts);
    const seed = Tensor.from(device, w, y.shape);
    backward(y, seed);
    return { y, grads: ts.map((t) => t.grad) };
  });
  const y = await grads.y.readF32();
  expectClose(y, expected, c.fwdTol ?? 1e-4, 'forward');
  for (let k = 0; k < xs.length; k++) {
    if (skip.has(k)) continue;
    const g = grads.grads[k];
    expect(g, `gradient of input ${k}`).toBeTruthy();
    const fd = finiteDiff(c.cpu, xs.map((x) => Float64Array.from(x)), w, k);
    expectClose(await g!.readF32(), fd, c.gradTol ?? 1e-3, `gradient of input ${k}`);
    g!.dispose();
  }
  grads.y.dispose();
}
