/**
 * Stimulus sets: which models at which poses, rendered into one in-memory structure that training and
 * analysis share (image-folder.ts loads a folder into the same structure).
 *
 * In-memory API
 *   faceModels(seed, n)                       -> NamedModel[] 'face_000'..: identity i is stream(seed, 'face', i)
 *   objectModels(seed, categories, m)         -> NamedModel[] 'car_00'.. : exemplar j is stream(seed, 'object', c, j)
 *   gridEntries(models, poses, split)         -> every model at every pose, no jitter (analysis sets)
 *   randomEntries(models, k, ranges, seed, split, {jitter, exclude, inside})
 *                                             -> k random poses per model from stream(seed, 'pose', split, name)
 *   renderEntries(device, entries, render)    -> StimulusSet (host arrays)
 *   renderEntriesToTensor(device, entries, render) -> { images: Tensor [N, S, S, 1], parts, labels, rows } (stays on the GPU)
 *   renderFaceSet(device, { identities, poses, size, seed, jitter }) -> StimulusSet of faces at the given poses
 *   renderSplits(device, { identities, objectsPerCategory, size, seed, ranges, train, val, heldOut, jitter })
 *                                             -> { train, val, heldOut? }: the same models, disjoint random draws
 *                                                (separate streams; no pose is shared), held-out pose regions
 *                                                excluded from train and val and sampled only in `heldOut`.
 *
 * StimulusSet: images [N, S, S, 1] grey in [0, 1] (NHWC, C = 1); parts [N, S, S] part labels (render.ts
 * PART_NAMES) or null; labels[i] = index of the image's identity in `identities` (first-appearance order);
 * categoryLabels[i] = index into `categories`; rows[i] = the image's manifest row.
 */
import type { Device } from '../engine/device.js';
import type { Tensor } from '../engine/tensor.js';
import { sampleFace } from './faces.js';
import { OBJECT_CATEGORIES, type ObjectCategory, sampleObject } from './objects.js';
import { type Pose, type PoseRanges, type PoseRegion, randomPoses } from './poses.js';
import { stream } from './random.js';
import { type ImageJitter, type Model, type RenderItem, type RenderOptions, renderImages, renderTensors } from './render.js';

export interface NamedModel {
  /** Identity name: 'face_003', 'car_01'. */
  name: string;
  category: string;
  model: Model;
}

export interface StimulusEntry extends RenderItem {
  identity: string;
  category: string;
  split: string;
}

export interface StimulusRow {
  /** Path relative to the folder ('' until written). */
  file: string;
  category: string;
  identity: string;
  /** Degrees; NaN where a loaded manifest has no pose. */
  yaw: number;
  pitch: number;
  roll: number;
  /** 'train', 'val', 'analysis', 'heldout', ...; undefined where a loaded manifest has no split column. */
  split?: string;
  /** Part-label PNG path relative to the folder, if any. */
  parts?: string;
  jitter?: ImageJitter;
  /** Columns of a loaded manifest beyond the known ones. */
  extra?: Record<string, string>;
}

export interface StimulusSet {
  size: number;
  count: number;
  images: Float32Array;
  parts: Uint8Array | null;
  labels: Int32Array;
  identities: string[];
  categoryLabels: Int32Array;
  categories: string[];
  rows: StimulusRow[];
}

/** Maximum per-image jitter: shift (fraction of the image width), scale (± fraction), light (± degrees). */
export interface JitterSpec {
  shift: number;
  scale: number;
  light: number;
}

export const DEFAULT_JITTER: JitterSpec = { shift: 0.04, scale: 0.06, light: 15 };
export const NO_JITTER: JitterSpec = { shift: 0, scale: 0, light: 0 };

export function faceModels(seed: number, n: number): NamedModel[] {
  checkCount('identities', n);
  const w = Math.max(3, String(n - 1).length);
  return Array.from({ length: n }, (_, i) => ({
    name: `face_${String(i).padStart(w, '0')}`,
    category: 'face',
    model: { category: 'face', face: sampleFace(seed, i) } as Model,
  }));
}

