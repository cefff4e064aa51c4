/**
 * Per-kernel GPU time for `bench --profile`, from timestamp queries. Installed as `device.profiler`, it
 * encodes each dispatch of a flush in its own compute pass with begin/end timestamps, resolves the
 * queries into a buffer and copies them to a mapped buffer; collect() reads them after the work is done
 * and sums the time by dispatch label (shader.entry). One pass per dispatch adds a little overhead per
 * dispatch, so profiled calls are run apart from the timed ones. The device must be created with
 * `preciseTimestamps: true` (Dawn otherwise quantises timestamps to ~100 us).
 */
import { encodeCommands, type Command, type Device, type Dispatch } from '../src/engine/device.js';
import type { KernelTimes } from './peers/types.js';

/** WebGPU's maximum queries per set. */
const MAX_QUERIES = 4096;

interface Pending {
  labels: string[];
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  readback: GPUBuffer;
}

export class Profiler {
  private pending: Pending[] = [];
  private readonly gpu: GPUDevice;

  constructor(readonly device: Device) {
    this.gpu = device.device;
  }

  /** Called by Device.flush() in place of its single compute pass. */
  encode(enc: GPUCommandEncoder, commands: Command[]): void {
    // Texture copies run in order but untimed (timestamps are taken around compute passes).
    encodeCommands(enc, commands, (dispatches) => this.encodeDispatches(enc, dispatches));
  }

  private encodeDispatches(enc: GPUCommandEncoder, dispatches: Dispatch[]): void {
    const perSet = MAX_QUERIES / 2;
    for (let start = 0; start < dispatches.length; start += perSet) {
      const chunk = dispatches.slice(start, start + perSet);
      const count = chunk.length * 2;
      const querySet = this.gpu.createQuerySet({ type: 'timestamp', count });
      chunk.forEach((d, i) => {
        const pass = enc.beginComputePass({
          timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
        });
        pass.setPipeline(d.pipeline);
        pass.setBindGroup(0, d.bindGroup);
        pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
        pass.end();
      });
      const bytes = count * 8;
      const resolve = this.gpu.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      const readback = this.gpu.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      enc.resolveQuerySet(querySet, 0, count, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, readback, 0, bytes);
      this.pending.push({ labels: chunk.map((d) => d.label), querySet, resolve, readback });
    }
  }

  /** Waits for the recorded work and returns the summed time per kernel label. */
  async collect(): Promise<Map<string, { ms: number; calls: number }>> {
    await this.device.sync();
    const times = new Map<string, { ms: number; calls: number }>();
    for (const p of this.pending) {
      await p.readback.mapAsync(GPUMapMode.READ);
      const ts = new BigUint64Array(p.readback.getMappedRange().slice(0));
      p.readback.unmap();
      p.labels.forEach((label, i) => {
        const ns = ts[2 * i + 1] > ts[2 * i] ? Number(ts[2 * i + 1] - ts[2 * i]) : 0;
        const e = times.get(label) ?? { ms: 0, calls: 0 };
        e.ms += ns / 1e6;
        e.calls++;
        times.set(label, e);
      });
      this.release(p);
    }
    this.pending = [];
    return times;
  }

  private release(p: Pending): void {
    p.querySet.destroy();
    p.resolve.destroy();
    p.readback.destroy();
  }

  dispose(): void {
    for (const p of this.pending) this.release(p);
    this.pending = [];
  }
}
