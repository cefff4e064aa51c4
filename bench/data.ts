/**
 * The numbers every peer gets: the BL network's weights and the inputs of every case, as plain
 * Float32Arrays generated from fixed seeds. Each image (mask, label) comes from its own seed, so a
 * batch of 2 is the first two images of a batch of 32: the agreement check and the timed runs see
 * the same data. Layouts: images NHWC, conv weights HWIO [kh, kw, Cin, Cout], readout [out, in].
 */
import { KERNEL, type LayerShape, type NetConfig, layerShapes } from './config.js';
import { hashSeed as hashPath, stream } from '../src/data/random.js';

/** A seeded uniform stream (the stimulus generator's sfc32). */
export const rng = (seed: number): (() => number) => stream(seed);

/** One seed from a path of names and numbers. */
const hashSeed = (...parts: (string | number)[]): number => hashPath(0, ...parts);

export function randn(n: number, seed: number, std = 1, mean = 0): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12), v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    out[i] = mean + std * m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = mean + std * m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

export function uniform(n: number, seed: number, lo = 0, hi = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** `batch` items of `per` values each, item i from its own seed. */
function perItem(batch: number, per: number, name: string, gen: (n: number, seed: number) => Float32Array): Float32Array {
  const out = new Float32Array(batch * per);
  for (let i = 0; i < batch; i++) out.set(gen(per, hashSeed(name, i)), i * per);
  return out;
}

export interface LayerWeights {
  /** Bottom-up conv, HWIO [3, 3, inC, outC]. */
  wb: Float32Array;
  /** Lateral conv, HWIO [3, 3, outC, outC]. */
  wl: Float32Array;
  /** Layer norm scale and shift [outC] (no conv bias: the network's, as rcnn-sat's, shifts in the norm only). */
  gamma: Float32Array;
  beta: Float32Array;
}

export interface BLWeights {
  layers: LayerWeights[];
  /** [classes, lastC] ([out, in]). */
  readoutW: Float32Array;
  readoutB: Float32Array;
}

export interface NamedArray {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** He-normal convs (lateral at half scale, so the recurrence stays tame), perturbed gamma/beta so their gradients are exercised. */
export function blWeights(cfg: NetConfig, seed = 1): BLWeights {
  const ls = layerShapes(cfg);
  const layers = ls.map((l) => ({
    wb: randn(KERNEL * KERNEL * l.inC * l.outC, hashSeed(seed, 'wb', l.index), Math.sqrt(2 / (KERNEL * KERNEL * l.inC))),
    wl: randn(KERNEL * KERNEL * l.outC * l.outC, hashSeed(seed, 'wl', l.index), 0.5 * Math.sqrt(2 / (KERNEL * KERNEL * l.outC))),
    gamma: randn(l.outC, hashSeed(seed, 'gamma', l.index), 0.1, 1),
    beta: randn(l.outC, hashSeed(seed, 'beta', l.index), 0.1),
  }));
  const lastC = cfg.widths[cfg.widths.length - 1];
  return {
    layers,
    readoutW: randn(cfg.classes * lastC, hashSeed(seed, 'readoutW'), Math.sqrt(1 / lastC)),
    readoutB: randn(cfg.classes, hashSeed(seed, 'readoutB'), 0.01),
  };
}

/** Every weight with a stable name (L1.wb ... readout.b) and its shape: the names gradients are compared under. */
export function namedWeights(cfg: NetConfig, w: BLWeights): NamedArray[] {
  const ls = layerShapes(cfg);
  const out: NamedArray[] = [];
  ls.forEach((l, i) => {
    const lw = w.layers[i];
    out.push({ name: `L${i + 1}.wb`, shape: [KERNEL, KERNEL, l.inC, l.outC], data: lw.wb });
    out.push({ name: `L${i + 1}.wl`, shape: [KERNEL, KERNEL, l.outC, l.outC], data: lw.wl });
    out.push({ name: `L${i + 1}.gamma`, shape: [l.outC], data: lw.gamma });
    out.push({ name: `L${i + 1}.beta`, shape: [l.outC], data: lw.beta });
  });
  const lastC = cfg.widths[cfg.widths.length - 1];
  out.push({ name: 'readout.w', shape: [cfg.classes, lastC], data: w.readoutW });
  out.push({ name: 'readout.b', shape: [cfg.classes], data: w.readoutB });
  return out;
}

/** Grayscale images in [0, 1], NHWC [batch, size, size, channels]. */
export function images(cfg: NetConfig, batch: number): Float32Array {
  const per = cfg.size * cfg.size * (cfg.channels ?? 1);
  return perItem(batch, per, 'image', (n, s) => uniform(n, s));
}

export function labels(cfg: NetConfig, batch: number): Int32Array {
  const out = new Int32Array(batch);
  for (let i = 0; i < batch; i++) out[i] = Math.floor(rng(hashSeed('label', i))() * cfg.classes);
  return out;
}

/**
 * RISE masks [batch, size, size, 1]: a random binary grid of 8x8 cells (p = 0.5), upsampled bilinearly
 * from a grid one cell larger and shifted by a random fraction of a cell (Petsiuk et al. 2018).
 */
export function riseMasks(cfg: NetConfig, batch: number): Float32Array {
  const s = cfg.size, g = 8, cell = s / g;
  return perItem(batch, s * s, 'mask', (n, seed) => {
    const r = rng(seed);
    const grid = new Float32Array((g + 1) * (g + 1)).map(() => (r() < 0.5 ? 1 : 0));
    const dx = r() * cell, dy = r() * cell;
    const out = new Float32Array(n);
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < s; x++) {
        const gy = Math.min((y + dy) / cell, g - 1e-6), gx = Math.min((x + dx) / cell, g - 1e-6);
        const y0 = Math.floor(gy), x0 = Math.floor(gx), fy = gy - y0, fx = gx - x0;
        const at = (yy: number, xx: number) => grid[yy * (g + 1) + xx];
        out[y * s + x] = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
      }
    }
    return out;
  });
}

