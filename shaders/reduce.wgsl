// Column sums of a row-major [rows, cols] matrix, in passes: each thread sums `chunk` rows of one column
// (sum_rows) or of four adjacent columns (sum_rows4, cols % 4 == 0), writing [ceil(rows / chunk), cols]
// partial sums; the host repeats until one row is left. Adjacent threads read adjacent columns, so wide
// matrices read coalesced. The vec4 form does a quarter of the loads and index arithmetic (about 2x
// faster on llvmpipe, where every storage access is a per-lane load).
struct P { rows: u32, cols: u32, chunk: u32, scale: f32 }

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y4: array<vec4f>;
@group(0) @binding(2) var<storage, read> x4: array<vec4f>;

override WG_X: u32 = 256;
// Add the sums into y instead of overwriting it (the last pass of a gradient accumulated in place).
override ACCUMULATE: bool = false;

@compute @workgroup_size(WG_X) fn sum_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG_X;
  let groups = (p.rows + p.chunk - 1u) / p.chunk;
  if (i >= groups * p.cols) { return; }
  let g = i / p.cols;
  let c = i % p.cols;
  let r1 = min(g * p.chunk + p.chunk, p.rows);
  var s = 0.0;
  for (var r = g * p.chunk; r < r1; r++) { s += x[r * p.cols + c]; }
  if (ACCUMULATE) { y[i] += s * p.scale; } else { y[i] = s * p.scale; }
}

@compute @workgroup_size(WG_X) fn sum_rows4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG_X;
  let cols4 = p.cols / 4u;
  let groups = (p.rows + p.chunk - 1u) / p.chunk;
  if (i >= groups * cols4) { return; }
  let g = i / cols4;
  let c = i % cols4;
  let r1 = min(g * p.chunk + p.chunk, p.rows);
  var s = vec4f(0.0);
  for (var r = g * p.chunk; r < r1; r++) { s += x4[r * cols4 + c]; }
  if (ACCUMULATE) { y4[i] += s * p.scale; } else { y4[i] = s * p.scale; }
}
