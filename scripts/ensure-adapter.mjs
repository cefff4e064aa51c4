#!/usr/bin/env node
// Postinstall: make sure Dawn finds a WebGPU adapter. Where none answers on a Debian machine with root,
// install Mesa's software Vulkan driver (lavapipe) from backports: Debian bookworm's own Mesa 22.3 lacks
// Vulkan features Dawn requires, Mesa 25 from bookworm-backports has them. Never fails `npm install`.
// Turn off with UNROLL_SKIP_ADAPTER_INSTALL=1.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const say = (msg) => console.log(`[unroll] ${msg}`);

/** Ask Dawn for an adapter in a child process (a missing driver can crash the process that asks). */
export function probeAdapter() {
  const r = spawnSync(process.execPath, [join(here, 'probe-adapter.mjs')], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    return { ok: false, error: (r.stderr || r.stdout || `exit ${r.status}`).trim().slice(-500) };
  }
}

function debianCodename() {
  if (!existsSync('/etc/debian_version') || !existsSync('/etc/os-release')) return null;
  const m = readFileSync('/etc/os-release', 'utf8').match(/^VERSION_CODENAME=(\w+)/m);
  return m ? m[1] : null;
}

/** The mirror the machine already uses for Debian, so backports come from the same place. */
function debianMirror() {
  const dir = '/etc/apt/sources.list.d';
  const files = existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : [];
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    const m = text.match(/^URIs:\s*(\S+\/debian)\s*$/m) ?? text.match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\s/m);
    if (m) return m[1];
  }
  return 'http://deb.debian.org/debian';
}

function installLavapipe(codename) {
  const suite = `${codename}-backports`;
  const source = `/etc/apt/sources.list.d/unroll-${suite}.sources`;
  say(`no WebGPU adapter answered; installing Mesa's software Vulkan driver (lavapipe) from ${suite}`);
  say(`  why: Dawn needs Vulkan features that ${codename}'s own Mesa lacks; the backported Mesa has them`);
  say(`  what: ${source}, then apt-get install -t ${suite} mesa-vulkan-drivers libvulkan1`);
  say('  (set UNROLL_SKIP_ADAPTER_INSTALL=1 to skip this step)');
  if (!existsSync(source)) {
    writeFileSync(
      source,
      `Types: deb\nURIs: ${debianMirror()}\nSuites: ${suite}\nComponents: main\n` +
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n',
    );
  }
  const opts = { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
  try {
    execFileSync('apt-get', ['update', '-qq'], opts);
  } catch {
    // Another source of the machine may be unreachable; the backports index may still have arrived.
    say('apt-get update reported errors; trying the install anyway');
  }
  execFileSync('apt-get', ['install', '-y', '-qq', '-t', suite, 'mesa-vulkan-drivers', 'libvulkan1'], opts);
}

function main() {
  if (process.env.UNROLL_SKIP_ADAPTER_INSTALL === '1') return say('adapter check skipped (UNROLL_SKIP_ADAPTER_INSTALL=1)');
  let probe = probeAdapter();
  if (probe.ok) return say(`WebGPU adapter: ${probe.description} (${probe.vendor}, ${probe.architecture})`);
  const codename = debianCodename();
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const command =
    `echo 'Types: deb\\nURIs: http://deb.debian.org/debian\\nSuites: ${codename ?? 'bookworm'}-backports\\nComponents: main\\n` +
    `Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' | sudo tee /etc/apt/sources.list.d/backports.sources && ` +
    `sudo apt-get update && sudo apt-get install -y -t ${codename ?? 'bookworm'}-backports mesa-vulkan-drivers libvulkan1`;
  if (!codename || !root) {
    say(`no WebGPU adapter answered (${probe.error ?? 'none'}).`);
    say(codename ? `install Mesa's software Vulkan driver with:\n  ${command}` : 'install a Vulkan driver for your GPU (or Mesa >= 24 lavapipe).');
    return;
  }
  try {
    installLavapipe(codename);
  } catch (e) {
    say(`installing lavapipe failed: ${e.message}`);
    say(`try by hand:\n  ${command}`);
    return;
  }
  probe = probeAdapter();
  if (probe.ok) say(`WebGPU adapter: ${probe.description} (${probe.vendor}, ${probe.architecture})`);
  else say(`still no WebGPU adapter after installing lavapipe: ${probe.error}`);
}

try {
  main();
} catch (e) {
  say(`adapter check failed: ${e?.message ?? e}`);
}
