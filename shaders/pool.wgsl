// 2-D pooling over NHWC f32 images, PyTorch semantics (symmetric explicit padding, floor output size).
// Forwards run one thread per output; backwards run one thread per input element and gather from the
// outputs whose windows cover it, so every gradient is a fixed-order sum: deterministic, no atomics.
// Max pool records, per output, the flat index iy * W + ix of its maximum within the sample's plane
// (PyTorch's `indices`); ties keep the first maximum in scan order (rows, then columns).
//
// The image geometry (everything but the batch size) is baked in as override constants: index arithmetic
// then divides by constants, which compile to multiplies and shifts; a division by a runtime value is a
// long instruction sequence on GPUs and a scalar loop on a CPU's SIMD lanes (forward and backward were
// 2-3x slower with runtime sizes, measured on llvmpipe). A network has a handful of pooling sites, so a
// handful of pipelines.
// 1-D grids fold into y past 65535 workgroups, hence index().
struct P { n: u32, total: u32 }

@group(0) @binding(0) var<uniform> p: P;

// max_forward
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> argmax: array<i32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;

// avg_forward, global_avg_forward: y (1), x (2)
@group(0) @binding(2) var<storage, read> x_in: array<f32>;

// max_backward, avg_backward, global_avg_backward: gx (1), gy (2), argmax (3)
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read> argmax_in: array<i32>;

override WG_X: u32 = 256;
override WG_Y: u32 = 1;
// Input [N, H, W, C] -> output [N, OH, OW, C]; kernel KH x KW, stride SH x SW, padding PH x PW each side.
override H: u32 = 1;
override W: u32 = 1;
override C: u32 = 1;
override OH: u32 = 1;
override OW: u32 = 1;
override KH: u32 = 1;
override KW: u32 = 1;
override SH: u32 = 1;
override SW: u32 = 1;
override PH: u32 = 0;
override PW: u32 = 0;
// avg pool: divide by the whole window, padding included (PyTorch's count_include_pad).
override INCLUDE_PAD: bool = true;
// max pool backward: add into gx instead of overwriting it (a gradient accumulated in place).
override ACCUMULATE: bool = false;

fn index(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG_X; }

// Splits a flat NHWC index into (n, row, col, channel) for images of `rows` x `cols` x `chans`
// (C, or C4 for the vec4 kernels).
fn unflatten(i: u32, rows: u32, cols: u32, chans: u32) -> vec4u {
  let ch = i % chans;
  let pix = i / chans;
  return vec4u(pix / (rows * cols), (pix / cols) % rows, pix % cols, ch);
}

@compute @workgroup_size(WG_X) fn max_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.total) { return; }
  let o = unflatten(i, OH, OW, C);
  let y0 = i32(o.y * SH) - i32(PH);
  let x0 = i32(o.z * SW) - i32(PW);
  var best = 0.0;
  var arg = -1;
  for (var ky = 0; ky < i32(KH); ky++) {
    let iy = y0 + ky;
    if (iy < 0 || iy >= i32(H)) { continue; }
    for (var kx = 0; kx < i32(KW); kx++) {
      let ix = x0 + kx;
      if (ix < 0 || ix >= i32(W)) { continue; }
      let v = x[((o.x * H + u32(iy)) * W + u32(ix)) * C + o.w];
      // Padding never wins (it is -inf); the first valid element seeds the scan; NaN propagates.
      if (arg < 0 || v > best || v != v) {
        best = v;
        arg = iy * i32(W) + ix;
      }
    }
  }
  y[i] = best;
  argmax[i] = arg;
}

// Output rows (or columns) whose windows cover input row `i`: [lo, hi], possibly empty.
fn covering(i: u32, k: u32, s: u32, pad: u32, n_out: u32) -> vec2i {
  let top = i32(i + pad) - i32(k) + 1; // lowest window start that still covers i
  let lo = select(0, (top + i32(s) - 1) / i32(s), top > 0);
  let hi = min(i32(n_out) - 1, i32(i + pad) / i32(s));
  return vec2i(lo, hi);
}

