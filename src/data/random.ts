/**
 * Seeded random streams for the stimulus generator. Every draw comes from a stream named by its purpose
 * (`stream(seed, 'face', 7)`: the parameters of face identity 7), so adding identities, poses or splits
 * never changes what an existing stream yields: identity 7 is the same person in a 10- and a 100-identity set,
 * and the train and validation pose draws are independent streams.
 */

/** 32-bit hash of a seed and a path of names/numbers (murmur3's finaliser over FNV-style mixing). */
export function hashSeed(seed: number, ...path: (string | number)[]): number {
  let h = (seed >>> 0) ^ 0x9e3779b9;
  const mix = (x: number) => {
    h = Math.imul(h ^ x, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  };
  for (const part of path) {
    if (typeof part === 'number') {
      mix(part >>> 0);
      mix(Math.floor(part / 4294967296) >>> 0);
    } else {
      for (let i = 0; i < part.length; i++) mix(part.charCodeAt(i));
      mix(0xff);
    }
  }
  return h >>> 0;
}

export interface Rng {
  /** Uniform in [0, 1). */
  (): number;
  uniform(lo: number, hi: number): number;
  /** Standard normal, truncated to [-limit, limit] by redrawing. */
  normal(limit?: number): number;
  int(n: number): number;
}

/** sfc32 seeded from a hash of (seed, ...path). */
export function stream(seed: number, ...path: (string | number)[]): Rng {
  let a = hashSeed(seed, ...path, 'a');
  let b = hashSeed(seed, ...path, 'b');
  let c = hashSeed(seed, ...path, 'c');
  let d = 1;
  const next = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  const r = next as Rng;
  r.uniform = (lo, hi) => lo + (hi - lo) * next();
  r.normal = (limit = Infinity) => {
    for (;;) {
      const u = Math.max(next(), 1e-12);
      const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
      if (Math.abs(z) <= limit) return z;
    }
  };
  r.int = (n) => Math.floor(next() * n);
  return r;
}

/** In-place Fisher-Yates shuffle driven by `rng`. */
export function shuffle<T>(rng: Rng, a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
