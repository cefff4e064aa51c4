// Optimiser updates, one dispatch per parameter tensor, following PyTorch's SGD and Adam/AdamW.
// The step count and the learning rate live in a small GPU buffer `state` = [t, 1 - beta1^t, 1 - beta2^t, lr]:
// a captured training step replays with the right bias correction and with a learning-rate schedule
// (the host writes state[3] between replays).
struct P { n: u32, decoupled: u32, beta1: f32, beta2: f32, eps: f32, wd: f32, momentum: f32, pad: f32 }

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> state: array<f32>;
@group(0) @binding(4) var<storage, read> sgd_state: array<f32>;
@group(0) @binding(1) var<storage, read_write> state_rw: array<f32>;

override WG_X: u32 = 256;

@compute @workgroup_size(1) fn adam_tick() {
  let t = state_rw[0] + 1.0;
  state_rw[0] = t;
  state_rw[1] = 1.0 - pow(p.beta1, t);
  state_rw[2] = 1.0 - pow(p.beta2, t);
}

@compute @workgroup_size(WG_X) fn adam(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG_X;
  if (i >= p.n) { return; }
  let lr = state[3];
  var wi = w[i];
  var gi = g[i];
  if (p.decoupled == 1u) { wi = wi * (1.0 - lr * p.wd); } else { gi = gi + p.wd * wi; }
  let mi = p.beta1 * m[i] + (1.0 - p.beta1) * gi;
  let vi = p.beta2 * v[i] + (1.0 - p.beta2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  let mhat = mi / state[1];
  let vhat = vi / state[2];
  w[i] = wi - lr * mhat / (sqrt(vhat) + p.eps);
}

// SGD with momentum (PyTorch's form, no dampening): buf = momentum * buf + g (+ wd * w); w -= lr * buf.
@compute @workgroup_size(WG_X) fn sgd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG_X;
  if (i >= p.n) { return; }
  let gi = g[i] + p.wd * w[i];
  let b = p.momentum * m[i] + gi;
  m[i] = b;
  w[i] = w[i] - sgd_state[3] * b;
}
