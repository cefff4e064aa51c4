// Stimulus renderer: sphere tracing of signed distance fields (SDFs), one invocation per output pixel,
// a batch of images per dispatch (gid.z = image). Each pixel averages SS x SS rays on a regular sub-pixel
// grid (a box filter: antialiasing) and takes the most frequent part label among them.
//
// Why SDFs and not rasterised meshes: the engine dispatches compute only; SDFs give smooth blends between
// head parts (smooth min), exact per-part labels (the nearest primitive), and no meshing of a parameter
// vector: an identity is just the centres and radii below, computed on the host (src/data/faces.ts).
//
// Scene block: BLOCK vec4s per image, loaded once into private registers.
//   g[0] = (world->object rotation row 0, translation x)   the rotation is R^T for pose R (src/data/poses.ts)
//   g[1] = (row 1, translation y)
//   g[2] = (row 2, scale)
//   g[3] = (light direction in world space, category)
//   g[4] = (background, ambient, diffuse, bounding-sphere radius)
//   g[5..27], g[30..31] = the category's parameters (layouts at face() and at each object below)
//   g[28], g[29] = min and max corners of the model's bounding box (model coordinates)
// Camera: pinhole at (0, 0, cam_dist) looking down -z; the image spans [-half_width, half_width] at z = 0.

