/**
 * The Dawn device: owns the WebGPU instance for the device's whole life (Dawn crashes if the object
 * returned by `create()` is collected while an adapter or device from it is in use), the buffer pool,
 * the pipeline cache and the queue of recorded dispatches.
 *
 * Dispatches are recorded, not submitted one by one: they are encoded into one compute pass per flush
 * (a dispatch inside a pass costs 13-40 us on a software adapter, mostly llvmpipe handing it to its worker
 * threads and waiting for them; a submit 30-60 us). Host writes and
 * reads flush first, so queue order always equals program order.
 */
import { availableParallelism } from 'node:os';
import { create, paceDawnEvents } from './webgpu.js';
import { BufferPool } from './buffer-pool.js';
import { type Kernel, kernelKey, specialise } from './shaders.js';

export interface DeviceOptions {
  /** Adapter name (substring Dawn matches against adapter names); env UNROLL_ADAPTER. */
  adapter?: string;
  /** Dawn backend: vulkan, metal, d3d12, opengl, null; env UNROLL_BACKEND. */
  backend?: string;
  /** Drop Dawn's bounds clamping on buffer accesses (every kernel checks its own bounds); env UNROLL_ROBUSTNESS=off. */
  disableRobustness?: boolean;
  /** Let timestamp queries report unquantised times (for --profile). */
  preciseTimestamps?: boolean;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  device: string;
  backend: string;
  isFallbackAdapter: boolean;
  features: string[];
  limits: Record<string, number>;
}

/** The limits an engine user cares about, in the order `info` prints them. */
export const KEY_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
] as const;

const WANTED_FEATURES: GPUFeatureName[] = ['timestamp-query', 'shader-f16', 'subgroups' as GPUFeatureName];

/** Anything that can be bound as a storage buffer. */
export interface Bindable {
  gpuBuffer(): GPUBuffer;
}

/** Uniform parameters, packed in declaration order as 4-byte scalars. */
export class Params {
  private readonly words: number[] = [];
  private readonly kinds: ('u' | 'i' | 'f')[] = [];
  u(...xs: number[]): this {
    for (const x of xs) {
      if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new Error(`Params.u: ${x} is not a u32`);
      this.words.push(x), this.kinds.push('u');
    }
    return this;
  }
  i(...xs: number[]): this {
    for (const x of xs) this.words.push(x | 0), this.kinds.push('i');
    return this;
  }
  f(...xs: number[]): this {
    for (const x of xs) this.words.push(x), this.kinds.push('f');
    return this;
  }
  bytes(): Uint8Array {
    const n = Math.max(4, Math.ceil(this.words.length / 4) * 4);
    const buf = new ArrayBuffer(n * 4);
    const u = new Uint32Array(buf), i = new Int32Array(buf), f = new Float32Array(buf);
    this.words.forEach((w, k) => {
      if (this.kinds[k] === 'u') u[k] = w;
      else if (this.kinds[k] === 'i') i[k] = w;
      else f[k] = w;
    });
    return new Uint8Array(buf);
  }
}
export const params = () => new Params();

export type Binding = Bindable | GPUBuffer | Params | { textureView: GPUTextureView };

export interface Dispatch {
  label: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
}

/**
 * A buffer -> texture copy in the command stream (texture staging, src/kernels/texture-stage.ts): the first
 * `texels` rgba32float texels of `buffer`, row after row into a texture 2^shift texels wide.
 */
export interface TextureCopy {
  label: string;
  copy: { buffer: GPUBuffer; texture: GPUTexture; texels: number; shift: number };
}

/** One recorded command: a compute dispatch or a texture copy, run in the order recorded. */
export type Command = Dispatch | TextureCopy;

/**
 * Encodes commands in order: each run of dispatches between copies through `encodeRun` (one compute pass, or
 * the profiler's timed passes), each copy between them.
 */
export function encodeCommands(enc: GPUCommandEncoder, commands: readonly Command[], encodeRun: (dispatches: Dispatch[]) => void): void {
  let run: Dispatch[] = [];
  for (const c of commands) {
    if (!('copy' in c)) {
      run.push(c);
      continue;
    }
    if (run.length) encodeRun(run);
    run = [];
    encodeCopy(enc, c);
  }
  if (run.length) encodeRun(run);
}

