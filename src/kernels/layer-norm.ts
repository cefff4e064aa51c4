/**
 * Layer norm over NHWC images as PyTorch's nn.GroupNorm(1, C): mean and biased variance per sample over
 * all of H, W and C; per-channel affine gamma, beta [C]. layerNormRelu fuses the ReLU that follows the norm
 * in the recurrent cell (y = relu(norm(x)); its backward masks by y > 0 inside the norm's kernels).
 * The plain functions layerNormForward / layerNormBackward are exported for cells that fuse their own
 * autograd; layerNorm / layerNormRelu record on the tape. Kernels: shaders/norm.wgsl.
 */
import { params, type Device, type Params } from '../engine/device.js';
import type { Kernel } from '../engine/shaders.js';
import { record } from '../engine/tape.js';
import { Tensor } from '../engine/tensor.js';
import { channelBlock } from './reduce.js';

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Rows of the per-sample workgroups (WG_X = 1; sum_rows reduces over rows). A software adapter runs a
 * workgroup's lanes as SIMD batches on one CPU thread and pays for every barrier and idle batch: 16 rows
 * were 2-4x faster than 256 on llvmpipe (layer norm forward and backward, [32, 32..8, 32..8, 8..32]).
 * A GPU wants 256 lanes to hide memory latency.
 */
export function sampleRows(device: Device): number {
  return device.isSoftware ? 16 : 256;
}

/** Checks x is NHWC f32 and each of `affine` is f32 [C]; returns [N, H, W, C]. */
export function checkNormInputs(op: string, x: Tensor, affine: [string, Tensor][]): [number, number, number, number] {
  if (x.shape.length !== 4) throw new Error(`${op}: input must be NHWC [N, H, W, C], got ${shapeText(x.shape)}`);
  if (x.dtype !== 'f32') throw new Error(`${op}: input must be f32, got ${x.dtype} ${shapeText(x.shape)}`);
  if (x.size === 0) throw new Error(`${op}: input ${shapeText(x.shape)} is empty`);
  const c = x.shape[3];
  for (const [name, t] of affine) {
    if (t.shape.length !== 1 || t.shape[0] !== c || t.dtype !== 'f32') {
      throw new Error(`${op}: ${name} must be f32 [${c}] for input ${shapeText(x.shape)}, got ${t.dtype} ${shapeText(t.shape)}`);
    }
    if (t.device !== x.device) throw new Error(`${op}: ${name} lives on another device than the input`);
  }
  return x.shape as unknown as [number, number, number, number];
}

/** shaders/norm.wgsl's uniform P; the channel count goes in as the override constant C. */
export function normParams(p: { n: number; hw: number; m?: number; total?: number; eps?: number; momentum?: number }): Params {
  return params().u(p.n, p.hw, p.m ?? 0, p.total ?? 0).f(p.eps ?? 0, p.momentum ?? 0);
}

/**
 * Per-channel sums over N, H, W of dL/dy (dbeta) and of dL/dy * xhat (dgamma), xhat = (x - mean) * rstd with
 * statistics per sample (layer norm) or per channel (batch norm). With `reluOutput`, dL/dy is first masked by
 * reluOutput > 0. Two dispatches: partial sums per (sample, channel block), then a fixed-order sum over samples.
 */
export function channelGradSums(
  gy: Tensor, x: Tensor, mean: Tensor, rstd: Tensor,
  opts: { perChannel: boolean; reluOutput?: Tensor; into?: AffineGrads },
): { gbeta: Tensor; ggamma: Tensor } {
  const [n, h, w, c] = x.shape;
  const device = x.device;
  const [cb, rows] = channelBlock(c);
  const P = normParams({ n, hw: h * w });
  const partials = Tensor.empty(device, [2, n, c]);
  const relu = opts.reluOutput !== undefined;
  device.run(
    { shader: 'norm', entry: 'channel_grad_partials', workgroup: [cb, rows], constants: { C: c, RELU: +relu, PER_CHANNEL: +opts.perChannel } },
    [P, partials, mean, rstd, x, gy, opts.reluOutput ?? gy],
    [Math.ceil(c / cb) * cb, rows, n],
  );
  return sumSamples(partials, opts.into);
}

/** Gradients of gamma and beta so far, to add into in place (both, or neither is used). */
export interface AffineGrads {
  gamma?: Tensor;
  beta?: Tensor;
}

/**
 * partials [2, N, C] -> dbeta = sum_n partials[0, n], dgamma = sum_n partials[1, n], in a fixed order; added
 * into `into`'s tensors (returned) where it holds both. Disposes partials.
 */
function sumSamples(partials: Tensor, into?: AffineGrads): { gbeta: Tensor; ggamma: Tensor } {
  const [, n, c] = partials.shape;
  const device = partials.device;
  const add = into?.gamma && into.beta && into.gamma.size === c && into.beta.size === c;
  const gbeta = add ? into!.beta! : Tensor.empty(device, [c]);
  const ggamma = add ? into!.gamma! : Tensor.empty(device, [c]);
  device.run({ shader: 'norm', entry: 'sum_samples', workgroup: [64], constants: { C: c, ACCUMULATE: +Boolean(add) } },
    [normParams({ n, hw: 0 }), gbeta, ggamma, partials], [c]);
  partials.dispose();
  return { gbeta, ggamma };
}

export interface LayerNormOptions {
  /** Fuse a ReLU after the norm. */
  relu?: boolean;
}

