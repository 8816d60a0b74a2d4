// `bayesnas supernet train`: supernet training on real data with a progress bar and a run folder.
import fs from 'node:fs';
import path from 'node:path';
import { initEngine } from '../engine/index.js';
import { DATASET_NAMES, type DatasetName } from '../data/index.js';
import { PROJECT_ROOT } from '../bridge/python.js';
import { PRESETS, resolveSpace } from '../space/spaces.js';
import { DEFAULT_CONFIG, trainSupernet, type TrainConfig } from '../search/train.js';
import { choiceFlag, intFlag, numFlag, parse, UsageError } from './args.js';
import { progress, type Progress } from './progress.js';

export const summary = 'train a supernet on real data (supernet train --help)';
export const usage = `bayesnas supernet train [options]

Trains the one-shot supernet with the BayesNAS schedule: warm-up epochs train the weights only on
the 'train' split; switch epochs train weights and switches (separate SGD, no weight decay on
switches, optional group penalty) on the disjoint 'switch' split. Each epoch ends with a validation
pass and a checkpoint. The run folder gets config.json, metrics.jsonl, weights.arrow,
switches.arrow and checkpoint/.

Search space:
  --space NAME|FILE      darts (14 edges, 7 ops + origin switch) | bayesnas (official 8-edge space)
                         | a JSON file ({"preset": "darts", ...overrides} or a full description)   [darts]
  --C N                  initial channels per node (darts 16, bayesnas 36)
  --layers N             cells (8); reductions at 1/3 and 2/3
  --gate output|input    origin switch on the edge output (exact zero, default) or input (official code)

Data:
  --dataset NAME         ${DATASET_NAMES.join(' | ')}   [fashion-mnist]
  --train-size N         warm-up split: fraction (<= 1) or count of the training set   [0.1]
  --switch-size N        switch-epoch split   [0.8]
  --val-size N           validation split   [0.1]
  --crop-pad N --flip --cutout N   augmentation (cutout in warm-up epochs only)
  --pad-to N --channels N          zero-pad images / replicate channels (e.g. 32 and 3 for CIFAR shapes)

Training:
  --epochs N             total epochs (warm-up + switch)   [2]
  --warmup-epochs N      weights-only epochs first   [1]
  --batch N              [32]
  --lr X --lr-schedule cosine|constant --lr-min X   weights' SGD   [0.05 cosine 0.001]
  --momentum X --weight-decay X                     [0.9 3e-4]
  --switch-lr X          switches' SGD (momentum 0.9, no weight decay)   [0.1]
  --lambda X             λ for origin and child switch groups (or --lambda-origin / --lambda-child)   [0]
  --grad-clip X          weights' gradient norm clip, 0 = off   [5]
  --seed N               seed of weights, splits, order and augmentation   [0]

Output:
  --run-dir DIR          run folder   [runs/<date>-supernet-<space>-<dataset>]
  --resume DIR           continue the run in DIR after its last completed epoch
  --json                 print the result as JSON (no progress bar)`;

export const FLAGS = {
  space: { type: 'string' }, C: { type: 'string' }, layers: { type: 'string' }, gate: { type: 'string' },
  dataset: { type: 'string' }, 'train-size': { type: 'string' }, 'switch-size': { type: 'string' }, 'val-size': { type: 'string' },
  'crop-pad': { type: 'string' }, flip: { type: 'boolean' }, cutout: { type: 'string' }, 'pad-to': { type: 'string' }, channels: { type: 'string' },
  epochs: { type: 'string' }, 'warmup-epochs': { type: 'string' }, batch: { type: 'string' }, lr: { type: 'string' },
  'lr-schedule': { type: 'string' }, 'lr-min': { type: 'string' }, momentum: { type: 'string' }, 'weight-decay': { type: 'string' },
  'switch-lr': { type: 'string' }, lambda: { type: 'string' }, 'lambda-origin': { type: 'string' }, 'lambda-child': { type: 'string' },
  'grad-clip': { type: 'string' }, seed: { type: 'string' }, 'run-dir': { type: 'string' }, resume: { type: 'string' },
} as const;

