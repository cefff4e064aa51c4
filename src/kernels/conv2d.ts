/**
 * conv2d: NHWC activations, HWIO weights ([kh, kw, Cin, Cout], as tfjs), optional bias [Cout].
 * Forward, input gradient (dgrad) and weight gradient (wgrad) are three implicit-GEMM kernels
 * (shaders/conv2d_{forward,dgrad,wgrad}.wgsl); conv2dPair fuses conv(x1, w1) + conv(x2, w2) + bias into one
 * forward dispatch whose K axis runs over both sources (the recurrent cell's bottom-up + lateral input).
 * Padding follows TensorFlow: 'same' gives out = ceil(in / stride) with the odd pixel of padding at the
 * bottom / right; 'valid' pads nothing; a number pads every side; [top, bottom, left, right] is explicit.
 */
import { params, type Device } from '../engine/device.js';
import { type Kernel, registerGenerator } from '../engine/shaders.js';
import { record } from '../engine/tape.js';
import { Tensor } from '../engine/tensor.js';
import { accumulate } from './elementwise.js';
import { stageable, stageTextures, textureLayout } from './texture-stage.js';
import { addRowSums, sumRows } from './reduce.js';

export type Padding = 'same' | 'valid' | number | readonly [number, number, number, number];

export interface Conv2dOptions {
  stride?: number | readonly [number, number];
  padding?: Padding;
}

/** Everything a conv kernel needs to know about one (input, weight) pair; from convGeometry(). */
export interface ConvGeometry {
  batch: number;
  h: number;
  w: number;
  cin: number;
  kh: number;
  kw: number;
  cout: number;
  sh: number;
  sw: number;
  /** Padding: top, bottom, left, right. */
  pt: number;
  pb: number;
  pl: number;
  pr: number;
  ho: number;
  wo: number;
}

/**
 * Tile sizes, in one place so they can be chosen per adapter; the per-shape choice is made from them in
 * forwardPlan / wgradPlan. wg: threads per workgroup. forward (also the stride-1 dgrad): a
 * thread owns a run of pixels of one output row by tn output columns (a multiple of 4, narrowed to the
 * channel count), pixels = outputs / tn, balanced over the row. wgrad: a thread owns one kernel row's taps
 * by VEC input channels by tn columns, tn cut so that kw * VEC * tn <= outputs; output rows are split into at
 * most maxSplits chunks of at least minChunk pixels (up to 4 times as many splits where that divides the few
 * workgroups more evenly over a software adapter's threads: wgradPlan); with under laneSplitBelow threads (kh * Cin / VEC:
 * 3 for Cin 1, 6 for Cin 8) the chunks also run along the lanes. dgrad (strided convs only): tm pixels, bk
 * staged K rows.
 * The wgrad accumulator budget keeps its loops small enough for the compiler to unroll them and keep the
 * accumulators in registers; the forward's body is generated unrolled (forwardBody), so its budget is only
 * a tile size (on llvmpipe, with kx unrolled, 256-384 outputs ran 1.0-1.3x faster than 64; with the kx loop 128-384
 * measured alike, and 192 keeps the loop body short).
 * forward.textures: read the input (where Cin % 4 == 0) and the weight (where read as vec4s) from textures that
 * a copy fills at each call (texture-stage.ts); on llvmpipe 1.15-1.3x faster at the network's shapes, copies included.
 * forward.kxLoop: run the kernel columns (kx) as a loop, not unrolled, where the conv has stride 1 along the width
 * (forwardBody). The unrolled body of the channel loop is TM * TN * KW * VEC FMAs (3072 at 16 x 16 outputs, 52 KB of
 * machine code on llvmpipe, which ran at about half the rate llvm-mca predicts for it); the loop makes it a third
 * of that, for a masked move per accumulator and step: on llvmpipe forward convs 1.0-1.35x faster, the BL training
 * step ~1.05-1.1x.
 * `software` is measured on llvmpipe (bench/conv-kernels.ts); others fall back to it until measured.
 */
export interface ConvTiles {
  forward: { wg: number; outputs: number; tn: number; subgroups: boolean; rows?: ForwardRowsTiles; textures?: boolean; kxLoop?: boolean };
  dgrad: { wg: number; tm: number; tn: number; bk: number; subgroups: boolean };
  wgrad: { wg: number; outputs: number; tn: number; subgroups: boolean; minChunk: number; maxSplits: number; laneSplitBelow: number };
}

/**
 * The forward's rows variant (shaders/conv2d_forward.wgsl), used where the inputs are read from storage
 * buffers (not textures) and the output is narrow (tn <= maxTn columns) and at least minWidth pixels wide, for
 * kernels up to maxKh rows: there the input gathers, not the FMAs, dominate, and it gathers each input row once
 * instead of kh times. outputs: accumulators per thread
 * over the whole window (kh rows); strips are halved while fewer than minThreads threads would run.
 */
export interface ForwardRowsTiles {
  maxTn: number;
  minWidth: number;
  maxKh: number;
  outputs: number;
  wg: number;
  minThreads: number;
}

