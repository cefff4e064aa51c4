/**
 * Reuses GPU buffers by size class. Tensors take buffers from the pool and give them back on dispose;
 * a freed buffer is handed to the next request of the same class, so a training loop allocates nothing
 * after its first step. Sizes are rounded up to a quarter-octave class (at most ~19% slack).
 */
import './webgpu.js';

export const TENSOR_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 256) * 256);
  if (b <= 4096) return b;
  const k = Math.ceil(4 * Math.log2(b));
  const cls = Math.ceil(2 ** (k / 4) / 256) * 256;
  return cls >= b ? cls : b;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  /** Bytes held by live tensors (requested sizes, not size classes). */
  liveBytes = 0;
  /** Bytes of all buffers the pool has created and not destroyed (live + free). */
  allocatedBytes = 0;
  liveBuffers = 0;
  /** While set, released buffers are parked here instead of the free lists (see capture.ts). */
  captureSink: { released: GPUBuffer[] } | null = null;

  constructor(private readonly device: GPUDevice) {}

  acquire(bytes: number, label?: string): GPUBuffer {
    const cls = sizeClass(bytes);
    const list = this.free.get(cls);
    let buf = list?.pop();
    if (!buf) {
      buf = this.device.createBuffer({ size: cls, usage: TENSOR_USAGE, label });
      this.allocatedBytes += cls;
    }
    this.liveBytes += bytes;
    this.liveBuffers++;
    return buf;
  }

  release(buf: GPUBuffer, bytes: number): void {
    this.liveBytes -= bytes;
    this.liveBuffers--;
    if (this.captureSink) {
      this.captureSink.released.push(buf);
      return;
    }
    this.recycle(buf);
  }

  /** Puts an unused buffer back on its free list. */
  recycle(buf: GPUBuffer): void {
    const list = this.free.get(buf.size);
    if (list) list.push(buf);
    else this.free.set(buf.size, [buf]);
  }

  /** Destroys every free buffer (live ones stay). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const b of list) {
        this.allocatedBytes -= b.size;
        b.destroy();
      }
    }
    this.free.clear();
  }
}
