#!/usr/bin/env node
// The quick end-to-end pipeline on Fashion-MNIST for a 2-core machine: BayesNAS search (bayesnas
// space, reduced size), derivation of the cells from γ, retraining of a small evaluation network
// of the derived genotype, test accuracy; then the analysis notebooks on the run folder.
// Writes runs/<date>-pipeline-quick/ (search/, derived/, train/, figures/, logs/, summary.md, summary.json).
import path from 'node:path';
import { bayesnas, countOps, flags, mdTable, notebooks, pct, runFolder, say, secs, writeSummary } from './repro-common.mjs';

const SIZES = {
  // search: C, layers, train/switch/val images, batch; retrain: layers, channels, epochs, train/test images
  tiny: { C: 2, layers: 3, train: 64, switch: 64, val: 32, batch: 16, hb: 1, rLayers: 3, rChannels: 4, epochs: 1, rTrain: 256, rTest: 256 },
  small: { C: 4, layers: 3, train: 256, switch: 512, val: 256, batch: 32, hb: 2, rLayers: 5, rChannels: 8, epochs: 2, rTrain: 2000, rTest: 1000 },
  medium: { C: 8, layers: 3, train: 512, switch: 1024, val: 1000, batch: 32, hb: 4, rLayers: 8, rChannels: 16, epochs: 5, rTrain: 10000, rTest: 10000 },
};
const usage = `node scripts/pipeline-quick.mjs [--size tiny|small|medium] [options]     (npm run pipeline:quick -- ...)

Search (bayesnas space on Fashion-MNIST), derive, retrain a small evaluation network, report the
test accuracy. Sizes (defaults: small, about 10 min on a loaded 2-core machine):
${Object.entries(SIZES).map(([k, s]) => `  ${k.padEnd(7)} search C=${s.C} layers=${s.layers} ${s.train}/${s.switch}/${s.val} images; retrain ${s.rLayers} cells x ${s.rChannels} ch, ${s.epochs} epochs on ${s.rTrain} images, test ${s.rTest}`).join('\n')}

  --dataset NAME     fashion-mnist | mnist   [fashion-mnist]
  --tau-op X         derivation threshold on γ, relative to the cell's largest   [0.75]
  --lambda X         λ of the switch penalty   [0.01]
  --epochs N --layers N --channels N --train-size N --test-size N   retraining overrides
  --seed N           [0]
  --out DIR          run folder   [runs/<date>-pipeline-quick]
  --no-notebooks     skip the notebooks (figures/)
  --json             print summary.json instead of the Markdown table`;

const o = flags(usage, {
  size: { type: 'string', default: 'small' }, dataset: { type: 'string', default: 'fashion-mnist' }, 'tau-op': { type: 'string', default: '0.75' },
  lambda: { type: 'string', default: '0.01' }, epochs: { type: 'string' }, layers: { type: 'string' }, channels: { type: 'string' },
  'train-size': { type: 'string' }, 'test-size': { type: 'string' }, seed: { type: 'string', default: '0' }, out: { type: 'string' },
  'no-notebooks': { type: 'boolean' }, json: { type: 'boolean' },
});
const S = SIZES[o.size];
if (!S) { say(`--size must be one of ${Object.keys(SIZES).join(', ')}\n\n${usage}`); process.exit(2); }
const R = {
  layers: o.layers ?? String(S.rLayers), channels: o.channels ?? String(S.rChannels), epochs: o.epochs ?? String(S.epochs),
  train: o['train-size'] ?? String(S.rTrain), test: o['test-size'] ?? String(S.rTest),
};
const t0 = performance.now();
const dir = runFolder(`pipeline-quick-${o.dataset}`, o.out);
say(`pipeline-quick (${o.size}) -> ${dir}`);

