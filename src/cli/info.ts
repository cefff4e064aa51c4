/** `unroll info`: the adapter Dawn picked, its features and the limits that matter. */
import type { Command } from 'commander';
import { KEY_LIMITS } from '../engine/device.js';
import { addDeviceOptions, type DeviceFlags, withDevice } from './common.js';

export function register(program: Command): void {
  addDeviceOptions(
    program
      .command('info')
      .description('print the WebGPU adapter (vendor, architecture, description, backend, features, limits)')
      .option('--json', 'print the same as JSON'),
  ).action(async (opts: DeviceFlags & { json?: boolean }) => {
    await withDevice(opts, async (d) => {
      const i = d.info;
      const limits = Object.fromEntries(KEY_LIMITS.map((k) => [k, d.limits[k]]));
      const enabled = ['timestamp-query', 'shader-f16', 'subgroups'].filter((f) => d.hasFeature(f));
      if (opts.json) {
        console.log(JSON.stringify({ ...i, enabledFeatures: enabled, limits }, null, 2));
        return;
      }
      console.log(`adapter       ${i.description}`);
      console.log(`vendor        ${i.vendor}`);
      console.log(`architecture  ${i.architecture}`);
      console.log(`device        ${i.device}`);
      console.log(`backend       ${i.backend}`);
      console.log(`fallback      ${i.isFallbackAdapter}`);
      console.log(`enabled       ${enabled.join(', ') || '(none)'}`);
      console.log(`features      ${i.features.join(' ')}`);
      console.log('limits');
      for (const [k, v] of Object.entries(limits)) console.log(`  ${k.padEnd(36)} ${v}`);
    });
  });
}