export function objectModels(seed: number, categories: readonly string[], perCategory: number): NamedModel[] {
  checkCount('objects per category', perCategory, true);
  const w = Math.max(2, String(perCategory - 1).length);
  const out: NamedModel[] = [];
  for (const c of categories) {
    if (!(OBJECT_CATEGORIES as readonly string[]).includes(c)) {
      throw new Error(`unknown object category "${c}"; known: ${OBJECT_CATEGORIES.join(', ')}`);
    }
    for (let j = 0; j < perCategory; j++) {
      const object = sampleObject(seed, c as ObjectCategory, j);
      out.push({ name: `${c}_${String(j).padStart(w, '0')}`, category: c, model: { category: object.category, object } as Model });
    }
  }
  return out;
}

function checkCount(what: string, n: number, zeroOk = false): void {
  if (!Number.isInteger(n) || n < (zeroOk ? 0 : 1)) throw new Error(`${what} must be an integer >= ${zeroOk ? 0 : 1}, got ${n}`);
}

export function gridEntries(models: readonly NamedModel[], poses: readonly Pose[], split = 'test'): StimulusEntry[] {
  const out: StimulusEntry[] = [];
  for (const m of models) for (const pose of poses) out.push({ model: m.model, identity: m.name, category: m.category, pose, split });
  return out;
}

export function drawJitter(spec: JitterSpec, seed: number, split: string, name: string, k: number): ImageJitter | undefined {
  if (spec.shift === 0 && spec.scale === 0 && spec.light === 0) return undefined;
  const r = stream(seed, 'jitter', split, name, k);
  return {
    dx: r.uniform(-spec.shift, spec.shift),
    dy: r.uniform(-spec.shift, spec.shift),
    scale: 1 + r.uniform(-spec.scale, spec.scale),
    lightAzimuth: r.uniform(-spec.light, spec.light),
    lightElevation: r.uniform(-spec.light, spec.light),
  };
}

export interface RandomDrawOptions {
  jitter?: JitterSpec;
  /** Pose regions never drawn. */
  exclude?: readonly PoseRegion[];
  /** Draw only inside these regions (clipped to `ranges`), one region picked uniformly per draw. */
  inside?: readonly PoseRegion[];
}

export function randomEntries(
  models: readonly NamedModel[],
  perModel: number,
  ranges: PoseRanges,
  seed: number,
  split: string,
  o: RandomDrawOptions = {},
): StimulusEntry[] {
  checkCount(`${split} poses per identity`, perModel, true);
  const out: StimulusEntry[] = [];
  for (const m of models) {
    const r = stream(seed, 'pose', split, m.name);
    let poses: Pose[];
    if (o.inside && o.inside.length > 0) {
      poses = [];
      for (let k = 0; k < perModel; k++) {
        const reg = o.inside[r.int(o.inside.length)];
        const clip = (a: 'yaw' | 'pitch' | 'roll'): [number, number] => {
          const lim = reg[a];
          const lo = Math.max(ranges[a][0], lim ? lim[0] : -Infinity), hi = Math.min(ranges[a][1], lim ? lim[1] : Infinity);
          if (lo > hi) throw new Error(`held-out region ${JSON.stringify(reg)} lies outside the pose ranges on ${a}`);
          return [lo, hi];
        };
        poses.push(...randomPoses(r, 1, { yaw: clip('yaw'), pitch: clip('pitch'), roll: clip('roll') }));
      }
    } else {
      poses = randomPoses(r, perModel, ranges, o.exclude ?? []);
    }
    poses.forEach((pose, k) => {
      out.push({ model: m.model, identity: m.name, category: m.category, pose, split, jitter: drawJitter(o.jitter ?? NO_JITTER, seed, split, m.name, k) });
    });
  }
  return out;
}

/** Labels and manifest rows for entries (identities indexed in first-appearance order). */
export function describeEntries(entries: readonly StimulusEntry[]): Pick<StimulusSet, 'labels' | 'identities' | 'categoryLabels' | 'categories' | 'rows'> {
  const ids = new Map<string, number>();
  const cats = new Map<string, number>();
  const labels = new Int32Array(entries.length);
  const categoryLabels = new Int32Array(entries.length);
  const rows: StimulusRow[] = entries.map((e, i) => {
    if (!ids.has(e.identity)) ids.set(e.identity, ids.size);
    if (!cats.has(e.category)) cats.set(e.category, cats.size);
    labels[i] = ids.get(e.identity)!;
    categoryLabels[i] = cats.get(e.category)!;
    return { file: '', category: e.category, identity: e.identity, ...e.pose, split: e.split, jitter: e.jitter };
  });
  return { labels, identities: [...ids.keys()], categoryLabels, categories: [...cats.keys()], rows };
}

