import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { GLOBAL_AVG_ROWS, avgPool2d, globalAvgPool, maxPool2d, maxPool2dBackward, maxPool2dForward, type PoolOptions } from '../src/kernels/pool.js';
import { backward, tidy } from '../src/engine/tape.js';
import { add } from '../src/kernels/elementwise.js';
import { Tensor } from '../src/engine/tensor.js';
import { checkOp, expectClose, randn, rng, useDevice } from './helpers.js';
import { avgPool2dRef, globalAvgPoolRef, maxPool2dRef, type PoolRefGeometry } from './reference/pool.js';

const device = useDevice();

type Case = { shape: [number, number, number, number]; kernel: [number, number]; stride: [number, number]; padding: [number, number] };

const cases: Case[] = [
  { shape: [1, 7, 11, 3], kernel: [2, 2], stride: [2, 2], padding: [0, 0] },
  { shape: [3, 7, 11, 13], kernel: [3, 3], stride: [2, 2], padding: [1, 1] },
  { shape: [3, 5, 6, 1], kernel: [3, 3], stride: [1, 1], padding: [1, 1] },
  { shape: [1, 7, 11, 3], kernel: [2, 2], stride: [1, 1], padding: [1, 1] },
  { shape: [3, 6, 7, 13], kernel: [2, 3], stride: [1, 2], padding: [1, 0] },
  { shape: [1, 1, 1, 1], kernel: [1, 1], stride: [1, 1], padding: [0, 0] },
  // C % 4 == 0: max pool's vec4 kernels ([2, 7, 6, 4]: a row left over, so the backward gathers per input;
  // [2, 6, 8, 8] and [1, 6, 9, 4]: windows that tile the input, so it scatters per output).
  { shape: [2, 7, 6, 4], kernel: [2, 2], stride: [2, 2], padding: [0, 0] },
  { shape: [2, 6, 8, 8], kernel: [2, 2], stride: [2, 2], padding: [0, 0] },
  { shape: [1, 6, 9, 4], kernel: [2, 3], stride: [2, 3], padding: [0, 0] },
  { shape: [1, 5, 7, 8], kernel: [3, 3], stride: [1, 2], padding: [1, 1] },
];

const geom = (c: Case): PoolRefGeometry => ({
  n: c.shape[0], h: c.shape[1], w: c.shape[2], c: c.shape[3],
  kh: c.kernel[0], kw: c.kernel[1], sh: c.stride[0], sw: c.stride[1], ph: c.padding[0], pw: c.padding[1],
});
const opts = (c: Case): PoolOptions => ({ kernel: c.kernel, stride: c.stride, padding: c.padding });
const name = (c: Case) => `[${c.shape}] kernel ${c.kernel} stride ${c.stride} padding ${c.padding}`;

