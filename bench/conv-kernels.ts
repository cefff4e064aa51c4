/**
 * Times the conv2d kernels (forward, dgrad, wgrad incl. its split-K reduction) at the shapes of a bench preset's
 * BL network (default `small`: batch 32, 32x32 grayscale input, widths 8-8-16-16-32-32, 3x3 'same' convs,
 * 2x2 pool before layers 3 and 5; bench/config.ts) and the fused two-source forward of the recurrent cell
 * at the first and last layer, and reports GFLOP/s (2 * MACs / time) and the fraction of the adapter's FMA
 * peak (shaders/roofline.wgsl `fma_peak`) measured in the same run.
 *
 *   npx tsx bench/conv-kernels.ts [--preset small|facts|paper]   # the tile table in src/kernels/conv2d.ts
 *   npx tsx bench/conv-kernels.ts --sweep                        # also compares tile variants, within this one run
 *
 * Each number is the best of ROUNDS timed batches (warm-up first; a batch is many dispatches and one
 * device.sync()). Two clocks: wall time, and the process's CPU time divided by the core count. On a
 * software adapter the GPU is this process's own threads, so when other programs share the cores the
 * CPU-time figure (and its fraction of the peak, timed the same way) stays comparable while wall time
 * does not. Env: BENCH_SECONDS (work per measurement, default 0.6), BENCH_ROUNDS (default 3).
 */
import { availableParallelism } from 'node:os';
import { layerShapes, PRESETS } from './config.js';
import { Device, params } from '../src/engine/device.js';
import { Tensor } from '../src/engine/tensor.js';
import {
  CONV_TILES,
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  conv2dPair,
  convGeometry,
  convTiles,
  type ConvGeometry,
  type ConvTiles,
} from '../src/kernels/conv2d.js';

const device = await Device.create();
const SECONDS = Number(process.env.BENCH_SECONDS ?? 0.6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CORES = availableParallelism();

interface Timing {
  wall: number;
  cpu: number;
}

/** Seconds per call of fn (best of ROUNDS batches), by wall clock and by CPU time / cores. */
async function time(fn: () => void): Promise<Timing> {
  fn();
  await device.sync();
  let t0 = performance.now();
  fn();
  await device.sync();
  const once = (performance.now() - t0) / 1000;
  const reps = Math.max(2, Math.min(500, Math.round(SECONDS / ROUNDS / Math.max(once, 1e-5))));
  const best: Timing = { wall: Infinity, cpu: Infinity };
  for (let r = 0; r < ROUNDS; r++) {
    const c0 = process.cpuUsage();
    t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    await device.sync();
    const c = process.cpuUsage(c0);
    best.wall = Math.min(best.wall, (performance.now() - t0) / 1000 / reps);
    best.cpu = Math.min(best.cpu, (c.user + c.system) / 1e6 / CORES / reps);
  }
  return best;
}

/** GFLOP/s of fma_peak: 8 independent vec4 FMA chains per thread, workgroup 64. */
async function fmaPeak(): Promise<Timing> {
  const threads = 64 * 512;
  const iters = 1000;
  const out = Tensor.empty(device, [threads]);
  const k = { shader: 'roofline', entry: 'fma_peak', workgroup: [64] as [number] };
  const t = await time(() => device.run(k, [params().u(iters, threads).f(0.5, 0), out], [threads]));
  out.dispose();
  const flops = threads * iters * 8 * 4 * 2;
  return { wall: flops / t.wall / 1e9, cpu: flops / t.cpu / 1e9 };
}

const random = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);

interface Layer {
  name: string;
  x: number[];
  w: number[];
  /** The lateral (recurrent) source of conv2dPair, when timing the fused form. */
  lateral?: number[];
}

// The BL network's convs: bottom-up layer l reads layer l-1 (pooled where the preset says); each layer's
// lateral conv (C -> C at its own size) where it differs from every bottom-up shape.
const presetName = process.argv.includes('--preset') ? process.argv[process.argv.indexOf('--preset') + 1] : 'small';
const preset = PRESETS[presetName];
if (!preset) throw new Error(`--preset ${presetName}: one of ${Object.keys(PRESETS).join(', ')}`);
const shapes = layerShapes(preset);
const layer = (name: string, res: number, cin: number, cout: number): Layer =>
  ({ name: `${name} ${res}x${res} ${cin}->${cout}`, x: [preset.batch, res, res, cin], w: [3, 3, cin, cout] });
