/**
 * What the bench measures: the BL network's shapes (a plain config object, so the model's own presets
 * can be passed in later), the cases of each suite, and the work of each case counted from its shapes.
 *
 * Work counts the multiply-adds of the convolutions and the readout (2 FLOPs each). Layer norm, ReLU,
 * pooling, the loss and Adam are not counted: they are memory-bound and small next to the convolutions
 * (a few percent of the time at these shapes), so GFLOP/s here is "useful conv+matmul FLOPs per second".
 */

import { PRESETS as MODEL_PRESETS } from '../src/model/presets.js';

export interface NetConfig {
  /** Input height = width (grayscale, NHWC [B, size, size, 1]). */
  size: number;
  /** Output channels of each recurrent conv layer. */
  widths: number[];
  /** 0-based layer indices whose bottom-up input is 2x2 max-pooled (stride 2) first. */
  poolBefore: number[];
  classes: number;
  batch: number;
  /** Time steps T of the training step (BPTT) and of RISE. */
  steps: number;
  /** Input channels (1: grayscale). */
  channels?: number;
}

function fromModel(name: 'small' | 'paper'): NetConfig {
  const p = MODEL_PRESETS[name];
  return { size: p.net.size, widths: [...p.net.widths], poolBefore: [...p.net.poolBefore], classes: p.identities, batch: p.batch, steps: 8 };
}

/**
 * The bench's shapes: `small` and `paper` are the training presets of src/model/presets.ts (T = 8);
 * `facts` is the wider small-image network (16-16-32-32-64-64, 50 classes) that ../shared/FACTS.md's
 * hand-measured peer figures refer to.
 */
export const PRESETS: Record<string, NetConfig> = {
  small: fromModel('small'),
  paper: fromModel('paper'),
  facts: { size: 32, widths: [16, 16, 32, 32, 64, 64], poolBefore: [2, 4], classes: 50, batch: 32, steps: 8 },
};

export const LN_EPS = 1e-5;
export const ADAM = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
export const KERNEL = 3;

export interface LayerShape {
  index: number;
  /** Channels of the bottom-up input (after pooling, same count). */
  inC: number;
  outC: number;
  /** Spatial size of this layer's maps. */
  res: number;
  /** Spatial size of the bottom-up input before pooling. */
  inRes: number;
  pool: boolean;
}

export function layerShapes(cfg: NetConfig): LayerShape[] {
  let res = cfg.size;
  let inC = cfg.channels ?? 1;
  return cfg.widths.map((outC, index) => {
    const pool = cfg.poolBefore.includes(index);
    const inRes = res;
    if (pool) {
      if (res % 2 !== 0) throw new Error(`bench config: layer ${index} pools a ${res}x${res} map, which is odd`);
      res /= 2;
    }
    const s = { index, inC, outC, res, inRes, pool };
    inC = outC;
    return s;
  });
}

export function validateConfig(cfg: NetConfig): void {
  const bad = (why: string) => new Error(`bench config ${JSON.stringify(cfg)}: ${why}`);
  for (const k of ['size', 'classes', 'batch', 'steps'] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) throw bad(`${k} must be a positive integer`);
  }
  if (!cfg.widths.length || cfg.widths.some((w) => !Number.isInteger(w) || w < 1)) throw bad('widths must be positive integers');
  if (cfg.poolBefore.some((p) => !Number.isInteger(p) || p < 0 || p >= cfg.widths.length)) throw bad('poolBefore indexes a layer that does not exist');
  layerShapes(cfg);
}

/** 2 * multiply-adds of a 'same' stride-1 KxK conv (forward; dgrad and wgrad do the same count). */
export function convFlops(b: number, res: number, inC: number, outC: number, k = KERNEL): number {
  return 2 * b * res * res * inC * outC * k * k;
}