/** Encodes a TextureCopy: the whole rows in one copy, the last partial row in a second. */
function encodeCopy(enc: GPUCommandEncoder, { copy: c }: TextureCopy): void {
  const width = 2 ** c.shift;
  const rows = Math.floor(c.texels / width);
  const rest = c.texels - rows * width;
  if (rows > 0) enc.copyBufferToTexture({ buffer: c.buffer, bytesPerRow: width * 16, rowsPerImage: rows }, { texture: c.texture }, [width, rows]);
  if (rest > 0) {
    enc.copyBufferToTexture({ buffer: c.buffer, offset: rows * width * 16, bytesPerRow: width * 16 }, { texture: c.texture, origin: [0, rows] }, [rest, 1]);
  }
}

/** Receives every command while a capture (capture.ts) is open. */
export interface DispatchSink {
  dispatches: Command[];
}

export class NoAdapterError extends Error {}

export class Device {
  readonly pool: BufferPool;
  /** Commands recorded and not yet submitted. */
  private pending: Command[] = [];
  private pipelines = new Map<string, GPUComputePipeline>();
  private uniforms = new Map<string, GPUBuffer>();
  private staging: GPUBuffer[] = [];
  private firstError: string | null = null;
  private lost = false;
  private destroyed = false;
  /** Open capture, if any (capture.ts). */
  sink: DispatchSink | null = null;
  /** Per-dispatch GPU timing hook (bench --profile). */
  profiler: { encode(pass: GPUCommandEncoder, commands: Command[]): void } | null = null;
  /** Counters for tests and reports. */
  stats = { dispatches: 0, submits: 0, pipelines: 0 };
  /** Autograd state, owned by tape.ts. */
  gradEnabled = true;
  /** Tensors created inside open scopes (tape.ts), innermost last. */
  scopes: Set<{ dispose(): void; readonly disposed: boolean }>[] = [];

  private constructor(
    /** The Dawn instance: held here so it lives as long as the device. */
    readonly gpu: GPU,
    readonly adapter: GPUAdapter,
    readonly device: GPUDevice,
    readonly info: AdapterSummary,
  ) {
    this.pool = new BufferPool(device);
    device.addEventListener('uncapturederror', (ev) => {
      const msg = (ev as GPUUncapturedErrorEvent).error.message;
      if (this.firstError === null) this.firstError = msg;
      if (process.env.UNROLL_DEBUG) console.error(`[unroll] GPU error: ${msg}`);
    });
    void device.lost.then((info) => {
      this.lost = true;
      if (!this.destroyed) {
        console.error(`[unroll] the GPU device was lost (${info.reason}): ${info.message}. ` +
          'Its tensors are gone; create a new Device. On a software adapter this usually means a shader ran too long.');
      }
    });
  }

