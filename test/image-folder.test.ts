/**
 * Bring-your-own image folders: a rendered folder loads back as the set that was rendered; user folders
 * with other sizes, colour PNGs, extra or missing optional columns load; broken folders fail with errors
 * that name the manifest, the line and the file.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadImageFolder } from '../src/data/image-folder.js';
import { formatCsv, parseCsv } from '../src/data/manifest.js';
import { encodeGray, resizeGray } from '../src/data/png.js';
import { renderImages } from '../src/data/render.js';
import { NO_JITTER } from '../src/data/stimuli.js';
import { type FolderOptions, folderEntries, writeStimulusFolder } from '../src/data/stimulus-folder.js';
import { useDevice } from './helpers.js';

const device = useDevice();
const tmp: string[] = [];
afterAll(() => tmp.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'unroll-folder-'));
  tmp.push(d);
  return d;
};

function rgbaPng(width: number, height: number, pixel: (x: number, y: number) => [number, number, number, number]): Buffer {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) png.data.set(pixel(x, y), 4 * (y * width + x));
  return PNG.sync.write(png);
}

const opts: FolderOptions = {
  out: '', identities: 2, objectsPerCategory: 1, categories: ['lamp'], size: 16, seed: 5,
  yaw: [-30, 0, 30], pitch: [0], roll: [0], train: 2, jitter: NO_JITTER,
};
let rendered = '';

beforeAll(async () => {
  rendered = tempDir();
  await writeStimulusFolder(await device(), { ...opts, out: rendered });
});

/** A copy of the rendered folder to break. */
function copy(): string {
  const d = tempDir();
  cpSync(rendered, d, { recursive: true });
  return d;
}

describe('loading a rendered folder', () => {
  it('gives back the rendered images (to 8-bit rounding), part maps, identities and poses', async () => {
    const set = await loadImageFolder(rendered);
    const { entries } = folderEntries({ ...opts, out: rendered });
    const ref = await renderImages(await device(), entries, { size: 16 });
    expect(set.count).toBe(entries.length);
    expect(set.size).toBe(16);
    expect(set.identities).toEqual(['face_000', 'face_001', 'lamp_00']);
    expect(set.categories).toEqual(['face', 'lamp']);
    let worst = 0;
    for (let i = 0; i < ref.images.length; i++) worst = Math.max(worst, Math.abs(set.images[i] - ref.images[i]));
    expect(worst).toBeLessThanOrEqual(0.5 / 255 + 1e-6);
    expect(Array.from(set.parts!)).toEqual(Array.from(ref.parts));
    entries.forEach((e, i) => {
      const row = set.rows[i];
      expect(row.identity).toBe(e.identity);
      expect(row.split).toBe(e.split);
      expect(row.yaw).toBeCloseTo(e.pose.yaw, 3);
      expect(row.pitch).toBeCloseTo(e.pose.pitch, 3);
      expect(row.roll).toBeCloseTo(e.pose.roll, 3);
      expect(set.labels[i]).toBe(set.identities.indexOf(e.identity));
    });
    expect(set.rows[0].extra).toMatchObject({ dx: '0', scale: '1' });
  });
});

