// `bayesnas train`: retrains the evaluation network of a genotype on real data, with progress, ETA,
// checkpoints and --resume.
import fs from 'node:fs';
import path from 'node:path';
import { initEngine } from '../engine/index.js';
import { DATASET_NAMES, type DatasetName } from '../data/index.js';
import { PROJECT_ROOT } from '../bridge/python.js';
import { PUBLISHED } from '../genotype/published.js';
import { DEFAULT_RETRAIN, defaultAugment, retrain, type RetrainConfig } from '../evalnet/train.js';
import { loadGenotypeArg } from './genotype.js';
import { choiceFlag, intFlag, numFlag, parse, UsageError, type Values } from './args.js';
import { progress, type Progress } from './progress.js';

export const summary = 'retrain the evaluation network of a genotype (train --help)';
export const usage = `bayesnas train --genotype NAME|FILE | --from-python module:NAME [options]

Trains the evaluation network of a genotype from scratch (see \`bayesnas eval-net\`) with SGD,
momentum, weight decay, a cosine learning rate, gradient clipping, DARTS augmentation, optional
cutout, drop-path and auxiliary head. Input channels, image size and classes follow the dataset.
Each epoch ends with a test pass and a checkpoint. The run folder gets config.json,
metrics.jsonl (steps and epochs), checkpoint/, weights.arrow and result.json.

Network:
  --genotype NAME|FILE     published (${Object.keys(PUBLISHED).join(', ')}) or a DARTS repr / JSON file
  --from-python MOD:NAME   a genotype object of a Python module in the reference environment
  --layers N --channels N  cells and initial channels   [20 36]
  --style darts|bayesnas   DARTS's evaluation network, or the official BayesNAS one (pre-activation
                           ops, CReduct, head BN; --drop-path is then channel dropout on every op)   [darts]

Data:
  --dataset NAME           ${DATASET_NAMES.join(' | ')}   [cifar10]
  --train-size N           training images: fraction (<= 1) or count   [1 = all]
  --test-size N            test images: fraction (<= 1) or count   [1 = all]
  --crop-pad N             random crop after zero padding   [cifar10 4, otherwise 2]
  --no-flip                no horizontal flips   [flip on cifar10 and fashion-mnist]
  --cutout N               cutout square side (DARTS: 16)   [0 = off]

Training (DARTS's recipe by default):
  --epochs N               [${DEFAULT_RETRAIN.epochs}]
  --batch N                [${DEFAULT_RETRAIN.batch}]
  --lr X --lr-min X        cosine schedule from lr to lr-min   [${DEFAULT_RETRAIN.lr} ${DEFAULT_RETRAIN.lrMin}]
  --momentum X --weight-decay X   [${DEFAULT_RETRAIN.momentum} ${DEFAULT_RETRAIN.weightDecay}]
  --grad-clip X            gradient-norm clip, 0 = off   [${DEFAULT_RETRAIN.gradClip}]
  --drop-path P            drop-path probability, ramped linearly over the epochs (DARTS: 0.2)   [0]
  --auxiliary              auxiliary head with weight 0.4
  --auxiliary-weight W     auxiliary head with weight W (0 = no head)
  --seed N                 weights, subsets, order, augmentation, drop-path   [0]

Output:
  --run-dir DIR            run folder   [runs/<date>-train-<genotype>-<dataset>]
  --resume DIR             continue the run in DIR after its last completed epoch
  --json                   print the result (with the final test accuracy) as JSON, no progress bar`;

const FLAGS = {
  genotype: { type: 'string' }, 'from-python': { type: 'string' }, layers: { type: 'string' }, channels: { type: 'string' },
  dataset: { type: 'string' }, 'train-size': { type: 'string' }, 'test-size': { type: 'string' }, 'crop-pad': { type: 'string' },
  'no-flip': { type: 'boolean' }, cutout: { type: 'string' }, epochs: { type: 'string' }, batch: { type: 'string' },
  lr: { type: 'string' }, 'lr-min': { type: 'string' }, momentum: { type: 'string' }, 'weight-decay': { type: 'string' },
  'grad-clip': { type: 'string' }, 'drop-path': { type: 'string' }, auxiliary: { type: 'boolean' }, 'auxiliary-weight': { type: 'string' },
  style: { type: 'string' }, seed: { type: 'string' }, 'run-dir': { type: 'string' }, resume: { type: 'string' },
} as const;

