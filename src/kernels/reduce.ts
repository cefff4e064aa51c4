/** Reductions: column sums of [R, C] (bias and channel gradients), sum and mean to a scalar. */
import { params } from '../engine/device.js';
import type { Kernel } from '../engine/shaders.js';
import { record } from '../engine/tape.js';
import { Tensor } from '../engine/tensor.js';

const SUM_ROWS: Kernel = { shader: 'reduce', entry: 'sum_rows', workgroup: [64] };
const SUM_ROWS4: Kernel = { shader: 'reduce', entry: 'sum_rows4', workgroup: [64] };
const BROADCAST: Kernel = { shader: 'elementwise', entry: 'broadcast', workgroup: [256] };
/**
 * Rows each thread adds per pass: long enough to amortise the pass (tall bias gradients such as
 * [32768, 8] take 2 passes, not 3), short enough to keep the f32 error of a sequential sum small.
 */
const CHUNK = 256;

/** [R, C] -> [C], times `scale`. Passes of CHUNK rows keep the f32 summation tree shallow. */
function columnSums(x: Tensor, rows: number, cols: number, scale: number): Tensor {
  const vec = cols % 4 === 0 ? 4 : 1;
  let cur = x;
  let r = rows;
  do {
    const groups = Math.ceil(r / CHUNK);
    const out = Tensor.empty(x.device, groups === 1 ? [cols] : [groups, cols]);
    x.device.run(vec === 4 ? SUM_ROWS4 : SUM_ROWS, [params().u(r, cols, CHUNK).f(groups === 1 ? scale : 1), out, cur], [groups * cols / vec]);
    if (cur !== x) cur.dispose();
    cur = out;
    r = groups;
  } while (r > 1);
  return cur;
}

/** y[i] = alpha * v[i % c] over `shape`. */
export function broadcastTo(v: Tensor, shape: readonly number[], alpha = 1): Tensor {
  const y = Tensor.empty(v.device, shape);
  v.device.run(BROADCAST, [params().u(y.size, v.size).f(alpha, 0), y, v], [y.size]);
  return y;
}

/** Sums a [R, C] tensor over its rows: [C]. */
export function sumRows(x: Tensor): Tensor {
  if (x.shape.length !== 2) throw new Error(`sumRows: expected [R, C], got [${x.shape.join(', ')}]`);
  const [rows, cols] = x.shape;
  if (rows === 0) throw new Error('sumRows: no rows');
  const y = columnSums(x, rows, cols, 1);
  return record('sumRows', [x], y, (gy) => [broadcastTo(gy, x.shape)]);
}

function reduceAll(op: string, x: Tensor, scale: number): Tensor {
  if (x.size === 0) throw new Error(`${op}: empty tensor`);
  const y = columnSums(x, x.size, 1, scale);
  return record(op, [x], y, (gy) => [broadcastTo(gy, x.shape, scale)]);
}

export const sum = (x: Tensor) => reduceAll('sum', x, 1);
export const mean = (x: Tensor) => reduceAll('mean', x, 1 / x.size);
