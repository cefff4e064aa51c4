/**
 * The bench on its own, without the rest of the CLI: `npx tsx bench/cli.ts [flags]` takes the same flags
 * as `unroll bench` (`npm run bench -- --help`).
 */
import { Command } from 'commander';
import { register } from '../src/cli/bench.js';

const program = new Command().name('bench').showHelpAfterError();
register(program);
program.parseAsync(['node', 'bench', 'bench', ...process.argv.slice(2)]).catch((e: Error) => {
  console.error(`bench: ${e.message}`);
  process.exit(1);
});
