/**
 * Elementwise ops: add, sub, mul (same shape, or a [C] operand broadcast over the last, channel, axis),
 * scale, relu; and the in-place helpers fill and accumulate that autograd and optimisers use.
 */
import { params, type Binding, type Device } from '../engine/device.js';
import type { Kernel } from '../engine/shaders.js';
import { record } from '../engine/tape.js';
import { Tensor } from '../engine/tensor.js';
import { sumRows } from './reduce.js';

const k = (entry: string): Kernel => ({ shader: 'elementwise', entry, workgroup: [256] });
const P = (n: number, c = 1, alpha = 1, beta = 1) => params().u(n, c).f(alpha, beta);

/** Runs `entry` over n elements: its vec4 form `entry`4 where n % 4 == 0 (a thread per 4 elements), else scalar. */
function runFlat(device: Device, entry: string, n: number, bindings: Binding[]): void {
  if (n % 4 === 0) device.run(k(`${entry}4`), bindings, [n / 4]);
  else device.run(k(entry), bindings, [n]);
}

function sameShape(op: string, a: Tensor, b: Tensor): boolean {
  if (a.device !== b.device) throw new Error(`${op}: tensors live on different devices`);
  if (a.dtype !== 'f32' || b.dtype !== 'f32') throw new Error(`${op}: f32 tensors expected, got ${a.dtype} and ${b.dtype}`);
  if (a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i])) return true;
  const c = a.shape[a.shape.length - 1];
  if (b.shape.length === 1 && b.shape[0] === c) return false;
  throw new Error(`${op}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] do not match ` +
    '(the second must equal the first or be [C], broadcast over the last axis)');
}

function axpby(op: string, a: Tensor, b: Tensor, beta: number): Tensor {
  const same = sameShape(op, a, b);
  const y = Tensor.empty(a.device, a.shape);
  const c = a.shape[a.shape.length - 1] ?? 1;
  if (same) runFlat(a.device, 'axpby', a.size, [P(a.size, c, 1, beta), y, a, b]);
  else a.device.run(k('add_channel'), [P(a.size, c, 1, beta), y, a, b], [a.size]);
  return record(op, [a, b], y, (gy) => [
    copy(gy),
    same ? scale(gy, beta) : scaleInPlace(sumRows(gy.view([gy.size / c, c])), beta),
  ]);
}

export const add = (a: Tensor, b: Tensor) => axpby('add', a, b, 1);
export const sub = (a: Tensor, b: Tensor) => axpby('sub', a, b, -1);

export function mul(a: Tensor, b: Tensor): Tensor {
  const same = sameShape('mul', a, b);
  const y = Tensor.empty(a.device, a.shape);
  const c = a.shape[a.shape.length - 1] ?? 1;
  a.device.run(k(same ? 'mul' : 'mul_channel'), [P(a.size, c), y, a, b], [a.size]);
  return record('mul', [a, b], y, (gy) => {
    const ga = mul(gy, b);
    if (same) return [ga, mul(gy, a)];
    const gya = mul(gy, a);
    const gb = sumRows(gya.view([gy.size / c, c]));
    gya.dispose();
    return [ga, gb];
  });
}

export function scale(a: Tensor, alpha: number): Tensor {
  const y = Tensor.empty(a.device, a.shape);
  runFlat(a.device, 'axpby', a.size, [P(a.size, 1, alpha, 0), y, a, a]);
  return record('scale', [a], y, (gy) => [scale(gy, alpha)]);
}

export function relu(a: Tensor): Tensor {
  const y = Tensor.empty(a.device, a.shape);
  a.device.run(k('relu'), [P(a.size), y, a], [a.size]);
  return record('relu', [a], y, (gy) => [reluBackward(gy, y)]);
}

/** dL/dx of relu given dL/dy and the forward output y. */
export function reluBackward(gy: Tensor, y: Tensor): Tensor {
  const gx = Tensor.empty(gy.device, gy.shape);
  gy.device.run(k('relu_backward'), [P(gy.size), gx, gy, y], [gy.size]);
  return gx;
}

function copy(a: Tensor): Tensor {
  return scale(a, 1);
}

/** A new tensor filled with `value` (a kernel, not an upload, so it can be captured). */
export function fill(device: Device, shape: readonly number[], value: number): Tensor {
  const y = Tensor.empty(device, shape);
  fillInPlace(y, value);
  return y;
}

export function fillInPlace(y: Tensor, value: number): Tensor {
  y.device.run(k('fill'), [P(y.size, 1, value), y], [y.size]);
  return y;
}

/** y += alpha * x, in place (not recorded on the tape). */
export function accumulate(y: Tensor, x: Tensor, alpha = 1): void {
  if (y.size !== x.size) throw new Error(`accumulate: ${y.describe()} += ${x.describe()}`);
  runFlat(y.device, 'accumulate', y.size, [P(y.size, 1, alpha), y, x]);
}

export function scaleInPlace(y: Tensor, alpha: number): Tensor {
  if (alpha === 1) return y;
  y.device.run(k('scale_inplace'), [P(y.size, 1, alpha), y], [y.size]);
  return y;
}
