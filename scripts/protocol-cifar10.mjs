#!/usr/bin/env node
// The CIFAR-10 protocol of the paper: the proxy search (spec §4.2: one warm-up epoch on 10% of the
// training set with cutout, one switch epoch, the Hessian on a batch of 18, the γ/ω/C update), the
// derivation, and the retraining of the 20-cell / 36-channel evaluation network for 600 epochs
// (DARTS's recipe, spec §2.1, §7.4), with the published numbers of spec §9.1 beside the obtained ones.
//
// Without --run it only checks for the official CIFAR-10 files and prints the protocol (exit 0).
// With --run it runs the protocol; missing data is then an error (exit 2).
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, bayesnas, countOps, flags, mdTable, notebooks, pct, runFolder, say, secs, writeSummary } from './repro-common.mjs';

const usage = `node scripts/protocol-cifar10.mjs [--plan] [--run] [options]     (npm run protocol:cifar10 -- ...)

The full CIFAR-10 protocol (search, derive, retrain 20 cells x 36 channels for 600 epochs) with
the published numbers (spec §9.1) printed beside the obtained ones.

  --plan | --dry-run   print the protocol and whether CIFAR-10 is present; run nothing (the default)
  --run                run it (exit 2 if the CIFAR-10 files are missing)
  --lambda X           λ of the search: 0.01, 0.007 or 0.005 (the paper's three rows)   [0.01]
  --genotype NAME|FILE skip the search: retrain this genotype (e.g. BAYESNAS_LAMBDA_0_01)
  --epochs N           retraining epochs   [600]
  --style darts|bayesnas  evaluation network (bayesnas: the official pre-activation network)   [darts]
  --seed N             [0]
  --out DIR            run folder   [runs/<date>-protocol-cifar10]
  --no-notebooks       skip the notebooks
  --json               print JSON (the plan, or summary.json)

Data: the official binary (cifar-10-binary.tar.gz -> cifar-10-batches-bin/) or python version
(cifar-10-python.tar.gz -> cifar-10-batches-py/), in $BAYESNAS_DATA_DIR or data/.`;

const o = flags(usage, {
  plan: { type: 'boolean' }, 'dry-run': { type: 'boolean' }, run: { type: 'boolean' }, lambda: { type: 'string', default: '0.01' },
  genotype: { type: 'string' }, epochs: { type: 'string', default: '600' }, style: { type: 'string', default: 'darts' },
  seed: { type: 'string', default: '0' }, out: { type: 'string' }, 'no-notebooks': { type: 'boolean' }, json: { type: 'boolean' },
});

// spec §9.1 (paper Table 1): test error %, params (M), search cost (GPU-days); conf. as tagged there
// (✓ = matches a readable third-party table, ? = recalled only).
export const PUBLISHED = [
  { row: 'BayesNAS + cutout, λ = 0.01', lambda: '0.01', error: '3.02 ± 0.04', params: '2.59', cost: '0.2', conf: '?' },
  { row: 'BayesNAS + cutout, λ = 0.007', lambda: '0.007', error: '2.90 ± 0.05', params: '3.10', cost: '0.2', conf: '?' },
  { row: 'BayesNAS + cutout, λ = 0.005', lambda: '0.005', error: '2.81 ± 0.04', params: '3.40', cost: '0.2', conf: '✓' },
  { row: 'DARTS (2nd order) + cutout', lambda: null, error: '2.76 ± 0.09', params: '3.3', cost: '4', conf: '✓ error and params' },
];
const SOURCE = 'spec §9.1 (../shared/design/bayesnas-algorithm.md), from Zhou et al., ICML 2019, Table 1; search cost 0.2 GPU-days on one TITAN V [spec §9.3]';

