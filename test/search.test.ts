import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { initEngine } from '../src/engine/index.js';
import { runSearch, type SearchConfig } from '../src/search/search.js';
import { DEFAULT_CONFIG } from '../src/search/train.js';
import { fromJSON, parseDartsRepr } from '../src/genotype/format.js';
import { BAYESNAS_SPACE } from '../src/space/spaces.js';

await initEngine({ quiet: true });

const cfg: SearchConfig = {
  ...DEFAULT_CONFIG, space: { ...BAYESNAS_SPACE, C: 4, layers: 2, reductions: [1] }, dataset: 'fashion-mnist', batch: 16,
  warmupEpochs: 1, switchEpochs: 2, rounds: 2, sizes: { train: 32, switch: 48, val: 32 }, lambdaOrigin: 0.01, lambdaChild: 0.01,
  updateMode: 'clean', hessian: { batches: 1, batch: 16, mode: 'per-sample', seed: 'diagonal', scale: 'dataset' }, prune: 0,
  derive: { tauEdge: 0.5, tauOp: 0.9 },
};

test.serial('a whole search on real Fashion-MNIST: round tables, a connected genotype in JSON and DARTS repr, SVG drawings; resume continues exactly', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bnas-search-'));
  const r = await runSearch(cfg, dir);
  t.is(r.rounds.length, 2);
  for (const f of ['config.json', 'metrics.jsonl', 'genotype.json', 'genotype.txt', 'cell-normal.svg', 'cell-reduce.svg', 'state/round-1.arrow', 'state/round-2.arrow', 'checkpoint/state.json']) t.true(fs.existsSync(path.join(dir, f)), f);
  const table = tableFromIPC(fs.readFileSync(path.join(dir, 'state', 'round-2.arrow')));
  t.is(table.numRows, 2 * 8 * 8, 'one row per switch');
  const gammas = table.getChild('gamma')!.toArray() as Float64Array;
  t.true(Array.from(gammas).every((v) => v >= 0 && Number.isFinite(v)));
  const hs = table.getChild('hessian')!.toArray() as Float64Array;
  t.true(Array.from(hs).every((v) => v >= 0) && Array.from(hs).some((v) => v > 0));
  const g = fromJSON(fs.readFileSync(path.join(dir, 'genotype.json'), 'utf8'));
  t.deepEqual(parseDartsRepr(fs.readFileSync(path.join(dir, 'genotype.txt'), 'utf8')).normal, g.normal);
  for (const cell of [g.normal, g.reduce]) {
    const live = new Set([0, 1, ...cell.concat]);
    cell.nodes.forEach((entries) => entries.forEach((e) => t.true(live.has(e.input))));
    t.deepEqual(cell.concat, [2, 3, 4, 5]);
  }
  t.regex(fs.readFileSync(path.join(dir, 'cell-normal.svg'), 'utf8'), /^<svg[\s\S]*<\/svg>\s*$/);
  // interrupt after round 1 (as a crash would) and resume: the second round reproduces the uninterrupted one
  const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), 'bnas-search-'));
  await t.throwsAsync(runSearch(cfg, dir2, { onRound: (x) => { if (x.round === 1) throw new Error('interrupted'); } }), { message: 'interrupted' });
  const resumed = await runSearch(cfg, dir2, {}, true);
  // round 1 comes back from metrics.jsonl, round 2 is computed again
  t.is(resumed.rounds.length, 2);
  t.deepEqual(resumed.rounds.map((x) => x.round), [1, 2]);
  t.deepEqual(resumed.rounds[0].gammaNormal, r.rounds[0].gammaNormal);
  t.deepEqual(resumed.warmup.map((m) => m.trainLoss), r.warmup.map((m) => m.trainLoss));
  t.is(resumed.rounds[1].epoch.trainLoss, r.rounds[1].epoch.trainLoss);
  t.deepEqual(resumed.rounds[1].gammaNormal, r.rounds[1].gammaNormal);
  t.deepEqual(resumed.genotype.normal, r.genotype.normal);
  fs.rmSync(dir, { recursive: true });
  fs.rmSync(dir2, { recursive: true });
});

test.serial('the search refuses λ = 0', async (t) => {
  await t.throwsAsync(runSearch({ ...cfg, lambdaOrigin: 0 }, fs.mkdtempSync(path.join(os.tmpdir(), 'bnas-search-'))), { message: /λ_origin > 0/ });
});
