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

/**
 * Channels per workgroup of a per-(sample, channel) reduction over NHWC pixels (norms, pooling): up to 16
 * adjacent channels on x, the other lanes of 256 on pixels.
 */
export function channelBlock(c: number): [number, number] {
  const cb = Math.min(16, 2 ** Math.ceil(Math.log2(c)));
  return [cb, 256 / cb];
}

/**
 * [R, C] -> [C], times `scale`. Passes of CHUNK rows keep the f32 summation tree shallow. With `into`
 * (C values) the last pass adds the sums into it, and it is returned.
 */
function columnSums(x: Tensor, rows: number, cols: number, scale: number, into?: Tensor): Tensor {
  if (into && into.size !== cols) throw new Error(`sumRows: cannot add ${cols} column sums into ${into.describe()}`);
  const vec = cols % 4 === 0 ? 4 : 1;
  let cur = x;
  let r = rows;
  do {
    const groups = Math.ceil(r / CHUNK);
    const last = groups === 1;
    const out = last && into ? into : Tensor.empty(x.device, last ? [cols] : [groups, cols]);
    const kernel = { ...(vec === 4 ? SUM_ROWS4 : SUM_ROWS), constants: { ACCUMULATE: +Boolean(last && into) } };
    x.device.run(kernel, [params().u(r, cols, CHUNK).f(last ? scale : 1), out, cur], [groups * cols / vec]);
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

/** [rows, cols] of a non-empty [R, C] tensor, or an error naming the op. */
function matrixShape(op: string, x: Tensor): [number, number] {
  if (x.shape.length !== 2) throw new Error(`${op}: expected [R, C], got [${x.shape.join(', ')}]`);
  if (x.shape[0] === 0) throw new Error(`${op}: no rows`);
  return [x.shape[0], x.shape[1]];
}

/** Sums a [R, C] tensor over its rows: [C]. */
export function sumRows(x: Tensor): Tensor {
  const y = columnSums(x, ...matrixShape('sumRows', x), 1);
  return record('sumRows', [x], y, (gy) => [broadcastTo(gy, x.shape)]);
}

/** into += the row sums of a [R, C] tensor (into holds C values, any shape); returns into. Not recorded. */
export function addRowSums(into: Tensor, x: Tensor): Tensor {
  return columnSums(x, ...matrixShape('addRowSums', x), 1, into);
}

function reduceAll(op: string, x: Tensor, scale: number): Tensor {
  if (x.size === 0) throw new Error(`${op}: empty tensor`);
  const y = columnSums(x, x.size, 1, scale);
  return record(op, [x], y, (gy) => [broadcastTo(gy, x.shape, scale)]);
}

export const sum = (x: Tensor) => reduceAll('sum', x, 1);
export const mean = (x: Tensor) => reduceAll('mean', x, 1 / x.size);
