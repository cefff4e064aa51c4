/**
 * The stimulus generator: pose conventions, determinism, roll = image rotation, yaw mirror symmetry, part
 * maps that line up with the geometry, identity information in the pixels, and disjoint splits.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FACE_PARAMS, type FaceIdentity, faceLandmarks, meanFace, sampleFace, symmetric } from '../src/data/faces.js';
import { OBJECT_CATEGORIES, sampleObject } from '../src/data/objects.js';
import { inRegion, parseAngles, parseRegion, poseGrid, rotation, apply3 } from '../src/data/poses.js';
import { PART, project, type RenderItem, type RenderOptions, renderImages } from '../src/data/render.js';
import { DEFAULT_JITTER, drawJitter, faceModels, gridEntries, renderEntriesToTensor, renderFaceSet, splitEntries } from '../src/data/stimuli.js';
import { writeStimulusFolder } from '../src/data/stimulus-folder.js';
import { useDevice } from './helpers.js';

const device = useDevice();
const tmp: string[] = [];
afterAll(() => tmp.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'unroll-stimuli-'));
  tmp.push(d);
  return d;
};

/** Pearson correlation of two images. */
function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ma = 0, mb = 0;
  for (let i = 0; i < a.length; i++) ma += a[i], mb += b[i];
  ma /= a.length, mb /= b.length;
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] - ma, y = b[i] - mb;
    ab += x * y, aa += x * x, bb += y * y;
  }
  return ab / Math.sqrt(aa * bb);
}

/** The image rotated counter-clockwise by `deg` about its centre (bilinear; outside filled with `bg`). */
function rotateCcw(img: Float32Array, size: number, deg: number, bg: number): Float32Array {
  const out = new Float32Array(size * size);
  const c = Math.cos((deg * Math.PI) / 180), s = Math.sin((deg * Math.PI) / 180);
  const at = (x: number, y: number) => (x < 0 || y < 0 || x >= size || y >= size ? bg : img[y * size + x]);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = x + 0.5 - size / 2, v = size / 2 - (y + 0.5);
      const su = c * u + s * v, sv = -s * u + c * v; // rotate back by -deg (y up)
      const fx = su + size / 2 - 0.5, fy = size / 2 - sv - 0.5;
      const x0 = Math.floor(fx), y0 = Math.floor(fy), tx = fx - x0, ty = fy - y0;
      out[y * size + x] = (1 - ty) * ((1 - tx) * at(x0, y0) + tx * at(x0 + 1, y0)) + ty * ((1 - tx) * at(x0, y0 + 1) + tx * at(x0 + 1, y0 + 1));
    }
  }
  return out;
}

function mirror<T extends Float32Array | Uint8Array>(img: T, size: number): T {
  const out = img.slice() as T;
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) out[y * size + x] = img[y * size + size - 1 - x];
  return out;
}