export const CONV_TILES: Record<string, ConvTiles> = {
  software: {
    forward: { wg: 64, outputs: 192, tn: 16, subgroups: true, rows: { maxTn: 8, minWidth: 16, maxKh: 3, outputs: 384, wg: 16, minThreads: 64 }, textures: true, kxLoop: true },
    dgrad: { wg: 64, tm: 4, tn: 16, bk: 128, subgroups: true },
    // minChunk 2048 (was 1024): the 8x8 layers' wgrad then needs no split sum (1.2-1.4x there), the BL training step 1.01-1.03x.
    wgrad: { wg: 64, outputs: 192, tn: 16, subgroups: true, minChunk: 2048, maxSplits: 64, laneSplitBelow: 8 },
  },
};

/** The tile table for a device: per adapter kind, falling back to the software table. */
export function convTiles(device: Device): ConvTiles {
  const kind = device.isSoftware ? 'software' : device.info.vendor;
  return CONV_TILES[kind] ?? CONV_TILES.software;
}

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;

function positiveInt(v: number): boolean {
  return Number.isInteger(v) && v > 0;
}

/**
 * Validates an (input, weight) pair and options and resolves output size and padding. Throws one Error
 * naming `op` and the shapes for anything wrong, before any dispatch.
 */
export function convGeometry(op: string, xShape: readonly number[], wShape: readonly number[], opts: Conv2dOptions = {}): ConvGeometry {
  const where = `${op}: input ${shapeStr(xShape)}, weight ${shapeStr(wShape)}`;
  if (xShape.length !== 4) throw new Error(`${where}: the input must be 4-D [N, H, W, Cin] (NHWC)`);
  if (wShape.length !== 4) throw new Error(`${where}: the weight must be 4-D [kh, kw, Cin, Cout] (HWIO)`);
  if (!xShape.every(positiveInt) || !wShape.every(positiveInt)) throw new Error(`${where}: every size must be a positive integer`);
  const [batch, h, w, cin] = xShape;
  const [kh, kw, wcin, cout] = wShape;
  if (wcin !== cin) throw new Error(`${where}: the input has ${cin} channels but the weight expects ${wcin}`);
  const stride = opts.stride ?? 1;
  const [sh, sw] = typeof stride === 'number' ? [stride, stride] : stride;
  if ((typeof stride !== 'number' && stride.length !== 2) || !positiveInt(sh) || !positiveInt(sw)) {
    throw new Error(`${where}: stride ${JSON.stringify(stride)} must be a positive integer or [sh, sw] of them`);
  }
  const padding = opts.padding ?? 'valid';
  let pt: number, pb: number, pl: number, pr: number;
  if (padding === 'same') {
    const padH = Math.max((Math.ceil(h / sh) - 1) * sh + kh - h, 0);
    const padW = Math.max((Math.ceil(w / sw) - 1) * sw + kw - w, 0);
    pt = Math.floor(padH / 2), pb = padH - pt, pl = Math.floor(padW / 2), pr = padW - pl;
  } else if (padding === 'valid') {
    pt = pb = pl = pr = 0;
  } else if (typeof padding === 'number') {
    pt = pb = pl = pr = padding;
  } else if (Array.isArray(padding) && padding.length === 4) {
    [pt, pb, pl, pr] = padding;
  } else {
    throw new Error(`${where}: padding ${JSON.stringify(padding)} must be 'same', 'valid', a number or [top, bottom, left, right]`);
  }
  if (![pt, pb, pl, pr].every((v) => Number.isInteger(v) && v >= 0)) {
    throw new Error(`${where}: padding ${JSON.stringify(padding)} must be non-negative integers`);
  }
  if (h + pt + pb < kh || w + pl + pr < kw) {
    throw new Error(`${where}: the ${kh}x${kw} kernel is larger than the padded ${h + pt + pb}x${w + pl + pr} input`);
  }
  const ho = Math.floor((h + pt + pb - kh) / sh) + 1;
  const wo = Math.floor((w + pl + pr - kw) / sw) + 1;
  return { batch, h, w, cin, kh, kw, cout, sh, sw, pt, pb, pl, pr, ho, wo };
}

function checkTensor(op: string, t: Tensor, what: string): void {
  if (t.dtype !== 'f32') throw new Error(`${op}: ${what} ${t.describe()} is ${t.dtype}, expected f32`);
  if (t.disposed) throw new Error(`${op}: ${what} ${t.describe()} was disposed`);
}

function checkBias(op: string, bias: Tensor | undefined, cout: number): void {
  if (!bias) return;
  checkTensor(op, bias, 'bias');
  if (bias.shape.length !== 1 || bias.shape[0] !== cout) {
    throw new Error(`${op}: bias ${shapeStr(bias.shape)} must be [${cout}] (one per output channel)`);
  }
}

const round4 = (n: number) => Math.ceil(n / 4) * 4;
/** Columns per thread: the table's tn, narrowed for narrow outputs (no point computing 16 of 3 channels). */
const columns = (tn: number, n: number) => Math.min(tn, round4(n));

function gridCheck(device: Device, op: string, groups: number): void {
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  if (groups > max) throw new Error(`${op}: ${groups} workgroups along M exceed the device's ${max}; use a smaller batch`);
}

/**
 * Template values that switch a kernel between plain workgroup-memory reads and subgroup broadcasts
 * (lines marked SG / NOSG in the shader). Subgroups need the device feature and at least 8 lanes.
 */
function subgroupDefines(device: Device, use: boolean): Record<string, string> {
  const on = use && device.hasFeature('subgroups') && (device.adapter.info as unknown as { subgroupMinSize?: number }).subgroupMinSize! >= 8;
  return on
    ? { ENABLE: 'enable subgroups;', SG: '', NOSG: '//', SG_PARAM: ', @builtin(subgroup_invocation_id) lane: u32', LANE: 'lane' }
    : { ENABLE: '', SG: '//', NOSG: '', SG_PARAM: '', LANE: '0u' };
}

