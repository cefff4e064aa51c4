/** PyTorch's SGD (momentum, no dampening) and Adam/AdamW updates in f64. */

export function sgdRef(w: Float64Array, grads: Float64Array[], lr: number, momentum: number, wd: number): Float64Array {
  const buf = new Float64Array(w.length);
  const out = Float64Array.from(w);
  for (const g of grads) {
    for (let i = 0; i < w.length; i++) {
      const gi = g[i] + wd * out[i];
      buf[i] = momentum * buf[i] + gi;
      out[i] -= lr * buf[i];
    }
  }
  return out;
}

export function adamRef(
  w: Float64Array,
  grads: Float64Array[],
  o: { lr: number; beta1: number; beta2: number; eps: number; wd: number; decoupled: boolean },
): Float64Array {
  const m = new Float64Array(w.length);
  const v = new Float64Array(w.length);
  const out = Float64Array.from(w);
  grads.forEach((g, step) => {
    const t = step + 1;
    for (let i = 0; i < w.length; i++) {
      let gi = g[i];
      if (o.decoupled) out[i] *= 1 - o.lr * o.wd;
      else gi += o.wd * out[i];
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
      const mhat = m[i] / (1 - o.beta1 ** t);
      const vhat = v[i] / (1 - o.beta2 ** t);
      out[i] -= (o.lr * mhat) / (Math.sqrt(vhat) + o.eps);
    }
  });
  return out;
}
