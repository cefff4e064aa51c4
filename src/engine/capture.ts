/**
 * Capture and replay. A static-shape step (forward, loss, backward, optimiser update) runs once under
 * capture: it executes normally and every dispatch it makes (pipeline, bind group, grid) and texture copy is recorded.
 * replay() re-enqueues the recording in one pass without running any JavaScript of the ops, autograd or
 * bind-group creation. Buffers that the step frees while capturing stay owned by the graph (they hold
 * intermediates the replay writes again); tensors it returns stay the caller's and must outlive the graph.
 * Inputs change between replays by writing into tensors that existed before capture.
 */
import type { Command, Device } from './device.js';

export class CapturedGraph {
  private disposed = false;
  constructor(
    readonly device: Device,
    readonly dispatches: readonly Command[],
    private readonly retained: GPUBuffer[],
  ) {}

  replay(): void {
    if (this.disposed) throw new Error('replay of a disposed graph');
    this.device.enqueue(this.dispatches);
  }

  /** Bytes of intermediates the graph keeps for its replays. */
  get retainedBytes(): number {
    return this.retained.reduce((a, b) => a + b.size, 0);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of this.retained) this.device.pool.recycle(b);
    this.retained.length = 0;
  }
}

export function capture<T>(device: Device, fn: () => T): { result: T; graph: CapturedGraph } {
  if (device.sink) throw new Error('captures do not nest');
  device.flush();
  const sink = { dispatches: [] as Command[] };
  const parked = { released: [] as GPUBuffer[] };
  device.sink = sink;
  device.pool.captureSink = parked;
  try {
    const result = fn();
    if (result instanceof Promise) throw new Error('capture(fn): fn must be synchronous (no reads inside a captured step)');
    return { result, graph: new CapturedGraph(device, sink.dispatches, parked.released) };
  } finally {
    device.sink = null;
    device.pool.captureSink = null;
  }
}
