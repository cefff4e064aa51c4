// Elementwise ops over flat f32 arrays. 1-D grids fold into y past 65535 workgroups, hence the index.
// `c` is the channel count for ops that broadcast a [C] operand over the last (channel) axis.
// The *4 entry points do the same on vec4s where n % 4 == 0 (n is still in elements): a quarter of the
// loads and index arithmetic, 2-2.5x faster on llvmpipe, where every storage access is a per-lane load.
struct P { n: u32, c: u32, alpha: f32, beta: f32 }

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(1) var<storage, read_write> y4: array<vec4f>;
@group(0) @binding(2) var<storage, read> a4: array<vec4f>;
@group(0) @binding(3) var<storage, read> b4: array<vec4f>;

override WG_X: u32 = 256;

fn index(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG_X; }

// y = alpha * a + beta * b   (add: 1, 1; sub: 1, -1)
@compute @workgroup_size(WG_X) fn axpby(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y[i] = p.alpha * a[i] + p.beta * b[i];
}

@compute @workgroup_size(WG_X) fn axpby4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n / 4u) { return; }
  y4[i] = p.alpha * a4[i] + p.beta * b4[i];
}

// y = a + beta * b[channel]
@compute @workgroup_size(WG_X) fn add_channel(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y[i] = a[i] + p.beta * b[i % p.c];
}

@compute @workgroup_size(WG_X) fn mul(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y[i] = a[i] * b[i];
}

@compute @workgroup_size(WG_X) fn mul_channel(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y[i] = a[i] * b[i % p.c];
}

// y = relu(a); relu_backward: y = b > 0 ? a : 0 (a = upstream gradient, b = forward output)
@compute @workgroup_size(WG_X) fn relu(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y[i] = select(a[i], 0.0, a[i] < 0.0); // not max(a, 0): let a NaN through, as PyTorch does
}

@compute @workgroup_size(WG_X) fn relu_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y[i] = select(0.0, a[i], b[i] > 0.0);
}

// In place: y = alpha (fill), y += alpha * a (gradient accumulation).
@compute @workgroup_size(WG_X) fn fill(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y[i] = p.alpha;
}

@compute @workgroup_size(WG_X) fn accumulate(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y[i] = y[i] + p.alpha * a[i];
}

@compute @workgroup_size(WG_X) fn accumulate4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n / 4u) { return; }
  y4[i] = y4[i] + p.alpha * a4[i];
}

@compute @workgroup_size(WG_X) fn scale_inplace(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y[i] = p.alpha * y[i];
}

// y[i] = alpha * a[i % c]: broadcasts a [C] vector (or, with c = 1, a scalar) over y.
@compute @workgroup_size(WG_X) fn broadcast(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  y[i] = p.alpha * a[i % p.c];
}