describe('poses', () => {
  it('parses START:STOP:STEP, lists and single angles, and refuses the rest', () => {
    expect(parseAngles('-60:60:15')).toEqual([-60, -45, -30, -15, 0, 15, 30, 45, 60]);
    expect(parseAngles('0:10:4')).toEqual([0, 4, 8]);
    expect(parseAngles('0.5:1:0.25')).toEqual([0.5, 0.75, 1]);
    expect(parseAngles('-30, 0, 45')).toEqual([-30, 0, 45]);
    expect(parseAngles('7')).toEqual([7]);
    expect(() => parseAngles('0:10', '--yaw')).toThrow(/--yaw: "0:10" must be START:STOP:STEP/);
    expect(() => parseAngles('0:10:0', '--yaw')).toThrow(/step .* must be > 0/);
    expect(() => parseAngles('a,b', '--pitch')).toThrow(/--pitch: "a" .* is not a number/);
    expect(() => parseAngles('10:0:5')).toThrow(/STOP < START/);
  });

  it('grids: product (yaw fastest) and one axis at a time', () => {
    const g = poseGrid([-30, 0, 30], [0, 20], [0]);
    expect(g.length).toBe(6);
    expect(g[1]).toEqual({ yaw: 0, pitch: 0, roll: 0 });
    expect(g[3]).toEqual({ yaw: -30, pitch: 20, roll: 0 });
    const a = poseGrid([-30, 0, 30], [-20, 0, 20], [0, 45], 'axes');
    expect(a.length).toBe(3 + 2 + 1); // the frontal pose once
    expect(a.filter((q) => q.yaw !== 0 && q.pitch !== 0).length).toBe(0);
  });

  it('conventions: +yaw moves the nose right, +pitch up, +roll turns counter-clockwise', () => {
    const nose = [0, 0, 1];
    expect(apply3(rotation({ yaw: 30, pitch: 0, roll: 0 }), nose)[0]).toBeCloseTo(0.5, 6);
    expect(apply3(rotation({ yaw: 0, pitch: 30, roll: 0 }), nose)[1]).toBeCloseTo(0.5, 6);
    const right = apply3(rotation({ yaw: 0, pitch: 0, roll: 90 }), [1, 0, 0]);
    expect(right[0]).toBeCloseTo(0, 6);
    expect(right[1]).toBeCloseTo(1, 6); // +x (image right) goes to +y (image up): counter-clockwise
    // In pixels: at yaw +30 the nose tip lands right of the image centre, at pitch +30 above it.
    const f = meanFace();
    const tip = faceLandmarks(f).noseTip;
    const at = (yaw: number, pitch: number) => project({ model: { category: 'face', face: f }, pose: { yaw, pitch, roll: 0 } }, { size: 64 }, tip);
    expect(at(30, 0).x).toBeGreaterThan(at(0, 0).x + 5);
    expect(at(0, 30).y).toBeLessThan(at(0, 0).y - 5);
  });

  it('held-out regions', () => {
    const r = parseRegion('yaw=30:60,roll=-10:10');
    expect(inRegion({ yaw: 45, pitch: 0, roll: 0 }, r)).toBe(true);
    expect(inRegion({ yaw: 45, pitch: 0, roll: 20 }, r)).toBe(false);
    expect(() => parseRegion('tilt=0:1')).toThrow(/AXIS=LO:HI/);
  });
});

