{{ENABLE}}
// conv2d weight gradient (wgrad): dW[ky, kx, ci, co] = sum over output pixels (n, oh, ow) of
// x[n, oh*sh + ky - pt, ow*sw + kx - pl, ci] * dY[n, oh, ow, co] (zero in the padding).
//
// Work split: a thread owns one kernel row ky and VEC consecutive input channels (one vec4 load when
// Cin % 4 == 0), for all KW taps of that row, by TN = 4 * TN4 output channels: KW * VEC * TN4 vec4
// accumulators. It walks whole output rows: along a row the taps of consecutive pixels overlap, so with
// SW = 1 it keeps a window of KW input columns and gathers one new column per pixel (im2col would gather KW).
// The output pixels (the GEMM's K axis) are huge and dW is small, so rows are split across workgroups
// (split-K, grid z): split z sums its chunk of output rows into partial[z]; the host sums the partials
// (reduce.ts). All lanes walk the same pixels, so each pixel's dY row is the same for every lane: with
// subgroups (SG lines) lanes load one vec4 each and share them by broadcast. With very few threads (Cin = 1: kh
// of them) most SIMD lanes would idle, so the splits run along the lanes as well (LANE_SPLIT, no subgroups).
// Every access is bounds-checked.

struct P {
  rows: u32, cout: u32, out_rows: u32, chunk: u32, // rows = kh * Cin / VEC threads; out_rows = N * Ho; chunk = output rows per split
  cin: u32, h: u32, w: u32, ho: u32,
  wo: u32, sh: u32, pt: i32, pl: i32,
  lane_splits: u32, pad0: u32, pad1: u32, pad2: u32, // lane_splits > 1: lanes also run over splits (no subgroups)
}

alias XT = {{X_TYPE}};
alias DT = {{DY_TYPE}}; // vec4f when Cout % 4 == 0: dY rows are then read as vec4s
const VEC: u32 = {{VEC}}u;
const TN4: u32 = {{TN4}}u;
const KW: u32 = {{KW}}u;
const SW: u32 = {{SW}}u;
const WG: u32 = {{WG}}u;

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> dw: array<f32>; // [splits, kh * kw * Cin, Cout]
@group(0) @binding(2) var<storage, read> x: array<XT>;
@group(0) @binding(3) var<storage, read> dy: array<DT>;

override DT_VEC: bool = false; // DT is vec4f
// Add into dw instead of overwriting it (one split only: a weight gradient accumulated in place).
override ACCUMULATE: bool = false;

// dY[q, co .. co + 4), zero past Cout.
fn load_dy(q: u32, co: u32) -> vec4f {
  if (DT_VEC) {
    let inside = co < p.cout;
    return select(vec4f(0.0), vec4f(dy[select(0u, (q * p.cout + co) / 4u, inside)]), inside);
  }
  var v = vec4f(0.0);
  for (var c = 0u; c < 4u; c++) {
    if (co + c < p.cout) { v[c] = vec4f(dy[q * p.cout + co + c]).x; }
  }
  return v;
}

// dY[q, n0 .. n0 + TN) as TN4 vec4s; with subgroups each lane loads one and the subgroup shares them.
fn read_dy(q: u32, n0: u32, lane: u32) -> array<vec4f, TN4> {
  var b: array<vec4f, TN4>;
{{NOSG}}  for (var j = 0u; j < TN4; j++) { b[j] = load_dy(q, n0 + j * 4u); }
{{SG}}  for (var h = 0u; h < TN4; h += 8u) {
{{SG}}    let mine = load_dy(q, n0 + min(h + lane, TN4 - 1u) * 4u);
{{SG}}    if (h + 0u < TN4) { b[h + 0u] = subgroupBroadcast(mine, 0u); }
{{SG}}    if (h + 1u < TN4) { b[h + 1u] = subgroupBroadcast(mine, 1u); }
{{SG}}    if (h + 2u < TN4) { b[h + 2u] = subgroupBroadcast(mine, 2u); }
{{SG}}    if (h + 3u < TN4) { b[h + 3u] = subgroupBroadcast(mine, 3u); }
{{SG}}    if (h + 4u < TN4) { b[h + 4u] = subgroupBroadcast(mine, 4u); }
{{SG}}    if (h + 5u < TN4) { b[h + 5u] = subgroupBroadcast(mine, 5u); }
{{SG}}    if (h + 6u < TN4) { b[h + 6u] = subgroupBroadcast(mine, 6u); }
{{SG}}    if (h + 7u < TN4) { b[h + 7u] = subgroupBroadcast(mine, 7u); }
{{SG}}  }
  return b;
}

