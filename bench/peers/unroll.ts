/**
 * unroll as a peer. Each suite reaches unroll's code through a dynamic import, so a kernel or model that
 * is missing or broken turns that suite's rows into "not available" with the reason, instead of stopping
 * the bench. The plug-in points are the imports below:
 *   conv        src/kernels/conv2d.ts        conv2d, convGeometry, conv2dBackwardInput, conv2dBackwardWeight
 *   cell        src/kernels/recurrent-cell.ts recurrentCell (+ src/kernels/pool.ts maxPool2d for pooled layers)
 *   train-step  src/model/bl-net.ts + src/train/step.ts + engine Adam
 *   inference   BLNet.predict
 *   rise        BLNet.predict + softmax (cross-entropy kernel's probs) + matmul, composed here until
 *               src/analysis has its own RISE; then call that instead.
 * Weights are written into unroll's tensors from the bench's plain arrays (HWIO convs, [out, in] readout).
 */
import type { CellCase, CellPass, ConvCase, ConvOp, NetConfig } from '../config.js';
import { layerShapes } from '../config.js';
import { type CellData, type ConvData, namedWeights } from '../data.js';
import { Device, type DeviceOptions } from '../../src/engine/device.js';
import { capture, type CapturedGraph } from '../../src/engine/capture.js';
import { backward, noGrad, tidy } from '../../src/engine/tape.js';
import { Tensor } from '../../src/engine/tensor.js';
import { pkgVersion, projectVersion } from './dawn.js';
import { Profiler } from '../profiler.js';
import { type Built, type KernelTimes, type Peer, type RiseInputs, type Runner, type TrainInputs, Unavailable } from './types.js';

const SAME = { padding: 'same' as const };

function disposeAll(x: unknown): void {
  if (x instanceof Tensor) x.dispose();
  else if (Array.isArray(x)) x.forEach(disposeAll);
  else if (x && typeof x === 'object') Object.values(x).forEach(disposeAll);
}

/**
 * The whole-network suites run as unroll's trainer runs them: the first call records the step's dispatches
 * (capture.ts) and later calls replay them, so no JavaScript of the ops, autograd or bind groups is timed.
 */
function replayed(device: Device, fn: () => unknown): { call: () => void; dispose: () => void } {
  let graph: CapturedGraph | null = null;
  let kept: unknown;
  return {
    call: () => {
      if (graph) return graph.replay();
      const c = capture(device, () => tidy(device, fn));
      graph = c.graph;
      kept = c.result;
    },
    dispose: () => {
      graph?.dispose();
      disposeAll(kept);
    },
  };
}

async function load<T>(what: string, imp: () => Promise<T>): Promise<T | Unavailable> {
  try {
    return await imp();
  } catch (e) {
    return new Unavailable(`not available yet: ${what} does not load (${(e as Error).message.split('\n')[0]})`);
  }
}

export async function openUnroll(opts: DeviceOptions): Promise<Peer | Unavailable> {
  try {
    return new UnrollPeer(await Device.create(opts));
  } catch (e) {
    return new Unavailable(`no device: ${(e as Error).message}`);
  }
}

export class UnrollPeer implements Peer {
  readonly name = 'unroll' as const;
  readonly description: string;
  readonly versions: Record<string, string>;

  constructor(readonly device: Device) {
    const i = device.info;
    this.description = `unroll on ${i.description || i.device} (${i.vendor}, ${i.architecture})`;
    this.versions = { unroll: projectVersion(), webgpu: pkgVersion('webgpu') };
  }

  /** A runner over tensors it owns: each call runs `call` in a tidy scope; a run then waits for the GPU. */
  private runner(owned: Tensor[], call: () => void, outputs: () => Promise<Record<string, Float32Array>>, extra?: () => void): Runner {
    const device = this.device;
    return {
      run: async (calls = 1) => {
        for (let i = 0; i < calls; i++) tidy(device, () => void call());
        await device.sync();
      },
      outputs,
      dispose: () => {
        for (const t of owned) t.dispose();
        extra?.();
      },
    };
  }

  private tensor(data: Float32Array | Int32Array, shape: number[]): Tensor {
    return Tensor.from(this.device, data, shape, data instanceof Int32Array ? 'i32' : 'f32');
  }

  async conv(c: ConvCase, op: ConvOp, batch: number, d: ConvData): Promise<Built> {
    const m = await load('src/kernels/conv2d.ts', () => import('../../src/kernels/conv2d.js'));
    if (m instanceof Unavailable) return m;
    const device = this.device;
    const x = this.tensor(d.x, [batch, c.res, c.res, c.inC]);
    const w = this.tensor(d.w, [3, 3, c.inC, c.outC]);
    const bias = this.tensor(d.bias, [c.outC]);
    const dy = this.tensor(d.dy, [batch, c.res, c.res, c.outC]);
    const g = m.convGeometry('bench', x.shape, w.shape, SAME);
    const compute = (): Tensor =>
      noGrad(device, () =>
        op === 'forward' ? m.conv2d(x, w, bias, SAME) : op === 'dgrad' ? m.conv2dBackwardInput(dy, w, g) : m.conv2dBackwardWeight(dy, x, g),
      );
    const key = op === 'forward' ? 'y' : op === 'dgrad' ? 'dx' : 'dw';
    return this.runner([x, w, bias, dy], () => void compute(), async () => {
      const y = compute();
      const v = await y.readF32();
      y.dispose();
      return { [key]: v };
    });
  }

