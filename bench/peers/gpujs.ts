/**
 * gpu.js as a peer for the kernel suites: the three convs written the way a gpu.js user writes them,
 * one thread per output value, straight loops over the 3x3 window and the channels. gpu.js runs its
 * opt-in `webgpu` mode where an adapter answers through `navigator.gpu` (the same Dawn adapter as
 * unroll), else its default mode (in Node without headless-gl: `webasm`, WebAssembly on the CPU). In
 * webgpu mode, inputs are made GPU-resident once (pipeline handles) and each call is awaited on the
 * device's queue; the other modes are synchronous.
 * gpu.js has no autograd, pooling, layer norm or optimiser, so the cell, training, inference and RISE
 * suites would each be a set of hand-written kernels plus a hand-derived backward: not written here.
 */
import { createRequire } from 'node:module';
import { type CellCase, type CellPass, type ConvCase, type ConvOp, KERNEL, type NetConfig } from '../config.js';
import type { CellData, ConvData } from '../data.js';
import { type DawnFlags, installNavigatorGpu, pkgVersion } from './dawn.js';
import { type Built, type Peer, type Runner, Unavailable } from './types.js';

// gpu.js is CommonJS with loose typings; the bench uses a small typed slice of it.
interface GpuKernel {
  (...args: unknown[]): unknown;
  setOutput(o: number[]): GpuKernel;
  kernel?: { constructor: { mode?: string } };
  destroy?(): void;
}
interface GpuInstance {
  createKernel(source: string, settings?: Record<string, unknown>): GpuKernel;
  destroy(): Promise<void> | void;
}
interface GpuModule {
  GPU: { new (settings?: { mode?: string }): GpuInstance; isWebGPUAvailable(): Promise<boolean> };
  WebGPUContext: { acquire(): Promise<{ device: GPUDevice }>; destroy(): Promise<void> };
}

const NOT_WRITTEN = 'gpu.js has no autograd, pooling or layer norm: this suite would be hand-written kernels and a hand-derived backward (not written)';

export async function openGpujs(dawn: DawnFlags = {}): Promise<Peer | Unavailable> {
  installNavigatorGpu(dawn);
  let mod: GpuModule;
  try {
    mod = createRequire(import.meta.url)('gpu.js') as GpuModule;
  } catch (e) {
    return new Unavailable(`gpu.js does not load: ${(e as Error).message}`);
  }
  let webgpu = false;
  try {
    webgpu = await mod.GPU.isWebGPUAvailable();
  } catch {
    webgpu = false;
  }
  const gpu = new mod.GPU(webgpu ? { mode: 'webgpu' } : {});
  const device = webgpu ? (await mod.WebGPUContext.acquire()).device : null;
  return new GpujsPeer(mod, gpu, device);
}

// Kernel bodies, as source text: gpu.js parses a kernel's source, and text is immune to what a
// TypeScript transpiler does to a function (gpu.js cannot translate, e.g., `const C = this.constants`).
const CONV_FORWARD = `function (x, w, bias) {
  const i = this.thread.x;
  const co = i % this.constants.cout;
  const pix = Math.floor(i / this.constants.cout);
  const ox = pix % this.constants.w;
  const oy = Math.floor(pix / this.constants.w) % this.constants.h;
  const n = Math.floor(pix / (this.constants.w * this.constants.h));
  let s = bias[co];
  for (let ky = 0; ky < 3; ky++) {
    const iy = oy + ky - 1;
    if (iy >= 0 && iy < this.constants.h) {
      for (let kx = 0; kx < 3; kx++) {
        const ix = ox + kx - 1;
        if (ix >= 0 && ix < this.constants.w) {
          const xb = ((n * this.constants.h + iy) * this.constants.w + ix) * this.constants.cin;
          const wb = (ky * 3 + kx) * this.constants.cin * this.constants.cout + co;
          for (let ci = 0; ci < this.constants.cin; ci++) {
            s += x[xb + ci] * w[wb + ci * this.constants.cout];
          }
        }
      }
    }
  }
  return s;
}`;

const CONV_DGRAD = `function (dy, w) {
  const i = this.thread.x;
  const ci = i % this.constants.cin;
  const pix = Math.floor(i / this.constants.cin);
  const ix = pix % this.constants.w;
  const iy = Math.floor(pix / this.constants.w) % this.constants.h;
  const n = Math.floor(pix / (this.constants.w * this.constants.h));
  let s = 0;
  for (let ky = 0; ky < 3; ky++) {
    const oy = iy - ky + 1;
    if (oy >= 0 && oy < this.constants.h) {
      for (let kx = 0; kx < 3; kx++) {
        const ox = ix - kx + 1;
        if (ox >= 0 && ox < this.constants.w) {
          const db = ((n * this.constants.h + oy) * this.constants.w + ox) * this.constants.cout;
          const wb = ((ky * 3 + kx) * this.constants.cin + ci) * this.constants.cout;
          for (let co = 0; co < this.constants.cout; co++) {
            s += dy[db + co] * w[wb + co];
          }
        }
      }
    }
  }
  return s;
}`;

