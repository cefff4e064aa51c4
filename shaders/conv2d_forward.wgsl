{{ENABLE}}
// conv2d forward as an implicit GEMM: Y[M, Cout] = A[M, K] B[K, Cout] (+ bias), M = N*Ho*Wo output pixels,
// K = kh*kw*Cin. A is the im2col matrix, gathered from NHWC x on the fly (never materialised); B is the HWIO
// weight, which already is [K, Cout] row-major. conv2dPair runs the K axis over two sources (x0, w0) then
// (x1, w1) into the same accumulators; a plain conv2d leaves source 1 empty (taps = 0).
//
// Work split: a workgroup owns BM = WG * TM pixels by TN = 4 * TN4 channels; a thread owns TM pixels
// (strided by WG, so neighbouring lanes hold neighbouring pixels) by TN channels, in registers. Every
// thread needs the same weight rows, so a weight tile [rows, TN] is staged in workgroup memory. K is walked
// tap by tap, so the padding test of a pixel's receptive field is made once per tap and its channels are
// read as consecutive vec4s (VEC = 4) when Cin % 4 == 0, as scalars otherwise. Each A element is used TN
// times and each B element TM times: that ratio of FMAs to loads is what the tile table tunes.
//
// With subgroups (SG lines), each lane of a subgroup reads a different vec4 of the tile and the subgroup
// shares them by broadcast, instead of every lane reading every value: on a CPU adapter, which emulates
// a workgroup-memory read lane by lane, this cuts the tile reads by the subgroup size.
// Every access is bounds-checked here (Dawn's robustness may be off).

struct Src {
  h: u32, w: u32, cin: u32, kw: u32,
  sh: u32, sw: u32, pt: u32, pl: u32,
  taps: u32,          // kh * kw; 0 when the source is absent
  taps_per_tile: u32, // taps staged per weight tile (several when Cin is small)
  ci_tile: u32,       // channels staged per weight tile (a multiple of VEC)
  pad: u32,
}
struct P { m: u32, cout: u32, ho: u32, wo: u32, s0: Src, s1: Src }

alias XT = {{X_TYPE}};
alias WT = {{W_TYPE}}; // vec4f when Cout % 4 == 0: weight rows are then read as vec4s
const VEC: u32 = {{VEC}}u;
const TM: u32 = {{TM}}u;
const TN4: u32 = {{TN4}}u;
const BK: u32 = {{BK}}u; // rows (k) of the staged weight tile
const WG: u32 = {{WG}}u;
const NB: u32 = VEC * TN4; // tile vec4s one K step reads

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x0: array<XT>;
@group(0) @binding(3) var<storage, read> w0: array<WT>;
@group(0) @binding(4) var<storage, read> x1: array<XT>;
@group(0) @binding(5) var<storage, read> w1: array<WT>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;

override HAS_BIAS: bool = false;
override WT_VEC: bool = false; // WT is vec4f

var<workgroup> wt: array<vec4f, BK * TN4>;

// `s` is a literal at both call sites, so these branches fold away after inlining.
fn load_x(s: u32, i: u32) -> vec4f {
  if (s == 0u) { return vec4f(x0[i]); }
  return vec4f(x1[i]);
}

fn load_wt(s: u32, i: u32) -> vec4f {
  if (s == 0u) { return vec4f(w0[i]); }
  return vec4f(w1[i]);
}

// w[k, co .. co + 4) of source s, zero past Cout: one vec4 load when Cout % 4 == 0.
fn load_w(s: u32, k: u32, co: u32) -> vec4f {
  if (WT_VEC) {
    let inside = co < p.cout;
    return select(vec4f(0.0), load_wt(s, select(0u, (k * p.cout + co) / 4u, inside)), inside);
  }
  var v = vec4f(0.0);
  for (var c = 0u; c < 4u; c++) {
    if (co + c < p.cout) { v[c] = load_wt(s, k * p.cout + co + c).x; }
  }
  return v;
}

fn geometry(s: u32) -> Src {
  if (s == 0u) { return p.s0; }
  return p.s1;
}

// The NB tile vec4s from `start` on.
fn read_tile(start: u32, lane: u32) -> array<vec4f, NB> {
  var b: array<vec4f, NB>;
{{NOSG}}  for (var q = 0u; q < NB; q++) { b[q] = wt[start + q]; }
{{SG}}  for (var h = 0u; h < NB; h += 8u) {
{{SG}}    let mine = wt[start + min(h + lane, NB - 1u)];
{{SG}}    if (h + 0u < NB) { b[h + 0u] = subgroupBroadcast(mine, 0u); }
{{SG}}    if (h + 1u < NB) { b[h + 1u] = subgroupBroadcast(mine, 1u); }
{{SG}}    if (h + 2u < NB) { b[h + 2u] = subgroupBroadcast(mine, 2u); }
{{SG}}    if (h + 3u < NB) { b[h + 3u] = subgroupBroadcast(mine, 3u); }
{{SG}}    if (h + 4u < NB) { b[h + 4u] = subgroupBroadcast(mine, 4u); }
{{SG}}    if (h + 5u < NB) { b[h + 5u] = subgroupBroadcast(mine, 5u); }
{{SG}}    if (h + 6u < NB) { b[h + 6u] = subgroupBroadcast(mine, 6u); }
{{SG}}    if (h + 7u < NB) { b[h + 7u] = subgroupBroadcast(mine, 7u); }
{{SG}}  }
  return b;
}

