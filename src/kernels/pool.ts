/**
 * Pooling over NHWC images with PyTorch's semantics: maxPool2d (padding is -inf, ties go to the first
 * maximum in scan order), avgPool2d (count_include_pad on by default) and globalAvgPool [N,H,W,C] -> [N,C].
 * Kernel, stride and padding are a number or an [h, w] pair; stride defaults to the kernel; padding is
 * explicit and symmetric, at most half the kernel (as PyTorch requires, so every window sees the image).
 * Backwards gather rather than scatter (see shaders/pool.wgsl): deterministic, no float atomics.
 */
import { params } from '../engine/device.js';
import type { Kernel } from '../engine/shaders.js';
import { record } from '../engine/tape.js';
import { Tensor } from '../engine/tensor.js';
import { channelBlock } from './reduce.js';

export type Pair = number | readonly [number, number];

export interface PoolOptions {
  kernel: Pair;
  /** Defaults to the kernel. */
  stride?: Pair;
  /** Pixels added on each side (-inf for max pool, zeros for avg pool); defaults to 0. */
  padding?: Pair;
}

export interface AvgPoolOptions extends PoolOptions {
  /** Divide by the whole window, padding included (PyTorch's default), or by the image pixels it covers. */
  countIncludePad?: boolean;
}

/** Sizes of one pooling: input [n, h, w, c] -> output [n, oh, ow, c]. */
export interface PoolGeometry {
  n: number; h: number; w: number; c: number;
  oh: number; ow: number;
  kh: number; kw: number;
  sh: number; sw: number;
  ph: number; pw: number;
}

/** A pool kernel specialised to one geometry (see shaders/pool.wgsl for why the sizes are constants). */
function poolKernel(entry: string, g: PoolGeometry, extra: Record<string, number> = {}, workgroup: [number, number?] = [256]): Kernel {
  const constants = { H: g.h, W: g.w, C: g.c, OH: g.oh, OW: g.ow, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, PH: g.ph, PW: g.pw, ...extra };
  return { shader: 'pool', entry, workgroup, constants };
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

function pair(op: string, what: string, v: Pair, min: number): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if ((typeof v !== 'number' && (v as readonly number[]).length !== 2) || !p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new Error(`${op}: ${what} ${JSON.stringify(v)} must be an integer >= ${min} or a pair of them`);
  }
  return p;
}

function checkImage(op: string, x: Tensor): [number, number, number, number] {
  if (x.shape.length !== 4) throw new Error(`${op}: input must be NHWC [N, H, W, C], got ${shapeText(x.shape)}`);
  if (x.dtype !== 'f32') throw new Error(`${op}: input must be f32, got ${x.dtype} ${shapeText(x.shape)}`);
  if (x.size === 0) throw new Error(`${op}: input ${shapeText(x.shape)} is empty`);
  return x.shape as unknown as [number, number, number, number];
}

/** Validates the options against the input and works out the output size (PyTorch's floor mode). */
export function poolGeometry(op: string, x: Tensor, opts: PoolOptions): PoolGeometry {
  const [n, h, w, c] = checkImage(op, x);
  const [kh, kw] = pair(op, 'kernel', opts.kernel, 1);
  const [sh, sw] = pair(op, 'stride', opts.stride ?? [kh, kw], 1);
  const [ph, pw] = pair(op, 'padding', opts.padding ?? 0, 0);
  if (2 * ph > kh || 2 * pw > kw) {
    throw new Error(`${op}: padding [${ph}, ${pw}] must be at most half the kernel [${kh}, ${kw}] (input ${shapeText(x.shape)})`);
  }
  if (kh > h + 2 * ph || kw > w + 2 * pw) {
    throw new Error(`${op}: kernel [${kh}, ${kw}] is larger than the padded input [${h + 2 * ph}, ${w + 2 * pw}] ` +
      `(input ${shapeText(x.shape)}, padding [${ph}, ${pw}])`);
  }
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  return { n, h, w, c, oh, ow, kh, kw, sh, sw, ph, pw };
}

/** The batch size and the number of threads of a one-thread-per-element dispatch. */
const P = (g: PoolGeometry, total: number) => params().u(g.n, total);

const outShape = (g: PoolGeometry) => [g.n, g.oh, g.ow, g.c];
const inShape = (g: PoolGeometry) => [g.n, g.h, g.w, g.c];

