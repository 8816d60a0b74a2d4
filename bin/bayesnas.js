#!/usr/bin/env node
// Entry point of the `bayesnas` command: runs the TypeScript sources through tsx.
import { spawnSync } from 'node:child_process';
import { register } from 'tsx/esm/api';

register();
// Library paths that only the dynamic loader's start-up reads (GPU build of TensorFlow, software
// Vulkan for a forced webgpu backend): set them, then run again.
const { launchEnv } = await import('../src/engine/launch.ts');
const extra = launchEnv();
if (extra) {
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, ...extra } });
  process.exit(r.status ?? 1);
}

process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
