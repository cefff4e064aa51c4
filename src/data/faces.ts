/**
 * Parametric faces. An identity is a vector of named parameters (FACE_PARAMS) drawn from a seeded,
 * truncated normal around one mean face, so every identity shares the same layout (two eyes above a nose
 * above a mouth, ears at the sides, hair on top) and identities differ in proportions, inner features and
 * albedo. Identity `i` of seed `s` is always the same person (stream(s, 'face', i)), at every pose.
 *
 * Head coordinates: units of about half the head's height, origin near the head's centre, x to the head's
 * left-right (+x is the image's right at yaw 0), y up, z out of the face toward the camera.
 * `packFace` turns an identity into the derived geometry the shader reads (centres and radii of the
 * head's primitives), computed here so the shader does no per-ray algebra.
 */
import { type Rng, stream } from './random.js';

export interface FaceParam {
  name: string;
  mean: number;
  sd: number;
  min: number;
  max: number;
  what: string;
}

/** The identity space. sd's were chosen so identities differ visibly at 32x32 in inner features and head shape. */
export const FACE_PARAMS = [
  { name: 'headWidth', mean: 1, sd: 0.06, min: 0.85, max: 1.15, what: 'cranium width (multiplier)' },
  { name: 'headLength', mean: 1, sd: 0.05, min: 0.88, max: 1.12, what: 'cranium height (multiplier)' },
  { name: 'headDepth', mean: 1, sd: 0.05, min: 0.88, max: 1.12, what: 'cranium front-back depth (multiplier)' },
  { name: 'jawWidth', mean: 1, sd: 0.1, min: 0.75, max: 1.25, what: 'lower face width (multiplier)' },
  { name: 'jawLength', mean: 1, sd: 0.08, min: 0.8, max: 1.2, what: 'lower face height (multiplier)' },
  { name: 'chin', mean: 0, sd: 0.035, min: -0.08, max: 0.08, what: 'chin protrusion' },
  { name: 'faceDepth', mean: 0, sd: 1, min: -2, max: 2, what: 'how far the lower face sticks out (z-score)' },
  { name: 'eyeSpacing', mean: 1, sd: 0.08, min: 0.8, max: 1.2, what: 'distance between the eyes (multiplier)' },
  { name: 'eyeSize', mean: 1, sd: 0.13, min: 0.7, max: 1.35, what: 'eyeball radius (multiplier)' },
  { name: 'eyeDepth', mean: 0, sd: 0.02, min: -0.05, max: 0.05, what: 'how deep the eyes sit' },
  { name: 'eyeHeight', mean: 0, sd: 0.035, min: -0.08, max: 0.08, what: 'vertical position of the eyes' },
  { name: 'browThickness', mean: 1, sd: 0.25, min: 0.5, max: 1.6, what: 'brow thickness (multiplier)' },
  { name: 'browLength', mean: 1, sd: 0.12, min: 0.7, max: 1.3, what: 'brow length (multiplier)' },
  { name: 'browHeight', mean: 0, sd: 0.025, min: -0.06, max: 0.06, what: 'brow height above the eye' },
  { name: 'browTilt', mean: 0, sd: 0.15, min: -0.35, max: 0.35, what: 'brow tilt (radians, + = outer end up)' },
  { name: 'noseLength', mean: 1, sd: 0.1, min: 0.75, max: 1.25, what: 'nose length (multiplier)' },
  { name: 'noseWidth', mean: 1, sd: 0.14, min: 0.7, max: 1.35, what: 'nose width (multiplier)' },
  { name: 'noseProtrusion', mean: 1, sd: 0.18, min: 0.6, max: 1.45, what: 'how far the nose tip sticks out (multiplier)' },
  { name: 'mouthWidth', mean: 1, sd: 0.13, min: 0.7, max: 1.3, what: 'mouth width (multiplier)' },
  { name: 'lipThickness', mean: 1, sd: 0.22, min: 0.55, max: 1.5, what: 'lip thickness (multiplier)' },
  { name: 'mouthHeight', mean: 0, sd: 0.025, min: -0.06, max: 0.06, what: 'vertical position of the mouth' },
  { name: 'earSize', mean: 1, sd: 0.12, min: 0.75, max: 1.3, what: 'ear size (multiplier)' },
  { name: 'earProtrusion', mean: 0, sd: 1, min: -2, max: 2, what: 'how far the ears stand out (z-score)' },
  { name: 'hairVolume', mean: 1, sd: 0.45, min: 0.1, max: 2.2, what: 'hair thickness over the skull (multiplier)' },
  { name: 'hairline', mean: 0, sd: 1, min: -2, max: 2, what: 'front hairline height (z-score, + = higher forehead)' },
  { name: 'hairBack', mean: 0, sd: 1, min: -2, max: 2, what: 'how low the hair reaches at the back (z-score)' },
  { name: 'hairTop', mean: 0, sd: 1, min: -2, max: 2, what: 'height of the hair on top of the head (z-score)' },
  { name: 'hairSides', mean: 0, sd: 1, min: -2, max: 2, what: 'how low the hair reaches at the sides (z-score)' },
  { name: 'hairPart', mean: 0, sd: 1, min: -2, max: 2, what: 'sideways shift of the hair mass (the one asymmetric parameter)' },
  { name: 'skinAlbedo', mean: 0.7, sd: 0.08, min: 0.45, max: 0.9, what: 'skin reflectance' },
  { name: 'hairAlbedo', mean: 0.3, sd: 0.14, min: 0.06, max: 0.7, what: 'hair reflectance' },
  { name: 'irisAlbedo', mean: 0.2, sd: 0.07, min: 0.05, max: 0.4, what: 'iris reflectance' },
] as const satisfies readonly FaceParam[];

