/**
 * TensorFlow.js as a peer, on any of its backends: `webgpu` (on the same Dawn adapter as unroll, with
 * WEBGPU_CPU_FORWARD off so no small op silently runs on the CPU), `wasm` (XNNPACK, one thread in
 * Node) and `cpu` (plain JS). The BL network is written with tfjs ops the way a tfjs user would write
 * it (tf.conv2d for both terms, tf.moments for the layer norm), trained with
 * `optimizer.minimize` (tf.variableGrads underneath) and Adam; the weights come from the same plain
 * Float32Arrays as unroll's, in the same layouts (HWIO convs, [out, in] readout).
 */
import type * as TFNS from '@tensorflow/tfjs';
import { ADAM, type CellCase, type CellPass, type ConvCase, type ConvOp, KERNEL, LN_EPS, type NetConfig, layerShapes } from '../config.js';
import { type CellData, type ConvData, namedWeights } from '../data.js';
import { type DawnFlags, installNavigatorGpu, pkgVersion } from './dawn.js';
import { type Built, NO_WGRAD, type Peer, type PeerName, type RiseInputs, type Runner, type TrainInputs, Unavailable } from './types.js';

type TF = typeof TFNS;
type T4 = TFNS.Tensor4D;
type Tensor = TFNS.Tensor;

export type TfBackend = 'webgpu' | 'wasm' | 'cpu';
const PEER: Record<TfBackend, PeerName> = { webgpu: 'tfjs-webgpu', wasm: 'tfjs-wasm', cpu: 'tfjs-cpu' };

let tfModule: TF | null = null;
/** Backend factories as first registered (tfjs registers them once, at import). */
const factories = new Map<TfBackend, Parameters<TF['registerBackend']>[1]>();
async function loadTf(): Promise<TF> {
  if (!tfModule) {
    tfModule = (await import('@tensorflow/tfjs')) as unknown as TF;
    // PROD: no debug checks and no "install tfjs-node" banner.
    tfModule.env().set('PROD', true);
  }
  return tfModule;
}

interface WebGPUBackendLike {
  device: GPUDevice;
  adapterInfo?: { vendor?: string; architecture?: string; description?: string };
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/** Sets `backend` as tfjs's backend, or says why it cannot run here. */
export async function openTfjs(backend: TfBackend, dawn: DawnFlags = {}): Promise<Peer | Unavailable> {
  if (backend === 'webgpu') installNavigatorGpu(dawn); // before tfjs-backend-webgpu is imported
  const tf = await loadTf();
  try {
    if (backend === 'webgpu') {
      await import('@tensorflow/tfjs-backend-webgpu');
      tf.env().set('WEBGPU_CPU_FORWARD', false);
    } else if (backend === 'wasm') {
      await import('@tensorflow/tfjs-backend-wasm');
    }
    // The bench opens each peer once per round and dispose() removes the backend with its factory: register
    // the factory again from the first open.
    const factory = tf.findBackendFactory(backend);
    if (factory) factories.set(backend, factory);
    else if (factories.has(backend)) tf.registerBackend(backend, factories.get(backend)!);
    const before = new Set([...process.listeners('uncaughtException'), ...process.listeners('unhandledRejection')]);
    const ok = await tf.setBackend(backend);
    // Emscripten's glue (wasm) installs process handlers that rethrow any error with its whole minified source; drop them.
    for (const l of process.listeners('uncaughtException')) if (!before.has(l)) process.removeListener('uncaughtException', l);
    for (const l of process.listeners('unhandledRejection')) if (!before.has(l)) process.removeListener('unhandledRejection', l);
    if (!ok) return new Unavailable(`tfjs backend ${backend} failed to initialise`);
    await tf.ready();
  } catch (e) {
    return new Unavailable(`tfjs backend ${backend}: ${(e as Error).message}`);
  }
  return new TfjsPeer(tf, backend);
}

class TfjsPeer implements Peer {
  readonly name: PeerName;
  readonly description: string;
  readonly versions: Record<string, string>;
  private readonly hasWgrad: boolean;

  constructor(
    private readonly tf: TF,
    private readonly backend: TfBackend,
  ) {
    this.name = PEER[backend];
    this.hasWgrad = tf.getKernel('Conv2DBackpropFilter', backend) !== undefined;
    const pkg = `@tensorflow/tfjs-backend-${backend}`;
    this.versions = { '@tensorflow/tfjs': pkgVersion('@tensorflow/tfjs'), [pkg]: pkgVersion(pkg) };
    let desc = `tfjs ${backend} backend`;
    if (backend === 'webgpu') {
      const info = (tf.backend() as unknown as WebGPUBackendLike).adapterInfo;
      if (info) desc += ` on ${[info.vendor, info.architecture, info.description].filter(Boolean).join(' ')}`;
    }
    if (backend === 'wasm') desc += ', XNNPACK, SIMD, one thread';
    this.description = desc;
  }

  /** Waits for the backend to finish: the webgpu backend records dispatches, submits and waits for the queue; cpu and wasm ops are synchronous. */
  private async sync(): Promise<void> {
    if (this.backend !== 'webgpu') return;
    const be = this.tf.backend() as unknown as WebGPUBackendLike;
    be.ensureCommandEncoderReady();
    be.endComputePassEncoder();
    be.submitQueue();
    await be.device.queue.onSubmittedWorkDone();
  }

