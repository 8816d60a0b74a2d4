import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { readTensorFile } from '../src/bridge/arrow.js';

// A real `bayesnas search` process killed with SIGKILL after its first round resumes with --resume
// and ends in the same state as an uninterrupted run with the same seed.
const ARGS = ['--space', 'bayesnas', '--C', '4', '--layers', '3', '--dataset', 'fashion-mnist', '--train-size', '32', '--switch-size', '48',
  '--val-size', '32', '--batch', '16', '--rounds', '2', '--hessian-batches', '1', '--hessian-batch', '16', '--seed', '3', '--json'];
const cli = (args: string[]) => execa('node', ['bin/bayesnas.js', 'search', ...args], { reject: false, env: { BAYESNAS_PROGRESS: '' } });

test('search killed after round 1 resumes to the same final state', async (t) => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'bnas-kill-'));
  const a = path.join(base, 'a'), b = path.join(base, 'b');
  const full = await cli([...ARGS, '--out', a]);
  t.is(full.exitCode, 0, String(full.stderr).slice(-2000));

  const proc = cli([...ARGS, '--out', b]);
  const state = path.join(b, 'checkpoint', 'state.json');
  const t0 = Date.now();
  while (Date.now() - t0 < 240_000) {
    await new Promise((r) => setTimeout(r, 200));
    if (fs.existsSync(state) && /"round": 1/.test(fs.readFileSync(state, 'utf8'))) break;
  }
  proc.kill('SIGKILL');
  const killed = await proc;
  t.is(killed.signal, 'SIGKILL', 'the process was killed, not finished');
  t.false(fs.existsSync(path.join(b, 'genotype.json')));

  const resumed = await cli(['--resume', b, '--json']);
  t.is(resumed.exitCode, 0, String(resumed.stderr).slice(-2000));
  const genotype = (dir: string) => { const g = JSON.parse(fs.readFileSync(path.join(dir, 'genotype.json'), 'utf8')); delete g.name; return g; };
  t.deepEqual(genotype(b), genotype(a));
  const sa = readTensorFile(path.join(a, 'switches.arrow')).rows, sb = readTensorFile(path.join(b, 'switches.arrow')).rows;
  t.deepEqual(sb.map((r) => Array.from(r.data)), sa.map((r) => Array.from(r.data)));
  const wa = readTensorFile(path.join(a, 'weights.arrow')).rows, wb = readTensorFile(path.join(b, 'weights.arrow')).rows;
  t.deepEqual(wb.map((r) => Array.from(r.data)), wa.map((r) => Array.from(r.data)));
  fs.rmSync(base, { recursive: true });
});
