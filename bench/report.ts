/**
 * The bench's output: rows `{suite, case, peer, metric, value, unit}` (plus batch, run count, spread,
 * status and notes), printed as one table on stdout and written as JSON with the run's context.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { RowPeer } from './peers/types.js';

export const SUITES = ['conv', 'cell', 'train-step', 'inference', 'rise'] as const;
export type SuiteName = (typeof SUITES)[number];

export type Status = 'ok' | 'unavailable' | 'error' | 'disagrees' | 'skipped';

export interface Row {
  suite: SuiteName | 'roofline';
  case: string;
  peer: RowPeer;
  metric: string;
  value: number | null;
  unit: string;
  /** Batch the figure was measured at (smaller than the case's for slow peers; see note). */
  batch?: number;
  /** Timed runs, and half the interquartile range relative to the median. */
  n?: number;
  /** Calls per timed run (back to back, awaited once); timings are per call. */
  callsPerRun?: number;
  spread?: number;
  medianMs?: number;
  minMs?: number;
  maxMs?: number;
  status?: Status;
  note?: string;
  /** Agreement rows: the peer compared against. */
  reference?: string;
}

export interface KernelProfile {
  suite: SuiteName;
  case: string;
  batch: number;
  /** Wall time of the profiled call (one compute pass per dispatch: slower than a timed call), the timed median, and the GPU time summed over its kernels. */
  callMs: number;
  timedMs: number;
  gpuMs: number;
  kernels: { kernel: string; msPerCall: number; callsPerCall: number; percentOfGpu: number; percentOfCall: number }[];
}

export interface Report {
  date: string;
  machine: { cpu: string; cores: number; memoryGiB: number; os: string; node: string; stealFraction?: number };
  adapter: Record<string, unknown> | null;
  versions: Record<string, string>;
  config: Record<string, unknown>;
  settings: Record<string, unknown>;
  roofline: { fmaGflops: number; copyGBps: number } | null;
  /** The FMA peak measured at the start of each round (unroll's turn): the machine's speed over the run. */
  speedByRound: { suite: string; fmaGflops: number }[];
  /**
   * The FMA peak measured at the start of every peer's turn (on a probe device for peers other than unroll):
   * a ratio between two peers' figures is only as good as the machine's speed was equal at their turns.
   */
  speedByTurn: { suite: string; peer: string; fmaGflops: number }[];
  peers: Record<string, string>;
  /** Work per call or per image of each case, in FLOPs (convs and readout; see bench/config.ts). */
  work: { suite: SuiteName; case: string; flops: number; per: string }[];
  rows: Row[];
  profiles: KernelProfile[];
  notes: string[];
  elapsedSeconds?: number;
}

