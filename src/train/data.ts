/**
 * Training data: the procedural face set by default (identities = classes, each rendered at random poses
 * with small position, scale and light jitter; the validation split is a disjoint random draw of poses of
 * the same identities), or a folder of PNGs with manifest.csv (`--data DIR`), split by its `split` column
 * or else 1 image in 5 to validation, per identity.
 */
import type { Device } from '../engine/device.js';
import { loadImageFolder } from '../data/image-folder.js';
import type { PoseRanges } from '../data/poses.js';
import { renderSplits } from '../data/stimuli.js';
import type { ImageSet, TrainData, TrainSettings } from './trainer.js';

export interface DataOptions {
  dir?: string;
  identities?: number;
  trainPerIdentity?: number;
  valPerIdentity?: number;
}

/** Pose ranges of the training faces (degrees): the in-depth and in-plane variation identity must survive. */
export const TRAIN_POSES: PoseRanges = { yaw: [-45, 45], pitch: [-15, 15], roll: [-15, 15] };

export async function loadTrainingData(device: Device, s: TrainSettings, o: DataOptions): Promise<TrainData> {
  const data = o.dir ?? s.data?.dir;
  if (data) return folderData(data, s);
  const preset = (await import('../model/presets.js')).PRESETS[s.preset];
  const identities = o.identities ?? s.data?.identities ?? preset.identities;
  const trainPer = o.trainPerIdentity ?? s.data?.trainPerIdentity ?? preset.trainPerIdentity;
  const valPer = o.valPerIdentity ?? s.data?.valPerIdentity ?? preset.valPerIdentity;
  s.data = { identities, trainPerIdentity: trainPer, valPerIdentity: valPer };
  const { train, val } = await renderSplits(device, {
    identities,
    size: s.net.size,
    seed: s.seed,
    ranges: TRAIN_POSES,
    train: trainPer,
    val: valPer,
  });
  return {
    train: { images: train.images, labels: train.labels, count: train.count },
    val: { images: val.images, labels: val.labels, count: val.count },
    classes: identities,
    source: { kind: 'procedural-faces', identities, trainPerIdentity: trainPer, valPerIdentity: valPer, poses: TRAIN_POSES, seed: s.seed },
  };
}

async function folderData(dir: string, s: TrainSettings): Promise<TrainData> {
  s.data = { dir };
  const set = await loadImageFolder(dir, { size: s.net.size });
  const classes = new Map<string, number>();
  for (const row of set.rows) if (!classes.has(row.identity)) classes.set(row.identity, classes.size);
  const train: number[] = [];
  const val: number[] = [];
  const seen = new Map<string, number>();
  set.rows.forEach((row, i) => {
    const k = seen.get(row.identity) ?? 0;
    seen.set(row.identity, k + 1);
    const split = row.split ?? (k % 5 === 4 ? 'val' : 'train');
    (split === 'val' || split === 'validation' || split === 'test' ? val : train).push(i);
  });
  const px = s.net.size * s.net.size;
  const pick = (idx: number[]): ImageSet => {
    const images = new Float32Array(idx.length * px);
    const labels = new Int32Array(idx.length);
    idx.forEach((j, k) => {
      images.set(set.images.subarray(j * px, (j + 1) * px), k * px);
      labels[k] = classes.get(set.rows[j].identity)!;
    });
    return { images, labels, count: idx.length };
  };
  if (val.length === 0) throw new Error(`--data ${dir}: no validation images (give a split column, or at least 5 images per identity)`);
  return { train: pick(train), val: pick(val), classes: classes.size, source: { kind: 'folder', dir, classes: [...classes.keys()] } };
}
