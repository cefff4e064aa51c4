{{ENABLE}}
// conv2d forward as an implicit GEMM: Y[M, Cout] = A[M, K] B[K, Cout] (+ bias), M = N*Ho*Wo output pixels,
// K = kh*kw*Cin. A is the im2col matrix, gathered from NHWC x on the fly (never materialised); B is the HWIO
// weight, which already is [K, Cout] row-major. conv2dPair runs the K axis over two sources (x0, w0) then
// (x1, w1) into the same accumulators; a plain conv2d leaves source 1 out (KW1 = 0). The input gradient of
// a stride-1 conv is this kernel too, run on dY with the flipped, transposed weight, read in place (FLIPPED).
//
// Work split: a thread owns a run of TM consecutive output pixels of one output row (a "segment") by
// TN = 4 * TN4 output channels, in registers; lanes hold neighbouring segments. The TM pixels of a segment
// read overlapping input columns, so per kernel row and VEC channels the thread gathers the NX = (TM-1)*SW + KW
// input columns once and reuses each for every kx (im2col would gather TM * KW). On a CPU adapter a gather
// is emulated lane by lane and costs far more than an FMA, so this reuse is what makes small channel counts
// fast. Weights are the same for every lane: with subgroups (SG) each lane loads one vec4 of the weight rows
// straight from storage and the subgroup shares them by broadcast (no workgroup memory, no barriers);
// without, every lane loads them all (a uniform address, cached on a GPU).
//
// Rows variant (ROWS, for narrow outputs, where the input gathers dominate): a thread walks a strip of
// output rows of its segment, gathering each input row once and adding it into a rolling window of KH
// accumulator rows (slot ky holds the output row that input row meets with kernel row ky); the oldest slot
// is complete after each input row and is stored, the window shifts. Each input row is then gathered once
// per thread instead of once per kernel row.
//
// The body of the (kernel row, channel group) loop is generated unrolled (conv2d.ts, forwardBody): named
// accumulators a_i_j and one chained FMA expression per accumulator and step, rather than arrays indexed by
// loop counters, which a compiler keeps in registers only while it chooses to unroll them (on llvmpipe,
// 128 accumulators in arrays ran 7x slower than 64; named, they run faster than 64). With KX_LOOP (stride 1
// along the width) the kernel's columns are a runtime loop inside that body instead: each step shifts a window
// of TM input columns by one and fetches its column's weights, so the unrolled code is a third as long (on a
// CPU adapter a long unrolled body runs at about half the rate of a short one). Kernel widths and SW
// are compile-time; kh, Cin, sh, padding are runtime. Padding is signed so that the dgrad form (padding
// kh - 1 - pt) may be negative. Every access is bounds-checked here.

struct Src {
  h: u32, w: u32, cin: u32, kh: u32,
  sh: u32, pt: i32, pl: i32, pad: u32,
}
struct P {
  segs: u32, cout: u32, ho: u32, wo: u32,
  segs_per_row: u32, strips: u32, strip: u32, pad0: u32, // strips of `strip` output rows (ROWS variant; else ho, 1)
  s0: Src, s1: Src,
}

alias XT = {{X_TYPE}};
alias WT = {{W_TYPE}}; // vec4f when Cout % 4 == 0 (and not FLIPPED): weight rows are then read as vec4s (always, from a texture)
alias YT = {{Y_TYPE}}; // vec4f when Cout % 4 == 0: outputs are then stored as vec4s
const VEC: u32 = {{VEC}}u;
const TM: u32 = {{TM}}u;
const SW: u32 = {{SW}}u;
const WG: u32 = {{WG}}u;
const TEX_SHIFT: u32 = {{TEX_SHIFT}}u; // log2 of a staging texture's width (texture-stage.ts)

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<YT>; // [.., Cout]
// Sources: storage buffers, or rgba32float textures that a copy filled (XTEX / WTEX lines; texture-stage.ts),
// texel i at texel_at(i). On a CPU adapter a texture fetch is one vectorised gather for all lanes, a storage read one
// bounds-checked scalar load per lane and component.
{{XBUF}}@group(0) @binding(2) var<storage, read> x0: array<XT>;
{{XBUF}}@group(0) @binding(4) var<storage, read> x1: array<XT>;
{{XTEX}}@group(0) @binding(2) var x0: texture_2d<f32>;
{{XTEX}}@group(0) @binding(4) var x1: texture_2d<f32>;
{{WBUF}}@group(0) @binding(3) var<storage, read> w0: array<WT>;
{{WBUF}}@group(0) @binding(5) var<storage, read> w1: array<WT>;
{{WTEX}}@group(0) @binding(3) var w0: texture_2d<f32>;
{{WTEX}}@group(0) @binding(5) var w1: texture_2d<f32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;

