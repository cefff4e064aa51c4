// The weight of a stride-1 conv's input gradient: wf[ky, kx, co, ci] = w[kh-1-ky, kw-1-kx, ci, co], i.e. the
// kernel rotated by 180 degrees with its channel axes swapped, so that dX = forward conv of dY with wf
// (conv2d_forward.wgsl reads HWIO weights with Cout contiguous; here Cin plays Cout).
struct P { n: u32, kh: u32, kw: u32, cin: u32, cout: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> wf: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;

override WG_X: u32 = 64;

@compute @workgroup_size(WG_X) fn flip(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG_X;
  if (i >= p.n) { return; }
  let ci = i % p.cin;
  let t = i / p.cin;
  let co = t % p.cout;
  let tap = t / p.cout;
  let kx = p.kw - 1u - tap % p.kw;
  let ky = p.kh - 1u - tap / p.kw;
  wf[i] = w[((ky * p.kw + kx) * p.cin + ci) * p.cout + co];
}
