// Nearest-neighbour upsampling of NHWC images by an integer factor to a given output size (rows and
// columns past factor * input clamp to the last input row/column), and its backward: each input pixel
// gathers the output gradients that copied it (no atomics, deterministic).
struct P { n: u32, hi: u32, wi: u32, c: u32, ho: u32, wo: u32, f: u32, pad: u32 }

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

override WG_X: u32 = 256;

@compute @workgroup_size(WG_X) fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG_X;
  if (i >= p.n * p.ho * p.wo * p.c) { return; }
  let ch = i % p.c;
  let ox = (i / p.c) % p.wo;
  let oy = (i / (p.c * p.wo)) % p.ho;
  let b = i / (p.c * p.wo * p.ho);
  let sx = min(ox / p.f, p.wi - 1u);
  let sy = min(oy / p.f, p.hi - 1u);
  y[i] = x[((b * p.hi + sy) * p.wi + sx) * p.c + ch];
}

// y = input gradient [n, hi, wi, c]; x = output gradient [n, ho, wo, c].
@compute @workgroup_size(WG_X) fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG_X;
  if (i >= p.n * p.hi * p.wi * p.c) { return; }
  let ch = i % p.c;
  let sx = (i / p.c) % p.wi;
  let sy = (i / (p.c * p.wi)) % p.hi;
  let b = i / (p.c * p.wi * p.hi);
  let y1 = select(min((sy + 1u) * p.f, p.ho), p.ho, sy == p.hi - 1u);
  let x1 = select(min((sx + 1u) * p.f, p.wo), p.wo, sx == p.wi - 1u);
  var s = 0.0;
  for (var oy = sy * p.f; oy < y1; oy++) {
    for (var ox = sx * p.f; ox < x1; ox++) {
      s += x[((b * p.ho + oy) * p.wo + ox) * p.c + ch];
    }
  }
  y[i] = s;
}