describe('errors name the file and the line', () => {
  it('a missing image', async () => {
    const d = copy();
    unlinkSync(join(d, 'images/analysis/face_000_0001.png'));
    await expect(loadImageFolder(d)).rejects.toThrow(/manifest\.csv:3: image "images\/analysis\/face_000_0001\.png" not found/);
  });

  it('a corrupt PNG', async () => {
    const d = copy();
    const f = join(d, 'images/analysis/face_001_0002.png');
    writeFileSync(f, readFileSync(f).subarray(0, 40)); // truncated
    await expect(loadImageFolder(d)).rejects.toThrow(/manifest\.csv:7: "images\/analysis\/face_001_0002\.png" is not a readable PNG/);
    writeFileSync(f, 'not a png at all');
    await expect(loadImageFolder(d)).rejects.toThrow(/manifest\.csv:7: .* is not a readable PNG/);
  });

  it('a manifest without an identity column', async () => {
    const d = copy();
    const t = parseCsv(readFileSync(join(d, 'manifest.csv'), 'utf8'), 'm');
    const keep = t.header.map((h, i) => [h, i] as const).filter(([h]) => h !== 'identity');
    writeFileSync(join(d, 'manifest.csv'), formatCsv(keep.map(([h]) => h), t.rows.map((r) => keep.map(([, i]) => r.cells[i]))));
    await expect(loadImageFolder(d)).rejects.toThrow(/manifest\.csv:1: no "identity" column \(the header has "file", "category", "yaw"/);
  });

  it('no manifest, an empty required field, a row with too few fields, a pose that is not a number', async () => {
    const d = tempDir();
    await expect(loadImageFolder(d)).rejects.toThrow(/manifest\.csv not found: an image folder needs a manifest\.csv with the columns file, category, identity/);
    await expect(loadImageFolder(join(d, 'nope'))).rejects.toThrow(/does not exist/);
    writeFileSync(join(d, 'a.png'), encodeGray(new Float32Array(16), 4, 4));
    writeFileSync(join(d, 'manifest.csv'), 'file,category,identity\na.png,face,\n');
    await expect(loadImageFolder(d)).rejects.toThrow(/manifest\.csv:2: the "identity" field is empty/);
    writeFileSync(join(d, 'manifest.csv'), 'file,category,identity\na.png,face,x\n\na.png,face\n');
    await expect(loadImageFolder(d)).rejects.toThrow(/manifest\.csv:4: 2 fields, but the header has 3/);
    writeFileSync(join(d, 'manifest.csv'), 'file,category,identity,yaw\na.png,face,x,left\n');
    await expect(loadImageFolder(d)).rejects.toThrow(/manifest\.csv:2: yaw "left" is not a number/);
  });
});

describe('user folders', () => {
  it('optional columns: no poses (NaN), no split (undefined), extra and quoted columns kept', async () => {
    const d = tempDir();
    writeFileSync(join(d, 'a.png'), encodeGray(new Float32Array(64).fill(0.25), 8, 8));
    writeFileSync(join(d, 'b b.png'), encodeGray(new Float32Array(64).fill(0.75), 8, 8));
    writeFileSync(join(d, 'manifest.csv'), 'File,Category,Identity,note\r\na.png,face,alice,"one, two"\r\n"b b.png",face,bob,"say ""hi"""\r\n');
    const set = await loadImageFolder(d);
    expect(set.count).toBe(2);
    expect(set.size).toBe(8);
    expect(set.identities).toEqual(['alice', 'bob']);
    expect(Number.isNaN(set.rows[0].yaw)).toBe(true);
    expect(set.rows[0].split).toBeUndefined();
    expect(set.rows[0].extra).toEqual({ note: 'one, two' });
    expect(set.rows[1].extra).toEqual({ note: 'say "hi"' });
    expect(set.images[0]).toBeCloseTo(Math.round(0.25 * 255) / 255, 6);
    expect(set.images[64]).toBeCloseTo(Math.round(0.75 * 255) / 255, 6);
    expect(set.parts).toBeNull();
  });

  it('colour and alpha PNGs become luminance, alpha over the background grey', async () => {
    const d = tempDir();
    writeFileSync(join(d, 'c.png'), rgbaPng(4, 4, (x) => (x < 2 ? [255, 0, 0, 255] : [0, 0, 255, 0])));
    writeFileSync(join(d, 'manifest.csv'), 'file,category,identity\nc.png,thing,t\n');
    const set = await loadImageFolder(d, { background: 0.2 });
    expect(set.images[0]).toBeCloseTo(0.299, 5);
    expect(set.images[3]).toBeCloseTo(0.2, 5);
  });

  it('images of another size are resized (triangle filter) or, in strict mode, refused with the file and line', async () => {
    const d = tempDir();
    // A horizontal ramp at 32x32 and a 20x40 image (centre-cropped to 20x20) of a constant.
    const ramp = new Float32Array(32 * 32).map((_, i) => (i % 32) / 31);
    writeFileSync(join(d, 'ramp.png'), encodeGray(ramp, 32, 32));
    writeFileSync(join(d, 'tall.png'), rgbaPng(20, 40, (_, y) => (y >= 10 && y < 30 ? [100, 100, 100, 255] : [255, 255, 255, 255])));
    writeFileSync(join(d, 'manifest.csv'), 'file,category,identity\nramp.png,x,a\ntall.png,x,b\n');
    const set = await loadImageFolder(d, { size: 16 });
    expect(set.size).toBe(16);
    // The triangle filter keeps a linear ramp linear away from the borders, and a constant constant.
    const row = Array.from(set.images.subarray(8 * 16, 9 * 16));
    for (let x = 2; x < 14; x++) expect(row[x + 1] - row[x]).toBeCloseTo(2 / 31, 2);
    for (const v of set.images.subarray(256, 512)) expect(v).toBeCloseTo(100 / 255, 5);
    await expect(loadImageFolder(d, { size: 16, strict: true })).rejects.toThrow(/manifest\.csv:2: "ramp\.png" is 32x32, not 16x16 \(strict mode does not resize\)/);
    await expect(loadImageFolder(d, { size: 32, strict: true })).rejects.toThrow(/manifest\.csv:3: "tall\.png" is 20x40, not 32x32/);
    // Without a size, the first image sets it; a first image that is not square needs one.
    writeFileSync(join(d, 'manifest.csv'), 'file,category,identity\ntall.png,x,b\n');
    await expect(loadImageFolder(d)).rejects.toThrow(/manifest\.csv:2: "tall\.png" is 20x40, not square; pass a size/);
  });

  it('the resize filter matches its definition (PIL-style bilinear: triangle widened by the reduction)', () => {
    const n = 12, m = 5;
    const img = { width: n, height: n, data: Float32Array.from({ length: n * n }, (_, i) => Math.sin(i * 0.7) * 0.5 + 0.5) };
    const out = resizeGray(img, m);
    const w1 = (o: number) => {
      const scale = n / m, support = Math.max(1, scale), c = (o + 0.5) * scale;
      const ws = Array.from({ length: n }, (_, i) => Math.max(0, 1 - Math.abs((i + 0.5 - c) / support)));
      const s = ws.reduce((a, b) => a + b, 0);
      return ws.map((w) => w / s);
    };
    for (const [oy, ox] of [[0, 0], [2, 3], [4, 4]]) {
      const wy = w1(oy), wx = w1(ox);
      let ref = 0;
      for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) ref += wy[y] * wx[x] * img.data[y * n + x];
      expect(out[oy * m + ox]).toBeCloseTo(ref, 5);
    }
    // Enlarging interpolates.
    const up = resizeGray({ width: 2, height: 2, data: Float32Array.from([0, 1, 0, 1]) }, 4);
    expect(Array.from(up.subarray(0, 4)).map((v) => +v.toFixed(4))).toEqual([0, 0.25, 0.75, 1]);
  });

  it('a folder written by the CLI writer trains and analyses alike: part maps resize with nearest neighbour', async () => {
    const set = await loadImageFolder(rendered, { size: 8 });
    expect(set.size).toBe(8);
    expect(set.parts!.length).toBe(set.count * 64);
    expect(Math.max(...set.parts!)).toBeLessThanOrEqual(8);
    const d = copy();
    mkdirSync(join(d, 'extra'));
    await expect(loadImageFolder(d, { size: 8, strict: true })).rejects.toThrow(/manifest\.csv:2: .* is 16x16, not 8x8/);
  });
});
