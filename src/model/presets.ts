/**
 * Network presets. A BL net: 6 recurrent conv layers with bottom-up and lateral connections
 * (Spoerer et al. 2017/2020, rcnn-sat), 2x2 max-pool on the bottom-up input before the layers listed in
 * `poolBefore` (0-based), readout at every time step. Every field can be overridden by a CLI flag.
 */
export type NormKind = 'layer' | 'batch';
export type Connections = 'B' | 'BL' | 'BLT';

export interface NetConfig {
  /** Input images are size x size x inChannels (NHWC). */
  size: number;
  inChannels: number;
  /** Output channels of each recurrent layer. */
  widths: number[];
  kernel: number;
  /** 0-based layers whose bottom-up input is 2x2 max-pooled first. */
  poolBefore: number[];
  classes: number;
  norm: NormKind;
  connections: Connections;
  /**
   * A bias on each layer's summed convolutions. Off in every preset, as in rcnn-sat (use_bias=False): the norm
   * that follows has its own per-channel shift (beta), and batch norm cancels a conv bias exactly.
   */
  convBias: boolean;
}

export interface TrainPreset {
  net: Omit<NetConfig, 'classes'>;
  identities: number;
  batch: number;
  epochs: number;
  trainPerIdentity: number;
  valPerIdentity: number;
  lr: number;
}

export const PRESETS: Record<'tiny' | 'small' | 'paper', TrainPreset> = {
  // For tests: seconds on a software adapter.
  tiny: {
    net: { size: 16, inChannels: 1, widths: [4, 4, 8, 8, 8, 8], kernel: 3, poolBefore: [2, 4], norm: 'layer', connections: 'BL', convBias: false },
    identities: 4,
    batch: 8,
    epochs: 1,
    trainPerIdentity: 8,
    valPerIdentity: 4,
    lr: 3e-3,
  },
  // The default on a software adapter (2 CPU cores): trains in minutes. Batch norm per (layer, step), as
  // rcnn-sat: on this net it learns far faster than layer norm in a short run (README, "The model").
  small: {
    net: { size: 32, inChannels: 1, widths: [8, 8, 16, 16, 32, 32], kernel: 3, poolBefore: [2, 4], norm: 'batch', connections: 'BL', convBias: false },
    identities: 16,
    batch: 32,
    epochs: 9,
    trainPerIdentity: 96,
    valPerIdentity: 16,
    lr: 3e-3,
  },
  // For real GPUs: 128x128 input, rcnn-sat-like widths over 6 layers.
  paper: {
    net: { size: 128, inChannels: 1, widths: [32, 32, 64, 64, 128, 128], kernel: 3, poolBefore: [2, 4], norm: 'layer', connections: 'BL', convBias: false },
    identities: 100,
    batch: 64,
    epochs: 30,
    trainPerIdentity: 400,
    valPerIdentity: 40,
    lr: 1e-3,
  },
};

export type PresetName = keyof typeof PRESETS;

/** Spatial size of each layer's output. */
export function layerSizes(cfg: Pick<NetConfig, 'size' | 'widths' | 'poolBefore'>): number[] {
  let s = cfg.size;
  return cfg.widths.map((_, n) => {
    if (cfg.poolBefore.includes(n)) s = Math.floor(s / 2);
    return s;
  });
}

/** Multiply-accumulates of one image's forward pass through `steps` time steps (convs and readout). */
export function forwardMacs(cfg: NetConfig, steps: number): number {
  const sizes = layerSizes(cfg);
  const k2 = cfg.kernel * cfg.kernel;
  let first = 0;
  let later = 0;
  cfg.widths.forEach((w, n) => {
    const cin = n === 0 ? cfg.inChannels : cfg.widths[n - 1];
    const hw = sizes[n] * sizes[n];
    const bottomUp = hw * cin * w * k2;
    const lateral = cfg.connections === 'B' ? 0 : hw * w * w * k2;
    const topDown = cfg.connections === 'BLT' && n + 1 < cfg.widths.length ? hw * cfg.widths[n + 1] * w * k2 : 0;
    first += bottomUp;
    later += bottomUp + lateral + topDown;
  });
  const readout = cfg.widths[cfg.widths.length - 1] * cfg.classes;
  return first + later * (steps - 1) + readout * steps;
}
