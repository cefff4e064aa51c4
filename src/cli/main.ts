#!/usr/bin/env -S npx tsx
/** The unroll command line: info, train, stimuli, analyze, bench. */
import { Command } from 'commander';
import { register as info } from './info.js';
import { register as train } from './train.js';
import { register as stimuli } from './stimuli.js';
import { register as bench } from './bench.js';
import { register as analyze } from './analyze.js';

const program = new Command()
  .name('unroll')
  .description('Train and probe recurrent convolutional networks on WebGPU')
  .showHelpAfterError()
  .version('0.1.0');

info(program);
train(program);
stimuli(program);
analyze(program);
bench(program);

program.parseAsync(process.argv).catch((e: Error) => {
  console.error(`unroll: ${e.message}`);
  process.exit(1);
});
