/**
 * Writes a stimulus folder: images/<split>/<identity>_<k>.png (8-bit grey), parts/<split>/<identity>_<k>.png
 * (8-bit part labels, render.ts PART_NAMES), manifest.csv (file, category, identity, yaw, pitch, roll, split,
 * parts, dx, dy, scale, light_azimuth, light_elevation), contact_sheet.png and contact_sheet_parts.png
 * (identities by rows, poses by columns) and stimuli.json (the settings, so a folder can be regenerated).
 * Splits: 'analysis' (the pose grid, no jitter), 'train', 'val' and 'heldout' (random draws, see stimuli.ts).
 * Rendering streams in batches, so the folder's size is not bounded by memory. Same settings, same bytes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '../engine/device.js';
import { formatCsv } from './manifest.js';
import { OBJECT_CATEGORIES } from './objects.js';
import { contactSheet, encodeGray, encodeLabels } from './png.js';
import { type Pose, type PoseRegion, poseGrid, rangeOf } from './poses.js';
import { PART_NAMES, type RenderOptions, renderImages } from './render.js';
import {
  faceModels, gridEntries, type JitterSpec, objectModels, randomEntries, type StimulusEntry,
} from './stimuli.js';

export interface FolderOptions {
  out: string;
  identities: number;
  objectsPerCategory: number;
  categories?: readonly string[];
  size: number;
  seed: number;
  yaw: number[];
  pitch: number[];
  roll: number[];
  grid?: 'product' | 'axes';
  /** Write the analysis grid (default true). */
  analysis?: boolean;
  train?: number;
  val?: number;
  heldOut?: PoseRegion[];
  heldOutPerIdentity?: number;
  jitter: JitterSpec;
  render?: Omit<RenderOptions, 'size'>;
  /** Images per render batch (default 256). */
  chunk?: number;
}

export interface Progress {
  start(total: number): void;
  update(done: number): void;
  stop(): void;
}

export const MANIFEST_HEADER = [
  'file', 'category', 'identity', 'yaw', 'pitch', 'roll', 'split', 'parts', 'dx', 'dy', 'scale', 'light_azimuth', 'light_elevation',
];

/** Entries of a folder, in file order: the analysis grid, then train, val, held-out. */
export function folderEntries(o: FolderOptions): { entries: StimulusEntry[]; poses: Pose[]; models: string[] } {
  const models = [
    ...(o.identities > 0 ? faceModels(o.seed, o.identities) : []),
    ...(o.objectsPerCategory > 0 ? objectModels(o.seed, o.categories ?? OBJECT_CATEGORIES, o.objectsPerCategory) : []),
  ];
  const poses = poseGrid(o.yaw, o.pitch, o.roll, o.grid ?? 'product');
  const ranges = { yaw: rangeOf(o.yaw), pitch: rangeOf(o.pitch), roll: rangeOf(o.roll) };
  const ex = o.heldOut ?? [];
  const entries: StimulusEntry[] = [];
  if (o.analysis ?? true) entries.push(...gridEntries(models, poses, 'analysis'));
  if (o.train) entries.push(...randomEntries(models, o.train, ranges, o.seed, 'train', { jitter: o.jitter, exclude: ex }));
  if (o.val) entries.push(...randomEntries(models, o.val, ranges, o.seed, 'val', { jitter: o.jitter, exclude: ex }));
  if (ex.length && o.heldOutPerIdentity) {
    entries.push(...randomEntries(models, o.heldOutPerIdentity, ranges, o.seed, 'heldout', { jitter: o.jitter, inside: ex }));
  }
  return { entries, poses, models: models.map((m) => m.name) };
}

const SHEET_ROWS = 64;
const SHEET_COLS = 40;

