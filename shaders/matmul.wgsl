// C[M, N] = op(A) op(B), op = optional transpose (override constants, so each variant compiles to
// straight-line indexing). Each thread owns a 4x4 block of C in registers and walks K once; on a
// software adapter this beats shared-memory tiling, whose barriers are costly when a CPU emulates a
// workgroup. Out-of-range rows and columns are clamped on read and skipped on write.
struct P { m: u32, n: u32, k: u32, pad: u32 }

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;

override WG_X: u32 = 8;
override WG_Y: u32 = 8;
override TRANS_A: bool = false;
override TRANS_B: bool = false;

fn ldA(i: u32, kk: u32) -> f32 {
  if (TRANS_A) { return a[kk * p.m + i]; }
  return a[i * p.k + kk];
}

fn ldB(kk: u32, j: u32) -> f32 {
  if (TRANS_B) { return b[j * p.k + kk]; }
  return b[kk * p.n + j];
}

@compute @workgroup_size(WG_X, WG_Y) fn matmul(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let rm = p.m - 1u;
  let cm = p.n - 1u;
  let r = vec4u(row0, min(row0 + 1u, rm), min(row0 + 2u, rm), min(row0 + 3u, rm));
  let cc = vec4u(col0, min(col0 + 1u, cm), min(col0 + 2u, cm), min(col0 + 3u, cm));
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var kk = 0u; kk < p.k; kk++) {
    let bv = vec4f(ldB(kk, cc.x), ldB(kk, cc.y), ldB(kk, cc.z), ldB(kk, cc.w));
    acc0 += ldA(r.x, kk) * bv;
    acc1 += ldA(r.y, kk) * bv;
    acc2 += ldA(r.z, kk) * bv;
    acc3 += ldA(r.w, kk) * bv;
  }
  let rows = array<vec4f, 4>(acc0, acc1, acc2, acc3);
  for (var i = 0u; i < 4u; i++) {
    let row = row0 + i;
    if (row >= p.m) { break; }
    for (var j = 0u; j < 4u; j++) {
      let col = col0 + j;
      if (col < p.n) { c[row * p.n + col] = rows[i][j]; }
    }
  }
}
