{{ENABLE}}
// conv2d forward as an implicit GEMM: Y[M, Cout] = A[M, K] B[K, Cout] (+ bias), M = N*Ho*Wo output pixels,
// K = kh*kw*Cin. A is the im2col matrix, gathered from NHWC x on the fly (never materialised); B is the HWIO
// weight, which already is [K, Cout] row-major. conv2dPair runs the K axis over two sources (x0, w0) then
// (x1, w1) into the same accumulators; a plain conv2d leaves source 1 empty (kh = 0). The input gradient of
// a stride-1 conv is this kernel too, run on dY with the flipped, transposed weight (conv2d.ts).
//
// Work split: a thread owns a run of TM consecutive output pixels of one output row (a "segment") by
// TN = 4 * TN4 output channels, in registers; lanes hold neighbouring segments. The TM pixels of a segment
// read overlapping input columns, so per kernel row and VEC channels the thread gathers the NX = (TM-1)*SW + KW
// input columns once and reuses each for every kx (im2col would gather TM * KW). On a CPU adapter a gather
// is emulated lane by lane and costs far more than an FMA, so this reuse is what makes small channel counts
// fast. Weights are the same for every lane: with subgroups (SG lines) each lane loads one vec4 of the
// weight rows straight from storage and the subgroup shares them by broadcast (no workgroup memory, no
// barriers); without, every lane loads them all (a uniform address, cached on a GPU).
// Kernel widths and SW are compile-time (they index register arrays); kh, sh, padding are runtime. Padding is signed so
// that the dgrad form (padding kh - 1 - pt) may be negative. Every access is bounds-checked here.

struct Src {
  h: u32, w: u32, cin: u32, kh: u32, // kh = 0 when the source is absent
  sh: u32, pt: i32, pl: i32, pad: u32,
}
struct P { segs: u32, cout: u32, ho: u32, wo: u32, segs_per_row: u32, pad0: u32, pad1: u32, pad2: u32, s0: Src, s1: Src }

alias XT = {{X_TYPE}};
alias WT = {{W_TYPE}}; // vec4f when Cout % 4 == 0: weight rows are then read as vec4s
const VEC: u32 = {{VEC}}u;
const TM: u32 = {{TM}}u;
const TN4: u32 = {{TN4}}u;
const KW0: u32 = {{KW0}}u; // kernel width of each source
const KW1: u32 = {{KW1}}u;
const SW: u32 = {{SW}}u;
const WG: u32 = {{WG}}u;
const NX: u32 = (TM - 1u) * SW + max(KW0, KW1); // input columns a segment reads per kernel row, at most
const NB: u32 = VEC * TN4; // weight vec4s one (tap, VEC channels) step reads

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<WT>; // vec4s as the weight rows: [.., Cout]
@group(0) @binding(2) var<storage, read> x0: array<XT>;
@group(0) @binding(3) var<storage, read> w0: array<WT>;
@group(0) @binding(4) var<storage, read> x1: array<XT>;
@group(0) @binding(5) var<storage, read> w1: array<WT>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;

override HAS_BIAS: bool = false;
override WT_VEC: bool = false; // WT is vec4f

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

fn kernel_width(s: u32) -> u32 {
  if (s == 0u) { return KW0; }
  return KW1;
}

fn geometry(s: u32) -> Src {
  if (s == 0u) { return p.s0; }
  return p.s1;
}