export type FaceParamName = (typeof FACE_PARAMS)[number]['name'];
export type FaceIdentity = Record<FaceParamName, number>;


/** The mean face (every parameter at its mean). */
export function meanFace(): FaceIdentity {
  return Object.fromEntries(FACE_PARAMS.map((p) => [p.name, p.mean])) as FaceIdentity;
}

/** Identity `index` of `seed`: each parameter mean + sd * N(0,1) truncated at ±2.5 sd, then clamped to [min, max]. */
export function sampleFace(seed: number, index: number): FaceIdentity {
  const r: Rng = stream(seed, 'face', index);
  const f = {} as FaceIdentity;
  for (const p of FACE_PARAMS) f[p.name] = Math.min(p.max, Math.max(p.min, p.mean + p.sd * r.normal(2.5)));
  return f;
}

/** The same identity made left-right symmetric (the hair mass centred); every other parameter is symmetric already. */
export function symmetric(f: FaceIdentity): FaceIdentity {
  return { ...f, hairPart: 0 };
}

/** The identity as a plain vector in FACE_PARAMS order. */
export function faceVector(f: FaceIdentity): number[] {
  return FACE_PARAMS.map((p) => f[p.name]);
}

type V3 = [number, number, number];

/** Derived geometry of a face, in head coordinates. Paired features are given for the +x side. */
export interface FaceGeometry {
  cranium: { c: V3; r: V3 };
  jaw: { c: V3; r: V3 };
  chin: { c: V3; r: number };
  eye: { c: V3; r: number; irisCos: number };
  lids: { up: number; down: number; r: number };
  socket: { c: V3; r: number };
  brow: { c: V3; r: V3; tilt: number };
  noseRoot: { c: V3; r: number };
  noseTip: { c: V3; r: number };
  ala: { c: V3; r: number };
  mouth: { c: V3; r: V3; line: number };
  ear: { c: V3; r: V3 };
  hair: { c: V3; r: V3; plane: [number, number, number, number]; sides: number };
  neck: { a: V3; b: V3; r: number };
  albedo: { skin: number; hair: number; lips: number; iris: number; sclera: number; brow: number };
  /** An axis-aligned box (head coordinates) that holds the whole head: rays skip the space outside it. */
  box: { min: V3; max: V3 };
  /** A box holding the inner features (eyes, lids, sockets, brows, nose, mouth): the shader skips them outside it. */
  features: { min: V3; max: V3 };
}

