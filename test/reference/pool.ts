/** f64 CPU references for pooling over NHWC images, written from PyTorch's definitions (floor output size). */

export interface PoolRefGeometry {
  n: number; h: number; w: number; c: number;
  kh: number; kw: number;
  sh: number; sw: number;
  ph: number; pw: number;
}

export function outSize(g: PoolRefGeometry): [number, number] {
  return [Math.floor((g.h + 2 * g.ph - g.kh) / g.sh) + 1, Math.floor((g.w + 2 * g.pw - g.kw) / g.sw) + 1];
}

/** Max pool with -inf padding; argmax is iy * W + ix of the first maximum in scan order. */
export function maxPool2dRef(x: Float64Array, g: PoolRefGeometry): { y: Float64Array; argmax: Int32Array } {
  const [oh, ow] = outSize(g);
  const y = new Float64Array(g.n * oh * ow * g.c);
  const argmax = new Int32Array(y.length);
  let o = 0;
  for (let n = 0; n < g.n; n++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        for (let c = 0; c < g.c; c++, o++) {
          let best = -Infinity;
          let arg = -1;
          for (let ky = 0; ky < g.kh; ky++) {
            const iy = oy * g.sh - g.ph + ky;
            if (iy < 0 || iy >= g.h) continue;
            for (let kx = 0; kx < g.kw; kx++) {
              const ix = ox * g.sw - g.pw + kx;
              if (ix < 0 || ix >= g.w) continue;
              const v = x[((n * g.h + iy) * g.w + ix) * g.c + c];
              if (arg < 0 || v > best) {
                best = v;
                arg = iy * g.w + ix;
              }
            }
          }
          y[o] = best;
          argmax[o] = arg;
        }
      }
    }
  }
  return { y, argmax };
}

export function avgPool2dRef(x: Float64Array, g: PoolRefGeometry, countIncludePad = true): Float64Array {
  const [oh, ow] = outSize(g);
  const y = new Float64Array(g.n * oh * ow * g.c);
  let o = 0;
  for (let n = 0; n < g.n; n++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        for (let c = 0; c < g.c; c++, o++) {
          let s = 0;
          let count = 0;
          for (let ky = 0; ky < g.kh; ky++) {
            for (let kx = 0; kx < g.kw; kx++) {
              const iy = oy * g.sh - g.ph + ky;
              const ix = ox * g.sw - g.pw + kx;
              const inside = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
              // A padded position counts when it lies within the padded image.
              const padded = iy >= -g.ph && iy < g.h + g.ph && ix >= -g.pw && ix < g.w + g.pw;
              if (inside) s += x[((n * g.h + iy) * g.w + ix) * g.c + c];
              if (inside || (countIncludePad && padded)) count++;
            }
          }
          y[o] = s / count;
        }
      }
    }
  }
  return y;
}

export function globalAvgPoolRef(x: Float64Array, n: number, hw: number, c: number): Float64Array {
  const y = new Float64Array(n * c);
  for (let i = 0; i < x.length; i++) y[Math.floor(i / (hw * c)) * c + (i % c)] += x[i] / hw;
  return y;
}