/** The shape of one generated forward kernel: everything its unrolled body depends on. */
interface ForwardShape {
  vec: number;
  tm: number;
  tn4: number;
  kw: [number, number];
  sw: number;
  /** Rows variant: the kernel height (both sources), compile-time; 0 for the row-at-a-time kernel. */
  rows: number;
  /** Source 0's weight is the forward conv's, read as its flipped transpose (the stride-1 dgrad). */
  flipped: boolean;
  subgroups: boolean;
  /** The WGSL expression of the subgroup lane. */
  lane: string;
  /** A runtime loop over kx instead of unrolling it (row at a time, stride 1). */
  kxLoop: boolean;
}

/**
 * The body of shaders/conv2d_forward.wgsl's entry point, unrolled for one ForwardShape: named accumulators
 * a_k_i_j (window slot k, pixel i, columns 4j .. 4j + 4); per source a runtime loop over channel groups whose
 * body gathers the NX input columns once, fetches the KW * VEC * TN4 weight vec4s of a kernel row (by
 * subgroup broadcast where available) and updates the accumulators with one chained FMA expression each.
 * Row-at-a-time (rows = 0): one slot, a runtime loop over kernel rows. Rows variant: KH slots and a runtime
 * loop over the strip's input rows, each kernel row's FMAs unrolled into its slot; the complete slot is stored
 * after each input row and the window shifts.
 */
