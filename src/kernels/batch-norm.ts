/**
 * Batch norm over NHWC images as PyTorch's BatchNorm2d: per-channel statistics over N, H, W. Training
 * normalises with the batch mean and biased variance and updates the running statistics on the GPU
 * (running_var takes the unbiased variance; num_batches_tracked counts); eval normalises with the running
 * statistics. The recurrent network keeps one BatchNormState per (layer, time step), as rcnn-sat does, so a
 * state is three small tensors set up by one dispatch. Kernels: shaders/norm.wgsl.
 */
import type { Device } from '../engine/device.js';
import { record, keep } from '../engine/tape.js';
import { Tensor } from '../engine/tensor.js';
import { channelBlock, channelGradSums, checkNormInputs, normParams } from './layer-norm.js';

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

export function batchNorm(x: Tensor, gamma: Tensor, beta: Tensor, state: BatchNormState, opts: BatchNormOptions): Tensor {
  const op = 'batchNorm';
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
  const P = normParams({ n, hw: h * w, m: count, total: x.size, eps, momentum });
  const mean = Tensor.empty(device, [c]);
  const rstd = Tensor.empty(device, [c]);
  if (training) {
    const [cb, rows] = channelBlock(c);
    const moments = Tensor.empty(device, [2, n, c]);
    device.run({ shader: 'norm', entry: 'channel_moments', workgroup: [cb, rows], constants: { C: c } }, [P, moments, x], [Math.ceil(c / cb) * cb, rows, n]);
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
  device.run({ shader: 'norm', entry: 'bn_normalize', workgroup: [256], constants: { C: c } }, [P, y, mean, rstd, x, gamma, beta], [x.size]);

  record(op, [x, gamma, beta], y, (gy) => {
    if (gy.shape.some((d, i) => d !== x.shape[i])) throw new Error(`${op} backward: gradient ${shapeText(gy.shape)} for input ${shapeText(x.shape)}`);
    // dbeta = sum gy and dgamma = sum gy * xhat; training's dL/dx needs both as well.
    const { gbeta, ggamma } = channelGradSums(gy, x, mean, rstd, { perChannel: true });
    let gx: Tensor | null = null;
    if (x.requiresGrad) {
      gx = Tensor.empty(device, x.shape);
      device.run(
        { shader: 'norm', entry: 'bn_backward_x', workgroup: [256], constants: { C: c, TRAINING: +training } },
        [P, gx, mean, rstd, x, gy, gbeta, gamma, ggamma],
        [x.size],
      );
    }
    return [gx, ggamma, gbeta];
  });
  if (!y.node) mean.dispose(), rstd.dispose();
  return y;
}
