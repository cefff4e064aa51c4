/**
 * WGSL sources live in shaders/*.wgsl. A kernel is one entry point of one file, specialised by
 * WGSL override constants (workgroup and tile sizes) and, where WGSL cannot express a variation with
 * overrides (types, unrolled code), by one template step that replaces `{{NAME}}` tokens.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SHADER_DIR = fileURLToPath(new URL('../../shaders/', import.meta.url));
const sources = new Map<string, string>();

export function shaderSource(name: string): string {
  let src = sources.get(name);
  if (src === undefined) {
    src = readFileSync(`${SHADER_DIR}${name}.wgsl`, 'utf8');
    sources.set(name, src);
  }
  return src;
}

export interface Kernel {
  /** shaders/<shader>.wgsl */
  shader: string;
  entry: string;
  /** Threads per workgroup along x, y, z; passed to the shader as overrides WG_X, WG_Y, WG_Z where declared. */
  workgroup: [number, number?, number?];
  /** Other override constants. */
  constants?: Record<string, number>;
  /** Template replacements for `{{NAME}}` tokens. */
  defines?: Record<string, string | number>;
}

export function kernelKey(k: Kernel): string {
  return `${k.shader}:${k.entry}:${k.workgroup.join('x')}:${JSON.stringify(k.constants ?? {})}:${JSON.stringify(k.defines ?? {})}`;
}

/** Writes the text of template tokens that are unrolled code, from a kernel's other defines. */
export type Generator = (defines: Record<string, string | number>) => Record<string, string>;
const generators = new Map<string, Generator>();

/**
 * Registers the generator of a shader's unrolled-code tokens. It runs only when a pipeline is built, so the
 * pipeline cache's key stays the short defines it is computed from.
 */
export function registerGenerator(shader: string, generate: Generator): void {
  generators.set(shader, generate);
}

export function specialise(k: Kernel): { code: string; constants: Record<string, number> } {
  let code = shaderSource(k.shader);
  const defines = { ...k.defines, ...generators.get(k.shader)?.(k.defines ?? {}) };
  for (const [name, value] of Object.entries(defines)) code = code.replaceAll(`{{${name}}}`, String(value));
  const missing = code.match(/\{\{(\w+)\}\}/);
  if (missing) throw new Error(`shader ${k.shader}: template token {{${missing[1]}}} has no value`);
  const declared = new Set([...code.matchAll(/\boverride\s+(\w+)/g)].map((m) => m[1]));
  const all: Record<string, number> = {
    WG_X: k.workgroup[0],
    WG_Y: k.workgroup[1] ?? 1,
    WG_Z: k.workgroup[2] ?? 1,
    ...k.constants,
  };
  const constants: Record<string, number> = {};
  for (const [name, value] of Object.entries(all)) {
    if (declared.has(name)) constants[name] = value;
    else if (!name.startsWith('WG_')) throw new Error(`shader ${k.shader}: no override named ${name}`);
  }
  return { code, constants };
}
