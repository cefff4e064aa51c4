/**
 * The lateral recurrent cell of BL/BLT nets as one op:
 *   h = ReLU(Norm(W_b * bottom + W_l * lateral (+ W_t * topDown) + b))
 * Fused path: the bottom-up and lateral convolutions (and bias) are one implicit GEMM whose reduction
 * runs over both sources (conv2dPair), and the ReLU is fused into the norm's apply pass (and its mask into
 * the norm's backward). The unfused path composes the separate ops; it is the reference tests compare with.
 */
import type { Tensor } from '../engine/tensor.js';
import { type BatchNormState, batchNorm, batchNormRelu } from './batch-norm.js';
import { conv2d, conv2dPair } from './conv2d.js';
import { add, relu } from './elementwise.js';
import { layerNorm, layerNormRelu } from './layer-norm.js';

export type CellNorm =
  | { kind: 'layer'; gamma: Tensor; beta: Tensor }
  | { kind: 'batch'; gamma: Tensor; beta: Tensor; state: BatchNormState; training: boolean; updateRunningStats?: boolean };

export interface CellInputs {
  /** The bottom-up input, already pooled: [N, H, W, Cin]. */
  bottom: Tensor;
  /** This layer's state at t-1: [N, H, W, C], or null at t = 0. */
  lateral: Tensor | null;
  /** The layer above's state at t-1, upsampled to H x W (BLT), or null. */
  topDown?: Tensor | null;
}

export interface CellWeights {
  /** HWIO [k, k, Cin, C] */
  bottomUp: Tensor;
  /** Bias on the summed convolutions (none: the norm that follows shifts on its own). */
  bias?: Tensor;
  lateral?: Tensor;
  topDown?: Tensor;
}

const SAME = { padding: 'same' as const };

function normalise(pre: Tensor, norm: CellNorm, fuseRelu: boolean): Tensor {
  if (norm.kind === 'layer') return fuseRelu ? layerNormRelu(pre, norm.gamma, norm.beta) : relu(layerNorm(pre, norm.gamma, norm.beta));
  const opts = { training: norm.training, updateRunningStats: norm.updateRunningStats ?? true };
  return fuseRelu ? batchNormRelu(pre, norm.gamma, norm.beta, norm.state, opts) : relu(batchNorm(pre, norm.gamma, norm.beta, norm.state, opts));
}

export function recurrentCell(inputs: CellInputs, w: CellWeights, norm: CellNorm, opts: { unfused?: boolean } = {}): Tensor {
  const { bottom, lateral, topDown } = inputs;
  if (lateral && !w.lateral) throw new Error('recurrentCell: a lateral input needs lateral weights');
  if (topDown && !w.topDown) throw new Error('recurrentCell: a top-down input needs top-down weights');
  let pre: Tensor;
  if (opts.unfused) {
    pre = conv2d(bottom, w.bottomUp, w.bias, SAME);
    if (lateral) pre = add(pre, conv2d(lateral, w.lateral!, undefined, SAME));
  } else {
    pre = lateral ? conv2dPair(bottom, w.bottomUp, lateral, w.lateral!, w.bias, SAME) : conv2d(bottom, w.bottomUp, w.bias, SAME);
  }
  if (topDown) pre = add(pre, conv2d(topDown, w.topDown!, undefined, SAME));
  return normalise(pre, norm, !opts.unfused);
}
