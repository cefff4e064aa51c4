import { describe, expect, it } from 'vitest';
import { BatchNormState, batchNorm, batchNormRelu } from '../src/kernels/batch-norm.js';
import { add, relu } from '../src/kernels/elementwise.js';
import { layerNorm, layerNormBackward, layerNormForward, layerNormRelu } from '../src/kernels/layer-norm.js';
import { backward, tidy } from '../src/engine/tape.js';
import { Tensor } from '../src/engine/tensor.js';
import { checkOp, expectClose, randn, rng, useDevice } from './helpers.js';
import {
  batchNormBackwardRef, batchNormTrainRef, channelStatsRef, layerNormBackwardRef, layerNormRef, normalizeChannelsRef, updateRunningRef,
} from './reference/norm.js';

const device = useDevice();

type Shape = [number, number, number, number];
// [2, 3, 4, 37]: channels span three 16-channel blocks of the per-channel reductions, the last one partly.
// C % 4 == 0 takes layer norm's vec4 kernels: [2, 3, 5, 4] the fused backward (one channel quad), [1, 3, 2, 12]
// the unfused one (3 quads do not divide the workgroup's rows).
const shapes: Shape[] = [[1, 7, 11, 3], [3, 5, 7, 13], [3, 4, 4, 1], [1, 1, 1, 1], [2, 3, 4, 37], [2, 3, 5, 4], [1, 3, 2, 12]];
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const normShape = (s: Shape) => ({ n: s[0], hw: s[1] * s[2], c: s[3] });

