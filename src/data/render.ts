/**
 * Batched GPU rendering of the stimulus models (shaders/render_sdf.wgsl): one dispatch draws many images,
 * one invocation per output pixel, each averaging SS x SS sub-pixel rays (antialiasing) and labelling the
 * pixel with the most frequent part among them.
 *
 *   renderTensors(device, items, opts) -> { images: Tensor [N, S, S, 1] f32 in [0, 1], parts: Tensor [N, S, S] u32 }
 *   renderImages(device, items, opts)  -> { images: Float32Array (N*S*S), parts: Uint8Array (N*S*S) }
 *   project(item, opts, point)         -> pixel coordinates of a point given in model coordinates
 *
 * An item is a model (a face identity or an object exemplar), a pose (degrees, conventions in poses.ts)
 * and optional per-image jitter (image-plane shift, scale, light direction). Part labels: PART_NAMES.
 */
import { params, type Device } from '../engine/device.js';
import { Tensor } from '../engine/tensor.js';
import { type FaceIdentity, packFace } from './faces.js';
import { CATEGORY_CODE, type ObjectExemplar, packObject } from './objects.js';
import { apply3, type Pose, rotation } from './poses.js';

export type Model = { category: 'face'; face: FaceIdentity } | { category: ObjectExemplar['category']; object: ObjectExemplar };

/** Per-image jitter, drawn by the caller from a seeded stream (stimuli.ts). */
export interface ImageJitter {
  /** Shift of the model's centre in the image plane, as a fraction of the image width. */
  dx: number;
  dy: number;
  /** Size multiplier. */
  scale: number;
  /** Light direction change, degrees (azimuth about the vertical, elevation). */
  lightAzimuth: number;
  lightElevation: number;
}

export interface RenderItem {
  model: Model;
  pose: Pose;
  jitter?: ImageJitter;
}

export interface RenderOptions {
  /** Output pixels per side. */
  size: number;
  /** Sub-pixel rays per side (default 3 up to 32 px, else 2). */
  supersample?: number;
  /** Uniform background grey in [0, 1] (default 0.5). */
  background?: number;
  /** Lambertian shading: albedo * (ambient + diffuse * max(0, n.l)); defaults 0.3 and 0.75. */
  ambient?: number;
  diffuse?: number;
  /** Direction toward the light in world space (x right, y up, z toward the camera); default upper left front. */
  light?: [number, number, number];
  /** Half the frame's width at the model's distance, in model units (default 1.3: a head fills ~70% of the frame). */
  halfWidth?: number;
  /** Camera distance (default 8: a mild perspective). */
  cameraDistance?: number;
  /** Maximum sphere-tracing steps per ray (default 48). */
  steps?: number;
  /** Images per dispatch (default 256). */
  batch?: number;
  /**
   * Clip rays to each model's bounding box and skip a face's inner features away from their box (default
   * true); false leaves only a bounding sphere and evaluates every part everywhere (slower; tests use it to
   * check that the boxes hold what they bound).
   */
  boxes?: boolean;
}

export const PART_NAMES = ['background', 'skin', 'hair', 'eyes', 'brows', 'nose', 'mouth', 'ears', 'object'] as const;
export type PartName = (typeof PART_NAMES)[number];
export const PART = Object.fromEntries(PART_NAMES.map((n, i) => [n, i])) as Record<PartName, number>;

export const DEFAULT_LIGHT: [number, number, number] = [-0.45, 0.55, 0.7];
const BLOCK_FLOATS = 32 * 4;
const BOUND = 1.58;

interface Resolved {
  size: number;
  ss: number;
  bg: number;
  ambient: number;
  diffuse: number;
  light: [number, number, number];
  halfWidth: number;
  camDist: number;
  steps: number;
  batch: number;
  boxes: boolean;
}

export function resolveOptions(o: RenderOptions): Resolved {
  const size = o.size;
  if (!Number.isInteger(size) || size < 4 || size > 1024) throw new Error(`render: size must be an integer in [4, 1024], got ${size}`);
  const ss = o.supersample ?? (size <= 32 ? 3 : 2);
  if (!Number.isInteger(ss) || ss < 1 || ss > 4) throw new Error(`render: supersample must be 1..4, got ${ss}`);
  const r: Resolved = {
    size,
    ss,
    bg: o.background ?? 0.5,
    ambient: o.ambient ?? 0.3,
    diffuse: o.diffuse ?? 0.75,
    light: o.light ?? DEFAULT_LIGHT,
    halfWidth: o.halfWidth ?? 1.3,
    camDist: o.cameraDistance ?? 8,
    steps: o.steps ?? 48,
    batch: o.batch ?? 256,
    boxes: o.boxes ?? true,
  };
  if (!(r.bg >= 0 && r.bg <= 1)) throw new Error(`render: background must be in [0, 1], got ${r.bg}`);
  if (Math.hypot(...r.light) === 0) throw new Error('render: the light direction is the zero vector');
  if (!(r.camDist > BOUND + 0.5)) throw new Error(`render: cameraDistance must exceed ${BOUND + 0.5}`);
  if (!Number.isInteger(r.batch) || r.batch < 1) throw new Error(`render: batch must be a positive integer, got ${r.batch}`);
  return r;
}