/** Forward through T steps, per image: bottom-up conv every step, lateral conv from t = 1, readout every step. */
export function forwardFlopsPerImage(cfg: NetConfig, T: number): number {
  let f = 0;
  for (const l of layerShapes(cfg)) {
    f += T * convFlops(1, l.res, l.inC, l.outC);
    f += Math.max(0, T - 1) * convFlops(1, l.res, l.outC, l.outC);
  }
  return f + T * 2 * cfg.widths[cfg.widths.length - 1] * cfg.classes;
}

/** Training step per image: forward, then wgrad of every conv, dgrad of every conv but the first layer's bottom-up (the image needs none), readout backward. */
export function trainFlopsPerImage(cfg: NetConfig, T: number): number {
  const ls = layerShapes(cfg);
  let back = 0;
  for (const l of ls) {
    const bu = convFlops(1, l.res, l.inC, l.outC);
    const lat = convFlops(1, l.res, l.outC, l.outC);
    back += T * bu * (l.index === 0 ? 1 : 2);
    back += Math.max(0, T - 1) * lat * 2;
  }
  back += T * 2 * 2 * cfg.widths[cfg.widths.length - 1] * cfg.classes;
  return forwardFlopsPerImage(cfg, T) + back;
}

/** RISE per masked image: the forward through T steps plus the saliency accumulation (one multiply-add per pixel per step). */
export function riseFlopsPerImage(cfg: NetConfig, T: number): number {
  return forwardFlopsPerImage(cfg, T) + 2 * T * cfg.size * cfg.size;
}

export type ConvOp = 'forward' | 'dgrad' | 'wgrad';
export const CONV_OPS: ConvOp[] = ['forward', 'dgrad', 'wgrad'];

export interface ConvCase {
  name: string;
  res: number;
  inC: number;
  outC: number;
  /** The ops the network runs at this shape (no dgrad for the first layer: the image needs no gradient). */
  ops: ConvOp[];
}

/** The distinct conv shapes of the network (bottom-up and lateral), largest maps first. */
export function convCases(cfg: NetConfig): ConvCase[] {
  const seen = new Map<string, { res: number; inC: number; outC: number; uses: string[] }>();
  for (const l of layerShapes(cfg)) {
    for (const [kind, inC] of [['bu', l.inC], ['lat', l.outC]] as const) {
      const key = `${l.res}:${inC}:${l.outC}`;
      const use = `L${l.index + 1}.${kind}`;
      const c = seen.get(key);
      if (c) c.uses.push(use);
      else seen.set(key, { res: l.res, inC, outC: l.outC, uses: [use] });
    }
  }
  return [...seen.values()].map((c) => ({
    name: `${c.res}x${c.res} ${c.inC}->${c.outC} (${c.uses.join(',')})`,
    res: c.res,
    inC: c.inC,
    outC: c.outC,
    ops: c.uses.every((u) => u === 'L1.bu') ? CONV_OPS.filter((o) => o !== 'dgrad') : CONV_OPS,
  }));
}

export type CellPass = 'forward' | 'forward+backward';

export interface CellCase {
  name: string;
  layer: LayerShape;
}

/**
 * One cell step at t >= 1 (bottom-up and lateral terms) for three layers: the last one at full
 * resolution, the first pooled one, and the last (widest) one.
 */
export function cellCases(cfg: NetConfig): CellCase[] {
  const ls = layerShapes(cfg);
  const full = ls.filter((l) => l.res === cfg.size).pop();
  const pooled = ls.find((l) => l.pool);
  const last = ls[ls.length - 1];
  const picked = [...new Set([full, pooled, last].filter((l): l is LayerShape => l !== undefined))];
  return picked.sort((a, b) => a.index - b.index).map((l) => ({ name: cellName(l), layer: l }));
}

function cellName(l: LayerShape): string {
  return `L${l.index + 1} ${l.res}x${l.res} ${l.inC}->${l.outC}${l.pool ? ' pool' : ''}`;
}

export function cellFlops(b: number, l: LayerShape, pass: CellPass): number {
  const f = convFlops(b, l.res, l.inC, l.outC) + convFlops(b, l.res, l.outC, l.outC);
  return pass === 'forward' ? f : 3 * f;
}

export const INFERENCE_STEPS = [1, 4, 8, 16];
