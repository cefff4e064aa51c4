/**
 * Batch norm over NHWC images as PyTorch's BatchNorm2d: per-channel statistics over N, H, W. Training
 * normalises with the batch mean and biased variance and updates the running statistics on the GPU
 * (running_var takes the unbiased variance; num_batches_tracked counts); eval normalises with the running
 * statistics. The recurrent network keeps one BatchNormState per (layer, time step), as rcnn-sat does, so a
 * state is three small tensors set up by one dispatch. batchNormRelu fuses the ReLU that follows the norm in the
 * recurrent cell (y = relu(norm(x)); its backward masks by y > 0 inside the norm's kernels). Kernels: shaders/norm.wgsl.
 */
import type { Device } from '../engine/device.js';
import { record, keep } from '../engine/tape.js';
import { Tensor } from '../engine/tensor.js';
import { checkNormInputs, normParams, sampleRows } from './layer-norm.js';
import { channelBlock } from './reduce.js';

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Running statistics of one batch-norm site, on the GPU (so a captured training step updates them on replay).
 * Long-lived like parameters: kept out of tidy() scopes; dispose() when done. Creating one costs three
 * small pooled buffers and one dispatch.
 */
export class BatchNormState {
  /** [C], starts at 0. */
  readonly runningMean: Tensor;
  /** [C], starts at 1. */
  readonly runningVar: Tensor;
  /** i32 [1], starts at 0; read with `(await s.numBatchesTracked.read())[0]`, set with `s.numBatchesTracked.write([k])`. */
  readonly numBatchesTracked: Tensor;

  constructor(device: Device, readonly channels: number) {
    if (!Number.isInteger(channels) || channels < 1) throw new Error(`BatchNormState: channels must be an integer >= 1, got ${channels}`);
    this.runningMean = keep(Tensor.empty(device, [channels]));
    this.runningVar = keep(Tensor.empty(device, [channels]));
    this.numBatchesTracked = keep(Tensor.empty(device, [1], 'i32'));
    device.run(
      { shader: 'norm', entry: 'bn_state_init', workgroup: [64] },
      [normParams({ n: 1, hw: 1, total: channels }), this.runningMean, this.runningVar, this.numBatchesTracked],
      [channels],
    );
  }

  dispose(): void {
    this.runningMean.dispose();
    this.runningVar.dispose();
    this.numBatchesTracked.dispose();
  }
}

export interface BatchNormOptions {
  training: boolean;
  /** Weight of the new batch in the running statistics (PyTorch's default 0.1). */
  momentum?: number;
  /**
   * Training mode only: fold this batch into the running statistics (default true). False re-runs a training
   * forward (e.g. recomputation for checkpointed backprop) without counting the batch twice.
   */
  updateRunningStats?: boolean;
  eps?: number;
}