/** y = gamma * (x - mean) * rstd + beta (ReLU'd if asked), with mean and rstd = 1/sqrt(var + eps) per sample [N]. */
export function layerNormForward(
  x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5, opts: LayerNormOptions = {},
): { y: Tensor; mean: Tensor; rstd: Tensor } {
  const op = opts.relu ? 'layerNormRelu' : 'layerNorm';
  const [n, h, w, c] = checkNormInputs(op, x, [['gamma', gamma], ['beta', beta]]);
  if (!(eps > 0)) throw new Error(`${op}: eps must be > 0, got ${eps} (input ${shapeText(x.shape)})`);
  const device = x.device;
  const y = Tensor.empty(device, x.shape);
  const mean = Tensor.empty(device, [n]);
  const rstd = Tensor.empty(device, [n]);
  const rows = sampleRows(device);
  device.run(
    { shader: 'norm', entry: c % 4 === 0 ? 'ln_forward4' : 'ln_forward', workgroup: [1, rows], constants: { C: c, RELU: +(opts.relu ?? false) } },
    [normParams({ n, hw: h * w, m: h * w * c, eps }), y, mean, rstd, x, gamma, beta],
    [1, rows, n],
  );
  return { y, mean, rstd };
}

export interface LayerNormBackwardOptions {
  /** The fused ReLU's output y: the incoming gradient is masked by y > 0. */
  reluOutput?: Tensor;
  /** Compute dL/dx (default true) and dgamma, dbeta (default true). */
  needInput?: boolean;
  needAffine?: boolean;
  /** dgamma and dbeta are added into these (and returned) where both are given. */
  into?: AffineGrads;
}

/** Gradients of layer norm given dL/dy and the forward's saved mean and rstd. */
export function layerNormBackward(
  gy: Tensor, x: Tensor, mean: Tensor, rstd: Tensor, gamma: Tensor, opts: LayerNormBackwardOptions = {},
): { gx: Tensor | null; ggamma: Tensor | null; gbeta: Tensor | null } {
  const op = opts.reluOutput ? 'layerNormRelu backward' : 'layerNorm backward';
  const [n, h, w, c] = checkNormInputs(op, x, [['gamma', gamma]]);
  for (const [name, t] of [['gradient', gy], ['ReLU output', opts.reluOutput]] as [string, Tensor | undefined][]) {
    if (t && (t.shape.length !== 4 || t.shape.some((d, i) => d !== x.shape[i]))) {
      throw new Error(`${op}: ${name} ${shapeText(t.shape)} does not match the input ${shapeText(x.shape)}`);
    }
  }
  for (const [name, t] of [['mean', mean], ['rstd', rstd]] as [string, Tensor][]) {
    if (t.shape.length !== 1 || t.shape[0] !== n) throw new Error(`${op}: ${name} must be [${n}], got ${shapeText(t.shape)}`);
  }
  const device = x.device;
  const needInput = opts.needInput ?? true;
  const needAffine = opts.needAffine ?? true;
  const rows = sampleRows(device);
  const kernel = (entry: string): Kernel => ({ shader: 'norm', entry, workgroup: [1, rows], constants: { C: c, RELU: +(opts.reluOutput !== undefined) } });
  const bindings = (gx: Tensor) => [normParams({ n, hw: h * w, m: h * w * c }), gx, mean, rstd, x, gy, opts.reluOutput ?? gy, gamma];
  // One pass for dL/dx and the affine gradients' per-sample partials where each lane keeps to one channel quad.
  if (needInput && needAffine && c % 4 === 0 && rows % (c / 4) === 0) {
    const gx = Tensor.empty(device, x.shape);
    const partials = Tensor.empty(device, [2, n, c]);
    device.run(kernel('ln_backward4'), [...bindings(gx), partials], [1, rows, n]);
    return { gx, ...sumSamples(partials, opts.into) };
  }
  let gx: Tensor | null = null;
  if (needInput) {
    gx = Tensor.empty(device, x.shape);
    device.run(kernel(c % 4 === 0 ? 'ln_backward_x4' : 'ln_backward_x'), bindings(gx), [1, rows, n]);
  }
  if (!needAffine) return { gx, ggamma: null, gbeta: null };
  const { gbeta, ggamma } = channelGradSums(gy, x, mean, rstd, { perChannel: false, reluOutput: opts.reluOutput, into: opts.into });
  return { gx, ggamma, gbeta };
}

function recorded(x: Tensor, gamma: Tensor, beta: Tensor, eps: number, relu: boolean): Tensor {
  const { y, mean, rstd } = layerNormForward(x, gamma, beta, eps, { relu });
  record(relu ? 'layerNormRelu' : 'layerNorm', [x, gamma, beta], y, (gy, into) => {
    const g = layerNormBackward(gy, x, mean, rstd, gamma, {
      reluOutput: relu ? y : undefined,
      needInput: x.requiresGrad,
      needAffine: gamma.requiresGrad || beta.requiresGrad,
      into: { gamma: into[1], beta: into[2] },
    });
    return [g.gx, g.ggamma, g.gbeta];
  });
  if (!y.node) mean.dispose(), rstd.dispose();
  return y;
}

/** nn.GroupNorm(1, C) on NHWC: normalises each sample over H, W, C; gamma, beta [C]. */
export const layerNorm = (x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5) => recorded(x, gamma, beta, eps, false);

/** relu(layerNorm(x)) in one pass each way. */
export const layerNormRelu = (x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5) => recorded(x, gamma, beta, eps, true);
