/**
 * `unroll bench`: the same work done by unroll and by the libraries a JavaScript user would pick
 * instead, in one process on one machine, after checking that they compute the same thing.
 *
 * The run goes in rounds, one suite each (conv, cell, inference, rise, train-step); in a round the peers run
 * one after another (each destroys its device before the next starts, so none competes for the cores):
 * unroll first, then tfjs-cpu, tfjs-wasm, tfjs-webgpu, gpu.js. For every case each peer
 *   1. builds it at the check batch and returns its outputs (and gradients); the first peer to do so is
 *      the case's reference (unroll where it runs), later peers are compared with it;
 *   2. times one call there, and picks the batch to time: the full batch unless one call would exceed
 *      the per-call target (slow peers then run a smaller power-of-two batch, reported as such);
 *   3. runs warm-up calls, then up to `runs` timed calls within the per-measurement budget.
 * The adapter's roofline (FMA peak, copy bandwidth) is measured first on unroll's device, and the FMA peak
 * again at each later round (the machine's speed over the run).
 */
import { type CellPass, INFERENCE_STEPS, type NetConfig, cellCases, cellFlops, convCases, convFlops, forwardFlopsPerImage, layerShapes, riseFlopsPerImage, trainFlopsPerImage, validateConfig } from './config.js';
import { RISE_TARGET, blWeights, cellData, convData, images, labels, riseMasks } from './data.js';
import { compare, describeAgreement } from './agree.js';
import { type KernelProfile, type Report, type Row, SPEED_DRIFT, SUITES, type SuiteName, cpuTicks, machine, printProfile, printTable, printWork, stealFraction } from './report.js';
import { type Roofline, fmaPeak, measureRoofline } from './roofline.js';
import { callModel, fitBatch, measure, quantile, type Timing } from './timing.js';
import type { DawnFlags } from './peers/dawn.js';
import { type Built, PEER_NAMES, type Peer, type PeerName, type Runner, Unavailable } from './peers/types.js';
import type { DeviceOptions } from '../src/engine/device.js';

export interface BenchOptions {
  cfg: NetConfig;
  /** Name of the preset the config came from, for the report. */
  preset?: string;
  suites: SuiteName[];
  peers: PeerName[];
  /** Also measure and report the adapter's roofline. */
  roofline: boolean;
  runs: number;
  warmup: number;
  /** Timed runs stop once their total would pass this (at least 3 run). */
  budgetMs: number;
  /** A peer whose call at the full batch would take longer is timed at a smaller batch. */
  callTargetMs: number;
  /** Batch of the agreement check. */
  checkBatch: number;
  /** A case whose agreement-check call takes longer is reported from that one call, not timed. */
  giveUpMs: number;
  /** Cases not started by then are skipped (the whole run's wall-clock limit). */
  timeLimitMs: number;
  profile: boolean;
  device: DeviceOptions & DawnFlags;
  log?: (s: string) => void;
  /** The FMA-peak measurement (roofline.ts); tests replace it to make the machine's speed drift on cue. */
  fmaPeak?: typeof fmaPeak;
}

type Metric = 'ms_per_call' | 'images_per_second' | 'masked_forwards_per_second';

interface BenchCase {
  suite: SuiteName;
  name: string;
  fullBatch: number;
  metric: Metric;
  /** FLOPs of one call at batch b. */
  flops(b: number): number;
  work: { flops: number; per: string };
  build(peer: Peer, b: number): Promise<Built>;
}

/** Generated inputs, kept while they are small, so every peer gets the very same arrays. */
class DataCache {
  private m = new Map<string, unknown>();
  private bytes = 0;
  get<T extends object>(key: string, make: () => T): T {
    let v = this.m.get(key) as T | undefined;
    if (!v) {
      v = make();
      const size = Object.values(v).reduce((a: number, x) => a + ((x as ArrayBufferView)?.byteLength ?? 0), 0);
      if (this.bytes + size > 512 << 20) this.m.clear(), (this.bytes = 0);
      this.m.set(key, v);
      this.bytes += size;
    }
    return v;
  }
}