// Adds source s's share of the K axis to acc.
fn accumulate(s: u32, acc: ptr<function, array<vec4f, TM * TN4>>, lid: u32, lane: u32, m0: u32, n0: u32) {
  let g = geometry(s);
  if (g.taps == 0u) { return; }
  // Receptive-field origin of each of this thread's pixels (rows past M are clamped; never stored).
  var org_h: array<i32, TM>;
  var org_w: array<i32, TM>;
  var img: array<u32, TM>;
  for (var i = 0u; i < TM; i++) {
    let m = min(m0 + i * WG + lid, p.m - 1u);
    let t = m / p.wo;
    org_h[i] = i32((t % p.ho) * g.sh) - i32(g.pt);
    org_w[i] = i32((m % p.wo) * g.sw) - i32(g.pl);
    img[i] = (t / p.ho) * g.h;
  }
  // (ky, kx) of tap tap0, advanced by counting rather than dividing: integer division is slow on SIMD CPUs.
  var ky = 0u;
  var kx = 0u;
  for (var tap0 = 0u; tap0 < g.taps; tap0 += g.taps_per_tile) {
    let tn = min(g.taps_per_tile, g.taps - tap0);
    var ty = ky;
    var tx = kx;
    for (var ci0 = 0u; ci0 < g.cin; ci0 += g.ci_tile) {
      let cn = min(g.ci_tile, g.cin - ci0);
      // Stage weight rows (taps tap0.., channels ci0..) x output channels n0..n0+TN, zero past Cout.
      workgroupBarrier();
      for (var t = 0u; t < tn; t++) {
        for (var e = lid; e < cn * TN4; e += WG) {
          wt[t * cn * TN4 + e] = load_w(s, (tap0 + t) * g.cin + ci0 + e / TN4, n0 + (e % TN4) * 4u);
        }
      }
      workgroupBarrier();
      ty = ky;
      tx = kx;
      for (var t = 0u; t < tn; t++) {
        var row: array<u32, TM>;
        var inside: array<bool, TM>;
        for (var i = 0u; i < TM; i++) {
          let ih = org_h[i] + i32(ty);
          let iw = org_w[i] + i32(tx);
          inside[i] = u32(ih) < g.h && u32(iw) < g.w; // negative wraps to a huge u32
          row[i] = select(0u, ((img[i] + u32(ih)) * g.w + u32(iw)) * (g.cin / VEC) + ci0 / VEC, inside[i]);
        }
        for (var c = 0u; c < cn; c += VEC) {
          var a: array<vec4f, TM>;
          for (var i = 0u; i < TM; i++) {
            a[i] = select(vec4f(0.0), load_x(s, row[i] + c / VEC), inside[i]);
          }
          let b = read_tile((t * cn + c) * TN4, lane);
          for (var cc = 0u; cc < VEC; cc++) {
            for (var j = 0u; j < TN4; j++) {
              for (var i = 0u; i < TM; i++) {
                (*acc)[i * TN4 + j] = fma(vec4f(a[i][cc]), b[cc * TN4 + j], (*acc)[i * TN4 + j]);
              }
            }
          }
        }
        tx += 1u;
        if (tx == g.kw) { tx = 0u; ty += 1u; }
      }
    }
    ky = ty;
    kx = tx;
  }
}

@compute @workgroup_size(WG) fn forward(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wg: vec3u{{SG_PARAM}}) {
  let m0 = wg.x * WG * TM;
  let n0 = wg.y * TN4 * 4u;
  var acc: array<vec4f, TM * TN4>;
  accumulate(0u, &acc, lid.x, {{LANE}}, m0, n0);
  accumulate(1u, &acc, lid.x, {{LANE}}, m0, n0);
  for (var i = 0u; i < TM; i++) {
    let m = m0 + i * WG + lid.x;
    if (m >= p.m) { continue; }
    for (var j = 0u; j < TN4; j++) {
      for (var c = 0u; c < 4u; c++) {
        let co = n0 + j * 4u + c;
        if (co < p.cout) {
          var v = acc[i * TN4 + j][c];
          if (HAS_BIAS) { v += bias[co]; }
          y[m * p.cout + co] = v;
        }
      }
    }
  }
}