describe('rendering', () => {
  it('is deterministic: the same settings write the same bytes; another seed writes other images', async () => {
    const d = await device();
    const base = {
      identities: 3, objectsPerCategory: 1, categories: ['car', 'mug'], size: 24, seed: 7,
      yaw: [-30, 0, 30], pitch: [0], roll: [0, 20], train: 2, val: 1, jitter: DEFAULT_JITTER,
    };
    const [a, b, c] = [tempDir(), tempDir(), tempDir()];
    await writeStimulusFolder(d, { ...base, out: a });
    await writeStimulusFolder(d, { ...base, out: b });
    await writeStimulusFolder(d, { ...base, out: c, seed: 8 });
    const files = (dir: string): string[] => readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => statSync(join(dir, f)).isFile()).sort();
    const fa = files(a);
    expect(fa).toEqual(files(b));
    expect(fa.filter((f) => f.startsWith('images/')).length).toBe(5 * 6 + 5 * 3);
    for (const f of fa) expect(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), f).toBe(true);
    const img = 'images/analysis/face_000_0000.png';
    expect(readFileSync(join(a, img)).equals(readFileSync(join(c, img)))).toBe(false);
  });

  it('GPU-resident rendering equals the read-back path', async () => {
    const d = await device();
    const entries = gridEntries(faceModels(3, 2), [{ yaw: 10, pitch: -5, roll: 15 }]);
    const host = await renderImages(d, entries, { size: 20 });
    const t = renderEntriesToTensor(d, entries, { size: 20 });
    expect(t.images.shape).toEqual([2, 20, 20, 1]);
    expect(Array.from(await t.images.readF32())).toEqual(Array.from(host.images));
    expect(Array.from(await t.parts.read())).toEqual(Array.from(host.parts));
    expect(Array.from(t.labels)).toEqual([0, 1]);
    t.images.dispose();
    t.parts.dispose();
  });

  it('a roll of theta rotates the frontal image by theta', async () => {
    const d = await device();
    const size = 64, bg = 0.5;
    const face = sampleFace(1, 2);
    // Frontal light: shading is then the same under roll, so only resampling differs. Default light: the
    // shading moves relative to the face (the light is fixed in the world), so the bar is lower.
    for (const [light, threshold] of [[[0, 0, 1], 0.98], [undefined, 0.9]] as const) {
      const opts: RenderOptions = { size, background: bg, light: light as [number, number, number] | undefined };
      const items: RenderItem[] = [0, 30, -50].map((roll) => ({ model: { category: 'face', face }, pose: { yaw: 0, pitch: 0, roll } }));
      const { images } = await renderImages(d, items, opts);
      const frontal = images.subarray(0, size * size);
      for (const [k, roll] of [[1, 30], [2, -50]]) {
        const rolled = images.subarray(k * size * size, (k + 1) * size * size);
        const r = correlation(rolled, rotateCcw(frontal, size, roll, bg));
        const unrotated = correlation(rolled, frontal);
        expect(r, `roll ${roll}, light ${light ?? 'default'}`).toBeGreaterThan(threshold);
        expect(r).toBeGreaterThan(unrotated + 0.05);
      }
    }
  });

  it('for a symmetric identity and light, yaw +theta is the mirror image of yaw -theta (pixels and part maps)', async () => {
    const d = await device();
    const size = 48;
    const face = symmetric(sampleFace(1, 4));
    const items: RenderItem[] = [35, -35, 0].map((yaw) => ({ model: { category: 'face', face }, pose: { yaw, pitch: 10, roll: 0 } }));
    const { images, parts } = await renderImages(d, items, { size, light: [0, 0.6, 0.8] });
    const px = size * size;
    const plus = images.subarray(0, px), minus = mirror(images.subarray(px, 2 * px), size);
    // Equal up to floating-point rounding, which can flip a sub-pixel ray at a grazing silhouette: so the
    // bar is on the mean difference and on the share of pixels that are not equal.
    const diffs = Array.from(plus, (v, i) => Math.abs(v - minus[i]));
    const meanDiff = diffs.reduce((a, b) => a + b, 0) / px;
    console.log(`mirror: mean |diff| ${meanDiff.toExponential(2)}, max ${Math.max(...diffs).toFixed(3)}, ` +
      `pixels off by > 1e-3: ${diffs.filter((x) => x > 1e-3).length} of ${px}`);
    expect(meanDiff).toBeLessThan(1e-4);
    expect(diffs.filter((x) => x > 1e-3).length).toBeLessThan(0.005 * px);
    const pp = parts.subarray(0, px), pm = mirror(parts.subarray(px, 2 * px), size);
    let same = 0;
    for (let i = 0; i < px; i++) same += pp[i] === pm[i] ? 1 : 0;
    expect(same / px).toBeGreaterThan(0.995);
    // The frontal view is its own mirror image.
    const f = images.subarray(2 * px, 3 * px);
    expect(correlation(f, mirror(f, size))).toBeGreaterThan(0.999);
    // And an asymmetric hair parting breaks that symmetry.
    const asym = { ...face, hairPart: 2 };
    const a = await renderImages(d, [{ model: { category: 'face', face: asym }, pose: { yaw: 0, pitch: 0, roll: 0 } }], { size, light: [0, 0.6, 0.8] });
    let diff = 0;
    const am = mirror(a.images, size);
    for (let i = 0; i < px; i++) diff = Math.max(diff, Math.abs(a.images[i] - am[i]));
    expect(diff).toBeGreaterThan(0.05);
  });

  it('part maps line up with the geometry: landmarks project onto their parts, background pixels are background', async () => {
    const d = await device();
    const size = 64;
    for (const [id, pose] of [[0, { yaw: 0, pitch: 0, roll: 0 }], [5, { yaw: 25, pitch: -10, roll: 20 }], [9, { yaw: -20, pitch: 15, roll: -30 }]] as const) {
      const face = sampleFace(1, id);
      const item: RenderItem = { model: { category: 'face', face }, pose, jitter: drawJitter(DEFAULT_JITTER, 1, 'test', 'x', id) };
      const { images, parts } = await renderImages(d, [item], { size });
      const lm = faceLandmarks(face);
      const labelAt = (p: { x: number; y: number }) => parts[Math.floor(p.y) * size + Math.floor(p.x)];
      const near = (p: { x: number; y: number }, label: number, r = 1) => {
        for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) {
          if (parts[(Math.floor(p.y) + dy) * size + Math.floor(p.x) + dx] === label) return true;
        }
        return false;
      };
      const proj = (v: readonly number[]) => project(item, { size }, v);
      // Eyes: each eye's front projects onto an eye pixel (or one pixel from one), and the centroid of the
      // eye pixels on that side lies within 1.5 px of the projection.
      for (const eye of [lm.leftEye, lm.rightEye]) {
        const p = proj(eye);
        expect(near(p, PART.eyes), `eye of identity ${id} at ${p.x.toFixed(1)},${p.y.toFixed(1)}`).toBe(true);
        let sx = 0, sy = 0, n = 0;
        for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
          if (parts[y * size + x] === PART.eyes && Math.hypot(x + 0.5 - p.x, y + 0.5 - p.y) < 4) sx += x + 0.5, sy += y + 0.5, n++;
        }
        expect(n).toBeGreaterThan(0);
        expect(Math.hypot(sx / n - p.x, sy / n - p.y)).toBeLessThan(1.5);
      }
      expect(labelAt(proj(lm.noseTip))).toBe(PART.nose);
      expect(near(proj(lm.mouth), PART.mouth)).toBe(true);
      // Eyes are darker than the skin around them.
      let eyeSum = 0, eyeN = 0, skinSum = 0, skinN = 0;
      for (let i = 0; i < size * size; i++) {
        if (parts[i] === PART.eyes) eyeSum += images[i], eyeN++;
        if (parts[i] === PART.skin) skinSum += images[i], skinN++;
      }
      expect(eyeSum / eyeN).toBeLessThan(skinSum / skinN);
      // Pixels labelled background whose neighbours are all background have exactly the background grey.
      for (let y = 1; y < size - 1; y++) for (let x = 1; x < size - 1; x++) {
        let all = true;
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) all &&= parts[(y + dy) * size + x + dx] === PART.background;
        if (all) expect(images[y * size + x]).toBeCloseTo(0.5, 6);
      }
      // All face parts are present in a frontal-ish view.
      const present = new Set(parts);
      for (const part of ['skin', 'hair', 'eyes', 'brows', 'nose', 'mouth'] as const) expect(present.has(PART[part]), part).toBe(true);
    }
  });

  it('objects: every category renders inside the frame with the object label', async () => {
    const d = await device();
    const size = 32;
    const items: RenderItem[] = OBJECT_CATEGORIES.map((c) => ({ model: { category: c, object: sampleObject(1, c, 0) }, pose: { yaw: 30, pitch: 10, roll: 0 } }) as RenderItem);
    const { parts } = await renderImages(d, items, { size });
    OBJECT_CATEGORIES.forEach((c, k) => {
      const lab = parts.subarray(k * size * size, (k + 1) * size * size);
      const fg = lab.filter((v) => v === PART.object).length;
      expect(fg, c).toBeGreaterThan(0.04 * size * size);
      expect(lab.every((v) => v === PART.background || v === PART.object), c).toBe(true);
      // Nothing touches the border: the whole object is in view.
      for (let i = 0; i < size; i++) {
        for (const j of [i, (size - 1) * size + i, i * size, i * size + size - 1]) expect(lab[j], `${c} border`).toBe(PART.background);
      }
    });
  });

  it('bounding boxes hold their models: rendering with and without them gives the same images', async () => {
    const d = await device();
    const items: RenderItem[] = [];
    const poses = [{ yaw: 0, pitch: 0, roll: 0 }, { yaw: 90, pitch: 35, roll: 20 }, { yaw: -150, pitch: -60, roll: -45 }];
    // Extreme identities too: every parameter at its minimum, at its maximum, and alternating.
    const extreme = (pick: (k: number) => 'min' | 'max') => Object.fromEntries(FACE_PARAMS.map((q, k) => [q.name, q[pick(k)]])) as FaceIdentity;
    const faces = [extreme(() => 'min'), extreme(() => 'max'), extreme((k) => (k % 2 ? 'min' : 'max')), extreme((k) => (k % 2 ? 'max' : 'min'))];
    for (let j = 0; j < 4; j++) {
      for (const pose of poses) {
        items.push({ model: { category: 'face', face: sampleFace(2, j) }, pose });
        items.push({ model: { category: 'face', face: faces[j] }, pose });
        for (const c of OBJECT_CATEGORIES) items.push({ model: { category: c, object: sampleObject(2, c, j) }, pose } as RenderItem);
      }
    }
    const a = await renderImages(d, items, { size: 24 });
    const b = await renderImages(d, items, { size: 24, boxes: false });
    // Rays start marching at a different point, so where a ray grazes a silhouette it may stop on the other
    // side of the hit threshold: at most one of a pixel's 3x3 sub-pixel rays (<= 1/9 of full contrast).
    // A box that clipped its model would change whole regions.
    let worst = 0, sum = 0;
    for (let i = 0; i < a.images.length; i++) {
      const dd = Math.abs(a.images[i] - b.images[i]);
      worst = Math.max(worst, dd);
      sum += dd;
    }
    expect(worst).toBeLessThan(1 / 9 + 0.01);
    expect(sum / a.images.length).toBeLessThan(1e-3);
  });

  it('identity is in the images: a linear classifier on the pixels of jittered frontal faces is far above chance', async () => {
    const d = await device();
    const ids = 10, per = 12, trainPer = 8, size = 32;
    const set = await renderFaceSet(d, {
      identities: ids, size, seed: 11, jitter: DEFAULT_JITTER,
      poses: Array.from({ length: per }, () => ({ yaw: 0, pitch: 0, roll: 0 })),
    });
    const px = size * size;
    const train: number[] = [], test: number[] = [];
    set.labels.forEach((_, i) => ((i % per) < trainPer ? train : test).push(i));
    // Kernel ridge regression onto one-hot targets (a linear classifier in pixel space, solved in its dual).
    const mean = new Float64Array(px);
    for (const i of train) for (let k = 0; k < px; k++) mean[k] += set.images[i * px + k] / train.length;
    const dot = (i: number, j: number) => {
      let s = 0;
      for (let k = 0; k < px; k++) s += (set.images[i * px + k] - mean[k]) * (set.images[j * px + k] - mean[k]);
      return s;
    };
    const n = train.length, lambda = 1;
    const K = train.map((i, a) => train.map((j, b) => dot(i, j) + (a === b ? lambda : 0)));
    const Y = train.map((i) => Array.from({ length: ids }, (_, c) => (set.labels[i] === c ? 1 : 0)));
    // Gaussian elimination on [K | Y].
    for (let c = 0; c < n; c++) {
      let p = c;
      for (let r = c + 1; r < n; r++) if (Math.abs(K[r][c]) > Math.abs(K[p][c])) p = r;
      [K[c], K[p]] = [K[p], K[c]];
      [Y[c], Y[p]] = [Y[p], Y[c]];
      for (let r = 0; r < n; r++) {
        if (r === c) continue;
        const f = K[r][c] / K[c][c];
        for (let k = c; k < n; k++) K[r][k] -= f * K[c][k];
        for (let k = 0; k < ids; k++) Y[r][k] -= f * Y[c][k];
      }
    }
    const alpha = Y.map((row, r) => row.map((v) => v / K[r][r]));
    let correct = 0;
    for (const t of test) {
      const score = new Float64Array(ids);
      train.forEach((i, a) => {
        const kk = dot(t, i);
        for (let c = 0; c < ids; c++) score[c] += kk * alpha[a][c];
      });
      if (score.indexOf(Math.max(...score)) === set.labels[t]) correct++;
    }
    const accuracy = correct / test.length;
    console.log(`linear classifier on ${size}x${size} jittered frontal faces: ${(accuracy * 100).toFixed(0)}% (chance ${100 / ids}%)`);
    expect(accuracy).toBeGreaterThan(0.6);
  });
});

