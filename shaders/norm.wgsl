// Layer norm (GroupNorm with one group: statistics per sample over H, W and C) and batch norm (statistics
// per channel over N, H and W) on NHWC f32 images, with per-channel affine gamma and beta.
//
// Every reduction is a workgroup reduction: a workgroup of WG_X lanes x WG_Y rows, where lane lid.x owns
// one channel (or, for the per-sample kernels, WG_X = 1 and all WG_Y invocations share the sample) and the
// rows stride over pixels, then sum_rows() adds the rows as a tree in shared memory. Per-(sample, channel)
// partial sums are combined over the samples by one thread per channel in a fixed order, so results are
// deterministic (no atomics). Variances are two-pass (sum of squared deviations from the mean already
// found), not E[x^2] - E[x]^2, which cancels badly in f32.
//
// Bindings are declared above the entry points that use them; a name shared between entry points
// keeps one binding number (pipelines use layout 'auto', so an entry point binds exactly what it uses).
struct P {
  n: u32,        // samples
  hw: u32,       // pixels per sample
  m: u32,        // elements per statistic: H*W*C (layer norm) or N*H*W (batch norm)
  total: u32,    // threads of a one-thread-per-element (or per-channel) dispatch
  eps: f32,
  momentum: f32, // batch norm's running-statistics update
}

@group(0) @binding(0) var<uniform> p: P;

override WG_X: u32 = 1;
override WG_Y: u32 = 256;
// The channel count is a constant so that `i % C` compiles to a multiply and shift, not a runtime
// division (a scalar loop on a CPU's SIMD lanes; ~20% of layer norm's forward on llvmpipe).
override C: u32 = 1;
override RELU: bool = false;        // layer norm fused with a ReLU after it
override PER_CHANNEL: bool = false; // statistics indexed by channel (batch norm) rather than sample (layer norm)
override TRAINING: bool = true;     // batch norm: statistics came from the batch itself
override UPDATE_RUNNING: bool = true; // batch norm training: fold the batch into the running statistics

// Shared memory for sum_rows: WG_X * WG_Y <= 256, WG_Y a power of two.
var<workgroup> red_a: array<f32, 256>;
var<workgroup> red_b: array<f32, 256>;

// Sums (a, b) over the workgroup's rows, per lane; every invocation gets its lane's sums.
// Call from uniform control flow only (it has barriers).
fn sum_rows(lid: vec3u, a: f32, b: f32) -> vec2f {
  let slot = lid.y * WG_X + lid.x;
  red_a[slot] = a;
  red_b[slot] = b;
  workgroupBarrier();
  for (var half = WG_Y / 2u; half > 0u; half >>= 1u) {
    if (lid.y < half) {
      red_a[slot] += red_a[slot + half * WG_X];
      red_b[slot] += red_b[slot + half * WG_X];
    }
    workgroupBarrier();
  }
  let s = vec2f(red_a[lid.x], red_b[lid.x]);
  workgroupBarrier(); // before a later call overwrites the sums
  return s;
}

fn index(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG_X; }

// ---- forward: ln_forward, bn_normalize ----
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> rstd_out: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read> beta: array<f32>;

// One workgroup per sample (wid.z): mean, then variance around it, then y = gamma * xhat + beta (ReLU'd).
@compute @workgroup_size(WG_X, WG_Y) fn ln_forward(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let base = wid.z * p.m;
  var s = 0.0;
  for (var i = lid.y; i < p.m; i += WG_Y) { s += x[base + i]; }
  let mu = sum_rows(lid, s, 0.0).x / f32(p.m);
  var q = 0.0;
  for (var i = lid.y; i < p.m; i += WG_Y) {
    let d = x[base + i] - mu;
    q += d * d;
  }
  let r = inverseSqrt(sum_rows(lid, q, 0.0).x / f32(p.m) + p.eps);
  if (lid.y == 0u) {
    mean_out[wid.z] = mu;
    rstd_out[wid.z] = r;
  }
  for (var i = lid.y; i < p.m; i += WG_Y) {
    let ch = i % C;
    var v = (x[base + i] - mu) * r * gamma[ch] + beta[ch];
    if (RELU) { v = max(v, 0.0); }
    y[base + i] = v;
  }
}

