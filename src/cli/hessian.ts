// `bayesnas hessian`: the diagonal switch Hessian of a trained (or freshly initialised) supernet,
// written as an Arrow table into the run folder.
import fs from 'node:fs';
import path from 'node:path';
import { initEngine } from '../engine/index.js';
import { batches, loadDataset, splitTrainingSet, DATASET_NAMES, type DatasetName } from '../data/index.js';
import { switchHessian } from '../hessian/index.js';
import { switchRows, writeSwitchTable } from '../hessian/table.js';
import { buildSupernet } from '../space/supernet.js';
import type { TrainConfig } from '../search/train.js';
import { configFromFlags } from './supernet.js';
import { choiceFlag, intFlag, parse, UsageError } from './args.js';

export const summary = 'diagonal Hessian of the loss w.r.t. every switch (and weight), as an Arrow table';
export const usage = `bayesnas hessian (--run DIR | --space NAME|FILE [supernet options]) [options]

Computes h_s = ∂²E/∂s² for every switch by one recorded forward and one reverse pass of the layer
rules (spec §6), averaged over M batches of the 'switch' split (training-mode BN, no augmentation).
Approximations (spec §6.5): only the diagonal; Gauss–Newton (no second-derivative terms of ReLU);
cross terms between branches dropped; BN linearised at the statistics the forward used.

  --run DIR          a run folder of 'supernet train': its config and final (or checkpoint) parameters
  --space ...        or a fresh supernet (see 'bayesnas supernet train --help' for --C, --layers, --gate,
                     --dataset, sizes, --seed)
  --batches M        batches to average over   [4]
  --batch N          batch size   [32]
  --mode per-sample|faithful   faithful = the official code's batch averaging   [per-sample]
  --seed-kind diagonal|target|full   output Hessian: p(1−p) on all classes, only the target (official
                     code), or the full softmax Hessian through the classifier   [diagonal]
  --scale mean|batchSum|dataset   Hessian of the batch-mean loss, of the batch sum (official code), or
                     of the sum over the training set; λ must be read on the same scale   [mean]
  --out FILE         output table   [DIR/hessian.arrow, or runs/hessian-<date>.arrow]
  --json             print the result as JSON`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    run: { type: 'string' }, space: { type: 'string' }, C: { type: 'string' }, layers: { type: 'string' }, gate: { type: 'string' },
    dataset: { type: 'string' }, 'train-size': { type: 'string' }, 'switch-size': { type: 'string' }, 'val-size': { type: 'string' },
    seed: { type: 'string' }, batches: { type: 'string' }, batch: { type: 'string' }, mode: { type: 'string' },
    'seed-kind': { type: 'string' }, scale: { type: 'string' }, out: { type: 'string' }, 'pad-to': { type: 'string' }, channels: { type: 'string' },
  });
  if (values.help) { console.log(usage); return 0; }
  if (!values.run && !values.space) throw new UsageError('give --run DIR or --space NAME|FILE');
  const engine = await initEngine();
  let cfg: TrainConfig;
  let paramsFile: string | null = null;
  if (values.run) {
    const dir = path.resolve(String(values.run));
    const cfgFile = path.join(dir, 'config.json');
    if (!fs.existsSync(cfgFile)) throw new UsageError(`--run: ${cfgFile} does not exist`);
    cfg = (JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as { config: TrainConfig }).config;
    paramsFile = path.join(dir, 'checkpoint', 'params.arrow');
    if (!fs.existsSync(paramsFile)) throw new UsageError(`--run: ${paramsFile} does not exist (the run has no completed epoch)`);
  } else {
    cfg = configFromFlags({ ...values, dataset: values.dataset ?? 'fashion-mnist' });
  }
  const M = intFlag(values, 'batches', 4, 1), B = intFlag(values, 'batch', 32, 1);
  const mode = choiceFlag(values, 'mode', ['per-sample', 'faithful'] as const, 'per-sample');
  const seedKind = choiceFlag(values, 'seed-kind', ['diagonal', 'target', 'full'] as const, 'diagonal');
  const scale = choiceFlag(values, 'scale', ['mean', 'batchSum', 'dataset'] as const, 'mean');
  const data = loadDataset(cfg.dataset as DatasetName);
  if (!DATASET_NAMES.includes(cfg.dataset)) throw new UsageError(`unknown dataset ${cfg.dataset}`);
  const splits = splitTrainingSet(data.train, { seed: cfg.seed, sizes: cfg.sizes });
  const net = buildSupernet(cfg.space, { classes: data.classes.length, inChannels: cfg.channels || data.train.channels, seed: cfg.seed });
  if (paramsFile) net.params.load(paramsFile);
  const list = [];
  for (const b of batches(splits.switch, { batchSize: B, shuffle: true, seed: cfg.seed + 1, dropLast: true, padTo: cfg.padTo || undefined, channels: cfg.channels || undefined })) {
    list.push(b);
    if (list.length === M) break;
  }
  if (!list.length) throw new Error(`the switch split (${splits.switch.n} samples) holds no batch of ${B}`);
  const t0 = performance.now();
  const h = await switchHessian(net, list, { mode, seed: seedKind, scale, datasetSize: splits.train.n + splits.switch.n });
  const seconds = (performance.now() - t0) / 1000;
  for (const b of list) { b.x.dispose(); b.y.dispose(); }
  const out = path.resolve(String(values.out ?? (values.run ? path.join(String(values.run), 'hessian.arrow') : path.join('runs', `hessian-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.arrow`))));
  const rows = switchRows(net, h.cells);
  writeSwitchTable(out, rows, { kind: 'switch-hessian', mode, seed: seedKind, scale, batches: String(h.batches), samples: String(h.samples), space: cfg.space.name, backend: engine.backend });
  const result = { file: out, switches: rows.length, batches: h.batches, samples: h.samples, seconds, options: h.options, cells: h.cells.map((c) => ({ index: c.index, reduction: c.reduction, origin: Array.from(c.origin), child: Array.from(c.child) })) };
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(`switch Hessian (${mode}, seed ${seedKind}, scale ${scale}) over ${h.batches} batches of ${B}: ${rows.length} switches in ${seconds.toFixed(1)} s -> ${out}`);
    for (const c of h.cells) console.log(`  cell ${c.index} (${c.reduction ? 'reduce' : 'normal'}): origin h ${Array.from(c.origin, (v) => v.toExponential(2)).join(' ')}`);
  }
  net.dispose();
  return 0;
}
