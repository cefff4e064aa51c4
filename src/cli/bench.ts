/** `unroll bench`: unroll against the JavaScript alternatives on the same adapter (bench/main.ts). */
import { writeFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { PRESETS, type NetConfig } from '../../bench/config.js';
import { DEFAULTS, PEER_NAMES, SUITES, printProfile, printTable, printWork, runBench } from '../../bench/main.js';
import type { PeerName } from '../../bench/peers/types.js';
import type { SuiteName } from '../../bench/report.js';
import { addDeviceOptions, type DeviceFlags, deviceOptions, floatArg, intArg } from './common.js';

interface BenchFlags extends DeviceFlags {
  suite?: SuiteName[];
  preset: string;
  runs: number;
  warmup: number;
  json?: string;
  profile?: boolean;
  peers?: string[];
  batch?: number;
  steps?: number;
  budget: number;
  callTarget: number;
  checkBatch: number;
  giveUp: number;
  timeLimit: number;
  roofline: boolean;
}

const list = <T extends string>(what: string, allowed: readonly T[]) => (v: string, prev: T[] = []): T[] => {
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!allowed.includes(i as T)) throw new InvalidArgumentError(`unknown ${what} "${i}" (one of ${allowed.join(', ')})`);
  return [...prev, ...(items as T[])];
};

export function register(program: Command): void {
  addDeviceOptions(
    program
      .command('bench')
      .description('time unroll against tfjs (webgpu, wasm, cpu) and gpu.js on the same work, after checking they agree')
      .addOption(new Option('--suite <names>', `suites to run, comma-separated (${SUITES.join(', ')}); default all`).argParser(list('suite', SUITES)))
      .addOption(new Option('--preset <name>', 'network shapes').choices(Object.keys(PRESETS)).default('small'))
      .addOption(new Option('--peers <list>', `peers, comma-separated (${PEER_NAMES.join(', ')}); default all`).argParser(list('peer', PEER_NAMES)))
      .option('--runs <n>', 'timed runs per measurement (at most; see --budget)', intArg('--runs', 1, 1000), DEFAULTS.runs)
      .option('--warmup <n>', 'warm-up runs per measurement (excluded from timing)', intArg('--warmup', 1, 100), DEFAULTS.warmup)
      .option('--budget <seconds>', 'timed runs stop once they would pass this per measurement (at least 3 run)', floatArg('--budget', 0, 3600), DEFAULTS.budgetMs / 1e3)
      .option('--call-target <ms>', 'a peer slower than this per call at the full batch is timed at a smaller batch', floatArg('--call-target', 1, 1e7), DEFAULTS.callTargetMs)
      .option('--check-batch <n>', 'batch of the agreement check', intArg('--check-batch', 1, 1024), DEFAULTS.checkBatch)
      .option('--give-up <seconds>', 'a case whose first call takes longer is reported from that call, not timed', floatArg('--give-up', 0, 1e5), DEFAULTS.giveUpMs / 1e3)
      .option('--batch <n>', "override the preset's batch", intArg('--batch', 1, 4096))
      .option('--steps <n>', "override the preset's time steps T", intArg('--steps', 1, 256))
      .option('--time-limit <minutes>', 'wall-clock limit of the run: each peer gets its share of the time left; cases past it are skipped', floatArg('--time-limit', 0, 1e4), DEFAULTS.timeLimitMs / 60e3)
      .option('--no-roofline', "skip measuring the adapter's roofline")
      .option('--json <file>', 'also write the report as JSON')
      .option('--profile', 'print per-kernel GPU time of unroll\'s cases (timestamp queries)'),
  ).action(async (opts: BenchFlags) => {
    const base = PRESETS[opts.preset];
    const cfg: NetConfig = { ...base, batch: opts.batch ?? base.batch, steps: opts.steps ?? base.steps };
    const report = await runBench({
      cfg,
      preset: opts.preset,
      suites: opts.suite?.length ? [...new Set(opts.suite)] : [...SUITES],
      peers: opts.peers?.length ? [...new Set(opts.peers as PeerName[])] : [...PEER_NAMES],
      roofline: opts.roofline,
      runs: opts.runs,
      warmup: opts.warmup,
      budgetMs: opts.budget * 1e3,
      callTargetMs: opts.callTarget,
      checkBatch: opts.checkBatch,
      giveUpMs: opts.giveUp * 1e3,
      timeLimitMs: opts.timeLimit * 60e3,
      profile: Boolean(opts.profile),
      device: { ...deviceOptions(opts), adapter: opts.adapter, backend: opts.backend },
    });
    const c = report.config as unknown as NetConfig;
    console.log(`unroll bench, preset ${opts.preset}: ${c.size}x${c.size}x${c.channels ?? 1} input, widths ${c.widths.join('-')}, ` +
      `pool before layers ${c.poolBefore.map((p) => p + 1).join(', ')}, ${c.classes} classes, batch ${c.batch}, T ${c.steps}`);
    const steal = report.machine.stealFraction === undefined ? '' : ` (CPU steal time during the run: ${(100 * report.machine.stealFraction).toFixed(1)}%)`;
    console.log(`machine: ${report.machine.cpu}, ${report.machine.cores} cores${steal}; adapter: ${String(report.adapter?.description ?? 'none')}`);
    if (report.roofline) console.log(`roofline: FMA peak ${report.roofline.fmaGflops.toFixed(1)} GFLOP/s, copy ${report.roofline.copyGBps.toFixed(1)} GB/s`);
    if (report.speedByRound.length > 1) {
      console.log(`FMA peak at each round (the machine's speed over the run): ${report.speedByRound.map((r) => `${r.suite} ${r.fmaGflops.toFixed(0)}`).join(', ')} GFLOP/s`);
    }
    if (report.speedByTurn.length > report.speedByRound.length) {
      const suites = [...new Set(report.speedByTurn.map((t) => t.suite))];
      console.log(`FMA peak at each peer's turn, GFLOP/s: ${suites.map((s) => `${s} ${report.speedByTurn.filter((t) => t.suite === s)
        .map((t) => `${t.peer} ${t.fmaGflops.toFixed(0)}`).join(' / ')}`).join('; ')}`);
    }
    for (const [p, d] of Object.entries(report.peers)) console.log(`  ${p.padEnd(12)} ${d}`);
    console.log('');
    printTable(report);
    console.log('');
    printWork(report);
    for (const p of report.profiles) {
      console.log('');
      printProfile(p);
    }
    for (const n of report.notes) console.log(`note: ${n}`);
    console.log(`\n(${report.elapsedSeconds} s)`);
    if (opts.json) {
      writeFileSync(opts.json, JSON.stringify(report, null, 1));
      console.log(`wrote ${opts.json}`);
    }
  });
}