function checkGrad(op: string, gy: Tensor, shape: number[], what = 'gradient'): void {
  if (gy.shape.length !== shape.length || gy.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${op}: ${what} ${shapeText(gy.shape)} does not match the output ${shapeText(shape)}`);
  }
}

/** Max pool forward: the output and, per output, the i32 index iy * W + ix of its maximum (PyTorch's indices). */
export function maxPool2dForward(x: Tensor, opts: PoolOptions): { y: Tensor; argmax: Tensor; geometry: PoolGeometry } {
  const g = poolGeometry('maxPool2d', x, opts);
  const y = Tensor.empty(x.device, outShape(g));
  const argmax = Tensor.empty(x.device, outShape(g), 'i32');
  const vec = g.c % 4 === 0 ? 4 : 1;
  x.device.run(poolKernel(vec === 4 ? 'max_forward4' : 'max_forward', g), [P(g, y.size / vec), y, argmax, x], [y.size / vec]);
  return { y, argmax, geometry: g };
}

/** Whether the windows tile the input exactly: kernel = stride, no padding, no rows or columns left over. */
function tiles(g: PoolGeometry): boolean {
  return g.kh === g.sh && g.kw === g.sw && g.ph === 0 && g.pw === 0 && g.oh * g.kh === g.h && g.ow * g.kw === g.w;
}

/**
 * dL/dx of max pool: each input element sums the output gradients whose argmax it is (where the windows
 * tile the input, each output writes its window instead: the same sums, one load per output).
 */
export function maxPool2dBackward(gy: Tensor, argmax: Tensor, g: PoolGeometry, into?: Tensor): Tensor {
  checkGrad('maxPool2d backward', gy, outShape(g));
  checkGrad('maxPool2d backward', argmax, outShape(g), 'argmax');
  if (argmax.dtype !== 'i32') throw new Error(`maxPool2d backward: argmax must be i32, got ${argmax.dtype}`);
  if (into) checkGrad('maxPool2d backward', into, inShape(g), 'gradient to add into');
  const gx = into ?? Tensor.empty(gy.device, inShape(g));
  const vec = g.c % 4 === 0 ? 4 : 1;
  const accumulate = { ACCUMULATE: +Boolean(into) };
  if (vec === 4 && tiles(g)) {
    gy.device.run(poolKernel('max_backward4_tiles', g, accumulate), [P(g, gy.size / 4), gx, gy, argmax], [gy.size / 4]);
  } else {
    gy.device.run(poolKernel(vec === 4 ? 'max_backward4' : 'max_backward', g, accumulate), [P(g, gx.size / vec), gx, gy, argmax], [gx.size / vec]);
  }
  return gx;
}

export function maxPool2d(x: Tensor, opts: PoolOptions): Tensor {
  const { y, argmax, geometry } = maxPool2dForward(x, opts);
  record('maxPool2d', [x], y, (gy, into) => [maxPool2dBackward(gy, argmax, geometry, into[0])]);
  if (!y.node) argmax.dispose();
  return y;
}

export function avgPool2d(x: Tensor, opts: AvgPoolOptions): Tensor {
  const g = poolGeometry('avgPool2d', x, opts);
  const includePad = opts.countIncludePad ?? true;
  const y = Tensor.empty(x.device, outShape(g));
  x.device.run(poolKernel('avg_forward', g, { INCLUDE_PAD: +includePad }), [P(g, y.size), y, x], [y.size]);
  return record('avgPool2d', [x], y, (gy) => {
    checkGrad('avgPool2d backward', gy, outShape(g));
    const gx = Tensor.empty(x.device, inShape(g));
    x.device.run(poolKernel('avg_backward', g, { INCLUDE_PAD: +includePad }), [P(g, gx.size), gx, gy], [gx.size]);
    return [gx];
  });
}

/**
 * Lanes along the pixels of globalAvgPool's workgroups (a power of 2; 256 / channels per workgroup at most).
 * On a GPU the block's lanes split the pixels (a tree sum in shared memory); on a software adapter each lane
 * sums its channel's pixels alone: barriers switch every SIMD batch of the workgroup, and 16 rows took 2.6x
 * as long as one at the network's 8x8x32 readout input (llvmpipe). Tests swap the entries.
 */
export const GLOBAL_AVG_ROWS = { software: 1, gpu: 16 };

/** [N, H, W, C] -> [N, C]: the mean over each sample's pixels, per (sample, channel block). */
export function globalAvgPool(x: Tensor): Tensor {
  const [n, h, w, c] = checkImage('globalAvgPool', x);
  const g: PoolGeometry = { n, h, w, c, oh: 1, ow: 1, kh: h, kw: w, sh: 1, sw: 1, ph: 0, pw: 0 };
  const y = Tensor.empty(x.device, [n, c]);
  const [cb, maxRows] = channelBlock(c);
  const rows = Math.min(maxRows, x.device.isSoftware ? GLOBAL_AVG_ROWS.software : GLOBAL_AVG_ROWS.gpu);
  x.device.run(poolKernel('global_avg_forward', g, {}, [cb, rows]), [P(g, y.size), y, x], [Math.ceil(c / cb) * cb, rows, n]);
  return record('globalAvgPool', [x], y, (gy) => {
    checkGrad('globalAvgPool backward', gy, [n, c]);
    const gx = Tensor.empty(x.device, x.shape);
    const vec = c % 4 === 0 ? 4 : 1;
    x.device.run(poolKernel(vec === 4 ? 'global_avg_backward4' : 'global_avg_backward', g), [P(g, gx.size / vec), gx, gy], [gx.size / vec]);
    return [gx];
  });
}
