/**
 * The bench harness (bench/): work counts from the shapes, the agreement check, timing statistics, and
 * one end-to-end run at tiny shapes in which every peer's outputs and gradients must agree with the
 * reference (unroll, whose BL net and kernels are thereby checked against tfjs and gpu.js too).
 */
import { describe, expect, it } from 'vitest';
import { PRESETS, type NetConfig, convCases, forwardFlopsPerImage, trainFlopsPerImage } from '../bench/config.js';
import { compare, relativeError } from '../bench/agree.js';
import { callModel, fitBatch, summarise } from '../bench/timing.js';
import { runBench } from '../bench/main.js';
import { PEER_NAMES } from '../bench/peers/types.js';
import { type Report, cpuTicks, printTable, speedDrift, stealFraction } from '../bench/report.js';

describe('bench work counts', () => {
  it('counts the FACTS.md network (16-16-32-32-64-64) by hand', () => {
    const c = PRESETS.facts;
    // Bottom-up convs per step: 2 * 9 * sum(H*W*Cin*Cout) = 18 * 1,064,960; lateral: 18 * 6 * 262,144; readout 2 * 64 * 50.
    const bu = 18 * 1_064_960, lat = 18 * 6 * 262_144, readout = 2 * 64 * 50;
    expect(forwardFlopsPerImage(c, 1)).toBe(bu + readout);
    expect(forwardFlopsPerImage(c, 8)).toBe(8 * bu + 7 * lat + 8 * readout);
    // Backward: dgrad + wgrad of every conv, except dgrad of layer 1's bottom-up conv (18 * 16,384 per step); readout twice.
    const convs = 8 * bu + 7 * lat;
    expect(trainFlopsPerImage(c, 8)).toBe(forwardFlopsPerImage(c, 8) + 2 * convs - 8 * 18 * 16_384 + 2 * 8 * readout);
  });

  it('lists each distinct conv shape once, without the dgrad of the image', () => {
    const cases = convCases(PRESETS.facts);
    expect(cases.map((c) => `${c.res}:${c.inC}:${c.outC}`)).toEqual(['32:1:16', '32:16:16', '16:16:32', '16:32:32', '8:32:64', '8:64:64']);
    expect(cases[0].ops).toEqual(['forward', 'wgrad']);
    expect(cases[1].ops).toEqual(['forward', 'dgrad', 'wgrad']);
  });
});

describe('bench agreement and timing', () => {
  it('measures error relative to the reference scale', () => {
    expect(relativeError(Float32Array.of(1, 2.01), Float32Array.of(1, 2))).toBeCloseTo(0.005, 6);
    expect(relativeError(Float32Array.of(NaN), Float32Array.of(1))).toBe(Infinity);
    const ok = compare({ y: Float32Array.of(1, 2) }, { y: Float32Array.of(1, 2.0001) });
    expect(ok.ok).toBe(true);
    const bad = compare({ y: Float32Array.of(1, 3), 'grad.w': Float32Array.of(1) }, { y: Float32Array.of(1, 2), 'grad.w': Float32Array.of(1), z: Float32Array.of(0) });
    expect(bad.ok).toBe(false);
    expect(bad.worst?.key).toBe('y');
    expect(bad.problems).toEqual(['z: missing']);
  });

  it('summarises runs by median and quartiles, and fits a batch to a time target', () => {
    const t = summarise([5, 1, 4, 2, 3], 1);
    expect([t.medianMs, t.minMs, t.maxMs, t.q1Ms, t.q3Ms, t.n]).toEqual([3, 1, 5, 2, 4, 5]);
    expect(fitBatch(10, 100, 32)).toBe(8);
    expect(fitBatch(1, 100, 32)).toBe(32);
    expect(fitBatch(1000, 100, 32)).toBe(1);
    // 60 ms of fixed cost per call leaves room for 4 items of 10 ms, not 8.
    expect(fitBatch(10, 100, 32, 60)).toBe(4);
  });

  it('separates a call\'s fixed cost from its per-item cost with two batch sizes', () => {
    // 100 ms fixed + 5 ms per item: batch 2 takes 110 ms, which scaled alone says 55 ms per item.
    const m = callModel(2, 110, 8, 140);
    expect(m.msPerItem).toBeCloseTo(5, 12);
    expect(m.fixedMs).toBeCloseTo(100, 12);
    expect(fitBatch(m.msPerItem, 300, 32, m.fixedMs)).toBe(32);
    // Noise that makes the larger batch faster falls back to scaling the larger call.
    const noisy = callModel(2, 110, 8, 100);
    expect(noisy.msPerItem).toBeCloseTo(12.5, 12);
    expect(noisy.fixedMs).toBe(0);
  });
});