// One thread per element, per-channel statistics (ReLU'd with RELU).
@compute @workgroup_size(WG_X) fn bn_normalize(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.total) { return; }
  let ch = i % C;
  var v = (x[i] - mean[ch]) * rstd[ch] * gamma[ch] + beta[ch];
  if (RELU) { v = max(v, 0.0); }
  y[i] = v;
}

// ---- backward: ln_backward_x, channel_grad_partials (batch norm's dL/dx: bn_backward_x at the end) ----
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(5) var<storage, read> gy: array<f32>;
@group(0) @binding(6) var<storage, read> y_mask: array<f32>;
@group(0) @binding(7) var<storage, read> gamma_bw: array<f32>;

// The gradient reaching the norm's output: with the fused ReLU, zero where the ReLU's output y is not > 0.
fn grad_out(i: u32) -> f32 {
  if (RELU && !(y_mask[i] > 0.0)) { return 0.0; }
  return gy[i];
}

// One workgroup per sample: with g = dL/dy * gamma and xhat = (x - mean) * rstd,
// dL/dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), means over the sample.
@compute @workgroup_size(WG_X, WG_Y) fn ln_backward_x(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let base = wid.z * p.m;
  let mu = mean[wid.z];
  let r = rstd[wid.z];
  var a = 0.0;
  var b = 0.0;
  for (var i = lid.y; i < p.m; i += WG_Y) {
    let g = grad_out(base + i) * gamma_bw[i % C];
    a += g;
    b += g * (x[base + i] - mu) * r;
  }
  let means = sum_rows(lid, a, b) / f32(p.m);
  for (var i = lid.y; i < p.m; i += WG_Y) {
    let g = grad_out(base + i) * gamma_bw[i % C];
    let xhat = (x[base + i] - mu) * r;
    gx[base + i] = r * (g - means.x - xhat * means.y);
  }
}

// A workgroup per (channel block wid.x, sample wid.z): partials[n, c] = sum over the sample's pixels of
// dL/dy, and partials[N + n, c] = sum of dL/dy * xhat. Summed over n they are dbeta and dgamma.
@compute @workgroup_size(WG_X, WG_Y) fn channel_grad_partials(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let ch = wid.x * WG_X + lid.x;
  let n = wid.z;
  var a = 0.0;
  var b = 0.0;
  if (ch < C) {
    let s = select(n, ch, PER_CHANNEL);
    let mu = mean[s];
    let r = rstd[s];
    for (var q = lid.y; q < p.hw; q += WG_Y) {
      let i = (n * p.hw + q) * C + ch;
      let g = grad_out(i);
      a += g;
      b += g * (x[i] - mu) * r;
    }
  }
  let sums = sum_rows(lid, a, b);
  if (lid.y == 0u && ch < C) {
    partials[n * C + ch] = sums.x;
    partials[(p.n + n) * C + ch] = sums.y;
  }
}

// ---- sum_samples: dbeta[c] = sum_n partials[n, c], dgamma[c] = sum_n partials[N + n, c] ----
@group(0) @binding(1) var<storage, read_write> gbeta: array<f32>;
@group(0) @binding(2) var<storage, read_write> ggamma: array<f32>;
@group(0) @binding(3) var<storage, read> partials_in: array<f32>;

// Add into gbeta and ggamma instead of overwriting them (affine gradients accumulated in place over time steps).
override ACCUMULATE: bool = false;