export function benchCases(cfg: NetConfig, suites: SuiteName[]): BenchCase[] {
  const cache = new DataCache();
  const weights = blWeights(cfg);
  const cases: BenchCase[] = [];
  const T = cfg.steps;
  const train = (b: number) => ({ weights, images: cache.get(`images.${b}`, () => images(cfg, b)) as Float32Array, labels: cache.get(`labels.${b}`, () => labels(cfg, b)) as Int32Array });
  if (suites.includes('conv')) {
    for (const c of convCases(cfg)) {
      for (const op of c.ops) {
        const per = convFlops(1, c.res, c.inC, c.outC);
        cases.push({
          suite: 'conv', name: `${c.name} ${op}`, fullBatch: cfg.batch, metric: 'ms_per_call',
          flops: (b) => b * per, work: { flops: cfg.batch * per, per: `call (batch ${cfg.batch})` },
          build: (peer, b) => peer.conv(c, op, b, cache.get(`conv.${c.name}.${b}`, () => convData(c.res, c.inC, c.outC, b))),
        });
      }
    }
  }
  if (suites.includes('cell')) {
    for (const c of cellCases(cfg)) {
      for (const pass of ['forward', 'forward+backward'] as CellPass[]) {
        cases.push({
          suite: 'cell', name: `${c.name} ${pass}`, fullBatch: cfg.batch, metric: 'ms_per_call',
          flops: (b) => cellFlops(b, c.layer, pass), work: { flops: cellFlops(cfg.batch, c.layer, pass), per: `call (batch ${cfg.batch})` },
          build: (peer, b) => peer.cell(c, pass, b, cache.get(`cell.${c.name}.${b}`, () => cellData(c.layer, b))),
        });
      }
    }
  }
  if (suites.includes('train-step')) {
    const per = trainFlopsPerImage(cfg, T);
    cases.push({
      suite: 'train-step', name: `batch ${cfg.batch}, T=${T}, Adam`, fullBatch: cfg.batch, metric: 'images_per_second',
      flops: (b) => b * per, work: { flops: per, per: 'image' },
      build: (peer, b) => peer.trainStep(cfg, b, train(b)),
    });
  }
  if (suites.includes('inference')) {
    for (const t of INFERENCE_STEPS) {
      const per = forwardFlopsPerImage(cfg, t);
      cases.push({
        suite: 'inference', name: `T=${t}`, fullBatch: cfg.batch, metric: 'images_per_second',
        flops: (b) => b * per, work: { flops: per, per: 'image' },
        build: (peer, b) => peer.inference(cfg, t, b, train(b)),
      });
    }
  }
  if (suites.includes('rise')) {
    const per = riseFlopsPerImage(cfg, T);
    cases.push({
      suite: 'rise', name: `T=${T}, ${cfg.batch} masks per call`, fullBatch: cfg.batch, metric: 'masked_forwards_per_second',
      flops: (b) => b * per, work: { flops: per, per: 'masked image' },
      build: (peer, b) => peer.rise(cfg, b, {
        weights, image: cache.get('rise.image', () => images(cfg, 1)),
        masks: cache.get(`rise.masks.${b}`, () => riseMasks(cfg, b)), target: RISE_TARGET,
      }),
    });
  }
  return cases;
}

/** Relative shares of the run's time limit: the CPU and tfjs-webgpu peers are the slow ones here. */
const TIME_WEIGHT: Record<PeerName, number> = { unroll: 2, 'tfjs-cpu': 3, 'tfjs-wasm': 1, 'tfjs-webgpu': 3, 'gpu.js': 1 };
/** Relative time of each suite (its cases and their builds), for the same shares. */
const SUITE_WEIGHT: Record<SuiteName, number> = { 'train-step': 4, inference: 4, rise: 1, cell: 5, conv: 6 };
const turnWeight = (peer: PeerName, suite: SuiteName) => TIME_WEIGHT[peer] * SUITE_WEIGHT[suite];

