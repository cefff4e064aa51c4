/** Options shared by every command that opens a device, and the way commands open and close it. */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { Device, type DeviceOptions } from '../engine/device.js';

export interface DeviceFlags {
  adapter?: string;
  backend?: string;
  robustness?: boolean;
}

export function addDeviceOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--adapter <name>', 'WebGPU adapter to use (substring of its name; env UNROLL_ADAPTER)'))
    .addOption(new Option('--backend <name>', 'Dawn backend (env UNROLL_BACKEND)').choices(['vulkan', 'metal', 'd3d12', 'opengl', 'opengles', 'null']))
    .option('--no-robustness', "drop Dawn's bounds clamping (kernels check their own bounds); env UNROLL_ROBUSTNESS=off");
}

export function deviceOptions(f: DeviceFlags): DeviceOptions {
  return { adapter: f.adapter, backend: f.backend, disableRobustness: f.robustness === false ? true : undefined };
}

/** Opens a device, runs `fn`, destroys the device (so the process can exit) whatever happens. */
export async function withDevice<T>(f: DeviceFlags, fn: (d: Device) => Promise<T>): Promise<T> {
  const device = await Device.create(deviceOptions(f));
  try {
    return await fn(device);
  } finally {
    device.destroy();
  }
}

export function intArg(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '...' : max}], got "${v}"`);
    }
    return n;
  };
}

export function floatArg(name: string, min: number, max = Infinity, exclusiveMin = false) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || (exclusiveMin && n === min) || n > max) {
      throw new InvalidArgumentError(`${name} must be a number ${exclusiveMin ? '>' : '>='} ${min}${max < Infinity ? ` and <= ${max}` : ''}, got "${v}"`);
    }
    return n;
  };
}
