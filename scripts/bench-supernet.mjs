#!/usr/bin/env node
// Runs `bayesnas bench supernet` (TensorFlow.js and PyTorch side by side) and keeps the JSON result in
// runs/bench/supernet-<date>.json. Arguments are passed on, e.g. `node scripts/bench-supernet.mjs --steps 20`.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'runs', 'bench', `supernet-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`);
const r = spawnSync(process.execPath, [path.join(root, 'bin', 'bayesnas.js'), 'bench', 'supernet', '--out', out, ...process.argv.slice(2)], { stdio: 'inherit' });
if (r.status === 0) console.log(`result: ${path.relative(process.cwd(), out)}`);
process.exit(r.status ?? 1);
