/**
 * Parametric objects: 8 non-face categories, each with exemplar-level parameters so that "object identity"
 * exists (exemplar `i` of category `c` under seed `s` is always the same object: stream(s, 'object', c, i)).
 *
 * Object coordinates match the face's: y up, z toward the camera at yaw 0, sizes within a sphere of radius
 * ~1.5. Yaw 0 is the category's canonical view: the side for the elongated car, shoe and plane (their
 * length along x, front toward +x), the front for chair, mug (handle on +x), lamp, bottle and house
 * (gable end toward the camera). Layouts of the packed blocks are documented in shaders/render_sdf.wgsl.
 */
import { CATEGORY_FLOATS } from './faces.js';
import { type Rng, stream } from './random.js';

export const OBJECT_CATEGORIES = ['car', 'chair', 'mug', 'lamp', 'bottle', 'house', 'shoe', 'plane'] as const;
export type ObjectCategory = (typeof OBJECT_CATEGORIES)[number];

/** Shader category codes: 0 is the face. */
export const CATEGORY_CODE: Record<'face' | ObjectCategory, number> = {
  face: 0, car: 1, chair: 2, mug: 3, lamp: 4, bottle: 5, house: 6, shoe: 7, plane: 8,
};

export interface ObjectExemplar {
  category: ObjectCategory;
  /** Named shape parameters (category-specific; the packers below read them). */
  params: Record<string, number>;
  /** Albedo of the main, dark and secondary materials. */
  albedo: [number, number, number];
}

type Sampler = (r: Rng) => { params: Record<string, number>; albedo: [number, number, number] };

const u = (r: Rng, lo: number, hi: number) => r.uniform(lo, hi);

const SAMPLERS: Record<ObjectCategory, Sampler> = {
  car: (r) => {
    const L = u(r, 0.85, 1.02), H = u(r, 0.15, 0.23), W = u(r, 0.36, 0.46);
    const cabinLen = L * u(r, 0.42, 0.7), cabinH = u(r, 0.12, 0.2);
    return {
      params: {
        L, H, W, rounding: u(r, 0.06, 0.12), cabinLen, cabinH, cabinX: L * u(r, -0.22, 0.1),
        slope: u(r, 0.45, 1.0), wheelR: u(r, 0.14, 0.2), wheelX: L * u(r, 0.6, 0.72),
      },
      albedo: [u(r, 0.3, 0.9), 0.08, 0.14],
    };
  },
  chair: (r) => ({
    params: {
      seatY: u(r, -0.22, 0.0), seatT: u(r, 0.035, 0.06), seatX: u(r, 0.36, 0.5), seatZ: u(r, 0.34, 0.46),
      leg: u(r, 0.022, 0.05), backH: u(r, 0.28, 0.45), backT: u(r, 0.025, 0.045), tilt: u(r, 0, 0.22),
      frame: r() < 0.4 ? u(r, 0.05, 0.1) : 0, arms: r() < 0.3 ? u(r, 0.18, 0.26) : 0,
    },
    albedo: ((a: number) => [a, r() < 0.5 ? a * 0.6 : u(r, 0.1, 0.3), a] as [number, number, number])(u(r, 0.35, 0.85)),
  }),
  mug: (r) => {
    const H = u(r, 0.48, 0.72);
    return {
      params: {
        R: u(r, 0.42, 0.62), H, wall: u(r, 0.04, 0.07), handleY: u(r, -0.1, 0.1),
        handleR: Math.min(u(r, 0.2, 0.32), 0.7 * H), handleT: u(r, 0.045, 0.07),
        band: r() < 0.5 ? u(r, 0.05, 0.14) : 0, bandY: u(r, -0.2, 0.2),
      },
      albedo: [u(r, 0.45, 0.92), 0.2, u(r, 0.12, 0.45)],
    };
  },
  lamp: (r) => {
    const bottom = u(r, 0.3, 0.55);
    return {
      params: {
        baseR: u(r, 0.22, 0.4), baseH: u(r, 0.025, 0.06), stemR: u(r, 0.022, 0.04), shadeY: u(r, 0.2, 0.5),
        shadeH: u(r, 0.18, 0.32), shadeBottom: bottom, shadeTop: bottom * u(r, 0.35, 0.95),
      },
      albedo: [0.5, u(r, 0.12, 0.5), u(r, 0.65, 0.95)],
    };
  },
  bottle: (r) => {
    const shoulder = u(r, -0.15, 0.25);
    return {
      params: {
        R: u(r, 0.18, 0.34), shoulder, neckR: u(r, 0.065, 0.11), neckBase: shoulder + u(r, 0.12, 0.32),
        neckTop: u(r, 0.6, 0.78), capH: u(r, 0.06, 0.12), labelLo: u(r, -0.7, -0.45), labelHi: shoulder - u(r, 0.05, 0.15),
      },
      albedo: [u(r, 0.2, 0.65), u(r, 0.08, 0.3), u(r, 0.75, 0.95)],
    };
  },
  house: (r) => ({
    params: {
      hx: u(r, 0.48, 0.68), hy: u(r, 0.28, 0.42), hz: u(r, 0.42, 0.65), rise: u(r, 0.28, 0.5), overhang: u(r, 0.05, 0.1),
      chimX: u(r, -0.7, 0.7), chimW: u(r, 0.05, 0.085), chimZ: u(r, -0.15, 0.15), doorW: u(r, 0.07, 0.11),
      doorH: u(r, 0.28, 0.42), doorX: u(r, -0.12, 0.12), winS: u(r, 0.06, 0.09), winX: u(r, 0.3, 0.4),
    },
    albedo: [u(r, 0.55, 0.9), u(r, 0.08, 0.2), u(r, 0.18, 0.45)],
  }),
  shoe: (r) => ({
    params: {
      len: u(r, 0.8, 0.95), toeH: u(r, 0.15, 0.22), width: u(r, 0.24, 0.3), ankle: r() < 0.35 ? u(r, 0.15, 0.35) : u(r, 0, 0.06),
      heel: r() < 0.25 ? u(r, 0.1, 0.22) : 0, soleT: u(r, 0.03, 0.06), slope: r(),
    },
    albedo: [u(r, 0.2, 0.85), r() < 0.5 ? u(r, 0.08, 0.25) : u(r, 0.75, 0.92), 0.5],
  }),
  plane: (r) => ({
    params: {
      fusR: u(r, 0.1, 0.15), tailR: u(r, 0.035, 0.06), wingX: u(r, -0.08, 0.12), chord: u(r, 0.14, 0.22),
      span: u(r, 0.72, 0.98), sweep: u(r, 0, 0.55), wingT: u(r, 0.014, 0.024), wingY: r() < 0.7 ? -0.04 : 0.06,
      finH: u(r, 0.3, 0.45), finC: u(r, 0.12, 0.2), stabSpan: u(r, 0.26, 0.38), stabC: u(r, 0.07, 0.1),
      engineR: r() < 0.6 ? u(r, 0.04, 0.06) : 0, engineZ: u(r, 0.28, 0.45),
    },
    albedo: ((a: number) => [a, 0.12, r() < 0.5 ? a : u(r, 0.2, 0.5)] as [number, number, number])(u(r, 0.55, 0.92)),
  }),
};

