/**
 * The training loop: epochs over a fixed-shape batch stream, a progress bar, per-epoch validation
 * accuracy at every time step, metrics.jsonl, config.json, atomic checkpoints, summary.json, --resume.
 *
 * Determinism: parameter init, the data and each epoch's shuffle derive from the seed alone (the shuffle of
 * epoch e uses seed + e), so an interrupted run resumed from its last checkpoint replays the remaining
 * epochs exactly and ends with the same weights as an uninterrupted run on the same adapter.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import type { Device } from '../engine/device.js';
import { Adam, type Optimizer, SGD } from '../engine/optimizers.js';
import { shuffle, stream } from '../data/random.js';
import { tidy } from '../engine/tape.js';
import { Tensor } from '../engine/tensor.js';
import { writeFileAtomic } from '../io/safetensors.js';
import { BLNet } from '../model/bl-net.js';
import { loadCheckpoint, saveCheckpoint } from '../model/checkpoint.js';
import { forwardMacs, type NetConfig, type PresetName } from '../model/presets.js';
import { type StepResult, trainStep } from './step.js';
import { capture, type CapturedGraph } from '../engine/capture.js';

/** Images in NHWC (C = net.inChannels), values in [0, 1], one integer class per image. */
export interface ImageSet {
  images: Float32Array;
  labels: Int32Array;
  count: number;
}

export interface TrainData {
  train: ImageSet;
  val: ImageSet;
  classes: number;
  /** Where the data came from, for config.json. */
  source: Record<string, unknown>;
}

export interface TrainSettings {
  preset: PresetName;
  net: NetConfig;
  steps: number;
  epochs: number;
  batch: number;
  lr: number;
  optimizer: 'adam' | 'sgd';
  /** Learning rate over training: cosine decay from `lr` to 0 (default), or constant. */
  schedule?: 'cosine' | 'constant';
  momentum: number;
  weightDecay: number;
  seed: number;
  bptt?: number;
  recompute?: number;
  out: string;
  /** What the data was (filled by data.ts; reused on --resume so the same images come back). */
  data?: { dir?: string; identities?: number; trainPerIdentity?: number; valPerIdentity?: number };
  /** Show a progress bar (off in tests and when stdout is not a terminal). */
  progress: boolean;
}

export interface EpochMetrics {
  epoch: number;
  train_loss: number;
  train_accuracy: number;
  val_accuracy_by_step: number[];
  val_loss: number;
  images_per_second: number;
  seconds: number;
}

export interface Summary {
  steps: number;
  classes: number;
  chance: number;
  val_accuracy_by_step: number[];
  train_loss: number;
  images_per_second: number;
  seconds: number;
  adapter: string;
  preset: string;
  epochs: number;
  parameters: number;
  forward_gflop_per_image: number;
}

export class NonFiniteLossError extends Error {}

/** The batches of one epoch: a seeded shuffle, dropping the last partial batch (the step's shapes are static). */
function batchOrder(count: number, batch: number, seed: number, epoch: number): number[][] {
  const order = shuffle(stream(seed, 'shuffle', epoch), [...Array(count).keys()]);
  const out: number[][] = [];
  for (let i = 0; i + batch <= count; i += batch) out.push(order.slice(i, i + batch));
  return out;
}

function gather(set: ImageSet, idx: number[], pixels: number, images: Float32Array, labels: Int32Array): void {
  idx.forEach((j, k) => {
    images.set(set.images.subarray(j * pixels, (j + 1) * pixels), k * pixels);
    labels[k] = set.labels[j];
  });
}

function argmaxRows(logits: Float32Array, classes: number): Int32Array {
  const rows = logits.length / classes;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[r * classes + c] > logits[r * classes + best]) best = c;
    out[r] = best;
  }
  return out;
}