// (dbeta, dgamma) of channel ch: the per-sample partials summed in a fixed order (deterministic).
fn sum_partials(ch: u32) -> vec2f {
  var a = 0.0;
  var b = 0.0;
  for (var n = 0u; n < p.n; n++) {
    a += partials_in[n * C + ch];
    b += partials_in[(p.n + n) * C + ch];
  }
  if (ACCUMULATE) {
    gbeta[ch] += a;
    ggamma[ch] += b;
  } else {
    gbeta[ch] = a;
    ggamma[ch] = b;
  }
  return vec2f(a, b);
}

@compute @workgroup_size(WG_X) fn sum_samples(@builtin(global_invocation_id) gid: vec3u) {
  let ch = gid.x;
  if (ch >= C) { return; }
  sum_partials(ch);
}

// ---- layer norm on vec4s (C % 4 == 0): ln_forward4, ln_backward_x4, ln_backward4 ----
// The same algorithms as ln_forward / ln_backward_x, a vec4 (4 adjacent channels) per access: a quarter of
// the loads and index arithmetic (2-3x faster on llvmpipe, where every storage access is a per-lane load).
override C4: u32 = C / 4u;
// With C4 dividing WG_Y (and WG_X = 1) lane lid.y only ever sees channel quad lid.y % C4 as it strides over a
// sample, so it loads that quad's gamma (and beta) once instead of per element.
override LANE_QUAD: bool = WG_X == 1u && WG_Y % C4 == 0u;

@group(0) @binding(1) var<storage, read_write> y4: array<vec4f>;
@group(0) @binding(4) var<storage, read> x4: array<vec4f>;
@group(0) @binding(5) var<storage, read> gamma4: array<vec4f>;
@group(0) @binding(6) var<storage, read> beta4: array<vec4f>;

// Every storage read is a per-lane gather on a CPU adapter, so: one pass for both moments (shifted by the
// sample's first value, so that E[d^2] - E[d]^2 does not cancel when |mean| >> std), and gamma and beta
// loaded once per lane where LANE_QUAD.
@compute @workgroup_size(WG_X, WG_Y) fn ln_forward4(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let m4 = p.m / 4u;
  let base = wid.z * m4;
  let shift = x4[base].x;
  var s = vec4f(0.0);
  var q = vec4f(0.0);
  for (var i = lid.y; i < m4; i += WG_Y) {
    let d = x4[base + i] - shift;
    s += d;
    q += d * d;
  }
  let moments = sum_rows(lid, dot(s, vec4f(1.0)), dot(q, vec4f(1.0))) / f32(p.m);
  let mu = shift + moments.x;
  let r = inverseSqrt(max(moments.y - moments.x * moments.x, 0.0) + p.eps);
  if (lid.y == 0u) {
    mean_out[wid.z] = mu;
    rstd_out[wid.z] = r;
  }
  let lane_gamma = gamma4[lid.y % C4];
  let lane_beta = beta4[lid.y % C4];
  for (var i = lid.y; i < m4; i += WG_Y) {
    var gm = lane_gamma;
    var bt = lane_beta;
    if (!LANE_QUAD) {
      gm = gamma4[i % C4];
      bt = beta4[i % C4];
    }
    var v = (x4[base + i] - mu) * r * gm + bt;
    if (RELU) { v = max(v, vec4f(0.0)); }
    y4[base + i] = v;
  }
}

@group(0) @binding(1) var<storage, read_write> gx4: array<vec4f>;
@group(0) @binding(5) var<storage, read> gy4: array<vec4f>;
@group(0) @binding(6) var<storage, read> y_mask4: array<vec4f>;
@group(0) @binding(7) var<storage, read> gamma_bw4: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> partials4: array<vec4f>;

// gamma of element quad i's channels: the lane's own quad's, loaded once by the caller, where LANE_QUAD.
fn gamma_at(lane_gamma: vec4f, i: u32) -> vec4f {
  if (LANE_QUAD) { return lane_gamma; }
  return gamma_bw4[i % C4];
}

fn grad_out4(i: u32) -> vec4f {
  if (RELU) { return select(vec4f(0.0), gy4[i], y_mask4[i] > vec4f(0.0)); }
  return gy4[i];
}