describe('layerNorm (GroupNorm(1, C))', () => {
  for (const shape of shapes) {
    const c = shape[3];
    for (const relu of [false, true]) {
      it(`${relu ? 'layerNormRelu' : 'layerNorm'} forward and backward [${shape}]`, async () => {
        await checkOp(await device(), {
          shapes: [shape, [c], [c]],
          gpu: ([x, g, b]) => (relu ? layerNormRelu : layerNorm)(x, g, b),
          cpu: ([x, g, b]) => layerNormRef(x, normShape(shape), g, b, 1e-5, relu).y,
        });
      });
    }
  }

  // gamma and beta shared by two norms (as across time steps): the second affine gradient is added into the
  // first in place. [.., 12]: the fused vec4 backward; [.., 13]: the scalar kernels.
  for (const c of [12, 13]) {
    it(`gamma and beta shared by two layer norms [2, 3, 5, ${c}]`, async () => {
      const shape: Shape = [2, 3, 5, c];
      await checkOp(await device(), {
        shapes: [shape, shape, [c], [c]],
        gpu: ([x1, x2, g, b]) => add(layerNormRelu(x1, g, b), layerNorm(x2, g, b)),
        cpu: ([x1, x2, g, b]) => {
          const y1 = layerNormRef(x1, normShape(shape), g, b, 1e-5, true).y;
          const y2 = layerNormRef(x2, normShape(shape), g, b, 1e-5).y;
          return y1.map((v, i) => v + y2[i]);
        },
        seed: c,
      });
    });
  }

  // [.., 13]: the scalar kernels' two-pass variance; [.., 12]: the vec4 kernel's one pass shifted by the sample's
  // first value, also when that value is an outlier.
  for (const [c, outlier] of [[13, false], [12, false], [12, true]] as const) {
    it(`inputs far from zero and a custom eps [3, 5, 7, ${c}]${outlier ? ', first value an outlier' : ''}`, async () => {
      const shape: Shape = [3, 5, 7, c];
      const r = rng(4);
      const x = randn(size(shape), r).map((v) => 40 + 0.5 * v);
      if (outlier) for (let n = 0; n < 3; n++) x[n * 5 * 7 * c] = 400;
      await checkOp(await device(), {
        shapes: [shape, [c], [c]],
        inputs: [x, randn(c, r), randn(c, r)],
        gpu: ([t, g, b]) => layerNorm(t, g, b, 1e-3),
        cpu: ([t, g, b]) => layerNormRef(t, normShape(shape), g, b, 1e-3).y,
        fwdTol: 2e-4,
        gradTol: 2e-3,
      });
    });
  }

  // Plain forward / backward against the analytic reference. [2, 32, 32, 16]: 16k-element samples (vec4 kernels,
  // fused backward); [3, 5, 7, 12] and [2, 3, 3, 128]: vec4 with the unfused backward (3 and 32 channel quads);
  // [2, 4, 3, 64]: 16 quads, fused; [2, 9, 7, 5]: scalar kernels. Each also with dL/dx or the affine gradients alone.
  const cases: [Shape, boolean][] = [[[2, 32, 32, 16], false], [[2, 32, 32, 16], true], [[3, 5, 7, 12], true], [[2, 3, 3, 128], true], [[2, 4, 3, 64], true], [[2, 9, 7, 5], true]];
  for (const [shape, relu] of cases) {
    it(`${shape}: plain forward / backward against the analytic reference${relu ? ' (ReLU)' : ''}`, async () => {
      const d = await device();
      const c = shape[3];
      const s = normShape(shape);
      const r = rng(8);
      const [x, gy] = [randn(size(shape), r, 2).map((v) => v + 1), randn(size(shape), r)];
      const [gamma, beta] = [randn(c, r), randn(c, r)];
      const ref = layerNormRef(x, s, gamma, beta, 1e-5, relu);
      const refBack = layerNormBackwardRef(gy, x, s, gamma, beta, 1e-5, relu);
      const ts = [x, gamma, beta, gy].map((v, k) => Tensor.from(d, v, k === 0 || k === 3 ? shape : [c]));
      const fwd = layerNormForward(ts[0], ts[1], ts[2], 1e-5, { relu });
      const reluOutput = relu ? fwd.y : undefined;
      const back = layerNormBackward(ts[3], ts[0], fwd.mean, fwd.rstd, ts[1], { reluOutput });
      const onlyX = layerNormBackward(ts[3], ts[0], fwd.mean, fwd.rstd, ts[1], { reluOutput, needAffine: false });
      const onlyAffine = layerNormBackward(ts[3], ts[0], fwd.mean, fwd.rstd, ts[1], { reluOutput, needInput: false });
      expect(onlyX.ggamma).toBeNull();
      expect(onlyAffine.gx).toBeNull();
      expectClose(await fwd.y.readF32(), ref.y, 1e-5, 'y');
      expectClose(await fwd.mean.readF32(), ref.mean, 1e-5, 'mean');
      expectClose(await fwd.rstd.readF32(), ref.rstd, 1e-5, 'rstd');
      for (const [name, b] of [['', back], [' (dL/dx only)', onlyX], [' (affine only)', onlyAffine]] as const) {
        if (b.gx) expectClose(await b.gx.readF32(), refBack.gx, 1e-4, `gx${name}`);
        if (b.ggamma) expectClose(await b.ggamma.readF32(), refBack.ggamma, 1e-4, `ggamma${name}`);
        if (b.gbeta) expectClose(await b.gbeta.readF32(), refBack.gbeta, 1e-4, `gbeta${name}`);
      }
      for (const t of [...ts, fwd.y, fwd.mean, fwd.rstd, back.gx!, back.ggamma!, back.gbeta!, onlyX.gx!, onlyAffine.ggamma!, onlyAffine.gbeta!]) t.dispose();
    });
  }

  it('without gradients it keeps nothing for a backward', async () => {
    const d = await device();
    const x = Tensor.from(d, randn(3 * 5 * 7 * 13, rng(1)), [3, 5, 7, 13]);
    const g = Tensor.from(d, randn(13, rng(2)), [13]);
    const live = d.pool.liveBuffers;
    const y = layerNorm(x, g, g);
    expect(d.pool.liveBuffers).toBe(live + 1);
    y.dispose(), x.dispose(), g.dispose();
  });
});

