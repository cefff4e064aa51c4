import { describe, expect, it } from 'vitest';
import { capture } from '../src/engine/capture.js';
import { Adam, SGD } from '../src/engine/optimizers.js';
import { backward, noGrad, tidy } from '../src/engine/tape.js';
import { Tensor } from '../src/engine/tensor.js';
import { add, relu } from '../src/kernels/elementwise.js';
import { linear, matmul } from '../src/kernels/matmul.js';
import { softmaxCrossEntropy } from '../src/kernels/cross-entropy.js';
import { sum } from '../src/kernels/reduce.js';
import type { Device } from '../src/engine/device.js';
import { paceDawnEvents, pacingStats } from '../src/engine/webgpu.js';
import { expectClose, randn, rng, useDevice } from './helpers.js';
import { adamRef, sgdRef } from './reference/optim.js';

const device = useDevice();

/** Runs `steps` optimiser steps with fixed gradients and returns the weights. */
async function optimise(d: Device, w0: Float64Array, grads: Float64Array[], make: (p: Tensor[]) => Adam | SGD) {
  const w = Tensor.from(d, w0, [w0.length]).requireGrad();
  const opt = make([w]);
  for (const g of grads) {
    w.grad = Tensor.from(d, g, [g.length]);
    opt.step();
  }
  const out = await w.readF32();
  opt.dispose(), w.dispose();
  return out;
}

describe('optimisers against PyTorch-semantics references', () => {
  const r = rng(3);
  const w0 = randn(257, r);
  const grads = [0, 1, 2, 3, 4].map(() => randn(257, r));
  it('SGD with momentum and weight decay', async () => {
    const got = await optimise(await device(), w0, grads, (p) => new SGD(p, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 }));
    expectClose(got, sgdRef(w0, grads, 0.1, 0.9, 0.01), 1e-5);
  });
  for (const decoupled of [false, true]) {
    it(`${decoupled ? 'AdamW' : 'Adam'} with weight decay`, async () => {
      const o = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, wd: 0.05, decoupled };
      const got = await optimise(await device(), w0, grads, (p) => new Adam(p, { ...o, weightDecay: o.wd }));
      expectClose(got, adamRef(w0, grads, o), 1e-5);
    });
  }
});

/** A 2-16-16-2 MLP on concentric rings: a problem a linear model cannot solve. */
function rings(n: number, seed: number) {
  const r = rng(seed);
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const cls = i % 2;
    const rad = cls ? 1.5 + 0.3 * r() : 0.5 * r();
    const a = 2 * Math.PI * r();
    x[2 * i] = rad * Math.cos(a);
    x[2 * i + 1] = rad * Math.sin(a);
    y[i] = cls;
  }
  return { x, y };
}

function mlp(d: Device, seed: number) {
  const r = rng(seed);
  const dims = [2, 16, 16, 2];
  const ps: Tensor[] = [];
  for (let l = 0; l < 3; l++) {
    const bound = 1 / Math.sqrt(dims[l]);
    ps.push(Tensor.from(d, randn(dims[l + 1] * dims[l], r, bound), [dims[l + 1], dims[l]]).requireGrad());
    ps.push(Tensor.from(d, new Float32Array(dims[l + 1]), [dims[l + 1]]).requireGrad());
  }
  const forward = (x: Tensor) => {
    let h = x;
    for (let l = 0; l < 3; l++) {
      h = linear(h, ps[2 * l], ps[2 * l + 1]);
      if (l < 2) h = relu(h);
    }
    return h;
  };
  return { ps, forward };
}

/** Inputs, an MLP, Adam, and one training step (loss, backward, update) returning the loss. */
function mlpTraining(d: Device, data: { x: Float32Array; y: Int32Array }, seed: number, lr: number) {
  const n = data.y.length;
  const x = Tensor.from(d, data.x, [n, 2]);
  const y = Tensor.from(d, data.y, [n], 'i32');
  const net = mlp(d, seed);
  const opt = new Adam(net.ps, { lr });
  const step = () =>
    tidy(d, () => {
      const loss = softmaxCrossEntropy(net.forward(x), y);
      backward(loss);
      opt.step();
      return loss;
    });
  return { x, y, net, opt, step };
}

describe('training', () => {
  it('an MLP drives a non-linear toy problem to near-zero loss; the pool returns to its starting live bytes', async () => {
    const d = await device();
    const { x, y, net, opt, step } = mlpTraining(d, rings(64, 5), 11, 0.02);
    const first = step();
    const firstLoss = await first.item();
    first.dispose();
    const live = d.pool.liveBytes;
    const allocated = d.pool.allocatedBytes;
    let last = 0;
    for (let i = 0; i < 400; i++) {
      const loss = step();
      if (i === 399) last = await loss.item();
      loss.dispose();
    }
    expect(firstLoss).toBeGreaterThan(0.5);
    expect(last).toBeLessThan(0.02);
    expect(d.pool.liveBytes).toBe(live);
    // After the first step every buffer comes from the pool.
    expect(d.pool.allocatedBytes).toBe(allocated);
    opt.dispose();
    for (const t of [x, y, ...net.ps]) t.dispose();
  });

  it('a captured training step replays to the same weights as eager steps', async () => {
    const d = await device();
    const data = rings(32, 9);
    const run = async (captured: boolean) => {
      const { x, y, net, opt, step } = mlpTraining(d, data, 4, 0.01);
      let dispatchesPerStep = 0;
      if (captured) {
        const { result: loss, graph } = capture(d, step);
        const before = d.stats.dispatches;
        for (let i = 1; i < 20; i++) graph.replay();
        dispatchesPerStep = (d.stats.dispatches - before) / 19;
        expect(graph.dispatches.length).toBe(dispatchesPerStep);
        await d.sync();
        graph.dispose();
        loss.dispose();
      } else {
        for (let i = 0; i < 20; i++) step().dispose();
      }
      const w = await Promise.all(net.ps.map((p) => p.readF32()));
      opt.dispose();
      for (const t of [x, y, ...net.ps]) t.dispose();
      return { w, dispatchesPerStep };
    };
    const eager = await run(false);
    const replayed = await run(true);
    expect(replayed.dispatchesPerStep).toBeGreaterThan(10);
    eager.w.forEach((w, k) => expect(Array.from(replayed.w[k])).toEqual(Array.from(w)));
  });
});