/** A timed run repeats a fast call until it lasts this long (at most MAX_CALLS_PER_RUN calls). */
const MIN_RUN_MS = 25;
const MAX_CALLS_PER_RUN = 64;

/** The timing of one call from runs of `calls` calls each. */
function perCall(t: Timing, calls: number): Timing {
  return { ...t, medianMs: t.medianMs / calls, minMs: t.minMs / calls, maxMs: t.maxMs / calls, q1Ms: t.q1Ms / calls, q3Ms: t.q3Ms / calls };
}

/**
 * Suites run as rounds in this order (rows print in SUITES order): the single ops first, so that before a
 * peer's whole-network cases (whose one unwarmed check call can take an hour on a CPU peer at paper shapes)
 * its slowest rate in the run says how long that call would take.
 */
const RUN_ORDER: SuiteName[] = ['conv', 'cell', 'inference', 'rise', 'train-step'];

const UNIT: Record<Metric, string> = { ms_per_call: 'ms', images_per_second: 'images/s', masked_forwards_per_second: 'masked forwards/s' };

async function openPeer(name: PeerName, opts: BenchOptions): Promise<Peer | Unavailable> {
  try {
    switch (name) {
      case 'unroll': {
        const { openUnroll } = await import('./peers/unroll.js');
        return await openUnroll({ ...opts.device, preciseTimestamps: opts.profile || opts.device.preciseTimestamps });
      }
      case 'tfjs-cpu':
      case 'tfjs-wasm':
      case 'tfjs-webgpu': {
        const { openTfjs } = await import('./peers/tfjs.js');
        return await openTfjs(name.slice(5) as 'cpu' | 'wasm' | 'webgpu', opts.device);
      }
      case 'gpu.js': {
        const { openGpujs } = await import('./peers/gpujs.js');
        return await openGpujs(opts.device);
      }
    }
  } catch (e) {
    return new Unavailable(`does not start: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** Order peers so unroll (the reference where it runs) comes first, then tfjs-cpu (the reference otherwise). */
export function peerOrder(peers: PeerName[]): PeerName[] {
  const order: PeerName[] = ['unroll', 'tfjs-cpu', 'tfjs-wasm', 'tfjs-webgpu', 'gpu.js'];
  return order.filter((p) => peers.includes(p));
}

export async function runBench(opts: BenchOptions): Promise<Report> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const t0 = performance.now();
  const ticks0 = cpuTicks();
  const deadline = t0 + opts.timeLimitMs;
  const peak = opts.fmaPeak ?? fmaPeak;
  validateConfig(opts.cfg);
  const cfg = opts.cfg;
  const report: Report = {
    date: new Date().toISOString(),
    machine: machine(),
    adapter: null,
    versions: {},
    config: { preset: opts.preset ?? null, ...cfg, layers: layerShapes(cfg) },
    settings: {
      runs: opts.runs, warmup: opts.warmup, budgetSeconds: opts.budgetMs / 1e3, callTargetMs: opts.callTargetMs,
      checkBatch: opts.checkBatch, giveUpSeconds: opts.giveUpMs / 1e3, timeLimitMinutes: opts.timeLimitMs / 60e3, suites: opts.suites, peers: opts.peers, profile: opts.profile,
    },
    roofline: null,
    speedByRound: [],
    speedByTurn: [],
    peers: {},
    work: [],
    rows: [],
    profiles: [],
    notes: [],
  };
  const cases = benchCases(cfg, opts.suites);
  for (const c of cases) report.work.push({ suite: c.suite, case: c.name, ...c.work });
  const refs = new Map<string, { peer: PeerName; outputs: Record<string, Float32Array> }>();
  const key = (c: BenchCase) => `${c.suite}\u0000${c.name}`;
  const push = (r: Row) => report.rows.push(r);
  /** The row of a case a peer did not time (unavailable, skipped, error), with the reason. */
  const missing = (c: BenchCase, peer: PeerName, status: Row['status'], note: string) =>
    push({ suite: c.suite, case: c.name, peer, metric: c.metric, value: null, unit: UNIT[c.metric], status, note });
  let roofline: Roofline | null = null;

  // Rounds: one suite at a time, every peer in turn, each opening its device for the round and destroying it
  // after (so none competes for the cores). The speed of a shared machine drifts over minutes; in rounds a
  // peer's figures for a suite are taken within a minute or two of unroll's, not a whole run apart.
  const order = peerOrder(opts.peers);
  const rounds = RUN_ORDER.map((suite) => ({ suite, cases: cases.filter((c) => c.suite === suite) })).filter((r) => r.cases.length);
  const turns: { round: (typeof rounds)[number]; name: PeerName; retake?: boolean }[] = rounds.flatMap((r) => order.map((name) => ({ round: r, name })));
  const gone = new Map<PeerName, string>();
  /** Each peer's lowest GFLOP/s over the cases it ran (an upper bound for the time of its next call). */
  const slowest = new Map<PeerName, number>();
  for (let i = 0; ; i++) {
    // After a round's last turn: if the machine ran at a different speed in unroll's turn than in the other
    // peers' (> SPEED_DRIFT from their median FMA peak), unroll's turn is retaken at the end of the round.
    const prev = turns[i - 1];
    if (prev && !prev.retake && turns[i]?.round !== prev.round && opts.roofline && unrollDrift(prev.round.suite)) {
      turns.splice(i, 0, { round: prev.round, name: 'unroll', retake: true });
    }
    if (i >= turns.length) break;
    const { round, name, retake } = turns[i];
    // Each turn may use its share of the time left (weighted by how slow the peer and the suite tend to be),
    // so a slow peer cannot starve the turns after it; time a turn leaves unused goes to those after it.
    const weightLeft = turns.slice(i).reduce((a, t) => a + turnWeight(t.name, t.round.suite), 0);
    const turnDeadline = performance.now() + ((deadline - performance.now()) * turnWeight(name, round.suite)) / weightLeft;
    const unavailable = (reason: string) => round.cases.forEach((c) => missing(c, name, 'unavailable', reason));
    if (gone.has(name)) {
      unavailable(gone.get(name)!);
      continue;
    }
    log(`[bench] ${name}: ${round.suite}`);
    if (name !== 'unroll' && opts.roofline) await probeSpeed(round.suite, name);
    const peer = await openPeer(name, opts);
    if (peer instanceof Unavailable) {
      report.peers[name] = `unavailable: ${peer.reason}`;
      gone.set(name, peer.reason);
      unavailable(peer.reason);
      continue;
    }
    report.peers[name] = peer.description;
    if (name === 'tfjs-webgpu') report.adapter ??= { description: peer.description };
    Object.assign(report.versions, peer.versions);
    try {
      if (name === 'unroll' && opts.roofline) {
        const device = (peer as unknown as { device: import('../src/engine/device.js').Device }).device;
        if (!roofline) {
          report.adapter = { ...device.info, limits: undefined };
          log('[bench] roofline: FMA peak and copy bandwidth');
          roofline = await measureRoofline(device, peak);
        }
        // The FMA peak again at each round: how far the machine's speed drifted during the run.
        const fmaGflops = report.speedByRound.length ? await peak(device) : roofline.fmaGflops;
        if (retake) {
          // Kept only if the machine's speed is now closer to the other peers' than in unroll's first turn.
          const first = unrollDrift(round.suite)!;
          const now = fmaGflops / first.others;
          const at = (x: number) => `${x.toFixed(0)} GFLOP/s`;
          if (Math.abs(now - 1) >= Math.abs(first.ratio - 1)) {
            report.notes.push(`${round.suite}: unroll's turn ran at an FMA peak of ${at(first.unroll)}, the other peers' at ${at(first.others)} ` +
              `(median); a retake at the end of the round measured ${at(fmaGflops)}, no closer, so the first turn's figures stand`);
            log(`[bench] unroll: ${round.suite} retake not closer in speed (${at(fmaGflops)}); first turn kept`);
            continue;
          }
          report.notes.push(`${round.suite}: unroll's turn ran at an FMA peak of ${at(first.unroll)}, the other peers' at ${at(first.others)} ` +
            `(median); its figures are from a retake at the end of the round, at ${at(fmaGflops)}`);
          log(`[bench] unroll: ${round.suite} retaken at ${at(fmaGflops)} (first turn ${at(first.unroll)}, others ${at(first.others)})`);
          report.rows = report.rows.filter((r) => !(r.suite === round.suite && r.peer === 'unroll'));
          report.profiles = report.profiles.filter((q) => q.suite !== round.suite);
          report.speedByRound.find((x) => x.suite === round.suite)!.fmaGflops = fmaGflops;
          report.speedByTurn.find((x) => x.suite === round.suite && x.peer === 'unroll')!.fmaGflops = fmaGflops;
        } else {
          report.speedByRound.push({ suite: round.suite, fmaGflops });
          report.speedByTurn.push({ suite: round.suite, peer: name, fmaGflops });
        }
      }
      for (const c of round.cases) {
        if (performance.now() >= turnDeadline) missing(c, name, 'skipped', 'this peer\'s share of the time limit (--time-limit) was used up');
        else await runCase(peer, c, turnDeadline);
      }
    } finally {
      await peer.dispose().catch((e: Error) => log(`[bench] ${name}: dispose failed: ${e.message}`));
    }
  }

  // The roofline needs a device: measure it on a fresh one if unroll was not among the peers.
  if (opts.roofline && !roofline) {
    try {
      roofline = await onFreshDevice(async (device) => {
        report.adapter ??= { ...device.info, limits: undefined };
        return measureRoofline(device, peak);
      });
    } catch (e) {
      report.notes.push(`roofline not measured: ${(e as Error).message}`);
    }
  }
  if (roofline) {
    report.roofline = roofline;
    push({ suite: 'roofline', case: 'fma_peak', peer: 'roofline', metric: 'gflop_per_second', value: roofline.fmaGflops, unit: 'GFLOP/s' });
    push({ suite: 'roofline', case: 'copy', peer: 'roofline', metric: 'gb_per_second', value: roofline.copyGBps, unit: 'GB/s' });
    deriveRoofline(report, cases, roofline);
  }
  deriveRatios(report);
  report.elapsedSeconds = Math.round((performance.now() - t0) / 100) / 10;
  const steal = stealFraction(ticks0, cpuTicks());
  if (steal !== undefined) {
    report.machine.stealFraction = Math.round(steal * 1000) / 1000;
    if (steal > 0.05) {
      report.notes.push(`the hypervisor took ${(100 * steal).toFixed(0)}% of this machine's CPU time during the run ` +
        '(steal time): a software adapter ran slower than the machine can, and figures vary from run to run');
    }
  }
  return report;

  /** fn on an unroll device of its own, destroyed after (so it does not compete with the next peer). */
  async function onFreshDevice<T>(fn: (device: import('../src/engine/device.js').Device) => Promise<T>): Promise<T> {
    const { Device } = await import('../src/engine/device.js');
    const device = await Device.create(opts.device);
    try {
      return await fn(device);
    } finally {
      device.destroy();
    }
  }

  /**
   * unroll's FMA peak in a suite's round against the median of the other peers' turns, when they differ by more
   * than SPEED_DRIFT (else null).
   */
  function unrollDrift(suite: string): { unroll: number; others: number; ratio: number } | null {
    const turnsOf = report.speedByTurn.filter((t) => t.suite === suite);
    const u = turnsOf.find((t) => t.peer === 'unroll')?.fmaGflops;
    const others = turnsOf.filter((t) => t.peer !== 'unroll').map((t) => t.fmaGflops).sort((a, b) => a - b);
    if (!u || !others.length) return null;
    const m = quantile(others, 0.5);
    return Math.abs(u / m - 1) > SPEED_DRIFT ? { unroll: u, others: m, ratio: u / m } : null;
  }

  /** The FMA peak just before another peer's turn, on a probe device destroyed before the peer opens. */
  async function probeSpeed(suite: string, name: PeerName): Promise<void> {
    try {
      report.speedByTurn.push({ suite, peer: name, fmaGflops: await onFreshDevice((device) => peak(device, 3)) });
    } catch (e) {
      log(`[bench] ${name}: speed probe failed: ${(e as Error).message.split('\n')[0]}`);
    }
  }

  async function runCase(peer: Peer, c: BenchCase, turnDeadline: number): Promise<void> {
    const base = { suite: c.suite, case: c.name, peer: peer.name };
    const fail = (status: Row['status'], note: string): void => void missing(c, peer.name, status, note);
    const cb = Math.min(opts.checkBatch, c.fullBatch);
    let runner: Runner | null = null;
    let agreeNote: string | undefined;
    let disagrees = false;
    try {
      const built = await c.build(peer, cb);
      if (built instanceof Unavailable) return fail('unavailable', built.reason);
      runner = built;
      // A call cannot be interrupted: skip a case whose check call, at the peer's slowest rate so far in the
      // run, would outlast both this turn's time and the give-up limit.
      const rate = slowest.get(peer.name);
      const estimateMs = rate ? (c.flops(cb) / (rate * 1e9)) * 1e3 : 0;
      if (estimateMs > turnDeadline - performance.now() && estimateMs > opts.giveUpMs) {
        const note = `one call at batch ${cb} would take about ${(estimateMs / 1e3).toFixed(0)} s at this peer's slowest rate in ` +
          `this run (${rate!.toPrecision(2)} GFLOP/s), more than its share of the time limit`;
        log(`[bench] ${peer.name} ${c.suite} ${c.name}: skipped (${note})`);
        return fail('skipped', note);
      }
      // 1. Agreement (its duration is the first, unwarmed, estimate of a call).
      const tc = performance.now();
      const outputs = await runner.outputs();
      const checkMs = performance.now() - tc;
      const ref = refs.get(key(c));
      if (!ref || ref.peer === peer.name) {
        // The first peer to run a case is the reference (a retaken turn computes the same thing again).
        if (!ref) refs.set(key(c), { peer: peer.name, outputs });
        agreeNote = 'reference for the agreement check';
      } else {
        const a = compare(outputs, ref.outputs);
        disagrees = !a.ok;
        push({ ...base, metric: 'check_max_rel_error', value: a.worst?.error ?? null, unit: 'relative', reference: ref.peer, status: a.ok ? 'ok' : 'disagrees', note: describeAgreement(a) });
        if (disagrees) log(`[bench] ${peer.name} ${c.suite} ${c.name}: DISAGREES with ${ref.peer}: ${describeAgreement(a)}`);
      }
      if (checkMs > opts.giveUpMs) {
        // The check's call includes compilation (on a software adapter with a cold shader cache, over a
        // minute for a training step's pipelines), so one more call says whether the peer is really this
        // slow: taken when the peer's rate so far says it is fast, or the check took less than 4x the limit,
        // or a second call (never slower than the unwarmed first) fits in the turn's time.
        let ms = checkMs;
        let what = 'the agreement check\'s call, unwarmed';
        const fastSoFar = estimateMs > 0 && estimateMs < opts.giveUpMs;
        if (fastSoFar || checkMs < 4 * opts.giveUpMs || checkMs < turnDeadline - performance.now()) {
          const t1 = performance.now();
          await runner.run();
          ms = performance.now() - t1;
          what = 'one call after the check\'s';
        }
        if (ms > opts.giveUpMs) {
          const t: Timing = { medianMs: ms, minMs: ms, maxMs: ms, q1Ms: ms, q3Ms: ms, n: 1, warmup: 1 };
          record(peer, c, cb, t, disagrees, [agreeNote, `too slow to time (over ${opts.giveUpMs / 1e3} s per call): ${what}, ${(ms / 1e3).toFixed(1)} s`]);
          log(`[bench] ${peer.name} ${c.suite} ${c.name}: too slow to time (${(ms / 1e3).toFixed(1)} s per call at batch ${cb})`);
          return;
        }
      }
      // 2. Batch to time at: the full batch unless a call would exceed callTargetMs. A small batch's call
      // is mostly fixed cost on a fast engine, so when scaling it says "too slow", a second call at the
      // batch it suggests (at least 4x larger) separates the fixed cost from the per-item cost.
      let batch = c.fullBatch;
      let warmed = 0;
      if (cb < c.fullBatch) {
        const probe = await measure(() => runner!.run(), { warmup: 1, runs: 1, budgetMs: 0, minRuns: 1 });
        warmed = 2;
        if (probe.medianMs / cb * c.fullBatch > opts.callTargetMs) {
          const b2 = Math.min(c.fullBatch, Math.max(4 * cb, fitBatch(probe.medianMs / cb, opts.callTargetMs, c.fullBatch)));
          await runner.dispose();
          runner = null;
          const built2 = await c.build(peer, b2);
          if (built2 instanceof Unavailable) return fail('unavailable', built2.reason);
          runner = built2;
          const probe2 = await measure(() => runner!.run(), { warmup: 1, runs: 1, budgetMs: 0, minRuns: 1 });
          const m = callModel(cb, probe.medianMs, b2, probe2.medianMs);
          batch = Math.max(cb, fitBatch(m.msPerItem, opts.callTargetMs, c.fullBatch, m.fixedMs));
          if (batch !== b2) {
            await runner.dispose();
            runner = null;
            warmed = 0;
          }
        } else if (batch !== cb) {
          await runner.dispose();
          runner = null;
          warmed = 0;
        }
        if (!runner) {
          const b3 = await c.build(peer, batch);
          if (b3 instanceof Unavailable) return fail('unavailable', b3.reason);
          runner = b3;
        }
      }
      // 3. Timing. A timed run is `calls` calls back to back, awaited once, with `calls` chosen so that a run
      // lasts MIN_RUN_MS: the wait for the GPU at the end (a fixed cost of up to half a millisecond) is then
      // not counted against a fast call, just as the FMA peak is measured on long dispatches.
      const one = await measure(() => runner!.run(), { warmup: warmed ? 0 : 1, runs: 1, budgetMs: 0, minRuns: 1 });
      const calls = Math.max(1, Math.min(MAX_CALLS_PER_RUN, Math.ceil(MIN_RUN_MS / Math.max(one.medianMs, 1e-3))));
      const runs = await measure(() => runner!.run(calls), { warmup: Math.max(0, opts.warmup - warmed - 1), runs: opts.runs, budgetMs: opts.budgetMs });
      const t = perCall(runs, calls);
      record(peer, c, batch, t, disagrees, [agreeNote, calls > 1 ? `each timed run is ${calls} calls back to back, awaited once` : undefined], calls);
      log(`[bench] ${peer.name} ${c.suite} ${c.name}: ${t.medianMs.toFixed(2)} ms/call at batch ${batch} (n=${t.n}${calls > 1 ? ` runs of ${calls} calls` : ''})`);
      if (opts.profile && peer.profile) {
        const kt = await peer.profile(runner, 1);
        if (kt instanceof Unavailable) report.notes.push(`profile ${c.suite} ${c.name}: ${kt.reason}`);
        else {
          const gpuMs = [...kt.kernels.values()].reduce((a, k) => a + k.ms, 0);
          const callMs = kt.wallMs;
          const p: KernelProfile = {
            suite: c.suite, case: c.name, batch, callMs, timedMs: t.medianMs, gpuMs,
            kernels: [...kt.kernels.entries()].sort((a, b) => b[1].ms - a[1].ms).map(([kernel, k]) => ({
              kernel, msPerCall: k.ms, callsPerCall: k.calls, percentOfGpu: (100 * k.ms) / Math.max(gpuMs, 1e-9), percentOfCall: (100 * k.ms) / callMs,
            })),
          };
          report.profiles.push(p);
          log(`[bench] profiled ${peer.name} ${c.suite} ${c.name}: GPU ${gpuMs.toFixed(1)} ms of ${callMs.toFixed(1)} ms`);
        }
      }
    } catch (e) {
      const msg = (e as Error).message.split('\n')[0];
      log(`[bench] ${peer.name} ${c.suite} ${c.name}: error: ${msg}`);
      fail('error', msg);
    } finally {
      if (runner) await Promise.resolve(runner.dispose()).catch(() => undefined);
    }
  }

  function record(peer: Peer, c: BenchCase, batch: number, t: Timing, disagrees: boolean, extra: (string | undefined)[], callsPerRun = 1): void {
    const scaled = batch !== c.fullBatch;
    const notes = [...extra, scaled ? `measured at batch ${batch} of ${c.fullBatch}${c.metric === 'ms_per_call' ? ', time scaled to the full batch' : ''}` : undefined, disagrees ? 'disagrees with the reference: not a valid comparison' : undefined].filter(Boolean);
    const value = c.metric === 'ms_per_call' ? t.medianMs * (c.fullBatch / batch) : batch / (t.medianMs / 1e3);
    const status = disagrees ? 'disagrees' : 'ok';
    const common = { suite: c.suite, case: c.name, peer: peer.name, batch, n: t.n, callsPerRun, status } as const;
    push({ ...common, metric: c.metric, value, unit: UNIT[c.metric], spread: (t.q3Ms - t.q1Ms) / 2 / t.medianMs, medianMs: t.medianMs, minMs: t.minMs, maxMs: t.maxMs, note: notes.join('; ') || undefined });
    const gflops = c.flops(batch) / (t.medianMs / 1e3) / 1e9;
    push({ ...common, metric: 'gflop_per_second', value: gflops, unit: 'GFLOP/s' });
    if (gflops > 0) slowest.set(peer.name, Math.min(slowest.get(peer.name) ?? Infinity, gflops));
  }
}

