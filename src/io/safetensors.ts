/**
 * safetensors (https://github.com/huggingface/safetensors) reader and writer, laid out as the reference
 * implementation writes them: u64 little-endian header length, a compact JSON header (`__metadata__`
 * first, then tensors sorted by name, each {dtype, shape, data_offsets}) padded with spaces to a multiple
 * of 8 bytes, then the tensors' bytes back to back, little-endian, in header order.
 * Writes are atomic: a temporary file, fsync, then rename over the old file.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export type SafeDType = 'F32' | 'I32' | 'I64';
export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array;
}

const ITEM: Record<SafeDType, number> = { F32: 4, I32: 4, I64: 8 };

export function encodeSafetensors(tensors: Map<string, SafeTensor>, metadata: Record<string, string> = {}): Buffer {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`safetensors: ${name} has ${t.data.length} values for shape [${t.shape}]`);
    const bytes = count * ITEM[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const pad = (8 - ((8 + Buffer.byteLength(json)) % 8)) % 8;
  json += ' '.repeat(pad);
  const head = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + head.length + offset);
  out.writeBigUInt64LE(BigInt(head.length), 0);
  head.copy(out, 8);
  let at = 8 + head.length;
  for (const name of names) {
    const d = tensors.get(name)!.data;
    Buffer.from(d.buffer, d.byteOffset, d.byteLength).copy(out, at);
    at += d.byteLength;
  }
  return out;
}

export function decodeSafetensors(buf: Buffer, what = 'safetensors'): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  if (buf.length < 8) throw new Error(`${what}: truncated (${buf.length} bytes)`);
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length) throw new Error(`${what}: truncated header (needs ${n} bytes, file has ${buf.length - 8})`);
  let header: Record<string, { dtype: SafeDType; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch {
    throw new Error(`${what}: header is not valid JSON`);
  }
  const metadata = (header.__metadata__ ?? {}) as unknown as Record<string, string>;
  delete header.__metadata__;
  const base = 8 + n;
  const tensors = new Map<string, SafeTensor>();
  for (const [name, h] of Object.entries(header)) {
    const [b, e] = h.data_offsets;
    if (!(h.dtype in ITEM)) throw new Error(`${what}: ${name} has unsupported dtype ${h.dtype}`);
    if (base + e > buf.length) throw new Error(`${what}: ${name} runs past the end of the file (truncated?)`);
    const bytes = new Uint8Array(buf.subarray(base + b, base + e)).slice().buffer;
    const data = h.dtype === 'F32' ? new Float32Array(bytes) : h.dtype === 'I32' ? new Int32Array(bytes) : new BigInt64Array(bytes);
    tensors.set(name, { dtype: h.dtype, shape: h.shape, data });
  }
  return { tensors, metadata };
}

/** Writes `data` to `path` atomically: the old file stays whole until the new one is complete on disk. */
export function writeFileAtomic(path: string, data: Buffer | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const dfd = openSync(dirname(path), 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    // Directories cannot be fsynced on every platform; the rename itself is atomic.
  }
}

export function readSafetensors(path: string) {
  return decodeSafetensors(readFileSync(path), path);
}