export function configFromFlags(values: Record<string, unknown>): TrainConfig {
  const d = DEFAULT_CONFIG;
  const spaceArg = String(values.space ?? 'darts');
  if (!PRESETS[spaceArg] && !fs.existsSync(spaceArg)) throw new UsageError(`--space: '${spaceArg}' is neither a preset (${Object.keys(PRESETS).join(', ')}) nor a file`);
  const space = resolveSpace(spaceArg, {
    C: values.C !== undefined ? intFlag(values, 'C', 0, 2) : undefined,
    layers: values.layers !== undefined ? intFlag(values, 'layers', 0, 1) : undefined,
    gate: values.gate !== undefined ? choiceFlag(values, 'gate', ['input', 'output'] as const, 'output') : undefined,
  });
  const epochs = intFlag(values, 'epochs', d.warmupEpochs + d.switchEpochs, 1);
  const warmupEpochs = intFlag(values, 'warmup-epochs', Math.min(d.warmupEpochs, epochs - 1), 0);
  if (warmupEpochs > epochs) throw new UsageError(`--warmup-epochs (${warmupEpochs}) exceeds --epochs (${epochs})`);
  const lambda = numFlag(values, 'lambda', 0, 0);
  return {
    ...d, space, dataset: choiceFlag(values, 'dataset', DATASET_NAMES, 'fashion-mnist') as DatasetName,
    seed: intFlag(values, 'seed', d.seed), batch: intFlag(values, 'batch', d.batch, 1),
    warmupEpochs, switchEpochs: epochs - warmupEpochs,
    lr: numFlag(values, 'lr', d.lr, 0), lrSchedule: choiceFlag(values, 'lr-schedule', ['cosine', 'constant'] as const, d.lrSchedule),
    lrMin: numFlag(values, 'lr-min', d.lrMin, 0), momentum: numFlag(values, 'momentum', d.momentum, 0),
    weightDecay: numFlag(values, 'weight-decay', d.weightDecay, 0), switchLr: numFlag(values, 'switch-lr', d.switchLr, 0),
    lambdaOrigin: numFlag(values, 'lambda-origin', lambda, 0), lambdaChild: numFlag(values, 'lambda-child', lambda, 0),
    gradClip: numFlag(values, 'grad-clip', d.gradClip, 0),
    sizes: { train: numFlag(values, 'train-size', d.sizes.train, 0), switch: numFlag(values, 'switch-size', d.sizes.switch, 0), val: numFlag(values, 'val-size', d.sizes.val, 0) },
    augment: { cropPad: intFlag(values, 'crop-pad', 0), flip: !!values.flip, cutout: intFlag(values, 'cutout', 0) },
    padTo: intFlag(values, 'pad-to', 0), channels: intFlag(values, 'channels', 0),
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, FLAGS);
  if (values.help) { console.log(usage); return 0; }
  if (positionals[0] !== 'train') throw new UsageError(`expected 'supernet train' (got '${positionals.join(' ')}')`);
  const engine = await initEngine();
  let cfg: TrainConfig, runDir: string;
  const resume = values.resume !== undefined;
  if (resume) {
    runDir = path.resolve(String(values.resume));
    const cfgFile = path.join(runDir, 'config.json');
    if (!fs.existsSync(cfgFile)) throw new UsageError(`--resume: ${cfgFile} does not exist`);
    cfg = (JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as { config: TrainConfig }).config;
  } else {
    cfg = configFromFlags(values);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
    runDir = path.resolve(String(values['run-dir'] ?? path.join(PROJECT_ROOT, 'runs', `${stamp}-supernet-${cfg.space.name}-${cfg.dataset}`)));
    if (fs.existsSync(path.join(runDir, 'config.json'))) throw new UsageError(`--run-dir ${runDir} already holds a run (use --resume to continue it, or another folder)`);
  }
  const quiet = !!values.json;
  if (!quiet) process.stderr.write(`supernet train: space ${cfg.space.name} (C=${cfg.space.C}, ${cfg.space.layers} cells, gate ${cfg.space.gate}) on ${cfg.dataset}, backend ${engine.backend}, run folder ${runDir}\n`);
  let bar: Progress | null = null;
  const result = await trainSupernet(cfg, runDir, {
    onEpochStart: (e, phase, steps) => { bar = progress(`epoch ${e + 1} ${phase.padEnd(6)}`, steps, { quiet, fields: ['loss', 'acc', 'img_s'] }); },
    onStep: (step, m) => bar?.update(step, { loss: m.loss.toFixed(4), acc: m.acc.toFixed(3), img_s: m.imagesPerSecond.toFixed(0) }),
    onEpochEnd: (m) => {
      bar?.stop();
      if (!quiet) process.stderr.write(`epoch ${m.epoch} (${m.phase}): train loss ${m.trainLoss.toFixed(4)} acc ${m.trainAcc.toFixed(3)} | val loss ${m.valLoss.toFixed(4)} acc ${m.valAcc.toFixed(3)} | ${m.imagesPerSecond.toFixed(0)} img/s, ${m.seconds.toFixed(0)} s\n`);
    },
  }, resume);
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else console.log(`done: ${result.epochs.length} epochs, final val accuracy ${result.epochs.at(-1)?.valAcc.toFixed(3) ?? '-'}; ${result.params} weights, ${result.switches} switches; results in ${runDir}`);
  return 0;
}