override HAS_BIAS: bool = false;
override WT_VEC: bool = false; // WT is vec4f
override YT_VEC: bool = false; // YT is vec4f
// Add into y instead of overwriting it (a gradient accumulated in place: the stride-1 dgrad).
override ACCUMULATE: bool = false;

// `s` is a literal at every call site, so these branches fold away after inlining.
fn load_x(s: u32, i: u32) -> vec4f {
{{XBUF}}  if (s == 0u) { return vec4f(x0[i]); }
{{XBUF}}  return vec4f(x1[i]);
{{XTEX}}  if (s == 0u) { return textureLoad(x0, texel_at(i), 0); }
{{XTEX}}  return textureLoad(x1, texel_at(i), 0);
}

fn load_wt(s: u32, i: u32) -> vec4f {
{{WBUF}}  if (s == 0u) { return vec4f(w0[i]); }
{{WBUF}}  return vec4f(w1[i]);
{{WTEX}}  if (s == 0u) { return textureLoad(w0, texel_at(i), 0); }
{{WTEX}}  return textureLoad(w1, texel_at(i), 0);
}

fn texel_at(i: u32) -> vec2u {
  return vec2u(i & ((1u << TEX_SHIFT) - 1u), i >> TEX_SHIFT);
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

// The stride-1 input gradient's weight, read in place: source s holds the forward conv's HWIO weight
// w [kh, KW, Cout, Cin] (this GEMM's Cout is that conv's Cin, and the reverse), and its row k = (ky, kx, ci) of
// the flipped transpose is wf[ky, kx, ci, co] = w[kh-1-ky, KW-1-kx, co, ci]: columns co .. co + 4 are 4 reads
// Cin apart, zero past Cout. This saves a flip dispatch and a copy of the weight per call.
fn load_w_flipped(s: u32, kh: u32, kw: u32, cin: u32, ky: u32, kx: u32, ci: u32, co: u32) -> vec4f {
  let base = ((kh - 1u - ky) * kw + kw - 1u - kx) * p.cout * cin + ci;
  var v = vec4f(0.0);
  for (var c = 0u; c < 4u; c++) {
    if (co + c < p.cout) { v[c] = load_wt(s, base + (co + c) * cin).x; }
  }
  return v;
}

// The bias of columns co .. co + 4, zero past Cout or without bias.
fn bias4(co: u32) -> vec4f {
  var v = vec4f(0.0);
  if (HAS_BIAS) {
    for (var c = 0u; c < 4u; c++) {
      if (co + c < p.cout) { v[c] = bias[co + c]; }
    }
  }
  return v;
}

// y[o + co .. o + co + 4) = v (+= v with ACCUMULATE), columns past Cout dropped: one vec4 store when Cout % 4 == 0.
fn store_y(o: u32, co: u32, v: vec4f) {
{{YV}}  if (YT_VEC) {
{{YV}}    if (co < p.cout) {
{{YV}}      let i = (o + co) / 4u;
{{YV}}      if (ACCUMULATE) { y[i] += YT(v); } else { y[i] = YT(v); }
{{YV}}    }
{{YV}}    return;
{{YV}}  }
  for (var c = 0u; c < 4u; c++) {
    if (co + c < p.cout) {
      if (ACCUMULATE) { y[o + co + c] += YT(v[c]); } else { y[o + co + c] = YT(v[c]); }
    }
  }
}

@compute @workgroup_size(WG) fn forward(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wg: vec3u{{SG_PARAM}}) {
  // Threads past the last segment compute a clamped copy (subgroup operations need every lane) and store nothing.
  let seg_id = wg.x * WG + lid.x;
  let seg = min(seg_id, p.segs - 1u);
  let ow0 = (seg % p.segs_per_row) * TM;
  let ns = seg / p.segs_per_row;
  let oh = (ns % p.strips) * p.strip; // the strip's first output row
  let n = ns / p.strips;
  let n0 = wg.y * {{TN}}u;
{{BODY}}
}