function rad(d: number) {
  return (d * Math.PI) / 180;
}

/** The world light direction after an item's jitter. */
function lightFor(r: Resolved, j?: ImageJitter): [number, number, number] {
  const [x, y, z] = r.light;
  if (!j || (j.lightAzimuth === 0 && j.lightElevation === 0)) return [x, y, z];
  const n = Math.hypot(x, y, z);
  const el = Math.asin(y / n) + rad(j.lightElevation);
  const az = Math.atan2(x, z) + rad(j.lightAzimuth);
  return [Math.cos(el) * Math.sin(az), Math.sin(el), Math.cos(el) * Math.cos(az)];
}

/** The scene block of one item: header (pose, jitter, light, shading) + the model's parameters. */
export function packItem(item: RenderItem, r: Resolved): Float32Array {
  const b = new Float32Array(BLOCK_FLOATS);
  const R = rotation(item.pose);
  const j = item.jitter;
  const tx = (j?.dx ?? 0) * 2 * r.halfWidth, ty = (j?.dy ?? 0) * 2 * r.halfWidth;
  const scale = j?.scale ?? 1;
  if (!(scale > 0)) throw new Error(`render: jitter scale must be > 0, got ${scale}`);
  // Rows of R^T (world -> model) are R's columns.
  b.set([R[0], R[3], R[6], tx, R[1], R[4], R[7], ty, R[2], R[5], R[8], scale], 0);
  const m = item.model;
  b.set([...lightFor(r, j), CATEGORY_CODE[m.category]], 12);
  b.set([r.bg, r.ambient, r.diffuse, BOUND], 16);
  b.set(m.category === 'face' ? packFace(m.face) : packObject(m.object), 20);
  if (!r.boxes) {
    b.set([-BOUND, -BOUND, -BOUND, 0, BOUND, BOUND, BOUND, 0], 28 * 4);
    // A face's inner-feature box too: centred, larger than the head, so the features are never skipped.
    if (m.category === 'face') b.set([0, 0, 0], 11 * 4), b.set([10, 10, 10], 30 * 4);
  }
  return b;
}

/** Renders `items` into GPU tensors (kept on the device: training can use them without a host round trip). */
export function renderTensors(device: Device, items: readonly RenderItem[], opts: RenderOptions): { images: Tensor; parts: Tensor } {
  const r = resolveOptions(opts);
  const n = items.length;
  if (n === 0) throw new Error('render: no items');
  const scene = new Float32Array(n * BLOCK_FLOATS);
  items.forEach((it, i) => scene.set(packItem(it, r), i * BLOCK_FLOATS));
  const sceneT = Tensor.from(device, scene, [n, BLOCK_FLOATS]);
  const images = Tensor.empty(device, [n, r.size, r.size, 1]);
  const parts = Tensor.empty(device, [n, r.size, r.size], 'u32');
  const kernel = { shader: 'render_sdf', entry: 'render', workgroup: [8, 8, 1] as [number, number, number] };
  for (let first = 0; first < n; first += r.batch) {
    const count = Math.min(r.batch, n - first);
    const P = params().u(count, r.size, r.ss, r.steps).f(r.halfWidth, r.camDist, 0.3).u(first);
    device.run(kernel, [P, sceneT, images, parts], [r.size, r.size, count]);
  }
  sceneT.dispose();
  return { images, parts };
}

/**
 * Renders `items` and reads them back, `batch` images at a time (bounded GPU memory);
 * `onProgress(done, total)` after each batch.
 */
export async function renderImages(
  device: Device,
  items: readonly RenderItem[],
  opts: RenderOptions,
  onProgress?: (done: number, total: number) => void,
): Promise<{ images: Float32Array; parts: Uint8Array }> {
  const r = resolveOptions(opts);
  const px = r.size * r.size;
  const images = new Float32Array(items.length * px);
  const parts = new Uint8Array(items.length * px);
  for (let first = 0; first < items.length; first += r.batch) {
    const chunk = items.slice(first, first + r.batch);
    const t = renderTensors(device, chunk, opts);
    images.set(await t.images.readF32(), first * px);
    parts.set(await t.parts.read(), first * px);
    t.images.dispose();
    t.parts.dispose();
    onProgress?.(first + chunk.length, items.length);
  }
  return { images, parts };
}

/**
 * Where a point given in model coordinates lands in the image, in pixel units (x right, y down; pixel
 * (i, j) covers [i, i+1) x [j, j+1)), and its depth toward the camera. Mirrors the shader's camera exactly.
 */
export function project(item: RenderItem, opts: RenderOptions, point: readonly number[]): { x: number; y: number; z: number } {
  const r = resolveOptions(opts);
  const R = rotation(item.pose);
  const j = item.jitter;
  const s = j?.scale ?? 1;
  const w = apply3(R, point).map((v) => v * s);
  w[0] += (j?.dx ?? 0) * 2 * r.halfWidth;
  w[1] += (j?.dy ?? 0) * 2 * r.halfWidth;
  const depth = r.camDist - w[2];
  const u = (w[0] / depth) * (r.camDist / r.halfWidth);
  const v = (w[1] / depth) * (r.camDist / r.halfWidth);
  return { x: ((u + 1) / 2) * r.size, y: ((1 - v) / 2) * r.size, z: w[2] };
}