function batchNormOp(x: Tensor, gamma: Tensor, beta: Tensor, state: BatchNormState, opts: BatchNormOptions, relu: boolean): Tensor {
  const op = relu ? 'batchNormRelu' : 'batchNorm';
  const [n, h, w, c] = checkNormInputs(op, x, [['gamma', gamma], ['beta', beta]]);
  const momentum = opts.momentum ?? 0.1;
  const eps = opts.eps ?? 1e-5;
  const training = opts.training;
  if (state.channels !== c) throw new Error(`${op}: state has ${state.channels} channels, input ${shapeText(x.shape)} has ${c}`);
  if (state.runningMean.disposed) throw new Error(`${op}: state was disposed (input ${shapeText(x.shape)})`);
  if (!(momentum >= 0 && momentum <= 1)) throw new Error(`${op}: momentum must be in [0, 1], got ${momentum}`);
  if (!(eps > 0)) throw new Error(`${op}: eps must be > 0, got ${eps}`);
  const count = n * h * w;
  if (training && count < 2) throw new Error(`${op}: training needs more than 1 value per channel, input ${shapeText(x.shape)}`);

  const device = x.device;
  // C % 4 == 0: elementwise passes take a vec4 (4 adjacent channels) per thread, and where the channel quads
  // divide the workgroup's rows the reductions run one sample per workgroup on vec4s (2-4x fewer loads).
  const vec4 = c % 4 === 0;
  const rows = sampleRows(device);
  const vec4Reductions = vec4 && rows % (c / 4) === 0;
  const P = normParams({ n, hw: h * w, m: count, total: vec4 ? x.size / 4 : x.size, eps, momentum });
  // Threads of the elementwise passes: one per element, or for the vec4 kernels norm.wgsl's vec4_stride()
  // (each thread takes PER_THREAD = 8 vec4s of one channel quad).
  const unit = 256 * (c / 4);
  const elementwise = vec4 ? Math.ceil(Math.ceil(x.size / 4 / 8) / unit) * unit : x.size;
  const mean = Tensor.empty(device, [c]);
  const rstd = Tensor.empty(device, [c]);
  if (training) {
    const moments = Tensor.empty(device, [2, n, c]);
    if (vec4Reductions) {
      device.run({ shader: 'norm', entry: 'bn_moments4', workgroup: [1, rows], constants: { C: c } }, [P, moments, x], [1, rows, n]);
    } else {
      const [cb, cbRows] = channelBlock(c);
      device.run({ shader: 'norm', entry: 'channel_moments', workgroup: [cb, cbRows], constants: { C: c } }, [P, moments, x], [Math.ceil(c / cb) * cb, cbRows, n]);
    }
    device.run(
      { shader: 'norm', entry: 'bn_combine_moments', workgroup: [64], constants: { C: c, UPDATE_RUNNING: +(opts.updateRunningStats ?? true) } },
      [P, state.runningMean, mean, rstd, moments, state.runningVar, state.numBatchesTracked],
      [c],
    );
    moments.dispose();
  } else {
    device.run({ shader: 'norm', entry: 'bn_eval_stats', workgroup: [64], constants: { C: c } }, [P, state.runningMean, mean, rstd, state.runningVar], [c]);
  }
  const y = Tensor.empty(device, x.shape);
  device.run(
    { shader: 'norm', entry: vec4 ? 'bn_normalize4' : 'bn_normalize', workgroup: [256], constants: { C: c, RELU: +relu } },
    [P, y, mean, rstd, x, gamma, beta],
    [elementwise],
  );

  record(op, [x, gamma, beta], y, (gy) => {
    if (gy.shape.some((d, i) => d !== x.shape[i])) throw new Error(`${op} backward: gradient ${shapeText(gy.shape)} for input ${shapeText(x.shape)}`);
    // The gradient reaching the norm, masked by the fused ReLU's output y > 0 inside the kernels.
    const mask = relu ? y : gy;
    // Per-sample partial sums of dL/dy and dL/dy * xhat; summed over samples they are dbeta and dgamma, which
    // training's dL/dx needs as well.
    const partials = Tensor.empty(device, [2, n, c]);
    if (vec4Reductions) {
      device.run({ shader: 'norm', entry: 'bn_grad_partials4', workgroup: [1, rows], constants: { C: c, RELU: +relu } }, [P, partials, mean, rstd, x, gy, mask], [1, rows, n]);
    } else {
      const [cb, cbRows] = channelBlock(c);
      device.run(
        { shader: 'norm', entry: 'channel_grad_partials', workgroup: [cb, cbRows], constants: { C: c, RELU: +relu, PER_CHANNEL: 1 } },
        [P, partials, mean, rstd, x, gy, mask],
        [Math.ceil(c / cb) * cb, cbRows, n],
      );
    }
    const gbeta = Tensor.empty(device, [c]);
    const ggamma = Tensor.empty(device, [c]);
    const coef = Tensor.empty(device, [4, c]);
    device.run(
      { shader: 'norm', entry: 'bn_sum_samples', workgroup: [64], constants: { C: c, TRAINING: +training } },
      [P, gbeta, ggamma, partials, gamma, mean, rstd, coef],
      [c],
    );
    partials.dispose();
    let gx: Tensor | null = null;
    if (x.requiresGrad) {
      gx = Tensor.empty(device, x.shape);
      device.run(
        { shader: 'norm', entry: vec4 ? 'bn_backward_x4' : 'bn_backward_x', workgroup: [256], constants: { C: c, RELU: +relu } },
        [P, gx, coef, x, gy, mask],
        [elementwise],
      );
    }
    coef.dispose();
    return [gx, ggamma, gbeta];
  });
  if (!y.node) mean.dispose(), rstd.dispose();
  return y;
}

/** BatchNorm2d on NHWC: per-channel statistics over N, H, W (the batch's in training, the running ones in eval). */
export const batchNorm = (x: Tensor, gamma: Tensor, beta: Tensor, state: BatchNormState, opts: BatchNormOptions): Tensor =>
  batchNormOp(x, gamma, beta, state, opts, false);

/** relu(batchNorm(x)) with the ReLU fused into the normalise pass and its mask into the backward's kernels. */
export const batchNormRelu = (x: Tensor, gamma: Tensor, beta: Tensor, state: BatchNormState, opts: BatchNormOptions): Tensor =>
  batchNormOp(x, gamma, beta, state, opts, true);