  async cell(c: CellCase, pass: CellPass, batch: number, d: CellData): Promise<Built> {
    const cellMod = await load('src/kernels/recurrent-cell.ts', () => import('../../src/kernels/recurrent-cell.js'));
    if (cellMod instanceof Unavailable) return cellMod;
    const pool = await load('src/kernels/pool.ts', () => import('../../src/kernels/pool.js'));
    if (pool instanceof Unavailable) return pool;
    const device = this.device;
    const l = c.layer;
    const x = this.tensor(d.x, [batch, l.inRes, l.inRes, l.inC]);
    const h = this.tensor(d.h, [batch, l.res, l.res, l.outC]);
    const wb = this.tensor(d.wb, [3, 3, l.inC, l.outC]);
    const wl = this.tensor(d.wl, [3, 3, l.outC, l.outC]);
    const b = this.tensor(d.b, [l.outC]);
    const gamma = this.tensor(d.gamma, [l.outC]);
    const beta = this.tensor(d.beta, [l.outC]);
    const dy = this.tensor(d.dy, [batch, l.res, l.res, l.outC]);
    const leaves = { dx: x, dh: h, dwb: wb, dwl: wl, db: b, dgamma: gamma, dbeta: beta };
    const grad = pass !== 'forward';
    for (const t of Object.values(leaves)) t.requireGrad(grad);
    const forward = () => {
      const bottom = l.pool ? pool.maxPool2d(x, { kernel: 2, stride: 2 }) : x;
      return cellMod.recurrentCell({ bottom, lateral: h }, { bottomUp: wb, lateral: wl, bias: b }, { kind: 'layer', gamma, beta });
    };
    // Returns the output and, for a backward pass, the leaves' gradients (taken off the leaves).
    const compute = (): Record<string, Tensor> => {
      const out: Record<string, Tensor> = { h: forward() };
      if (!grad) return out;
      backward(out.h, dy);
      for (const [k, t] of Object.entries(leaves)) {
        out[k] = t.grad!;
        t.grad = null;
      }
      return out;
    };
    const run = () => {
      if (!grad) return void noGrad(device, forward);
      for (const g of Object.values(compute())) g.dispose();
    };
    return this.runner([...Object.values(leaves), dy], run, async () => {
      const out = tidy(device, compute);
      return readAll(out);
    });
  }

  /** The BL net with the bench's weights, or why it cannot be built. */
  private async net(cfg: NetConfig, inp: { weights: TrainInputs['weights'] }) {
    const m = await load('src/model/bl-net.ts', () => import('../../src/model/bl-net.js'));
    if (m instanceof Unavailable) return m;
    try {
      const net = m.BLNet.init(this.device, {
        size: cfg.size, inChannels: cfg.channels ?? 1, widths: cfg.widths, kernel: 3, poolBefore: cfg.poolBefore,
        classes: cfg.classes, norm: 'layer', connections: 'BL', convBias: false,
      }, 1, cfg.steps);
      for (const [name, unrollName] of paramNames(cfg)) {
        const w = namedWeights(cfg, inp.weights).find((n) => n.name === name)!;
        net.param(unrollName).write(w.data);
      }
      return net;
    } catch (e) {
      return new Unavailable(`BLNet with the bench's weights: ${(e as Error).message}`);
    }
  }

