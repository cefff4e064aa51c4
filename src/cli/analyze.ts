/** `unroll analyze`: the analysis suite (RDMs, decoding, invariance, unit tuning, RISE) is not built yet. */
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('analyze')
    .description('probe a trained network across layers and time steps (not built yet)')
    .allowUnknownOption()
    .action(() => {
      console.error(
        'unroll analyze: not built yet. A trained run folder (checkpoint.safetensors) loads in PyTorch ' +
          'for analysis elsewhere; see the README, "Output formats".',
      );
      process.exit(2);
    });
}
