/** Nearest-neighbour upsampling (the top-down path of BLT nets), forward and backward. */
import { params } from '../engine/device.js';
import type { Kernel } from '../engine/shaders.js';
import { record } from '../engine/tape.js';
import { Tensor } from '../engine/tensor.js';

const FORWARD: Kernel = { shader: 'upsample', entry: 'forward', workgroup: [256] };
const BACKWARD: Kernel = { shader: 'upsample', entry: 'backward', workgroup: [256] };

/** [N, H, W, C] -> [N, outH, outW, C] by repeating each pixel `factor` times (default out = factor * in). */
export function upsampleNearest(x: Tensor, factor: number, out?: [number, number]): Tensor {
  if (x.shape.length !== 4) throw new Error(`upsampleNearest: expected NHWC, got [${x.shape.join(', ')}]`);
  if (!Number.isInteger(factor) || factor < 1) throw new Error(`upsampleNearest: factor must be a positive integer, got ${factor}`);
  const [n, h, w, c] = x.shape;
  const [ho, wo] = out ?? [h * factor, w * factor];
  if (!Number.isInteger(ho) || !Number.isInteger(wo) || ho < h * factor - factor + 1 || wo < w * factor - factor + 1) {
    throw new Error(`upsampleNearest: output ${ho}x${wo} does not fit input [${x.shape.join(', ')}] x${factor}`);
  }
  const P = params().u(n, h, w, c, ho, wo, factor, 0);
  const y = Tensor.empty(x.device, [n, ho, wo, c]);
  x.device.run(FORWARD, [P, y, x], [y.size]);
  return record('upsampleNearest', [x], y, (gy) => {
    const gx = Tensor.empty(x.device, x.shape);
    x.device.run(BACKWARD, [P, gx, gy], [gx.size]);
    return [gx];
  });
}
