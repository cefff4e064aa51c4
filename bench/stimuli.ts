/**
 * Stimulus renderer speed: `npx tsx bench/stimuli.ts [--n 10000] [--size 64] [--only faces|mixed|folder]`.
 *
 *   faces   N faces at random training poses (yaw ±45, pitch ±15, roll ±15) with jitter, rendered in memory
 *   mixed   N images, half faces and half objects (all 8 categories), random poses in the same ranges
 *   folder  the CLI's path: N images rendered and written as PNG images + PNG part maps + manifest.csv
 *
 * Prints wall seconds and the process's CPU seconds (Dawn's software adapter runs the shaders on this
 * process's threads, so on a machine shared with other jobs CPU seconds / cores is the better estimate of
 * what an idle machine would take; both are reported, with the load average).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Device } from '../src/engine/device.js';
import { OBJECT_CATEGORIES } from '../src/data/objects.js';
import { parseAngles } from '../src/data/poses.js';
import { renderImages } from '../src/data/render.js';
import { DEFAULT_JITTER, faceModels, objectModels, randomEntries, type StimulusEntry } from '../src/data/stimuli.js';
import { writeStimulusFolder } from '../src/data/stimulus-folder.js';

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const n = Number(arg('n', '10000'));
const size = Number(arg('size', '64'));
const only = arg('only', 'faces,mixed,folder').split(',');
const ranges = { yaw: [-45, 45] as [number, number], pitch: [-15, 15] as [number, number], roll: [-15, 15] as [number, number] };

async function time(label: string, f: () => Promise<unknown>): Promise<void> {
  const load = loadavg()[0];
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  const cores = cpus().length;
  console.log(`${label.padEnd(8)} ${n} images ${size}x${size}: wall ${wall.toFixed(1)} s (${(n / wall).toFixed(0)} images/s), ` +
    `cpu ${cpu.toFixed(1)} s = ${(cpu / cores).toFixed(1)} s on ${cores} idle cores; load average before ${load.toFixed(2)}`);
}

const device = await Device.create();
console.log(`adapter: ${device.info.description} (${device.info.architecture})`);
// Warm up: compile the pipeline.
await renderImages(device, randomEntries(faceModels(1, 2), 2, ranges, 1, 'warm'), { size });

if (only.includes('faces')) {
  const models = faceModels(1, 100);
  const entries = randomEntries(models, Math.ceil(n / models.length), ranges, 1, 'train', { jitter: DEFAULT_JITTER }).slice(0, n);
  await time('faces', () => renderImages(device, entries, { size }));
}
if (only.includes('mixed')) {
  const faces = randomEntries(faceModels(1, 50), Math.ceil(n / 2 / 50), ranges, 1, 'train', { jitter: DEFAULT_JITTER });
  const objs = randomEntries(objectModels(1, OBJECT_CATEGORIES, 10), Math.ceil(n / 2 / 80), ranges, 1, 'train', { jitter: DEFAULT_JITTER });
  const entries: StimulusEntry[] = [];
  for (let i = 0; entries.length < n; i++) {
    if (i < faces.length) entries.push(faces[i]);
    if (i < objs.length && entries.length < n) entries.push(objs[i]);
  }
  await time('mixed', () => renderImages(device, entries, { size }));
}
if (only.includes('folder')) {
  const out = mkdtempSync(join(tmpdir(), 'unroll-bench-stimuli-'));
  // 40 identities + 8 categories x 5 exemplars = 80 models; the rest of N as random training draws.
  const yaw = parseAngles('-60:60:15');
  const per = Math.max(0, Math.ceil((n - 80 * yaw.length) / 80));
  await time('folder', () => writeStimulusFolder(device, {
    out, identities: 40, objectsPerCategory: 5, size, seed: 1, yaw, pitch: [0], roll: [0], train: per, jitter: DEFAULT_JITTER,
  }));
  rmSync(out, { recursive: true, force: true });
}
device.destroy();