export function forwardBody(f: ForwardShape): string {
  const { vec, tm, tn4, sw, rows } = f;
  const slots = Math.max(rows, 1);
  const comp = ['x', 'y', 'z', 'w'];
  const acc = (k: number, i: number, j: number) => `a_${k}_${i}_${j}`;
  const out: string[] = [];
  const ind = (n: number) => ' '.repeat(n);
  for (let k = 0; k < slots; k++) for (let i = 0; i < tm; i++) for (let j = 0; j < tn4; j++) out.push(`  var ${acc(k, i, j)} = vec4f(0.0);`);
  // The FMAs of one kernel row (`ky`, a WGSL expression) of source s into slot k, inside the channel loop.
  const kernelRow = (s: number, ky: string, k: number, d: number) => {
    const kw = f.kw[s];
    const q = kw * vec * tn4; // weight vec4s per step: b_q = w[k0 + kx * Cin + cc, n0 + 4j], q = (kx * VEC + cc) * TN4 + j
    const flipped = s === 0 && f.flipped;
    out.push(`${ind(d)}{`);
    if (!flipped) out.push(`${ind(d)}  let k0 = ${ky} * ${kw}u * g.cin + c * VEC;`);
    const wAt = (qq: string) => flipped
      ? `load_w_flipped(${s}u, g.kh, ${kw}u, g.cin, ${ky}, ${qq} / ${vec * tn4}u, c * VEC + (${qq} / ${tn4}u) % VEC, n0 + (${qq} % ${tn4}u) * 4u)`
      : `load_w(${s}u, k0 + (${qq} / ${vec * tn4}u) * g.cin + (${qq} / ${tn4}u) % VEC, n0 + (${qq} % ${tn4}u) * 4u)`;
    // Weight vec4s b_0 .. b_(n-1) = wAt(base + 0 .. n-1), by subgroup broadcast where available.
    const weights = (base: string, n: number, dd: number) => {
      if (f.subgroups) {
        for (let h = 0; h < n; h += 8) {
          out.push(`${ind(dd)}let wl_${h} = ${wAt(`(${base}min(${h}u + ${f.lane}, ${n - 1}u))`)};`);
          for (let l = 0; l < 8 && h + l < n; l++) out.push(`${ind(dd)}let b_${h + l} = subgroupBroadcast(wl_${h}, ${l}u);`);
        }
      } else {
        for (let qq = 0; qq < n; qq++) out.push(`${ind(dd)}let b_${qq} = ${wAt(`(${base}${qq}u)`)};`);
      }
    };
    if (f.kxLoop) {
      // A runtime loop over kx keeps the unrolled body at TM * TN4 * VEC FMAs: the input window w_i = x_(i + kx)
      // shifts by one column per step (stride 1 only), and each step fetches its own kx's weights.
      const qk = vec * tn4;
      for (let i = 0; i < tm; i++) out.push(`${ind(d)}  var w_${i} = x_${i};`);
      out.push(`${ind(d)}  for (var kx = 0u; kx < ${kw}u; kx++) {`);
      out.push(`${ind(d)}    let kq = kx * ${qk}u;`);
      weights('kq + ', qk, d + 4);
      // Column quad outer, pixel inner: a quad's VEC weight vec4s stay in registers across the TM pixels (pixel
      // outer reloaded all VEC * TN4 of them per pixel: on llvmpipe 868 stack accesses per step instead of 564
      // at TM 8, TN 16; llvm-mca (Zen 3) 436 -> 392 cycles per step).
      for (let j = 0; j < tn4; j++) {
        for (let i = 0; i < tm; i++) {
          let e = acc(k, i, j);
          for (let cc = 0; cc < vec; cc++) e = `fma(vec4f(w_${i}.${comp[cc]}), b_${cc * tn4 + j}, ${e})`;
          out.push(`${ind(d)}    ${acc(k, i, j)} = ${e};`);
        }
      }
      for (let i = 0; i + 1 < tm; i++) out.push(`${ind(d)}    w_${i} = w_${i + 1};`);
      // The column entering the window: x_(TM + kx).
      let next = `x_${tm + kw - 2}`;
      for (let e = kw - 3; e >= 0; e--) next = `select(${next}, x_${tm + e}, kx == ${e}u)`;
      if (kw > 1) out.push(`${ind(d)}    w_${tm - 1} = ${next};`);
      out.push(`${ind(d)}  }`, `${ind(d)}}`);
      return;
    }
    weights('', q, d + 2);
    for (let j = 0; j < tn4; j++) {
      for (let i = 0; i < tm; i++) {
        let e = acc(k, i, j);
        for (let kx = 0; kx < kw; kx++) {
          for (let cc = 0; cc < vec; cc++) e = `fma(vec4f(x_${i * sw + kx}.${comp[cc]}), b_${(kx * vec + cc) * tn4 + j}, ${e})`;
        }
        out.push(`${ind(d)}  ${acc(k, i, j)} = ${e};`);
      }
    }
    out.push(`${ind(d)}}`);
  };
  // Per source: gather input row `ih` (a WGSL expression) and run the channel loop over `body`.
  const inputRow = (s: number, ih: string, d: number, body: () => void) => {
    const nx = (tm - 1) * sw + f.kw[s];
    out.push(`${ind(d)}{`, `${ind(d)}  let g = p.s${s};`, `${ind(d)}  let cinv = g.cin / VEC;`,
      `${ind(d)}  let ih = ${ih};`, `${ind(d)}  let ix0 = i32(ow0 * SW) - g.pl;`,
      `${ind(d)}  let row_ok = u32(ih) < g.h; // negative wraps to a huge u32`,
      `${ind(d)}  let row = i32((n * g.h + u32(ih)) * g.w);`);
    for (let jx = 0; jx < nx; jx++) {
      out.push(`${ind(d)}  let ok_${jx} = row_ok && u32(ix0 + ${jx}) < g.w;`,
        `${ind(d)}  let col_${jx} = select(0u, u32(row + ix0 + ${jx}) * cinv, ok_${jx});`);
    }
    out.push(`${ind(d)}  for (var c = 0u; c < cinv; c++) {`);
    for (let jx = 0; jx < nx; jx++) out.push(`${ind(d)}    let x_${jx} = select(vec4f(0.0), load_x(${s}u, col_${jx} + c), ok_${jx});`);
    body();
    out.push(`${ind(d)}  }`, `${ind(d)}}`);
  };
  // Stores output row `orow` from slot k, under `cond`.
  const store = (k: number, orow: string, cond: string, d: number) => {
    out.push(`${ind(d)}if (${cond}) {`);
    for (let j = 0; j < tn4; j++) out.push(`${ind(d)}  let bias_${j} = bias4(n0 + ${4 * j}u);`);
    for (let i = 0; i < tm; i++) {
      out.push(`${ind(d)}  if (ow0 + ${i}u < p.wo) {`, `${ind(d)}    let o = ((n * p.ho + ${orow}) * p.wo + ow0 + ${i}u) * p.cout;`);
      for (let j = 0; j < tn4; j++) out.push(`${ind(d)}    store_y(o, n0 + ${4 * j}u, ${acc(k, i, j)} + bias_${j});`);
      out.push(`${ind(d)}  }`);
    }
    out.push(`${ind(d)}}`);
  };
  const sources = [0, 1].filter((s) => f.kw[s] > 0);
  if (rows === 0) {
    for (const s of sources) {
      out.push(`  for (var ky = 0u; ky < p.s${s}.kh; ky++) {`);
      inputRow(s, `i32(oh * g.sh + ky) - g.pt`, 4, () => kernelRow(s, 'ky', 0, 6));
      out.push(`  }`);
    }
    store(0, 'oh', 'seg_id < p.segs', 2);
    return out.join('\n');
  }
  // Rows variant (stride 1 along rows, both sources KH high with the same top padding): input row u of
  // the strip meets output row oh + u - ky with kernel row ky, which slot ky accumulates.
  out.push(`  for (var u = 0u; u < p.strip + ${rows - 1}u; u++) {`);
  for (const s of sources) {
    inputRow(s, `i32(oh + u) - g.pt`, 4, () => {
      for (let ky = 0; ky < rows; ky++) kernelRow(s, `${ky}u`, ky, 6);
    });
  }
  out.push(`    let orow = oh + u - ${rows - 1}u; // complete in the oldest slot (wraps below oh: not stored)`);
  store(rows - 1, 'orow', `seg_id < p.segs && u >= ${rows - 1}u && orow < min(oh + p.strip, p.ho)`, 4);
  for (let k = rows - 1; k > 0; k--) for (let i = 0; i < tm; i++) for (let j = 0; j < tn4; j++) out.push(`    ${acc(k, i, j)} = ${acc(k - 1, i, j)};`);
  for (let i = 0; i < tm; i++) for (let j = 0; j < tn4; j++) out.push(`    ${acc(0, i, j)} = vec4f(0.0);`);
  out.push(`  }`);
  return out.join('\n');
}

