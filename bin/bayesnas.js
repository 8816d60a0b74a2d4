#!/usr/bin/env node
// Entry point of the `bayesnas` command: runs the TypeScript sources through tsx.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { register } from 'tsx/esm/api';

// GPU build: TensorFlow must find CUDA's libraries, which only LD_LIBRARY_PATH at start-up can tell it.
const ldFile = new URL('../vendor/gpu-ld-library-path', import.meta.url);
if (fs.existsSync(ldFile) && !process.env.BAYESNAS_LD_SET) {
  const extra = fs.readFileSync(ldFile, 'utf8').trim();
  const env = { ...process.env, BAYESNAS_LD_SET: '1', LD_LIBRARY_PATH: [extra, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env });
  process.exit(r.status ?? 1);
}

process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