const LAYERS: Layer[] = [];
for (const l of shapes) {
  LAYERS.push(layer(`L${l.index + 1}`, l.res, l.inC, l.outC));
  if (l.inC !== l.outC && !shapes.some((o) => o.res === l.res && o.inC === l.outC && o.outC === l.outC)) {
    LAYERS.push(layer(`L${l.index + 1} lateral`, l.res, l.outC, l.outC));
  }
}
// The recurrent cell: bottom-up input + lateral input (the layer's own previous state) in one dispatch.
const PAIRS: Layer[] = [shapes[1], shapes[shapes.length - 1]].map((l) => ({
  ...layer(`L${l.index + 1}+lateral`, l.res, l.inC, l.outC),
  lateral: [preset.batch, l.res, l.res, l.outC],
}));

const macs = (g: ConvGeometry) => g.batch * g.ho * g.wo * g.kh * g.kw * g.cin * g.cout;

interface Row {
  layer: string;
  kernel: string;
  flops: number;
  t: Timing;
}

async function measure(layer: Layer, kernels = ['forward', 'dgrad', 'wgrad']): Promise<Row[]> {
  const opts = { padding: 'same' as const };
  const g = convGeometry('bench', layer.x, layer.w, opts);
  const x = Tensor.from(device, random(g.batch * g.h * g.w * g.cin), layer.x);
  const w = Tensor.from(device, random(g.kh * g.kw * g.cin * g.cout), layer.w);
  const gy = Tensor.from(device, random(g.batch * g.ho * g.wo * g.cout), [g.batch, g.ho, g.wo, g.cout]);
  const flops = 2 * macs(g);
  const rows: Row[] = [];
  const add = async (kernel: string, fn: () => void, f = flops) => rows.push({ layer: layer.name, kernel, flops: f, t: await time(fn) });
  if (layer.lateral) {
    const w2 = Tensor.from(device, random(3 * 3 * layer.lateral[3] * g.cout), [3, 3, layer.lateral[3], g.cout]);
    const h = Tensor.from(device, random(layer.lateral.reduce((a, b) => a * b)), layer.lateral);
    const g2 = convGeometry('bench', layer.lateral, w2.shape, opts);
    await add('forward pair', () => conv2dPair(x, w, h, w2, undefined, opts).dispose(), flops + 2 * macs(g2));
    w2.dispose(), h.dispose();
  } else {
    if (kernels.includes('forward')) await add('forward', () => conv2d(x, w, undefined, opts).dispose());
    // Layer 1's input gradient is never needed (the image is not trained).
    if (kernels.includes('dgrad') && g.cin > 1) await add('dgrad', () => conv2dBackwardInput(gy, w, g).dispose());
    if (kernels.includes('wgrad')) await add('wgrad', () => conv2dBackwardWeight(gy, x, g).dispose());
  }
  x.dispose(), w.dispose(), gy.dispose();
  return rows;
}