/** z of the front surface of an axis-aligned ellipsoid at (x, y), or -Infinity where the ellipsoid is not. */
function frontZ(e: { c: V3; r: V3 }, x: number, y: number): number {
  const u = (x - e.c[0]) / e.r[0], v = (y - e.c[1]) / e.r[1];
  const w = 1 - u * u - v * v;
  return w < 0 ? -Infinity : e.c[2] + e.r[2] * Math.sqrt(w);
}

export function faceGeometry(f: FaceIdentity): FaceGeometry {
  const cranium = { c: [0, 0.14, -0.06] as V3, r: [0.7 * f.headWidth, 0.86 * f.headLength, 0.84 * f.headDepth] as V3 };
  const jawRy = 0.52 * f.jawLength;
  const jaw = {
    c: [0, -0.36 - 0.12 * (f.jawLength - 1), 0.06] as V3,
    r: [0.54 * f.jawWidth, jawRy, (0.62 + 0.025 * f.faceDepth) * f.headDepth] as V3,
  };
  // Front surface of the base head at (x, y): cranium and jaw joined with the shader's smooth union (k = 0.3),
  // whose bulge h^2 k / 4 is added where the two surfaces are within k of each other.
  const surf = (x: number, y: number) => {
    const a = frontZ(cranium, x, y), b = frontZ(jaw, x, y);
    const h = Math.max(0.3 - Math.abs(a - b), 0) / 0.3;
    return Math.max(a, b) + (Number.isFinite(h) ? h * h * 0.075 : 0);
  };

  const chinY = jaw.c[1] - 0.78 * jaw.r[1];
  const chin = { c: [0, chinY, surf(0, chinY) - 0.16 + f.chin] as V3, r: 0.17 };

  const eyeX = 0.29 * f.eyeSpacing;
  const eyeY = 0.04 + f.eyeHeight;
  const eyeR = 0.085 * f.eyeSize;
  const zsEye = surf(eyeX, eyeY);
  const socket = { c: [eyeX, eyeY + 0.01, zsEye + 0.05] as V3, r: 0.15 };
  const eyeFront = zsEye - 0.035 - f.eyeDepth;
  const eye = { c: [eyeX, eyeY, eyeFront - eyeR] as V3, r: eyeR, irisCos: 0.5 };
  // Lids: a sphere slightly larger than the eyeball, kept above and below the eye's opening.
  const lids = { up: 0.32 * eyeR, down: 0.6 * eyeR, r: eyeR + 0.012 };

  const browX = eyeX + 0.01, browY = eyeY + 0.15 + f.browHeight;
  const brow = {
    c: [browX, browY, surf(browX, browY) - 0.012] as V3,
    r: [0.13 * f.browLength, 0.027 * f.browThickness, 0.05] as V3,
    tilt: f.browTilt,
  };

  const rootY = eyeY - 0.02;
  const tipY = eyeY - 0.34 * f.noseLength;
  const noseRoot = { c: [0, rootY, surf(0, rootY) - 0.03] as V3, r: 0.045 };
  const zsTip = surf(0, tipY);
  const noseTip = { c: [0, tipY, zsTip + 0.11 * f.noseProtrusion - 0.05] as V3, r: 0.072 * Math.sqrt(f.noseWidth) };
  const alaX = 0.075 * f.noseWidth;
  const ala = { c: [alaX, tipY + 0.005, surf(alaX, tipY) + 0.03 * f.noseProtrusion - 0.07] as V3, r: 0.055 * f.noseWidth };

  const mouthY = tipY - 0.18 + f.mouthHeight;
  const mouthHalf = 0.18 * f.mouthWidth;
  const mouth = {
    c: [0, mouthY, surf(0, mouthY) - 0.03] as V3,
    r: [mouthHalf, 0.045 * f.lipThickness, 0.075] as V3,
    line: 0.014 * Math.sqrt(f.lipThickness),
  };

  // Ears: flat ellipsoids on the sides of the cranium, their centre just outside its surface.
  const earY = eyeY - 0.08, earZ = -0.08;
  const u = (earY - cranium.c[1]) / cranium.r[1], w = (earZ - cranium.c[2]) / cranium.r[2];
  const sideX = cranium.r[0] * Math.sqrt(Math.max(0, 1 - u * u - w * w));
  const ear = { c: [sideX + 0.015 + 0.02 * f.earProtrusion, earY, earZ] as V3, r: [0.05, 0.17 * f.earSize, 0.095 * f.earSize] as V3 };

  // Hair: a shell over the cranium, kept above a plane through the front hairline and the back hairline.
  const thick = 0.02 + 0.05 * f.hairVolume;
  const top = Math.max(0, 0.04 + 0.035 * f.hairTop);
  const hair = {
    c: [0.035 * f.hairPart, cranium.c[1] + 0.5 * top, cranium.c[2] - 0.015] as V3,
    r: [cranium.r[0] + thick, cranium.r[1] + thick + 0.5 * top, cranium.r[2] + thick + 0.01] as V3,
    plane: [0, 0, 0, 0] as [number, number, number, number],
    sides: Math.max(0, 0.3 + 0.12 * f.hairSides),
  };
  const front = { y: 0.5 + 0.07 * f.hairline, z: cranium.c[2] + cranium.r[2] };
  const back = { y: -0.42 - 0.15 * f.hairBack, z: cranium.c[2] - cranium.r[2] };
  // Normal of the hairline plane (in the y-z plane), pointing into the hair: hair where dot(n, p) > d.
  let ny = front.z - back.z, nz = -(front.y - back.y);
  const len = Math.hypot(ny, nz);
  ny /= len, nz /= len;
  hair.plane = [ny, nz, ny * front.y + nz * front.z, hair.sides];

  const neck = { a: [0, -0.5, -0.16] as V3, b: [0, -1.15, -0.26] as V3, r: 0.29 * (0.6 + 0.4 * f.jawWidth) };

  const albedo = {
    skin: f.skinAlbedo,
    hair: f.hairAlbedo,
    lips: f.skinAlbedo * 0.62,
    iris: f.irisAlbedo,
    sclera: 0.66,
    brow: Math.min(f.hairAlbedo, 0.3) * 0.85,
  };
  const m = 0.06; // margin for smooth unions, which add up to k/4 beyond the parts
  const halfX = Math.max(ear.c[0] + ear.r[0], Math.abs(hair.c[0]) + hair.r[0], cranium.r[0], jaw.r[0]) + m;
  const box = {
    min: [-halfX, neck.b[1] - neck.r - m, Math.min(hair.c[2] - hair.r[2], cranium.c[2] - cranium.r[2], neck.b[2] - neck.r) - m] as V3,
    max: [halfX, hair.c[1] + hair.r[1] + m, Math.max(noseTip.c[2] + noseTip.r, cranium.c[2] + cranium.r[2], hair.c[2] + hair.r[2], jaw.c[2] + jaw.r[2]) + m] as V3,
  };
  // Inner features' box: every feature's own extent (paired ones mirrored), plus a margin for their blends.
  const lo: V3 = [Infinity, Infinity, Infinity], hi: V3 = [-Infinity, -Infinity, -Infinity];
  const grow = (c: V3, r: V3) => {
    for (let k = 0; k < 3; k++) lo[k] = Math.min(lo[k], c[k] - r[k]), hi[k] = Math.max(hi[k], c[k] + r[k]);
  };
  const ball = (r: number): V3 => [r, r, r];
  const [ct, st] = [Math.abs(Math.cos(brow.tilt)), Math.abs(Math.sin(brow.tilt))];
  grow(socket.c, ball(socket.r));
  grow(eye.c, ball(lids.r));
  grow(brow.c, [brow.r[0] * ct + brow.r[1] * st, brow.r[0] * st + brow.r[1] * ct, brow.r[2]]);
  grow(noseRoot.c, ball(noseRoot.r));
  grow(noseTip.c, ball(noseTip.r));
  grow(ala.c, ball(ala.r));
  grow(mouth.c, mouth.r);
  const fx = Math.max(Math.abs(lo[0]), Math.abs(hi[0])) + m;
  const features = { min: [-fx, lo[1] - m, lo[2] - m] as V3, max: [fx, hi[1] + m, hi[2] + m] as V3 };
  return { cranium, jaw, chin, eye, lids, socket, brow, noseRoot, noseTip, ala, mouth, ear, hair, neck, albedo, box, features };
}