describe('splits', () => {
  it('train and val are disjoint random draws of the same identities; held-out poses only in the held-out split', () => {
    const heldOut = [parseRegion('yaw=30:45')];
    const e = splitEntries({
      identities: 4, objectsPerCategory: 1, categories: ['chair'], size: 32, seed: 3,
      ranges: { yaw: [-45, 45], pitch: [-15, 15], roll: [-20, 20] }, train: 30, val: 10, heldOut, heldOutPerIdentity: 5,
    });
    expect(e.train.length).toBe(5 * 30);
    expect(e.val.length).toBe(5 * 10);
    expect(e.heldOut.length).toBe(5 * 5);
    const key = (x: (typeof e.train)[number]) => `${x.identity}/${x.pose.yaw}/${x.pose.pitch}/${x.pose.roll}`;
    const trainKeys = new Set(e.train.map(key));
    for (const v of e.val) expect(trainKeys.has(key(v))).toBe(false);
    expect(new Set(e.train.map((x) => x.identity))).toEqual(new Set(e.val.map((x) => x.identity)));
    for (const x of [...e.train, ...e.val]) expect(inRegion(x.pose, heldOut[0])).toBe(false);
    for (const x of e.heldOut) expect(inRegion(x.pose, heldOut[0])).toBe(true);
    for (const x of e.train) {
      expect(Math.abs(x.pose.yaw)).toBeLessThanOrEqual(45);
      expect(x.jitter).toBeDefined();
    }
    // More identities do not change the existing identities' draws.
    const more = splitEntries({ identities: 6, size: 32, seed: 3, ranges: { yaw: [-45, 45], pitch: [-15, 15], roll: [-20, 20] }, train: 30, val: 10, heldOut });
    expect(more.train.filter((x) => x.identity === 'face_001').map(key)).toEqual(e.train.filter((x) => x.identity === 'face_001').map(key));
  });

  it('identities are reproducible parameter vectors and differ from each other', () => {
    expect(sampleFace(5, 3)).toEqual(sampleFace(5, 3));
    expect(sampleFace(5, 3)).not.toEqual(sampleFace(5, 4));
    expect(sampleFace(5, 3)).not.toEqual(sampleFace(6, 3));
    expect(() => faceModels(1, 0)).toThrow(/identities must be an integer >= 1/);
  });

  it('refuses bad render settings before any dispatch', async () => {
    const d = await device();
    const item: RenderItem = { model: { category: 'face', face: meanFace() }, pose: { yaw: 0, pitch: 0, roll: 0 } };
    await expect(renderImages(d, [item], { size: 2.5 })).rejects.toThrow(/size must be an integer/);
    await expect(renderImages(d, [item], { size: 16, supersample: 9 })).rejects.toThrow(/supersample must be 1..4/);
    await expect(renderImages(d, [item], { size: 16, light: [0, 0, 0] })).rejects.toThrow(/zero vector/);
    expect(() => sampleObject(1, 'boat' as never, 0)).toThrow(/unknown object category "boat"/);
  });
});