describe('batchNorm (BatchNorm2d)', () => {
  // C % 4 == 0 takes the vec4 kernels: [2, 3, 5, 4] (one channel quad) and [2, 2, 3, 32] (8 quads) with the
  // per-sample vec4 reductions, [1, 3, 2, 12] (3 quads do not divide the workgroup's rows) with the scalar ones.
  const bnShapes: Shape[] = [[1, 7, 11, 3], [3, 5, 7, 13], [3, 4, 4, 1], [2, 1, 1, 3], [2, 3, 4, 37], [2, 3, 5, 4], [1, 3, 2, 12], [2, 2, 3, 32]];
  const reluRef = (v: Float64Array) => v.map((t) => Math.max(t, 0));
  for (const shape of bnShapes) {
    for (const training of [true, false]) {
      it(`batchNormRelu ${training ? 'training' : 'eval'} forward and backward [${shape}]`, async () => {
        const d = await device();
        const c = shape[3];
        const r = rng(19);
        const rm = randn(c, r);
        const rv = randn(c, r).map((v) => 0.2 + v * v);
        const state = new BatchNormState(d, c);
        if (!training) state.runningMean.write(rm), state.runningVar.write(rv);
        await checkOp(d, {
          shapes: [shape, [c], [c]],
          gpu: ([x, g, b]) => batchNormRelu(x, g, b, state, { training, eps: 1e-3 }),
          cpu: ([x, g, b]) => reluRef(training ? batchNormTrainRef(x, normShape(shape), g, b, 1e-3) : normalizeChannelsRef(x, c, rm, rv, g, b, 1e-3)),
        });
        state.dispose();
      });
    }
  }
  for (const shape of bnShapes) {
    it(`training forward and backward [${shape}]`, async () => {
      const d = await device();
      const c = shape[3];
      const state = new BatchNormState(d, c);
      await checkOp(d, {
        shapes: [shape, [c], [c]],
        gpu: ([x, g, b]) => batchNorm(x, g, b, state, { training: true }),
        cpu: ([x, g, b]) => batchNormTrainRef(x, normShape(shape), g, b),
      });
      state.dispose();
    });
    it(`eval forward and backward [${shape}]`, async () => {
      const d = await device();
      const c = shape[3];
      const r = rng(17);
      const rm = randn(c, r);
      const rv = randn(c, r).map((v) => 0.2 + v * v);
      const state = new BatchNormState(d, c);
      state.runningMean.write(rm);
      state.runningVar.write(rv);
      await checkOp(d, {
        shapes: [shape, [c], [c]],
        gpu: ([x, g, b]) => batchNorm(x, g, b, state, { training: false, eps: 1e-3 }),
        cpu: ([x, g, b]) => normalizeChannelsRef(x, c, rm, rv, g, b, 1e-3),
      });
      // Eval leaves the running statistics alone.
      expectClose(await state.runningMean.readF32(), rm, 1e-7, 'running mean');
      expectClose(await state.runningVar.readF32(), rv, 1e-7, 'running var');
      expect((await state.numBatchesTracked.read())[0]).toBe(0);
      state.dispose();
    });
  }

  // [.., 13]: the scalar kernels' two-pass moments; [.., 16] and [.., 32]: the per-sample vec4 kernel's one pass
  // shifted by each channel's first value, also when that value is an outlier (unshifted, [.., 32] fails).
  for (const [c, outlier] of [[13, false], [16, false], [32, false], [16, true]] as const) {
    it(`training on inputs far from zero [3, 5, 7, ${c}]${outlier ? ', first value an outlier' : ''}: forward, backward, running variance`, async () => {
      const d = await device();
      const shape: Shape = [3, 5, 7, c];
      const r = rng(5);
      const x = randn(size(shape), r).map((v, i) => 40 + (i % c) + 0.5 * v);
      if (outlier) for (let n = 0; n < 3; n++) for (let ch = 0; ch < c; ch++) x[n * 5 * 7 * c + ch] = 400;
      const state = new BatchNormState(d, c);
      await checkOp(d, {
        shapes: [shape, [c], [c]],
        inputs: [x, randn(c, r), randn(c, r)],
        gpu: ([t, g, b]) => batchNorm(t, g, b, state, { training: true, eps: 1e-3 }),
        cpu: ([t, g, b]) => batchNormTrainRef(t, normShape(shape), g, b, 1e-3),
        fwdTol: 2e-4,
        gradTol: 2e-3,
      });
      // The unbiased batch variance, per channel, into the running variance (PyTorch's update, momentum 0.1 from 1).
      const running = { mean: new Float64Array(c), variance: new Float64Array(c).fill(1), batches: 0 };
      updateRunningRef(running, x, normShape(shape), 0.1);
      const fresh = new BatchNormState(d, c);
      const ones = Tensor.from(d, new Float32Array(c).fill(1), [c]);
      const zeros = Tensor.from(d, new Float32Array(c), [c]);
      const xt = Tensor.from(d, x, shape);
      tidy(d, () => void batchNorm(xt, ones, zeros, fresh, { training: true, eps: 1e-3 }));
      expectClose(await fresh.runningVar.readF32(), running.variance, 1e-4, 'running var');
      for (const t of [ones, zeros, xt]) t.dispose();
      fresh.dispose();
      state.dispose();
    });
  }

  for (const momentum of [0.1, 0.3]) {
    it(`running statistics after 4 training steps (momentum ${momentum}) match PyTorch's update; eval uses them`, async () => {
      const d = await device();
      const shape: Shape = [3, 6, 5, 13];
      const s = normShape(shape);
      const r = rng(31);
      const gamma = randn(13, r);
      const beta = randn(13, r);
      const g = Tensor.from(d, gamma, [13]);
      const b = Tensor.from(d, beta, [13]);
      const state = new BatchNormState(d, 13);
      const running = { mean: new Float64Array(13), variance: new Float64Array(13).fill(1), batches: 0 };
      for (let step = 0; step < 4; step++) {
        const x = randn(size(shape), r, 1 + step).map((v, i) => v + (i % 13) - step);
        const xt = Tensor.from(d, x, shape);
        const y = batchNorm(xt, g, b, state, { training: true, momentum });
        expectClose(await y.readF32(), batchNormTrainRef(x, s, gamma, beta), 1e-4, `step ${step} y`);
        updateRunningRef(running, x, s, momentum);
        xt.dispose(), y.dispose();
      }
      expectClose(await state.runningMean.readF32(), running.mean, 1e-5, 'running mean');
      expectClose(await state.runningVar.readF32(), running.variance, 1e-5, 'running var');
      expect((await state.numBatchesTracked.read())[0]).toBe(4);

      const x = randn(size(shape), r);
      const xt = Tensor.from(d, x, shape);
      const y = batchNorm(xt, g, b, state, { training: false });
      expectClose(await y.readF32(), normalizeChannelsRef(x, 13, running.mean, running.variance, gamma, beta), 1e-4, 'eval y');
      // ...and differs from normalising with the batch's own statistics.
      const own = channelStatsRef(x, s);
      expect(normalizeChannelsRef(x, 13, own.mean, own.varBiased, gamma, beta)[0]).not.toBeCloseTo((await y.readF32())[0], 2);
      for (const t of [xt, y, g, b]) t.dispose();
      state.dispose();
    });
  }

  it('training without gradients still updates the running statistics; gradients reach gamma and beta only', async () => {
    const d = await device();
    const shape: Shape = [3, 4, 5, 3];
    const s = normShape(shape);
    const r = rng(41);
    const [x, gamma, beta, gy] = [randn(size(shape), r), randn(3, r), randn(3, r), randn(size(shape), r)];
    const state = new BatchNormState(d, 3);
    const out = tidy(d, () => {
      const xt = Tensor.from(d, x, shape);
      const g = Tensor.from(d, gamma, [3]).requireGrad();
      const b = Tensor.from(d, beta, [3]).requireGrad();
      const y = batchNorm(xt, g, b, state, { training: true });
      backward(y, Tensor.from(d, gy, shape));
      return { gg: g.grad!, gb: b.grad!, gx: xt.grad };
    });
    expect(out.gx).toBeNull();
    const { mean, varBiased } = channelStatsRef(x, s);
    const xhat = normalizeChannelsRef(x, 3, mean, varBiased, Float64Array.of(1, 1, 1), new Float64Array(3));
    const gg = new Float64Array(3);
    const gb = new Float64Array(3);
    gy.forEach((v, i) => ((gg[i % 3] += v * xhat[i]), (gb[i % 3] += v)));
    expectClose(await out.gg.readF32(), gg, 1e-4, 'dgamma');
    expectClose(await out.gb.readF32(), gb, 1e-4, 'dbeta');
    const running = { mean: new Float64Array(3), variance: new Float64Array(3).fill(1), batches: 0 };
    updateRunningRef(running, x, s);
    expectClose(await state.runningMean.readF32(), running.mean, 1e-5, 'running mean');
    out.gg.dispose(), out.gb.dispose();
    state.dispose();
  });

  it('updateRunningStats: false normalises with the batch but leaves the running statistics alone', async () => {
    const d = await device();
    const shape: Shape = [2, 3, 5, 7];
    const r = rng(43);
    const [x, gamma, beta] = [randn(size(shape), r, 3), randn(7, r), randn(7, r)];
    const state = new BatchNormState(d, 7);
    const ts = [Tensor.from(d, x, shape), Tensor.from(d, gamma, [7]), Tensor.from(d, beta, [7])];
    const y = batchNorm(ts[0], ts[1], ts[2], state, { training: true, updateRunningStats: false });
    expectClose(await y.readF32(), batchNormTrainRef(x, normShape(shape), gamma, beta), 1e-4, 'y');
    expect(Array.from(await state.runningMean.readF32())).toEqual(new Array(7).fill(0));
    expect(Array.from(await state.runningVar.readF32())).toEqual(new Array(7).fill(1));
    expect((await state.numBatchesTracked.read())[0]).toBe(0);
    for (const t of [...ts, y]) t.dispose();
    state.dispose();
  });

  // Larger shapes against the analytic reference: [3, 16, 16, 8] and [4, 8, 8, 32] take the vec4 reductions
  // over many pixels per lane, [2, 6, 5, 12] the scalar reductions with vec4 elementwise passes, [2, 9, 7, 5] scalar.
  const bigShapes: Shape[] = [[3, 16, 16, 8], [4, 8, 8, 32], [2, 6, 5, 12], [2, 9, 7, 5]];
  for (const shape of bigShapes) {
    for (const fused of [false, true]) {
      it(`${shape}: ${fused ? 'batchNormRelu' : 'batchNorm'} training forward / backward against the analytic reference`, async () => {
        const d = await device();
        const c = shape[3];
        const s = normShape(shape);
        const r = rng(23);
        const [x, gy, gamma, beta] = [randn(size(shape), r, 2).map((v) => v + 1), randn(size(shape), r), randn(c, r), randn(c, r)];
        const ref = batchNormBackwardRef(gy, x, s, gamma, beta, 1e-5, fused);
        const state = new BatchNormState(d, c);
        const out = tidy(d, () => {
          const ts = [Tensor.from(d, x, shape), Tensor.from(d, gamma, [c]), Tensor.from(d, beta, [c])].map((t) => t.requireGrad());
          const y = (fused ? batchNormRelu : batchNorm)(ts[0], ts[1], ts[2], state, { training: true });
          backward(y, Tensor.from(d, gy, shape));
          return { y, gx: ts[0].grad!, gg: ts[1].grad!, gb: ts[2].grad! };
        });
        expectClose(await out.y.readF32(), ref.y, 1e-4, 'y');
        expectClose(await out.gx.readF32(), ref.gx, 1e-4, 'gx');
        expectClose(await out.gg.readF32(), ref.ggamma, 1e-4, 'dgamma');
        expectClose(await out.gb.readF32(), ref.gbeta, 1e-4, 'dbeta');
        const running = { mean: new Float64Array(c), variance: new Float64Array(c).fill(1), batches: 0 };
        updateRunningRef(running, x, s);
        expectClose(await state.runningMean.readF32(), running.mean, 1e-5, 'running mean');
        expectClose(await state.runningVar.readF32(), running.variance, 1e-5, 'running var');
        for (const t of Object.values(out)) t.dispose();
        state.dispose();
      });
    }
  }

  // The recurrent cell's fused path against its unfused one (relu after batchNorm), on the training net's shapes.
  for (const shape of [[8, 16, 16, 8], [8, 8, 8, 16], [8, 4, 4, 32], [8, 16, 16, 12]] as Shape[]) {
    for (const training of [true, false]) {
      it(`batchNormRelu matches relu(batchNorm) (${training ? 'training' : 'eval'}) [${shape}]`, async () => {
        const d = await device();
        const c = shape[3];
        const r = rng(29);
        const [x, gy, gamma, beta] = [randn(size(shape), r), randn(size(shape), r), randn(c, r), randn(c, r)];
        const results: Float32Array[][] = [];
        for (const fused of [false, true]) {
          const state = new BatchNormState(d, c);
          if (!training) state.runningMean.write(randn(c, rng(3))), state.runningVar.write(randn(c, rng(4)).map((v) => 0.5 + v * v));
          const out = tidy(d, () => {
            const ts = [Tensor.from(d, x, shape), Tensor.from(d, gamma, [c]), Tensor.from(d, beta, [c])].map((t) => t.requireGrad());
            const opts = { training, momentum: 0.2 };
            const y = fused ? batchNormRelu(ts[0], ts[1], ts[2], state, opts) : relu(batchNorm(ts[0], ts[1], ts[2], state, opts));
            backward(y, Tensor.from(d, gy, shape));
            return [y, ts[0].grad!, ts[1].grad!, ts[2].grad!];
          });
          const values: Float32Array[] = [];
          for (const t of [...out, state.runningMean, state.runningVar]) values.push(await t.readF32());
          values.push(Float32Array.from(await state.numBatchesTracked.read()));
          results.push(values);
          out.forEach((t) => t.dispose());
          state.dispose();
        }
        const names = ['y', 'gx', 'dgamma', 'dbeta', 'running mean', 'running var', 'batches'];
        names.forEach((name, k) => expectClose(results[1][k], results[0][k], 1e-5, name));
      });
    }
  }

  it('creating many states costs one dispatch each and starts them at mean 0, var 1, count 0', async () => {
    const d = await device();
    const before = d.stats.dispatches;
    const states = Array.from({ length: 48 }, () => new BatchNormState(d, 64));
    expect(d.stats.dispatches - before).toBe(48);
    for (const st of [states[0], states[47]]) {
      expect(Array.from(await st.runningMean.readF32())).toEqual(new Array(64).fill(0));
      expect(Array.from(await st.runningVar.readF32())).toEqual(new Array(64).fill(1));
      expect((await st.numBatchesTracked.read())[0]).toBe(0);
    }
    states.forEach((st) => st.dispose());
  });
});

