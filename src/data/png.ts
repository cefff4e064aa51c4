/**
 * PNG in and out (pngjs), grayscale conversion, resizing and contact sheets.
 *
 * Writing: 8-bit grayscale, value = round(255 * clamp(v, 0, 1)); part maps are 8-bit grayscale whose value
 * is the part label (render.ts PART_NAMES). Reading: any PNG pngjs decodes (grey, RGB, palette, alpha,
 * 16-bit), converted to luminance 0.299 R + 0.587 G + 0.114 B, alpha composited over a background grey.
 * Resizing (resizeGray): a centred square crop, then a triangle (bilinear) filter whose support widens
 * with the reduction factor, as PIL's BILINEAR resize does (antialiased when shrinking, bilinear when enlarging).
 */
import { PNG } from 'pngjs';

export function encodeGray(values: ArrayLike<number>, width: number, height: number): Buffer {
  if (values.length !== width * height) throw new Error(`encodeGray: ${values.length} values for ${width}x${height}`);
  const png = new PNG({ width, height, colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false });
  const data = Buffer.alloc(width * height);
  for (let i = 0; i < data.length; i++) data[i] = Math.round(255 * Math.min(1, Math.max(0, values[i])));
  png.data = data;
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false });
}

/** 8-bit labels (or any bytes) as a grayscale PNG, bytes unchanged. */
export function encodeLabels(labels: Uint8Array, width: number, height: number): Buffer {
  if (labels.length !== width * height) throw new Error(`encodeLabels: ${labels.length} values for ${width}x${height}`);
  const png = new PNG({ width, height, colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false });
  png.data = Buffer.from(labels);
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false });
}

export function encodeRgb(rgb: Uint8Array, width: number, height: number): Buffer {
  const png = new PNG({ width, height, colorType: 2, inputColorType: 2, bitDepth: 8, inputHasAlpha: false });
  png.data = Buffer.from(rgb);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, bitDepth: 8, inputHasAlpha: false });
}

export interface GrayImage {
  width: number;
  height: number;
  /** Luminance in [0, 1], row-major. */
  data: Float32Array;
}

/** Decodes a PNG to luminance in [0, 1]; alpha is composited over `background`. Throws pngjs's error on a bad file. */
export function decodeGray(bytes: Buffer, background = 0.5): GrayImage {
  const png = PNG.sync.read(bytes);
  const { width, height, data } = png;
  const out = new Float32Array(width * height);
  for (let i = 0; i < out.length; i++) {
    const r = data[4 * i], g = data[4 * i + 1], b = data[4 * i + 2], a = data[4 * i + 3] / 255;
    out[i] = ((0.299 * r + 0.587 * g + 0.114 * b) / 255) * a + background * (1 - a);
  }
  return { width, height, data: out };
}

/** Decodes a label PNG: the red channel's 8-bit value per pixel (grey PNGs give their value). */
export function decodeLabels(bytes: Buffer): { width: number; height: number; data: Uint8Array } {
  const png = PNG.sync.read(bytes);
  const out = new Uint8Array(png.width * png.height);
  for (let i = 0; i < out.length; i++) out[i] = png.data[4 * i];
  return { width: png.width, height: png.height, data: out };
}

/** The centred square crop of an image (no copy when already square). */
function centreSquare(img: GrayImage): GrayImage {
  if (img.width === img.height) return img;
  const s = Math.min(img.width, img.height);
  const x0 = Math.floor((img.width - s) / 2), y0 = Math.floor((img.height - s) / 2);
  const data = new Float32Array(s * s);
  for (let y = 0; y < s; y++) data.set(img.data.subarray((y0 + y) * img.width + x0, (y0 + y) * img.width + x0 + s), y * s);
  return { width: s, height: s, data };
}