/** Exemplar `index` of `category` under `seed`. */
export function sampleObject(seed: number, category: ObjectCategory, index: number): ObjectExemplar {
  const sampler = SAMPLERS[category];
  if (!sampler) throw new Error(`unknown object category "${category}"; known: ${OBJECT_CATEGORIES.join(', ')}`);
  const { params, albedo } = sampler(stream(seed, 'object', category, index));
  return { category, params, albedo };
}

/** The shader's g[5..31] block for an object. */
export function packObject(o: ObjectExemplar): Float32Array {
  const b = new Float32Array(CATEGORY_FLOATS);
  const put = (slot: number, ...v: number[]) => b.set(v, (slot - 5) * 4);
  // The object's bounding box (g[28], g[29]): the parts' extents plus a margin for smooth unions and roundings.
  const box = (lo: number[], hi: number[]) => {
    put(28, ...lo.map((v) => v - 0.07), 0);
    put(29, ...hi.map((v) => v + 0.07), 0);
  };
  const q = o.params;
  switch (o.category) {
    case 'car': {
      const bodyY = -0.1;
      const cabinY = bodyY + q.H + q.cabinH - 0.05;
      const a = Math.atan2(1, q.slope);
      const wheelY = bodyY - q.H + 0.02;
      put(5, q.L, q.H, q.W, q.rounding);
      put(6, 0, bodyY, 0, 1.12);
      put(7, q.cabinX, cabinY, 0, 0.06);
      put(8, q.cabinLen, q.cabinH, q.W * 0.86, 0);
      put(9, q.wheelX, wheelY, q.W - 0.07, q.wheelR);
      put(10, 0.075, Math.cos(a), Math.sin(a), cabinY - 0.3 * q.cabinH);
      const x = Math.max(q.L, q.wheelX + q.wheelR, Math.abs(q.cabinX) + q.cabinLen);
      box([-x, Math.min(bodyY - q.H, wheelY - q.wheelR), -q.W], [x, cabinY + q.cabinH, q.W]);
      break;
    }
    case 'chair': {
      const floor = -0.92;
      const legH = 0.5 * (q.seatY - q.seatT - floor);
      const backZ = -(q.seatZ - q.backT) - q.backH * Math.sin(q.tilt);
      const backY = q.seatY + q.seatT + q.backH * Math.cos(q.tilt);
      put(5, 0, q.seatY, 0, q.seatT);
      put(6, q.seatX, 0, q.seatZ, 0.015);
      put(7, q.seatX - q.leg - 0.01, floor + legH, q.seatZ - q.leg - 0.01, q.leg);
      put(8, legH, q.backH, q.backT, -q.tilt);
      put(9, 0, backY, backZ, q.frame);
      put(10, q.arms, 0.03, 0, 0);
      box([-q.seatX, floor, backZ - q.backH - q.backT], [q.seatX, backY + q.backH + q.backT, q.seatZ]);
      break;
    }
    case 'mug':
      put(5, q.R, q.H, q.wall, 0.03);
      put(6, q.R + 0.02, q.handleY, 0, q.handleR);
      put(7, q.handleT, q.band, q.bandY, 0);
      box([-q.R, -q.H, -q.R], [q.R + 0.02 + q.handleR + q.handleT, q.H, q.R]);
      break;
    case 'lamp': {
      const baseY = -0.92 + q.baseH;
      put(5, baseY, q.baseR, q.baseH, q.stemR);
      put(6, q.shadeY, q.shadeY, q.shadeH, 0);
      put(7, q.shadeBottom, q.shadeTop, 0, 0);
      const rr = Math.max(q.baseR, q.shadeBottom, q.shadeTop);
      box([-rr, -0.92, -rr], [rr, q.shadeY + q.shadeH, rr]);
      break;
    }
    case 'bottle':
      put(5, q.R, -0.92, q.shoulder, 0.04);
      put(6, q.neckR, q.neckBase, q.neckTop, q.capH);
      put(7, q.neckR + 0.012, q.labelLo, q.labelHi, 0);
      box([-q.R, -0.92, -q.R], [q.R, q.neckTop + q.capH, q.R]);
      break;
    case 'house': {
      const bottom = -0.5 * (2 * q.hy + q.rise) - 0.05;
      const wallY = bottom + q.hy;
      const top = bottom + 2 * q.hy;
      put(5, q.hx, q.hy, q.hz, wallY);
      put(6, q.rise, q.overhang, 0.08, q.chimX * (q.hx - 0.1));
      put(7, q.chimW, top + q.rise * 0.9, q.chimZ, q.doorW);
      put(8, q.doorH, q.doorX, q.winS, wallY + 0.08);
      put(9, Math.min(q.winX, q.hx - q.winS - 0.04), 0, 0, 0);
      const ex = q.hx + q.overhang, ez = q.hz + q.overhang;
      box([-ex, bottom, -ez], [ex, top + q.rise, ez]);
      break;
    }
    case 'shoe': {
      const soleY = -0.22 - 0.5 * q.heel;
      const ankleRy = 0.3 + q.ankle;
      const ankleY = soleY + 0.1 + 0.5 * q.ankle;
      put(5, 0, soleY, 0, 0.025);
      put(6, q.len, q.soleT, q.width, 0);
      put(7, 0.25 * q.len, soleY + 0.04, 0, 0);
      put(8, 0.62 * q.len, q.toeH, q.width - 0.01, 0);
      put(9, -0.5 * q.len, ankleY, 0, 0);
      put(10, 0.4 * q.len, ankleRy, q.width - 0.02, 0);
      // Collar: a plane through the top of the opening, sloping down toward the toe.
      const openY = ankleY + ankleRy * 0.75;
      const n = [0.25 + 0.35 * q.slope, 1];
      const nl = Math.hypot(n[0], n[1]);
      put(11, -0.5 * q.len, openY, 0, 0);
      put(12, 0.26 * q.len, 0.09, q.width * 0.68, q.heel);
      put(14, n[0] / nl, n[1] / nl, 0, (n[0] * -0.5 * q.len + n[1] * openY) / nl);
      put(13, -0.78 * q.len, soleY - q.soleT - 0.5 * q.heel, 0, 0.1);
      box([-0.92 * q.len, soleY - q.soleT - q.heel, -q.width], [0.89 * q.len, ankleY + ankleRy, q.width]);
      break;
    }
    case 'plane':
      put(5, -0.95, 0.95, q.fusR, q.tailR);
      put(6, q.wingX, q.chord, q.span, q.sweep);
      put(7, q.wingT, q.wingY, q.finH, q.finC);
      put(8, q.stabSpan, q.stabC, q.engineR, q.engineZ);
      box([-0.95 - q.tailR, q.wingY - q.wingT - 2 * q.engineR, -q.span], [0.95, q.fusR + q.finH, q.span]);
      break;
  }
  put(31, ...o.albedo, 0);
  return b;
}