/** Distinct values 0.01 apart, centred on 0 and shuffled: no near-ties, so finite differences of max are exact. */
function distinct(n: number, seed: number): Float64Array {
  const r = rng(seed);
  const v = Float64Array.from({ length: n }, (_, i) => (i - n / 2) * 0.01);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return v;
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe('maxPool2d', () => {
  for (const c of cases) {
    it(`forward, argmax and backward ${name(c)}`, async () => {
      const d = await device();
      const x = distinct(size(c.shape), 7);
      await checkOp(d, { shapes: [c.shape], inputs: [x], gpu: ([t]) => maxPool2d(t, opts(c)), cpu: ([a]) => maxPool2dRef(a, geom(c)).y });
      const t = Tensor.from(d, x, c.shape);
      const { y, argmax } = maxPool2dForward(t, opts(c));
      expect(Array.from(await argmax.read())).toEqual(Array.from(maxPool2dRef(x, geom(c)).argmax));
      for (const u of [t, y, argmax]) u.dispose();
    });
  }

  for (const [channels, k] of [[3, 3], [4, 3], [4, 2]]) it(`an input pooled twice: the second gradient is added into the first in place (${channels} channels, kernel ${k})`, async () => {
    // Kernel 3, stride 2, padding 1: overlapping windows; kernel 2: windows that tile the input.
    const c: Case = k === 3
      ? { shape: [2, 7, 6, channels], kernel: [3, 3], stride: [2, 2], padding: [1, 1] }
      : { shape: [2, 8, 6, channels], kernel: [2, 2], stride: [2, 2], padding: [0, 0] };
    await checkOp(await device(), {
      shapes: [c.shape],
      inputs: [distinct(size(c.shape), 11)],
      gpu: ([t]) => add(maxPool2d(t, opts(c)), maxPool2d(t, opts(c))),
      cpu: ([a]) => maxPool2dRef(a, geom(c)).y.map((v) => 2 * v),
    });
  });

  for (const channels of [3, 4]) it(`ties go to the first maximum in scan order; padding is -inf (${channels} channels)`, async () => {
    const d = await device();
    const c: Case = { shape: [2, 5, 7, channels], kernel: [3, 3], stride: [1, 2], padding: [1, 1] };
    // Constant negative planes: every window ties, and a zero padding would win if padding were not -inf.
    const x = Float64Array.from({ length: size(c.shape) }, (_, i) => -1 - (i % channels));
    const t = Tensor.from(d, x, c.shape);
    const { y, argmax, geometry } = maxPool2dForward(t, opts(c));
    const ref = maxPool2dRef(x, geom(c));
    expect(Array.from(await argmax.read())).toEqual(Array.from(ref.argmax));
    expect(Array.from(await y.readF32())).toEqual(Array.from(ref.y));
    // The gradient goes to the tie-winners only: each input sums the gradients of the outputs it won.
    const gy = Tensor.from(d, randn(y.size, rng(3)), y.shape);
    const gx = maxPool2dBackward(gy, argmax, geometry);
    const g = await gy.readF32();
    const expected = new Float64Array(t.size);
    ref.argmax.forEach((a, o) => {
      const n = Math.floor(o / (y.size / c.shape[0]));
      expected[(n * c.shape[1] * c.shape[2] + a) * c.shape[3] + (o % c.shape[3])] += g[o];
    });
    expectClose(await gx.readF32(), expected, 1e-6, 'tie gradient');
    for (const u of [t, y, argmax, gy, gx]) u.dispose();
  });

  it('backward is deterministic (bitwise equal across runs)', async () => {
    const d = await device();
    const shape = [3, 9, 10, 13];
    // Overlapping windows (stride 1) over coarsely rounded values: many inputs win several outputs, with ties.
    const x = Tensor.from(d, randn(size(shape), rng(5)).map((v) => Math.round(v * 2)), shape);
    const gy = Tensor.from(d, randn(size(shape), rng(6)), shape);
    const runs: Float32Array[] = [];
    for (let r = 0; r < 3; r++) {
      const { y, argmax, geometry } = maxPool2dForward(x, { kernel: 3, stride: 1, padding: 1 });
      const gx = maxPool2dBackward(gy, argmax, geometry);
      runs.push(await gx.readF32());
      for (const u of [y, argmax, gx]) u.dispose();
    }
    expect(Buffer.from(runs[1].buffer).equals(Buffer.from(runs[0].buffer))).toBe(true);
    expect(Buffer.from(runs[2].buffer).equals(Buffer.from(runs[0].buffer))).toBe(true);
    x.dispose(), gy.dispose();
  });
});

describe('avgPool2d', () => {
  for (const c of cases) {
    for (const countIncludePad of [true, false]) {
      if (!countIncludePad && c.padding.every((p) => p === 0)) continue;
      it(`forward and backward ${name(c)} countIncludePad ${countIncludePad}`, async () => {
        await checkOp(await device(), {
          shapes: [c.shape],
          gpu: ([t]) => avgPool2d(t, { ...opts(c), countIncludePad }),
          cpu: ([a]) => avgPool2dRef(a, geom(c), countIncludePad),
        });
      });
    }
  }
  it('stride defaults to the kernel and a number means a square', async () => {
    const c: Case = { shape: [3, 7, 11, 3], kernel: [3, 3], stride: [3, 3], padding: [0, 0] };
    await checkOp(await device(), { shapes: [c.shape], gpu: ([t]) => avgPool2d(t, { kernel: 3 }), cpu: ([a]) => avgPool2dRef(a, geom(c)) });
  });
});

describe('globalAvgPool', () => {
  const shapes = [[1, 7, 11, 3], [3, 5, 6, 13], [3, 4, 4, 1], [1, 1, 1, 17], [2, 3, 5, 8], [3, 8, 8, 32]] as [number, number, number, number][];
  for (const shape of shapes) {
    it(`forward and backward [${shape}]`, async () => {
      await checkOp(await device(), {
        shapes: [shape],
        gpu: ([t]) => globalAvgPool(t),
        cpu: ([a]) => globalAvgPoolRef(a, shape[0], shape[1] * shape[2], shape[3]),
      });
    });
  }
  it('with the pixels split over 1, 2 and 16 rows of lanes (the tree sum of a GPU, on any adapter)', async () => {
    const saved = { ...GLOBAL_AVG_ROWS };
    try {
      for (const rows of [1, 2, 16]) {
        GLOBAL_AVG_ROWS.software = GLOBAL_AVG_ROWS.gpu = rows;
        for (const shape of [[3, 5, 6, 13], [2, 7, 3, 32]] as [number, number, number, number][]) {
          await checkOp(await device(), {
            shapes: [shape],
            gpu: ([t]) => globalAvgPool(t),
            cpu: ([a]) => globalAvgPoolRef(a, shape[0], shape[1] * shape[2], shape[3]),
          });
        }
      }
    } finally {
      Object.assign(GLOBAL_AVG_ROWS, saved);
    }
  });
  it('a large plane [2, 128, 129, 19] (many pixels per lane)', async () => {
    const d = await device();
    const shape = [2, 128, 129, 19];
    const x = randn(size(shape), rng(11));
    const gyv = randn(2 * 19, rng(12));
    const out = await tidy(d, () => {
      const t = Tensor.from(d, x, shape).requireGrad();
      const y = globalAvgPool(t);
      backward(y, Tensor.from(d, gyv, [2, 19]));
      return { y, g: t.grad! };
    });
    expectClose(await out.y.readF32(), globalAvgPoolRef(x, 2, 128 * 129, 19), 1e-5, 'forward');
    const g = await out.g.readF32();
    const hw = 128 * 129;
    expectClose(g, Float64Array.from(g, (_, i) => gyv[Math.floor(i / (hw * 19)) * 19 + (i % 19)] / hw), 1e-6, 'backward');
    out.y.dispose(), out.g.dispose();
  });
});

describe('peer check against tfjs cpu', () => {
  const peers: { shape: number[]; kernel: [number, number]; stride: [number, number]; tfPad: 'valid' | 'same'; padding: [number, number] }[] = [
    { shape: [3, 7, 11, 5], kernel: [2, 2], stride: [2, 2], tfPad: 'valid', padding: [0, 0] },
    { shape: [2, 9, 6, 3], kernel: [3, 2], stride: [2, 1], tfPad: 'valid', padding: [0, 0] },
    // 'same' with stride 1 and an odd kernel pads one pixel each side; tfjs averages over pixels only.
    { shape: [2, 7, 11, 13], kernel: [3, 3], stride: [1, 1], tfPad: 'same', padding: [1, 1] },
  ];
  for (const p of peers) {
    it(`maxPool and avgPool [${p.shape}] kernel ${p.kernel} stride ${p.stride} '${p.tfPad}'`, async () => {
      await tf.setBackend('cpu');
      const d = await device();
      const x = distinct(size(p.shape), 21);
      const o = { kernel: p.kernel, stride: p.stride, padding: p.padding };
      for (const kind of ['max', 'avg'] as const) {
        const pool = (t: tf.Tensor4D) =>
          kind === 'max' ? tf.maxPool(t, p.kernel, p.stride, p.tfPad) : tf.avgPool(t, p.kernel, p.stride, p.tfPad);
        const xt = tf.tensor4d(Float32Array.from(x), p.shape as [number, number, number, number]);
        const yt = pool(xt);
        const w = tf.tensor(Float32Array.from(randn(yt.size, rng(22))), yt.shape);
        const [gt] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(pool(a as tf.Tensor4D), w)))([xt]);
        const expectedY = await yt.data();
        const expectedG = await gt.data();
        const wv = await w.data();
        tf.dispose([xt, yt, w, gt]);

        // tfjs's avgPool forward averages over image pixels only (count_include_pad off), but its AvgPoolGrad
        // divides by the whole window: with 'same' padding its gradient is that of count_include_pad on.
        const run = (countIncludePad: boolean) => tidy(d, () => {
          const t = Tensor.from(d, x, p.shape).requireGrad();
          const y = kind === 'max' ? maxPool2d(t, o) : avgPool2d(t, { ...o, countIncludePad });
          backward(y, Tensor.from(d, wv, y.shape));
          return { y, g: t.grad! };
        });
        const fwd = run(false);
        const bwd = kind === 'avg' ? run(true) : fwd;
        expect(fwd.y.shape).toEqual(yt.shape);
        expectClose(await fwd.y.readF32(), expectedY, 1e-5, `${kind} forward vs tfjs`);
        expectClose(await bwd.g.readF32(), expectedG, 1e-5, `${kind} gradient vs tfjs`);
        for (const u of new Set([fwd.y, fwd.g, bwd.y, bwd.g])) u.dispose();
      }
    });
  }
});

