/**
 * Poses: yaw, pitch and roll in degrees, their grids, random draws and the rotation they mean.
 *
 * Conventions (the camera looks down -z at the object; x is the image's right, y its up):
 * - yaw: rotation about the vertical axis. Positive yaw turns the face toward the image's right
 *   (the person's own left): the nose tip moves right.
 * - pitch: rotation about the horizontal (x) axis. Positive pitch = looking up: the nose tip moves up.
 * - roll: rotation in the image plane. Positive roll = counter-clockwise in the image.
 * They compose as R = Rroll · Rpitch · Ryaw: yaw first (about the head's own vertical axis), then pitch,
 * then roll, which is therefore an exact in-plane rotation of the rendered geometry about the image centre.
 */
import type { Rng } from './random.js';

export interface Pose {
  yaw: number;
  pitch: number;
  roll: number;
}

export const AXES = ['yaw', 'pitch', 'roll'] as const;
export type Axis = (typeof AXES)[number];

export const FRONTAL: Pose = { yaw: 0, pitch: 0, roll: 0 };

/**
 * Angles from "START:STOP:STEP" (inclusive of STOP when the steps land on it), "a,b,c" or one number.
 * Throws a clear error naming the option on anything else.
 */
export function parseAngles(spec: string, what = 'angles'): number[] {
  const s = spec.trim();
  const num = (t: string) => {
    const v = Number(t);
    if (t.trim() === '' || !Number.isFinite(v)) throw new Error(`${what}: "${t}" in "${spec}" is not a number`);
    return v;
  };
  if (s.includes(':')) {
    const parts = s.split(':');
    if (parts.length !== 3) throw new Error(`${what}: "${spec}" must be START:STOP:STEP (e.g. -60:60:15)`);
    const [start, stop, step] = parts.map(num);
    if (step <= 0) throw new Error(`${what}: step in "${spec}" must be > 0`);
    if (stop < start) throw new Error(`${what}: STOP < START in "${spec}"`);
    const n = Math.floor((stop - start) / step + 1e-9) + 1;
    if (n > 10000) throw new Error(`${what}: "${spec}" gives ${n} angles; at most 10000`);
    return Array.from({ length: n }, (_, i) => +(start + i * step).toFixed(9));
  }
  const list = s.split(',').map(num);
  if (list.length === 0) throw new Error(`${what}: no angles in "${spec}"`);
  return list;
}

/** [min, max] of a parsed angle list. */
export function rangeOf(angles: readonly number[]): [number, number] {
  return [Math.min(...angles), Math.max(...angles)];
}

/**
 * Pose grid. 'product': every combination, yaw varying fastest within pitch within roll... (rows of a contact
 * sheet read yaw left to right). 'axes': one axis at a time with the other two at 0 (in-depth and in-plane
 * series, as in pose-tuning studies); the frontal pose appears once.
 */
export function poseGrid(yaw: readonly number[], pitch: readonly number[], roll: readonly number[], mode: 'product' | 'axes' = 'product'): Pose[] {
  if (mode === 'product') {
    const out: Pose[] = [];
    for (const r of roll) for (const p of pitch) for (const y of yaw) out.push({ yaw: y, pitch: p, roll: r });
    return out;
  }
  const out: Pose[] = [];
  const seen = new Set<string>();
  const add = (q: Pose) => {
    const k = poseKey(q);
    if (!seen.has(k)) seen.add(k), out.push(q);
  };
  for (const y of yaw) add({ yaw: y, pitch: 0, roll: 0 });
  for (const p of pitch) add({ yaw: 0, pitch: p, roll: 0 });
  for (const r of roll) add({ yaw: 0, pitch: 0, roll: r });
  return out;
}

export const poseKey = (q: Pose) => `${q.yaw}/${q.pitch}/${q.roll}`;

export interface PoseRanges {
  yaw: [number, number];
  pitch: [number, number];
  roll: [number, number];
}

