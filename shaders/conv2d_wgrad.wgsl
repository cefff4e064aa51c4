{{ENABLE}}
// conv2d weight gradient (wgrad) as an implicit GEMM: dW[R, Cout] = A[R, Q] B[Q, Cout], R = kh*kw*Cin weight
// rows (tap, ci), Q = N*Ho*Wo output pixels, A[(tap, ci), q] = x at the input pixel tap reads for output
// pixel q (zero in the padding), B = dY viewed as [Q, Cout].
//
// R*Cout is small and Q is huge, so Q is split across workgroups (split-K, grid z): split z sums its chunk of
// Q into partial[z]; the host sums the partials (reduce.ts). A thread owns TM groups of VEC consecutive
// channels of one tap (one vec4 load when Cin % 4 == 0) by TN = 4 * TN4 output channels. Every thread needs
// the same dY rows, so a tile of BK output pixels of dY is staged in workgroup memory and read by all lanes
// at one address; with subgroups (SG lines) the lanes of a subgroup share the tile reads by broadcast (see
// conv2d_forward.wgsl). Every access is bounds-checked here.

struct P {
  rows: u32, cout: u32, q: u32, chunk: u32, // rows = kh*kw*Cin; chunk = output pixels per split
  cin: u32, h: u32, w: u32, ho: u32,
  wo: u32, kw: u32, sh: u32, sw: u32,
  pt: u32, pl: u32, pad0: u32, pad1: u32,
}

alias XT = {{X_TYPE}};
alias DT = {{DY_TYPE}}; // vec4f when Cout % 4 == 0: dY rows are then read as vec4s
const VEC: u32 = {{VEC}}u;
const TM: u32 = {{TM}}u;
const TN4: u32 = {{TN4}}u;
const BK: u32 = {{BK}}u; // output pixels per staged dY tile
const WG: u32 = {{WG}}u;
const NB: u32 = TN4; // tile vec4s one K step reads

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> dw: array<f32>; // [splits, rows, cout]
@group(0) @binding(2) var<storage, read> x: array<XT>;
@group(0) @binding(3) var<storage, read> dy: array<DT>;

override DT_VEC: bool = false; // DT is vec4f


var<workgroup> gt: array<vec4f, BK * TN4>;

// The NB tile vec4s from `start` on; with subgroups each lane reads one and the subgroup shares them.
fn read_tile(start: u32, lane: u32) -> array<vec4f, NB> {
  var b: array<vec4f, NB>;
{{NOSG}}  for (var q = 0u; q < NB; q++) { b[q] = gt[start + q]; }
{{SG}}  for (var h = 0u; h < NB; h += 8u) {
{{SG}}    let mine = gt[start + min(h + lane, NB - 1u)];
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

@compute @workgroup_size(WG) fn wgrad(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wg: vec3u{{SG_PARAM}}) {
  let lid = lid3.x;
  let groups = p.rows / VEC; // row groups of VEC channels of one tap
  let g0 = wg.x * WG * TM;
  let n0 = wg.y * TN4 * 4u;
  let q_begin = wg.z * p.chunk;
  let q_end = min(q_begin + p.chunk, p.q);
  let cinv = p.cin / VEC;

  // Each row group's tap offset relative to the output pixel's origin, and its channel group.
  var off_h: array<i32, TM>;
  var off_w: array<i32, TM>;
  var civ: array<u32, TM>;
  for (var i = 0u; i < TM; i++) {
    let r = min(g0 + i * WG + lid, groups - 1u);
    let tap = r / cinv;
    off_h[i] = i32(tap / p.kw) - i32(p.pt);
    off_w[i] = i32(tap % p.kw) - i32(p.pl);
    civ[i] = r % cinv;
  }

  var acc: array<vec4f, TM * VEC * TN4>;
  // (n, oh, ow) of output pixel q, advanced incrementally (no divisions in the loop).
  var ow = q_begin % p.wo;
  var oh = (q_begin / p.wo) % p.ho;
  var n = q_begin / (p.wo * p.ho);
  for (var q0 = q_begin; q0 < q_end; q0 += BK) {
    let qn = min(BK, q_end - q0);
    workgroupBarrier();
    for (var e = lid; e < qn * TN4; e += WG) {
      let co = n0 + (e % TN4) * 4u;
      let base = (q0 + e / TN4) * p.cout + co;
      var v = vec4f(0.0);
      if (DT_VEC) {
        v = select(vec4f(0.0), vec4f(dy[select(0u, base / 4u, co < p.cout)]), co < p.cout);
      } else {
        for (var c = 0u; c < 4u; c++) {
          if (co + c < p.cout) { v[c] = vec4f(dy[base + c]).x; }
        }
      }
      gt[e] = v;
    }
    workgroupBarrier();
    for (var qq = 0u; qq < qn; qq++) {
      let ih0 = i32(oh * p.sh);
      let iw0 = i32(ow * p.sw);
      let img = n * p.h;
      var a: array<vec4f, TM>;
      for (var i = 0u; i < TM; i++) {
        let ih = ih0 + off_h[i];
        let iw = iw0 + off_w[i];
        let inside = u32(ih) < p.h && u32(iw) < p.w;
        let idx = select(0u, ((img + u32(ih)) * p.w + u32(iw)) * cinv + civ[i], inside);
        a[i] = select(vec4f(0.0), vec4f(x[idx]), inside);
      }
      let b = read_tile(qq * TN4, {{LANE}});
      for (var j = 0u; j < TN4; j++) {
        for (var i = 0u; i < TM; i++) {
          for (var cc = 0u; cc < VEC; cc++) {
            let k = (i * VEC + cc) * TN4 + j;
            acc[k] = fma(vec4f(a[i][cc]), b[j], acc[k]);
          }
        }
      }
      ow += 1u;
      if (ow == p.wo) {
        ow = 0u;
        oh += 1u;
        if (oh == p.ho) { oh = 0u; n += 1u; }
      }
    }
  }

  let out = wg.z * p.rows * p.cout;
  for (var i = 0u; i < TM; i++) {
    let r = g0 + i * WG + lid;
    if (r >= groups) { continue; }
    for (var cc = 0u; cc < VEC; cc++) {
      let row = (r / cinv) * p.cin + (r % cinv) * VEC + cc;
      for (var j = 0u; j < TN4; j++) {
        for (var c = 0u; c < 4u; c++) {
          let co = n0 + j * 4u + c;
          if (co < p.cout) { dw[out + row * p.cout + co] = acc[(i * VEC + cc) * TN4 + j][c]; }
        }
      }
    }
  }
}