@compute @workgroup_size(WG_X) fn max_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.total) { return; }
  let e = unflatten(i, H, W, C);
  let me = i32(e.y * W + e.z);
  let ry = covering(e.y, KH, SH, PH, OH);
  let rx = covering(e.z, KW, SW, PW, OW);
  var s = 0.0;
  for (var oy = ry.x; oy <= ry.y; oy++) {
    for (var ox = rx.x; ox <= rx.y; ox++) {
      let o = ((e.x * OH + u32(oy)) * OW + u32(ox)) * C + e.w;
      if (argmax_in[o] == me) { s += gy[o]; }
    }
  }
  if (ACCUMULATE) { gx[i] += s; } else { gx[i] = s; }
}

// ---- max pool on vec4s (C % 4 == 0): a thread per 4 adjacent channels of one pixel, the same scan and
// gather as max_forward / max_backward per component. A quarter of the threads, loads and index
// arithmetic (storage accesses are per-lane loads on llvmpipe).
override C4: u32 = C / 4u;

@group(0) @binding(1) var<storage, read_write> y4: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> argmax4: array<vec4i>;
@group(0) @binding(3) var<storage, read> x4: array<vec4f>;

@compute @workgroup_size(WG_X) fn max_forward4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.total) { return; }
  let o = unflatten(i, OH, OW, C4);
  let y0 = i32(o.y * SH) - i32(PH);
  let x0 = i32(o.z * SW) - i32(PW);
  var best = vec4f(0.0);
  var arg = vec4i(-1);
  for (var ky = 0; ky < i32(KH); ky++) {
    let iy = y0 + ky;
    if (iy < 0 || iy >= i32(H)) { continue; }
    for (var kx = 0; kx < i32(KW); kx++) {
      let ix = x0 + kx;
      if (ix < 0 || ix >= i32(W)) { continue; }
      let v = x4[((o.x * H + u32(iy)) * W + u32(ix)) * C4 + o.w];
      let take = (arg < vec4i(0)) | (v > best) | (v != v);
      best = select(best, v, take);
      arg = select(arg, vec4i(iy * i32(W) + ix), take);
    }
  }
  y4[i] = best;
  argmax4[i] = arg;
}

@group(0) @binding(1) var<storage, read_write> gx4: array<vec4f>;
@group(0) @binding(2) var<storage, read> gy4: array<vec4f>;
@group(0) @binding(3) var<storage, read> argmax_in4: array<vec4i>;

@compute @workgroup_size(WG_X) fn max_backward4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.total) { return; }
  let e = unflatten(i, H, W, C4);
  let me = vec4i(i32(e.y * W + e.z));
  let ry = covering(e.y, KH, SH, PH, OH);
  let rx = covering(e.z, KW, SW, PW, OW);
  var s = vec4f(0.0);
  for (var oy = ry.x; oy <= ry.y; oy++) {
    for (var ox = rx.x; ox <= rx.y; ox++) {
      let o = ((e.x * OH + u32(oy)) * OW + u32(ox)) * C4 + e.w;
      s += select(vec4f(0.0), gy4[o], argmax_in4[o] == me);
    }
  }
  if (ACCUMULATE) { gx4[i] += s; } else { gx4[i] = s; }
}

// Windows that tile the input exactly (kernel = stride, no padding, H = OH * KH, W = OW * KW: the network's
// 2x2 pools): every input lies in exactly one window, so a thread per output quad writes its window's inputs
// (its gradient where the argmax is, 0 elsewhere). One gy and one argmax load per output instead of per input:
// 1.3-1.4x as fast on llvmpipe at the network's two pools (accumulating). Dispatched over the outputs.
@compute @workgroup_size(WG_X) fn max_backward4_tiles(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.total) { return; }
  let o = unflatten(i, OH, OW, C4);
  let g = gy4[i];
  let arg = argmax_in4[i];
  for (var ky = 0u; ky < KH; ky++) {
    let iy = o.y * KH + ky;
    for (var kx = 0u; kx < KW; kx++) {
      let ix = o.z * KW + kx;
      let e = ((o.x * H + iy) * W + ix) * C4 + o.w;
      let v = select(vec4f(0.0), g, arg == vec4i(i32(iy * W + ix)));
      if (ACCUMULATE) { gx4[e] += v; } else { gx4[e] = v; }
    }
  }
}