const gflops = (r: Row) => ({ wall: r.flops / r.t.wall / 1e9, cpu: r.flops / r.t.cpu / 1e9 });
const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(0)}%`;

function print(rows: Row[], peak: Timing): void {
  console.log(`${'layer'.padEnd(30)} ${'kernel'.padEnd(13)} ${'ms'.padStart(8)} ${'GFLOP/s'.padStart(8)} ${'of peak'.padStart(8)}` +
    ` ${'cpu GFLOP/s'.padStart(12)} ${'of peak'.padStart(8)}`);
  for (const r of rows) {
    const gf = gflops(r);
    console.log(`${r.layer.padEnd(30)} ${r.kernel.padEnd(13)} ${(r.t.wall * 1e3).toFixed(2).padStart(8)} ${gf.wall.toFixed(2).padStart(8)}` +
      ` ${pct(gf.wall, peak.wall).padStart(8)} ${gf.cpu.toFixed(2).padStart(12)} ${pct(gf.cpu, peak.cpu).padStart(8)}`);
  }
}

function summary(rows: Row[], peak: Timing): void {
  const kernels = [...new Set(rows.map((r) => r.kernel))];
  for (const k of kernels) {
    const rs = rows.filter((r) => r.kernel === k);
    const flops = rs.reduce((a, r) => a + r.flops, 0);
    const wall = flops / rs.reduce((a, r) => a + r.t.wall, 0) / 1e9;
    const cpu = flops / rs.reduce((a, r) => a + r.t.cpu, 0) / 1e9;
    console.log(`  ${k.padEnd(13)} all layers: ${wall.toFixed(2)} GFLOP/s (${pct(wall, peak.wall)} of peak), ` +
      `by CPU time ${cpu.toFixed(2)} GFLOP/s (${pct(cpu, peak.cpu)})`);
  }
}

console.log(`adapter: ${device.info.description}; ${CORES} cores; best of ${ROUNDS} batches`);
const before = await fmaPeak();
console.log(`tiles: ${JSON.stringify(convTiles(device))}\n`);
const rows: Row[] = [];
for (const l of [...LAYERS, ...PAIRS]) rows.push(...(await measure(l)));
const after = await fmaPeak();
const peak = { wall: Math.max(before.wall, after.wall), cpu: Math.max(before.cpu, after.cpu) };
console.log(`fma_peak: ${peak.wall.toFixed(2)} GFLOP/s wall, ${peak.cpu.toFixed(2)} by CPU time ` +
  `(before ${before.wall.toFixed(1)} / ${before.cpu.toFixed(1)}, after ${after.wall.toFixed(1)} / ${after.cpu.toFixed(1)})\n`);
print(rows, peak);
summary(rows, peak);

if (process.argv.includes('--sweep')) {
  // Variants of the tile table, timed on the layers that dominate the network's cost; compare the
  // CPU-time column (robust to other load) within this run.
  type Change = (t: ConvTiles) => void;
  const base = structuredClone(CONV_TILES.software);
  const variants: [string, string, Change][] = [
    ['forward', 'table', () => {}],
    ['forward', 'no subgroups', (t) => { t.forward.subgroups = false; }],
    ['forward', 'outputs 32', (t) => { t.forward.outputs = 32; }],
    ['forward', 'outputs 128', (t) => { t.forward.outputs = 128; }],
    ['forward', 'tn8', (t) => { t.forward.tn = 8; }],
    ['forward', 'wg32', (t) => { t.forward.wg = 32; }],
    ['forward', 'rows up to 16 columns', (t) => { t.forward.rows!.maxTn = 16; }],
    ['forward', 'rows off', (t) => { delete t.forward.rows; }],
    ['forward', 'textures off', (t) => { t.forward.textures = false; }],
    ['forward', 'kx unrolled', (t) => { t.forward.kxLoop = false; }],
    ['forward', 'kx unrolled, outputs 384', (t) => { t.forward.kxLoop = false; t.forward.outputs = 384; }],
    ['forward', 'outputs 384', (t) => { t.forward.outputs = 384; }],
    ['dgrad', 'table', () => {}],
    ['dgrad', 'no subgroups', (t) => { t.forward.subgroups = false; }],
    ['dgrad', 'textures off', (t) => { t.forward.textures = false; }],
    ['dgrad', 'kx unrolled', (t) => { t.forward.kxLoop = false; }],
    ['wgrad', 'table', () => {}],
    ['wgrad', 'no subgroups', (t) => { t.wgrad.subgroups = false; }],
    ['wgrad', 'outputs 96', (t) => { t.wgrad.outputs = 96; }],
    ['wgrad', 'minChunk 256', (t) => { t.wgrad.minChunk = 256; }],
    ['wgrad', 'minChunk 512', (t) => { t.wgrad.minChunk = 512; }],
    ['wgrad', 'minChunk 2048', (t) => { t.wgrad.minChunk = 2048; }],
    ['wgrad', 'minChunk 4096', (t) => { t.wgrad.minChunk = 4096; }],
    ['wgrad', 'laneSplitBelow 32', (t) => { t.wgrad.laneSplitBelow = 32; }],
  ];
  const focus = process.argv.includes('--all') ? LAYERS : [LAYERS[1], LAYERS[Math.floor(LAYERS.length / 2)], LAYERS[LAYERS.length - 1]];
  const all: Row[] = [];
  for (const [kernel, name, change] of variants) {
    CONV_TILES.software = structuredClone(base);
    change(CONV_TILES.software);
    for (const l of focus) for (const r of await measure(l, [kernel])) all.push({ ...r, layer: `${name} | ${l.name.split(' ')[0]}` });
  }
  CONV_TILES.software = base;
  console.log('\nsweep:');
  print(all, peak);
}
device.destroy();
