/**
 * Checkpoints. `checkpoint.safetensors` holds the network under PyTorch-style names and layouts (conv
 * weights OIHW, linear [out, in], GroupNorm/BatchNorm weight/bias, running_mean/var, num_batches_tracked
 * as int64), so `safetensors.torch.load_file` + `load_state_dict` read it directly.
 * `optimizer.safetensors` holds the optimiser state for --resume. Both carry the step in their metadata.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Optimizer } from '../engine/optimizers.js';
import { Tensor } from '../engine/tensor.js';
import { encodeSafetensors, readSafetensors, type SafeTensor, writeFileAtomic } from '../io/safetensors.js';
import type { BLNet } from './bl-net.js';

export const CHECKPOINT = 'checkpoint.safetensors';
export const OPTIMIZER = 'optimizer.safetensors';

/** [kh, kw, ci, co] -> [co, ci, kh, kw] */
export function hwioToOihw(d: Float32Array, [kh, kw, ci, co]: readonly number[]): Float32Array {
  const out = new Float32Array(d.length);
  for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) {
    out[((o * ci + i) * kh + y) * kw + x] = d[((y * kw + x) * ci + i) * co + o];
  }
  return out;
}

/** [co, ci, kh, kw] -> [kh, kw, ci, co] */
export function oihwToHwio(d: Float32Array, [co, ci, kh, kw]: readonly number[]): Float32Array {
  const out = new Float32Array(d.length);
  for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) {
    out[((y * kw + x) * ci + i) * co + o] = d[((o * ci + i) * kh + y) * kw + x];
  }
  return out;
}

const isConv = (t: Tensor) => t.shape.length === 4;

export async function netStateDict(net: BLNet): Promise<Map<string, SafeTensor>> {
  const out = new Map<string, SafeTensor>();
  for (const [name, p] of net.params) {
    const d = await p.readF32();
    if (isConv(p)) {
      const [kh, kw, ci, co] = p.shape;
      out.set(name, { dtype: 'F32', shape: [co, ci, kh, kw], data: hwioToOihw(d, p.shape) });
    } else {
      out.set(name, { dtype: 'F32', shape: [...p.shape], data: d });
    }
  }
  for (const [n, states] of net.bnStates.entries()) {
    for (const [t, s] of states.entries()) {
      const prefix = `layers.${n}.norm.${t}`;
      out.set(`${prefix}.running_mean`, { dtype: 'F32', shape: [s.channels], data: await s.runningMean.readF32() });
      out.set(`${prefix}.running_var`, { dtype: 'F32', shape: [s.channels], data: await s.runningVar.readF32() });
      const tracked = (await s.numBatchesTracked.read())[0];
      out.set(`${prefix}.num_batches_tracked`, { dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(tracked)) });
    }
  }
  return out;
}

export async function saveCheckpoint(dir: string, net: BLNet, opt: Optimizer | null, meta: Record<string, string>): Promise<void> {
  if (opt) {
    const state = new Map<string, SafeTensor>();
    for (const [name, t] of opt.state()) state.set(name, { dtype: 'F32', shape: [...t.shape], data: await t.readF32() });
    writeFileAtomic(join(dir, OPTIMIZER), encodeSafetensors(state, meta));
  }
  writeFileAtomic(join(dir, CHECKPOINT), encodeSafetensors(await netStateDict(net), meta));
}

function assign(t: Tensor, src: SafeTensor, name: string, file: string): void {
  const expected = isConv(t) ? [t.shape[3], t.shape[2], t.shape[0], t.shape[1]] : [...t.shape];
  if (src.shape.join() !== expected.join()) {
    throw new Error(`${file}: ${name} has shape [${src.shape}], the network expects [${expected}]`);
  }
  t.write(isConv(t) ? oihwToHwio(src.data as Float32Array, src.shape) : (src.data as Float32Array));
}

/** Loads weights (and, if given, optimiser state) into an initialised network; returns the metadata. */
export function loadCheckpoint(dir: string, net: BLNet, opt: Optimizer | null): Record<string, string> {
  const file = join(dir, CHECKPOINT);
  if (!existsSync(file)) throw new Error(`no checkpoint in ${dir} (expected ${CHECKPOINT})`);
  const { tensors, metadata } = readSafetensors(file);
  for (const [name, p] of net.params) {
    const src = tensors.get(name);
    if (!src) throw new Error(`${file}: missing tensor ${name}`);
    assign(p, src, name, file);
  }
  for (const [n, states] of net.bnStates.entries()) {
    for (const [t, s] of states.entries()) {
      const prefix = `layers.${n}.norm.${t}`;
      const m = tensors.get(`${prefix}.running_mean`);
      const v = tensors.get(`${prefix}.running_var`);
      const c = tensors.get(`${prefix}.num_batches_tracked`);
      if (!m || !v || !c) throw new Error(`${file}: missing batch-norm statistics ${prefix}`);
      s.runningMean.write(m.data as Float32Array);
      s.runningVar.write(v.data as Float32Array);
      s.numBatchesTracked.write([Number((c.data as BigInt64Array)[0])]);
    }
  }
  if (opt) {
    const ofile = join(dir, OPTIMIZER);
    if (!existsSync(ofile)) throw new Error(`no optimiser state in ${dir} (expected ${OPTIMIZER})`);
    const o = readSafetensors(ofile);
    if (o.metadata.step !== metadata.step) {
      throw new Error(`${dir}: ${CHECKPOINT} (step ${metadata.step}) and ${OPTIMIZER} (step ${o.metadata.step}) do not match`);
    }
    for (const [name, t] of opt.state()) {
      const src = o.tensors.get(name);
      if (!src) throw new Error(`${ofile}: missing tensor ${name}`);
      t.write(src.data as Float32Array);
    }
  }
  return metadata;
}
