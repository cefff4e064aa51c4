// The adapter's practical compute peak, for reporting kernels as a fraction of it: each thread runs 8
// independent vec4 FMA chains (enough to hide FMA latency on any SIMD width), unrolled 4 times, and writes
// one value so the work is not optimised away. FLOPs per thread = iters * 8 chains * 4 lanes * 2.
struct P { iters: u32, n: u32, seed: f32, pad: f32 }

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4f>;
@group(0) @binding(2) var<storage, read> src: array<vec4f>;

override WG_X: u32 = 64;

@compute @workgroup_size(WG_X) fn fma_peak(@builtin(global_invocation_id) gid: vec3u) {
  let s = f32(gid.x) * 1e-7 + p.seed;
  var a0 = vec4f(s, s + 0.1, s + 0.2, s + 0.3);
  var a1 = a0 + 1.0;
  var a2 = a0 + 2.0;
  var a3 = a0 + 3.0;
  var a4 = a0 + 4.0;
  var a5 = a0 + 5.0;
  var a6 = a0 + 6.0;
  var a7 = a0 + 7.0;
  let m = vec4f(0.999999);
  let c = vec4f(1e-6);
  // Four rounds per iteration: on llvmpipe a loop iteration costs about as much as one round of 8 FMAs
  // (its masks and branch), which a 1-round loop would count against the peak. p.iters is a multiple of 4.
  for (var i = 0u; i < p.iters; i += 4u) {
    a0 = fma(a0, m, c);
    a1 = fma(a1, m, c);
    a2 = fma(a2, m, c);
    a3 = fma(a3, m, c);
    a4 = fma(a4, m, c);
    a5 = fma(a5, m, c);
    a6 = fma(a6, m, c);
    a7 = fma(a7, m, c);
    a0 = fma(a0, m, c);
    a1 = fma(a1, m, c);
    a2 = fma(a2, m, c);
    a3 = fma(a3, m, c);
    a4 = fma(a4, m, c);
    a5 = fma(a5, m, c);
    a6 = fma(a6, m, c);
    a7 = fma(a7, m, c);
    a0 = fma(a0, m, c);
    a1 = fma(a1, m, c);
    a2 = fma(a2, m, c);
    a3 = fma(a3, m, c);
    a4 = fma(a4, m, c);
    a5 = fma(a5, m, c);
    a6 = fma(a6, m, c);
    a7 = fma(a7, m, c);
    a0 = fma(a0, m, c);
    a1 = fma(a1, m, c);
    a2 = fma(a2, m, c);
    a3 = fma(a3, m, c);
    a4 = fma(a4, m, c);
    a5 = fma(a5, m, c);
    a6 = fma(a6, m, c);
    a7 = fma(a7, m, c);
  }
  let t = (a0 + a1) + (a2 + a3) + (a4 + a5) + (a6 + a7);
  if (gid.x < p.n) { out[gid.x] = t.x + t.y + t.z + t.w; }
}

// The adapter's practical memory bandwidth: each thread copies one vec4 (16 bytes read, 16 written)
// of p.n from src to dst. A 1-D grid over 65535 workgroups folds into y.
@compute @workgroup_size(WG_X) fn copy(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG_X;
  if (i < p.n) { dst[i] = src[i]; }
}
