/** matmul with optional transposes, and linear (PyTorch's convention: weight [out, in], y = x W^T + b). */
import { params } from '../engine/device.js';
import { record } from '../engine/tape.js';
import { Tensor } from '../engine/tensor.js';
import { add } from './elementwise.js';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

/** C = op(A) op(B) for 2-D A, B. */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  if (a.shape.length !== 2 || b.shape.length !== 2) {
    throw new Error(`matmul: 2-D operands expected, got [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`);
  }
  const [m, k] = transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [k2, n] = transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (k !== k2) {
    throw new Error(`matmul: inner sizes differ: [${a.shape.join(', ')}]${transA ? '^T' : ''} x [${b.shape.join(', ')}]${transB ? '^T' : ''}`);
  }
  const c = Tensor.empty(a.device, [m, n]);
  a.device.run(
    { shader: 'matmul', entry: 'matmul', workgroup: [8, 8], constants: { TRANS_A: +transA, TRANS_B: +transB } },
    [params().u(m, n, k, 0), c, a, b],
    [Math.ceil(n / 4), Math.ceil(m / 4)],
  );
  return record('matmul', [a, b], c, (gc) => [
    a.requiresGrad
      ? transA
        ? matmul(b, gc, { transA: transB, transB: true })
        : matmul(gc, b, { transB: !transB })
      : null,
    b.requiresGrad
      ? transB
        ? matmul(gc, a, { transA: true, transB: transA })
        : matmul(a, gc, { transA: !transA })
      : null,
  ]);
}

/** y = x W^T + b with x [M, in], W [out, in], b [out]. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  if (x.shape.length !== 2 || weight.shape.length !== 2 || x.shape[1] !== weight.shape[1]) {
    throw new Error(`linear: input [${x.shape.join(', ')}] does not fit weight [${weight.shape.join(', ')}] (expected [out, ${x.shape[1]}])`);
  }
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== weight.shape[0])) {
    throw new Error(`linear: bias [${bias.shape.join(', ')}] does not fit weight [${weight.shape.join(', ')}]`);
  }
  const y = matmul(x, weight, { transB: true });
  if (!bias) return y;
  const out = add(y, bias);
  if (!y.requiresGrad) y.dispose();
  return out;
}
