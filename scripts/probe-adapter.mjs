// Prints one JSON line describing the default WebGPU adapter, or why there is none.
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create([]);
try {
  const adapter = await gpu.requestAdapter();
  if (!adapter) {
    console.log(JSON.stringify({ ok: false, error: 'requestAdapter returned null' }));
  } else {
    const i = adapter.info;
    console.log(JSON.stringify({ ok: true, vendor: i.vendor, architecture: i.architecture, description: i.description }));
  }
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e?.message ?? e) }));
}
globalThis.__keep = gpu;
process.exit(0);
