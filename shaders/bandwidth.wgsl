// The adapter's practical memory bandwidth, for the bench's roofline: each thread copies one vec4
// (16 bytes read, 16 written) from src to dst. A 1-D grid over 65535 workgroups folds into y.
struct P { n: u32 }

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4f>;
@group(0) @binding(2) var<storage, read> src: array<vec4f>;

override WG_X: u32 = 256;

@compute @workgroup_size(WG_X) fn copy(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG_X;
  if (i < p.n) { dst[i] = src[i]; }
}