// dL/dx only, any C % 4 == 0.
@compute @workgroup_size(WG_X, WG_Y) fn ln_backward_x4(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let m4 = p.m / 4u;
  let base = wid.z * m4;
  let mu = mean[wid.z];
  let r = rstd[wid.z];
  let lane_gamma = gamma_bw4[lid.y % C4];
  var a = vec4f(0.0);
  var b = vec4f(0.0);
  for (var i = lid.y; i < m4; i += WG_Y) {
    let g = grad_out4(base + i) * gamma_at(lane_gamma, i);
    a += g;
    b += g * (x4[base + i] - mu) * r;
  }
  let means = sum_rows(lid, dot(a, vec4f(1.0)), dot(b, vec4f(1.0))) / f32(p.m);
  for (var i = lid.y; i < m4; i += WG_Y) {
    let g = grad_out4(base + i) * gamma_at(lane_gamma, i);
    let xhat = (x4[base + i] - mu) * r;
    gx4[base + i] = r * (g - means.x - xhat * means.y);
  }
}

var<workgroup> red4_a: array<vec4f, 256>;
var<workgroup> red4_b: array<vec4f, 256>;

// dL/dx and the per-sample channel partials of channel_grad_partials in one pass over the sample, for
// C4 dividing WG_Y (WG_X = 1): lane lid.y then only ever sees channel quad lid.y % C4, so it sums dL/dy and
// dL/dy * xhat per channel of its quad; a tree over lanes lid.y, lid.y + C4, ... gives the sample's
// per-channel sums, and those dotted with gamma are the sums of g = dL/dy * gamma the dL/dx formula needs.
@compute @workgroup_size(WG_X, WG_Y) fn ln_backward4(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let m4 = p.m / 4u;
  let base = wid.z * m4;
  let mu = mean[wid.z];
  let r = rstd[wid.z];
  var a = vec4f(0.0);
  var b = vec4f(0.0);
  for (var i = lid.y; i < m4; i += WG_Y) {
    let go = grad_out4(base + i);
    a += go;
    b += go * (x4[base + i] - mu) * r;
  }
  red4_a[lid.y] = a;
  red4_b[lid.y] = b;
  workgroupBarrier();
  for (var half = WG_Y / 2u; half >= C4; half >>= 1u) {
    if (lid.y < half) {
      red4_a[lid.y] += red4_a[lid.y + half];
      red4_b[lid.y] += red4_b[lid.y + half];
    }
    workgroupBarrier();
  }
  var sa = 0.0;
  var sb = 0.0;
  for (var q = 0u; q < C4; q++) {
    sa += dot(red4_a[q], gamma_bw4[q]);
    sb += dot(red4_b[q], gamma_bw4[q]);
  }
  if (lid.y < C4) {
    partials4[wid.z * C4 + lid.y] = red4_a[lid.y];
    partials4[(p.n + wid.z) * C4 + lid.y] = red4_b[lid.y];
  }
  let ma = sa / f32(p.m);
  let mb = sb / f32(p.m);
  let lane_gamma = gamma_bw4[lid.y % C4]; // this kernel runs only with C4 dividing WG_Y
  for (var i = lid.y; i < m4; i += WG_Y) {
    let g = grad_out4(base + i) * lane_gamma;
    let xhat = (x4[base + i] - mu) * r;
    gx4[base + i] = r * (g - ma - xhat * mb);
  }
}

// ---- batch-norm statistics: channel_moments, bn_combine_moments, bn_eval_stats, bn_state_init ----
@group(0) @binding(2) var<storage, read> x_stats: array<f32>;