/** Accuracy at every time step (and mean loss over steps) on a set, in fixed batches; the tail is padded. */
export async function evaluate(net: BLNet, set: ImageSet, steps: number, batch: number): Promise<{ accuracy: number[]; loss: number }> {
  const d = net.device;
  const { size, inChannels, classes } = net.cfg;
  const pixels = size * size * inChannels;
  const x = Tensor.empty(d, [batch, size, size, inChannels]);
  const correct = new Array(steps).fill(0);
  let lossSum = 0;
  const wasTraining = net.training;
  net.training = false;
  try {
    for (let i = 0; i < set.count; i += batch) {
      const idx = Array.from({ length: batch }, (_, k) => Math.min(i + k, set.count - 1));
      const valid = Math.min(batch, set.count - i);
      const imgs = new Float32Array(batch * pixels);
      const labels = new Int32Array(batch);
      gather(set, idx, pixels, imgs, labels);
      x.write(imgs);
      const logits = net.predict(x, steps);
      for (let t = 0; t < steps; t++) {
        const l = await logits[t].readF32();
        const pred = argmaxRows(l, classes);
        for (let k = 0; k < valid; k++) {
          if (pred[k] === labels[k]) correct[t]++;
          if (t === steps - 1) {
            const row = l.subarray(k * classes, (k + 1) * classes);
            const m = Math.max(...row);
            lossSum += m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) - row[labels[k]];
          }
        }
      }
      logits.forEach((t) => t.dispose());
    }
  } finally {
    net.training = wasTraining;
    x.dispose();
  }
  return { accuracy: correct.map((c) => c / set.count), loss: lossSum / set.count };
}

/** The learning rate at `step` of `total`: cosine decay to 0 (SGDR without restarts), or constant. */
export function learningRate(s: Pick<TrainSettings, 'lr' | 'schedule'>, step: number, total: number): number {
  if (s.schedule === 'constant') return s.lr;
  return 0.5 * s.lr * (1 + Math.cos((Math.PI * step) / total));
}

function makeOptimizer(net: BLNet, s: TrainSettings): Optimizer {
  const params = [...net.params.values()];
  return s.optimizer === 'adam'
    ? new Adam(params, { lr: s.lr, weightDecay: s.weightDecay })
    : new SGD(params, { lr: s.lr, momentum: s.momentum, weightDecay: s.weightDecay });
}

export interface TrainOptions {
  /** Resume from this run folder (its config.json overrides settings). */
  resume?: string;
  /** Stop after this many epochs of this invocation (tests of resume). */
  stopAfterEpochs?: number;
  log?: (line: string) => void;
}

