import { describe, expect, it } from 'vitest';
import { accumulate, add, mul, relu, scale, sub } from '../src/kernels/elementwise.js';
import { matmul, linear } from '../src/kernels/matmul.js';
import { mean, sum, sumRows } from '../src/kernels/reduce.js';
import { reshape } from '../src/kernels/reshape.js';
import { softmaxCrossEntropy, softmaxCrossEntropyRows } from '../src/kernels/cross-entropy.js';
import { Tensor } from '../src/engine/tensor.js';
import { checkOp, expectClose, randn, rng, useDevice } from './helpers.js';
import { addRef, matmulRef, mulRef, softmaxCrossEntropyRef } from './reference/ops.js';

const device = useDevice();

describe('elementwise', () => {
  // [4] and [3, 5, 12]: sizes divisible by 4 take the vec4 kernels.
  for (const shape of [[1], [7], [3, 5, 13], [257], [4], [3, 5, 12]]) {
    const c = shape[shape.length - 1];
    it(`add / sub / mul [${shape}]`, async () => {
      const d = await device();
      await checkOp(d, { shapes: [shape, shape], gpu: ([a, b]) => add(a, b), cpu: ([a, b]) => addRef(a, b) });
      await checkOp(d, { shapes: [shape, shape], gpu: ([a, b]) => sub(a, b), cpu: ([a, b]) => addRef(a, b, -1) });
      await checkOp(d, { shapes: [shape, shape], gpu: ([a, b]) => mul(a, b), cpu: ([a, b]) => mulRef(a, b) });
    });
    it(`channel broadcast [${shape}] with [${c}]`, async () => {
      const d = await device();
      await checkOp(d, { shapes: [shape, [c]], gpu: ([a, b]) => add(a, b), cpu: ([a, b]) => addRef(a, b) });
      await checkOp(d, { shapes: [shape, [c]], gpu: ([a, b]) => sub(a, b), cpu: ([a, b]) => addRef(a, b, -1) });
      await checkOp(d, { shapes: [shape, [c]], gpu: ([a, b]) => mul(a, b), cpu: ([a, b]) => mulRef(a, b) });
    });
  }
  it('scale and relu [65, 3]', async () => {
    const d = await device();
    await checkOp(d, { shapes: [[65, 3]], gpu: ([a]) => scale(a, -2.5), cpu: ([a]) => a.map((v) => -2.5 * v) });
    await checkOp(d, { shapes: [[65, 3]], gpu: ([a]) => relu(a), cpu: ([a]) => a.map((v) => Math.max(v, 0)) });
  });
  it('scale [65, 4] (vec4)', async () => {
    await checkOp(await device(), { shapes: [[65, 4]], gpu: ([a]) => scale(a, -2.5), cpu: ([a]) => a.map((v) => -2.5 * v) });
  });
  for (const n of [1, 7, 4, 1028]) {
    it(`accumulate in place, ${n} elements`, async () => {
      const d = await device();
      const r = rng(n);
      const [y0, x] = [randn(n, r), randn(n, r)];
      const y = Tensor.from(d, y0, [n]);
      const xt = Tensor.from(d, x, [n]);
      accumulate(y, xt, -0.5);
      expectClose(await y.readF32(), y0.map((v, i) => v - 0.5 * x[i]), 1e-6, 'y');
      y.dispose(), xt.dispose();
    });
  }
  it('a grid wider than 65535 workgroups folds into y', async () => {
    const d = await device();
    const n = 65535 * 256 + 777;
    const a = Tensor.from(d, Float32Array.from({ length: n }, (_, i) => i % 1000), [n]);
    const y = scale(a, 2);
    const out = await y.readF32();
    expect(out[n - 1]).toBe(2 * ((n - 1) % 1000));
    expect(out[65535 * 256 + 5]).toBe(2 * ((65535 * 256 + 5) % 1000));
    a.dispose(), y.dispose();
  });
});

