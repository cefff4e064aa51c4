/**
 * The Dawn instance that browser-style libraries (tfjs's webgpu backend, gpu.js's webgpu mode) find as
 * `navigator.gpu`. It must be installed before those libraries are imported (tfjs registers its webgpu
 * backend at import time only if `navigator.gpu` exists), and held for the life of the process: Dawn
 * crashes when the object `create()` returned is collected while a device from it is alive.
 */
import { createRequire } from 'node:module';
import { create } from '../../src/engine/webgpu.js';

export interface DawnFlags {
  adapter?: string;
  backend?: string;
}

const held: { gpu: GPU | null } = { gpu: null };

export function installNavigatorGpu(flags: DawnFlags = {}): GPU {
  if (held.gpu) return held.gpu;
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const args: string[] = [];
  const backend = flags.backend ?? process.env.UNROLL_BACKEND;
  const adapter = flags.adapter ?? process.env.UNROLL_ADAPTER;
  if (backend) args.push(`backend=${backend}`);
  if (adapter) args.push(`adapter=${adapter}`);
  held.gpu = create(args);
  (globalThis as unknown as { navigator: { gpu: GPU } }).navigator = { gpu: held.gpu };
  return held.gpu;
}

const require = createRequire(import.meta.url);

/** The installed version of an npm package, or '?' where it cannot be read. */
export function pkgVersion(name: string): string {
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return '?';
  }
}

/** unroll's own version, from the project's package.json. */
export function projectVersion(): string {
  try {
    return (require('../../package.json') as { version: string }).version;
  } catch {
    return '?';
  }
}
