/** `unroll train`: train the BL network on the procedural face set (or a folder) for `--steps` time steps. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { PRESETS, type Connections, type NetConfig, type NormKind, type PresetName } from '../model/presets.js';
import { loadTrainingData } from '../train/data.js';
import { readSafetensors } from '../io/safetensors.js';
import { CHECKPOINT, OPTIMIZER } from '../model/checkpoint.js';
import { train, type TrainSettings } from '../train/trainer.js';
import { addDeviceOptions, type DeviceFlags, floatArg, intArg, withDevice } from './common.js';

interface TrainFlags extends DeviceFlags {
  steps: number;
  preset: PresetName;
  epochs?: number;
  batch?: number;
  lr?: number;
  optimizer: 'adam' | 'sgd';
  schedule: 'cosine' | 'constant';
  momentum: number;
  weightDecay: number;
  seed: number;
  out?: string;
  data?: string;
  resume?: string;
  norm?: NormKind;
  connections?: Connections;
  convBias?: boolean;
  bptt?: number;
  recompute?: number;
  identities?: number;
  trainPerIdentity?: number;
  valPerIdentity?: number;
  size?: number;
  widths?: number[];
  progress: boolean;
}

function widthsArg(v: string): number[] {
  const w = v.split(',').map((s) => Number(s.trim()));
  if (w.length < 1 || w.some((n) => !Number.isInteger(n) || n < 1)) throw new InvalidArgumentError(`--widths must be comma-separated positive integers, got "${v}"`);
  return w;
}

function defaultOut(preset: string, steps: number): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  return join('runs', `${stamp}-${preset}-T${steps}`);
}

/** Settings from flags over the preset; with --resume, from the run's config.json. */
export function settingsFromFlags(f: TrainFlags): TrainSettings {
  if (f.resume) {
    const file = join(f.resume, 'config.json');
    if (!existsSync(file)) throw new Error(`--resume ${f.resume}: no config.json there (is it a run folder?)`);
    if (!existsSync(join(f.resume, CHECKPOINT))) throw new Error(`--resume ${f.resume}: no ${CHECKPOINT} there; nothing to resume`);
    // Read the checkpoint now: a truncated one fails here, before any data is made or file written.
    readSafetensors(join(f.resume, CHECKPOINT));
    if (existsSync(join(f.resume, OPTIMIZER))) readSafetensors(join(f.resume, OPTIMIZER));
    const saved = JSON.parse(readFileSync(file, 'utf8')) as TrainSettings;
    if (!saved.net || !saved.steps) throw new Error(`--resume ${f.resume}: config.json is not a run configuration`);
    // Runs from before convBias was a setting always had a conv bias.
    saved.net.convBias ??= true;
    return { ...saved, out: f.resume, progress: f.progress, epochs: f.epochs ?? saved.epochs };
  }
  const p = PRESETS[f.preset];
  const net: NetConfig = {
    ...p.net,
    size: f.size ?? p.net.size,
    widths: f.widths ?? p.net.widths,
    norm: f.norm ?? p.net.norm,
    connections: f.connections ?? p.net.connections,
    convBias: f.convBias ?? p.net.convBias,
    classes: 0,
  };
  if (f.bptt !== undefined && f.bptt >= f.steps) throw new Error(`--bptt ${f.bptt} must be smaller than --steps ${f.steps} (or left out for full BPTT)`);
  return {
    preset: f.preset,
    net,
    steps: f.steps,
    epochs: f.epochs ?? p.epochs,
    batch: f.batch ?? p.batch,
    lr: f.lr ?? p.lr,
    optimizer: f.optimizer,
    schedule: f.schedule,
    momentum: f.momentum,
    weightDecay: f.weightDecay,
    seed: f.seed,
    bptt: f.bptt,
    recompute: f.recompute,
    out: f.out ?? defaultOut(f.preset, f.steps),
    progress: f.progress,
  };
}