/** 1-D triangle-filter weights mapping n inputs to m outputs (PIL's BILINEAR: support 1, widened by n/m when shrinking). */
function weights(n: number, m: number): { start: number[]; w: Float64Array[] } {
  const scale = n / m;
  const support = Math.max(1, scale);
  const start: number[] = [];
  const w: Float64Array[] = [];
  for (let o = 0; o < m; o++) {
    const centre = (o + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support));
    const hi = Math.min(n, Math.ceil(centre + support));
    const ws = new Float64Array(hi - lo);
    let sum = 0;
    for (let i = lo; i < hi; i++) {
      const x = Math.abs((i + 0.5 - centre) / support);
      const v = Math.max(0, 1 - x);
      ws[i - lo] = v;
      sum += v;
    }
    for (let k = 0; k < ws.length; k++) ws[k] /= sum || 1;
    start.push(lo);
    w.push(ws);
  }
  return { start, w };
}

/** Centre-crops to a square and resamples to size x size with the triangle filter (see the header). */
export function resizeGray(img: GrayImage, size: number): Float32Array {
  const sq = centreSquare(img);
  const n = sq.width;
  if (n === size) return Float32Array.from(sq.data);
  const f = weights(n, size);
  const tmp = new Float64Array(n * size); // rows of the source, columns resampled
  for (let y = 0; y < n; y++) {
    for (let o = 0; o < size; o++) {
      let s = 0;
      const ws = f.w[o], x0 = f.start[o];
      for (let k = 0; k < ws.length; k++) s += ws[k] * sq.data[y * n + x0 + k];
      tmp[y * size + o] = s;
    }
  }
  const out = new Float32Array(size * size);
  for (let o = 0; o < size; o++) {
    const ws = f.w[o], y0 = f.start[o];
    for (let x = 0; x < size; x++) {
      let s = 0;
      for (let k = 0; k < ws.length; k++) s += ws[k] * tmp[(y0 + k) * size + x];
      out[o * size + x] = s;
    }
  }
  return out;
}

/** Nearest-neighbour resize of a label map (centred square crop first). */
export function resizeLabels(lab: { width: number; height: number; data: Uint8Array }, size: number): Uint8Array {
  const s = Math.min(lab.width, lab.height);
  const x0 = Math.floor((lab.width - s) / 2), y0 = Math.floor((lab.height - s) / 2);
  const out = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    const sy = y0 + Math.min(s - 1, Math.floor(((y + 0.5) * s) / size));
    for (let x = 0; x < size; x++) {
      const sx = x0 + Math.min(s - 1, Math.floor(((x + 0.5) * s) / size));
      out[y * size + x] = lab.data[sy * lab.width + sx];
    }
  }
  return out;
}

/** Colours for part labels in contact sheets (background, skin, hair, eyes, brows, nose, mouth, ears, object). */
export const PART_COLOURS: [number, number, number][] = [
  [40, 40, 40], [230, 190, 160], [120, 70, 30], [40, 120, 255], [255, 230, 0], [230, 60, 60], [200, 0, 200], [0, 200, 120], [150, 150, 150],
];

/**
 * A grid of size x size tiles (rows x cols, 2-pixel gaps). `tile(r, c)` gives the tile's pixel offset in
 * `images`, or -1 for an empty cell. Grey tiles from `images`; with `parts`, coloured part maps instead.
 */
export function contactSheet(
  size: number,
  rows: number,
  cols: number,
  tile: (r: number, c: number) => number,
  images: Float32Array | null,
  parts: Uint8Array | null = null,
): Buffer {
  const gap = 2;
  const W = cols * (size + gap) + gap, H = rows * (size + gap) + gap;
  const rgb = new Uint8Array(W * H * 3).fill(255);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const off = tile(r, c);
      if (off < 0) continue;
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const o = ((gap + r * (size + gap) + y) * W + gap + c * (size + gap) + x) * 3;
          if (parts) {
            const col = PART_COLOURS[parts[off + y * size + x]] ?? [255, 0, 255];
            rgb[o] = col[0], rgb[o + 1] = col[1], rgb[o + 2] = col[2];
          } else {
            const v = Math.round(255 * Math.min(1, Math.max(0, images![off + y * size + x])));
            rgb[o] = rgb[o + 1] = rgb[o + 2] = v;
          }
        }
      }
    }
  }
  return encodeRgb(rgb, W, H);
}