const CONV_WGRAD = `function (x, dy) {
  const i = this.thread.x;
  const co = i % this.constants.cout;
  const ci = Math.floor(i / this.constants.cout) % this.constants.cin;
  const tap = Math.floor(i / (this.constants.cout * this.constants.cin));
  const kx = tap % 3;
  const ky = Math.floor(tap / 3);
  let s = 0;
  for (let n = 0; n < this.constants.batch; n++) {
    for (let oy = 0; oy < this.constants.h; oy++) {
      const iy = oy + ky - 1;
      if (iy >= 0 && iy < this.constants.h) {
        for (let ox = 0; ox < this.constants.w; ox++) {
          const ix = ox + kx - 1;
          if (ix >= 0 && ix < this.constants.w) {
            s += x[((n * this.constants.h + iy) * this.constants.w + ix) * this.constants.cin + ci] *
              dy[((n * this.constants.h + oy) * this.constants.w + ox) * this.constants.cout + co];
          }
        }
      }
    }
  }
  return s;
}`;

const IDENTITY = `function (a) {
  return a[this.thread.x];
}`;

class GpujsPeer implements Peer {
  readonly name = 'gpu.js' as const;
  readonly description: string;
  readonly versions: Record<string, string>;

  constructor(
    private readonly mod: GpuModule,
    private readonly gpu: GpuInstance,
    private readonly device: GPUDevice | null,
  ) {
    const mode = (gpu as unknown as { mode?: string }).mode ?? 'default';
    this.description = device ? 'gpu.js webgpu mode (WGSL) on the Dawn adapter' : `gpu.js ${mode} mode (its default here: no WebGPU adapter answered)`;
    this.versions = { 'gpu.js': pkgVersion('gpu.js') };
  }

  private async sync(): Promise<void> {
    if (this.device) await this.device.queue.onSubmittedWorkDone();
  }

  /** Makes an input resident on the GPU (webgpu mode: a pipeline handle), or returns it as is. */
  private async resident(a: Float32Array): Promise<unknown> {
    if (!this.device) return a;
    const k = this.gpu.createKernel(IDENTITY, { pipeline: true, output: [a.length] });
    const handle = await k(a);
    return handle;
  }

  async conv(c: ConvCase, op: ConvOp, batch: number, d: ConvData): Promise<Built> {
    const constants = { batch, h: c.res, w: c.res, cin: c.inC, cout: c.outC };
    const out = op === 'forward' ? batch * c.res * c.res * c.outC : op === 'dgrad' ? batch * c.res * c.res * c.inC : KERNEL * KERNEL * c.inC * c.outC;
    const source = op === 'forward' ? CONV_FORWARD : op === 'dgrad' ? CONV_DGRAD : CONV_WGRAD;
    const args = op === 'forward' ? [d.x, d.w, d.bias] : op === 'dgrad' ? [d.dy, d.w] : [d.x, d.dy];
    const settings = { constants, output: [out], tactic: 'precision' };
    let timed: GpuKernel, checked: GpuKernel;
    try {
      timed = this.gpu.createKernel(source, { ...settings, pipeline: Boolean(this.device) });
      checked = this.gpu.createKernel(source, settings);
    } catch (e) {
      return new Unavailable(`gpu.js could not build the kernel: ${(e as Error).message}`);
    }
    const inputs = await Promise.all(args.map((a) => this.resident(a)));
    const runner: Runner = {
      run: async (calls = 1) => {
        const rs: ({ delete?(): void } | undefined)[] = [];
        for (let i = 0; i < calls; i++) rs.push((await timed(...inputs)) as { delete?(): void });
        await this.sync();
        for (const r of rs) r?.delete?.();
      },
      outputs: async () => {
        const r = (await checked(...args)) as ArrayLike<number>;
        return { [op === 'forward' ? 'y' : op === 'dgrad' ? 'dx' : 'dw']: Float32Array.from(r) };
      },
      dispose: () => {
        timed.destroy?.();
        checked.destroy?.();
        for (const h of inputs) (h as { delete?(): void })?.delete?.();
      },
    };
    return runner;
  }

  /** The mode kernels actually ran in, for the report (webgpu, webasm, cpu...). */
  get mode(): string {
    return this.device ? 'webgpu' : 'default';
  }

  async cell(_c: CellCase, _p: CellPass, _b: number, _d: CellData): Promise<Built> {
    return new Unavailable(NOT_WRITTEN);
  }
  async trainStep(_cfg: NetConfig): Promise<Built> {
    return new Unavailable('gpu.js has no autograd or optimiser: a training step is not expressible without hand-deriving every backward kernel');
  }
  async inference(_cfg: NetConfig): Promise<Built> {
    return new Unavailable(NOT_WRITTEN);
  }
  async rise(_cfg: NetConfig): Promise<Built> {
    return new Unavailable(NOT_WRITTEN);
  }

  async dispose(): Promise<void> {
    await this.gpu.destroy();
    if (this.device) await this.mod.WebGPUContext.destroy();
  }
}
