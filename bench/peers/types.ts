/**
 * What a peer offers the harness. Each builder returns a Runner for one case at one batch size, or
 * Unavailable with the reason it cannot (a missing kernel, a suite the library cannot express, unroll
 * code not written yet). The harness never fakes a figure for a peer that cannot run.
 */
import type { CellCase, CellPass, ConvCase, ConvOp, NetConfig } from '../config.js';
import type { BLWeights, CellData, ConvData } from '../data.js';

export const PEER_NAMES = ['unroll', 'tfjs-webgpu', 'tfjs-wasm', 'tfjs-cpu', 'gpu.js'] as const;
export type PeerName = (typeof PEER_NAMES)[number];
/** `roofline` is the adapter's own bound, reported as a peer in every suite's rows. */
export type RowPeer = PeerName | 'roofline';

export class Unavailable {
  constructor(readonly reason: string) {}
}

export interface Runner {
  /**
   * `calls` (default 1) calls of the measured work back to back; resolves only when all of it is complete
   * (GPU queue drained).
   */
  run(calls?: number): Promise<void>;
  /**
   * The values the agreement check compares, computed on the runner's initial state (a training
   * runner returns the loss, logits and gradients at the initial weights without updating them).
   * Called before any run().
   */
  outputs(): Promise<Record<string, Float32Array>>;
  dispose(): void | Promise<void>;
}

export type Built = Runner | Unavailable;

export interface TrainInputs {
  weights: BLWeights;
  /** NHWC [batch, size, size, channels] */
  images: Float32Array;
  labels: Int32Array;
}

export interface RiseInputs {
  weights: BLWeights;
  /** One image [1, size, size, channels]. */
  image: Float32Array;
  /** [batch, size, size, 1] */
  masks: Float32Array;
  target: number;
}

/** Per-kernel GPU time (bench --profile): label -> total ms and call count over the profiled calls, and their wall time. */
export interface KernelTimes {
  kernels: Map<string, { ms: number; calls: number }>;
  wallMs: number;
}

export interface Peer {
  readonly name: PeerName;
  /** Backend or mode and adapter it runs on, for the report. */
  readonly description: string;
  readonly versions: Record<string, string>;
  conv(c: ConvCase, op: ConvOp, batch: number, data: ConvData): Promise<Built>;
  cell(c: CellCase, pass: CellPass, batch: number, data: CellData): Promise<Built>;
  /** One BPTT training step: forward through cfg.steps steps, loss every step, backward, Adam. */
  trainStep(cfg: NetConfig, batch: number, inputs: TrainInputs): Promise<Built>;
  /** Forward through T steps (readout every step), no gradients. */
  inference(cfg: NetConfig, T: number, batch: number, inputs: TrainInputs): Promise<Built>;
  /** RISE: mask one image `batch` ways, forward through cfg.steps steps, accumulate per-step saliency of the target class. */
  rise(cfg: NetConfig, batch: number, inputs: RiseInputs): Promise<Built>;
  /** Per-kernel GPU times of `calls` calls of a runner (peers with timestamp queries only). */
  profile?(runner: Runner, calls: number): Promise<KernelTimes | Unavailable>;
  /** Frees everything, device included, so the next peer has the cores to itself. */
  dispose(): Promise<void>;
}

/** The reason the wasm backend gives for every suite that needs a conv's weight gradient. */
export const NO_WGRAD = "no Conv2DBackpropFilter kernel in tfjs's wasm backend";
