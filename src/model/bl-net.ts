/**
 * The BL recurrent network (Spoerer et al. 2017/2020; rcnn-sat): 6 recurrent conv layers,
 *   h[t,n] = ReLU(Norm(W_b * pool(h[t,n-1]) + W_l * h[t-1,n] (+ W_t * up(h[t-1,n+1])) (+ b))),
 * h[t,0] = the image at every step, no lateral (or top-down) term at t = 0, weights shared across time;
 * readout at every step: global average pool of the last layer, one linear layer shared across time. The conv
 * bias b is there only with cfg.convBias (off in the presets, as rcnn-sat: the norm's beta is the shift).
 * Conv weights are HWIO on the GPU; checkpoints store PyTorch's OIHW (checkpoint.ts).
 */
import type { Device } from '../engine/device.js';
import { stream } from '../data/random.js';
import { noGrad } from '../engine/tape.js';
import { Tensor } from '../engine/tensor.js';
import { add, scale } from '../kernels/elementwise.js';
import { softmaxCrossEntropy } from '../kernels/cross-entropy.js';
import { linear } from '../kernels/matmul.js';
import { BatchNormState } from '../kernels/batch-norm.js';
import { globalAvgPool, maxPool2d } from '../kernels/pool.js';
import { type CellNorm, recurrentCell } from '../kernels/recurrent-cell.js';
import { upsampleNearest } from '../kernels/upsample.js';
import { layerSizes, type NetConfig } from './presets.js';

export interface ForwardOptions {
  /** Keep every layer's state h[t][n] (for analysis); under noGrad they stay valid after the call. */
  keepStates?: boolean;
  /** Truncated BPTT: cut the gradient through lateral/top-down inputs every `bptt` steps. */
  bptt?: number;
  /** Use the unfused composition of the cell (the reference the fused cell is tested against). */
  unfused?: boolean;
  /** Start from these states instead of t = 0 (recompute segments); `t0` is their time step. */
  initial?: { t0: number; states: Tensor[] };
}

export interface ForwardResult {
  /** Logits [B, classes] at every step. */
  logits: Tensor[];
  /** states[t][n], when asked (or the last step's states always, for segment chaining). */
  states: Tensor[][];
}

/** A tensor with the same storage and no tape history: gradients stop here. */
export function detach(t: Tensor): Tensor {
  return t.view(t.shape);
}

export class BLNet {
  /** Parameters in a fixed order, by their checkpoint names. */
  readonly params = new Map<string, Tensor>();
  /** Batch-norm running statistics per [layer][time step] (norm = 'batch'). */
  readonly bnStates: BatchNormState[][] = [];
  training = true;
  /** Batch norm: update running statistics in training mode (off while recomputing a segment). */
  updateRunningStats = true;

  private constructor(
    readonly device: Device,
    readonly cfg: NetConfig,
    /** Time steps the per-step batch-norm parameters cover. */
    readonly maxSteps: number,
  ) {}

  /**
   * Glorot-uniform conv and readout weights (Keras' default, as rcnn-sat), zero biases, norm gamma 1 and
   * beta 0. Seeded: the same seed gives the same weights.
   */
  static init(device: Device, cfg: NetConfig, seed: number, maxSteps = 8): BLNet {
    validateConfig(cfg);
    const net = new BLNet(device, cfg, maxSteps);
    const rng = stream(seed, 'init');
    const k = cfg.kernel;
    const glorot = (shape: number[], fanIn: number, fanOut: number) => {
      const lim = Math.sqrt(6 / (fanIn + fanOut));
      const n = shape.reduce((a, b) => a * b, 1);
      return Tensor.from(device, Float32Array.from({ length: n }, () => rng.uniform(-lim, lim)), shape);
    };
    const constant = (shape: number[], v: number) => Tensor.from(device, new Float32Array(shape[0]).fill(v), shape);
    const add = (name: string, t: Tensor) => {
      t.name = name;
      t.requireGrad();
      net.params.set(name, t);
    };
    cfg.widths.forEach((w, n) => {
      const cin = n === 0 ? cfg.inChannels : cfg.widths[n - 1];
      add(`layers.${n}.bottom_up.weight`, glorot([k, k, cin, w], k * k * cin, k * k * w));
      if (cfg.convBias) add(`layers.${n}.bottom_up.bias`, constant([w], 0));
      if (cfg.connections !== 'B') add(`layers.${n}.lateral.weight`, glorot([k, k, w, w], k * k * w, k * k * w));
      if (cfg.connections === 'BLT' && n + 1 < cfg.widths.length) {
        const above = cfg.widths[n + 1];
        add(`layers.${n}.top_down.weight`, glorot([k, k, above, w], k * k * above, k * k * w));
      }
      if (cfg.norm === 'layer') {
        add(`layers.${n}.norm.weight`, constant([w], 1));
        add(`layers.${n}.norm.bias`, constant([w], 0));
      } else {
        const states: BatchNormState[] = [];
        for (let t = 0; t < maxSteps; t++) {
          add(`layers.${n}.norm.${t}.weight`, constant([w], 1));
          add(`layers.${n}.norm.${t}.bias`, constant([w], 0));
          states.push(new BatchNormState(device, w));
        }
        net.bnStates.push(states);
      }
    });
    const last = cfg.widths[cfg.widths.length - 1];
    add('readout.weight', glorot([cfg.classes, last], last, cfg.classes));
    add('readout.bias', constant([cfg.classes], 0));
    return net;
  }