describe('bad input throws before any dispatch', () => {
  const bad: [string, number[], PoolOptions, RegExp][] = [
    ['wrong rank', [7, 11, 3], { kernel: 2 }, /maxPool2d: input must be NHWC \[N, H, W, C\], got \[7, 11, 3\]/],
    ['kernel larger than the padded input', [1, 2, 5, 3], { kernel: 5, padding: 1 }, /maxPool2d: kernel \[5, 5\] is larger than the padded input \[4, 7\] \(input \[1, 2, 5, 3\]/],
    ['stride 0', [1, 7, 11, 3], { kernel: 2, stride: 0 }, /maxPool2d: stride 0 must be an integer >= 1/],
    ['non-integer kernel', [1, 7, 11, 3], { kernel: [2, 1.5] }, /maxPool2d: kernel \[2,1.5\]/],
    ['padding over half the kernel', [1, 7, 11, 3], { kernel: 2, padding: 2 }, /maxPool2d: padding \[2, 2\] must be at most half the kernel \[2, 2\]/],
  ];
  for (const [what, shape, o, message] of bad) {
    it(what, async () => {
      const d = await device();
      const x = Tensor.empty(d, shape);
      const before = d.stats.dispatches;
      expect(() => maxPool2d(x, o)).toThrow(message);
      expect(() => avgPool2d(x, o)).toThrow(new RegExp(message.source.replace('maxPool2d', 'avgPool2d')));
      expect(d.stats.dispatches).toBe(before);
      x.dispose();
    });
  }
  it('globalAvgPool of a wrong rank, and an i32 tensor', async () => {
    const d = await device();
    const x = Tensor.empty(d, [3, 5]);
    const xi = Tensor.empty(d, [1, 2, 2, 1], 'i32');
    const before = d.stats.dispatches;
    expect(() => globalAvgPool(x)).toThrow(/globalAvgPool: input must be NHWC \[N, H, W, C\], got \[3, 5\]/);
    expect(() => globalAvgPool(xi)).toThrow(/globalAvgPool: input must be f32, got i32 \[1, 2, 2, 1\]/);
    expect(d.stats.dispatches).toBe(before);
    x.dispose(), xi.dispose();
  });
});
