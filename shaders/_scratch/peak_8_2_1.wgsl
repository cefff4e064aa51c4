struct P { iters: u32, n: u32, seed: f32, pad: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let s = f32(gid.x) * 1e-7 + p.seed;
  let m = vec4f(0.999999); let c = vec4f(1e-6);
  var a0 = vec4f(s + 0.0, s + 0.1, s + 0.2, s + 0.3);
  var a1 = vec4f(s + 1.0, s + 0.1, s + 0.2, s + 0.3);
  var a2 = vec4f(s + 2.0, s + 0.1, s + 0.2, s + 0.3);
  var a3 = vec4f(s + 3.0, s + 0.1, s + 0.2, s + 0.3);
  var a4 = vec4f(s + 4.0, s + 0.1, s + 0.2, s + 0.3);
  var a5 = vec4f(s + 5.0, s + 0.1, s + 0.2, s + 0.3);
  var a6 = vec4f(s + 6.0, s + 0.1, s + 0.2, s + 0.3);
  var a7 = vec4f(s + 7.0, s + 0.1, s + 0.2, s + 0.3);
  for (var i = 0u; i < p.iters; i += 1u) {
    a0 = fma(fma(a0, m, c), m, c);
    a1 = fma(fma(a1, m, c), m, c);
    a2 = fma(fma(a2, m, c), m, c);
    a3 = fma(fma(a3, m, c), m, c);
    a4 = fma(fma(a4, m, c), m, c);
    a5 = fma(fma(a5, m, c), m, c);
    a6 = fma(fma(a6, m, c), m, c);
    a7 = fma(fma(a7, m, c), m, c);
  }
  var t = vec4f(0.0);
  t += a0;
  t += a1;
  t += a2;
  t += a3;
  t += a4;
  t += a5;
  t += a6;
  t += a7;
  if (gid.x < p.n) { out[gid.x] = t.x + t.y + t.z + t.w; }
}