// spec §4.2: phases A (warm-up) and B (switch epoch) with batch 18, SGD lr 0.1 constant, momentum
// 0.9, weight decay 1e-4, switches lr 0.1 without decay; the Hessian on the last batch (18 images).
// The 10%/90% subsets are made disjoint here (spec §4.2 [OURS]); 1,000 images are held out for
// validation instead of the official code's use of the test set.
const searchArgs = (dir) => ['search', '--space', 'bayesnas', '--dataset', 'cifar10', '--C', '36', '--layers', '8',
  '--train-size', '5000', '--switch-size', '44000', '--val-size', '1000', '--warmup-epochs', '1', '--rounds', '1',
  '--batch', '18', '--lr', '0.1', '--lr-schedule', 'constant', '--momentum', '0.9', '--weight-decay', '1e-4', '--switch-lr', '0.1',
  '--grad-clip', '0', '--lambda', o.lambda, '--crop-pad', '4', '--flip', '--cutout', '16',
  '--hessian-batches', '1', '--hessian-batch', '18', '--seed', o.seed, '--run-dir', path.join(dir, 'search')];
// spec §7.4 / §2.1: 20 cells, 36 channels; DARTS's recipe (600 epochs, batch 96, lr 0.025 cosine,
// weight decay 3e-4, cutout 16, drop-path 0.2, auxiliary weight 0.4, gradient clip 5).
const trainArgs = (dir, genotype) => ['train', '--genotype', genotype, '--dataset', 'cifar10', '--style', o.style,
  '--layers', '20', '--channels', '36', '--epochs', o.epochs, '--batch', '96', '--lr', '0.025', '--lr-min', '0',
  '--momentum', '0.9', '--weight-decay', '3e-4', '--grad-clip', '5', '--cutout', '16', '--drop-path', '0.2', '--auxiliary-weight', '0.4',
  '--seed', o.seed, '--run-dir', path.join(dir, 'train')];

/** Where the official CIFAR-10 files are (the folders the data loader tries), or null. */
export function findCifar() {
  const bases = [process.env.BAYESNAS_DATA_DIR, path.join(ROOT, 'data')].filter(Boolean);
  const tried = [];
  for (const b of bases) {
    const bin = path.join(b, 'cifar-10-batches-bin');
    const py = path.join(b, 'cifar-10-batches-py');
    tried.push(bin, py);
    if (['data_batch_1.bin', 'data_batch_5.bin', 'test_batch.bin'].every((f) => fs.existsSync(path.join(bin, f)))) return { dir: bin, tried };
    if (['data_batch_1', 'data_batch_5', 'test_batch'].every((f) => fs.existsSync(path.join(py, f)))) return { dir: py, tried };
  }
  return { dir: null, tried };
}

const cifar = findCifar();
const published = PUBLISHED.find((p) => p.lambda === o.lambda);
const plan = {
  kind: 'protocol-cifar10-plan', cifar10: cifar.dir, searched: cifar.tried, lambda: o.lambda,
  steps: [
    ...(o.genotype ? [] : [{ step: 'search', command: `bayesnas ${searchArgs('<out>').join(' ')}` }, { step: 'derive', command: 'bayesnas derive --run <out>/search --out <out>/derived' }]),
    { step: 'retrain', command: `bayesnas ${trainArgs('<out>', o.genotype ?? '<out>/derived/genotype.json').join(' ')}` },
  ],
  expected: PUBLISHED, expectedSource: SOURCE,
};
const missingText = `CIFAR-10 is not installed (looked for ${cifar.tried.join(', ')}).
Download the official binary version, cifar-10-binary.tar.gz (170,052,171 bytes, md5 c32a1d4ab5d03f1284b67883e8d87530)
from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it into data/ (or $BAYESNAS_DATA_DIR):
    tar xzf cifar-10-binary.tar.gz -C data/        # -> data/cifar-10-batches-bin/data_batch_1..5.bin, test_batch.bin
The python version (cifar-10-python.tar.gz -> cifar-10-batches-py/) works as well.`;

