/**
 * One training step of the BL net: forward through all steps with a loss at every step, backward through
 * time, optimiser update. Three ways to backpropagate:
 *  - full BPTT (default);
 *  - truncated (`bptt: K`): gradients through the lateral/top-down inputs are cut every K steps;
 *  - recompute (`recompute: S`): activation checkpointing. A forward without a tape keeps only the states
 *    at segment boundaries (every S steps); backward then re-runs each segment's forward with a tape, last
 *    segment first, and backpropagates its losses plus the gradient carried in from the segment after it.
 *    Memory holds one segment's activations instead of all T steps'; gradients equal full BPTT's.
 */
import type { Optimizer } from '../engine/optimizers.js';
import { backward, noGrad, tidy } from '../engine/tape.js';
import type { Tensor } from '../engine/tensor.js';
import { add, mul, scale } from '../kernels/elementwise.js';
import { softmaxCrossEntropy } from '../kernels/cross-entropy.js';
import { sum } from '../kernels/reduce.js';
import { type BLNet, detach } from '../model/bl-net.js';

export interface StepOptions {
  steps: number;
  bptt?: number;
  recompute?: number;
}

export interface StepResult {
  loss: Tensor;
  /** Logits of the last time step [B, classes]. */
  lastLogits: Tensor;
}

/** Computes gradients into each parameter's `.grad` and returns the loss (not yet updated weights). */
export function computeGradients(net: BLNet, x: Tensor, labels: Tensor, o: StepOptions): StepResult {
  if (!o.recompute || o.recompute >= o.steps) {
    return tidy(net.device, () => {
      const { loss, logits } = net.loss(x, labels, o.steps, { bptt: o.bptt });
      backward(loss);
      return { loss: detach(loss), lastLogits: detach(logits[logits.length - 1]) };
    });
  }
  return recomputeGradients(net, x, labels, o.steps, o.recompute, o.bptt);
}

function recomputeGradients(net: BLNet, x: Tensor, labels: Tensor, steps: number, seg: number, bptt?: number): StepResult {
  const device = net.device;
  const starts: number[] = [];
  for (let t = 0; t < steps; t += seg) starts.push(t);
  // Pass 1: no tape; keep the states that start each segment.
  const boundaries: (Tensor[] | null)[] = [null];
  noGrad(device, () =>
    tidy(device, () => {
      let prev: Tensor[] | undefined;
      for (let k = 0; k + 1 < starts.length; k++) {
        const len = starts[k + 1] - starts[k];
        const out = net.forward(x, len, { bptt, initial: prev ? { t0: starts[k], states: prev } : undefined });
        prev = out.states[out.states.length - 1];
        boundaries.push(prev);
      }
      return boundaries.filter((b): b is Tensor[] => b !== null).flat();
    }),
  );
  // Pass 2: segments in reverse, each re-run with a tape.
  let carry: (Tensor | null)[] | null = null;
  const segmentLosses: Tensor[] = [];
  let lastLogits: Tensor | null = null;
  const updateStats = net.updateRunningStats;
  net.updateRunningStats = false;
  try {
    for (let k = starts.length - 1; k >= 0; k--) {
      const len = (starts[k + 1] ?? steps) - starts[k];
      const init = boundaries[k]?.map((t) => detach(t).requireGrad()) ?? null;
      // A cut at the segment's first step (truncated BPTT) stops the carried gradient too.
      const cutAtStart = bptt !== undefined && starts[k] > 0 && starts[k] % bptt === 0;
      const result = tidy(device, () => {
        const out = net.forward(x, len, { bptt, initial: init ? { t0: starts[k], states: init } : undefined });
        let loss: Tensor | null = null;
        for (const l of out.logits) {
          const ce = softmaxCrossEntropy(l, labels);
          loss = loss ? add(loss, ce) : ce;
        }
        loss = scale(loss!, 1 / steps);
        let objective = loss;
        if (carry) {
          const last = out.states[out.states.length - 1];
          for (let n = 0; n < last.length; n++) {
            const c = carry[n];
            if (c) objective = add(objective, sum(mul(last[n], c)));
          }
        }
        backward(objective);
        return { loss: detach(loss), logits: k === starts.length - 1 ? detach(out.logits[out.logits.length - 1]) : null };
      });
      if (k === starts.length - 1) lastLogits = result.logits;
      segmentLosses.push(result.loss);
      carry?.forEach((c) => c?.dispose());
      carry = init && !cutAtStart ? init.map((t) => t.grad) : null;
      if (init && cutAtStart) init.forEach((t) => t.grad?.dispose());
      init?.forEach((t) => {
        t.grad = null;
        t.dispose();
      });
      boundaries[k]?.forEach((t) => t.dispose());
    }
  } finally {
    net.updateRunningStats = updateStats;
  }
  carry?.forEach((c) => c?.dispose());
  if (segmentLosses.length === 1) return { loss: segmentLosses[0], lastLogits: lastLogits! };
  const loss = noGrad(device, () => tidy(device, () => segmentLosses.reduce((a, b) => add(a, b))));
  segmentLosses.forEach((l) => l.dispose());
  return { loss, lastLogits: lastLogits! };
}

/** Gradients, then one optimiser update. */
export function trainStep(net: BLNet, opt: Optimizer, x: Tensor, labels: Tensor, o: StepOptions): StepResult {
  const r = computeGradients(net, x, labels, o);
  opt.step();
  return r;
}