/**
 * The adapter's bound for every case (compute roofline: FLOPs / FMA peak), and each peer's fraction of it,
 * against the FMA peak measured at the case's round (the machine's speed at that time) where there is one.
 */
function deriveRoofline(report: Report, cases: BenchCase[], r: Roofline): void {
  for (const c of cases) {
    const fullFlops = c.flops(c.fullBatch);
    const peak = report.speedByRound.find((x) => x.suite === c.suite)?.fmaGflops ?? r.fmaGflops;
    const ms = (fullFlops / (peak * 1e9)) * 1e3;
    const value = c.metric === 'ms_per_call' ? ms : c.fullBatch / (ms / 1e3);
    report.rows.push({ suite: c.suite, case: c.name, peer: 'roofline', metric: c.metric, value, unit: UNIT[c.metric], batch: c.fullBatch, note: 'compute bound: work / FMA peak at the round' });
    for (const row of report.rows.filter((x) => x.suite === c.suite && x.case === c.name && x.metric === 'gflop_per_second' && x.value !== null)) {
      report.rows.push({ suite: c.suite, case: c.name, peer: row.peer, metric: 'roofline_fraction', value: row.value! / peak, unit: 'fraction', status: row.status });
    }
  }
}

/** unroll's speed over each peer's, per case (GFLOP/s ratio, so batch differences cancel). */
function deriveRatios(report: Report): void {
  const gf = report.rows.filter((x) => x.metric === 'gflop_per_second' && x.value !== null && x.suite !== 'roofline');
  for (const u of gf.filter((x) => x.peer === 'unroll')) {
    for (const p of gf.filter((x) => x.suite === u.suite && x.case === u.case && x.peer !== 'unroll')) {
      report.rows.push({
        suite: u.suite as SuiteName, case: u.case, peer: p.peer, metric: 'unroll_speedup', value: u.value! / p.value!, unit: 'x',
        status: p.status, note: p.status === 'disagrees' ? 'the peer disagrees with the reference: not a valid comparison' : undefined,
      });
    }
  }
}

export const DEFAULTS = {
  runs: 10,
  warmup: 2,
  budgetMs: 2000,
  callTargetMs: 2000,
  checkBatch: 2,
  giveUpMs: 15000,
  timeLimitMs: 13 * 60 * 1000,
};

export { PEER_NAMES, SUITES, printTable, printProfile, printWork };