registerGenerator('conv2d_forward', (d) => ({
  BODY: forwardBody({
    vec: Number(d.VEC), tm: Number(d.TM), tn4: Number(d.TN) / 4, kw: [Number(d.KW0), Number(d.KW1)], sw: Number(d.SW),
    rows: Number(d.ROWS), flipped: Number(d.FLIPPED) === 1, subgroups: d.SG_PARAM !== '', lane: String(d.LANE), kxLoop: Number(d.KX_LOOP) === 1,
  }),
}));

/** How forwardKernel splits one conv: which variant, the tile, and the strips of output rows. */
export interface ForwardPlan {
  /** Rows variant: the kernel height it is unrolled for; 0: row at a time. */
  rows: number;
  vec: number;
  /** The inputs are read from staged textures (texture-stage.ts), not from storage buffers. */
  textureInputs: boolean;
  /** The kernel's columns run as a loop (ConvTiles.forward.kxLoop), not unrolled. */
  kxLoop: boolean;
  tm: number;
  tn: number;
  wg: number;
  /** Output rows per thread (1 row at a time) and strips per image. */
  strip: number;
  strips: number;
  segsPerRow: number;
}

/** The forward's plan for these sources on this device (exported for tests and the bench). */
export function forwardPlan(device: Device, sources: readonly { g: ConvGeometry }[]): ForwardPlan {
  const g0 = sources[0].g;
  const tiles = convTiles(device).forward;
  const vec = sources.every((s) => s.g.cin % 4 === 0) ? 4 : 1;
  const textureInputs = Boolean(tiles.textures) && vec === 4 && sources.every((s) => stageable(device, s.g.batch * s.g.h * s.g.w * s.g.cin));
  const tn = columns(tiles.tn, g0.cout);
  // The rows variant needs every source to meet the same input rows: stride 1 and one kernel height and top padding.
  // It saves input gathers, which pays only where they are storage reads (textured: 1.0-1.4x slower than row at a time).
  const r = tiles.rows;
  const rows = r && !textureInputs && tn <= r.maxTn && g0.wo >= r.minWidth && g0.kh <= r.maxKh &&
    sources.every((s) => s.g.sh === 1 && s.g.kh === g0.kh && s.g.pt === g0.pt) ? g0.kh : 0;
  const wg = rows ? r!.wg : tiles.wg;
  const outputs = rows ? r!.outputs / rows : tiles.outputs;
  // Pixels per segment: the accumulator budget over the columns, balanced over the row (9 as 5 + 4, not 8 + 1).
  const tmMax = Math.max(1, Math.floor(outputs / tn));
  const tm = Math.ceil(g0.wo / Math.ceil(g0.wo / tmMax));
  const segsPerRow = Math.ceil(g0.wo / tm);
  // Rows variant: strips as tall as the image, halved while too few threads would fill the adapter (a strip
  // re-gathers kh - 1 rows above it, so not below 2 * kh rows).
  let strip = 1;
  if (rows) {
    strip = g0.ho;
    while (strip > 2 * rows && g0.batch * segsPerRow * Math.ceil(g0.ho / strip) < r!.minThreads) strip = Math.ceil(strip / 2);
  }
  const kxLoop = !rows && g0.sw === 1 && Boolean(tiles.kxLoop);
  return { rows, vec, textureInputs, kxLoop, tm, tn, wg, strip, strips: Math.ceil(g0.ho / strip), segsPerRow };
}

/**
 * One forward dispatch over one or two sources; y = sum of the sources' convs (+ bias). Sources share
 * kw and sw (compile-time in the shader); padding may be negative (the dgrad form). With `into`, the
 * result is added into it (in the kernel's stores) and it is returned.
 */
