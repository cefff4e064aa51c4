/** `unroll train`: placeholder until the BL network lands. */
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('train')
    .description('train the BL recurrent network (not built yet)')
    .allowUnknownOption()
    .action(() => {
      console.error('unroll train: training is not built yet (the BL network and its training loop are in progress).');
      process.exit(2);
    });
}