struct P {
  n: u32,          // images in this dispatch
  size: u32,       // output pixels per side
  ss: u32,         // supersamples per side
  steps: u32,      // maximum sphere-tracing steps per ray
  half_width: f32, // half the frame's width at the object's distance
  cam_dist: f32,
  eps: f32,        // hit threshold as a fraction of the sub-pixel footprint
  first: u32,      // index of this dispatch's first image in `scene`
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> scene: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> image: array<f32>;
@group(0) @binding(3) var<storage, read_write> parts: array<u32>;

override WG_X: u32 = 8;
override WG_Y: u32 = 8;

const BLOCK: u32 = 32u;
var<private> g: array<vec4f, 32>;

// Materials. Part labels are min(material, 8): 0 background, 1 skin, 2 hair, 3 eyes, 4 brows, 5 nose,
// 6 mouth, 7 ears, 8 object (9 and 10 are an object's dark and secondary materials).
const BG: u32 = 0u;
const SKIN: u32 = 1u;
const HAIR: u32 = 2u;
const EYES: u32 = 3u;
const BROWS: u32 = 4u;
const NOSE: u32 = 5u;
const MOUTH: u32 = 6u;
const EARS: u32 = 7u;
const OBJ: u32 = 8u;
const OBJ_DARK: u32 = 9u;
const OBJ_ALT: u32 = 10u;

struct Hit { d: f32, m: u32 }

// ---- primitives (after Inigo Quilez's distance functions) ----

// Not exact away from the surface, but a close bound near it: fine for sphere tracing.
fn sd_ellipsoid(q: vec3f, r: vec3f) -> f32 {
  let k0 = length(q / r);
  let k1 = length(q / (r * r));
  return k0 * (k0 - 1.0) / max(k1, 1e-6);
}

fn sd_ellipse(q: vec2f, r: vec2f) -> f32 {
  let k0 = length(q / r);
  let k1 = length(q / (r * r));
  return k0 * (k0 - 1.0) / max(k1, 1e-6);
}

fn sd_box(q: vec3f, b: vec3f) -> f32 {
  let d = abs(q) - b;
  return length(max(d, vec3f(0.0))) + min(max(d.x, max(d.y, d.z)), 0.0);
}

fn sd_round_box(q: vec3f, b: vec3f, r: f32) -> f32 {
  return sd_box(q, b - vec3f(r)) - r;
}

fn sd_capsule(q: vec3f, a: vec3f, b: vec3f, r: f32) -> f32 {
  let pa = q - a;
  let ba = b - a;
  let h = clamp(dot(pa, ba) / dot(ba, ba), 0.0, 1.0);
  return length(pa - ba * h) - r;
}

// Cylinder along y, radius r, half-height h.
fn sd_cyl_y(q: vec3f, r: f32, h: f32) -> f32 {
  let d = abs(vec2f(length(q.xz), q.y)) - vec2f(r, h);
  return min(max(d.x, d.y), 0.0) + length(max(d, vec2f(0.0)));
}

// Cylinder along z.
fn sd_cyl_z(q: vec3f, r: f32, h: f32) -> f32 {
  let d = abs(vec2f(length(q.xy), q.z)) - vec2f(r, h);
  return min(max(d.x, d.y), 0.0) + length(max(d, vec2f(0.0)));
}

// Cylinder along x.
fn sd_cyl_x(q: vec3f, r: f32, h: f32) -> f32 {
  let d = abs(vec2f(length(q.yz), q.x)) - vec2f(r, h);
  return min(max(d.x, d.y), 0.0) + length(max(d, vec2f(0.0)));
}

// Cone frustum along y: half-height h, radius r1 at the bottom, r2 at the top.
fn sd_capped_cone(q3: vec3f, h: f32, r1: f32, r2: f32) -> f32 {
  let q = vec2f(length(q3.xz), q3.y);
  let k1 = vec2f(r2, h);
  let k2 = vec2f(r2 - r1, 2.0 * h);
  let ca = vec2f(q.x - min(q.x, select(r2, r1, q.y < 0.0)), abs(q.y) - h);
  let cb = q - k1 + k2 * clamp(dot(k1 - q, k2) / dot(k2, k2), 0.0, 1.0);
  let s = select(1.0, -1.0, cb.x < 0.0 && ca.y < 0.0);
  return s * sqrt(min(dot(ca, ca), dot(cb, cb)));
}

// Cone with rounded ends: sphere of radius r1 at a, r2 at b, and their tangent cone.
fn sd_round_cone(q: vec3f, a: vec3f, b: vec3f, r1: f32, r2: f32) -> f32 {
  let ba = b - a;
  let l2 = dot(ba, ba);
  let rr = r1 - r2;
  let a2 = l2 - rr * rr;
  let il2 = 1.0 / l2;
  let pa = q - a;
  let y = dot(pa, ba);
  let z = y - l2;
  let xv = pa * l2 - ba * y;
  let x2 = dot(xv, xv);
  let y2 = y * y * l2;
  let z2 = z * z * l2;
  let k = sign(rr) * rr * rr * x2;
  if (sign(z) * a2 * z2 > k) { return sqrt(x2 + z2) * il2 - r2; }
  if (sign(y) * a2 * y2 < k) { return sqrt(x2 + y2) * il2 - r1; }
  return (sqrt(x2 * a2 * il2) + y * rr) * il2 - r1;
}

// Torus in the x-y plane (axis z): major radius R, minor r.
fn sd_torus_z(q: vec3f, R: f32, r: f32) -> f32 {
  return length(vec2f(length(q.xy) - R, q.z)) - r;
}

fn smin(a: f32, b: f32, k: f32) -> f32 {
  let h = max(k - abs(a - b), 0.0) / k;
  return min(a, b) - h * h * k * 0.25;
}

fn smax(a: f32, b: f32, k: f32) -> f32 {
  return -smin(-a, -b, k);
}

// Union that keeps the material of whichever part is nearer (before blending): that is the part label.
fn add_part(h: Hit, d: f32, m: u32, k: f32) -> Hit {
  return Hit(smin(h.d, d, k), select(h.m, m, d < h.d));
}

fn add_hard(h: Hit, d: f32, m: u32) -> Hit {
  return Hit(min(h.d, d), select(h.m, m, d < h.d));
}

fn rot2(v: vec2f, a: f32) -> vec2f {
  let c = cos(a);
  let s = sin(a);
  return vec2f(c * v.x - s * v.y, s * v.x + c * v.y);
}

// ---- face (category 0) ----
// g[5]  = cranium centre, skin albedo        g[6]  = cranium radii, hair albedo
// g[7]  = jaw centre, lip albedo             g[8]  = jaw radii, iris albedo
// g[9]  = chin centre, chin radius           g[10] = cos and sin of the brow tilt, 0, sclera albedo
// g[11] = inner-feature box centre, brow albedo   g[12] = eyeball centre (+x), eyeball radius
// g[13] = eye socket centre, socket radius   g[14] = brow centre (+x), 0
// g[15] = brow radii, iris cos(half-angle)   g[16] = nose root, root radius
// g[17] = nose tip centre, tip radius        g[18] = nose wing (ala) centre (+x), radius
// g[19] = mouth centre, half-height of the dark line between the lips
// g[20] = mouth radii, upper lid height      g[21] = ear centre (+x), lower lid depth
// g[22] = ear radii, lid sphere radius       g[23] = hair ellipsoid centre
// g[24] = hair ellipsoid radii               g[25] = hairline (ny, nz, d, s): hair where ny y + nz z + s x^2 > d
// g[26] = neck top, neck radius              g[27] = neck bottom
// g[30] = inner-feature box half-size (the box holds eyes, lids, sockets, brows, nose and mouth)
// Paired parts are evaluated once on |x| (a mirror fold), so a face with hairPart = 0 is exactly symmetric.
fn face(p3: vec3f) -> Hit {
  let q = vec3f(abs(p3.x), p3.y, p3.z);
  var d = sd_ellipsoid(p3 - g[5].xyz, g[6].xyz);
  d = smin(d, sd_ellipsoid(p3 - g[7].xyz, g[8].xyz), 0.3);
  d = smin(d, length(p3 - g[9].xyz) - g[9].w, 0.2);
  d = smin(d, sd_capsule(p3, g[26].xyz, g[27].xyz, g[26].w), 0.15);
  // Inner features only matter near the front of the face; elsewhere skip them. The distance to their box
  // (computed on the host to hold them all) then bounds theirs, which keeps sphere tracing safe.
  let front = sd_box(p3 - g[11].xyz, g[30].xyz);
  var h = Hit(d, SKIN);
  if (front < 0.05) {
    h.d = smax(h.d, -(length(q - g[13].xyz) - g[13].w), 0.05);
    let dn = smin(sd_round_cone(p3, g[16].xyz, g[17].xyz, g[16].w, g[17].w), length(q - g[18].xyz) - g[18].w, 0.03);
    h = add_part(h, dn, NOSE, 0.05);
    h = add_part(h, sd_ellipsoid(p3 - g[19].xyz, g[20].xyz), MOUTH, 0.03);
    let bq = q.xy - g[14].xy;
    let b = vec2f(g[10].x * bq.x + g[10].y * bq.y, g[10].x * bq.y - g[10].y * bq.x);  // rotated by -tilt
    h = add_part(h, sd_ellipsoid(vec3f(b, q.z - g[14].z), g[15].xyz), BROWS, 0.015);
    // Lids: the part of a sphere a little larger than the eyeball outside the eye's opening band.
    let e = q - g[12].xyz;
    let lids = max(length(e) - g[22].w, min(g[20].w - e.y, e.y + g[21].w));
    h = add_part(h, lids, SKIN, 0.01);
    h = add_hard(h, length(e) - g[12].w, EYES);
  } else {
    h.d = min(h.d, front);
  }
  // Ears only near the sides: elsewhere the distance to a box around them bounds theirs.
  let ear_box = sd_box(q - g[21].xyz, g[22].xyz + vec3f(0.02));
  if (ear_box < 0.06) {
    h = add_part(h, sd_ellipsoid(q - g[21].xyz, g[22].xyz), EARS, 0.04);
  } else {
    h.d = min(h.d, ear_box);
  }
  // Hair: the hairline term alone bounds the hair's distance from below (smax lowers it by at most k/4),
  // so the ellipsoid is evaluated only where the hair could be the nearest part. The term is divided by
  // its gradient's length so that it never overstates a distance.
  let hl = g[25].z - (g[25].x * p3.y + g[25].y * p3.z + g[25].w * p3.x * p3.x);
  let hairline = hl / sqrt(1.0 + 4.0 * g[25].w * g[25].w * p3.x * p3.x);
  if (hairline - 0.01 < h.d + 0.02) {
    let hair = smax(sd_ellipsoid(p3 - g[23].xyz, g[24].xyz), hairline, 0.04);
    h = add_part(h, hair, HAIR, 0.02);
  }
  return h;
}

fn face_albedo(p3: vec3f, m: u32) -> f32 {
  let q = vec3f(abs(p3.x), p3.y, p3.z);
  switch m {
    case 2u: { return g[6].w; }
    case 3u: {
      let dir = normalize(q - g[12].xyz);
      return select(g[10].w, g[8].w, dir.z > g[15].w);
    }
    case 4u: { return g[11].w; }
    case 6u: {
      let line = abs(p3.y - g[19].y) < g[19].w && q.x < g[20].x * 0.9;
      return select(g[7].w, 0.12, line);
    }
    default: { return g[5].w; }
  }
}

// ---- objects (categories 1..8). Albedos of the main, dark and secondary materials: g[31].xyz. ----

// car (1), side view, length along x.
// g[5] = body half-size, rounding   g[6] = body centre, arch radius factor   g[7] = cabin centre, rounding
// g[8] = cabin half-size, 0         g[9] = wheel centre (+x, +z), radius      g[10] = wheel half-width, slope cos, slope sin, belt y
fn car(p3: vec3f) -> Hit {
  let w = vec3f(abs(p3.x), p3.y, abs(p3.z)) - g[9].xyz;
  var body = sd_round_box(p3 - g[6].xyz, g[5].xyz, g[5].w);
  body = smax(body, -sd_cyl_z(w, g[9].w * g[6].w, 2.0), 0.02);
  let c = p3 - g[7].xyz;
  var cabin = sd_round_box(c, g[8].xyz, g[7].w);
  cabin = max(cabin, abs(c.x) * g[10].y + c.y * g[10].z - g[8].x * g[10].y);
  var h = Hit(body, OBJ);
  h = add_part(h, cabin, OBJ_ALT, 0.03);
  h = add_hard(h, sd_cyl_z(w, g[9].w, g[10].x) - 0.01, OBJ_DARK);
  return h;
}

fn car_albedo(p3: vec3f, m: u32) -> f32 {
  if (m == OBJ_DARK) {
    let w = vec3f(abs(p3.x), p3.y, abs(p3.z)) - g[9].xyz;
    return select(g[31].y, 0.65, length(w.xy) < 0.5 * g[9].w);
  }
  if (m == OBJ_ALT) { return select(g[31].x, g[31].z, p3.y > g[10].w); }
  return g[31].x;
}

// chair (2), front view.
// g[5] = seat centre, seat half-thickness   g[6] = seat half-size (x, -, z), corner rounding
// g[7] = leg centre (+x, +z), leg half-thickness   g[8] = leg half-height, back half-height, back half-thickness, back tilt
// g[9] = back centre, frame width (0 = solid back)  g[10] = armrest height above the seat (0 = none), armrest half-width
fn chair(p3: vec3f) -> Hit {
  let seat = sd_round_box(p3 - g[5].xyz, vec3f(g[6].x, g[5].w, g[6].z), g[6].w);
  let l = vec3f(abs(p3.x), p3.y, abs(p3.z)) - g[7].xyz;
  let legs = sd_box(l, vec3f(g[7].w, g[8].x, g[7].w));
  var b = p3 - g[9].xyz;
  let yz = rot2(b.yz, -g[8].w);
  b = vec3f(b.x, yz.x, yz.y);
  var back = sd_box(b, vec3f(g[6].x, g[8].y, g[8].z));
  if (g[9].w > 0.0) {
    back = max(back, -sd_box(b, vec3f(g[6].x - g[9].w, g[8].y - g[9].w, 1.0)));
  }
  var h = Hit(seat, OBJ);
  h = add_hard(h, legs, OBJ_DARK);
  h = add_hard(h, back, OBJ);
  if (g[10].x > 0.0) {
    let a = vec3f(abs(p3.x) - g[6].x + g[10].y, p3.y - g[5].y - g[10].x, p3.z);
    h = add_hard(h, sd_box(a, vec3f(g[10].y, 0.025, g[6].z)), OBJ_DARK);
    let post = vec3f(a.x, p3.y - g[5].y - g[10].x * 0.5, p3.z - g[6].z + g[10].y);
    h = add_hard(h, sd_box(post, vec3f(g[10].y, g[10].x * 0.5, g[10].y)), OBJ_DARK);
  }
  return h;
}

// mug (3), front view, handle on +x.
// g[5] = outer radius, half-height, wall, bottom rounding   g[6] = handle centre, handle major radius
// g[7] = handle minor radius, band half-height (0 = none), band centre y, 0
fn mug(p3: vec3f) -> Hit {
  var body = sd_cyl_y(p3, g[5].x - g[5].w, g[5].y - g[5].w) - g[5].w;
  body = max(body, -sd_cyl_y(p3 - vec3f(0.0, g[5].z + 0.01, 0.0), g[5].x - g[5].z, g[5].y));
  var handle = sd_torus_z(p3 - g[6].xyz, g[6].w, g[7].x);
  handle = max(handle, g[5].x - 0.01 - length(p3.xz));
  var h = Hit(body, OBJ);
  h = add_part(h, handle, OBJ, 0.02);
  return h;
}

fn mug_albedo(p3: vec3f, m: u32) -> f32 {
  let inside = length(p3.xz) < g[5].x - g[5].z * 0.5 && p3.y > -g[5].y + g[5].z;
  if (inside) { return g[31].y; }
  if (g[7].y > 0.0 && abs(p3.y - g[7].z) < g[7].y && length(p3.xz) > g[5].x - 0.02) { return g[31].z; }
  return g[31].x;
}

// lamp (4), table lamp.
// g[5] = base centre y, base radius, base half-height, stem radius   g[6] = stem top y, shade centre y, shade half-height, 0
// g[7] = shade bottom radius, shade top radius, 0, 0
fn lamp(p3: vec3f) -> Hit {
  let base = sd_cyl_y(p3 - vec3f(0.0, g[5].x, 0.0), g[5].y - 0.02, g[5].z) - 0.02;
  let stem = sd_capsule(p3, vec3f(0.0, g[5].x, 0.0), vec3f(0.0, g[6].x, 0.0), g[5].w);
  let shade = sd_capped_cone(p3 - vec3f(0.0, g[6].y, 0.0), g[6].z, g[7].x, g[7].y) - 0.01;
  var h = Hit(smin(base, stem, 0.05), OBJ_DARK);
  h = add_hard(h, shade, OBJ_ALT);
  return h;
}

// bottle (5).
// g[5] = body radius, body bottom y, shoulder y, rounding   g[6] = neck radius, neck base y, neck top y, cap height
// g[7] = cap radius, label bottom y, label top y, 0
fn bottle(p3: vec3f) -> Hit {
  let hb = 0.5 * (g[5].z - g[5].y);
  let body = sd_cyl_y(p3 - vec3f(0.0, g[5].y + hb, 0.0), g[5].x - g[5].w, hb - g[5].w) - g[5].w;
  let shoulder = sd_round_cone(p3, vec3f(0.0, g[5].z - g[5].w, 0.0), vec3f(0.0, g[6].y, 0.0), g[5].x - 0.005, g[6].x);
  let hn = 0.5 * (g[6].z - g[6].y);
  let neck = sd_cyl_y(p3 - vec3f(0.0, g[6].y + hn, 0.0), g[6].x, hn);
  var h = Hit(smin(smin(body, shoulder, 0.04), neck, 0.06), OBJ);
  let cap = sd_cyl_y(p3 - vec3f(0.0, g[6].z + 0.5 * g[6].w, 0.0), g[7].x - 0.01, 0.5 * g[6].w) - 0.01;
  h = add_hard(h, cap, OBJ_DARK);
  return h;
}

fn bottle_albedo(p3: vec3f, m: u32) -> f32 {
  if (m == OBJ_DARK) { return g[31].y; }
  return select(g[31].x, g[31].z, p3.y > g[7].y && p3.y < g[7].z);
}

// house (6), gable end toward the camera.
// g[5] = wall half-size, wall centre y   g[6] = roof rise, overhang, roof trim thickness, chimney x
// g[7] = chimney half-width, chimney top y, chimney z, door half-width
// g[8] = door height, door x, window half-size, window y   g[9] = window x (+/-), 0, 0, 0
fn house(p3: vec3f) -> Hit {
  let walls = sd_box(p3 - vec3f(0.0, g[5].w, 0.0), g[5].xyz);
  let top = g[5].w + g[5].y;
  let ex = g[5].x + g[6].y;
  let n = normalize(vec2f(g[6].x, ex));
  let slope = dot(vec2f(abs(p3.x), p3.y - top - g[6].x), n);
  var roof = max(slope, top - 0.02 - p3.y);
  roof = max(roof, abs(p3.z) - g[5].z - g[6].y);
  let chim = sd_box(p3 - vec3f(g[6].w, 0.5 * (top + g[7].y), g[7].z), vec3f(g[7].x, 0.5 * (g[7].y - top), g[7].x));
  var h = Hit(walls, OBJ);
  h = add_hard(h, roof, OBJ_ALT);
  h = add_hard(h, chim, OBJ_ALT);
  return h;
}

fn house_albedo(p3: vec3f, m: u32) -> f32 {
  if (m == OBJ_ALT) {
    // The roof is a solid prism: its end faces are gable walls except for a trim of the roof's thickness.
    let top = g[5].w + g[5].y;
    let n = normalize(vec2f(g[6].x, g[5].x + g[6].y));
    let slope = dot(vec2f(abs(p3.x), p3.y - top - g[6].x), n);
    let gable = abs(p3.z) > g[5].z + g[6].y - 0.01 && slope < -g[6].z && p3.y > top;
    return select(g[31].z, g[31].x, gable);
  }
  let bottom = g[5].w - g[5].y;
  let facade = p3.z > g[5].z - 0.01;
  let door = abs(p3.x - g[8].y) < g[7].w && p3.y < bottom + g[8].x;
  let win = abs(abs(p3.x) - g[9].x) < g[8].z && abs(p3.y - g[8].w) < g[8].z;
  return select(g[31].x, g[31].y, facade && (door || win));
}

// shoe (7), side view, toe toward +x.
// g[5] = sole centre, sole rounding   g[6] = sole half-size (x unused), 0   g[7] = toe centre, 0   g[8] = toe radii, 0
// g[9] = heel-part centre, 0   g[10] = heel-part radii, 0   g[11] = opening centre, 0   g[12] = opening radii, heel height
// g[13] = heel block centre, heel half-size x   g[14] = collar plane (nx, ny, 0, d): the heel part ends where nx x + ny y > d
fn shoe(p3: vec3f) -> Hit {
  var back = sd_ellipsoid(p3 - g[9].xyz, g[10].xyz);
  back = smax(back, g[14].x * p3.x + g[14].y * p3.y - g[14].w, 0.04);
  var up = smin(sd_ellipsoid(p3 - g[7].xyz, g[8].xyz), back, 0.2);
  up = smax(up, -sd_ellipsoid(p3 - g[11].xyz, g[12].xyz), 0.03);
  up = max(up, g[5].y - p3.y);
  // The sole follows the upper's footprint (two ellipses joined), a little wider.
  let foot = smin(sd_ellipse(p3.xz - g[7].xz, g[8].xz), sd_ellipse(p3.xz - g[9].xz, g[10].xz), 0.2) - 0.02;
  let sole = max(foot, abs(p3.y - g[5].y) - g[6].y);
  var h = Hit(up, OBJ);
  h = add_part(h, sole, OBJ_DARK, 0.01);
  if (g[12].w > 0.0) {
    h = add_hard(h, sd_box(p3 - g[13].xyz, vec3f(g[13].w, 0.5 * g[12].w, g[6].z * 0.7)), OBJ_DARK);
  }
  return h;
}

// plane (8), side view, nose toward +x.
// g[5] = tail x, nose x, fuselage radius, tail radius   g[6] = wing centre x, wing chord half, wing span half, sweep
// g[7] = wing half-thickness, wing y, fin height, fin chord half   g[8] = stabiliser span half, chord half, engine radius, engine z
fn plane(p3: vec3f) -> Hit {
  let fus = sd_round_cone(p3, vec3f(g[5].x, g[5].z - g[5].w, 0.0), vec3f(g[5].y - g[5].z, 0.0, 0.0), g[5].w, g[5].z);
  let az = abs(p3.z);
  let sw = 1.0 / sqrt(1.0 + g[6].w * g[6].w);
  let wq = vec3f(p3.x - g[6].x + g[6].w * az, p3.y - g[7].y, az - 0.5 * g[6].z);
  let wing = sd_box(wq, vec3f(g[6].y, g[7].x, 0.5 * g[6].z)) * sw - 0.005;
  let fin_y = p3.y - g[5].z * 0.5;
  let fq = vec3f(p3.x - g[5].x - g[7].w - 0.02 + g[6].w * max(fin_y, 0.0), fin_y - 0.5 * g[7].z, p3.z);
  let fin = sd_box(fq, vec3f(g[7].w, 0.5 * g[7].z, 0.012)) * sw;
  let sq = vec3f(p3.x - g[5].x - g[8].y - 0.02 + g[6].w * az, p3.y - g[5].z * 0.6, az - 0.5 * g[8].x);
  let stab = sd_box(sq, vec3f(g[8].y, 0.012, 0.5 * g[8].x)) * sw;
  var h = Hit(fus, OBJ);
  h = add_part(h, wing, OBJ, 0.02);
  h = add_part(h, min(fin, stab), OBJ_ALT, 0.02);
  if (g[8].z > 0.0) {
    let e = vec3f(p3.x - g[6].x + g[6].w * g[8].w - g[6].y * 0.3, p3.y - g[7].y + g[8].z + 0.01, az - g[8].w);
    h = add_hard(h, sd_cyl_x(e, g[8].z, g[6].y * 0.9) - 0.005, OBJ_DARK);
  }
  return h;
}

fn scene_sdf(q: vec3f) -> Hit {
  switch u32(g[3].w) {
    case 0u: { return face(q); }
    case 1u: { return car(q); }
    case 2u: { return chair(q); }
    case 3u: { return mug(q); }
    case 4u: { return lamp(q); }
    case 5u: { return bottle(q); }
    case 6u: { return house(q); }
    case 7u: { return shoe(q); }
    default: { return plane(q); }
  }
}

fn albedo(q: vec3f, m: u32) -> f32 {
  switch u32(g[3].w) {
    case 0u: { return face_albedo(q, m); }
    case 1u: { return car_albedo(q, m); }
    case 3u: { return mug_albedo(q, m); }
    case 5u: { return bottle_albedo(q, m); }
    case 6u: { return house_albedo(q, m); }
    default: {
      return select(select(g[31].x, g[31].y, m == OBJ_DARK), g[31].z, m == OBJ_ALT);
    }
  }
}

fn normal_at(q: vec3f, d0: f32, h: f32) -> vec3f {
  // Central difference along x, forward differences along y and z from the distance already known at q:
  // 4 evaluations, and mirror-symmetric in x (a tetrahedral 4-point stencil is not), so a symmetric face
  // at yaw -theta shades as the exact mirror image of yaw +theta.
  let e = vec2f(h, 0.0);
  return normalize(vec3f(
    0.5 * (scene_sdf(q + e.xyy).d - scene_sdf(q - e.xyy).d),
    scene_sdf(q + e.yxy).d - d0,
    scene_sdf(q + e.yyx).d - d0));
}

// Direction (model coordinates) of sub-pixel ray k of pixel xy: a regular ss x ss grid inside the pixel.
fn sub_ray(xy: vec2u, k: u32, ss: u32, inv: f32, tan_half: f32, rt: mat3x3f) -> vec3f {
  let u = (f32(xy.x * ss + k % ss) + 0.5) * inv * 2.0 - 1.0;
  let v = 1.0 - (f32(xy.y * ss + k / ss) + 0.5) * inv * 2.0;
  return normalize(vec3f(u * tan_half, v * tan_half, -1.0)) * rt;
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn render(@builtin(global_invocation_id) gid: vec3u) {
  let size = p.size;
  if (gid.x >= size || gid.y >= size || gid.z >= p.n) { return; }
  let img = p.first + gid.z;
  for (var i = 0u; i < BLOCK; i++) { g[i] = scene[img * BLOCK + i]; }

  let rt = mat3x3f(g[0].xyz, g[1].xyz, g[2].xyz);  // columns = rows of R^T, so v * rt = R^T v
  let scale = g[2].w;
  let light = normalize(g[3].xyz) * rt;             // the world light in object coordinates
  let bg = g[4].x;
  let bound = g[4].w;
  let origin = (vec3f(0.0, 0.0, p.cam_dist) - vec3f(g[0].w, g[1].w, 0.0)) / scale * rt;
  let b_o = dot(origin, origin) - bound * bound;
  let ss = p.ss;
  let inv = 1.0 / f32(size * ss);
  let tan_half = p.half_width / p.cam_dist;
  let eps = p.eps * 2.0 * tan_half * inv;           // hit threshold per unit of ray length

  var sum = 0.0;
  var counts = array<u32, 11>();
  for (var k = 0u; k < ss * ss; k++) {
    let dir = sub_ray(gid.xy, k, ss, inv, tan_half, rt);
    // Enter and leave the bounding sphere and the model's box; rays that miss them never evaluate the SDF.
    let b = dot(origin, dir);
    let disc = b * b - b_o;
    let safe = select(dir, vec3f(1e-9), abs(dir) < vec3f(1e-9));
    let t_lo = (g[28].xyz - origin) / safe;
    let t_hi = (g[29].xyz - origin) / safe;
    let t_near = min(t_lo, t_hi);
    let t_far = max(t_lo, t_hi);
    let sq = sqrt(max(disc, 0.0));
    var t = max(max(-b - sq, 0.0), max(t_near.x, max(t_near.y, t_near.z)));
    let t_end = min(-b + sq, min(t_far.x, min(t_far.y, t_far.z)));
    var shade = bg;
    var m = BG;
    if (disc > 0.0 && t < t_end) {
      var hit = false;
      var last = Hit(1e9, BG);
      var t_last = t;
      for (var i = 0u; i < p.steps; i++) {
        let h = scene_sdf(origin + dir * t);
        last = h;
        t_last = t;
        if (h.d < eps * t) { hit = true; break; }
        t += h.d;
        if (t > t_end) { break; }
      }
      // Out of steps while grazing a surface: take the closest approach as the hit.
      if (!hit && t <= t_end && last.d < 20.0 * eps * t_last) { hit = true; }
      if (hit) {
        let q = origin + dir * t_last;
        m = last.m;
        let n = normal_at(q, last.d, max(eps * t_last, 0.002));
        let lambert = max(dot(n, light), 0.0);
        shade = clamp(albedo(q, m) * (g[4].y + g[4].z * lambert), 0.0, 1.0);
      }
    }
    sum += shade;
    counts[min(m, 8u)] += 1u;
  }
  var best = 0u;
  for (var k = 1u; k < 9u; k++) {
    if (counts[k] > counts[best]) { best = k; }
  }
  let out = img * size * size + gid.y * size + gid.x;
  image[out] = sum / f32(ss * ss);
  parts[out] = best;
}