// A workgroup per (channel block, sample): partials[n, c] = the mean of channel c over sample n's pixels,
// partials[N + n, c] = the sum of squared deviations from it.
@compute @workgroup_size(WG_X, WG_Y) fn channel_moments(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let ch = wid.x * WG_X + lid.x;
  let n = wid.z;
  let valid = ch < C;
  var s = 0.0;
  if (valid) {
    for (var q = lid.y; q < p.hw; q += WG_Y) { s += x_stats[(n * p.hw + q) * C + ch]; }
  }
  let mu = sum_rows(lid, s, 0.0).x / f32(p.hw);
  var m2 = 0.0;
  if (valid) {
    for (var q = lid.y; q < p.hw; q += WG_Y) {
      let d = x_stats[(n * p.hw + q) * C + ch] - mu;
      m2 += d * d;
    }
  }
  let total = sum_rows(lid, m2, 0.0).x;
  if (lid.y == 0u && valid) {
    partials[n * C + ch] = mu;
    partials[(p.n + n) * C + ch] = total;
  }
}

@group(0) @binding(1) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(4) var<storage, read> moments: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(6) var<storage, read_write> num_batches: array<i32>;

// One thread per channel: merges the samples' (mean, M2) pairs (Chan et al.: equal counts hw), writes the
// batch mean and 1/sqrt(biased var + eps), and updates the running statistics as PyTorch does
// (running_var takes the unbiased variance) unless UPDATE_RUNNING is off.
@compute @workgroup_size(WG_X) fn bn_combine_moments(@builtin(global_invocation_id) gid: vec3u) {
  let ch = gid.x;
  if (ch >= C) { return; }
  var mu = 0.0;
  for (var n = 0u; n < p.n; n++) { mu += moments[n * C + ch]; }
  mu /= f32(p.n);
  var m2 = 0.0;
  for (var n = 0u; n < p.n; n++) {
    let d = moments[n * C + ch] - mu;
    m2 += moments[(p.n + n) * C + ch] + f32(p.hw) * d * d;
  }
  mean_out[ch] = mu;
  rstd_out[ch] = inverseSqrt(m2 / f32(p.m) + p.eps);
  if (UPDATE_RUNNING) {
    running_mean[ch] = (1.0 - p.momentum) * running_mean[ch] + p.momentum * mu;
    running_var[ch] = (1.0 - p.momentum) * running_var[ch] + p.momentum * m2 / f32(p.m - 1u);
    if (ch == 0u) { num_batches[0] += 1; }
  }
}

@group(0) @binding(4) var<storage, read> running_var_in: array<f32>;

// Eval mode: the statistics are the running ones.
@compute @workgroup_size(WG_X) fn bn_eval_stats(@builtin(global_invocation_id) gid: vec3u) {
  let ch = gid.x;
  if (ch >= C) { return; }
  mean_out[ch] = running_mean[ch];
  rstd_out[ch] = inverseSqrt(running_var_in[ch] + p.eps);
}

@group(0) @binding(2) var<storage, read_write> running_var_init: array<f32>;
@group(0) @binding(3) var<storage, read_write> num_batches_init: array<i32>;

// A fresh state: running mean 0, running variance 1, no batches seen.
@compute @workgroup_size(WG_X) fn bn_state_init(@builtin(global_invocation_id) gid: vec3u) {
  let ch = gid.x;
  if (ch >= p.total) { return; }
  running_mean[ch] = 0.0;
  running_var_init[ch] = 1.0;
  if (ch == 0u) { num_batches_init[0] = 0; }
}

// ---- batch norm on vec4s (C % 4 == 0): bn_moments4, bn_normalize4, bn_grad_partials4 (bn_backward_x4 below) ----
// The per-sample reductions use ln_backward4's layout (WG_X = 1, C4 dividing WG_Y): lane lid.y only ever
// sees channel quad lid.y % C4, and a tree over lanes lid.y, lid.y + C4, ... leaves the sample's per-quad
// sums in red4_*[0..C4). The elementwise kernels take one vec4 (4 adjacent channels) per thread.
@group(0) @binding(1) var<storage, read_write> partials4_out: array<vec4f>;
@group(0) @binding(2) var<storage, read> mean4: array<vec4f>;
@group(0) @binding(3) var<storage, read> rstd4: array<vec4f>;

