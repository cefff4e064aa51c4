/**
 * conv2d (forward, dgrad, wgrad, bias) and conv2dPair against the f64 CPU reference (test/reference/conv.ts):
 * f64 finite differences on small cases, the reference's analytic gradients on a shape matrix, and tfjs's
 * cpu backend as an independent peer for the padding conventions.
 */
import { describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { capture } from '../src/engine/capture.js';
import { Device } from '../src/engine/device.js';
import { backward, tidy } from '../src/engine/tape.js';
import { Tensor } from '../src/engine/tensor.js';
import {
  CONV_TILES,
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  conv2dPair,
  convGeometry,
  convTiles,
  forwardBody,
  wgradPlan,
  forwardPlan,
  type Conv2dOptions,
} from '../src/kernels/conv2d.js';
import { stageable, textureLayout } from '../src/kernels/texture-stage.js';
import { checkOp, expectClose, finiteDiff, randn, rng, useDevice } from './helpers.js';
import {
  biasGradRef,
  conv2dBackwardInputRef,
  conv2dBackwardWeightRef,
  conv2dRef,
  refGeometry,
  type RefGeometry,
  type RefPadding,
} from './reference/conv.js';

const device = useDevice();

interface Case {
  x: number[]; // [N, H, W, Cin]
  k: [number, number]; // kernel size
  cout: number;
  stride: number | [number, number];
  padding: RefPadding;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const wShape = (c: Case) => [c.k[0], c.k[1], c.x[3], c.cout];
const opts = (c: Case): Conv2dOptions => ({ stride: c.stride, padding: c.padding });
const geom = (c: Case): RefGeometry => refGeometry(c.x, wShape(c), c.stride, c.padding);
/**
 * The commands of one forward-kernel call over sources with these input channels, to `cout` channels: where the
 * tile table reads textures, a copy of each input first (all Cin % 4 == 0) and of each weight (Cout % 4 == 0,
 * not flipped).
 */
function forwardCommands(d: Device, cins: number[], cout: number, flipped = false): string[] {
  const tex = convTiles(d).forward.textures;
  const copies = (tex && cins.every((c) => c % 4 === 0) ? cins.length : 0) + (tex && cout % 4 === 0 && !flipped ? cins.length : 0);
  return [...Array<string>(copies).fill('copy to texture'), 'conv2d_forward.forward'];
}
const label = (c: Case) =>
  `x [${c.x}] k ${c.k[0]}x${c.k[1]} -> ${c.cout}, stride ${JSON.stringify(c.stride)}, padding ${JSON.stringify(c.padding)}`;

function addInto(a: Float64Array, b: Float64Array): Float64Array {
  return a.map((v, i) => v + b[i]);
}

/** Runs conv2d(x, w, b) with autograd on the GPU for upstream gradient gy; returns y and the three gradients. */
async function gpuConv(d: Device, c: Case, x: Float64Array, w: Float64Array, b: Float64Array, gy: Float64Array) {
  const out = tidy(d, () => {
    const xt = Tensor.from(d, x, c.x).requireGrad();
    const wt = Tensor.from(d, w, wShape(c)).requireGrad();
    const bt = Tensor.from(d, b, [c.cout]).requireGrad();
    const y = conv2d(xt, wt, bt, opts(c));
    backward(y, Tensor.from(d, gy, y.shape));
    return { y, gx: xt.grad!, gw: wt.grad!, gb: bt.grad! };
  });
  const res = { y: await out.y.readF32(), gx: await out.gx.readF32(), gw: await out.gw.readF32(), gb: await out.gb.readF32() };
  for (const t of Object.values(out)) t.dispose();
  return res;
}

describe('conv2d geometry', () => {
  it("'same' follows TensorFlow: out = ceil(in / stride), the odd padding pixel at the bottom / right", () => {
    // H: out 4, total (4 - 1) * 2 + 3 - 8 = 1 -> 0 top, 1 bottom. W: out 7, total 6 + 4 - 7 = 3 -> 1 left, 2 right.
    const g = convGeometry('conv2d', [1, 8, 7, 1], [3, 4, 1, 1], { stride: [2, 1], padding: 'same' });
    expect([g.ho, g.wo, g.pt, g.pb, g.pl, g.pr]).toEqual([4, 7, 0, 1, 1, 2]);
    // A kernel smaller than the stride needs no padding: total would be negative.
    const h = convGeometry('conv2d', [1, 7, 7, 1], [1, 1, 1, 1], { stride: 2, padding: 'same' });
    expect([h.ho, h.wo, h.pt, h.pb]).toEqual([4, 4, 0, 0]);
  });
  it("'valid', a number and [top, bottom, left, right]", () => {
    const v = convGeometry('conv2d', [2, 7, 11, 3], [3, 5, 3, 4], { stride: 2, padding: 'valid' });
    expect([v.ho, v.wo]).toEqual([3, 4]);
    const n = convGeometry('conv2d', [2, 7, 11, 3], [3, 5, 3, 4], { padding: 2 });
    expect([n.ho, n.wo, n.pt, n.pr]).toEqual([9, 11, 2, 2]);
    const e = convGeometry('conv2d', [2, 7, 11, 3], [3, 5, 3, 4], { stride: [1, 2], padding: [1, 0, 3, 2] });
    expect([e.ho, e.wo]).toEqual([6, 6]);
  });
});

// Small cases: forward and all three gradients against f64 central finite differences of the reference.
const FD_CASES: Case[] = [
  { x: [2, 5, 4, 3], k: [3, 3], cout: 2, stride: 1, padding: 'same' },
  { x: [1, 7, 5, 1], k: [2, 2], cout: 3, stride: 2, padding: 'valid' },
  { x: [2, 5, 6, 4], k: [3, 2], cout: 5, stride: [2, 1], padding: [1, 0, 2, 1] },
  { x: [1, 6, 7, 2], k: [4, 4], cout: 4, stride: 2, padding: 'same' },
  { x: [1, 5, 5, 1], k: [5, 5], cout: 1, stride: 1, padding: 2 },
  { x: [2, 5, 3, 5], k: [1, 1], cout: 4, stride: 2, padding: 'same' },
];

describe('conv2d against finite differences', () => {
  for (const c of FD_CASES) {
    it(label(c), async () => {
      const g = geom(c);
      await checkOp(await device(), {
        shapes: [c.x, wShape(c), [c.cout]],
        gpu: ([x, w, b]) => conv2d(x, w, b, opts(c)),
        cpu: ([x, w, b]) => conv2dRef(x, w, b, g),
        seed: c.x[1] * 31 + c.k[0],
      });
    });
  }
  it('the reference analytic gradients equal finite differences of the reference forward', () => {
    for (const c of FD_CASES) {
      const g = geom(c);
      const r = rng(7);
      const x = randn(size(c.x), r);
      const w = randn(size(wShape(c)), r);
      const gy = randn(g.batch * g.ho * g.wo * g.cout, r);
      const f = ([xx, ww]: Float64Array[]) => conv2dRef(xx, ww, null, g);
      expectClose(conv2dBackwardInputRef(gy, w, g), finiteDiff(f, [x, w], gy, 0), 1e-7, `dx ${label(c)}`);
      expectClose(conv2dBackwardWeightRef(gy, x, g), finiteDiff(f, [x, w], gy, 1), 1e-7, `dw ${label(c)}`);
    }
  });
});

// The shape matrix (as Burn's conv tests): batch 1 and 5, channels 1, 3, 4, 13, 64, non-square images, every
// padding mode, strides 1 and 2, kernels 1, 2, 3, 4, 5, 7; against the reference's analytic gradients.
const MATRIX: Case[] = [
  { x: [1, 7, 11, 1], k: [3, 3], cout: 16, stride: 1, padding: 'same' },
  { x: [5, 7, 11, 3], k: [3, 3], cout: 4, stride: 1, padding: 'valid' },
  { x: [5, 7, 11, 4], k: [5, 5], cout: 13, stride: 2, padding: 'same' },
  { x: [1, 11, 7, 13], k: [7, 7], cout: 3, stride: 1, padding: 'same' },
  { x: [5, 7, 11, 64], k: [3, 3], cout: 64, stride: 1, padding: 'same' },
  { x: [1, 7, 11, 64], k: [1, 1], cout: 64, stride: 2, padding: 'valid' },
  { x: [5, 7, 11, 13], k: [2, 2], cout: 13, stride: 2, padding: 'valid' },
  { x: [1, 9, 8, 4], k: [4, 4], cout: 1, stride: 2, padding: 'same' },
  { x: [5, 7, 11, 3], k: [5, 3], cout: 64, stride: [2, 1], padding: [2, 1, 0, 3] },
  { x: [1, 7, 11, 1], k: [7, 7], cout: 4, stride: 2, padding: 3 },
  { x: [5, 7, 11, 4], k: [1, 1], cout: 3, stride: 1, padding: 0 },
  { x: [1, 7, 11, 64], k: [5, 5], cout: 13, stride: 2, padding: 'same' },
  { x: [5, 11, 7, 13], k: [3, 3], cout: 64, stride: 2, padding: 'same' },
  { x: [1, 7, 11, 4], k: [2, 4], cout: 4, stride: 1, padding: 'same' },
  { x: [5, 8, 8, 16], k: [3, 3], cout: 32, stride: 1, padding: 'same' },
  { x: [1, 7, 11, 3], k: [7, 5], cout: 5, stride: 1, padding: 'valid' },
  // Padding past kernel - 1: the stride-1 input gradient runs the forward kernel with negative padding.
  { x: [2, 5, 6, 8], k: [2, 3], cout: 8, stride: 1, padding: [3, 0, 1, 4] },
];

async function checkAgainstReference(d: Device, c: Case, seed: number, tol = 2e-5): Promise<void> {
  const g = geom(c);
  const r = rng(seed);
  const x = randn(size(c.x), r);
  const w = randn(size(wShape(c)), r, 1 / Math.sqrt(c.k[0] * c.k[1] * c.x[3]));
  const b = randn(c.cout, r);
  const gy = randn(g.batch * g.ho * g.wo * g.cout, r);
  const out = await gpuConv(d, c, x, w, b, gy);
  expectClose(out.y, conv2dRef(x, w, b, g), tol, 'forward');
  expectClose(out.gx, conv2dBackwardInputRef(gy, w, g), tol, 'input gradient');
  expectClose(out.gw, conv2dBackwardWeightRef(gy, x, g), tol, 'weight gradient');
  expectClose(out.gb, biasGradRef(gy, g.cout), tol, 'bias gradient');
}

describe('conv2d shape matrix against the reference', () => {
  MATRIX.forEach((c, i) => {
    it(label(c), async () => checkAgainstReference(await device(), c, 100 + i));
  });
  it('the default network layer shape [32, 32, 32, 16] -> 16, wgrad split over several chunks', async () => {
    await checkAgainstReference(await device(), { x: [32, 32, 32, 16], k: [3, 3], cout: 16, stride: 1, padding: 'same' }, 99);
  });
  it('the network\'s 16x16 8 -> 16 layer at batch 32, whose weight gradient splits its rows along the lanes', async () => {
    await checkAgainstReference(await device(), { x: [32, 16, 16, 8], k: [3, 3], cout: 16, stride: 1, padding: 'same' }, 98);
  });
  it('the weight gradient\'s plan divides its workgroups evenly over the shader threads, covering every row', () => {
    const t = CONV_TILES.software.wgrad;
    const plan = (x: number[], cout: number, threads: number) => {
      const g = convGeometry('test', x, [3, 3, x[3], cout], { padding: 'same' });
      const p = wgradPlan(t, g, (n) => n / (threads * Math.ceil(n / threads)));
      const groups = p.workgroups[0] * p.workgroups[1] * p.workgroups[2];
      // Every output row in exactly one split, every split's lanes launched.
      expect(p.chunk * (p.zs - 1)).toBeLessThan(g.batch * g.ho);
      expect(p.chunk * p.zs).toBeGreaterThanOrEqual(g.batch * g.ho);
      expect(p.workgroups[0] * p.wg).toBeGreaterThanOrEqual(p.threads * p.laneSplits);
      return { ...p, groups };
    };
    // The network's 32x32 and 16x16 layers at batch 32: 3 workgroups with no balance term, 6 on 2 threads.
    for (const [x, cout] of [[[32, 32, 32, 1], 8], [[32, 32, 32, 8], 8], [[32, 16, 16, 8], 16]] as [number[], number][]) {
      expect(plan(x, cout, 1).groups).toBe(3);
      expect(plan(x, cout, 2).groups).toBe(6);
      expect(plan(x, cout, 2).score).toBe(1);
    }
    // On one thread (a GPU) the table's split with the fewest idle lanes, the largest such workgroup.
    expect(plan([32, 32, 32, 8], 8, 1)).toMatchObject({ zs: 16, laneSplits: 16, wg: 32 });
    // Odd shapes and thread counts: the plan covers every row and never scores below the table's own split
    // (chunks of minChunk pixels, the workgroup with the fewest idle lanes), scored here independently.
    const tableScore = (x: number[], cout: number, threads: number, tn: number) => {
      const rows = x[0] * x[1];
      const zs = Math.ceil(rows / Math.ceil(rows / Math.max(1, Math.min(t.maxSplits, Math.floor((rows * x[2]) / t.minChunk), rows))));
      const m = 3 * (x[3] % 4 === 0 ? x[3] / 4 : x[3]);
      const lanes = m * (m < t.laneSplitBelow ? zs : 1);
      const wg = [8, 16, 32, 64].reduce((b, n) => (Math.ceil(lanes / n) * n <= Math.ceil(lanes / b) * b ? n : b));
      const groups = Math.ceil(lanes / wg) * Math.ceil(cout / tn) * (m < t.laneSplitBelow ? 1 : zs);
      return (lanes / (Math.ceil(lanes / wg) * wg)) * (groups / (threads * Math.ceil(groups / threads)));
    };
    for (const threads of [1, 2, 3, 4, 6]) {
      for (const x of [[1, 7, 11, 3], [5, 9, 9, 13], [3, 32, 32, 4], [32, 8, 8, 32], [2, 5, 64, 16], [32, 32, 32, 8]]) {
        for (const cout of [1, 8, 13, 32]) {
          const p = plan(x, cout, threads);
          expect(p.score).toBeGreaterThanOrEqual(tableScore(x, cout, threads, p.tn) - 1e-9);
          expect(p.score).toBeLessThanOrEqual(1);
        }
      }
    }
  });
  it('the shader threads the plan balances over follow LP_NUM_THREADS on a software adapter (0: the submitting thread)', async () => {
    const d = await device();
    const saved = process.env.LP_NUM_THREADS;
    try {
      const threads = (v: string | undefined) => {
        if (v === undefined) delete process.env.LP_NUM_THREADS;
        else process.env.LP_NUM_THREADS = v;
        return d.shaderThreads;
      };
      if (d.isSoftware) {
        expect([threads('3'), threads('1'), threads('0'), threads(undefined)]).toEqual([3, 1, 1, availableParallelism()]);
        process.env.LP_NUM_THREADS = '2';
        expect([1, 2, 3, 4, 5, 6].map((n) => d.evenness(n))).toEqual([0.5, 1, 0.75, 1, 5 / 6, 1]);
      } else {
        expect(threads('3')).toBe(1);
        expect(d.evenness(3)).toBe(1);
      }
    } finally {
      if (saved === undefined) delete process.env.LP_NUM_THREADS;
      else process.env.LP_NUM_THREADS = saved;
    }
  });
  it('small tiles without subgroups: channel chunks, several column blocks and workgroups, plain tile reads', async () => {
    const saved = CONV_TILES.software;
    CONV_TILES.software = {
      forward: { wg: 8, outputs: 8, tn: 4, subgroups: false },
      dgrad: { wg: 8, tm: 3, tn: 8, bk: 12, subgroups: false },
      wgrad: { wg: 16, outputs: 12, tn: 4, subgroups: false, minChunk: 16, maxSplits: 5, laneSplitBelow: 1000 },
    };
    try {
      const d = await device();
      for (const c of [MATRIX[2], MATRIX[4], MATRIX[6], MATRIX[8], MATRIX[11]]) await checkAgainstReference(d, c, 21);
    } finally {
      CONV_TILES.software = saved;
    }
  });
  it('the forward rows variant (rolling window of kernel rows) on every stride-1 case, with strips split', async () => {
    const saved = CONV_TILES.software;
    // Permissive: every stride-1 conv with kh <= 7 takes it; a few accumulators and many threads wanted, so
    // strips are split (the last one short) and segments are narrow.
    CONV_TILES.software = structuredClone(saved);
    CONV_TILES.software.forward.rows = { maxTn: 64, minWidth: 1, maxKh: 7, outputs: 96, wg: 8, minThreads: 4096 };
    // The variant reads its inputs from storage buffers (it saves gathers, which textures make cheap).
    CONV_TILES.software.forward.textures = false;
    try {
      const d = await device();
      const cases = MATRIX.filter((c) => c.stride === 1);
      expect(cases.length).toBeGreaterThanOrEqual(8);
      for (const [i, c] of cases.entries()) {
        const g = convGeometry('test', c.x, wShape(c), opts(c));
        const plan = forwardPlan(d, [{ g }]);
        expect(plan.rows, label(c)).toBe(c.k[0]);
        await checkAgainstReference(d, c, 300 + i);
      }
      const tall = convGeometry('test', [2, 19, 11, 4], [3, 3, 4, 5], { padding: 'same' });
      const plan = forwardPlan(d, [{ g: tall }]);
      expect(plan.strip).toBeLessThan(19);
      expect(19 % plan.strip).not.toBe(0);
      await checkAgainstReference(d, { x: [2, 19, 11, 4], k: [3, 3], cout: 5, stride: 1, padding: 'same' }, 41);
      await checkAgainstReference(d, { x: [3, 17, 16, 8], k: [3, 3], cout: 8, stride: 1, padding: [2, 0, 1, 1] }, 42);
      // The recurrent cell's form: two sources in one dispatch, each gathered once per input row.
      const pair = PAIRS[0];
      const pg = (x: number[], k: number) => convGeometry('test', x, [k, k, x[3], pair.cout], { padding: pair.padding });
      expect(forwardPlan(d, [{ g: pg(pair.x1, pair.k1) }, { g: pg(pair.x2, pair.k2) }]).rows).toBe(3);
      await checkPair(d, pair);
    } finally {
      CONV_TILES.software = saved;
    }
  });
  it('kx as a loop or unrolled: both give the reference\'s results on every stride-1 case, forward and gradients', async () => {
    const saved = CONV_TILES.software;
    try {
      const d = await device();
      // Kernel widths 1 to 7 (1: no window shift; 2, 4: even), vec4 and scalar channels, two sources.
      const cases = MATRIX.filter((c) => (typeof c.stride === 'number' ? c.stride : c.stride[1]) === 1);
      expect(new Set(cases.map((c) => c.k[1])).size).toBeGreaterThanOrEqual(5);
      for (const kxLoop of [true, false]) {
        CONV_TILES.software = structuredClone(saved);
        CONV_TILES.software.forward.kxLoop = kxLoop;
        for (const [i, c] of cases.entries()) await checkAgainstReference(d, c, 800 + i);
        await checkPair(d, PAIRS[0]);
      }
    } finally {
      CONV_TILES.software = saved;
    }
  });
  it('with kx as a loop the unrolled body is TM * TN4 accumulator updates of VEC FMAs each, not KW * VEC', () => {
    const shape = { vec: 4, tm: 8, tn4: 4, kw: [3, 0] as [number, number], sw: 1, rows: 0, flipped: false, subgroups: true, lane: 'lane' };
    const count = (body: string, re: RegExp) => (body.match(re) ?? []).length;
    const looped = forwardBody({ ...shape, kxLoop: true });
    const unrolled = forwardBody({ ...shape, kxLoop: false });
    expect(count(looped, /for \(var kx = 0u; kx < 3u; kx\+\+\)/g)).toBe(1);
    expect(count(unrolled, /var kx/g)).toBe(0);
    expect(count(looped, /fma\(/g)).toBe(8 * 4 * 4);
    expect(count(unrolled, /fma\(/g)).toBe(8 * 4 * 3 * 4);
    // The loop fetches one kx's weights per step: 4 channels x 16 columns = 16 vec4s, 2 subgroup loads.
    expect(count(looped, /let wl_/g)).toBe(2);
    expect(count(unrolled, /let wl_/g)).toBe(6);
    // Column quad outer, pixel inner: a_0_0_0 .. a_0_7_0 (the 8 pixels of column quad 0), then a_0_0_1 ...
    const order = [...looped.matchAll(/(a_0_\d+_\d+) = fma/g)].map((m) => m[1]);
    expect(order.slice(0, 9)).toEqual([...Array.from({ length: 8 }, (_, i) => `a_0_${i}_0`), 'a_0_0_1']);
  });
  it('the default tiles use the rows variant for the network\'s narrow 32x32 layers read from buffers, not for textured, strided or wide ones', async () => {
    const d = await device();
    const plan = (x: number[], w: number[], o: Conv2dOptions) => forwardPlan(d, [{ g: convGeometry('test', x, w, o) }]);
    const narrow = plan([32, 32, 32, 8], [3, 3, 8, 8], { padding: 'same' });
    expect(narrow.textureInputs).toBe(Boolean(convTiles(d).forward.textures));
    expect(narrow.rows).toBe(narrow.textureInputs ? 0 : 3);
    // Cin 1: no vec4 texels, so read from buffers.
    expect(plan([32, 32, 32, 1], [3, 3, 1, 8], { padding: 'same' }).textureInputs).toBe(false);
    expect(plan([32, 32, 32, 1], [3, 3, 1, 8], { padding: 'same' }).rows).toBe(3);
    expect(plan([32, 32, 32, 8], [3, 3, 8, 8], { padding: 'same', stride: 2 }).rows).toBe(0);
    expect(plan([32, 8, 8, 32], [3, 3, 32, 32], { padding: 'same' }).rows).toBe(0);
  });
  it('the stride-1 input gradient is one conv dispatch: the forward kernel reads the weight flipped and transposed in place', async () => {
    const d = await device();
    // Cin 13 (the dgrad's output columns: scalar reads 13 apart), a 5x3 kernel and asymmetric padding.
    const cases: Case[] = [
      { x: [2, 7, 11, 13], k: [5, 3], cout: 8, stride: 1, padding: [2, 1, 0, 2] },
      { x: [3, 8, 8, 16], k: [3, 3], cout: 32, stride: 1, padding: 'same' },
    ];
    const saved = CONV_TILES.software;
    try {
      for (const textures of [true, false]) {
        CONV_TILES.software = structuredClone(saved);
        CONV_TILES.software.forward.textures = textures;
        for (const [i, c] of cases.entries()) await check(c, i);
      }
    } finally {
      CONV_TILES.software = saved;
    }
    async function check(c: Case, i: number): Promise<void> {
      const rg = geom(c);
      const r = rng(700 + i);
      const w = randn(size(wShape(c)), r), gy = randn(rg.batch * rg.ho * rg.wo * rg.cout, r);
      const { dx, dispatches } = tidy(d, () => {
        const gyt = Tensor.from(d, gy, [rg.batch, rg.ho, rg.wo, rg.cout]);
        const wt = Tensor.from(d, w, wShape(c));
        const { result: dx, graph } = capture(d, () => conv2dBackwardInput(gyt, wt, convGeometry('conv2d', c.x, wShape(c), opts(c))));
        graph.dispose();
        return { dx, dispatches: graph.dispatches.map((q) => q.label) };
      });
      expect(dispatches, label(c)).toEqual(forwardCommands(d, [c.cout], c.x[3], true));
      expectClose(await dx.readF32(), conv2dBackwardInputRef(gy, w, rg), 2e-5, label(c));
      dx.dispose();
    }
  });
  it('textures: a tensor is staged only in whole texels that fit the device\'s texture size, whole rows and a partial one', async () => {
    const d = await device();
    const { shift, maxTexels } = textureLayout(d);
    expect(1 << shift).toBeLessThanOrEqual(d.limits.maxTextureDimension2D);
    expect(stageable(d, 4 * 1000)).toBe(true);
    expect(stageable(d, 4 * 1000 + 2)).toBe(false);
    expect(stageable(d, 4 * maxTexels)).toBe(true);
    expect(stageable(d, 4 * (maxTexels + 1))).toBe(false);
    // An input of 9102 texels fills one texture row of 8192 and part of the next (two copies).
    await checkAgainstReference(d, { x: [3, 37, 41, 8], k: [3, 3], cout: 8, stride: 1, padding: 'same' }, 43);
  });
  it('with Dawn robustness off, every kernel still reads only what it should', async () => {
    const d = await Device.create({ disableRobustness: true });
    try {
      for (const c of [MATRIX[2], MATRIX[12]]) await checkAgainstReference(d, c, 7);
    } finally {
      d.destroy();
    }
  });
});

describe('conv2d against tfjs (cpu backend)', () => {
  // tfjs computes in f32 too: agreement within 1e-4 relative to the output's largest magnitude.
  const PEERS: Case[] = [
    { x: [2, 8, 7, 3], k: [3, 4], cout: 5, stride: [2, 1], padding: 'same' },
    { x: [1, 9, 10, 4], k: [4, 4], cout: 8, stride: 2, padding: 'same' },
    { x: [3, 7, 11, 13], k: [5, 5], cout: 6, stride: 2, padding: 'valid' },
    { x: [2, 6, 5, 1], k: [3, 3], cout: 4, stride: 1, padding: [1, 2, 0, 2] },
  ];
  for (const c of PEERS) {
    it(label(c), async () => {
      await tf.setBackend('cpu');
      const d = await device();
      const g = geom(c);
      const r = rng(11);
      const x = randn(size(c.x), r);
      const w = randn(size(wShape(c)), r);
      const b = new Float64Array(c.cout);
      const gy = randn(g.batch * g.ho * g.wo * g.cout, r);
      const ours = await gpuConv(d, c, x, w, b, gy);
      // tfjs takes explicit padding as [[0, 0], [top, bottom], [left, right], [0, 0]].
      const [pt, pb, pl, pr] = typeof c.padding === 'string' ? [0, 0, 0, 0] : (c.padding as number[]);
      const pad = typeof c.padding === 'string' ? c.padding : [[0, 0], [pt, pb], [pl, pr], [0, 0]];
      const stride = typeof c.stride === 'number' ? [c.stride, c.stride] : c.stride;
      const [ty, tgx, tgw] = tf.tidy(() => {
        const xt = tf.tensor4d(Float32Array.from(x), c.x as [number, number, number, number]);
        const wt = tf.tensor4d(Float32Array.from(w), wShape(c) as [number, number, number, number]);
        const gyt = tf.tensor4d(Float32Array.from(gy), [g.batch, g.ho, g.wo, g.cout]);
        const f = (a: tf.Tensor4D, k: tf.Tensor4D) => tf.conv2d(a, k, stride as [number, number], pad as 'same');
        const [gx, gw] = tf.grads((a: tf.Tensor, k: tf.Tensor) => tf.sum(tf.mul(f(a as tf.Tensor4D, k as tf.Tensor4D), gyt)))([xt, wt]);
        return [f(xt, wt), gx, gw];
      });
      expect(ty.shape).toEqual([g.batch, g.ho, g.wo, g.cout]);
      expectClose(ours.y, await ty.data(), 1e-4, 'forward vs tfjs');
      expectClose(ours.gx, await tgx.data(), 1e-4, 'input gradient vs tfjs');
      expectClose(ours.gw, await tgw.data(), 1e-4, 'weight gradient vs tfjs');
      tf.dispose([ty, tgx, tgw]);
    });
  }
});

interface PairCase { x1: number[]; k1: number; x2: number[]; k2: number; cout: number; stride: number; padding: RefPadding }

// Sources with their own channel counts (and kernel sizes) that reach the same output.
const PAIRS: PairCase[] = [
  { x1: [2, 7, 11, 3], k1: 3, x2: [2, 7, 11, 16], k2: 3, cout: 16, stride: 1, padding: 'same' },
  { x1: [1, 8, 8, 4], k1: 3, x2: [1, 8, 8, 8], k2: 1, cout: 12, stride: 1, padding: 'same' },
  { x1: [3, 9, 7, 1], k1: 5, x2: [3, 9, 7, 13], k2: 3, cout: 5, stride: 2, padding: 'same' },
  // Cin 8 and 5: both sources read one channel at a time (the shader reads every source alike).
  { x1: [2, 6, 9, 8], k1: 3, x2: [2, 6, 9, 5], k2: 3, cout: 8, stride: 1, padding: 'valid' },
];

/** conv2dPair in one dispatch against the sum of the two reference convs, forward and every gradient. */
async function checkPair(d: Device, c: PairCase): Promise<void> {
  const w1s = [c.k1, c.k1, c.x1[3], c.cout];
  const w2s = [c.k2, c.k2, c.x2[3], c.cout];
  const g1 = refGeometry(c.x1, w1s, c.stride, c.padding);
  const g2 = refGeometry(c.x2, w2s, c.stride, c.padding);
  const r = rng(5);
  const [x1, w1, x2, w2, b] = [c.x1, w1s, c.x2, w2s, [c.cout]].map((s) => randn(size(s), r));
  const gy = randn(g1.batch * g1.ho * g1.wo * g1.cout, r);
  const out = tidy(d, () => {
    const ts = [[x1, c.x1], [w1, w1s], [x2, c.x2], [w2, w2s], [b, [c.cout]]].map(([v, s]) =>
      Tensor.from(d, v as Float64Array, s as number[]).requireGrad());
    const { result: y, graph } = capture(d, () => conv2dPair(ts[0], ts[1], ts[2], ts[3], ts[4], { stride: c.stride, padding: c.padding }));
    graph.dispose();
    backward(y, Tensor.from(d, gy, y.shape));
    return { y, grads: ts.map((t) => t.grad!), dispatches: graph.dispatches.map((q) => q.label) };
  });
  expect(out.dispatches).toEqual(forwardCommands(d, [c.x1[3], c.x2[3]], c.cout));
  expectClose(await out.y.readF32(), addInto(conv2dRef(x1, w1, b, g1), conv2dRef(x2, w2, null, g2)), 2e-5, 'forward');
  const expected = [
    conv2dBackwardInputRef(gy, w1, g1),
    conv2dBackwardWeightRef(gy, x1, g1),
    conv2dBackwardInputRef(gy, w2, g2),
    conv2dBackwardWeightRef(gy, x2, g2),
    biasGradRef(gy, c.cout),
  ];
  for (let k = 0; k < 5; k++) {
    expectClose(await out.grads[k].readF32(), expected[k], 2e-5, ['dx1', 'dw1', 'dx2', 'dw2', 'dbias'][k]);
  }
  out.y.dispose();
  out.grads.forEach((t) => t.dispose());
}

describe('conv2dPair', () => {
  for (const c of PAIRS) {
    it(`x1 [${c.x1}] k${c.k1} + x2 [${c.x2}] k${c.k2} -> ${c.cout}: one dispatch, equal to the sum of two convs`, async () => {
      await checkPair(await device(), c);
    });
  }
  it('matches finite differences on a small pair, and conv2d + conv2d + bias on the GPU', async () => {
    const d = await device();
    const x1s = [2, 4, 5, 2], w1s = [3, 3, 2, 3], x2s = [2, 4, 5, 3], w2s = [3, 3, 3, 3];
    const g1 = refGeometry(x1s, w1s, 1, 'same');
    const g2 = refGeometry(x2s, w2s, 1, 'same');
    await checkOp(d, {
      shapes: [x1s, w1s, x2s, w2s, [3]],
      gpu: ([x1, w1, x2, w2, b]) => conv2dPair(x1, w1, x2, w2, b, { padding: 'same' }),
      cpu: ([x1, w1, x2, w2, b]) => addInto(conv2dRef(x1, w1, b, g1), conv2dRef(x2, w2, null, g2)),
    });
    const r = rng(3);
    const vals = [x1s, w1s, x2s, w2s, [3]].map((s) => randn(size(s), r));
    const out = tidy(d, () => {
      const [x1, w1, x2, w2, b] = vals.map((v, k) => Tensor.from(d, v, [x1s, w1s, x2s, w2s, [3]][k]));
      return {
        pair: conv2dPair(x1, w1, x2, w2, b, { padding: 'same' }),
        first: conv2d(x1, w1, b, { padding: 'same' }),
        second: conv2d(x2, w2, undefined, { padding: 'same' }),
      };
    });
    const first = await out.first.readF32();
    const second = await out.second.readF32();
    expectClose(await out.pair.readF32(), first.map((v, i) => v + second[i]), 1e-5, 'pair vs two convs');
    Object.values(out).forEach((t) => t.dispose());
  });
  it('the exported backward helpers give the same gradients as autograd', async () => {
    const d = await device();
    const c: Case = { x: [2, 7, 5, 4], k: [3, 3], cout: 8, stride: 2, padding: 'same' };
    const g = geom(c);
    const r = rng(9);
    const x = randn(size(c.x), r), w = randn(size(wShape(c)), r), gy = randn(g.batch * g.ho * g.wo * g.cout, r);
    const geo = convGeometry('conv2d', c.x, wShape(c), opts(c));
    const [gx, gw] = tidy(d, () => {
      const gyt = Tensor.from(d, gy, [g.batch, g.ho, g.wo, g.cout]);
      return [conv2dBackwardInput(gyt, Tensor.from(d, w, wShape(c)), geo), conv2dBackwardWeight(gyt, Tensor.from(d, x, c.x), geo)];
    });
    expectClose(await gx.readF32(), conv2dBackwardInputRef(gy, w, g), 2e-5, 'dx');
    expectClose(await gw.readF32(), conv2dBackwardWeightRef(gy, x, g), 2e-5, 'dw');
    gx.dispose(), gw.dispose();
  });
});

const SAME = { padding: 'same' as const };

describe('gradients added in place', () => {
  it('a weight, bias and activations used at three steps: every gradient against finite differences', async () => {
    // h1 = conv(x); h2 = conv(x) + conv(h1); h3 = conv(h1) + conv(h2): wl serves three convs, w, b and x two or
    // three; in the backward walk the later contributions are added into the gradients in place.
    const x = [2, 7, 9, 4];
    const k = [3, 3, 4, 4];
    const g = refGeometry(x, k, 1, 'same');
    const cpuConv = (a: Float64Array, w: Float64Array, b: Float64Array | null) => conv2dRef(a, w, b, g);
    await checkOp(await device(), {
      shapes: [x, k, [4], k],
      gpu: ([xt, w, b, wl]) => {
        const h1 = conv2d(xt, w, b, SAME);
        const h2 = conv2dPair(xt, w, h1, wl, b, SAME);
        return conv2dPair(h1, wl, h2, wl, b, SAME);
      },
      cpu: ([xs, w, b, wl]) => {
        const h1 = cpuConv(xs, w, b);
        const h2 = addInto(cpuConv(xs, w, b), cpuConv(h1, wl, null));
        return addInto(cpuConv(h1, wl, b), cpuConv(h2, wl, null));
      },
      seed: 77,
    });
  });
  it('the backward helpers add into a given gradient: dgrad (stride 1 and 2), wgrad (one split and several)', async () => {
    const d = await device();
    const cases: Case[] = [
      { x: [3, 17, 16, 8], k: [3, 3], cout: 8, stride: 1, padding: 'same' }, // the forward kernel's rows variant
      { x: [2, 7, 11, 13], k: [5, 3], cout: 6, stride: 1, padding: 'valid' }, // scalar channels, row at a time
      { x: [2, 9, 8, 4], k: [3, 3], cout: 8, stride: 2, padding: 'same' }, // the strided dgrad kernel
      { x: [8, 32, 32, 4], k: [3, 3], cout: 8, stride: 1, padding: 'same' }, // wgrad split over several chunks
    ];
    for (const [i, c] of cases.entries()) {
      const rg = geom(c);
      const geo = convGeometry('conv2d', c.x, wShape(c), opts(c));
      const r = rng(500 + i);
      const x = randn(size(c.x), r), w = randn(size(wShape(c)), r), gy = randn(rg.batch * rg.ho * rg.wo * rg.cout, r);
      const dx0 = randn(size(c.x), r), dw0 = randn(size(wShape(c)), r);
      const [dx, dw, dxInto, dwInto] = tidy(d, () => {
        const gyt = Tensor.from(d, gy, [rg.batch, rg.ho, rg.wo, rg.cout]);
        const into = [Tensor.from(d, dx0, c.x), Tensor.from(d, dw0, wShape(c))];
        const dx = conv2dBackwardInput(gyt, Tensor.from(d, w, wShape(c)), geo, into[0]);
        const dw = conv2dBackwardWeight(gyt, Tensor.from(d, x, c.x), geo, into[1]);
        return [dx, dw, into[0], into[1]];
      });
      expect(dx, label(c)).toBe(dxInto);
      expect(dw, label(c)).toBe(dwInto);
      expectClose(await dx.readF32(), addInto(dx0, conv2dBackwardInputRef(gy, w, rg)), 2e-5, `dx + into, ${label(c)}`);
      expectClose(await dw.readF32(), addInto(dw0, conv2dBackwardWeightRef(gy, x, rg)), 2e-5, `dw + into, ${label(c)}`);
      dx.dispose(), dw.dispose();
    }
  });
});

describe('bad input throws one clear error before any dispatch', () => {
  const BAD: [string, (d: Device) => unknown, RegExp][] = [
    ['mismatched channels', (d) => conv2d(T(d, [1, 5, 5, 3]), T(d, [3, 3, 4, 2]), undefined), /conv2d.*\[1, 5, 5, 3\].*\[3, 3, 4, 2\].*3 channels.*expects 4/],
    ['kernel larger than the padded input', (d) => conv2d(T(d, [1, 4, 5, 1]), T(d, [5, 3, 1, 2]), undefined, { padding: 'valid' }), /conv2d.*\[1, 4, 5, 1\].*5x3 kernel is larger than the padded 4x5 input/],
    ['stride 0', (d) => conv2d(T(d, [1, 5, 5, 1]), T(d, [3, 3, 1, 2]), undefined, { stride: 0 }), /conv2d.*\[1, 5, 5, 1\].*stride 0/],
    ['non-integer stride', (d) => conv2d(T(d, [1, 5, 5, 1]), T(d, [3, 3, 1, 2]), undefined, { stride: [1, 1.5] }), /conv2d.*stride \[1,1\.5\]/],
    ['negative padding', (d) => conv2d(T(d, [1, 5, 5, 1]), T(d, [3, 3, 1, 2]), undefined, { padding: -1 }), /conv2d.*padding -1/],
    ['padding of the wrong length', (d) => conv2d(T(d, [1, 5, 5, 1]), T(d, [3, 3, 1, 2]), undefined, { padding: [1, 1] as unknown as number }), /conv2d.*padding \[1,1\]/],
    ['a 3-D input', (d) => conv2d(T(d, [5, 5, 1]), T(d, [3, 3, 1, 2]), undefined), /conv2d: input \[5, 5, 1\].*4-D/],
    ['a 2-D weight', (d) => conv2d(T(d, [1, 5, 5, 1]), T(d, [9, 2]), undefined), /conv2d: input \[1, 5, 5, 1\], weight \[9, 2\].*4-D/],
    ['a bias of the wrong size', (d) => conv2d(T(d, [1, 5, 5, 1]), T(d, [3, 3, 1, 2]), T(d, [3])), /conv2d: bias \[3\] must be \[2\]/],
    ['pair sources with different outputs', (d) => conv2dPair(T(d, [1, 5, 5, 1]), T(d, [3, 3, 1, 2]), T(d, [1, 6, 5, 2]), T(d, [3, 3, 2, 2]), undefined, { padding: 'same' }), /conv2dPair: the sources give different outputs.*\[1, 6, 5, 2\]/],
    ['pair with mismatched channels in source 2', (d) => conv2dPair(T(d, [1, 5, 5, 1]), T(d, [3, 3, 1, 2]), T(d, [1, 5, 5, 2]), T(d, [3, 3, 3, 2]), undefined), /conv2dPair \(source 2\).*2 channels.*expects 3/],
    ['a backward gradient of the wrong shape', (d) => conv2dBackwardInput(T(d, [1, 4, 4, 2]), T(d, [3, 3, 1, 2]), convGeometry('conv2d', [1, 5, 5, 1], [3, 3, 1, 2], { padding: 'same' })), /conv2dBackwardInput: gradient \[1, 4, 4, 2\].*expected \[1, 5, 5, 2\]/],
    ['a backward input of the wrong shape', (d) => conv2dBackwardWeight(T(d, [1, 5, 5, 2]), T(d, [1, 5, 5, 3]), convGeometry('conv2d', [1, 5, 5, 1], [3, 3, 1, 2], { padding: 'same' })), /conv2dBackwardWeight: .*input \[1, 5, 5, 3\]/],
  ];
  function T(d: Device, shape: number[]): Tensor {
    return Tensor.empty(d, shape);
  }
  for (const [what, call, message] of BAD) {
    it(what, async () => {
      const d = await device();
      tidy(d, () => {
        const before = d.stats.dispatches;
        expect(() => call(d)).toThrow(message);
        expect(d.stats.dispatches).toBe(before);
      });
    });
  }
});
