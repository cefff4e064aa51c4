// Column sums of a row-major [rows, cols] matrix, in passes: each thread sums `chunk` rows of one column,
// writing [ceil(rows / chunk), cols] partial sums; the host repeats until one row is left.
// Adjacent threads read adjacent columns, so wide matrices read coalesced.
struct P { rows: u32, cols: u32, chunk: u32, scale: f32 }

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

override WG_X: u32 = 256;

@compute @workgroup_size(WG_X) fn sum_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG_X;
  let groups = (p.rows + p.chunk - 1u) / p.chunk;
  if (i >= groups * p.cols) { return; }
  let g = i / p.cols;
  let c = i % p.cols;
  let r1 = min(g * p.chunk + p.chunk, p.rows);
  var s = 0.0;
  for (var r = g * p.chunk; r < r1; r++) { s += x[r * p.cols + c]; }
  y[i] = s * p.scale;
}
