/** f64 CPU references for layer norm (GroupNorm(1, C)) and batch norm (BatchNorm2d) on NHWC images. */

export interface NormShape {
  n: number; hw: number; c: number;
}

/** Normalises each sample over H, W, C; returns y (ReLU'd if asked), mean and rstd per sample. */
export function layerNormRef(
  x: Float64Array, s: NormShape, gamma: Float64Array, beta: Float64Array, eps = 1e-5, relu = false,
): { y: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const m = s.hw * s.c;
  const y = new Float64Array(x.length);
  const mean = new Float64Array(s.n);
  const rstd = new Float64Array(s.n);
  for (let n = 0; n < s.n; n++) {
    const row = x.subarray(n * m, n * m + m);
    const mu = row.reduce((a, v) => a + v, 0) / m;
    const v = row.reduce((a, t) => a + (t - mu) ** 2, 0) / m;
    const r = 1 / Math.sqrt(v + eps);
    mean[n] = mu;
    rstd[n] = r;
    for (let i = 0; i < m; i++) {
      const out = (row[i] - mu) * r * gamma[i % s.c] + beta[i % s.c];
      y[n * m + i] = relu ? Math.max(out, 0) : out;
    }
  }
  return { y, mean, rstd };
}

/** The analytic backward of layerNormRef (for shapes too large for finite differences). */
export function layerNormBackwardRef(
  gy: Float64Array, x: Float64Array, s: NormShape, gamma: Float64Array, beta: Float64Array, eps = 1e-5, relu = false,
): { gx: Float64Array; ggamma: Float64Array; gbeta: Float64Array } {
  const { y, mean, rstd } = layerNormRef(x, s, gamma, beta, eps, relu);
  const m = s.hw * s.c;
  const gx = new Float64Array(x.length);
  const ggamma = new Float64Array(s.c);
  const gbeta = new Float64Array(s.c);
  for (let n = 0; n < s.n; n++) {
    let a = 0;
    let b = 0;
    for (let i = 0; i < m; i++) {
      const k = n * m + i;
      const g = relu && !(y[k] > 0) ? 0 : gy[k];
      const xhat = (x[k] - mean[n]) * rstd[n];
      ggamma[i % s.c] += g * xhat;
      gbeta[i % s.c] += g;
      a += g * gamma[i % s.c];
      b += g * gamma[i % s.c] * xhat;
    }
    for (let i = 0; i < m; i++) {
      const k = n * m + i;
      const g = (relu && !(y[k] > 0) ? 0 : gy[k]) * gamma[i % s.c];
      const xhat = (x[k] - mean[n]) * rstd[n];
      gx[k] = rstd[n] * (g - a / m - (xhat * b) / m);
    }
  }
  return { gx, ggamma, gbeta };
}

/** Per-channel mean, biased and unbiased variance over N, H, W. */
export function channelStatsRef(x: Float64Array, s: NormShape): { mean: Float64Array; varBiased: Float64Array; varUnbiased: Float64Array } {
  const count = s.n * s.hw;
  const mean = new Float64Array(s.c);
  const m2 = new Float64Array(s.c);
  x.forEach((v, i) => (mean[i % s.c] += v / count));
  x.forEach((v, i) => (m2[i % s.c] += (v - mean[i % s.c]) ** 2));
  return { mean, varBiased: m2.map((v) => v / count), varUnbiased: m2.map((v) => v / (count - 1)) };
}

/** y = gamma * (x - mean[c]) / sqrt(var[c] + eps) + beta with the given per-channel statistics. */
export function normalizeChannelsRef(
  x: Float64Array, c: number, mean: Float64Array, variance: Float64Array, gamma: Float64Array, beta: Float64Array, eps = 1e-5,
): Float64Array {
  return x.map((v, i) => ((v - mean[i % c]) / Math.sqrt(variance[i % c] + eps)) * gamma[i % c] + beta[i % c]);
}

/** BatchNorm2d in training mode: normalises with the batch statistics. */
export function batchNormTrainRef(x: Float64Array, s: NormShape, gamma: Float64Array, beta: Float64Array, eps = 1e-5): Float64Array {
  const { mean, varBiased } = channelStatsRef(x, s);
  return normalizeChannelsRef(x, s.c, mean, varBiased, gamma, beta, eps);
}

/** PyTorch's running-statistics update after one training batch, in place. */
export function updateRunningRef(
  running: { mean: Float64Array; variance: Float64Array; batches: number }, x: Float64Array, s: NormShape, momentum = 0.1,
): void {
  const { mean, varUnbiased } = channelStatsRef(x, s);
  for (let c = 0; c < s.c; c++) {
    running.mean[c] = (1 - momentum) * running.mean[c] + momentum * mean[c];
    running.variance[c] = (1 - momentum) * running.variance[c] + momentum * varUnbiased[c];
  }
  running.batches++;
}

/**
 * The analytic backward of BatchNorm2d in training mode (optionally followed by a ReLU, whose output masks
 * dL/dy), for shapes too large for finite differences: dbeta = sum g, dgamma = sum g * xhat and
 * dL/dx = gamma * rstd * (g - (dbeta + xhat * dgamma) / M), sums over the channel's M = N*H*W values.
 */
export function batchNormBackwardRef(
  gy: Float64Array, x: Float64Array, s: NormShape, gamma: Float64Array, beta: Float64Array, eps = 1e-5, relu = false,
): { y: Float64Array; gx: Float64Array; ggamma: Float64Array; gbeta: Float64Array } {
  const { mean, varBiased } = channelStatsRef(x, s);
  const rstd = varBiased.map((v) => 1 / Math.sqrt(v + eps));
  const xhat = x.map((v, i) => (v - mean[i % s.c]) * rstd[i % s.c]);
  const y = xhat.map((v, i) => (relu ? Math.max(0, v * gamma[i % s.c] + beta[i % s.c]) : v * gamma[i % s.c] + beta[i % s.c]));
  const g = gy.map((v, i) => (relu && !(y[i] > 0) ? 0 : v));
  const ggamma = new Float64Array(s.c);
  const gbeta = new Float64Array(s.c);
  g.forEach((v, i) => ((ggamma[i % s.c] += v * xhat[i]), (gbeta[i % s.c] += v)));
  const m = s.n * s.hw;
  const gx = g.map((v, i) => {
    const c = i % s.c;
    return gamma[c] * rstd[c] * (v - (gbeta[c] + xhat[i] * ggamma[c]) / m);
  });
  return { y, gx, ggamma, gbeta };
}
