/** reshape: a view over the same storage; the gradient is the upstream gradient viewed back. */
import { record } from '../engine/tape.js';
import type { Tensor } from '../engine/tensor.js';

/** One dimension may be -1 (inferred). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const inferred = shape.filter((d) => d === -1).length;
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const resolved = shape.map((d) => (d === -1 ? x.size / known : d));
  if (inferred > 1 || resolved.some((d) => !Number.isInteger(d) || d < 0) || resolved.reduce((a, b) => a * b, 1) !== x.size) {
    throw new Error(`reshape: [${x.shape.join(', ')}] (${x.size} elements) cannot become [${shape.join(', ')}]`);
  }
  const y = x.view(resolved);
  return record('reshape', [x], y, (gy) => [gy.view(x.shape)]);
}