  private runner(keep: Tensor[], call: () => void, outputs: () => Promise<Record<string, Float32Array>>, extraDispose?: () => void): Runner {
    const tf = this.tf;
    return {
      run: async (calls = 1) => {
        for (let i = 0; i < calls; i++) tf.tidy(call);
        await this.sync();
      },
      outputs: async () => outputs(),
      dispose: () => {
        tf.dispose(keep);
        extraDispose?.();
      },
    };
  }

  async conv(c: ConvCase, op: ConvOp, batch: number, d: ConvData): Promise<Built> {
    const tf = this.tf;
    if (op === 'wgrad' && !this.hasWgrad) return new Unavailable(NO_WGRAD);
    const x = tf.tensor4d(d.x, [batch, c.res, c.res, c.inC]);
    const w = tf.tensor4d(d.w, [KERNEL, KERNEL, c.inC, c.outC]);
    const bias = tf.tensor1d(d.bias);
    const dy = tf.tensor4d(d.dy, [batch, c.res, c.res, c.outC]);
    const compute = (): Tensor => {
      if (op === 'forward') return tf.fused.conv2d({ x, filter: w, bias, strides: 1, pad: 'same' });
      if (op === 'dgrad') return tf.conv2dTranspose(dy, w, [batch, c.res, c.res, c.inC], 1, 'same');
      return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
        strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [KERNEL, KERNEL, c.inC, c.outC],
      } as unknown as TFNS.NamedAttrMap) as Tensor;
    };
    const key = op === 'forward' ? 'y' : op === 'dgrad' ? 'dx' : 'dw';
    return this.runner([x, w, bias, dy], () => void compute(), async () => {
      const y = compute();
      const v = (await y.data()) as Float32Array;
      y.dispose();
      return { [key]: v };
    });
  }

  async cell(c: CellCase, pass: CellPass, batch: number, d: CellData): Promise<Built> {
    const tf = this.tf;
    if (pass !== 'forward' && !this.hasWgrad) return new Unavailable(NO_WGRAD);
    const l = c.layer;
    const x = tf.tensor4d(d.x, [batch, l.inRes, l.inRes, l.inC]);
    const h = tf.tensor4d(d.h, [batch, l.res, l.res, l.outC]);
    const wb = tf.tensor4d(d.wb, [KERNEL, KERNEL, l.inC, l.outC]);
    const wl = tf.tensor4d(d.wl, [KERNEL, KERNEL, l.outC, l.outC]);
    const b = tf.tensor1d(d.b), gamma = tf.tensor1d(d.gamma), beta = tf.tensor1d(d.beta);
    const dy = tf.tensor4d(d.dy, [batch, l.res, l.res, l.outC]);
    const inputs = [x, h, wb, wl, b, gamma, beta];
    const names = ['dx', 'dh', 'dwb', 'dwl', 'db', 'dgamma', 'dbeta'];
    const f = (...a: Tensor[]) => cellStep(tf, a[0] as T4, a[1] as T4, a[2] as T4, a[3] as T4, a[4], a[5], a[6], l.pool);
    const valueAndGrads = tf.valueAndGrads(f);
    const compute = (): Record<string, Tensor> => {
      if (pass === 'forward') return { h: f(...inputs) };
      const { value, grads } = valueAndGrads(inputs, dy);
      const out: Record<string, Tensor> = { h: value };
      grads.forEach((g, i) => (out[names[i]] = g));
      return out;
    };
    return this.runner([...inputs, dy], () => void compute(), async () => readAll(tf, compute()));
  }

  async trainStep(cfg: NetConfig, batch: number, inp: TrainInputs): Promise<Built> {
    const tf = this.tf;
    if (!this.hasWgrad) return new Unavailable(NO_WGRAD);
    const named = namedWeights(cfg, inp.weights);
    const vars = named.map((n) => tf.variable(tf.tensor(n.data, n.shape), true));
    const x = tf.tensor4d(inp.images, [batch, cfg.size, cfg.size, cfg.channels ?? 1]);
    const onehot = tf.tidy(() => tf.oneHot(tf.tensor1d(inp.labels, 'int32'), cfg.classes).toFloat());
    const opt = tf.train.adam(ADAM.lr, ADAM.beta1, ADAM.beta2, ADAM.eps);
    const lossOf = () => blLoss(tf, blForward(tf, cfg, vars, x, cfg.steps), onehot);
    return this.runner(
      [...vars, x, onehot],
      () => void opt.minimize(lossOf as () => TFNS.Scalar, false, vars),
      async () => {
        const { value, grads } = tf.variableGrads(lossOf as () => TFNS.Scalar, vars);
        const logits = tf.tidy(() => tf.stack(blForward(tf, cfg, vars, x, cfg.steps)));
        const out: Record<string, Tensor> = { loss: value, logits };
        vars.forEach((v, i) => (out[`grad.${named[i].name}`] = grads[v.name]));
        return readAll(tf, out);
      },
      () => opt.dispose(),
    );
  }

  async inference(cfg: NetConfig, T: number, batch: number, inp: TrainInputs): Promise<Built> {
    const tf = this.tf;
    const params = namedWeights(cfg, inp.weights).map((n) => tf.tensor(n.data, n.shape));
    const x = tf.tensor4d(inp.images, [batch, cfg.size, cfg.size, cfg.channels ?? 1]);
    const compute = () => tf.stack(blForward(tf, cfg, params, x, T));
    return this.runner([...params, x], () => void compute(), async () => readAll(tf, { logits: tf.tidy(compute) }));
  }

  async rise(cfg: NetConfig, batch: number, inp: RiseInputs): Promise<Built> {
    const tf = this.tf;
    const S = cfg.size;
    const params = namedWeights(cfg, inp.weights).map((n) => tf.tensor(n.data, n.shape));
    const image = tf.tensor4d(inp.image, [1, S, S, cfg.channels ?? 1]);
    const masks = tf.tensor4d(inp.masks, [batch, S, S, 1]);
    const acc = tf.variable(tf.zeros([cfg.steps, S * S]));
    // saliency[t] = sum over masks of p_t(target | masked image) * mask, / number of masks
    const saliency = (): Tensor => {
      const logits = blForward(tf, cfg, params, tf.mul(image, masks) as T4, cfg.steps);
      const p = tf.stack(logits.map((l) => tf.softmax(l).slice([0, inp.target], [batch, 1]).reshape([batch])));
      return tf.div(tf.matMul(p, masks.reshape([batch, S * S])), batch);
    };
    return this.runner([...params, image, masks, acc], () => acc.assign(tf.add(acc, saliency())), async () => readAll(tf, { saliency: tf.tidy(saliency) }));
  }

  async dispose(): Promise<void> {
    const tf = this.tf;
    tf.disposeVariables();
    const be = tf.backend() as unknown as WebGPUBackendLike;
    await this.sync();
    tf.removeBackend(this.backend);
    // tfjs's webgpu backend does not destroy its device; do it so it stops holding Dawn's threads.
    if (this.backend === 'webgpu') be.device.destroy();
  }
}