describe('bench machine context', () => {
  it('steal time is the hypervisor\'s share of the CPU ticks between two readings', () => {
    expect(stealFraction({ total: 1000, steal: 40 }, { total: 3000, steal: 540 })).toBeCloseTo(0.25, 12);
    expect(stealFraction(null, { total: 1, steal: 0 })).toBeUndefined();
    expect(stealFraction({ total: 5, steal: 0 }, { total: 5, steal: 0 })).toBeUndefined();
    const t = cpuTicks();
    if (process.platform === 'linux') expect(t!.total).toBeGreaterThan(t!.steal);
  });
});

describe('bench table', () => {
  it('marks a ratio taken while the machine ran at a different speed for the two peers', () => {
    const row = (peer: string, value: number) => [
      { suite: 'conv', case: 'c', peer, metric: 'ms_per_call', value: 1 / value, unit: 'ms', status: 'ok' as const, batch: 1, n: 1 },
      { suite: 'conv', case: 'c', peer, metric: 'gflop_per_second', value, unit: 'GFLOP/s' },
    ];
    const report = {
      rows: [...row('unroll', 10), ...row('tfjs-wasm', 5), ...row('tfjs-webgpu', 1)],
      speedByTurn: [{ suite: 'conv', peer: 'unroll', fmaGflops: 100 }, { suite: 'conv', peer: 'tfjs-wasm', fmaGflops: 130 }, { suite: 'conv', peer: 'tfjs-webgpu', fmaGflops: 105 }],
    } as unknown as Report;
    expect(speedDrift(report, 'conv', 'tfjs-wasm')).toBeCloseTo(100 / 130, 10);
    const lines: string[] = [];
    printTable(report, (l) => lines.push(l));
    const wasm = lines.find((l) => l.includes('tfjs-wasm'))!;
    const webgpu = lines.find((l) => l.includes('tfjs-webgpu'))!;
    expect(wasm).toMatch(/2\.0x \[1\]/);
    expect(webgpu).toMatch(/10x\s*$/);
    expect(lines.some((l) => l.startsWith('[1]') && l.includes('0.77'))).toBe(true);
  });
});