// How many elements output (oy, ox) averages: PyTorch clips the window to the padded image when
// count_include_pad is on, and to the image itself when it is off.
fn divisor(oy: u32, ox: u32) -> f32 {
  let y0 = i32(oy * SH) - i32(PH);
  let x0 = i32(ox * SW) - i32(PW);
  var y1 = min(y0 + i32(KH), i32(H + PH));
  var x1 = min(x0 + i32(KW), i32(W + PW));
  if (INCLUDE_PAD) { return f32((y1 - y0) * (x1 - x0)); }
  y1 = min(y1, i32(H));
  x1 = min(x1, i32(W));
  return f32((y1 - max(y0, 0)) * (x1 - max(x0, 0)));
}

@compute @workgroup_size(WG_X) fn avg_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.total) { return; }
  let o = unflatten(i, OH, OW, C);
  let y0 = i32(o.y * SH) - i32(PH);
  let x0 = i32(o.z * SW) - i32(PW);
  var s = 0.0;
  for (var iy = max(y0, 0); iy < min(y0 + i32(KH), i32(H)); iy++) {
    for (var ix = max(x0, 0); ix < min(x0 + i32(KW), i32(W)); ix++) {
      s += x_in[((o.x * H + u32(iy)) * W + u32(ix)) * C + o.w];
    }
  }
  y[i] = s / divisor(o.y, o.z);
}

@compute @workgroup_size(WG_X) fn avg_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.total) { return; }
  let e = unflatten(i, H, W, C);
  let ry = covering(e.y, KH, SH, PH, OH);
  let rx = covering(e.z, KW, SW, PW, OW);
  var s = 0.0;
  for (var oy = ry.x; oy <= ry.y; oy++) {
    for (var ox = rx.x; ox <= rx.y; ox++) {
      s += gy[((e.x * OH + u32(oy)) * OW + u32(ox)) * C + e.w] / divisor(u32(oy), u32(ox));
    }
  }
  gx[i] = s;
}

// Global average pool [N, H, W, C] -> [N, C]: a workgroup per (channel block, sample). Lane (cx, r) sums
// pixels r, r + WG_Y, ... of channel block * WG_X + cx (adjacent lanes read adjacent channels), then the
// WG_Y partial sums of each channel are added as a tree in shared memory. WG_X * WG_Y <= 256, WG_Y a power of 2.
var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(WG_X, WG_Y) fn global_avg_forward(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let ch = wid.x * WG_X + lid.x;
  let n = wid.z;
  let hw = H * W;
  var s = 0.0;
  if (ch < C) {
    for (var q = lid.y; q < hw; q += WG_Y) { s += x_in[(n * hw + q) * C + ch]; }
  }
  let slot = lid.y * WG_X + lid.x;
  partial[slot] = s;
  workgroupBarrier();
  for (var half = WG_Y / 2u; half > 0u; half >>= 1u) {
    if (lid.y < half) { partial[slot] += partial[slot + half * WG_X]; }
    workgroupBarrier();
  }
  if (lid.y == 0u && ch < C && n < p.n) { y[n * C + ch] = partial[lid.x] / f32(hw); }
}

@compute @workgroup_size(WG_X) fn global_avg_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.total) { return; }
  let n = i / (H * W * C);
  gx[i] = gy[n * C + i % C] / f32(H * W);
}

// Four channels per thread where C % 4 == 0 (a quarter of the threads and index arithmetic).
@compute @workgroup_size(WG_X) fn global_avg_backward4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.total) { return; }
  let n = i / (H * W * C4);
  gx4[i] = gy4[n * C4 + i % C4] / f32(H * W);
}
