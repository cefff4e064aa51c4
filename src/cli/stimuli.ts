/** `unroll stimuli`: render a controlled stimulus set of faces and objects to a folder (see src/data/stimulus-folder.ts). */
import { existsSync, readdirSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { OBJECT_CATEGORIES } from '../data/objects.js';
import { parseAngles, parseRegion, type PoseRegion } from '../data/poses.js';
import { DEFAULT_JITTER, NO_JITTER } from '../data/stimuli.js';
import { type Progress, writeStimulusFolder } from '../data/stimulus-folder.js';
import { addDeviceOptions, type DeviceFlags, floatArg, intArg, withDevice } from './common.js';

interface StimuliFlags extends DeviceFlags {
  out: string;
  identities: number;
  objectsPerCategory: number;
  categories: string;
  size: number;
  yaw: string;
  pitch: string;
  roll: string;
  grid: 'product' | 'axes';
  analysis: boolean;
  train: number;
  val: number;
  heldOut: PoseRegion[];
  heldOutCount: number;
  jitter: boolean;
  seed: number;
  supersample?: number;
  background: number;
  light?: [number, number, number];
  force?: boolean;
  progress: boolean;
}

const angles = (what: string) => (v: string) => {
  try {
    parseAngles(v, what);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return v;
};

export function register(program: Command): void {
  addDeviceOptions(
    program
      .command('stimuli')
      .description('render faces and objects at exact yaw, pitch and roll: PNG images, part maps, manifest.csv, contact sheets')
      .requiredOption('--out <dir>', 'output folder')
      .option('--identities <n>', 'face identities', intArg('--identities', 0, 100000), 12)
      .option('--objects-per-category <m>', 'exemplars of each object category', intArg('--objects-per-category', 0, 100000), 3)
      .option('--categories <list>', `object categories (comma-separated) from ${OBJECT_CATEGORIES.join(',')}`, OBJECT_CATEGORIES.join(','))
      .option('--size <px>', 'image width and height in pixels', intArg('--size', 8, 1024), 64)
      .option('--yaw <angles>', 'yaw grid START:STOP:STEP, a,b,c or one angle (degrees; + turns the face toward the image right)', angles('--yaw'), '-60:60:15')
      .option('--pitch <angles>', 'pitch grid (degrees; + looks up)', angles('--pitch'), '0')
      .option('--roll <angles>', 'roll grid (degrees; + is counter-clockwise in the image)', angles('--roll'), '0')
      .addOption(new Option('--grid <mode>', 'product: every combination; axes: one axis at a time, the others at 0').choices(['product', 'axes']).default('product'))
      .option('--no-analysis', 'do not write the pose grid (the analysis split)')
      .option('--train <k>', 'random poses per identity within the grid\'s ranges for the train split', intArg('--train', 0, 1000000), 0)
      .option('--val <k>', 'random poses per identity for the val split (a disjoint draw)', intArg('--val', 0, 1000000), 0)
      .option('--held-out <region>', 'pose region kept out of train and val, e.g. "yaw=30:60" or "yaw=-15:15,roll=20:45" (repeatable)',
        (v: string, prev: PoseRegion[]) => {
          try {
            return [...prev, parseRegion(v)];
          } catch (e) {
            throw new InvalidArgumentError((e as Error).message);
          }
        }, [] as PoseRegion[])
      .option('--held-out-count <k>', 'random poses per identity drawn inside the held-out regions (split "heldout")', intArg('--held-out-count', 0, 1000000), 0)
      .option('--no-jitter', `no position/scale/light jitter on random draws (default ±${DEFAULT_JITTER.shift * 100}% shift, ±${DEFAULT_JITTER.scale * 100}% scale, ±${DEFAULT_JITTER.light} deg light)`)
      .option('--seed <s>', 'random seed (identities, exemplars, poses, jitter)', intArg('--seed', 0, 2 ** 32 - 1), 1)
      .option('--supersample <n>', 'sub-pixel rays per side for antialiasing (default 3 up to 32 px, else 2)', intArg('--supersample', 1, 4))
      .option('--background <grey>', 'background grey in [0, 1]', floatArg('--background', 0, 1), 0.5)
      .option('--light <x,y,z>', 'direction toward the light, world space (x right, y up, z toward the camera)', (v: string) => {
        const xs = v.split(',').map(Number);
        if (xs.length !== 3 || xs.some((x) => !Number.isFinite(x)) || xs.every((x) => x === 0)) {
          throw new InvalidArgumentError(`--light must be three numbers x,y,z not all 0, got "${v}"`);
        }
        return xs as [number, number, number];
      })
      .option('--force', 'write into a folder that is not empty')
      .option('--no-progress', 'no progress bar'),
  ).action(async (o: StimuliFlags) => {
    if (existsSync(o.out) && readdirSync(o.out).length > 0 && !o.force) {
      throw new Error(`--out ${o.out} is not empty; pick another folder or pass --force`);
    }
    const categories = o.categories.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = categories.filter((c) => !(OBJECT_CATEGORIES as readonly string[]).includes(c));
    if (bad.length) throw new Error(`--categories: unknown ${bad.join(', ')}; known: ${OBJECT_CATEGORIES.join(', ')}`);
    if (o.identities === 0 && (o.objectsPerCategory === 0 || categories.length === 0)) {
      throw new Error('nothing to render: --identities 0 and no objects');
    }
    if (o.heldOutCount > 0 && o.heldOut.length === 0) throw new Error('--held-out-count needs at least one --held-out region');
    let progress: Progress | undefined;
    if (o.progress) {
      const bar = new cliProgress.SingleBar(
        { format: 'stimuli [{bar}] {value}/{total} images | {percentage}% | {duration_formatted} (eta {eta_formatted})', hideCursor: true },
        cliProgress.Presets.shades_classic,
      );
      progress = { start: (t) => bar.start(t, 0), update: (d) => bar.update(d), stop: () => bar.stop() };
    }
    await withDevice(o, async (device) => {
      const t0 = performance.now();
      const res = await writeStimulusFolder(device, {
        out: o.out,
        identities: o.identities,
        objectsPerCategory: o.objectsPerCategory,
        categories,
        size: o.size,
        seed: o.seed,
        yaw: parseAngles(o.yaw, '--yaw'),
        pitch: parseAngles(o.pitch, '--pitch'),
        roll: parseAngles(o.roll, '--roll'),
        grid: o.grid,
        analysis: o.analysis,
        train: o.train,
        val: o.val,
        heldOut: o.heldOut,
        heldOutPerIdentity: o.heldOutCount,
        jitter: o.jitter ? DEFAULT_JITTER : NO_JITTER,
        render: { supersample: o.supersample, background: o.background, light: o.light },
      }, progress);
      const s = (performance.now() - t0) / 1000;
      console.log(`wrote ${res.images} images (${o.size}x${o.size}) with part maps, manifest.csv and ${res.sheet} in ${s.toFixed(1)} s ` +
        `(${(res.images / s).toFixed(0)} images/s)`);
    });
  });
}