  static async create(opts: DeviceOptions = {}): Promise<Device> {
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    const adapterName = opts.adapter ?? process.env.UNROLL_ADAPTER;
    const backend = opts.backend ?? process.env.UNROLL_BACKEND;
    const disableRobustness = opts.disableRobustness ?? process.env.UNROLL_ROBUSTNESS === 'off';
    const dawn: string[] = [];
    if (backend) dawn.push(`backend=${backend}`);
    if (adapterName) dawn.push(`adapter=${adapterName}`);
    const enable = ['allow_unsafe_apis'];
    if (disableRobustness) enable.push('disable_robustness');
    const disable: string[] = [];
    if (opts.preciseTimestamps) disable.push('timestamp_quantization');
    dawn.push(`enable-dawn-features=${enable.join(',')}`);
    if (disable.length) dawn.push(`disable-dawn-features=${disable.join(',')}`);

    const gpu = create(dawn);
    let adapter: GPUAdapter | null;
    try {
      adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    } catch (e) {
      throw new NoAdapterError(`no WebGPU adapter matches ${adapterName ? `--adapter "${adapterName}"` : ''}` +
        `${backend ? ` --backend ${backend}` : ''}: ${(e as Error).message}`);
    }
    if (!adapter) {
      throw new NoAdapterError(
        'no WebGPU adapter answered. On a machine without a GPU unroll uses Mesa\'s software Vulkan driver ' +
          '(lavapipe, Mesa >= 24); run `node scripts/ensure-adapter.mjs` (as root on Debian it installs it) ' +
          'or install your GPU\'s Vulkan driver.' + (backend ? ` (backend asked: ${backend})` : ''),
      );
    }
    const limits: Record<string, number> = {};
    for (const k in adapter.limits) {
      const v = (adapter.limits as unknown as Record<string, unknown>)[k];
      if (typeof v === 'number') limits[k] = v;
    }
    const features = WANTED_FEATURES.filter((f) => adapter.features.has(f));
    const device = await adapter.requestDevice({
      requiredFeatures: features,
      // Ask for what the adapter can do, not WebGPU's portable defaults (128 MiB bindings, 16 KiB shared memory).
      requiredLimits: Object.fromEntries(
        Object.entries(limits).filter(([k]) => k.startsWith('max') || k.startsWith('min')),
      ),
    });
    const i = adapter.info;
    const info: AdapterSummary = {
      vendor: i.vendor,
      architecture: i.architecture,
      description: i.description,
      device: i.device,
      backend: backend ?? 'default',
      isFallbackAdapter: Boolean((i as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter),
      features: [...adapter.features].map(String).sort(),
      limits,
    };
    const dev = new Device(gpu, adapter, device, info);
    // A software adapter runs shaders on the CPU cores that a busy-waiting host thread would take from it.
    if (dev.isSoftware) paceDawnEvents(true);
    return dev;
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /** A CPU-emulated adapter (llvmpipe/lavapipe, SwiftShader): kernels pick CPU-friendly workgroup shapes. */
  get isSoftware(): boolean {
    return this.info.architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(this.info.description);
  }

  /**
   * The threads a software adapter runs workgroups on (llvmpipe: LP_NUM_THREADS, else one per CPU), over which a
   * dispatch of few workgroups should divide evenly; 1 on a GPU (no balance constraint at this granularity).
   */
  get shaderThreads(): number {
    if (!this.isSoftware) return 1;
    // LP_NUM_THREADS=0 runs shaders on the submitting thread: one thread.
    const set = Number.parseInt(process.env.LP_NUM_THREADS ?? '', 10);
    return Number.isFinite(set) ? Math.max(1, set) : availableParallelism();
  }

  /** How evenly `groups` equal workgroups divide over the shader threads: 1 when they do, 0.75 for 3 on 2. */
  evenness(groups: number): number {
    const p = this.shaderThreads;
    return groups / (p * Math.ceil(groups / p));
  }

  hasFeature(f: string): boolean {
    return this.device.features.has(f as GPUFeatureName);
  }

  pipeline(k: Kernel): GPUComputePipeline {
    const key = kernelKey(k);
    let p = this.pipelines.get(key);
    if (!p) {
      const { code, constants } = specialise(k);
      const label = `${k.shader}.${k.entry}`;
      const module = this.device.createShaderModule({ code, label });
      p = this.device.createComputePipeline({
        label,
        layout: 'auto',
        compute: { module, entryPoint: k.entry, constants },
      });
      this.pipelines.set(key, p);
      this.stats.pipelines++;
    }
    return p;
  }

  /** A uniform buffer with these bytes; identical parameters share one buffer (and stay valid for replay). */
  private uniform(p: Params): GPUBuffer {
    const bytes = p.bytes();
    const key = Buffer.from(bytes).toString('base64');
    let buf = this.uniforms.get(key);
    if (!buf) {
      buf = this.device.createBuffer({ size: bytes.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      this.device.queue.writeBuffer(buf, 0, bytes);
      this.uniforms.set(key, buf);
    }
    return buf;
  }

  /**
   * The one dispatch helper: binds `bindings` (buffers, tensors, parameters, texture views) to @group(0)
   * @binding(0..n-1) in order and launches enough workgroups to cover `threads`. A 1-D grid wider than the
   * per-dimension limit folds into y; kernels index with `gid.x + gid.y * nwg.x * WG_X`.
   */
  run(k: Kernel, bindings: Binding[], threads: [number, number?, number?]): void {
    this.assertUsable();
    const pipeline = this.pipeline(k);
    const layout = pipeline.getBindGroupLayout(0);
    const entries: GPUBindGroupEntry[] = bindings.map((b, binding) => {
      if ('textureView' in b) return { binding, resource: b.textureView };
      return { binding, resource: { buffer: b instanceof Params ? this.uniform(b) : 'gpuBuffer' in b ? b.gpuBuffer() : b } };
    });
    const label = `${k.shader}.${k.entry}`;
    const bindGroup = this.device.createBindGroup({ layout, entries, label });
    const wg = [k.workgroup[0], k.workgroup[1] ?? 1, k.workgroup[2] ?? 1];
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    let gx = Math.ceil(threads[0] / wg[0]);
    let gy = Math.ceil((threads[1] ?? 1) / wg[1]);
    const gz = Math.ceil((threads[2] ?? 1) / wg[2]);
    if (gx > max) {
      if (gy !== 1) throw new Error(`${label}: grid ${gx}x${gy} workgroups exceeds ${max} per dimension`);
      gy = Math.ceil(gx / max);
      gx = Math.ceil(gx / gy);
    }
    if (gx === 0 || gy === 0 || gz === 0) return;
    if (gy > max || gz > max) throw new Error(`${label}: grid exceeds ${max} workgroups per dimension`);
    const d: Dispatch = { label, pipeline, bindGroup, workgroups: [gx, gy, gz] };
    this.pending.push(d);
    this.sink?.dispatches.push(d);
    this.stats.dispatches++;
    if (this.pending.length >= 2048 && !this.sink) this.flush();
  }

  /** Queues a TextureCopy (see there), in order with the dispatches around it. */
  copyToTexture(buffer: GPUBuffer, texture: GPUTexture, texels: number, shift: number): void {
    this.assertUsable();
    const c: TextureCopy = { label: 'copy to texture', copy: { buffer, texture, texels, shift } };
    this.pending.push(c);
    this.sink?.dispatches.push(c);
  }

  /** Re-enqueues recorded commands (capture.ts replay). */
  enqueue(ds: readonly Command[]): void {
    this.assertUsable();
    for (const d of ds) {
      this.pending.push(d);
      if (!('copy' in d)) this.stats.dispatches++;
    }
  }

  /** Submits every recorded command: each run of dispatches in one compute pass, copies between them. */
  flush(): void {
    if (this.pending.length === 0) return;
    const ds = this.pending;
    this.pending = [];
    const enc = this.device.createCommandEncoder();
    if (this.profiler) this.profiler.encode(enc, ds);
    else {
      encodeCommands(enc, ds, (run) => {
        const pass = enc.beginComputePass();
        for (const d of run) {
          pass.setPipeline(d.pipeline);
          pass.setBindGroup(0, d.bindGroup);
          pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
        }
        pass.end();
      });
    }
    this.device.queue.submit([enc.finish()]);
    this.stats.submits++;
  }

  /** Host -> GPU. Flushes first: a recorded dispatch that reads the old contents must run before this write. */
  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    this.assertUsable();
    if (this.sink) throw new Error('host writes inside a capture are not replayed; write inputs before replay()');
    this.flush();
    this.device.queue.writeBuffer(buffer, offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** GPU -> host: submits what is recorded, copies `bytes` from `buffer` and waits for them. */
  async read(buffer: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    this.assertUsable();
    if (this.sink) throw new Error('reading a tensor inside a capture would not be replayed');
    this.flush();
    const size = Math.ceil(bytes / 4) * 4;
    const idx = this.staging.findIndex((s) => s.size >= size && s.size <= size * 4 + 4096);
    const staging = idx >= 0 ? this.staging.splice(idx, 1)[0] : this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, offset, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    this.stats.submits++;
    await staging.mapAsync(GPUMapMode.READ, 0, size);
    const out = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    this.staging.push(staging);
    this.throwIfError();
    return out;
  }

  /** Waits until the GPU has finished everything recorded so far; throws the first GPU error seen. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.throwIfError();
  }

  private throwIfError(): void {
    if (this.firstError !== null) {
      const e = this.firstError;
      this.firstError = null;
      throw new Error(`GPU validation error: ${e}`);
    }
  }

  private assertUsable(): void {
    if (this.destroyed) throw new Error('the device was destroyed');
    if (this.lost) throw new Error('the GPU device was lost; create a new Device');
  }

  destroy(): void {
    if (this.destroyed) return;
    this.pending = [];
    this.destroyed = true;
    this.pool.trim();
    this.device.destroy();
  }
}