export async function train(device: Device, s: TrainSettings, data: TrainData, opts: TrainOptions = {}): Promise<Summary> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const { net: cfg } = s;
  const pixels = cfg.size * cfg.size * cfg.inChannels;
  if (data.train.count < s.batch) throw new Error(`train: ${data.train.count} training images, fewer than one batch of ${s.batch}`);
  mkdirSync(s.out, { recursive: true });
  const net = BLNet.init(device, cfg, s.seed, s.steps);
  const opt = makeOptimizer(net, s);
  let startEpoch = 0;
  let history: EpochMetrics[] = [];
  if (opts.resume) {
    const meta = loadCheckpoint(opts.resume, net, opt);
    startEpoch = Number(meta.epoch);
    const lines = existsSync(join(s.out, 'metrics.jsonl')) ? readFileSync(join(s.out, 'metrics.jsonl'), 'utf8').trim().split('\n') : [];
    history = lines.filter(Boolean).map((l) => JSON.parse(l) as EpochMetrics).filter((m) => m.epoch <= startEpoch);
    writeFileSync(join(s.out, 'metrics.jsonl'), history.map((m) => JSON.stringify(m) + '\n').join(''));
    log(`resuming ${opts.resume} after epoch ${startEpoch}`);
  } else {
    writeFileSync(join(s.out, 'metrics.jsonl'), '');
  }
  const config = {
    ...s,
    progress: undefined,
    adapter: device.info.description,
    adapter_vendor: device.info.vendor,
    adapter_architecture: device.info.architecture,
    data: data.source,
    classes: data.classes,
    parameters: net.parameterCount,
    created: new Date().toISOString(),
  };
  writeFileAtomic(join(s.out, 'config.json'), JSON.stringify(config, null, 2) + '\n');

  const x = Tensor.empty(device, [s.batch, cfg.size, cfg.size, cfg.inChannels]);
  const y = Tensor.empty(device, [s.batch], 'i32');
  const imgs = new Float32Array(s.batch * pixels);
  const labels = new Int32Array(s.batch);
  const t0 = performance.now();
  let step: { graph: CapturedGraph; out: StepResult } | null = null;
  let trainSeconds = 0;
  let imagesSeen = 0;
  const lastEpoch = opts.stopAfterEpochs !== undefined ? Math.min(s.epochs, startEpoch + opts.stopAfterEpochs) : s.epochs;
  try {
    for (let epoch = startEpoch; epoch < lastEpoch; epoch++) {
      const batches = batchOrder(data.train.count, s.batch, s.seed, epoch);
      const bar = s.progress
        ? new cliProgress.SingleBar({
            format: `epoch ${epoch + 1}/${s.epochs} [{bar}] {value}/{total} | loss {loss} | acc {acc} | {ips} img/s`,
            hideCursor: true,
          }, cliProgress.Presets.shades_classic)
        : null;
      bar?.start(batches.length, 0, { loss: '-', acc: '-', ips: '-' });
      const e0 = performance.now();
      let lossSum = 0;
      let correct = 0;
      for (const [b, idx] of batches.entries()) {
        gather(data.train, idx, pixels, imgs, labels);
        x.write(imgs);
        y.write(labels);
        opt.lr = learningRate(s, epoch * batches.length + b, s.epochs * batches.length);
        // The step's shapes never change: record its dispatches once, then replay them for every batch.
        if (!step) {
          const captured = capture(device, () => tidy(device, () => trainStep(net, opt, x, y, { steps: s.steps, bptt: s.bptt, recompute: s.recompute })));
          step = { graph: captured.graph, out: captured.result };
        } else {
          step.graph.replay();
        }
        const loss = await step.out.loss.item();
        const pred = argmaxRows(await step.out.lastLogits.readF32(), data.classes);
        if (!Number.isFinite(loss)) {
          bar?.stop();
          throw new NonFiniteLossError(
            `training stopped: the loss became ${loss} at epoch ${epoch + 1}, batch ${b + 1} (step ${epoch * batches.length + b + 1}); ` +
              `the last good checkpoint is kept in ${s.out}. Try a lower --lr.`,
          );
        }
        lossSum += loss;
        correct += pred.reduce((c, p, k) => c + (p === labels[k] ? 1 : 0), 0);
        const secs = (performance.now() - e0) / 1000;
        bar?.update(b + 1, {
          loss: (lossSum / (b + 1)).toFixed(3),
          acc: (correct / ((b + 1) * s.batch)).toFixed(3),
          ips: (((b + 1) * s.batch) / secs).toFixed(1),
        });
      }
      bar?.stop();
      const epochSeconds = (performance.now() - e0) / 1000;
      trainSeconds += epochSeconds;
      imagesSeen += batches.length * s.batch;
      const val = await evaluate(net, data.val, s.steps, s.batch);
      const m: EpochMetrics = {
        epoch: epoch + 1,
        train_loss: lossSum / batches.length,
        train_accuracy: correct / (batches.length * s.batch),
        val_accuracy_by_step: val.accuracy,
        val_loss: val.loss,
        images_per_second: (batches.length * s.batch) / epochSeconds,
        seconds: epochSeconds,
      };
      history.push(m);
      appendFileSync(join(s.out, 'metrics.jsonl'), JSON.stringify(m) + '\n');
      await saveCheckpoint(s.out, net, opt, { epoch: String(epoch + 1), step: String((epoch + 1) * batches.length), format: 'pt' });
      log(
        `epoch ${epoch + 1}: loss ${m.train_loss.toFixed(3)}, train acc ${m.train_accuracy.toFixed(3)}, ` +
          `val acc by step [${val.accuracy.map((a) => a.toFixed(2)).join(' ')}], ${m.images_per_second.toFixed(1)} img/s`,
      );
    }
    const last = history[history.length - 1];
    const summary: Summary = {
      steps: s.steps,
      classes: data.classes,
      chance: 1 / data.classes,
      val_accuracy_by_step: last?.val_accuracy_by_step ?? [],
      train_loss: last?.train_loss ?? NaN,
      images_per_second: imagesSeen / Math.max(trainSeconds, 1e-9),
      seconds: (performance.now() - t0) / 1000,
      adapter: device.info.description,
      preset: s.preset,
      epochs: history.length,
      parameters: net.parameterCount,
      forward_gflop_per_image: (2 * forwardMacs(cfg, s.steps)) / 1e9,
    };
    writeFileAtomic(join(s.out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    return summary;
  } finally {
    if (step) {
      step.graph.dispose();
      step.out.loss.dispose();
      step.out.lastLogits.dispose();
    }
    x.dispose();
    y.dispose();
    opt.dispose();
    net.dispose();
  }
}