describe('bad input throws before any dispatch', () => {
  it('layer norm: wrong rank, gamma or beta of the wrong size', async () => {
    const d = await device();
    const x = Tensor.empty(d, [3, 5, 7, 13]);
    const x3 = Tensor.empty(d, [5, 7, 13]);
    const g = Tensor.empty(d, [13]);
    const g12 = Tensor.empty(d, [12]);
    const before = d.stats.dispatches;
    expect(() => layerNorm(x3, g, g)).toThrow(/layerNorm: input must be NHWC \[N, H, W, C\], got \[5, 7, 13\]/);
    expect(() => layerNorm(x, g12, g)).toThrow(/layerNorm: gamma must be f32 \[13\] for input \[3, 5, 7, 13\], got f32 \[12\]/);
    expect(() => layerNormRelu(x, g, g12)).toThrow(/layerNormRelu: beta must be f32 \[13\] for input \[3, 5, 7, 13\], got f32 \[12\]/);
    expect(() => layerNorm(x, g, g, 0)).toThrow(/layerNorm: eps must be > 0/);
    const mean = Tensor.empty(d, [2]);
    expect(() => layerNormBackward(x, x, mean, mean, g)).toThrow(/layerNorm backward: mean must be \[3\], got \[2\]/);
    expect(d.stats.dispatches).toBe(before);
    for (const t of [x, x3, g, g12, mean]) t.dispose();
  });

  it('batch norm: wrong rank, gamma of the wrong size, a state of other channels, one value per channel', async () => {
    const d = await device();
    const state = new BatchNormState(d, 13);
    const x = Tensor.empty(d, [3, 5, 7, 13]);
    const x1 = Tensor.empty(d, [1, 1, 1, 13]);
    const g = Tensor.empty(d, [13]);
    const g3 = Tensor.empty(d, [3, 13]);
    const x3 = Tensor.empty(d, [3, 5, 7, 3]);
    const g3c = Tensor.empty(d, [3]);
    const before = d.stats.dispatches;
    expect(() => batchNorm(x.view([105, 13]), g, g, state, { training: true })).toThrow(/batchNorm: input must be NHWC \[N, H, W, C\], got \[105, 13\]/);
    expect(() => batchNorm(x, g3, g, state, { training: true })).toThrow(/batchNorm: gamma must be f32 \[13\] for input \[3, 5, 7, 13\], got f32 \[3, 13\]/);
    expect(() => batchNorm(x3, g3c, g3c, state, { training: false })).toThrow(/batchNorm: state has 13 channels, input \[3, 5, 7, 3\] has 3/);
    expect(() => batchNorm(x1, g, g, state, { training: true })).toThrow(/batchNorm: training needs more than 1 value per channel, input \[1, 1, 1, 13\]/);
    expect(() => batchNorm(x, g, g, state, { training: true, momentum: 2 })).toThrow(/batchNorm: momentum must be in \[0, 1\]/);
    expect(d.stats.dispatches).toBe(before);
    for (const t of [x, x1, g, g3, x3, g3c]) t.dispose();
    state.dispose();
  });
});
