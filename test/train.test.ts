import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { settingsFromFlags } from '../src/cli/train.js';
import { encodeSafetensors, readSafetensors } from '../src/io/safetensors.js';
import { PRESETS } from '../src/model/presets.js';
import { type ImageSet, NonFiniteLossError, train, type TrainData, type TrainSettings } from '../src/train/trainer.js';
import { rng, useDevice } from './helpers.js';

const device = useDevice();
const run = promisify(execFile);

/** Classes that differ by where a bright blob sits, plus noise: learnable by a tiny net in a few steps. */
function blobs(count: number, classes: number, size: number, seed: number): ImageSet {
  const r = rng(seed);
  const images = new Float32Array(count * size * size);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const c = i % classes;
    labels[i] = c;
    const cx = ((c + 0.5) / classes) * size;
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
      images[i * size * size + y * size + x] = Math.exp(-((x - cx) ** 2 + (y - size / 2) ** 2) / 8) + 0.2 * r();
    }
  }
  return { images, labels, count };
}

const data = (): TrainData => ({ train: blobs(32, 4, 16, 1), val: blobs(16, 4, 16, 2), classes: 4, source: { kind: 'blobs' } });

function settings(out: string, over: Partial<TrainSettings> = {}): TrainSettings {
  return {
    preset: 'tiny',
    net: { ...PRESETS.tiny.net, classes: 4 },
    steps: 3,
    epochs: 2,
    batch: 8,
    lr: 3e-3,
    optimizer: 'adam',
    momentum: 0.9,
    weightDecay: 0,
    seed: 5,
    out,
    progress: false,
    ...over,
  };
}

const quiet = { log: () => {} };
const tmp = () => mkdtempSync(join(tmpdir(), 'unroll-run-'));
const lines = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

describe('training', () => {
  it('writes config, metrics, checkpoint and summary; the same seed gives the same loss curve bit for bit', async () => {
    const d = await device();
    const a = tmp();
    const b = tmp();
    const sa = await train(d, settings(a), data(), quiet);
    await train(d, settings(b), data(), quiet);
    for (const f of ['config.json', 'metrics.jsonl', 'checkpoint.safetensors', 'optimizer.safetensors', 'summary.json']) {
      expect(existsSync(join(a, f)), f).toBe(true);
    }
    expect(sa.steps).toBe(3);
    expect(sa.classes).toBe(4);
    expect(sa.chance).toBe(0.25);
    expect(sa.val_accuracy_by_step).toHaveLength(3);
    expect(sa.adapter).toBe(d.info.description);
    expect(JSON.parse(readFileSync(join(a, 'config.json'), 'utf8')).adapter).toBe(d.info.description);
    const la = lines(a);
    expect(la).toHaveLength(2);
    expect(la.map((m) => m.train_loss)).toEqual(lines(b).map((m) => m.train_loss));
    expect(readFileSync(join(a, 'checkpoint.safetensors')).equals(readFileSync(join(b, 'checkpoint.safetensors')))).toBe(true);
  });

  it('an interrupted and resumed run ends with the same weights as an uninterrupted one', async () => {
    const d = await device();
    const whole = tmp();
    const parts = tmp();
    await train(d, settings(whole, { epochs: 3 }), data(), quiet);
    await train(d, settings(parts, { epochs: 3 }), data(), { ...quiet, stopAfterEpochs: 1 });
    expect(lines(parts)).toHaveLength(1);
    await train(d, settings(parts, { epochs: 3 }), data(), { ...quiet, resume: parts });
    const w = readSafetensors(join(whole, 'checkpoint.safetensors')).tensors;
    const p = readSafetensors(join(parts, 'checkpoint.safetensors')).tensors;
    for (const [name, t] of w) expect(Array.from(p.get(name)!.data as Float32Array), name).toEqual(Array.from(t.data as Float32Array));
    expect(lines(parts).map((m) => m.train_loss)).toEqual(lines(whole).map((m) => m.train_loss));
  });

  it('a non-finite loss stops training, names the step and keeps the last good checkpoint', async () => {
    const d = await device();
    const dir = tmp();
    await train(d, settings(dir, { epochs: 1 }), data(), quiet);
    const before = readFileSync(join(dir, 'checkpoint.safetensors'));
    // Labels outside [0, classes) make the loss kernel emit NaN (images with NaN would be a weaker probe:
    // WGSL lets compilers assume finite math, so a NaN pixel need not survive ReLU on every adapter).
    const poisoned = data();
    poisoned.train.labels.fill(99);
    await expect(train(d, settings(dir, { epochs: 2 }), poisoned, { ...quiet, resume: dir })).rejects.toThrow(
      /loss became NaN at epoch 2, batch 1 \(step 5\)/,
    );
    await expect(train(d, settings(dir, { epochs: 2 }), poisoned, { ...quiet, resume: dir })).rejects.toBeInstanceOf(NonFiniteLossError);
    expect(readFileSync(join(dir, 'checkpoint.safetensors')).equals(before)).toBe(true);
  });
});