export async function renderEntries(
  device: Device,
  entries: readonly StimulusEntry[],
  render: RenderOptions,
  onProgress?: (done: number, total: number) => void,
): Promise<StimulusSet> {
  const { images, parts } = await renderImages(device, entries, render, onProgress);
  return { size: render.size, count: entries.length, images, parts, ...describeEntries(entries) };
}

/** GPU-resident: images [N, S, S, 1] and part labels [N, S, S] (u32) stay on the device; the caller disposes them. */
export function renderEntriesToTensor(
  device: Device,
  entries: readonly StimulusEntry[],
  render: RenderOptions,
): { images: Tensor; parts: Tensor } & ReturnType<typeof describeEntries> {
  const t = renderTensors(device, entries, render);
  return { ...t, ...describeEntries(entries) };
}

export interface FaceSetOptions {
  identities: number;
  poses: readonly Pose[];
  size: number;
  seed: number;
  /** Per-image jitter (default none); with jitter each (identity, pose) image draws its own. */
  jitter?: JitterSpec;
  split?: string;
  render?: Omit<RenderOptions, 'size'>;
}

/** Every identity at every pose. */
export async function renderFaceSet(device: Device, o: FaceSetOptions): Promise<StimulusSet> {
  const models = faceModels(o.seed, o.identities);
  const split = o.split ?? 'test';
  const entries = gridEntries(models, o.poses, split);
  if (o.jitter) entries.forEach((e, k) => (e.jitter = drawJitter(o.jitter!, o.seed, split, e.identity, k)));
  return renderEntries(device, entries, { ...o.render, size: o.size });
}

export interface SplitOptions {
  identities: number;
  /** Objects too (0 = faces only, the default). */
  objectsPerCategory?: number;
  categories?: readonly string[];
  size: number;
  seed: number;
  ranges: PoseRanges;
  /** Random poses per identity in each split. */
  train: number;
  val: number;
  heldOut?: readonly PoseRegion[];
  heldOutPerIdentity?: number;
  jitter?: JitterSpec;
  render?: Omit<RenderOptions, 'size'>;
}

export function splitEntries(o: SplitOptions): { train: StimulusEntry[]; val: StimulusEntry[]; heldOut: StimulusEntry[] } {
  const models = [
    ...(o.identities > 0 ? faceModels(o.seed, o.identities) : []),
    ...(o.objectsPerCategory ? objectModels(o.seed, o.categories ?? OBJECT_CATEGORIES, o.objectsPerCategory) : []),
  ];
  const ex = o.heldOut ?? [];
  const jitter = o.jitter ?? DEFAULT_JITTER;
  return {
    train: randomEntries(models, o.train, o.ranges, o.seed, 'train', { jitter, exclude: ex }),
    val: randomEntries(models, o.val, o.ranges, o.seed, 'val', { jitter, exclude: ex }),
    heldOut: ex.length && o.heldOutPerIdentity ? randomEntries(models, o.heldOutPerIdentity, o.ranges, o.seed, 'heldout', { jitter, inside: ex }) : [],
  };
}

/** Train and validation sets of the same identities from disjoint random draws (plus held-out poses if asked). */
export async function renderSplits(device: Device, o: SplitOptions): Promise<{ train: StimulusSet; val: StimulusSet; heldOut: StimulusSet | null }> {
  const e = splitEntries(o);
  const r = { ...o.render, size: o.size };
  const train = await renderEntries(device, e.train, r);
  const val = await renderEntries(device, e.val, r);
  const heldOut = e.heldOut.length ? await renderEntries(device, e.heldOut, r) : null;
  // Every split lists the identities in the same order, so labels mean the same person in each.
  return { train, val: relabel(val, train.identities), heldOut: heldOut && relabel(heldOut, train.identities) };
}

/** Re-indexes a set's labels against another identity list (identities it lacks are appended). */
export function relabel(set: StimulusSet, identities: readonly string[]): StimulusSet {
  const index = new Map(identities.map((n, i) => [n, i]));
  const names = [...identities];
  for (const n of set.identities) if (!index.has(n)) index.set(n, names.length), names.push(n);
  const labels = Int32Array.from(set.rows, (m) => index.get(m.identity)!);
  return { ...set, labels, identities: names };
}