describe('matmul and linear', () => {
  const sizes: [number, number, number][] = [[1, 1, 1], [3, 7, 5], [65, 7, 3], [7, 257, 13], [33, 65, 17]];
  for (const [m, k, n] of sizes) {
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
      it(`[${m}x${k}]${ta ? 'T' : ''} x [${k}x${n}]${tb ? 'T' : ''}`, async () => {
        await checkOp(await device(), {
          shapes: [ta ? [k, m] : [m, k], tb ? [n, k] : [k, n]],
          gpu: ([a, b]) => matmul(a, b, { transA: ta, transB: tb }),
          cpu: ([a, b]) => matmulRef(a, b, m, k, n, ta, tb),
        });
      });
    }
  }
  it('linear [5x7] with weight [3x7] and bias', async () => {
    await checkOp(await device(), {
      shapes: [[5, 7], [3, 7], [3]],
      gpu: ([x, w, b]) => linear(x, w, b),
      cpu: ([x, w, b]) => addRef(matmulRef(x, w, 5, 7, 3, false, true), b),
    });
  });
});

describe('reductions and reshape', () => {
  for (const shape of [[1], [7], [257], [3, 65], [4100, 3]]) {
    it(`sum, mean [${shape}]`, async () => {
      const d = await device();
      const total = (a: Float64Array) => a.reduce((s, v) => s + v, 0);
      await checkOp(d, { shapes: [shape], gpu: ([a]) => sum(a), cpu: ([a]) => Float64Array.of(total(a)) });
      await checkOp(d, { shapes: [shape], gpu: ([a]) => mean(a), cpu: ([a]) => Float64Array.of(total(a) / a.length) });
    });
  }
  // C % 4 == 0 takes the vec4 kernel; [600, 8] and [257, 4] need two passes of 256-row chunks.
  for (const [r, c] of [[1, 1], [65, 7], [4100, 3], [3, 257], [1, 4], [5, 12], [600, 8], [257, 4]]) {
    it(`sumRows [${r}, ${c}]`, async () => {
      await checkOp(await device(), {
        shapes: [[r, c]],
        gpu: ([a]) => sumRows(a),
        cpu: ([a]) => {
          const out = new Float64Array(c);
          a.forEach((v, i) => (out[i % c] += v));
          return out;
        },
      });
    });
  }
  it('reshape passes values and gradients through', async () => {
    await checkOp(await device(), {
      shapes: [[3, 5, 7]],
      gpu: ([a]) => mul(reshape(a, [15, -1]), reshape(a, [15, 7])),
      cpu: ([a]) => a.map((v) => v * v),
    });
  });
});

describe('softmax cross-entropy', () => {
  for (const [n, k] of [[1, 1], [7, 13], [65, 3], [3, 257]]) {
    it(`[${n}, ${k}] with integer labels`, async () => {
      const d = await device();
      const labels = Array.from({ length: n }, (_, i) => (i * 7) % k);
      const lab = Tensor.from(d, labels, [n], 'i32');
      await checkOp(d, {
        shapes: [[n, k]],
        gpu: ([x]) => softmaxCrossEntropyRows(x, lab).losses,
        cpu: ([x]) => softmaxCrossEntropyRef(x, labels, n, k),
      });
      await checkOp(d, {
        shapes: [[n, k]],
        gpu: ([x]) => softmaxCrossEntropy(x, lab),
        cpu: ([x]) => Float64Array.of(softmaxCrossEntropyRef(x, labels, n, k).reduce((s, v) => s + v, 0) / n),
      });
      lab.dispose();
    });
  }
  it('is stable for large logits', async () => {
    const d = await device();
    const x = Tensor.from(d, [1000, 0, -1000, 80, 90, 100], [2, 3]);
    const lab = Tensor.from(d, [1, 2], [2], 'i32');
    const l = softmaxCrossEntropyRows(x, lab);
    const out = await l.losses.readF32();
    expect(out[0]).toBeCloseTo(1000, 3);
    expect(out[1]).toBeCloseTo(-100 + 100 + Math.log(1 + Math.exp(-10) + Math.exp(-20)), 5);
    for (const t of [x, lab, l.losses, l.probs]) t.dispose();
  });
  it('an out-of-range label gives NaN, not a silent number', async () => {
    const d = await device();
    const x = Tensor.from(d, [1, 2, 3], [1, 3]);
    const lab = Tensor.from(d, [3], [1], 'i32');
    const l = softmaxCrossEntropyRows(x, lab);
    expect(Number.isNaN((await l.losses.readF32())[0])).toBe(true);
    for (const t of [x, lab, l.losses, l.probs]) t.dispose();
  });
});
