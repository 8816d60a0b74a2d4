import test from 'ava';
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// `bayesnas bench suite` is what a GPU machine runs (scripts/gpu/run.sh): here it runs with tiny
// shapes against PyTorch CPU, and its bundle (scripts/gpu/pack.mjs) must run without node_modules.
test('bench suite --quick: engine, supernet (with a kernel profile) and Hessian side by side with PyTorch, summary.md and summary.json', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bnas-suite-'));
  const r = await execa('node', ['bin/bayesnas.js', 'bench', 'suite', '--quick', '--steps', '1', '--out', dir], { reject: false, timeout: 600_000 });
  t.is(r.exitCode, 0, r.stderr.slice(-2000));
  const s = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
  t.is(s.rows.length, 3);
  for (const row of s.rows) {
    t.true(row.tfjsMs > 0 && row.torchMs > 0, `${row.workload}: ${row.note}`);
    t.true(Math.abs(row.ratio - row.tfjsMs / row.torchMs) < 1e-9);
  }
  t.regex(s.pytorch, /on cpu$/);
  const prof = s.results['supernet-8'].profile;
  t.true(prof.kernels.length > 10 && prof.kernels.some((k: { kernel: string }) => k.kernel === 'Conv2D'), 'per-kernel profile of a supernet step');
  t.is(prof.kernels.reduce((n: number, k: { calls: number }) => n + k.calls, 0) > 1000, true);
  const md = fs.readFileSync(path.join(dir, 'summary.md'), 'utf8');
  t.regex(md, /\| switch-Hessian pass \(recursion\)/);
  t.regex(md, /## One tfjs supernet step, kernel by kernel/);
  fs.rmSync(dir, { recursive: true });
});

test('bench suite --torch-device: a bad device is a usage error', async (t) => {
  const r = await execa('node', ['bin/bayesnas.js', 'bench', 'suite', '--torch-device', 'tpu'], { reject: false });
  t.not(r.exitCode, 0);
  t.regex(r.stderr, /--torch-device must be cpu or cuda/);
});

test('the GPU bundle runs from a folder without node_modules', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bnas-pack-'));
  const out = path.join(root, 'gpu-pack');
  const p = await execa('node', ['scripts/gpu/pack.mjs', '--bundles-only', '--out', out], { reject: false });
  t.is(p.exitCode, 0, p.stderr);
  const r = await execa(process.execPath, [path.join(out, 'dist', 'bayesnas.mjs'), 'doctor', '--json'], { cwd: root, reject: false, env: { BAYESNAS_BACKEND: '' } });
  const d = JSON.parse(r.stdout);
  t.is(d.backend, 'cpu', 'no native addon beside the bundle: the pure-JS backend');
  t.regex(d.tfjs, /^4\.22/);
  const help = await execa(process.execPath, [path.join(out, 'dist', 'bayesnas.mjs'), 'bench', 'suite', '--help'], { cwd: root });
  t.regex(help.stdout, /bayesnas bench suite/);
  fs.rmSync(root, { recursive: true });
});
