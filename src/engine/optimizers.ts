/**
 * SGD with momentum and Adam/AdamW as GPU kernels (shaders/optim.wgsl), with PyTorch's defaults and
 * semantics. step() consumes and disposes each parameter's `.grad`. Hyperparameters travel as uniform
 * parameters; Adam's step count is GPU state, so a captured step replays with the right bias correction.
 */
import { type Device, params } from './device.js';
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

export interface SGDOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
}

export class SGD implements Optimizer {
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  private bufs: Tensor[];
  constructor(
    readonly params: readonly Tensor[],
    opts: SGDOptions,
  ) {
    this.lr = opts.lr;
    this.momentum = opts.momentum ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
    this.bufs = params.map(zerosLike);
  }
  step(): void {
    this.params.forEach((p, k) => {
      const g = consumeGrad(p, k);
      const P = params().u(p.size, 0).f(this.lr, 0, 0, 0, this.weightDecay, this.momentum);
      p.device.run({ shader: 'optim', entry: 'sgd', workgroup: [256] }, [P, p, g, this.bufs[k]], [p.size]);
      g.dispose();
      p.grad = null;
    });
  }
  state(): Map<string, Tensor> {
    return new Map(this.bufs.map((b, k) => [`momentum.${this.params[k].name ?? k}`, b]));
  }
  dispose(): void {
    for (const b of this.bufs) b.dispose();
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

export class Adam implements Optimizer {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly decoupled: boolean;
  private m: Tensor[];
  private v: Tensor[];
  /** [t, 1 - beta1^t, 1 - beta2^t] on the GPU. */
  readonly counter: Tensor;
  constructor(
    readonly params: readonly Tensor[],
    opts: AdamOptions = {},
  ) {
    this.lr = opts.lr ?? 1e-3;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.decoupled = opts.decoupled ?? false;
    this.m = params.map(zerosLike);
    this.v = params.map(zerosLike);
    const device: Device = params[0].device;
    this.counter = fillInPlace(Tensor.empty(device, [4]), 0);
  }
  private hyper(n: number) {
    return params().u(n, +this.decoupled).f(this.lr, this.beta1, this.beta2, this.eps, this.weightDecay, 0);
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
