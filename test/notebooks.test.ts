// The analysis notebooks executed headless (nbclient on the reference environment) on a tiny real
// search run, a tiny real compression run and a tiny real TypeScript-vs-PyTorch Hessian parity table; every figure must be a
// non-empty PNG. Also the CIFAR-10 protocol script's plan (no CIFAR-10 files are needed for it).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { execa } from 'execa';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin', 'bayesnas.js');
const PY = process.env.BAYESNAS_REF_PYTHON || path.join(ROOT, 'python-ref', '.venv', 'bin', 'python');
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bayesnas-notebooks-'));
const env = { TF_CPP_MIN_LOG_LEVEL: '2', MPLBACKEND: 'Agg' };

interface NotebookRun { notebooks: Array<{ name: string; ok: boolean; error: string | null }>; figures: string[]; expected: string[]; missing: string[]; figures_dir: string }
let ran: Promise<NotebookRun> | null = null;

// tiny search, compression and parity table side by side (they do not depend on each other), then the notebooks
function pipeline(): Promise<NotebookRun> {
  ran ??= (async () => {
    await Promise.all([
      execa(process.execPath, [BIN, 'search', '--space', 'bayesnas', '--dataset', 'fashion-mnist', '--C', '2', '--layers', '3', '--train-size', '64',
        '--switch-size', '64', '--val-size', '32', '--rounds', '1', '--batch', '16', '--hessian-batches', '1', '--hessian-batch', '16',
        '--run-dir', path.join(dir, 'search'), '--json'], { cwd: ROOT, env }),
      // two seeds of the same settings, so that the seed-mean figure is drawn too
      ...[0, 1].map((seed) => execa(process.execPath, [BIN, 'compress', '--model', 'lenet-300-100', '--lambda', '0.05', '--threshold', '0.05', '--rounds', '2', '--epochs', '1',
        '--hessian-batches', '1', '--hessian-batch', '100', '--final-epochs', '1', '--train-size', '500', '--test-size', '200', '--seed', String(seed),
        '--out', path.join(dir, 'compress', `lenet-300-100-s${seed}`), '--json'], { cwd: ROOT, env })),
      execa(process.execPath, [BIN, 'parity', '--space', 'bayesnas', '--C', '2', '--layers', '3', '--train-size', '64', '--switch-size', '64',
        '--val-size', '32', '--batch', '2', '--hessian', '--table', path.join(dir, 'parity', 'hessian-parity.arrow'), '--json'], { cwd: ROOT, env, reject: false })
        .then((r) => { if (!fs.existsSync(path.join(dir, 'parity', 'hessian-parity.arrow'))) throw new Error(`bayesnas parity wrote no table (exit ${r.exitCode}): ${r.stderr.slice(-500)}`); }),
    ]);
    const r = await execa(PY, ['-m', 'bayesnas_ref.notebooks', dir, '--json'], { cwd: ROOT, env, reject: false });
    return JSON.parse(r.stdout) as NotebookRun;
  })();
  return ran;
}

test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the notebooks run headless on a real search run, compression run and parity table, and write every figure as a non-empty PNG', async (t) => {
  t.timeout(240_000);
  const r = await pipeline();
  for (const n of r.notebooks) t.true(n.ok, `${n.name}: ${n.error}`);
  t.deepEqual(new Set(r.expected), new Set(['gamma.png', 'search-curves.png', 'cell-normal.png', 'cell-reduce.png', 'hessian-parity.png', 'compress-path.png', 'compress-seeds.png']));
  t.true(r.notebooks.some((n) => n.name === 'compress-path.ipynb'));
  t.deepEqual(r.missing, []);
  for (const name of r.expected) {
    const f = path.join(dir, 'figures', name);
    t.true(fs.existsSync(f), `${name} exists`);
    const b = fs.readFileSync(f);
    t.true(b.length > 1000, `${name}: ${b.length} bytes`);
    t.deepEqual(b.subarray(0, 8), PNG, `${name} is a PNG`);
  }
  // the executed notebooks are kept with their outputs
  for (const n of r.notebooks) t.true(fs.existsSync(path.join(dir, 'notebooks', n.name)), n.name);
});