function forwardKernel(
  op: string, sources: { x: Tensor; w: Tensor; g: ConvGeometry }[], bias: Tensor | undefined, into?: Tensor, flipped = false,
): Tensor {
  const device = sources[0].x.device;
  const g0 = sources[0].g;
  const s1 = sources[1];
  const tiles = convTiles(device).forward;
  const { rows, vec, textureInputs: xTex, kxLoop, tm, tn, wg, strip, strips, segsPerRow } = forwardPlan(device, sources);
  const segs = g0.batch * strips * segsPerRow;
  const yVec = g0.cout % 4 === 0;
  // vec4 reads of weight rows and stores of outputs where Cout allows; a flipped weight's columns are not contiguous.
  const wVec = yVec && !flipped;
  // Textures (where the tile table asks): inputs as vec4 texels where Cin % 4 == 0 (forwardPlan), weights where
  // they are read as vec4s. Every source the same way, as the shader declares them together. (A flipped weight
  // staged as its flipped transpose by a kernel of its own measured no faster than read in place: its dispatch
  // cost the gain.)
  const wTex = Boolean(tiles.textures) && wVec && sources.every((s) => stageable(device, s.w.size));
  const kernel: Kernel = {
    shader: 'conv2d_forward',
    entry: 'forward',
    workgroup: [wg],
    constants: { HAS_BIAS: bias ? 1 : 0, WT_VEC: +wVec, YT_VEC: +yVec, ACCUMULATE: +Boolean(into) },
    defines: {
      X_TYPE: vec === 4 ? 'vec4f' : 'f32', W_TYPE: wVec ? 'vec4f' : 'f32', Y_TYPE: yVec ? 'vec4f' : 'f32', YV: yVec ? '' : '//',
      FLIPPED: +flipped, XBUF: xTex ? '//' : '', XTEX: xTex ? '' : '//', WBUF: wTex ? '//' : '', WTEX: wTex ? '' : '//',
      TEX_SHIFT: textureLayout(device).shift, KX_LOOP: +kxLoop, VEC: vec, TM: tm, TN: tn, KW0: g0.kw, KW1: s1?.g.kw ?? 0, SW: g0.sw, ROWS: rows, WG: wg,
      ...subgroupDefines(device, tiles.subgroups),
    },
  };
  const groupsM = Math.ceil(segs / wg);
  gridCheck(device, op, groupsM);
  const y = into ?? Tensor.empty(device, [g0.batch, g0.ho, g0.wo, g0.cout]);
  const src = (g: ConvGeometry | undefined) => (g ? [g.h, g.w, g.cin, g.kh, g.sh] : [0, 0, 0, 0, 0]);
  const p = params().u(segs, g0.cout, g0.ho, g0.wo, segsPerRow, strips, strip, 0)
    .u(...src(g0)).i(g0.pt, g0.pl).u(0)
    .u(...src(s1?.g)).i(s1?.g.pt ?? 0, s1?.g.pl ?? 0).u(0);
  const staged = stageTextures(device, sources.flatMap((s, i) => [
    ...(xTex ? [{ slot: i, t: s.x }] : []),
    ...(wTex ? [{ slot: 2 + i, t: s.w }] : []),
  ]));
  // A plain conv binds source 0 again as source 1 (unread: KW1 = 0).
  const x = (i: number) => (xTex ? staged.get(i) ?? staged.get(0)! : sources[i]?.x ?? sources[0].x);
  const w = (i: number) => (wTex ? staged.get(2 + i) ?? staged.get(2)! : sources[i]?.w ?? sources[0].w);
  device.run(kernel, [p, y, x(0), w(0), x(1), w(1), bias ?? sources[0].w], [groupsM * wg, Math.ceil(g0.cout / tn)]);
  return y;
}

/**
 * dgrad of a stride-1 conv is a forward conv of dY (padded by k - 1 - p) with the flipped, transposed weight,
 * so it runs on the forward kernel and its input-column reuse, reading w in that order in place.
 */
function stride1BackwardInput(gy: Tensor, w: Tensor, g: ConvGeometry, into?: Tensor): Tensor {
  const gf: ConvGeometry = {
    batch: g.batch, h: g.ho, w: g.wo, cin: g.cout, kh: g.kh, kw: g.kw, cout: g.cin, sh: 1, sw: 1,
    pt: g.kh - 1 - g.pt, pb: g.kh - 1 - g.pb, pl: g.kw - 1 - g.pl, pr: g.kw - 1 - g.pr, ho: g.h, wo: g.w,
  };
  return forwardKernel('conv2dBackwardInput', [{ x: gy, w, g: gf }], undefined, into, true);
}

/** dL/dx of conv(x, w) given dL/dy [N, Ho, Wo, Cout]: [N, H, W, Cin]; with `into`, added into it and it returned. */
export function conv2dBackwardInput(gy: Tensor, w: Tensor, g: ConvGeometry, into?: Tensor): Tensor {
  const op = 'conv2dBackwardInput';
  checkTensor(op, gy, 'gradient');
  checkTensor(op, w, 'weight');
  if (!sameShape(gy.shape, [g.batch, g.ho, g.wo, g.cout]) || !sameShape(w.shape, [g.kh, g.kw, g.cin, g.cout])) {
    throw new Error(`${op}: gradient ${shapeStr(gy.shape)} and weight ${shapeStr(w.shape)} do not fit the conv ` +
      `(expected [${g.batch}, ${g.ho}, ${g.wo}, ${g.cout}] and [${g.kh}, ${g.kw}, ${g.cin}, ${g.cout}])`);
  }
  checkInto(op, into, [g.batch, g.h, g.w, g.cin]);
  const device = gy.device;
  if (g.sh === 1 && g.sw === 1) return stride1BackwardInput(gy, w, g, into);
  const t = convTiles(device).dgrad;
  const vec = g.cout % 4 === 0 ? 4 : 1;
  const tn = columns(t.tn, g.cin);
  const hp = Math.ceil(g.h / g.sh);
  const wp = Math.ceil(g.w / g.sw);
  const rows = g.batch * hp * wp;
  const tapsPerTile = g.cout >= t.bk ? 1 : Math.floor(t.bk / g.cout);
  const kernel: Kernel = {
    shader: 'conv2d_dgrad',
    entry: 'dgrad',
    workgroup: [t.wg],
    defines: {
      X_TYPE: vec === 4 ? 'vec4f' : 'f32', VEC: vec, TM: t.tm, TN4: tn / 4, BK: t.bk, WG: t.wg,
      ...subgroupDefines(device, t.subgroups),
    },
  };
  const groupsM = Math.ceil(rows / (t.wg * t.tm));
  gridCheck(device, op, groupsM);
  const dx = Tensor.empty(device, [g.batch, g.h, g.w, g.cin]);
  const p = params().u(
    rows, g.cin, g.cout, g.h,
    g.w, g.ho, g.wo, g.kh,
    g.kw, g.sh, g.sw, g.pt,
    g.pl, hp, wp, tapsPerTile,
    Math.min(g.cout, t.bk), 0, 0, 0,
  );
  device.run(kernel, [p, dx, gy, w], [groupsM * t.wg, Math.ceil(g.cin / tn), g.sh * g.sw]);
  return addInto(into, dx);
}