// Sums (a, b) over the lanes of each channel quad; every lane gets its own quad's sums. Uniform control flow only.
fn sum_quads(lid: vec3u, a: vec4f, b: vec4f) -> array<vec4f, 2> {
  red4_a[lid.y] = a;
  red4_b[lid.y] = b;
  workgroupBarrier();
  for (var half = WG_Y / 2u; half >= C4; half >>= 1u) {
    if (lid.y < half) {
      red4_a[lid.y] += red4_a[lid.y + half];
      red4_b[lid.y] += red4_b[lid.y + half];
    }
    workgroupBarrier();
  }
  let q = lid.y % C4;
  let s = array<vec4f, 2>(red4_a[q], red4_b[q]);
  workgroupBarrier(); // before a later call overwrites the sums
  return s;
}

@group(0) @binding(2) var<storage, read> x4_stats: array<vec4f>;

// channel_moments for one sample (wid.z) per workgroup: the per-channel mean over its pixels and the sum of
// squared deviations from it, written as partials[n, c] and partials[N + n, c]. One pass over the sample
// for both (every read is a per-lane gather on a CPU adapter; two passes took 1.37x as long on llvmpipe at the network's layers),
// the sums taken of d = x - (the channel's value at the first pixel), so that sum d^2 - (sum d)^2 / hw does
// not cancel when |mean| >> std (as ln_forward4).
@compute @workgroup_size(WG_X, WG_Y) fn bn_moments4(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let m4 = p.hw * C4;
  let base = wid.z * m4;
  let shift = x4_stats[base + lid.y % C4]; // lane lid.y only sees channel quad lid.y % C4
  var s = vec4f(0.0);
  var q = vec4f(0.0);
  for (var i = lid.y; i < m4; i += WG_Y) {
    let d = x4_stats[base + i] - shift;
    s += d;
    q += d * d;
  }
  let sums = sum_quads(lid, s, q);
  let md = sums[0] / f32(p.hw);
  let mu = shift + md;
  let total = max(sums[1] - sums[0] * md, vec4f(0.0));
  if (lid.y < C4) {
    partials4_out[wid.z * C4 + lid.y] = mu;
    partials4_out[(p.n + wid.z) * C4 + lid.y] = total;
  }
}

// The vec4 elementwise passes: thread t takes vec4s t, t + S, t + 2S, ... with S = vec4_stride() a multiple of
// C4, so it keeps to one channel quad and loads that quad's per-channel values once (rather than 3-4 gathers
// per vec4, which dominated on llvmpipe). Dispatch S threads.
override PER_THREAD: u32 = 8u;
fn vec4_stride() -> u32 {
  let unit = WG_X * C4;
  return ((p.total + PER_THREAD - 1u) / PER_THREAD + unit - 1u) / unit * unit;
}

@compute @workgroup_size(WG_X) fn bn_normalize4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = index(gid, nwg);
  let stride = vec4_stride();
  if (t >= stride) { return; }
  let q = t % C4;
  let mu = mean4[q];
  let k = rstd4[q] * gamma4[q];
  let b = beta4[q];
  for (var i = t; i < p.total; i += stride) {
    var v = (x4[i] - mu) * k + b;
    if (RELU) { v = max(v, vec4f(0.0)); }
    y4[i] = v;
  }
}

// channel_grad_partials (per channel statistics) for one sample per workgroup: partials[n, c] = sum of
// dL/dy (masked by the fused ReLU), partials[N + n, c] = sum of dL/dy * xhat.
@compute @workgroup_size(WG_X, WG_Y) fn bn_grad_partials4(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let m4 = p.hw * C4;
  let base = wid.z * m4;
  let q = lid.y % C4;
  let mu = mean4[q];
  let r = rstd4[q];
  var a = vec4f(0.0);
  var b = vec4f(0.0);
  for (var i = lid.y; i < m4; i += WG_Y) {
    let go = grad_out4(base + i);
    a += go;
    b += go * (x4[base + i] - mu) * r;
  }
  let sums = sum_quads(lid, a, b);
  if (lid.y < C4) {
    partials4_out[wid.z * C4 + lid.y] = sums[0];
    partials4_out[(p.n + wid.z) * C4 + lid.y] = sums[1];
  }
}


