/**
 * A GPU tensor: shape, dtype and a buffer from the device's pool. Layout is row-major over `shape`;
 * images are NHWC throughout the engine (see README: channels innermost make the conv's reduction axis
 * contiguous). Reshape makes a view that shares the storage; storage goes back to the pool when the
 * last tensor on it is disposed.
 */
import type { Bindable, Device } from './device.js';
import type { TapeNode } from './tape.js';

/** f16 is reserved: the dtype is carried everywhere so a half-precision path can be added per kernel. */
export type DType = 'f32' | 'i32' | 'u32';
export type TypedArrayOf<D extends DType> = D extends 'f32' ? Float32Array : D extends 'i32' ? Int32Array : Uint32Array;

const BYTES: Record<DType, number> = { f32: 4, i32: 4, u32: 4 };

class Storage {
  refs = 1;
  constructor(
    readonly buffer: GPUBuffer,
    readonly bytes: number,
  ) {}
}

let nextId = 0;

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function checkShape(shape: readonly number[], what = 'shape'): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${what} [${shape.join(', ')}] has a dimension that is not a non-negative integer`);
  }
}

export class Tensor implements Bindable {
  readonly id = nextId++;
  readonly size: number;
  requiresGrad = false;
  /** Gradient accumulated by backward() for leaves that require it. */
  grad: Tensor | null = null;
  /** The tape node that produced this tensor (null for leaves and under noGrad). */
  node: TapeNode | null = null;
  name?: string;
  private storage: Storage | null;

  private constructor(
    readonly device: Device,
    readonly shape: readonly number[],
    readonly dtype: DType,
    storage: Storage,
  ) {
    this.size = shapeSize(shape);
    this.storage = storage;
    const scope = device.scopes[device.scopes.length - 1];
    scope?.add(this);
  }

  /** An uninitialised tensor (contents are whatever the pooled buffer held). */
  static empty(device: Device, shape: readonly number[], dtype: DType = 'f32'): Tensor {
    checkShape(shape);
    const bytes = shapeSize(shape) * BYTES[dtype];
    const lim = device.limits;
    if (bytes > lim.maxStorageBufferBindingSize) {
      throw new Error(`tensor [${shape.join(', ')}] ${dtype} is ${bytes} bytes, over the device's ` +
        `maxStorageBufferBindingSize (${lim.maxStorageBufferBindingSize})`);
    }
    if (bytes > lim.maxBufferSize) {
      throw new Error(`tensor [${shape.join(', ')}] ${dtype} is ${bytes} bytes, over the device's maxBufferSize (${lim.maxBufferSize})`);
    }
    return new Tensor(device, [...shape], dtype, new Storage(device.pool.acquire(bytes), bytes));
  }

  static from(device: Device, data: ArrayLike<number>, shape: readonly number[], dtype: DType = 'f32'): Tensor {
    checkShape(shape);
    if (data.length !== shapeSize(shape)) {
      throw new Error(`Tensor.from: ${data.length} values do not fill shape [${shape.join(', ')}] (${shapeSize(shape)})`);
    }
    const t = Tensor.empty(device, shape, dtype);
    t.write(data);
    return t;
  }

  get disposed(): boolean {
    return this.storage === null;
  }

  get bytes(): number {
    return this.size * BYTES[this.dtype];
  }

  gpuBuffer(): GPUBuffer {
    if (!this.storage) throw new Error(`tensor ${this.describe()} was disposed`);
    return this.storage.buffer;
  }

  describe(): string {
    return `${this.name ?? `#${this.id}`}[${this.shape.join(', ')}]`;
  }

  /** A tensor of another shape over the same storage (no copy). Use kernels/reshape for autograd. */
  view(shape: readonly number[]): Tensor {
    checkShape(shape);
    if (shapeSize(shape) !== this.size) throw new Error(`view: [${this.shape.join(', ')}] cannot become [${shape.join(', ')}]`);
    if (!this.storage) throw new Error(`tensor ${this.describe()} was disposed`);
    this.storage.refs++;
    return new Tensor(this.device, [...shape], this.dtype, this.storage);
  }

  write(data: ArrayLike<number>): void {
    if (data.length !== this.size) throw new Error(`write: ${data.length} values for ${this.describe()}`);
    const arr = this.dtype === 'f32' ? Float32Array.from(data) : this.dtype === 'i32' ? Int32Array.from(data) : Uint32Array.from(data);
    this.device.write(this.gpuBuffer(), arr);
  }

  async read(): Promise<Float32Array | Int32Array | Uint32Array> {
    const buf = await this.device.read(this.gpuBuffer(), this.bytes);
    return this.dtype === 'f32' ? new Float32Array(buf) : this.dtype === 'i32' ? new Int32Array(buf) : new Uint32Array(buf);
  }

  async readF32(): Promise<Float32Array> {
    if (this.dtype !== 'f32') throw new Error(`readF32 on ${this.dtype} tensor ${this.describe()}`);
    return (await this.read()) as Float32Array;
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item() on ${this.describe()}, which has ${this.size} elements`);
    return (await this.read())[0];
  }

  /** Marks a leaf as trainable. */
  requireGrad(on = true): this {
    this.requiresGrad = on;
    return this;
  }

  dispose(): void {
    const s = this.storage;
    if (!s) return;
    this.storage = null;
    if (--s.refs === 0) this.device.pool.release(s.buffer, s.bytes);
  }
}