  param(name: string): Tensor {
    const p = this.params.get(name);
    if (!p) throw new Error(`BLNet: no parameter ${name}`);
    return p;
  }

  private norm(n: number, t: number): CellNorm {
    if (this.cfg.norm === 'layer') {
      return { kind: 'layer', gamma: this.param(`layers.${n}.norm.weight`), beta: this.param(`layers.${n}.norm.bias`) };
    }
    const tt = Math.min(t, this.maxSteps - 1);
    return {
      kind: 'batch',
      gamma: this.param(`layers.${n}.norm.${tt}.weight`),
      beta: this.param(`layers.${n}.norm.${tt}.bias`),
      state: this.bnStates[n][tt],
      training: this.training,
      updateRunningStats: this.updateRunningStats,
    };
  }

  /** Runs `steps` time steps on images [B, size, size, inChannels]. */
  forward(x: Tensor, steps: number, opts: ForwardOptions = {}): ForwardResult {
    const { cfg } = this;
    if (x.shape.length !== 4 || x.shape[1] !== cfg.size || x.shape[2] !== cfg.size || x.shape[3] !== cfg.inChannels) {
      throw new Error(`BLNet.forward: images must be [B, ${cfg.size}, ${cfg.size}, ${cfg.inChannels}], got [${x.shape.join(', ')}]`);
    }
    if (!Number.isInteger(steps) || steps < 1) throw new Error(`BLNet.forward: steps must be a positive integer, got ${steps}`);
    if (cfg.norm === 'batch' && steps > this.maxSteps) {
      throw new Error(`BLNet.forward: ${steps} steps, but batch norm parameters cover ${this.maxSteps}`);
    }
    const L = cfg.widths.length;
    const sizes = layerSizes(cfg);
    const logits: Tensor[] = [];
    const states: Tensor[][] = [];
    const t0 = opts.initial?.t0 ?? 0;
    let prev: Tensor[] | null = opts.initial?.states ?? null;
    for (let t = t0; t < t0 + steps; t++) {
      const cut = opts.bptt !== undefined && t > 0 && t % opts.bptt === 0;
      const lateralIn = prev && cut ? prev.map(detach) : prev;
      const cur: Tensor[] = [];
      for (let n = 0; n < L; n++) {
        let bottom = n === 0 ? x : cur[n - 1];
        if (cfg.poolBefore.includes(n)) bottom = maxPool2d(bottom, { kernel: 2, stride: 2 });
        const lateral = lateralIn && cfg.connections !== 'B' ? lateralIn[n] : null;
        const above = lateralIn && cfg.connections === 'BLT' && n + 1 < L ? lateralIn[n + 1] : null;
        const topDown = above ? (cfg.poolBefore.includes(n + 1) ? upsampleNearest(above, 2, [sizes[n], sizes[n]]) : above) : null;
        cur.push(
          recurrentCell(
            { bottom, lateral, topDown },
            {
              bottomUp: this.param(`layers.${n}.bottom_up.weight`),
              bias: cfg.convBias ? this.param(`layers.${n}.bottom_up.bias`) : undefined,
              lateral: lateral ? this.param(`layers.${n}.lateral.weight`) : undefined,
              topDown: topDown ? this.param(`layers.${n}.top_down.weight`) : undefined,
            },
            this.norm(n, t),
            { unfused: opts.unfused },
          ),
        );
      }
      logits.push(linear(globalAvgPool(cur[L - 1]), this.param('readout.weight'), this.param('readout.bias')));
      if (opts.keepStates || t === t0 + steps - 1) states.push(cur);
      prev = cur;
    }
    return { logits, states };
  }

  /** Mean over steps of the softmax cross-entropy at each step, and the logits. */
  loss(x: Tensor, labels: Tensor, steps: number, opts: ForwardOptions = {}): { loss: Tensor; logits: Tensor[]; states: Tensor[][] } {
    const out = this.forward(x, steps, opts);
    let total: Tensor | null = null;
    for (const l of out.logits) {
      const ce = softmaxCrossEntropy(l, labels);
      total = total ? add(total, ce) : ce;
    }
    return { loss: scale(total!, 1 / out.logits.length), ...out };
  }

  /** Logits at every step without recording gradients. */
  predict(x: Tensor, steps: number): Tensor[] {
    return noGrad(this.device, () => this.forward(x, steps).logits);
  }

  /** Total number of trainable values. */
  get parameterCount(): number {
    let n = 0;
    for (const p of this.params.values()) n += p.size;
    return n;
  }

  dispose(): void {
    for (const p of this.params.values()) p.dispose();
    for (const s of this.bnStates.flat()) s.dispose();
  }
}

export function validateConfig(cfg: NetConfig): void {
  const bad = (m: string) => {
    throw new Error(`network config: ${m}`);
  };
  if (!Number.isInteger(cfg.size) || cfg.size < 1) bad(`size must be a positive integer, got ${cfg.size}`);
  if (cfg.widths.length < 1 || cfg.widths.some((w) => !Number.isInteger(w) || w < 1)) bad(`widths must be positive integers, got ${cfg.widths}`);
  if (!Number.isInteger(cfg.classes) || cfg.classes < 2) bad(`classes must be an integer >= 2, got ${cfg.classes}`);
  if (cfg.kernel < 1 || cfg.kernel > 7 || !Number.isInteger(cfg.kernel)) bad(`kernel must be 1..7, got ${cfg.kernel}`);
  const sizes = layerSizes(cfg);
  if (sizes.some((s) => s < 1)) bad(`input size ${cfg.size} is too small for ${cfg.poolBefore.length} poolings`);
}