// Weight rows k .. k + VEC, columns n0 .. n0 + TN, as NB vec4s (b[cc * TN4 + j] = w[k + cc, n0 + 4j ..]).
fn read_w(s: u32, k: u32, n0: u32, lane: u32) -> array<vec4f, NB> {
  var b: array<vec4f, NB>;
{{NOSG}}  for (var q = 0u; q < NB; q++) { b[q] = load_w(s, k + q / TN4, n0 + (q % TN4) * 4u); }
{{SG}}  for (var h = 0u; h < NB; h += 8u) {
{{SG}}    let q = min(h + lane, NB - 1u);
{{SG}}    let mine = load_w(s, k + q / TN4, n0 + (q % TN4) * 4u);
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

// Adds source s's share of the K axis to acc for the segment starting at output pixel (n, oh, ow0).
fn accumulate(s: u32, acc: ptr<function, array<vec4f, TM * TN4>>, lane: u32, n: u32, oh: u32, ow0: u32, n0: u32) {
  let g = geometry(s);
  let kw = kernel_width(s);
  let nx = (TM - 1u) * SW + kw;
  let cinv = g.cin / VEC;
  let iy0 = i32(oh * g.sh) - g.pt;
  let ix0 = i32(ow0 * SW) - g.pl;
  for (var ky = 0u; ky < g.kh; ky++) {
    let ih = iy0 + i32(ky);
    let row_ok = u32(ih) < g.h; // negative wraps to a huge u32
    let row = i32((n * g.h + u32(ih)) * g.w);
    // Element index of each input column's first channel, and whether it lies inside the image.
    var col: array<u32, NX>;
    var ok: array<bool, NX>;
    for (var jx = 0u; jx < nx; jx++) {
      let iw = ix0 + i32(jx);
      ok[jx] = row_ok && u32(iw) < g.w;
      col[jx] = select(0u, u32(row + iw) * cinv, ok[jx]);
    }
    for (var c = 0u; c < cinv; c++) {
      var xs: array<vec4f, NX>;
      for (var jx = 0u; jx < nx; jx++) {
        xs[jx] = select(vec4f(0.0), load_x(s, col[jx] + c), ok[jx]);
      }
      for (var kx = 0u; kx < kw; kx++) {
        let b = read_w(s, (ky * kw + kx) * g.cin + c * VEC, n0, lane);
        for (var i = 0u; i < TM; i++) {
          for (var cc = 0u; cc < VEC; cc++) {
            for (var j = 0u; j < TN4; j++) {
              (*acc)[i * TN4 + j] = fma(vec4f(xs[i * SW + kx][cc]), b[cc * TN4 + j], (*acc)[i * TN4 + j]);
            }
          }
        }
      }
    }
  }
}

@compute @workgroup_size(WG) fn forward(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wg: vec3u{{SG_PARAM}}) {
  // Threads past the last segment compute a clamped copy (subgroup operations need every lane) and store nothing.
  let seg_id = wg.x * WG + lid.x;
  let seg = min(seg_id, p.segs - 1u);
  let r = seg / p.segs_per_row;
  let ow0 = (seg % p.segs_per_row) * TM;
  let oh = r % p.ho;
  let n = r / p.ho;
  let n0 = wg.y * TN4 * 4u;
  var acc: array<vec4f, TM * TN4>;
  accumulate(0u, &acc, {{LANE}}, n, oh, ow0, n0);
  accumulate(1u, &acc, {{LANE}}, n, oh, ow0, n0);
  if (seg_id >= p.segs) { return; }
  // The bias of this thread's columns, loaded once rather than per pixel.
  var bv: array<vec4f, TN4>;
  if (HAS_BIAS) {
    for (var j = 0u; j < TN4; j++) {
      for (var c = 0u; c < 4u; c++) {
        let co = n0 + j * 4u + c;
        if (co < p.cout) { bv[j][c] = bias[co]; }
      }
    }
  }
  for (var i = 0u; i < TM; i++) {
    let ow = ow0 + i;
    if (ow >= p.wo) { continue; }
    let out = (r * p.wo + ow) * p.cout;
{{YV}}    if (WT_VEC) {
{{YV}}      // One vec4 store per 4 channels: with few input channels the stores are a large share of the work.
{{YV}}      for (var j = 0u; j < TN4; j++) {
{{YV}}        let co = n0 + j * 4u;
{{YV}}        if (co < p.cout) {
{{YV}}          var v = acc[i * TN4 + j];
{{YV}}          if (HAS_BIAS) { v += bv[j]; }
{{YV}}          y[(out + co) / 4u] = WT(v);
{{YV}}        }
{{YV}}      }
{{YV}}      continue;
{{YV}}    }
    for (var j = 0u; j < TN4; j++) {
      for (var c = 0u; c < 4u; c++) {
        let co = n0 + j * 4u + c;
        if (co < p.cout) {
          var v = acc[i * TN4 + j][c];
          if (HAS_BIAS) { v += bv[j][c]; }
          y[out + co] = WT(v);
        }
      }
    }
  }
}
