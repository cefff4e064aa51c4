{{ENABLE}}
// conv2d input gradient (dgrad) of a strided conv (stride 1 runs on conv2d_forward.wgsl instead, see conv2d.ts),
// as an implicit GEMM: dX[M, Cin] = A[M, K] B[K, Cin], M = input pixels,
// K = taps x Cout, A[pixel, (tap, co)] = dY at the output pixel that tap connects the input pixel to (zero
// where there is none), B[(tap, co), ci] = w[tap, ci, co] (the weight transposed per tap).
//
// Strides: an input pixel (ih, iw) is reached only by taps with ky = (ih + pt) mod sh (likewise kx), so the
// rows are split into sh*sw phases (ih mod sh, iw mod sw), one per grid z: within a phase every pixel uses
// the same taps, and the K loop visits only those, instead of testing all kh*kw taps per pixel.
//
// The work split mirrors the forward kernel: a thread owns TM pixels (strided by WG) by TN = 4 * TN4 input
// channels, the weight tile is staged in workgroup memory and read by all lanes at one address, dY is
// gathered as vec4s over Cout when Cout % 4 == 0 (VEC = 4); with subgroups (SG lines) the lanes of a subgroup
// share the tile reads by broadcast (see conv2d_forward.wgsl). Every access is bounds-checked here.

struct P {
  rows: u32, cin: u32, cout: u32, h: u32, // rows = pixels per phase = N * hp * wp
  w: u32, ho: u32, wo: u32, kh: u32,
  kw: u32, sh: u32, sw: u32, pt: u32,
  pl: u32, hp: u32, wp: u32, taps_per_tile: u32, // hp = ceil(H / sh), wp = ceil(W / sw)
  co_tile: u32, pad0: u32, pad1: u32, pad2: u32,
}

alias GT = {{X_TYPE}};
const VEC: u32 = {{VEC}}u;
const TM: u32 = {{TM}}u;
const TN4: u32 = {{TN4}}u;
const BK: u32 = {{BK}}u;
const WG: u32 = {{WG}}u;
const NB: u32 = VEC * TN4; // tile vec4s one K step reads

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<GT>;
@group(0) @binding(3) var<storage, read> w: array<f32>;


var<workgroup> wt: array<vec4f, BK * TN4>;

// The NB tile vec4s from `start` on; with subgroups each lane reads one and the subgroup shares them.
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

@compute @workgroup_size(WG) fn dgrad(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wg: vec3u{{SG_PARAM}}) {
  let lid = lid3.x;
  let m0 = wg.x * WG * TM;
  let n0 = wg.y * TN4 * 4u;
  let ph = wg.z / p.sw;
  let pw = wg.z % p.sw;
  // The taps of this phase: ky = ky0 + ty * sh, kx = kx0 + tx * sw.
  let ky0 = (ph + p.pt) % p.sh;
  let kx0 = (pw + p.pl) % p.sw;
  let nty = select(0u, (p.kh - ky0 + p.sh - 1u) / p.sh, ky0 < p.kh);
  let ntx = select(0u, (p.kw - kx0 + p.sw - 1u) / p.sw, kx0 < p.kw);
  let taps = nty * ntx;

  // Each pixel's (oh, ow) for tap (ky0, kx0); later taps step back by one output pixel per ty / tx.
  var base_h: array<i32, TM>;
  var base_w: array<i32, TM>;
  var img: array<u32, TM>;
  for (var i = 0u; i < TM; i++) {
    let m = min(m0 + i * WG + lid, p.rows - 1u);
    let t = m / p.wp;
    base_h[i] = i32(t % p.hp) + (i32(ph + p.pt) - i32(ky0)) / i32(p.sh);
    base_w[i] = i32(m % p.wp) + (i32(pw + p.pl) - i32(kx0)) / i32(p.sw);
    img[i] = (t / p.hp) * p.ho;
  }

  var acc: array<vec4f, TM * TN4>;
  for (var tap0 = 0u; tap0 < taps; tap0 += p.taps_per_tile) {
    let tn = min(p.taps_per_tile, taps - tap0);
    for (var co0 = 0u; co0 < p.cout; co0 += p.co_tile) {
      let cn = min(p.co_tile, p.cout - co0);
      // Stage w[tap, n0..n0+TN, co0..co0+cn] as rows (tap, co) of vec4s over ci; zero past Cin.
      workgroupBarrier();
      for (var e = lid; e < tn * cn * TN4; e += WG) {
        let r = e / TN4;
        let tl = tap0 + r / cn;
        let ky = ky0 + (tl / ntx) * p.sh;
        let kx = kx0 + (tl % ntx) * p.sw;
        let ci = n0 + (e % TN4) * 4u;
        let base = ((ky * p.kw + kx) * p.cin + ci) * p.cout + co0 + r % cn;
        var v = vec4f(0.0);
        for (var c = 0u; c < 4u; c++) {
          if (ci + c < p.cin) { v[c] = w[base + c * p.cout]; }
        }
        wt[e] = v;
      }
      workgroupBarrier();
      for (var t = 0u; t < tn; t++) {
        let tl = tap0 + t;
        let dh = i32(tl / ntx);
        let dw = i32(tl % ntx);
        var row: array<u32, TM>;
        var inside: array<bool, TM>;
        for (var i = 0u; i < TM; i++) {
          let oh = base_h[i] - dh;
          let ow = base_w[i] - dw;
          inside[i] = u32(oh) < p.ho && u32(ow) < p.wo;
          row[i] = select(0u, ((img[i] + u32(oh)) * p.wo + u32(ow)) * (p.cout / VEC) + co0 / VEC, inside[i]);
        }
        for (var c = 0u; c < cn; c += VEC) {
          var a: array<vec4f, TM>;
          for (var i = 0u; i < TM; i++) {
            a[i] = select(vec4f(0.0), vec4f(dy[row[i] + c / VEC]), inside[i]);
          }
          let b = read_tile((t * cn + c) * TN4, {{LANE}});
          for (var cc = 0u; cc < VEC; cc++) {
            for (var j = 0u; j < TN4; j++) {
              for (var i = 0u; i < TM; i++) {
                acc[i * TN4 + j] = fma(vec4f(a[i][cc]), b[cc * TN4 + j], acc[i * TN4 + j]);
              }
            }
          }
        }
      }
    }
  }

  for (var i = 0u; i < TM; i++) {
    let m = m0 + i * WG + lid;
    let t = m / p.wp;
    let ih = (t % p.hp) * p.sh + ph;
    let iw = (m % p.wp) * p.sw + pw;
    if (m >= p.rows || ih >= p.h || iw >= p.w) { continue; }
    let out = (((t / p.hp) * p.h + ih) * p.w + iw) * p.cin;
    for (var j = 0u; j < TN4; j++) {
      for (var c = 0u; c < 4u; c++) {
        let ci = n0 + j * 4u + c;
        if (ci < p.cin) { dx[out + ci] = acc[i * TN4 + j][c]; }
      }
    }
  }
}
