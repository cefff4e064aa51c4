/**
 * The adapter's own roofline, measured on unroll's device in the same run as the suites: the FMA peak
 * (shaders/roofline.wgsl `fma_peak`: 8 independent vec4 FMA chains per thread, workgroup 64) and the copy
 * bandwidth (shaders/roofline.wgsl `copy`: one vec4 per thread). Each is the median of several
 * dispatches, each awaited to completion, sized so one dispatch takes ~50 ms or more.
 */
import { type Device, params } from '../src/engine/device.js';
import { Tensor } from '../src/engine/tensor.js';
import { summarise } from './timing.js';

export interface Roofline {
  /** FMA peak, GFLOP/s (an FMA counts 2). */
  fmaGflops: number;
  /** Copy bandwidth, GB/s (bytes read + bytes written). */
  copyGBps: number;
}

async function timeDispatch(device: Device, dispatch: () => void, reps: number): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    dispatch();
    await device.sync();
    ms.push(performance.now() - t0);
  }
  return summarise(ms, 0).medianMs;
}

export async function fmaPeak(device: Device, reps = 5): Promise<number> {
  const threads = 64 * 1024;
  const out = Tensor.empty(device, [threads]);
  const k = { shader: 'roofline', entry: 'fma_peak', workgroup: [64] as [number] };
  try {
    let iters = 64;
    for (;;) {
      const P = params().u(iters, threads).f(0.5, 0);
      const run = () => device.run(k, [P, out], [threads]);
      const ms = await timeDispatch(device, run, 2);
      if (ms >= 50 || iters >= 1 << 20) {
        const median = await timeDispatch(device, run, reps);
        return (threads * iters * 8 * 4 * 2) / (median / 1e3) / 1e9;
      }
      iters *= Math.min(16, Math.max(2, Math.ceil(60 / Math.max(ms, 0.5))));
    }
  } finally {
    out.dispose();
  }
}

export async function copyBandwidth(device: Device, reps = 7): Promise<number> {
  const bytes = Math.min(64 << 20, Math.floor(device.limits.maxStorageBufferBindingSize / 16) * 16);
  const n = bytes / 16;
  const src = Tensor.empty(device, [n * 4]);
  const dst = Tensor.empty(device, [n * 4]);
  const k = { shader: 'roofline', entry: 'copy', workgroup: [256] as [number] };
  try {
    const P = params().u(0, n);
    const run = () => device.run(k, [P, dst, src], [n]);
    await timeDispatch(device, run, 2);
    const median = await timeDispatch(device, run, reps);
    return (2 * bytes) / (median / 1e3) / 1e9;
  } finally {
    src.dispose();
    dst.dispose();
  }
}

export async function measureRoofline(device: Device, fma = fmaPeak): Promise<Roofline> {
  return { fmaGflops: await fma(device), copyGBps: await copyBandwidth(device) };
}
