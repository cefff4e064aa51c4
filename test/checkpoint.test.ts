import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '../src/io/safetensors.js';
import { BLNet } from '../src/model/bl-net.js';
import { CHECKPOINT, hwioToOihw, loadCheckpoint, oihwToHwio, saveCheckpoint } from '../src/model/checkpoint.js';
import { PRESETS } from '../src/model/presets.js';
import { useDevice } from './helpers.js';

const device = useDevice();

describe('safetensors', () => {
  const tensors = new Map<string, SafeTensor>([
    ['b.weight', { dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6.5) }],
    ['a.count', { dtype: 'I64', shape: [], data: BigInt64Array.of(7n) }],
    ['c', { dtype: 'I32', shape: [3], data: Int32Array.of(-1, 0, 1) }],
  ]);
  it('lays out the header as the reference writer does and round-trips', () => {
    const buf = encodeSafetensors(tensors, { format: 'pt' });
    const n = Number(buf.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const json = buf.subarray(8, 8 + n).toString();
    expect(json.trimEnd()).toBe(
      '{"__metadata__":{"format":"pt"},"a.count":{"dtype":"I64","shape":[],"data_offsets":[0,8]},' +
        '"b.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]},"c":{"dtype":"I32","shape":[3],"data_offsets":[32,44]}}',
    );
    expect(buf.length).toBe(8 + n + 44);
    const back = decodeSafetensors(buf);
    expect(back.metadata).toEqual({ format: 'pt' });
    expect(Array.from(back.tensors.get('b.weight')!.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6.5]);
    expect((back.tensors.get('a.count')!.data as BigInt64Array)[0]).toBe(7n);
  });
  it('is read by a Python reader that validates the format', () => {
    const dir = mkdtempSync(join(tmpdir(), 'unroll-st-'));
    const file = join(dir, 't.safetensors');
    writeFileSync(file, encodeSafetensors(tensors, { step: '3' }));
    const out = JSON.parse(execFileSync('python3', ['test/python/read_safetensors.py', file], { encoding: 'utf8' }));
    expect(out.__metadata__).toEqual({ step: '3' });
    expect(out['b.weight']).toEqual({ dtype: 'F32', shape: [2, 3], sum: 21.5, first: 1 });
    expect(out['a.count']).toEqual({ dtype: 'I64', shape: [], sum: 7, first: 7 });
    expect(out.c.shape).toEqual([3]);
  });
  it('reports a truncated file', () => {
    const buf = encodeSafetensors(tensors);
    expect(() => decodeSafetensors(buf.subarray(0, buf.length - 4), 'x.safetensors')).toThrow(/x.safetensors: .* runs past the end/);
    expect(() => decodeSafetensors(buf.subarray(0, 20), 'x.safetensors')).toThrow(/truncated header/);
  });
});

describe('checkpoints', () => {
  it('converts HWIO to PyTorch OIHW and back', () => {
    // w[y, x, i, o] = 1000y + 100x + 10i + o
    const shape = [2, 3, 4, 5];
    const hwio = new Float32Array(120);
    for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) for (let i = 0; i < 4; i++) for (let o = 0; o < 5; o++) {
      hwio[((y * 3 + x) * 4 + i) * 5 + o] = 1000 * y + 100 * x + 10 * i + o;
    }
    const oihw = hwioToOihw(hwio, shape);
    // oihw[o=4, i=3, y=1, x=2]
    expect(oihw[((4 * 4 + 3) * 2 + 1) * 3 + 2]).toBe(1000 + 200 + 30 + 4);
    expect(Array.from(oihwToHwio(oihw, [5, 4, 2, 3]))).toEqual(Array.from(hwio));
  });
  for (const norm of ['layer', 'batch'] as const) {
    it(`saves a ${norm}-norm BL net under PyTorch names and loads it back`, async () => {
      const d = await device();
      const cfg = { ...PRESETS.tiny.net, classes: 5, norm };
      const a = BLNet.init(d, cfg, 1, 3);
      const b = BLNet.init(d, cfg, 2, 3);
      const dir = mkdtempSync(join(tmpdir(), 'unroll-ck-'));
      await saveCheckpoint(dir, a, null, { step: '1' });
      const out = JSON.parse(execFileSync('python3', ['test/python/read_safetensors.py', join(dir, CHECKPOINT)], { encoding: 'utf8' }));
      expect(out['layers.0.bottom_up.weight'].shape).toEqual([4, 1, 3, 3]);
      expect(out['layers.1.lateral.weight'].shape).toEqual([4, 4, 3, 3]);
      expect(out['readout.weight'].shape).toEqual([5, 8]);
      if (norm === 'batch') expect(out['layers.2.norm.1.num_batches_tracked']).toEqual({ dtype: 'I64', shape: [], sum: 0, first: 0 });
      else expect(out['layers.2.norm.weight'].sum).toBe(8);
      loadCheckpoint(dir, b, null);
      for (const [name, p] of a.params) expect(Array.from(await b.param(name).readF32()), name).toEqual(Array.from(await p.readF32()));
      a.dispose(), b.dispose();
    });
  }
  it('refuses a checkpoint of another shape, naming the tensor', async () => {
    const d = await device();
    const a = BLNet.init(d, { ...PRESETS.tiny.net, classes: 5 }, 1);
    const b = BLNet.init(d, { ...PRESETS.tiny.net, classes: 6 }, 1);
    const dir = mkdtempSync(join(tmpdir(), 'unroll-ck-'));
    await saveCheckpoint(dir, a, null, { step: '1' });
    expect(() => loadCheckpoint(dir, b, null)).toThrow(/readout.weight has shape \[5,8\], the network expects \[6,8\]/);
    writeFileSync(join(dir, CHECKPOINT), readFileSync(join(dir, CHECKPOINT)).subarray(0, 100));
    expect(() => loadCheckpoint(dir, a, null)).toThrow(/truncated/);
    a.dispose(), b.dispose();
  });
});