try {
  const search = await bayesnas(dir, 'search', ['search', '--space', 'bayesnas', '--dataset', o.dataset, '--C', String(S.C), '--layers', String(S.layers),
    '--train-size', String(S.train), '--switch-size', String(S.switch), '--val-size', String(S.val), '--batch', String(S.batch), '--rounds', '1',
    '--lambda', o.lambda, '--hessian-batches', String(S.hb), '--hessian-batch', String(S.batch), '--tau-op', o['tau-op'], '--seed', o.seed,
    '--run-dir', path.join(dir, 'search')]);
  const derive = await bayesnas(dir, 'derive', ['derive', '--run', path.join(dir, 'search'), '--tau-op', o['tau-op'], '--out', path.join(dir, 'derived')]);
  const train = await bayesnas(dir, 'train', ['train', '--genotype', path.join(dir, 'derived', 'genotype.json'), '--dataset', o.dataset,
    '--layers', R.layers, '--channels', R.channels, '--epochs', R.epochs, '--train-size', R.train, '--test-size', R.test,
    '--batch', '64', '--seed', o.seed, '--run-dir', path.join(dir, 'train')]);
  const nb = o['no-notebooks'] ? null : await notebooks(dir);

  const sj = search.json, tj = train.json;
  const lastRound = sj.rounds?.at(-1);
  const [opsN, opsR] = countOps(derive.json.genotype);
  const [allN, allR] = countOps(sj.genotype);
  const rows = [
    ['search', `bayesnas space, C=${S.C}, ${S.layers} cells; ${o.dataset} ${S.train} warm-up / ${S.switch} switch / ${S.val} val images; 1 round, λ=${o.lambda}`,
      `supernet val acc ${pct(lastRound?.epoch?.valAcc)} (warm-up ${pct(sj.warmup?.at(-1)?.valAcc)})`, secs(search.seconds)],
    ['derive', `γ thresholds: edge 0.1, op ${o['tau-op']} (relative)`, `normal ${opsN} ops, reduce ${opsR} ops (search kept ${allN} / ${allR})`, secs(derive.seconds)],
    ['retrain', `${R.layers} cells x ${R.channels} ch, ${tj.params?.toLocaleString('en') ?? '?'} params; ${R.epochs} epochs, batch 64, ${tj.trainImages} train images`,
      `**test accuracy ${pct(tj.testAcc)}** on ${tj.testImages} test images (train acc ${pct(tj.epochs?.at(-1)?.trainAcc)})`, secs(train.seconds)],
  ];
  if (nb) rows.push(['notebooks', `${nb.notebooks.filter((n) => n.ok).length} of ${nb.notebooks.length} executed headless`, `figures: ${nb.figures.join(', ') || 'none'}${nb.missing?.length ? `; missing ${nb.missing.join(', ')}` : ''}`, secs(nb.seconds)]);
  const total = (performance.now() - t0) / 1000;
  const md = `## Quick pipeline (${o.size}) on ${o.dataset}\n\n${mdTable(['step', 'setting', 'result', 'time'], rows)}\n\n`
    + `Total ${secs(total)}. Derived genotype: \`${path.relative(dir, path.join(dir, 'derived', 'genotype.txt'))}\`. `
    + `Fashion-MNIST/MNIST results at this size are a pipeline check, not CIFAR-10 results.\n`;
  const json = {
    kind: 'pipeline-quick', size: o.size, dataset: o.dataset, dir, seconds: total,
    search: { seconds: search.seconds, valAcc: lastRound?.epoch?.valAcc ?? null, rounds: sj.rounds, runDir: path.join(dir, 'search') },
    derive: { seconds: derive.seconds, opsNormal: opsN, opsReduce: opsR, genotype: derive.json.genotype },
    train: { seconds: train.seconds, testAcc: tj.testAcc, testImages: tj.testImages, trainImages: tj.trainImages, params: tj.params, epochs: tj.epochs, settings: R },
    notebooks: nb,
  };
  writeSummary(dir, md, json, { printJson: !!o.json });
  process.exit(nb && (nb.exitCode !== 0) ? 1 : 0);
} catch (e) {
  say(`pipeline-quick failed: ${e.message}`);
  process.exit(1);
}