export async function configFromFlags(values: Values): Promise<RetrainConfig> {
  const d = DEFAULT_RETRAIN;
  const source = String(values['from-python'] ?? values.genotype ?? '');
  const genotype = await loadGenotypeArg(values.genotype as string | undefined, values['from-python'] as string | undefined);
  const dataset = choiceFlag(values, 'dataset', DATASET_NAMES, 'cifar10') as DatasetName;
  const aug = defaultAugment(dataset);
  const dropPath = numFlag(values, 'drop-path', d.dropPath, 0);
  if (dropPath >= 1) throw new UsageError(`--drop-path must be below 1 (got ${dropPath})`);
  const channels = intFlag(values, 'channels', 36, 2);
  if (channels % 2) throw new UsageError(`--channels must be even (FactorizedReduce halves it), got ${channels}`);
  return {
    genotype, genotypeSource: source, layers: intFlag(values, 'layers', 20, 1), channels, dataset,
    style: choiceFlag(values, 'style', ['darts', 'bayesnas'] as const, 'darts'),
    seed: intFlag(values, 'seed', d.seed), batch: intFlag(values, 'batch', d.batch, 1), epochs: intFlag(values, 'epochs', d.epochs, 1),
    lr: numFlag(values, 'lr', d.lr, 0), lrMin: numFlag(values, 'lr-min', d.lrMin, 0), momentum: numFlag(values, 'momentum', d.momentum, 0),
    weightDecay: numFlag(values, 'weight-decay', d.weightDecay, 0), gradClip: numFlag(values, 'grad-clip', d.gradClip, 0),
    auxiliaryWeight: numFlag(values, 'auxiliary-weight', values.auxiliary ? 0.4 : 0, 0), dropPath,
    augment: { cropPad: intFlag(values, 'crop-pad', aug.cropPad), flip: values['no-flip'] ? false : aug.flip, cutout: intFlag(values, 'cutout', 0) },
    trainSize: numFlag(values, 'train-size', d.trainSize, 0), testSize: numFlag(values, 'test-size', d.testSize, 0),
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, FLAGS);
  if (values.help) { console.log(usage); return 0; }
  const resume = values.resume !== undefined;
  let cfg: RetrainConfig, runDir: string;
  if (resume) {
    runDir = path.resolve(String(values.resume));
    const cfgFile = path.join(runDir, 'config.json');
    if (!fs.existsSync(cfgFile)) throw new UsageError(`--resume: ${cfgFile} does not exist`);
    cfg = (JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as { config: RetrainConfig }).config;
  } else {
    cfg = await configFromFlags(values);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
    const gname = (cfg.genotype.name ?? path.basename(cfg.genotypeSource)).replace(/[^\w.-]+/g, '_');
    runDir = path.resolve(String(values['run-dir'] ?? path.join(PROJECT_ROOT, 'runs', `${stamp}-train-${gname}-${cfg.dataset}`)));
    if (fs.existsSync(path.join(runDir, 'config.json'))) throw new UsageError(`--run-dir ${runDir} already holds a run (use --resume to continue it, or another folder)`);
  }
  const engine = await initEngine();
  const quiet = !!values.json;
  const say = (s: string) => { if (!quiet) process.stderr.write(`${s}\n`); };
  let bar: Progress | null = null;
  let t0 = 0, doneEpochs = 0, first = 0;
  const result = await retrain(cfg, runDir, {
    onStart: (i) => {
      first = i.startEpoch;
      t0 = Date.now();
      say(`train: ${cfg.genotype.name ?? cfg.genotypeSource}, ${cfg.layers} cells, ${cfg.channels} channels, ${i.params.toLocaleString('en')} parameters${cfg.auxiliaryWeight ? ` (+ auxiliary head, weight ${cfg.auxiliaryWeight})` : ''}; ${cfg.dataset} ${i.trainImages} train / ${i.testImages} test images; backend ${engine.backend}; run folder ${runDir}${resume ? ` (resuming at epoch ${i.startEpoch + 1})` : ''}`);
    },
    onEpochStart: (e, steps) => { bar = progress(`epoch ${e + 1}/${cfg.epochs}`, steps, { quiet, fields: ['loss', 'acc', 'img_s'] }); },
    onStep: (step, m) => bar?.update(step, { loss: m.loss.toFixed(4), acc: m.acc.toFixed(3), img_s: m.imagesPerSecond.toFixed(0) }),
    onEpochEnd: (m) => {
      bar?.stop();
      doneEpochs++;
      const per = (Date.now() - t0) / 1000 / doneEpochs;
      const left = cfg.epochs - first - doneEpochs;
      say(`epoch ${m.epoch}: lr ${m.lr.toPrecision(3)}, drop-path ${m.dropPath.toFixed(3)} | train loss ${m.trainLoss.toFixed(4)} acc ${m.trainAcc.toFixed(4)} | test loss ${m.testLoss.toFixed(4)} acc ${m.testAcc.toFixed(4)} | ${m.imagesPerSecond.toFixed(0)} img/s | ETA ${left ? `${Math.round(per * left)} s` : 'done'}`);
    },
  }, resume);
  if (quiet) console.log(JSON.stringify(result, null, 2));
  else console.log(`done: ${result.epochs.length} epochs, test accuracy ${(100 * result.testAcc).toFixed(2)}% on ${result.testImages} images; ${result.params.toLocaleString('en')} parameters; results in ${runDir}`);
  return 0;
}