export async function writeStimulusFolder(device: Device, o: FolderOptions, progress?: Progress): Promise<{ images: number; sheet: string }> {
  const { entries, models } = folderEntries(o);
  if (entries.length === 0) throw new Error('stimuli: nothing to render (no analysis grid and no train/val/held-out draws)');
  const size = o.size;
  const px = size * size;
  const render: RenderOptions = { ...o.render, size };
  for (const split of new Set(entries.map((e) => e.split))) {
    mkdirSync(join(o.out, 'images', split), { recursive: true });
    mkdirSync(join(o.out, 'parts', split), { recursive: true });
  }

  // Contact sheet: the first split's images, one row per model (identity), columns in draw order.
  const sheetSplit = entries[0].split;
  const rowOf = new Map(models.slice(0, SHEET_ROWS).map((m, i) => [m, i]));
  const colCount = new Map<string, number>();
  const cols = Math.min(SHEET_COLS, Math.max(...models.map((m) => entries.filter((e) => e.split === sheetSplit && e.identity === m).length)));
  const rows = Math.min(SHEET_ROWS, models.length);
  const sheet = new Float32Array(rows * cols * px);
  const sheetParts = new Uint8Array(rows * cols * px);
  const filled = new Int8Array(rows * cols);

  const manifest: (string | number)[][] = [];
  const seq = new Map<string, number>();
  const chunk = o.chunk ?? 256;
  progress?.start(entries.length);
  for (let first = 0; first < entries.length; first += chunk) {
    const batch = entries.slice(first, first + chunk);
    const { images, parts } = await renderImages(device, batch, render);
    batch.forEach((e, i) => {
      const key = `${e.split}/${e.identity}`;
      const k = seq.get(key) ?? 0;
      seq.set(key, k + 1);
      const name = `${e.identity}_${String(k).padStart(4, '0')}.png`;
      const file = `images/${e.split}/${name}`;
      const partsFile = `parts/${e.split}/${name}`;
      const img = images.subarray(i * px, (i + 1) * px);
      const lab = parts.subarray(i * px, (i + 1) * px);
      writeFileSync(join(o.out, file), encodeGray(img, size, size));
      writeFileSync(join(o.out, partsFile), encodeLabels(lab, size, size));
      const j = e.jitter;
      manifest.push([file, e.category, e.identity, e.pose.yaw, e.pose.pitch, e.pose.roll, e.split, partsFile,
        j?.dx ?? 0, j?.dy ?? 0, j?.scale ?? 1, j?.lightAzimuth ?? 0, j?.lightElevation ?? 0]);
      if (e.split === sheetSplit) {
        const r = rowOf.get(e.identity);
        const c = colCount.get(e.identity) ?? 0;
        colCount.set(e.identity, c + 1);
        if (r !== undefined && c < cols) {
          sheet.set(img, (r * cols + c) * px);
          sheetParts.set(lab, (r * cols + c) * px);
          filled[r * cols + c] = 1;
        }
      }
    });
    progress?.update(first + batch.length);
  }
  progress?.stop();

  writeFileSync(join(o.out, 'manifest.csv'), formatCsv(MANIFEST_HEADER, manifest));
  const tile = (r: number, c: number) => (filled[r * cols + c] ? (r * cols + c) * px : -1);
  const sheetPath = join(o.out, 'contact_sheet.png');
  writeFileSync(sheetPath, contactSheet(size, rows, cols, tile, sheet));
  writeFileSync(join(o.out, 'contact_sheet_parts.png'), contactSheet(size, rows, cols, tile, null, sheetParts));
  const settings = {
    generator: 'unroll stimuli',
    seed: o.seed,
    size,
    identities: o.identities,
    objectsPerCategory: o.objectsPerCategory,
    categories: o.objectsPerCategory > 0 ? [...(o.categories ?? OBJECT_CATEGORIES)] : [],
    yaw: o.yaw, pitch: o.pitch, roll: o.roll, grid: o.grid ?? 'product', analysis: o.analysis ?? true,
    train: o.train ?? 0, val: o.val ?? 0, heldOut: o.heldOut ?? [], heldOutPerIdentity: o.heldOutPerIdentity ?? 0,
    jitter: o.jitter, render: o.render ?? {},
    parts: Object.fromEntries(PART_NAMES.map((n, i) => [i, n])),
    contactSheet: { split: sheetSplit, rows, cols, note: 'rows: identities in manifest order; columns: that split\'s images per identity in manifest order' },
    conventions: 'yaw + turns the face toward the image right; pitch + looks up; roll + is counter-clockwise in the image; degrees',
  };
  writeFileSync(join(o.out, 'stimuli.json'), JSON.stringify(settings, null, 2) + '\n');
  return { images: entries.length, sheet: sheetPath };
}
