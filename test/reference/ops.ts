/** Plain f64 CPU references for the engine's basic ops. Row-major; broadcasting over the last axis. */

export function addRef(a: Float64Array, b: Float64Array, beta = 1): Float64Array {
  return a.map((v, i) => v + beta * b[i % b.length]);
}

export function mulRef(a: Float64Array, b: Float64Array): Float64Array {
  return a.map((v, i) => v * b[i % b.length]);
}

export function matmulRef(a: Float64Array, b: Float64Array, m: number, k: number, n: number, transA = false, transB = false): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += (transA ? a[t * m + i] : a[i * k + t]) * (transB ? b[j * k + t] : b[t * n + j]);
      c[i * n + j] = s;
    }
  }
  return c;
}

export function softmaxCrossEntropyRef(logits: Float64Array, labels: ArrayLike<number>, n: number, k: number): Float64Array {
  const out = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const row = logits.subarray(r * k, r * k + k);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    out[r] = lse - row[labels[r]];
  }
  return out;
}