@compute @workgroup_size(WG) fn wgrad(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wg: vec3u{{SG_PARAM}}) {
  // Threads past the last row compute a clamped copy (subgroup operations need every lane) and store nothing.
  // With lane_splits > 1 (few rows: Cin = 1 has kh threads) thread t runs row t % rows of split
  // wg.z + t / rows, so that the SIMD lanes are not mostly idle.
  let r_id = wg.x * WG + lid3.x;
  let t = min(r_id, p.rows * p.lane_splits - 1u);
  let r = t % p.rows;
  let split = wg.z{{LANE_SPLIT}}; // ' + t / p.rows' only without subgroups: it would break their uniformity
  let cinv = p.cin / VEC;
  let ky = r / cinv;
  let cv = r % cinv;
  let n0 = wg.y * TN4 * 4u;
  let row_begin = split * p.chunk;
  let row_end = min(row_begin + p.chunk, p.out_rows);

  var acc: array<vec4f, KW * VEC * TN4>;
  for (var orow = row_begin; orow < row_end; orow++) {
    let oh = orow % p.ho;
    let ih = i32(oh * p.sh + ky) - p.pt;
    let row_ok = u32(ih) < p.h; // negative wraps to a huge u32
    let base = i32((orow / p.ho) * p.h + u32(ih)) * i32(p.w);
    // Input columns of the taps of pixel ow: ow * SW + kx - pl. xs[kx] holds them.
    var xs: array<vec4f, KW>;
    if (SW == 1u) {
      for (var kx = 0u; kx + 1u < KW; kx++) {
        let iw = i32(kx) - p.pl;
        let ok = row_ok && u32(iw) < p.w;
        xs[kx + 1u] = select(vec4f(0.0), vec4f(x[select(0u, u32(base + iw) * cinv + cv, ok)]), ok);
      }
    }
    for (var ow = 0u; ow < p.wo; ow++) {
      if (SW == 1u) {
        for (var kx = 0u; kx + 1u < KW; kx++) { xs[kx] = xs[kx + 1u]; }
        let iw = i32(ow + KW - 1u) - p.pl;
        let ok = row_ok && u32(iw) < p.w;
        xs[KW - 1u] = select(vec4f(0.0), vec4f(x[select(0u, u32(base + iw) * cinv + cv, ok)]), ok);
      } else {
        for (var kx = 0u; kx < KW; kx++) {
          let iw = i32(ow * SW + kx) - p.pl;
          let ok = row_ok && u32(iw) < p.w;
          xs[kx] = select(vec4f(0.0), vec4f(x[select(0u, u32(base + iw) * cinv + cv, ok)]), ok);
        }
      }
      let b = read_dy(orow * p.wo + ow, n0, {{LANE}});
      for (var kx = 0u; kx < KW; kx++) {
        for (var cc = 0u; cc < VEC; cc++) {
          for (var j = 0u; j < TN4; j++) {
            let k = (kx * VEC + cc) * TN4 + j;
            acc[k] = fma(vec4f(xs[kx][cc]), b[j], acc[k]);
          }
        }
      }
    }
  }

  if (r_id >= p.rows * p.lane_splits) { return; }
  let out = split * KW * p.rows * VEC * p.cout;
  for (var kx = 0u; kx < KW; kx++) {
    for (var cc = 0u; cc < VEC; cc++) {
      let row = (ky * KW + kx) * p.cin + cv * VEC + cc;
      for (var j = 0u; j < TN4; j++) {
        for (var c = 0u; c < 4u; c++) {
          let co = n0 + j * 4u + c;
          if (co < p.cout) {
            let i = out + row * p.cout + co;
            if (ACCUMULATE) { dw[i] += acc[(kx * VEC + cc) * TN4 + j][c]; } else { dw[i] = acc[(kx * VEC + cc) * TN4 + j][c]; }
          }
        }
      }
    }
  }
}