test('bayesnas parity --table holds every switch with the TypeScript and python-ref recursions equal', async (t) => {
  t.timeout(240_000);
  await pipeline();
  const r = await execa(PY, ['-c', `import json, sys, numpy as np
from bayesnas_ref.notebooks import read_table
t, meta = read_table(sys.argv[1])
ts, py = np.array(t['typescript']), np.array(t['pytorch'])
print(json.dumps({'n': len(ts), 'kinds': sorted(set(t['kind'])), 'rel': float(np.max(np.abs(ts - py)) / np.max(np.abs(py))), 'meta': meta, 'exact_nan': bool(np.isnan(t['exact']).all())}))`,
  path.join(dir, 'parity', 'hessian-parity.arrow')], { cwd: ROOT });
  const v = JSON.parse(r.stdout) as { n: number; kinds: string[]; rel: number; meta: Record<string, string>; exact_nan: boolean };
  t.is(v.n, 3 * 8 * 8); // 3 cells x 8 edges x (origin + 7 ops)
  t.deepEqual(v.kinds, ['child', 'origin']);
  t.true(v.rel < 1e-4, `relative difference ${v.rel}`);
  t.is(v.meta.kind, 'switch-hessian-parity');
  t.true(v.exact_nan, 'no exact values without --exact');
});

test('protocol-cifar10 --plan prints the protocol with the published numbers of spec §9.1 and exits 0; --run without the files exits 2', async (t) => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'bayesnas-nocifar-'));
  const haveLocal = ['cifar-10-batches-bin', 'cifar-10-batches-py'].some((d) => fs.existsSync(path.join(ROOT, 'data', d)));
  const plan = await execa(process.execPath, [path.join(ROOT, 'scripts', 'protocol-cifar10.mjs'), '--plan', '--json'], { cwd: ROOT, env: { BAYESNAS_DATA_DIR: empty } });
  const p = JSON.parse(plan.stdout) as { steps: Array<{ step: string; command: string }>; expected: Array<{ lambda: string | null; error: string; params: string }>; cifar10: string | null };
  t.deepEqual(p.steps.map((s) => s.step), ['search', 'derive', 'retrain']);
  const retrain = p.steps[2].command;
  for (const f of ['--layers 20', '--channels 36', '--epochs 600', '--cutout 16', '--drop-path 0.2']) t.true(retrain.includes(f), f);
  t.true(p.steps[0].command.includes('--batch 18') && p.steps[0].command.includes('--dataset cifar10'));
  t.deepEqual(p.expected.filter((e) => e.lambda).map((e) => [e.lambda, e.error, e.params]),
    [['0.01', '3.02 ± 0.04', '2.59'], ['0.007', '2.90 ± 0.05', '3.10'], ['0.005', '2.81 ± 0.04', '3.40']]);
  const text = await execa(process.execPath, [path.join(ROOT, 'scripts', 'protocol-cifar10.mjs')], { cwd: ROOT, env: { BAYESNAS_DATA_DIR: empty } });
  t.true(text.stdout.includes('spec §9.1'));
  if (haveLocal) { t.truthy(p.cifar10); return; }
  t.is(p.cifar10, null);
  t.true(text.stdout.includes('cifar-10-binary.tar.gz'));
  const run = await execa(process.execPath, [path.join(ROOT, 'scripts', 'protocol-cifar10.mjs'), '--run'], { cwd: ROOT, env: { BAYESNAS_DATA_DIR: empty }, reject: false });
  t.is(run.exitCode, 2);
  t.regex(run.stderr, /CIFAR-10 is not installed/);
  fs.rmSync(empty, { recursive: true, force: true });
});