describe('autograd', () => {
  it('accumulates gradients of a tensor used twice, and skips inputs that need none', async () => {
    const d = await device();
    const a = Tensor.from(d, [1, 2, 3], [3]).requireGrad();
    const b = Tensor.from(d, [4, 5, 6], [3]);
    const loss = tidy(d, () => {
      const l = sum(add(add(a, a), b));
      backward(l);
      return l;
    });
    expect(await loss.item()).toBe(27);
    expect(Array.from(await a.grad!.readF32())).toEqual([2, 2, 2]);
    expect(b.grad).toBeNull();
    for (const t of [a, b, a.grad!, loss]) t.dispose();
  });
  it('noGrad records nothing', async () => {
    const d = await device();
    const a = Tensor.from(d, [1, 2], [2]).requireGrad();
    const y = noGrad(d, () => add(a, a));
    expect(y.requiresGrad).toBe(false);
    expect(() => backward(sum(y))).toThrow(/does not depend/);
    a.dispose(), y.dispose();
  });
  it('tidy disposes intermediates and keeps what it returns', async () => {
    const d = await device();
    const a = Tensor.from(d, [1, 2], [2]);
    const live = d.pool.liveBytes;
    const kept = tidy(d, () => {
      add(a, a);
      return add(a, a);
    });
    expect(d.pool.liveBytes).toBe(live + 8);
    expect(Array.from(await kept.readF32())).toEqual([2, 4]);
    kept.dispose(), a.dispose();
    expect(d.pool.liveBytes).toBe(live - 8);
  });
});

describe('waiting for the GPU', () => {
  it('paced waits route Dawn\'s polls through the sleeper and leave other setImmediate calls alone', async () => {
    const d = await device();
    const was = paceDawnEvents(true);
    try {
      const x = Tensor.from(d, Float32Array.from({ length: 1 << 16 }, (_, i) => i % 251), [1 << 16]);
      const polls = pacingStats.polls;
      const y = tidy(d, () => {
        let t = x;
        for (let i = 0; i < 20; i++) t = add(t, x);
        return t;
      });
      const v = await y.readF32();
      y.dispose();
      expect(v[300]).toBe(21 * (300 % 251));
      // If a Dawn update changes how it waits, pacing silently stops: this is what catches it.
      expect(pacingStats.polls).toBeGreaterThan(polls);
      const seen = await new Promise<unknown[]>((resolve) => setImmediate((...args: unknown[]) => resolve(args), 1, 'two'));
      expect(seen).toEqual([1, 'two']);
      paceDawnEvents(false);
      const before = pacingStats.polls;
      const z = add(x, x);
      await z.readF32();
      expect(pacingStats.polls).toBe(before);
      z.dispose(), x.dispose();
    } finally {
      paceDawnEvents(was);
    }
  });
});

describe('bad input', () => {
  it('shape mismatches throw before any dispatch, naming the op and both shapes', async () => {
    const d = await device();
    const a = Tensor.from(d, new Float32Array(6), [2, 3]);
    const b = Tensor.from(d, new Float32Array(8), [2, 4]);
    const before = d.stats.dispatches;
    expect(() => add(a, b)).toThrow(/add: shapes \[2, 3\] and \[2, 4\]/);
    expect(() => matmul(a, a)).toThrow(/matmul: inner sizes differ: \[2, 3\] x \[2, 3\]/);
    expect(() => linear(a, b)).toThrow(/linear: input \[2, 3\]/);
    expect(d.stats.dispatches).toBe(before);
    a.dispose(), b.dispose();
  });
  it('a tensor over the binding limit throws naming the limit', async () => {
    const d = await device();
    const n = d.limits.maxStorageBufferBindingSize / 4 + 1;
    expect(() => Tensor.empty(d, [n])).toThrow(/maxStorageBufferBindingSize/);
    expect(() => Tensor.empty(d, [2, 1.5])).toThrow(/not a non-negative integer/);
  });
  it('using a disposed tensor throws', async () => {
    const d = await device();
    const a = Tensor.from(d, [1, 2], [2]);
    a.dispose();
    expect(() => add(a, a)).toThrow(/was disposed/);
    await expect(a.read()).rejects.toThrow(/was disposed/);
  });
});
