/**
 * Backprop through time on the BL net: the fused cell equals the unfused composition; activation
 * checkpointing (recompute) gives full BPTT's gradients; truncated BPTT equals a hand-truncated reference
 * built through the host (segment states read back and re-uploaded as constants).
 */
import { describe, expect, it } from 'vitest';
import type { Device } from '../src/engine/device.js';
import { backward, noGrad, tidy } from '../src/engine/tape.js';
import { Tensor } from '../src/engine/tensor.js';
import { add, scale } from '../src/kernels/elementwise.js';
import { softmaxCrossEntropy } from '../src/kernels/cross-entropy.js';
import { BLNet } from '../src/model/bl-net.js';
import { type NetConfig } from '../src/model/presets.js';
import { computeGradients } from '../src/train/step.js';
import { expectClose, rng, useDevice } from './helpers.js';

const device = useDevice();

const cfg = (over: Partial<NetConfig> = {}): NetConfig => ({
  size: 12,
  inChannels: 1,
  widths: [3, 4, 5, 5, 6, 6],
  kernel: 3,
  poolBefore: [2, 4],
  classes: 5,
  norm: 'layer',
  connections: 'BL',
  convBias: true,
  ...over,
});

function batch(d: Device, n: number, size: number, classes: number) {
  const r = rng(7);
  const x = Tensor.from(d, Float32Array.from({ length: n * size * size }, () => r()), [n, size, size, 1]);
  const y = Tensor.from(d, Int32Array.from({ length: n }, (_, i) => i % classes), [n], 'i32');
  return { x, y };
}

/** Reads every parameter's gradient and clears it. */
async function takeGrads(net: BLNet): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, p] of net.params) {
    out.set(name, p.grad ? await p.grad.readF32() : new Float32Array(p.size));
    p.grad?.dispose();
    p.grad = null;
  }
  return out;
}

function expectSameGrads(a: Map<string, Float32Array>, b: Map<string, Float32Array>, tol: number) {
  for (const [name, g] of a) expectClose(b.get(name)!, g, tol, name);
}

describe('the fused recurrent cell', () => {
  for (const [connections, norm, convBias] of [['BL', 'layer', true], ['BLT', 'layer', true], ['BL', 'batch', true], ['BL', 'layer', false], ['BL', 'batch', false]] as const) {
    it(`equals the unfused composition over 3 steps, forward and all gradients (${connections}, ${norm} norm, ${convBias ? 'with' : 'no'} conv bias)`, async () => {
      const d = await device();
      const c = cfg({ connections, norm, convBias, widths: norm === 'batch' ? [4, 4, 8, 8, 8, 12] : cfg().widths });
      const net = BLNet.init(d, c, 3);
      // Conv biases are parameters only where the config asks for them.
      expect([...net.params.keys()].filter((k) => k.endsWith('bottom_up.bias')).length).toBe(convBias ? c.widths.length : 0);
      const { x, y } = batch(d, 3, c.size, c.classes);
      const run = async (unfused: boolean) => {
        const logits = tidy(d, () => {
          const r = net.loss(x, y, 3, { unfused });
          backward(r.loss);
          return r.logits;
        });
        const l = await Promise.all(logits.map((t) => t.readF32()));
        logits.forEach((t) => t.dispose());
        return { l, g: await takeGrads(net) };
      };
      const fused = await run(false);
      const unfused = await run(true);
      fused.l.forEach((l, t) => expectClose(l, unfused.l[t], 1e-5, `logits at step ${t}`));
      // A conv bias in front of batch norm has a true gradient of 0: both paths give rounding noise there.
      if (norm === 'batch') for (const g of [fused.g, unfused.g]) for (const k of g.keys()) if (k.endsWith('bottom_up.bias')) g.delete(k);
      expectSameGrads(unfused.g, fused.g, 1e-4);
      net.dispose(), x.dispose(), y.dispose();
    });
  }
});

describe('backprop through time', () => {
  it('recompute (activation checkpointing) gives the same gradients as full BPTT', async () => {
    const d = await device();
    const c = cfg();
    const net = BLNet.init(d, c, 5);
    const { x, y } = batch(d, 2, c.size, c.classes);
    const full = computeGradients(net, x, y, { steps: 6 });
    const fullLoss = await full.loss.item();
    const gFull = await takeGrads(net);
    for (const seg of [1, 2, 4]) {
      const r = computeGradients(net, x, y, { steps: 6, recompute: seg });
      expect(await r.loss.item()).toBeCloseTo(fullLoss, 5);
      expectSameGrads(gFull, await takeGrads(net), 1e-5);
      r.loss.dispose(), r.lastLogits.dispose();
    }
    full.loss.dispose(), full.lastLogits.dispose();
    net.dispose(), x.dispose(), y.dispose();
  });

  it('truncated BPTT equals a hand-truncated reference, and recompute agrees with it', async () => {
    const d = await device();
    const c = cfg();
    const net = BLNet.init(d, c, 9);
    const { x, y } = batch(d, 2, c.size, c.classes);
    const T = 6;
    const K = 3;
    const trunc = computeGradients(net, x, y, { steps: T, bptt: K });
    const gTrunc = await takeGrads(net);
    // Reference: steps 0..K-1 with a tape; their final states go to the host and come back as constants
    // that start steps K..T-1, so no gradient can cross the cut.
    const first = noGrad(d, () => net.forward(x, K));
    const constants = await Promise.all(first.states[0].map(async (s) => Tensor.from(d, await s.readF32(), s.shape)));
    first.logits.forEach((t) => t.dispose());
    first.states.flat().forEach((t) => t.dispose());
    tidy(d, () => {
      const a = net.forward(x, K);
      const b = net.forward(x, T - K, { initial: { t0: K, states: constants } });
      let loss: Tensor | null = null;
      for (const l of [...a.logits, ...b.logits]) {
        const ce = softmaxCrossEntropy(l, y);
        loss = loss ? add(loss, ce) : ce;
      }
      backward(scale(loss!, 1 / T));
    });
    expectSameGrads(await takeGrads(net), gTrunc, 1e-5);
    const both = computeGradients(net, x, y, { steps: T, bptt: K, recompute: 2 });
    expectSameGrads(gTrunc, await takeGrads(net), 1e-5);
    for (const t of [trunc.loss, trunc.lastLogits, both.loss, both.lastLogits, ...constants, x, y]) t.dispose();
    net.dispose();
  });

  it('the B control has no lateral weights and its steps are identical', async () => {
    const d = await device();
    const c = cfg({ connections: 'B' });
    const net = BLNet.init(d, c, 2);
    expect([...net.params.keys()].some((k) => k.includes('lateral'))).toBe(false);
    const { x, y } = batch(d, 2, c.size, c.classes);
    const logits = net.predict(x, 3);
    const l = await Promise.all(logits.map((t) => t.readF32()));
    expect(Array.from(l[2])).toEqual(Array.from(l[0]));
    logits.forEach((t) => t.dispose());
    net.dispose(), x.dispose(), y.dispose();
  });
});
