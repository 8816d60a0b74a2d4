import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { tableFromIPC } from 'apache-arrow';

// scripts/compare.mjs end to end at its tiny setting: a real SNAS search and a real DARTS search on
// Fashion-MNIST, their cells and the published DARTS_V2 (read through the Python bridge) retrained,
// one table; a second invocation on the same folder reuses the finished steps.
const SCRIPT = path.join('scripts', 'compare.mjs');

test('compare (tiny): per-run Arrow rows, a Markdown table with the collapse guard, the plot; finished steps reused', async (t) => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bnas-compare-')), 'out');
  const args = [SCRIPT, '--setting', 'tiny', '--strategies', 'darts,snas', '--published', 'DARTS_V2', '--out', dir, '--json'];
  const r = await execa(process.execPath, args, { reject: false });
  t.is(r.exitCode, 0, String(r.stderr).slice(-2000));
  const s = JSON.parse(r.stdout);
  t.deepEqual(s.methods.map((m: { method: string }) => m.method), ['darts', 'snas', 'DARTS_V2']);
  const table = tableFromIPC(fs.readFileSync(path.join(dir, 'runs.arrow')));
  t.is(table.numRows, 3);
  const row = (i: number) => table.get(i)!.toJSON() as Record<string, unknown>;
  for (let i = 0; i < 3; i++) {
    const x = row(i);
    t.true((x.testAcc as number) >= 0 && (x.testAcc as number) <= 1);
    t.true((x.params as number) > 0);
    t.true((x.paramFreeNormal as number) <= (x.opsNormal as number) && (x.skipNormal as number) <= (x.paramFreeNormal as number));
  }
  t.is(row(0).opsNormal, 8, 'a DARTS cell: two inputs per node');
  t.true((row(0).archSeconds as number) > 0, 'DARTS spends time in α steps');
  // DARTS_V2: normal cell 2 skip_connect (its only parameter-free ops), reduction cell 3 skip_connect + 5 max pools
  const v2 = row(2);
  t.deepEqual([v2.skipNormal, v2.skipReduce, v2.paramFreeNormal, v2.paramFreeReduce], [2, 3, 2, 8]);
  const md = fs.readFileSync(path.join(dir, 'summary.md'), 'utf8');
  t.regex(md, /\| \*\*darts\*\* \(searched\) \|/);
  t.regex(md, /skip_connect \(normal \/ reduce\)/);
  t.true(fs.statSync(path.join(dir, 'compare.png')).size > 10_000);
  // rerun on the same folder: nothing is searched or trained again
  fs.rmSync(path.join(dir, 'summary.json'));
  const again = await execa(process.execPath, args, { reject: false });
  t.is(again.exitCode, 0, String(again.stderr).slice(-2000));
  t.is((String(again.stderr).match(/done before, reused/g) ?? []).length, 5);
  t.deepEqual(JSON.parse(again.stdout).runs.map((x: { testAcc: number }) => x.testAcc), s.runs.map((x: { testAcc: number }) => x.testAcc));
  // steps whose invocation died after the run's last checkpoint: continued with --resume, same rows
  for (const f of ['search-snas-seed0', 'train-snas-seed0']) fs.rmSync(path.join(dir, 'logs', `${f}.done.json`));
  const third = await execa(process.execPath, args, { reject: false });
  t.is(third.exitCode, 0, String(third.stderr).slice(-2000));
  t.is((String(third.stderr).match(/continuing the interrupted run/g) ?? []).length, 2);
  const keys = ['testAcc', 'params', 'supernetValAcc', 'archSeconds', 'searchEpochSeconds', 'genotype'] as const;
  const pick = (x: Record<string, unknown>) => keys.map((k) => x[k]);
  t.deepEqual(JSON.parse(third.stdout).runs.map(pick), s.runs.map(pick));
  fs.rmSync(path.dirname(dir), { recursive: true });
});

test('compare refuses unknown strategies and settings with the flag named', async (t) => {
  const a = await execa(process.execPath, [SCRIPT, '--strategies', 'darts,enas'], { reject: false });
  t.is(a.exitCode, 2);
  t.regex(String(a.stderr), /--strategies: unknown strategy 'enas'/);
  const b = await execa(process.execPath, [SCRIPT, '--setting', 'huge'], { reject: false });
  t.is(b.exitCode, 2);
  t.regex(String(b.stderr), /--setting must be one of tiny, quick, full/);
});
