// Softmax cross-entropy with integer labels, fused and stable: loss = logsumexp(x) - x[label], computed
// around the row maximum. One thread per row (rows are classes of one sample: a few hundred at most).
// The forward keeps the softmax for the backward: dL/dx = gy * (softmax(x) - onehot(label)).
// A label outside [0, k) yields NaN, so the caller's non-finite-loss check catches it.
struct P { n: u32, k: u32 }

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> labels: array<i32>;

@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(2) var<storage, read> probs_in: array<f32>;
@group(0) @binding(3) var<storage, read> gy: array<f32>;

override WG_X: u32 = 64;

@compute @workgroup_size(WG_X) fn forward(@builtin(global_invocation_id) gid: vec3u) {
  let row = gid.x;
  if (row >= p.n) { return; }
  let base = row * p.k;
  var m = x[base];
  for (var j = 1u; j < p.k; j++) { m = max(m, x[base + j]); }
  var s = 0.0;
  for (var j = 0u; j < p.k; j++) { s += exp(x[base + j] - m); }
  let lse = m + log(s);
  for (var j = 0u; j < p.k; j++) { probs[base + j] = exp(x[base + j] - lse); }
  let label = labels[row];
  if (label < 0 || u32(label) >= p.k) {
    out[row] = bitcast<f32>(0x7fc00000u | p.k); // a quiet NaN (runtime operand: WGSL rejects a constant NaN)
  } else {
    out[row] = lse - x[base + u32(label)];
  }
}

@compute @workgroup_size(WG_X) fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG_X;
  if (i >= p.n * p.k) { return; }
  let row = i / p.k;
  let j = i % p.k;
  let onehot = select(0.0, 1.0, labels[row] == i32(j));
  gx[i] = gy[row] * (probs_in[i] - onehot);
}