// ---- batch-norm backward: bn_sum_samples, bn_backward_x, bn_backward_x4 ----
// With g = dL/dy (masked by the fused ReLU) and sums over the channel's M = N*H*W elements, training's
// dL/dx = gamma * rstd * (g - (sum g + xhat * sum g*xhat) / M) is  k * g - (x - mean) * c1 - c0  with per-channel
// k = gamma * rstd, c1 = k * rstd * sum(g*xhat) / M, c0 = k * sum(g) / M; eval's (constant statistics) is k * g.
// bn_sum_samples writes them as coef [4, C] = (k, mean, c1, c0), so the per-element pass reads x, dL/dy, the
// ReLU's output and one small buffer (at most 8 storage buffers per stage, WebGPU's default limit).
@group(0) @binding(4) var<storage, read> bn_gamma: array<f32>;
@group(0) @binding(5) var<storage, read> bn_mean: array<f32>;
@group(0) @binding(6) var<storage, read> bn_rstd: array<f32>;
@group(0) @binding(7) var<storage, read_write> coef_out: array<f32>;

// sum_samples (dbeta, dgamma), then the coefficients.
@compute @workgroup_size(WG_X) fn bn_sum_samples(@builtin(global_invocation_id) gid: vec3u) {
  let ch = gid.x;
  if (ch >= C) { return; }
  let ab = sum_partials(ch);
  let a = ab.x;
  let b = ab.y;
  let r = bn_rstd[ch];
  let k = bn_gamma[ch] * r;
  coef_out[ch] = k;
  coef_out[C + ch] = bn_mean[ch];
  coef_out[2u * C + ch] = select(0.0, k * r * b / f32(p.m), TRAINING);
  coef_out[3u * C + ch] = select(0.0, k * a / f32(p.m), TRAINING);
}

@group(0) @binding(2) var<storage, read> coef: array<f32>;
@group(0) @binding(3) var<storage, read> x_bw: array<f32>;
@group(0) @binding(4) var<storage, read> gy_bw: array<f32>;
@group(0) @binding(5) var<storage, read> y_relu: array<f32>;

// One thread per element.
@compute @workgroup_size(WG_X) fn bn_backward_x(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.total) { return; }
  let ch = i % C;
  var g = gy_bw[i];
  if (RELU && !(y_relu[i] > 0.0)) { g = 0.0; }
  gx[i] = coef[ch] * g - (x_bw[i] - coef[C + ch]) * coef[2u * C + ch] - coef[3u * C + ch];
}

@group(0) @binding(2) var<storage, read> coef4: array<vec4f>;
@group(0) @binding(3) var<storage, read> x4_bw: array<vec4f>;
@group(0) @binding(4) var<storage, read> gy4_bw: array<vec4f>;
@group(0) @binding(5) var<storage, read> y_relu4: array<vec4f>;

// A vec4 (4 adjacent channels) at a time, strided as bn_normalize4.
@compute @workgroup_size(WG_X) fn bn_backward_x4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = index(gid, nwg);
  let stride = vec4_stride();
  if (t >= stride) { return; }
  let q = t % C4;
  let k = coef4[q];
  let mu = coef4[C4 + q];
  let c1 = coef4[2u * C4 + q];
  let c0 = coef4[3u * C4 + q];
  for (var i = t; i < p.total; i += stride) {
    var g = gy4_bw[i];
    if (RELU) { g = select(vec4f(0.0), g, y_relu4[i] > vec4f(0.0)); }
    gx4[i] = k * g - (x4_bw[i] - mu) * c1 - c0;
  }
}
