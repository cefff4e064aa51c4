/**
 * Bring your own stimuli: loads a folder of PNG images described by manifest.csv into the StimulusSet that
 * training and analysis use for rendered sets (stimuli.ts).
 *
 *   loadImageFolder(dir, { size?, strict?, background?, parts?, manifest? }) -> StimulusSet
 *
 * manifest.csv (manifest.ts): required columns file, category, identity; optional yaw, pitch, roll (degrees;
 * NaN when absent), split, parts (a label PNG per image); other columns are kept in row.extra. A folder
 * written by `unroll stimuli` loads as is.
 * Images: any PNG (grey, RGB, palette, 16-bit, alpha over `background`), converted to luminance in [0, 1].
 * Size: `size` (default: the first image's, which must then be square). An image of another size is
 * centre-cropped to a square and resized with a triangle (bilinear) filter widened by the reduction factor,
 * i.e. antialiased when shrinking (png.ts resizeGray); part maps with nearest neighbour. `strict: true`
 * refuses such images instead. Every error names the manifest, the line and the file.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parseCsv } from './manifest.js';
import { decodeGray, decodeLabels, type GrayImage, resizeGray, resizeLabels } from './png.js';
import type { StimulusRow, StimulusSet } from './stimuli.js';

export interface LoadFolderOptions {
  /** Output width and height; default the first image's size. */
  size?: number;
  /** Refuse images whose size differs from `size` instead of resizing them. */
  strict?: boolean;
  /** Grey that transparent pixels are composited over (default 0.5). */
  background?: number;
  /** Load part maps from a `parts` column where every row has one (default true). */
  parts?: boolean;
  /** Manifest file name inside the folder (default manifest.csv). */
  manifest?: string;
}

const REQUIRED = ['file', 'category', 'identity'] as const;
const KNOWN = new Set(['file', 'category', 'identity', 'yaw', 'pitch', 'roll', 'split', 'parts']);

export async function loadImageFolder(dir: string, o: LoadFolderOptions = {}): Promise<StimulusSet> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`image folder ${dir} does not exist or is not a folder`);
  const manifestPath = join(dir, o.manifest ?? 'manifest.csv');
  if (!existsSync(manifestPath)) {
    throw new Error(`${manifestPath} not found: an image folder needs a manifest.csv with the columns ` +
      `${REQUIRED.join(', ')} (yaw, pitch, roll, split, parts optional)`);
  }
  const table = parseCsv(readFileSync(manifestPath, 'utf8'), manifestPath);
  const col = new Map<string, number>();
  table.header.forEach((h, i) => {
    const k = h.toLowerCase();
    if (col.has(k)) throw new Error(`${manifestPath}:1: the column "${h}" appears twice`);
    col.set(k, i);
  });
  for (const r of REQUIRED) {
    if (!col.has(r)) {
      throw new Error(`${manifestPath}:1: no "${r}" column (the header has ${table.header.map((h) => `"${h}"`).join(', ')}); ` +
        `required: ${REQUIRED.join(', ')}`);
    }
  }
  if (table.rows.length === 0) throw new Error(`${manifestPath}: no images listed (only a header)`);
  const background = o.background ?? 0.5;
  const wantParts = (o.parts ?? true) && col.has('parts') && table.rows.every((r) => (r.cells[col.get('parts')!] ?? '').trim() !== '');

  let size = o.size;
  if (size !== undefined && (!Number.isInteger(size) || size < 1)) throw new Error(`loadImageFolder: size must be a positive integer, got ${size}`);
  const n = table.rows.length;
  let images: Float32Array | null = null;
  let partsOut: Uint8Array | null = null;
  const rows: StimulusRow[] = [];
  const ids = new Map<string, number>();
  const cats = new Map<string, number>();
  const labels = new Int32Array(n);
  const categoryLabels = new Int32Array(n);

  const resolve = (f: string) => (isAbsolute(f) ? f : join(dir, f));
  table.rows.forEach(({ line, cells }, i) => {
    const at = `${manifestPath}:${line}`;
    if (cells.length !== table.header.length) {
      throw new Error(`${at}: ${cells.length} fields, but the header has ${table.header.length}`);
    }
    const get = (k: string) => (col.has(k) ? cells[col.get(k)!].trim() : '');
    for (const r of REQUIRED) if (get(r) === '') throw new Error(`${at}: the "${r}" field is empty`);
    const num = (k: string) => {
      const v = get(k);
      if (v === '') return NaN;
      const x = Number(v);
      if (!Number.isFinite(x)) throw new Error(`${at}: ${k} "${v}" is not a number`);
      return x;
    };
    const file = get('file');
    const path = resolve(file);
    if (!existsSync(path)) throw new Error(`${at}: image "${file}" not found (looked for ${path})`);
    let img: GrayImage;
    try {
      img = decodeGray(readFileSync(path), background);
    } catch (e) {
      throw new Error(`${at}: "${file}" is not a readable PNG (${(e as Error).message})`);
    }
    if (size === undefined) {
      if (img.width !== img.height) {
        throw new Error(`${at}: "${file}" is ${img.width}x${img.height}, not square; pass a size to resize every image to`);
      }
      size = img.width;
    }
    if (!images) {
      images = new Float32Array(n * size * size);
      if (wantParts) partsOut = new Uint8Array(n * size * size);
    }
    if ((img.width !== size || img.height !== size) && o.strict) {
      throw new Error(`${at}: "${file}" is ${img.width}x${img.height}, not ${size}x${size} (strict mode does not resize)`);
    }
    images.set(resizeGray(img, size), i * size * size);

    const partsFile = get('parts');
    if (wantParts) {
      const pp = resolve(partsFile);
      if (!existsSync(pp)) throw new Error(`${at}: part map "${partsFile}" not found (looked for ${pp})`);
      let lab;
      try {
        lab = decodeLabels(readFileSync(pp));
      } catch (e) {
        throw new Error(`${at}: part map "${partsFile}" is not a readable PNG (${(e as Error).message})`);
      }
      if ((lab.width !== size || lab.height !== size) && o.strict) {
        throw new Error(`${at}: part map "${partsFile}" is ${lab.width}x${lab.height}, not ${size}x${size} (strict mode does not resize)`);
      }
      partsOut!.set(resizeLabels(lab, size), i * size * size);
    }

    const identity = get('identity'), category = get('category');
    if (!ids.has(identity)) ids.set(identity, ids.size);
    if (!cats.has(category)) cats.set(category, cats.size);
    labels[i] = ids.get(identity)!;
    categoryLabels[i] = cats.get(category)!;
    const extra: Record<string, string> = {};
    table.header.forEach((h, k) => {
      if (!KNOWN.has(h.toLowerCase())) extra[h] = cells[k];
    });
    const split = get('split');
    rows.push({
      file, category, identity, yaw: num('yaw'), pitch: num('pitch'), roll: num('roll'),
      split: split === '' ? undefined : split,
      ...(partsFile !== '' ? { parts: partsFile } : {}),
      ...(Object.keys(extra).length ? { extra } : {}),
    });
  });
  return {
    size: size!, count: n, images: images!, parts: partsOut, labels, identities: [...ids.keys()],
    categoryLabels, categories: [...cats.keys()], rows,
  };
}