/** The RISE target: the class whose saliency is accumulated. */
export const RISE_TARGET = 0;

export interface ConvData {
  /** [batch, res, res, inC] */
  x: Float32Array;
  /** HWIO [3, 3, inC, outC] */
  w: Float32Array;
  /** [outC] */
  bias: Float32Array;
  /** Upstream gradient [batch, res, res, outC] (dgrad, wgrad). */
  dy: Float32Array;
}

export function convData(res: number, inC: number, outC: number, batch: number): ConvData {
  const tag = `${res}:${inC}:${outC}`;
  return {
    x: perItem(batch, res * res * inC, `conv.x.${tag}`, (n, s) => randn(n, s)),
    w: randn(KERNEL * KERNEL * inC * outC, hashSeed('conv.w', tag), Math.sqrt(2 / (KERNEL * KERNEL * inC))),
    bias: randn(outC, hashSeed('conv.b', tag), 0.1),
    dy: perItem(batch, res * res * outC, `conv.dy.${tag}`, (n, s) => randn(n, s)),
  };
}

export interface CellData {
  /** Bottom-up input before pooling [batch, inRes, inRes, inC] (non-negative, as a ReLU output or an image). */
  x: Float32Array;
  /** Previous state h[t-1] [batch, res, res, outC] (non-negative). */
  h: Float32Array;
  wb: Float32Array;
  wl: Float32Array;
  b: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
  /** Upstream gradient of the cell's output [batch, res, res, outC]. */
  dy: Float32Array;
}

export function cellData(l: LayerShape, batch: number): CellData {
  const tag = `L${l.index}`;
  // |randn|: non-negative like a ReLU output, but without the ReLU's exact zeros, whose ties inside a
  // max-pool window each library breaks its own way (a valid difference the check would flag).
  const abs = (a: Float32Array) => a.map(Math.abs);
  return {
    x: perItem(batch, l.inRes * l.inRes * l.inC, `cell.x.${tag}`, (n, s) => abs(randn(n, s))),
    h: perItem(batch, l.res * l.res * l.outC, `cell.h.${tag}`, (n, s) => abs(randn(n, s))),
    wb: randn(KERNEL * KERNEL * l.inC * l.outC, hashSeed('cell.wb', tag), Math.sqrt(2 / (KERNEL * KERNEL * l.inC))),
    wl: randn(KERNEL * KERNEL * l.outC * l.outC, hashSeed('cell.wl', tag), 0.5 * Math.sqrt(2 / (KERNEL * KERNEL * l.outC))),
    b: randn(l.outC, hashSeed('cell.b', tag), 0.1),
    gamma: randn(l.outC, hashSeed('cell.gamma', tag), 0.1, 1),
    beta: randn(l.outC, hashSeed('cell.beta', tag), 0.1),
    dy: perItem(batch, l.res * l.res * l.outC, `cell.dy.${tag}`, (n, s) => randn(n, s)),
  };
}
