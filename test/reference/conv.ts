/**
 * f64 CPU reference for conv2d (NHWC input, HWIO weight), written as the textbook loops so it is easy to
 * trust: forward, and the analytic input and weight gradients (validated against finite differences of the
 * forward in test/conv2d.test.ts), used directly for shapes too large for finite differences.
 */

export interface RefGeometry {
  batch: number;
  h: number;
  w: number;
  cin: number;
  kh: number;
  kw: number;
  cout: number;
  sh: number;
  sw: number;
  pt: number;
  pb: number;
  pl: number;
  pr: number;
  ho: number;
  wo: number;
}

export type RefPadding = 'same' | 'valid' | number | [number, number, number, number];

/** TensorFlow's padding rules, written independently of src/kernels/conv2d.ts. */
export function refGeometry(xShape: number[], wShape: number[], stride: number | [number, number] = 1, padding: RefPadding = 'valid'): RefGeometry {
  const [batch, h, w, cin] = xShape;
  const [kh, kw, , cout] = wShape;
  const [sh, sw] = typeof stride === 'number' ? [stride, stride] : stride;
  let pt = 0, pb = 0, pl = 0, pr = 0;
  if (padding === 'same') {
    // TF: out = ceil(in / s); total padding = max((out - 1) * s + k - in, 0), the extra one after.
    const outH = Math.ceil(h / sh), outW = Math.ceil(w / sw);
    const totalH = Math.max((outH - 1) * sh + kh - h, 0);
    const totalW = Math.max((outW - 1) * sw + kw - w, 0);
    pt = Math.floor(totalH / 2);
    pb = totalH - pt;
    pl = Math.floor(totalW / 2);
    pr = totalW - pl;
  } else if (typeof padding === 'number') {
    pt = pb = pl = pr = padding;
  } else if (Array.isArray(padding)) {
    [pt, pb, pl, pr] = padding;
  }
  const ho = Math.floor((h + pt + pb - kh) / sh) + 1;
  const wo = Math.floor((w + pl + pr - kw) / sw) + 1;
  return { batch, h, w, cin, kh, kw, cout, sh, sw, pt, pb, pl, pr, ho, wo };
}

/** Calls f(n, oh, ow, ky, kx, ih, iw) for every output pixel and tap that lands inside the input. */
function forEachTap(g: RefGeometry, f: (n: number, oh: number, ow: number, ky: number, kx: number, ih: number, iw: number) => void): void {
  for (let n = 0; n < g.batch; n++) {
    for (let oh = 0; oh < g.ho; oh++) {
      for (let ow = 0; ow < g.wo; ow++) {
        for (let ky = 0; ky < g.kh; ky++) {
          const ih = oh * g.sh - g.pt + ky;
          if (ih < 0 || ih >= g.h) continue;
          for (let kx = 0; kx < g.kw; kx++) {
            const iw = ow * g.sw - g.pl + kx;
            if (iw < 0 || iw >= g.w) continue;
            f(n, oh, ow, ky, kx, ih, iw);
          }
        }
      }
    }
  }
}

/** y[n, oh, ow, co] = bias[co] + sum x[n, oh*sh - pt + ky, ow*sw - pl + kx, ci] * w[ky, kx, ci, co]. */
export function conv2dRef(x: Float64Array, w: Float64Array, bias: Float64Array | null, g: RefGeometry): Float64Array {
  const { cin, cout } = g;
  const y = new Float64Array(g.batch * g.ho * g.wo * cout);
  if (bias) for (let i = 0; i < y.length; i++) y[i] = bias[i % cout];
  forEachTap(g, (n, oh, ow, ky, kx, ih, iw) => {
    const yo = ((n * g.ho + oh) * g.wo + ow) * cout;
    const xo = ((n * g.h + ih) * g.w + iw) * cin;
    const wo = (ky * g.kw + kx) * cin * cout;
    for (let ci = 0; ci < cin; ci++) {
      const xv = x[xo + ci];
      for (let co = 0; co < cout; co++) y[yo + co] += xv * w[wo + ci * cout + co];
    }
  });
  return y;
}

/** dL/dx given dL/dy: the transpose of the forward's x -> y map. */
export function conv2dBackwardInputRef(gy: Float64Array, w: Float64Array, g: RefGeometry): Float64Array {
  const { cin, cout } = g;
  const gx = new Float64Array(g.batch * g.h * g.w * cin);
  forEachTap(g, (n, oh, ow, ky, kx, ih, iw) => {
    const yo = ((n * g.ho + oh) * g.wo + ow) * cout;
    const xo = ((n * g.h + ih) * g.w + iw) * cin;
    const wo = (ky * g.kw + kx) * cin * cout;
    for (let ci = 0; ci < cin; ci++) {
      let s = 0;
      for (let co = 0; co < cout; co++) s += gy[yo + co] * w[wo + ci * cout + co];
      gx[xo + ci] += s;
    }
  });
  return gx;
}

/** dL/dw given dL/dy. */
export function conv2dBackwardWeightRef(gy: Float64Array, x: Float64Array, g: RefGeometry): Float64Array {
  const { cin, cout } = g;
  const gw = new Float64Array(g.kh * g.kw * cin * cout);
  forEachTap(g, (n, oh, ow, ky, kx, ih, iw) => {
    const yo = ((n * g.ho + oh) * g.wo + ow) * cout;
    const xo = ((n * g.h + ih) * g.w + iw) * cin;
    const wo = (ky * g.kw + kx) * cin * cout;
    for (let ci = 0; ci < cin; ci++) {
      const xv = x[xo + ci];
      for (let co = 0; co < cout; co++) gw[wo + ci * cout + co] += xv * gy[yo + co];
    }
  });
  return gw;
}

/** dL/dbias: dL/dy summed over batch and pixels. */
export function biasGradRef(gy: Float64Array, cout: number): Float64Array {
  const gb = new Float64Array(cout);
  for (let i = 0; i < gy.length; i++) gb[i % cout] += gy[i];
  return gb;
}