describe('bench end to end at tiny shapes', () => {
  const tiny: NetConfig = { size: 8, widths: [4, 4, 8, 8, 8, 8], poolBefore: [2, 4], classes: 5, batch: 2, steps: 2 };

  it('runs every peer; every peer that runs agrees with the reference', async () => {
    const report = await runBench({
      cfg: tiny, suites: ['conv', 'cell', 'train-step', 'inference', 'rise'], peers: [...PEER_NAMES], roofline: true,
      runs: 1, warmup: 1, budgetMs: 0, callTargetMs: 1e6, checkBatch: 2, giveUpMs: 60_000, timeLimitMs: 600_000,
      profile: false, device: {}, log: () => undefined,
    });
    const checks = report.rows.filter((r) => r.metric === 'check_max_rel_error');
    const bad = checks.filter((r) => r.status !== 'ok').map((r) => `${r.peer} ${r.suite} ${r.case}: ${r.note}`);
    expect(bad).toEqual([]);
    const errors = report.rows.filter((r) => r.status === 'error').map((r) => `${r.peer} ${r.suite} ${r.case}: ${r.note}`);
    expect(errors).toEqual([]);
    // unroll is the reference wherever it runs; the others are compared with it.
    expect(checks.every((r) => r.reference === 'unroll')).toBe(true);
    const trained = report.rows.filter((r) => r.suite === 'train-step' && r.metric === 'images_per_second' && r.value !== null).map((r) => r.peer);
    expect(trained).toEqual(expect.arrayContaining(['unroll', 'tfjs-cpu', 'tfjs-webgpu']));
    const wasmTrain = report.rows.find((r) => r.suite === 'train-step' && r.peer === 'tfjs-wasm');
    expect(wasmTrain?.status).toBe('unavailable');
    expect(checks.filter((r) => r.peer === 'gpu.js' && r.suite === 'conv').length).toBe(convCases(tiny).reduce((a, c) => a + c.ops.length, 0));
    // Rounds: every peer is opened again for each suite (tfjs backends re-registered), and the FMA peak is
    // measured at each round.
    for (const peer of ['tfjs-cpu', 'tfjs-wasm', 'tfjs-webgpu']) {
      for (const suite of ['train-step', 'inference', 'conv']) {
        const timed = report.rows.filter((r) => r.peer === peer && r.suite === suite && r.metric === 'gflop_per_second' && r.value !== null);
        if (!(peer === 'tfjs-wasm' && suite === 'train-step')) expect(timed.length, `${peer} ${suite}`).toBeGreaterThan(0);
      }
    }
    expect(report.speedByRound.map((r) => r.suite)).toEqual(['conv', 'cell', 'inference', 'rise', 'train-step']);
    expect(report.speedByRound.every((r) => r.fmaGflops > 0)).toBe(true);
    // And at every peer's turn, so each ratio says whether the machine ran at the same speed for both.
    for (const suite of ['conv', 'cell', 'inference', 'rise', 'train-step']) {
      expect(report.speedByTurn.filter((t) => t.suite === suite).map((t) => t.peer).sort(), suite).toEqual([...PEER_NAMES].sort());
    }
    expect(report.speedByTurn.every((t) => t.fmaGflops > 0)).toBe(true);
    // A fast call is timed in runs of several calls back to back, awaited once; the row is per call.
    const convRows = report.rows.filter((r) => r.peer === 'unroll' && r.suite === 'conv' && r.metric === 'ms_per_call' && r.value !== null);
    expect(convRows.some((r) => (r.callsPerRun ?? 1) > 1)).toBe(true);
    for (const r of convRows) expect(r.value!).toBeLessThan(25);
  }, 600_000);

  // The FMA-peak probe returns these values in turn: unroll's first turn, tfjs-cpu's turn, unroll's retake.
  const drifting = (speeds: number[]) => {
    const left = [...speeds];
    return async () => left.shift() ?? 100;
  };
  const convRun = (speeds: number[]) => runBench({
    cfg: tiny, suites: ['conv'], peers: ['unroll', 'tfjs-cpu'], roofline: true,
    runs: 1, warmup: 1, budgetMs: 0, callTargetMs: 1e6, checkBatch: 2, giveUpMs: 60_000, timeLimitMs: 600_000,
    profile: false, device: {}, log: () => undefined, fmaPeak: drifting(speeds),
  });
  const unrollRows = (r: Report) => r.rows.filter((x) => x.peer === 'unroll' && x.suite === 'conv' && x.metric === 'ms_per_call');

  it('retakes unroll\'s turn at the end of a round run at another speed than the other peers\', and keeps it if closer', async () => {
    const report = await convRun([50, 100, 95]);
    expect(report.notes.join('\n')).toMatch(/conv: unroll's turn ran at an FMA peak of 50 GFLOP\/s, the other peers' at 100 GFLOP\/s \(median\); its figures are from a retake at the end of the round, at 95/);
    expect(report.speedByTurn.find((t) => t.suite === 'conv' && t.peer === 'unroll')!.fmaGflops).toBe(95);
    expect(report.speedByRound.find((t) => t.suite === 'conv')!.fmaGflops).toBe(95);
    // One figure per case (the retake's), and unroll is still the reference the other peer was checked against.
    const cases = convCases(tiny).reduce((a, c) => a + c.ops.length, 0);
    expect(unrollRows(report).length).toBe(cases);
    expect(report.rows.filter((x) => x.peer === 'unroll' && x.metric === 'check_max_rel_error')).toEqual([]);
    expect(report.rows.filter((x) => x.peer === 'tfjs-cpu' && x.metric === 'check_max_rel_error').every((x) => x.reference === 'unroll' && x.status === 'ok')).toBe(true);
  }, 600_000);

  it('keeps the first turn when the retake is no closer in speed, and retakes nothing at equal speeds', async () => {
    const report = await convRun([50, 100, 45]);
    expect(report.notes.join('\n')).toMatch(/a retake at the end of the round measured 45 GFLOP\/s, no closer, so the first turn's figures stand/);
    expect(report.speedByTurn.find((t) => t.suite === 'conv' && t.peer === 'unroll')!.fmaGflops).toBe(50);
    expect(unrollRows(report).length).toBe(convCases(tiny).reduce((a, c) => a + c.ops.length, 0));
    const steady = await convRun([100, 110]);
    expect(steady.notes.filter((n) => n.includes('retake'))).toEqual([]);
  }, 600_000);
});