/** Floats per category block (the shader's g[5..31]). */
export const CATEGORY_FLOATS = 27 * 4;

/** The face's block of shader parameters; layout documented at face() in shaders/render_sdf.wgsl. */
export function packFace(f: FaceIdentity): Float32Array {
  const g = faceGeometry(f);
  const b = new Float32Array(CATEGORY_FLOATS);
  const put = (slot: number, ...v: number[]) => b.set(v, (slot - 5) * 4);
  put(5, ...g.cranium.c, g.albedo.skin);
  put(6, ...g.cranium.r, g.albedo.hair);
  put(7, ...g.jaw.c, g.albedo.lips);
  put(8, ...g.jaw.r, g.albedo.iris);
  put(9, ...g.chin.c, g.chin.r);
  put(10, Math.cos(g.brow.tilt), Math.sin(g.brow.tilt), 0, g.albedo.sclera);
  const fc = g.features.min.map((v, k) => 0.5 * (v + g.features.max[k]));
  put(11, ...fc, g.albedo.brow);
  put(12, ...g.eye.c, g.eye.r);
  put(13, ...g.socket.c, g.socket.r);
  put(14, ...g.brow.c, 0);
  put(15, ...g.brow.r, g.eye.irisCos);
  put(16, ...g.noseRoot.c, g.noseRoot.r);
  put(17, ...g.noseTip.c, g.noseTip.r);
  put(18, ...g.ala.c, g.ala.r);
  put(19, ...g.mouth.c, g.mouth.line);
  put(20, ...g.mouth.r, g.lids.up);
  put(21, ...g.ear.c, g.lids.down);
  put(22, ...g.ear.r, g.lids.r);
  put(23, ...g.hair.c, 0);
  put(24, ...g.hair.r, 0);
  put(25, ...g.hair.plane);
  put(26, ...g.neck.a, g.neck.r);
  put(27, ...g.neck.b, 0);
  put(28, ...g.box.min, 0);
  put(29, ...g.box.max, 0);
  put(30, ...g.features.max.map((v, k) => v - fc[k]), 0);
  return b;
}

/** Landmarks in head coordinates (for tests and analyses): both eyes, nose tip, mouth centre, both ears. */
export function faceLandmarks(f: FaceIdentity): Record<'leftEye' | 'rightEye' | 'noseTip' | 'mouth' | 'leftEar' | 'rightEar', V3> {
  const g = faceGeometry(f);
  const mirror = (v: V3): V3 => [-v[0], v[1], v[2]];
  const eyeFront: V3 = [g.eye.c[0], g.eye.c[1], g.eye.c[2] + g.eye.r];
  return {
    // "left"/"right" as the viewer sees a frontal face: leftEye is at -x (the image's left).
    leftEye: mirror(eyeFront),
    rightEye: eyeFront,
    noseTip: [0, g.noseTip.c[1], g.noseTip.c[2] + g.noseTip.r],
    mouth: [0, g.mouth.c[1], g.mouth.c[2] + g.mouth.r[2]],
    leftEar: mirror(g.ear.c),
    rightEar: g.ear.c,
  };
}