describe('the train command refuses bad input', () => {
  const cli = async (...args: string[]) => {
    try {
      await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'train', ...args], { env: { ...process.env, UNROLL_TEST: '1' } });
      return { code: 0, stderr: '' };
    } catch (e) {
      const err = e as { code: number; stderr: string };
      return { code: err.code, stderr: err.stderr };
    }
  };
  it('trains the tiny preset on the procedural faces end to end and writes summary.json', async () => {
    const out = join(tmp(), 'run');
    const r = await cli('--steps', '2', '--preset', 'tiny', '--no-progress', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.steps).toBe(2);
    expect(summary.classes).toBe(PRESETS.tiny.identities);
    expect(summary.chance).toBeCloseTo(1 / PRESETS.tiny.identities, 12);
    expect(summary.val_accuracy_by_step).toHaveLength(2);
    expect(summary.preset).toBe('tiny');
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.data).toMatchObject({ kind: 'procedural-faces', identities: PRESETS.tiny.identities });
    // No conv bias by default (rcnn-sat): none in the config or the checkpoint.
    expect(config.net.convBias).toBe(false);
    const names = [...readSafetensors(join(out, 'checkpoint.safetensors')).tensors.keys()];
    expect(names).toContain('layers.0.bottom_up.weight');
    expect(names.filter((n) => n.includes('bottom_up.bias'))).toEqual([]);
  });
  it('--conv-bias sets the bias; a run folder from before the setting resumes with the bias it had', async () => {
    const base = { steps: 3, preset: 'tiny', optimizer: 'adam', schedule: 'cosine', momentum: 0.9, weightDecay: 0, seed: 1, progress: false } as const;
    expect(settingsFromFlags(base).net.convBias).toBe(false);
    expect(settingsFromFlags({ ...base, convBias: true }).net.convBias).toBe(true);
    const dir = tmp();
    const { convBias: _, ...oldNet } = settings(dir).net;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...settings(dir), net: oldNet }));
    writeFileSync(join(dir, 'checkpoint.safetensors'), encodeSafetensors(new Map()));
    expect(settingsFromFlags({ ...base, resume: dir }).net.convBias).toBe(true);
  });
  it('--steps 0, --lr -1, --batch abc', async () => {
    for (const [args, msg] of [
      [['--steps', '0'], /--steps must be an integer in \[1, 256\], got "0"/],
      [['--steps', '8', '--lr', '-1'], /--lr must be a number > 0/],
      [['--steps', '8', '--batch', 'abc'], /--batch must be an integer/],
    ] as const) {
      const r = await cli(...args);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(msg);
    }
  });
  it('--resume from a folder without a checkpoint, or with a truncated one', async () => {
    const empty = tmp();
    let r = await cli('--steps', '3', '--resume', empty);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no config.json there/);
    writeFileSync(join(empty, 'config.json'), '{}');
    r = await cli('--steps', '3', '--resume', empty);
    expect(r.stderr).toMatch(/no checkpoint.safetensors there/);
    writeFileSync(join(empty, 'checkpoint.safetensors'), Buffer.from([200, 0, 0, 0, 0, 0, 0, 0, 123]));
    r = await cli('--steps', '3', '--resume', empty);
    expect(r.stderr).toMatch(/checkpoint.safetensors: truncated header/);
    expect(readFileSync(join(empty, 'config.json'), 'utf8')).toBe('{}');
  });
});