export function register(program: Command): void {
  addDeviceOptions(
    program
      .command('train')
      .description('train the BL recurrent network to recognise face identities (backprop through time)')
      .requiredOption('--steps <T>', 'recurrent time steps', intArg('--steps', 1, 256))
      .addOption(new Option('--preset <name>', 'network and data size').choices(Object.keys(PRESETS)).default('small'))
      .option('--epochs <n>', 'epochs (preset default)', intArg('--epochs', 1))
      .option('--batch <n>', 'batch size (preset default)', intArg('--batch', 1, 4096))
      .option('--lr <x>', 'learning rate (preset default)', floatArg('--lr', 0, 10, true))
      .addOption(new Option('--optimizer <name>', 'optimiser').choices(['adam', 'sgd']).default('adam'))
      .addOption(new Option('--schedule <name>', 'learning rate over training: cosine decay to 0, or constant').choices(['cosine', 'constant']).default('cosine'))
      .option('--momentum <x>', 'SGD momentum', floatArg('--momentum', 0, 1), 0.9)
      .option('--weight-decay <x>', 'L2 weight decay', floatArg('--weight-decay', 0, 1), 0)
      .option('--seed <n>', 'random seed (init, data, shuffles)', intArg('--seed', 0, 2 ** 31 - 1), 1)
      .option('--out <dir>', 'run folder (default: a new folder under runs/)')
      .option('--data <dir>', 'train on a folder of PNGs with manifest.csv instead of the procedural faces')
      .option('--resume <dir>', 'continue a stopped run from its last checkpoint')
      .addOption(new Option('--norm <kind>', 'layer norm shared across time, or batch norm per (layer, step)').choices(['layer', 'batch']))
      .addOption(new Option('--connections <kind>', 'B (feedforward control), BL, or BLT (adds top-down)').choices(['B', 'BL', 'BLT']))
      .option('--conv-bias', 'add a bias to each layer\'s convolutions (off by default, as rcnn-sat: the norm has its own shift)')
      .option('--bptt <K>', 'truncated BPTT: cut gradients through time every K steps', intArg('--bptt', 1))
      .option('--recompute <S>', 'activation checkpointing: keep states every S steps, recompute segments in backward', intArg('--recompute', 1))
      .option('--identities <n>', 'face identities (classes) of the procedural set', intArg('--identities', 2, 100000))
      .option('--train-per-identity <n>', 'training images per identity', intArg('--train-per-identity', 1))
      .option('--val-per-identity <n>', 'validation images per identity (held-out poses)', intArg('--val-per-identity', 1))
      .option('--size <px>', 'input size in pixels', intArg('--size', 8, 1024))
      .option('--widths <list>', 'channels of the 6 layers, comma-separated', widthsArg)
      .option('--no-progress', 'no progress bar'),
  ).action(async (f: TrainFlags) => {
    const s = settingsFromFlags(f);
    console.log(`unroll train: writing to ${s.out}`);
    await withDevice(f, async (device) => {
      const data = await loadTrainingData(device, s, {
        dir: f.resume ? undefined : f.data,
        identities: f.identities,
        trainPerIdentity: f.trainPerIdentity,
        valPerIdentity: f.valPerIdentity,
      });
      s.net.classes = data.classes;
      console.log(
        `adapter: ${device.info.description}\n` +
          `data: ${data.train.count} training and ${data.val.count} validation images of ${data.classes} classes; ` +
          `net ${s.net.connections} ${s.net.widths.join('-')} @ ${s.net.size}px, ${s.net.norm} norm${s.net.convBias ? ', conv bias' : ''}, T = ${s.steps}, batch ${s.batch}`,
      );
      const summary = await train(device, s, data, { resume: f.resume });
      const acc = summary.val_accuracy_by_step;
      console.log(
        `done in ${summary.seconds.toFixed(0)} s: validation accuracy at the last step ${(100 * acc[acc.length - 1]).toFixed(1)}% ` +
          `(chance ${(100 * summary.chance).toFixed(1)}%), ${summary.images_per_second.toFixed(1)} images/s. Run folder: ${s.out}`,
      );
    });
  });
}
