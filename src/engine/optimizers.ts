/**
 * SGD with momentum and Adam/AdamW as GPU kernels (shaders/optim.wgsl), with PyTorch's defaults and
 * semantics. step() consumes and disposes each parameter's `.grad`. The step count and the learning rate
 * are GPU state ([t, 1 - beta1^t, 1 - beta2^t, lr]): a captured step replays with the right bias correction,
 * and setting `lr` between replays (a schedule) takes effect without capturing again.
 */
import { params } from './device.js';
import { Tensor } from './tensor.js';
import { fillInPlace } from '../kernels/elementwise.js';

export interface Optimizer {
  readonly params: readonly Tensor[];
  lr: number;
  step(): void;
  /** Optimiser state tensors, by name, for checkpoints. */
  state(): Map<string, Tensor>;
  dispose(): void;
}

function zerosLike(t: Tensor): Tensor {
  return fillInPlace(Tensor.empty(t.device, t.shape), 0);
}

function consumeGrad(p: Tensor, k: number): Tensor {
  if (!p.grad) throw new Error(`optimiser: parameter ${p.name ?? k} ${p.describe()} has no gradient; did backward() reach it?`);
  return p.grad;
}

/** The GPU state [t, 1 - beta1^t, 1 - beta2^t, lr] shared by the optimisers. */
abstract class GpuOptimizer {
  /** [t, 1 - beta1^t, 1 - beta2^t, lr] */
  readonly counter: Tensor;
  private lrValue: number;
  constructor(
    readonly params: readonly Tensor[],
    lr: number,
  ) {
    if (params.length === 0) throw new Error('optimiser: no parameters');
    if (!(lr > 0)) throw new Error(`optimiser: learning rate must be > 0, got ${lr}`);
    this.lrValue = lr;
    this.counter = Tensor.from(params[0].device, [0, 0, 0, lr], [4]);
  }
  get lr(): number {
    return this.lrValue;
  }
  set lr(v: number) {
    if (!(v >= 0)) throw new Error(`optimiser: learning rate must be >= 0, got ${v}`);
    this.lrValue = v;
    this.counter.device.write(this.counter.gpuBuffer(), Float32Array.of(v), 12);
  }
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
}

export class SGD extends GpuOptimizer implements Optimizer {
  readonly momentum: number;
  readonly weightDecay: number;
  private bufs: Tensor[];
  constructor(params: readonly Tensor[], opts: SGDOptions) {
    super(params, opts.lr);
    this.momentum = opts.momentum ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
    this.bufs = params.map(zerosLike);
  }
  step(): void {
    this.params.forEach((p, k) => {
      const g = consumeGrad(p, k);
      const P = params().u(p.size, 0).f(0, 0, 0, this.weightDecay, this.momentum, 0);
      p.device.run({ shader: 'optim', entry: 'sgd', workgroup: [256] }, [P, p, g, this.bufs[k], this.counter], [p.size]);
      g.dispose();
      p.grad = null;
    });
  }
  state(): Map<string, Tensor> {
    const s = new Map(this.bufs.map((b, k) => [`momentum.${this.params[k].name ?? k}`, b]));
    s.set('counter', this.counter);
    return s;
  }
  dispose(): void {
    for (const b of [...this.bufs, this.counter]) b.dispose();
  }
}

export interface AdamOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** AdamW: decay the weights directly instead of adding wd * w to the gradient. */
  decoupled?: boolean;
}

export class Adam extends GpuOptimizer implements Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly decoupled: boolean;
  private m: Tensor[];
  private v: Tensor[];
  constructor(params: readonly Tensor[], opts: AdamOptions = {}) {
    super(params, opts.lr ?? 1e-3);
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.decoupled = opts.decoupled ?? false;
    this.m = params.map(zerosLike);
    this.v = params.map(zerosLike);
  }
  private hyper(n: number) {
    return params().u(n, +this.decoupled).f(this.beta1, this.beta2, this.eps, this.weightDecay, 0, 0);
  }
  step(): void {
    const device = this.counter.device;
    device.run({ shader: 'optim', entry: 'adam_tick', workgroup: [1] }, [this.hyper(0), this.counter], [1]);
    this.params.forEach((p, k) => {
      const g = consumeGrad(p, k);
      device.run({ shader: 'optim', entry: 'adam', workgroup: [256] }, [this.hyper(p.size), p, g, this.m[k], this.v[k], this.counter], [p.size]);
      g.dispose();
      p.grad = null;
    });
  }
  state(): Map<string, Tensor> {
    const s = new Map<string, Tensor>();
    this.params.forEach((p, k) => {
      s.set(`adam.m.${p.name ?? k}`, this.m[k]);
      s.set(`adam.v.${p.name ?? k}`, this.v[k]);
    });
    s.set('adam.counter', this.counter);
    return s;
  }
  dispose(): void {
    for (const t of [...this.m, ...this.v, this.counter]) t.dispose();
  }
}
