/** Softmax cross-entropy with integer labels: per-row losses [N] from logits [N, K] and labels [N] (i32). */
import { params } from '../engine/device.js';
import { record } from '../engine/tape.js';
import { Tensor } from '../engine/tensor.js';
import { mean } from './reduce.js';

export function softmaxCrossEntropyRows(logits: Tensor, labels: Tensor): { losses: Tensor; probs: Tensor } {
  if (logits.shape.length !== 2) throw new Error(`softmaxCrossEntropy: logits must be [N, K], got [${logits.shape.join(', ')}]`);
  const [n, k] = logits.shape;
  if (labels.dtype !== 'i32' || labels.shape.length !== 1 || labels.shape[0] !== n) {
    throw new Error(`softmaxCrossEntropy: labels must be i32 [${n}] for logits [${n}, ${k}], got ${labels.dtype} [${labels.shape.join(', ')}]`);
  }
  const device = logits.device;
  const losses = Tensor.empty(device, [n]);
  const probs = Tensor.empty(device, [n, k]);
  const P = params().u(n, k);
  device.run({ shader: 'cross_entropy', entry: 'forward', workgroup: [64] }, [P, losses, probs, logits, labels], [n]);
  record('softmaxCrossEntropy', [logits], losses, (gy) => {
    const gx = Tensor.empty(device, [n, k]);
    device.run({ shader: 'cross_entropy', entry: 'backward', workgroup: [64] }, [P, gx, probs, gy, labels], [n * k]);
    return [gx];
  });
  return { losses, probs };
}

/** Mean softmax cross-entropy over the rows: a scalar [1]. */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor): Tensor {
  const { losses, probs } = softmaxCrossEntropyRows(logits, labels);
  const loss = mean(losses);
  if (!losses.requiresGrad) losses.dispose(), probs.dispose();
  return loss;
}