function printPlan() {
  if (o.json) { console.log(JSON.stringify(plan, null, 2)); return; }
  console.log('# CIFAR-10 protocol (spec §4.2 search, §7.4 retraining)\n');
  console.log(`CIFAR-10: ${cifar.dir ?? 'MISSING'}\n`);
  for (const s of plan.steps) console.log(`${s.step}:\n  ${s.command}\n`);
  console.log('Expected (published) numbers:\n');
  console.log(mdTable(['architecture', 'test error (%)', 'params (M)', 'search cost (GPU-days)', 'conf.'], PUBLISHED.map((p) => [p.row, p.error, p.params, p.cost, p.conf])));
  console.log(`\nSource: ${SOURCE}.`);
  console.log('Deviations: disjoint 5,000 / 44,000 warm-up/switch split with 1,000 held-out validation images (the official code overlaps them and validates on the test set); the retraining recipe is DARTS\'s (the paper\'s epochs, auxiliary tower and weight decay are unconfirmed, spec §7.4).');
  if (!cifar.dir) console.log(`\n${missingText}`);
}

if (!o.run) {
  printPlan();
  process.exit(0);
}
if (!cifar.dir) {
  say(missingText);
  process.exit(2);
}

const t0 = performance.now();
const dir = runFolder('protocol-cifar10', o.out);
say(`protocol-cifar10 (λ=${o.lambda}) -> ${dir}; data ${cifar.dir}`);
try {
  let search = null, derive = null, genotype = o.genotype;
  if (!genotype) {
    search = await bayesnas(dir, 'search', searchArgs(dir));
    derive = await bayesnas(dir, 'derive', ['derive', '--run', path.join(dir, 'search'), '--out', path.join(dir, 'derived')]);
    genotype = path.join(dir, 'derived', 'genotype.json');
  }
  const train = await bayesnas(dir, 'train', trainArgs(dir, genotype));
  const nb = o['no-notebooks'] ? null : await notebooks(dir);
  const tj = train.json;
  const err = 100 * (1 - tj.testAcc);
  const searchDays = search ? search.seconds / 86400 : null;
  const rows = [
    ['test error (%)', Number.isFinite(err) ? err.toFixed(2) : 'n/a', published?.error ?? '–', `${published ? published.row : 'no published row for this λ'} [${published?.conf ?? ''}]`],
    ['params (M)', (tj.params / 1e6).toFixed(2), published?.params ?? '–', 'evaluation network without the auxiliary head'],
    ['search cost (device-days)', searchDays === null ? 'skipped (given genotype)' : searchDays.toFixed(3), published?.cost ?? '–', 'published: GPU-days on one TITAN V'],
    ['retraining', `${tj.epochs.length} epochs, ${secs(train.seconds)}`, '600 epochs (DARTS recipe)', ''],
  ];
  const [opsN, opsR] = countOps(derive?.json?.genotype);
  const md = `## CIFAR-10 protocol, λ = ${o.lambda}\n\n${mdTable(['quantity', 'obtained', 'published', 'note'], rows)}\n\n`
    + `${derive ? `Derived cells: normal ${opsN} ops, reduce ${opsR} ops. ` : `Genotype: ${o.genotype}. `}Test accuracy ${pct(tj.testAcc)} on ${tj.testImages} images. `
    + `Published numbers: ${SOURCE}. Total ${secs((performance.now() - t0) / 1000)}.\n`;
  writeSummary(dir, md, { kind: 'protocol-cifar10', dir, lambda: o.lambda, cifar10: cifar.dir, search: search && { seconds: search.seconds, rounds: search.json.rounds }, derive: derive?.json ?? null,
    train: { seconds: train.seconds, testAcc: tj.testAcc, testError: err, params: tj.params, epochs: tj.epochs.length }, published, expectedSource: SOURCE, notebooks: nb }, { printJson: !!o.json });
  process.exit(0);
} catch (e) {
  say(`protocol-cifar10 failed: ${e.message}`);
  process.exit(1);
}
