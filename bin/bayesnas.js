#!/usr/bin/env node
// Entry point of the `bayesnas` command: runs the TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