  async trainStep(cfg: NetConfig, batch: number, inp: TrainInputs): Promise<Built> {
    const step = await load('src/train/step.ts', () => import('../../src/train/step.js'));
    if (step instanceof Unavailable) return step;
    const optim = await load('src/engine/optimizers.ts', () => import('../../src/engine/optimizers.js'));
    if (optim instanceof Unavailable) return optim;
    const net = await this.net(cfg, inp);
    if (net instanceof Unavailable) return net;
    const device = this.device;
    const x = this.tensor(inp.images, [batch, cfg.size, cfg.size, cfg.channels ?? 1]);
    const y = this.tensor(inp.labels, [batch]);
    const params = [...net.params.values()];
    const adam = new optim.Adam(params, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    const names = paramNames(cfg);
    const stepCall = replayed(device, () => step.trainStep(net, adam, x, y, { steps: cfg.steps }));
    return this.runner([x, y], stepCall.call, async () => {
      const out = tidy(device, () => {
        const r = net.loss(x, y, cfg.steps);
        backward(r.loss);
        const o: Record<string, Tensor | Tensor[]> = { loss: r.loss, logits: r.logits };
        for (const [name, unrollName] of names) {
          const p = net.param(unrollName);
          o[`grad.${name}`] = p.grad!;
          p.grad = null;
        }
        return o;
      });
      return readAll(out);
    }, () => {
      stepCall.dispose();
      adam.dispose();
      net.dispose();
    });
  }

  async inference(cfg: NetConfig, T: number, batch: number, inp: TrainInputs): Promise<Built> {
    const net = await this.net(cfg, inp);
    if (net instanceof Unavailable) return net;
    const x = this.tensor(inp.images, [batch, cfg.size, cfg.size, cfg.channels ?? 1]);
    const inferCall = replayed(this.device, () => net.predict(x, T));
    return this.runner([x], inferCall.call, async () => {
      const out = tidy(this.device, () => ({ logits: net.predict(x, T) }));
      return readAll(out);
    }, () => {
      inferCall.dispose();
      net.dispose();
    });
  }

  async rise(cfg: NetConfig, batch: number, inp: RiseInputs): Promise<Built> {
    const net = await this.net(cfg, inp);
    if (net instanceof Unavailable) return net;
    const mods = await load('src/kernels/{elementwise,matmul,cross-entropy}.ts', () =>
      Promise.all([import('../../src/kernels/elementwise.js'), import('../../src/kernels/matmul.js'), import('../../src/kernels/cross-entropy.js')]));
    if (mods instanceof Unavailable) return mods;
    const [{ mul, accumulate, scale, fill }, { matmul }, { softmaxCrossEntropyRows }] = mods;
    const device = this.device;
    const S = cfg.size, C = cfg.channels ?? 1;
    if (C !== 1) return new Unavailable('RISE here masks single-channel images only');
    // The image repeated per mask (host side), the masks, the target as a one-hot column.
    const tiled = new Float32Array(batch * S * S);
    for (let i = 0; i < batch; i++) tiled.set(inp.image, i * S * S);
    const image = this.tensor(tiled, [batch, S, S, 1]);
    const masks = this.tensor(inp.masks, [batch, S, S, 1]);
    const maskRows = masks.view([batch, S * S]);
    const onehot = this.tensor(new Float32Array(cfg.classes).map((_, k) => (k === inp.target ? 1 : 0)), [cfg.classes, 1]);
    const labels = this.tensor(new Int32Array(batch), [batch]);
    const acc = Array.from({ length: cfg.steps }, () => fill(device, [1, S * S], 0));
    // saliency[t] = p_t(target | masked)^T masks / batch: [1, S*S] per step.
    const saliency = (): Tensor[] =>
      noGrad(device, () =>
        net.predict(mul(image, masks), cfg.steps).map((logits) => {
          const p = matmul(softmaxCrossEntropyRows(logits, labels).probs, onehot);
          return scale(matmul(p, maskRows, { transA: true }), 1 / batch);
        }),
      );
    const riseCall = replayed(device, () => saliency().forEach((s, t) => accumulate(acc[t], s)));
    return this.runner([image, masks, maskRows, onehot, labels], riseCall.call, async () => {
      const out = tidy(device, () => ({ saliency: saliency() }));
      return readAll(out);
    }, () => {
      riseCall.dispose();
      acc.forEach((a) => a.dispose());
      net.dispose();
    });
  }

  async profile(runner: Runner, calls: number): Promise<KernelTimes | Unavailable> {
    if (!this.device.hasFeature('timestamp-query')) return new Unavailable('the adapter has no timestamp-query feature');
    const prof = new Profiler(this.device);
    this.device.profiler = prof;
    try {
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) await runner.run();
      const wallMs = performance.now() - t0;
      return { kernels: await prof.collect(), wallMs };
    } finally {
      this.device.profiler = null;
      prof.dispose();
    }
  }

  async dispose(): Promise<void> {
    try {
      await this.device.sync();
    } finally {
      this.device.destroy();
    }
  }
}

/** Bench weight names -> BLNet parameter names (connections 'BL', layer norm). */
function paramNames(cfg: NetConfig): [string, string][] {
  const out: [string, string][] = [];
  for (const l of layerShapes(cfg)) {
    const n = l.index;
    out.push([`L${n + 1}.wb`, `layers.${n}.bottom_up.weight`], [`L${n + 1}.wl`, `layers.${n}.lateral.weight`],
      [`L${n + 1}.gamma`, `layers.${n}.norm.weight`], [`L${n + 1}.beta`, `layers.${n}.norm.bias`]);
  }
  out.push(['readout.w', 'readout.weight'], ['readout.b', 'readout.bias']);
  return out;
}

/** Reads each tensor (a list is concatenated, like the other peers' stacked [T, ...] arrays), then disposes them. */
async function readAll(ts: Record<string, Tensor | Tensor[]>): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(ts)) {
    const list = Array.isArray(v) ? v : [v];
    const parts = [];
    for (const t of list) parts.push(await t.readF32());
    const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) all.set(p, o), (o += p.length);
    out[k] = all;
    for (const t of list) t.dispose();
  }
  return out;
}