/** `into` (a gradient to add into) must have the result's shape. */
function checkInto(op: string, into: Tensor | undefined, shape: readonly number[]): void {
  if (into && !sameShape(into.shape, shape)) throw new Error(`${op}: cannot add a ${shapeStr(shape)} result into ${shapeStr(into.shape)}`);
}

/** into += t (t disposed), or t where there is nothing to add into. */
function addInto(into: Tensor | undefined, t: Tensor): Tensor {
  if (!into) return t;
  accumulate(into, t);
  t.dispose();
  return into;
}

/**
 * dL/dw of conv(x, w) given dL/dy [N, Ho, Wo, Cout]: [kh, kw, Cin, Cout]. Split-K over output pixels. With
 * `into`, added into it (in the kernel's stores, or in the split sum's last pass) and it returned.
 */
export function conv2dBackwardWeight(gy: Tensor, x: Tensor, g: ConvGeometry, into?: Tensor): Tensor {
  const op = 'conv2dBackwardWeight';
  checkTensor(op, gy, 'gradient');
  checkTensor(op, x, 'input');
  if (!sameShape(gy.shape, [g.batch, g.ho, g.wo, g.cout]) || !sameShape(x.shape, [g.batch, g.h, g.w, g.cin])) {
    throw new Error(`${op}: gradient ${shapeStr(gy.shape)} and input ${shapeStr(x.shape)} do not fit the conv ` +
      `(expected [${g.batch}, ${g.ho}, ${g.wo}, ${g.cout}] and [${g.batch}, ${g.h}, ${g.w}, ${g.cin}])`);
  }
  checkInto(op, into, [g.kh, g.kw, g.cin, g.cout]);
  const device = gy.device;
  const t = convTiles(device).wgrad;
  const { vec, tn, threads, chunk, zs, laneSplits, wg, workgroups } = wgradPlan(t, g, (n) => device.evenness(n));
  const outRows = g.batch * g.ho;
  const kernel: Kernel = {
    shader: 'conv2d_wgrad',
    entry: 'wgrad',
    workgroup: [wg],
    constants: { DT_VEC: g.cout % 4 === 0 ? 1 : 0, ACCUMULATE: +Boolean(into && zs === 1) },
    defines: {
      X_TYPE: vec === 4 ? 'vec4f' : 'f32', DY_TYPE: g.cout % 4 === 0 ? 'vec4f' : 'f32',
      VEC: vec, TN4: tn / 4, KW: g.kw, SW: g.sw, WG: wg, LANE_SPLIT: laneSplits > 1 ? ' + t / p.rows' : '',
      ...subgroupDefines(device, t.subgroups && laneSplits === 1),
    },
  };
  const p = params().u(threads, g.cout, outRows, chunk, g.cin, g.h, g.w, g.ho, g.wo, g.sh).i(g.pt, g.pl).u(laneSplits, 0, 0, 0);
  const grid: [number, number, number] = [workgroups[0] * wg, workgroups[1], workgroups[2]];
  if (zs === 1) {
    const dw = into ?? Tensor.empty(device, [g.kh, g.kw, g.cin, g.cout]);
    device.run(kernel, [p, dw, x, gy], grid);
    return dw;
  }
  const partial = Tensor.empty(device, [zs, g.kh * g.kw * g.cin * g.cout]);
  device.run(kernel, [p, partial, x, gy], grid);
  const sum = into ? addRowSums(into, partial) : sumRows(partial);
  partial.dispose();
  if (sum === into) return into;
  const dw = sum.view([g.kh, g.kw, g.cin, g.cout]);
  sum.dispose();
  return dw;
}

/** How conv2dBackwardWeight splits one conv (exported for tests and the bench). */
export interface WgradPlan {
  vec: number;
  /** Output columns per thread. */
  tn: number;
  /** kh * Cin / VEC: one per (kernel row, channel group). */
  threads: number;
  /** Output rows per split, and the splits (split-K) they make. */
  chunk: number;
  zs: number;
  /** Splits laid along the lanes as well (zs, or 1). */
  laneSplits: number;
  wg: number;
  /** Workgroups along x (threads), y (column blocks) and z (splits not laid along the lanes). */
  workgroups: [number, number, number];
  /** Busy SIMD lanes times how evenly the workgroups divide over the shader threads (1: both perfect). */
  score: number;
}

/**
 * The weight gradient's split for a conv on an adapter whose workgroups divide over its shader threads as
 * `evenness` says (Device.evenness). M (kh * Cin / VEC threads) is small, so the workgroups are few: the plan maximises
 * busy SIMD lanes times how evenly the workgroups divide over the threads (3 equal workgroups on 2 threads take
 * as long as 4), over the table's split count (chunks of at least minChunk pixels) up to 4 times as many and
 * workgroups of 8 to the table's size; ties go to fewer splits (a smaller split sum), then larger workgroups.
 * On llvmpipe (2 threads) the network's 32x32 layers and its 16x16 8 -> 16 layer went from 3 workgroups to 6: their
 * weight gradients 1.09-1.17x faster (interleaved A/B, medians of 20 rounds).
 */