async function readAll(tf: TF, ts: Record<string, Tensor>): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(ts)) out[k] = Float32Array.from((await t.data()) as Float32Array);
  tf.dispose(Object.values(ts));
  return out;
}

/**
 * h = ReLU(LayerNorm(conv(pool?(x), wb) (+ b) + conv(hPrev, wl))), layer norm over (H, W, C) per sample; the bias
 * b (the cell suite's) as tfjs's fused conv + bias, none in the network.
 */
export function cellStep(tf: TF, x: T4, hPrev: T4 | null, wb: T4, wl: T4, b: Tensor | null, gamma: Tensor, beta: Tensor, pool: boolean): T4 {
  const xin = pool ? tf.maxPool(x, 2, 2, 'valid') : x;
  let z: Tensor = b ? tf.fused.conv2d({ x: xin, filter: wb, bias: b, strides: 1, pad: 'same' }) : tf.conv2d(xin, wb, 1, 'same');
  if (hPrev) z = tf.add(z, tf.conv2d(hPrev, wl, 1, 'same'));
  const { mean, variance } = tf.moments(z, [1, 2, 3], true);
  const zn = tf.mul(tf.sub(z, mean), tf.rsqrt(tf.add(variance, LN_EPS)));
  return tf.relu(tf.add(tf.mul(zn, gamma), beta)) as T4;
}

/** Logits [B, classes] at every step; params in namedWeights order (per layer wb, wl, gamma, beta; then readout w, b). */
export function blForward(tf: TF, cfg: NetConfig, params: Tensor[], x: T4, T: number): TFNS.Tensor2D[] {
  const ls = layerShapes(cfg);
  const W = params[4 * ls.length] as TFNS.Tensor2D, bR = params[4 * ls.length + 1];
  let h: (T4 | null)[] = ls.map(() => null);
  const logits: TFNS.Tensor2D[] = [];
  for (let t = 0; t < T; t++) {
    let inp = x;
    const next: T4[] = [];
    for (const l of ls) {
      const [wb, wl, g, be] = params.slice(4 * l.index, 4 * l.index + 4);
      inp = cellStep(tf, inp, h[l.index], wb as T4, wl as T4, null, g, be, l.pool);
      next.push(inp);
    }
    h = next;
    const feat = tf.mean(inp, [1, 2]) as TFNS.Tensor2D;
    logits.push(tf.add(tf.matMul(feat, W, false, true), bR) as TFNS.Tensor2D);
  }
  return logits;
}

/**
 * Mean over steps of the batch-mean softmax cross-entropy. (Stacked, not tf.addN: the webgpu backend's
 * AddN binds every input at once, and T + 1 buffers exceed the device's default 8 per stage.)
 */
export function blLoss(tf: TF, logits: TFNS.Tensor2D[], onehot: Tensor): TFNS.Scalar {
  const perStep = logits.map((l) => tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(l)), 1))));
  return tf.mean(tf.stack(perStep)) as TFNS.Scalar;
}