/** A region of pose space held out of training draws: a pose is inside when every given axis is within its [lo, hi]. */
export type PoseRegion = Partial<PoseRanges>;

export function inRegion(q: Pose, r: PoseRegion): boolean {
  let any = false;
  for (const a of AXES) {
    const lim = r[a];
    if (!lim) continue;
    any = true;
    if (q[a] < lim[0] || q[a] > lim[1]) return false;
  }
  return any;
}

/**
 * n poses uniform within `ranges`, skipping any inside `exclude` (rejection; throws if the ranges are
 * almost entirely excluded). Angles are rounded to 1e-3 degree so manifests round-trip exactly.
 */
export function randomPoses(rng: Rng, n: number, ranges: PoseRanges, exclude: readonly PoseRegion[] = []): Pose[] {
  const out: Pose[] = [];
  let tries = 0;
  const round = (v: number) => Math.round(v * 1000) / 1000;
  while (out.length < n) {
    if (++tries > 1000 * (n + 10)) throw new Error('randomPoses: the held-out regions cover (almost) all of the pose ranges');
    const q = {
      yaw: round(rng.uniform(ranges.yaw[0], ranges.yaw[1])),
      pitch: round(rng.uniform(ranges.pitch[0], ranges.pitch[1])),
      roll: round(rng.uniform(ranges.roll[0], ranges.roll[1])),
    };
    if (exclude.some((r) => inRegion(q, r))) continue;
    out.push(q);
  }
  return out;
}

/** Parses a held-out region "yaw=30:60,pitch=-10:10" (each axis LO:HI, degrees). */
export function parseRegion(spec: string): PoseRegion {
  const r: PoseRegion = {};
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = part.match(/^(yaw|pitch|roll)\s*=\s*(-?[\d.]+)\s*:\s*(-?[\d.]+)$/);
    if (!m) throw new Error(`held-out region "${spec}": "${part}" must be AXIS=LO:HI with AXIS yaw, pitch or roll`);
    const lo = Number(m[2]), hi = Number(m[3]);
    if (!(lo <= hi)) throw new Error(`held-out region "${spec}": LO > HI in "${part}"`);
    r[m[1] as Axis] = [lo, hi];
  }
  if (Object.keys(r).length === 0) throw new Error(`held-out region "${spec}" names no axis`);
  return r;
}

const rad = (deg: number) => (deg * Math.PI) / 180;

/** Object -> world rotation (row-major 3x3) for a pose: R = Rroll · Rpitch · Ryaw. */
export function rotation(q: Pose): number[] {
  const [cy, sy] = [Math.cos(rad(q.yaw)), Math.sin(rad(q.yaw))];
  const [cp, sp] = [Math.cos(rad(q.pitch)), Math.sin(rad(q.pitch))];
  const [cr, sr] = [Math.cos(rad(q.roll)), Math.sin(rad(q.roll))];
  // Ryaw: right-handed about +y, so +z (the nose) goes to +x (image right).
  const Ry = [cy, 0, sy, 0, 1, 0, -sy, 0, cy];
  // Rpitch: about +x by -pitch, so +z goes to +y (up) for positive pitch.
  const Rp = [1, 0, 0, 0, cp, sp, 0, -sp, cp];
  // Rroll: right-handed about +z (toward the camera): counter-clockwise as the camera sees it.
  const Rr = [cr, -sr, 0, sr, cr, 0, 0, 0, 1];
  return mul3(Rr, mul3(Rp, Ry));
}

export function mul3(a: readonly number[], b: readonly number[]): number[] {
  const c = new Array<number>(9).fill(0);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) c[i * 3 + j] += a[i * 3 + k] * b[k * 3 + j];
  return c;
}

export function apply3(m: readonly number[], v: readonly number[]): [number, number, number] {
  return [
    m[0] * v[0] + m[1] * v[1] + m[2] * v[2],
    m[3] * v[0] + m[4] * v[1] + m[5] * v[2],
    m[6] * v[0] + m[7] * v[1] + m[8] * v[2],
  ];
}