export function wgradPlan(t: ConvTiles['wgrad'], g: ConvGeometry, evenness: (groups: number) => number): WgradPlan {
  const vec = g.cin % 4 === 0 ? 4 : 1;
  // Columns per thread: the accumulator budget (KW * VEC * TN floats) over the taps and channels of a thread.
  const tn = columns(Math.max(4, Math.min(t.tn, Math.floor(t.outputs / (g.kw * vec) / 4) * 4)), g.cout);
  const threads = g.kh * (g.cin / vec);
  const outRows = g.batch * g.ho;
  const base = Math.max(1, Math.min(t.maxSplits, Math.floor((outRows * g.wo) / t.minChunk), outRows));
  let best: WgradPlan | undefined;
  for (const splits of [base, 2 * base, 4 * base].map((s) => Math.min(s, t.maxSplits, outRows))) {
    const chunk = Math.ceil(outRows / splits);
    const zs = Math.ceil(outRows / chunk);
    // Few threads (Cin = 1: kh of them; Cin = 8: 2 * kh) would leave most SIMD lanes idle: lay the splits along the
    // lanes too (each lane then walks its own pixels, so no subgroup sharing of dY).
    const laneSplits = threads < t.laneSplitBelow ? zs : 1;
    const lanes = threads * laneSplits;
    for (const wg of [256, 128, 64, 32, 16, 8].filter((n) => n <= t.wg)) {
      const workgroups: [number, number, number] = [Math.ceil(lanes / wg), Math.ceil(g.cout / tn), zs / laneSplits];
      const score = (lanes / (workgroups[0] * wg)) * evenness(workgroups[0] * workgroups[1] * workgroups[2]);
      if (!best || score > best.score + 1e-9) best = { vec, tn, threads, chunk, zs, laneSplits, wg, workgroups, score };
    }
  }
  return best!;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Bias gradient: dY summed over batch and pixels (added into `into` where given). */
function biasGrad(gy: Tensor, cout: number, into?: Tensor): Tensor {
  const flat = gy.view([gy.size / cout, cout]);
  const gb = into ? addRowSums(into, flat) : sumRows(flat);
  flat.dispose();
  return gb;
}

/** y = conv2d(x, w) + bias: x [N, H, W, Cin], w [kh, kw, Cin, Cout], bias [Cout] -> [N, Ho, Wo, Cout]. */
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | undefined, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  checkTensor(op, x, 'input');
  checkTensor(op, w, 'weight');
  const g = convGeometry(op, x.shape, w.shape, opts);
  checkBias(op, bias, g.cout);
  if (x.device !== w.device || (bias && bias.device !== x.device)) throw new Error(`${op}: tensors live on different devices`);
  const y = forwardKernel(op, [{ x, w, g }], bias);
  const inputs = bias ? [x, w, bias] : [x, w];
  return record(op, inputs, y, (gy, into) => [
    x.requiresGrad ? conv2dBackwardInput(gy, w, g, into[0]) : null,
    w.requiresGrad ? conv2dBackwardWeight(gy, x, g, into[1]) : null,
    bias?.requiresGrad ? biasGrad(gy, g.cout, into[2]) : null,
  ]);
}

/**
 * y = conv2d(x1, w1) + conv2d(x2, w2) + bias in one dispatch (one GEMM whose K axis spans both sources).
 * Both convs use `opts` and must give the same [N, Ho, Wo, Cout]; Cin and kernel size may differ.
 */
export function conv2dPair(
  x1: Tensor, w1: Tensor, x2: Tensor, w2: Tensor, bias: Tensor | undefined, opts: Conv2dOptions = {},
): Tensor {
  const op = 'conv2dPair';
  for (const [t, what] of [[x1, 'x1'], [w1, 'w1'], [x2, 'x2'], [w2, 'w2']] as const) checkTensor(op, t, what);
  const g1 = convGeometry(`${op} (source 1)`, x1.shape, w1.shape, opts);
  const g2 = convGeometry(`${op} (source 2)`, x2.shape, w2.shape, opts);
  if (g1.batch !== g2.batch || g1.ho !== g2.ho || g1.wo !== g2.wo || g1.cout !== g2.cout) {
    throw new Error(`${op}: the sources give different outputs: x1 ${shapeStr(x1.shape)} * w1 ${shapeStr(w1.shape)} -> ` +
      `[${g1.batch}, ${g1.ho}, ${g1.wo}, ${g1.cout}], x2 ${shapeStr(x2.shape)} * w2 ${shapeStr(w2.shape)} -> ` +
      `[${g2.batch}, ${g2.ho}, ${g2.wo}, ${g2.cout}]`);
  }
  checkBias(op, bias, g1.cout);
  if ([w1, x2, w2, bias].some((t) => t && t.device !== x1.device)) throw new Error(`${op}: tensors live on different devices`);
  const y = forwardKernel(op, [{ x: x1, w: w1, g: g1 }, { x: x2, w: w2, g: g2 }], bias);
  const inputs = bias ? [x1, w1, x2, w2, bias] : [x1, w1, x2, w2];
  return record(op, inputs, y, (gy, into) => [
    x1.requiresGrad ? conv2dBackwardInput(gy, w1, g1, into[0]) : null,
    w1.requiresGrad ? conv2dBackwardWeight(gy, x1, g1, into[1]) : null,
    x2.requiresGrad ? conv2dBackwardInput(gy, w2, g2, into[2]) : null,
    w2.requiresGrad ? conv2dBackwardWeight(gy, x2, g2, into[3]) : null,
    bias?.requiresGrad ? biasGrad(gy, g1.cout, into[4]) : null,
  ]);
}