export function machine(): Report['machine'] {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? '?',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.platform()} ${os.release()}`,
    node: process.version,
  };
}

/** CPU time counters of the whole machine (Linux /proc/stat, in ticks), or null elsewhere. */
export function cpuTicks(): { total: number; steal: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return { total: f.reduce((a, b) => a + b, 0), steal: f[7] ?? 0 };
  } catch {
    return null;
  }
}

/**
 * Share of the machine's CPU time that its hypervisor gave to other guests between two cpuTicks() readings.
 * On a software adapter the shaders run on those CPUs, so a run with much steal time is slower than the
 * machine is: the report says so.
 */
export function stealFraction(a: ReturnType<typeof cpuTicks>, b: ReturnType<typeof cpuTicks>): number | undefined {
  if (!a || !b || b.total <= a.total) return undefined;
  return (b.steal - a.steal) / (b.total - a.total);
}

const UNITS: Record<string, string> = {
  ms_per_call: 'ms/call',
  images_per_second: 'img/s',
  masked_forwards_per_second: 'fwd/s',
};

function fmt(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a < 1e-3) return v.toExponential(digits - 1);
  return v.toPrecision(digits);
}

/** Turns whose FMA peaks differ by more than this fraction get a footnote on their ratio. */
export const SPEED_DRIFT = 0.15;

/** FMA peak at unroll's turn of a suite over the peak at a peer's turn of it, or null where either was not measured. */
export function speedDrift(r: Report, suite: string, peer: string): number | null {
  const at = (name: string) => r.speedByTurn?.find((t) => t.suite === suite && t.peer === name)?.fmaGflops;
  const u = at('unroll');
  const q = at(peer);
  return u && q ? u / q : null;
}

/**
 * One line per (suite, case, peer): the primary figure with its spread and batch, GFLOP/s, % of the
 * adapter's FMA peak, and the speed ratio unroll/peer (> 1: unroll is faster).
 */
export function printTable(r: Report, log: (s: string) => void = console.log): void {
  const cases = new Map<string, Row[]>();
  const rank = (x: Row) => SUITES.indexOf(x.suite as SuiteName);
  const ordered = r.rows.map((row, i) => ({ row, i })).sort((a, b) => rank(a.row) - rank(b.row) || a.i - b.i).map((x) => x.row);
  for (const row of ordered) {
    if (row.suite === 'roofline') continue;
    const k = `${row.suite}\u0000${row.case}`;
    if (!cases.has(k)) cases.set(k, []);
    cases.get(k)!.push(row);
  }
  const footnotes: string[] = [];
  const foot = (s: string) => {
    let i = footnotes.indexOf(s);
    if (i < 0) i = footnotes.push(s) - 1;
    return `[${i + 1}]`;
  };
  const header = ['suite', 'case', 'peer', 'value', 'unit', '±', 'n', 'batch', 'GFLOP/s', '%peak', 'unroll/x', 'check'];
  const lines: string[][] = [header];
  for (const rows of cases.values()) {
    const primary = rows.filter((x) => x.metric in UNITS);
    const peers = [...new Set(rows.map((x) => x.peer))];
    const get = (peer: string, metric: string) => rows.find((x) => x.peer === peer && x.metric === metric);
    const unrollGf = get('unroll', 'gflop_per_second');
    for (const peer of peers) {
      const p = primary.find((x) => x.peer === peer) ?? rows.find((x) => x.peer === peer && x.status && x.status !== 'ok');
      if (!p) continue;
      const gf = get(peer, 'gflop_per_second');
      const frac = get(peer, 'roofline_fraction');
      const check = get(peer, 'check_max_rel_error');
      let checkText = '';
      if (check) checkText = `${check.status === 'disagrees' ? 'DISAGREES ' : ''}${fmt(check.value, 2)}`;
      else if (peer !== 'roofline' && p.status === 'ok') checkText = p.note?.startsWith('reference') ? 'ref' : '';
      const ok = p.status === undefined || p.status === 'ok' || p.status === 'disagrees';
      const value = ok ? fmt(p.value) : `n/a ${foot(`${p.peer}: ${p.note ?? p.status}`)}`;
      const batchNote = p.batch !== undefined && p.note && /batch/.test(p.note) ? `${p.batch}*` : p.batch !== undefined ? String(p.batch) : '';
      let ratio = peer !== 'unroll' && unrollGf?.value && gf?.value && check?.status !== 'disagrees' ? `${fmt(unrollGf.value / gf.value, 2)}x` : '';
      const drift = speedDrift(r, p.suite, peer);
      if (ratio && drift !== null && Math.abs(drift - 1) > SPEED_DRIFT) {
        ratio += ` ${foot(`the machine's FMA peak moved between the two turns: unroll's turn / ${peer}'s = ${drift.toFixed(2)}; the ratio is not at equal machine speed`)}`;
      }
      lines.push([
        p.suite,
        p.case,
        peer,
        value,
        ok ? UNITS[p.metric] ?? p.unit : '',
        p.spread !== undefined && ok ? `${(100 * p.spread).toFixed(0)}%` : '',
        p.n !== undefined && ok ? String(p.n) : '',
        ok ? batchNote : '',
        ok ? fmt(gf?.value) : '',
        ok && frac?.value ? `${(100 * frac.value).toFixed(frac.value < 0.1 ? 1 : 0)}%` : '',
        ratio,
        checkText,
      ]);
    }
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const right = new Set([3, 5, 6, 7, 8, 9, 10, 11]);
  let lastCase = '';
  for (const l of lines) {
    const key = `${l[0]}|${l[1]}`;
    if (lastCase && key !== lastCase) log('');
    lastCase = l === lines[0] ? '' : key;
    log(l.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd());
  }
  log('');
  log('value: median of n timed runs (warm-up excluded), ± half the interquartile range; batch* = measured at a smaller batch');
  log('(a slow peer), figure scaled to the full batch where it is a time per call. GFLOP/s counts the convs and readout;');
  log('%peak is of the adapter\'s FMA peak measured at the suite\'s round (CPU peers are not bound by it); unroll/x = unroll\'s GFLOP/s over the peer\'s.');
  log('check: max |peer - reference| / max |reference| over outputs and gradients (ref = the reference peer).');
  footnotes.forEach((f, i) => log(`[${i + 1}] ${f}`));
}

export function printProfile(p: KernelProfile, log: (s: string) => void = console.log): void {
  log(`profile ${p.suite} / ${p.case} (batch ${p.batch}): kernels ${p.gpuMs.toFixed(2)} ms of a ${p.callMs.toFixed(2)} ms profiled call ` +
    `(timed: ${p.timedMs.toFixed(2)} ms; profiling puts each dispatch in its own pass)`);
  const w = Math.max(6, ...p.kernels.map((k) => k.kernel.length));
  log(`  ${'kernel'.padEnd(w)}  ${'ms/call'.padStart(9)}  ${'calls'.padStart(6)}  ${'% GPU'.padStart(6)}  ${'% call'.padStart(6)}`);
  for (const k of p.kernels) {
    log(`  ${k.kernel.padEnd(w)}  ${k.msPerCall.toFixed(3).padStart(9)}  ${String(Math.round(k.callsPerCall)).padStart(6)}  ${k.percentOfGpu.toFixed(1).padStart(6)}  ${k.percentOfCall.toFixed(1).padStart(6)}`);
  }
}

/** The work of every case, counted from the shapes (bench/config.ts), one line per case. */
export function printWork(r: Report, log: (s: string) => void = console.log): void {
  log('work (FLOPs of the convs and the readout, from the shapes):');
  const w = Math.max(...r.work.map((x) => `${x.suite} ${x.case}`.length));
  for (const x of r.work) log(`  ${`${x.suite} ${x.case}`.padEnd(w)}  ${(x.flops / 1e9).toPrecision(4).padStart(9)} GFLOP per ${x.per}`);
}
