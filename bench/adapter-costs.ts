/**
 * What a memory access costs on this adapter, in units of the FMAs it displaces: each case runs a loop of 8
 * independent vec4 FMA chains per thread and feeds each chain from one kind of read, and the time over the
 * FMA-only loop is the read's cost. On a software adapter (llvmpipe) this is the cost model behind the conv
 * kernels' design: a storage read at a per-lane address is emulated lane by lane (a branch and a bounds check
 * per component), workgroup and uniform reads are cheaper, and subgroup broadcasts are nearly free, so a
 * kernel's speed there is set by how many distinct values each lane gathers per FMA.
 *
 *   npx tsx bench/adapter-costs.ts [--no-subgroups]
 *
 * Each figure is the median of 7 batches by the process's CPU time over the core count (robust to other
 * load on a software adapter, where the GPU is this process's threads).
 */
import { availableParallelism } from 'node:os';
import { Device } from '../src/engine/device.js';

const device = await Device.create();
const d = device.device;
const CORES = availableParallelism();
const N = 1 << 16; // vec4s in the storage source
const ITERS = 256;
const THREADS = 64 * 256;
const subgroups = device.hasFeature('subgroups') && !process.argv.includes('--no-subgroups');

const src = d.createBuffer({ size: N * 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
d.queue.writeBuffer(src, 0, new Float32Array(N * 4).map((_, i) => (i % 13) * 0.01));
const out = d.createBuffer({ size: THREADS * 16, usage: GPUBufferUsage.STORAGE });
const ubo = d.createBuffer({ size: 65536, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
d.queue.writeBuffer(ubo, 0, new Float32Array(16384).map((_, i) => (i % 7) * 0.01));
const tex = d.createTexture({ size: [256, 256], format: 'rgba32float', usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST });
d.queue.writeTexture({ texture: tex }, new Float32Array(256 * 256 * 4).map((_, i) => (i % 11) * 0.01), { bytesPerRow: 256 * 16 }, [256, 256]);

/** A kernel whose loop feeds chain k from `read(k)` (a WGSL expression of i, g, li, lane). */
function shader(read: (k: number) => string, decl = ''): string {
  const chains = Array.from({ length: 8 }, (_, k) => `a${k} = fma(a${k}, m, ${read(k)});`).join('\n    ');
  return `${subgroups ? 'enable subgroups;' : ''}
@group(0) @binding(0) var<storage, read> x: array<vec4f>;
@group(0) @binding(1) var<storage, read_write> o: array<vec4f>;
@group(0) @binding(2) var<uniform> u: array<vec4f, 4096>;
@group(0) @binding(3) var t: texture_2d<f32>;
${decl}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(local_invocation_index) li: u32${subgroups ? ', @builtin(subgroup_invocation_id) lane: u32' : ''}) {
  var a0 = vec4f(f32(gid.x)); var a1 = a0 + 1.0; var a2 = a0 + 2.0; var a3 = a0 + 3.0;
  var a4 = a0 + 4.0; var a5 = a0 + 5.0; var a6 = a0 + 6.0; var a7 = a0 + 7.0;
  let m = vec4f(0.999);
  let g = gid.x;
  for (var i = 0u; i < ${ITERS}u; i++) {
    ${chains}
  }
  // Every binding is used, so one bind group fits every case.
  o[g] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + (x[g & 1023u] + u[g & 15u] + textureLoad(t, vec2u(g & 3u, 0u), 0)) * 1e-9;
}`;
}

const SHARED = 'var<workgroup> sh: array<vec4f, 256>;';
const CASES: [string, (k: number) => string, string?][] = [
  ['FMA only (the baseline)', () => 'm'],
  ['storage, per-lane address (consecutive lanes)', (k) => `x[(g + i * 64u + ${k}u * 4096u) & 65535u]`],
  ['storage, per-lane address (scattered)', (k) => `x[(g * 7u + i * 64u + ${k}u * 4096u) & 65535u]`],
  ['storage, the same address in every lane', (k) => `x[(i * 8u + ${k}u) & 65535u]`],
  ['uniform buffer, the same address', (k) => `u[(i * 8u + ${k}u) & 4095u]`],
  ['uniform buffer, per-lane address', (k) => `u[(g + i * 8u + ${k}u) & 4095u]`],
  ['workgroup memory, per-lane address', (k) => `sh[(li + i + ${k}u) & 255u]`, SHARED],
  ['workgroup memory, the same address', (k) => `sh[(i * 8u + ${k}u) & 255u]`, SHARED],
  ['textureLoad rgba32float, per-lane texel', (k) => `textureLoad(t, vec2u((g + ${k}u) & 255u, (i + (g >> 8u)) & 255u), 0)`],
  ...(subgroups ? [
    ['subgroupBroadcast, constant lane', (k: number) => `subgroupBroadcast(a${(k + 1) % 8}, ${k}u)`],
    ['subgroupShuffle, per-lane lane', (k: number) => `subgroupShuffle(a${(k + 1) % 8}, (lane + ${k}u) & 7u)`],
  ] as [string, (k: number) => string][] : []),
];

async function cpuMsPerDispatch(pipe: GPUComputePipeline, bg: GPUBindGroup): Promise<number> {
  const run = async (reps: number) => {
    const enc = d.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipe);
    pass.setBindGroup(0, bg);
    for (let r = 0; r < reps; r++) pass.dispatchWorkgroups(THREADS / 64);
    pass.end();
    d.queue.submit([enc.finish()]);
    await d.queue.onSubmittedWorkDone();
  };
  await run(1);
  const samples: number[] = [];
  for (let k = 0; k < 7; k++) {
    const c0 = process.cpuUsage();
    await run(4);
    const c = process.cpuUsage(c0);
    samples.push((c.user + c.system) / 1e3 / CORES / 4);
  }
  return samples.sort((a, b) => a - b)[3];
}

console.log(`adapter: ${device.info.description}; ${CORES} cores; subgroups ${subgroups ? 'on' : 'off'}`);
const rows: [string, number][] = [];
for (const [name, read, decl] of CASES) {
  const module = d.createShaderModule({ code: shader(read, decl) });
  const pipe = d.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bg = d.createBindGroup({
    layout: pipe.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: out } }, { binding: 2, resource: { buffer: ubo } }, { binding: 3, resource: tex.createView() }],
  });
  rows.push([name, (await cpuMsPerDispatch(pipe, bg)) * 1e6 / (THREADS * ITERS)]); // ns per lane per iteration
}
const [, base] = rows[0];
const fmaNs = base / 8; // one vec4 FMA per lane, loop overhead included
console.log(`${'read (one vec4 per chain per iteration)'.padEnd(48)} ${'ns/lane/iter'.padStart(12)} ${'extra per read'.padStart(15)} ${'in vec4 FMAs'.padStart(13)}`);
for (const [name, ns] of rows) {
  const extra = (ns - base) / 8;
  console.log(`${name.padEnd(48)} ${ns.toFixed(3).padStart(12)} ${`${extra.toFixed(3)} ns`.padStart(15)} ${(extra / fmaNs).toFixed(1).padStart(13)}`);
}
console.log(`FMA-only loop: ${(64 / base).toFixed(1)} GFLOP/s (a 1-round loop; shaders/roofline.wgsl's unrolled peak is higher)`);
device.destroy();
