// `bayesnas compress`: structured compression of an ordinary network with the BayesNAS machinery
// (spec §8): group priors on neurons/filters/channels/weights, weight-Hessian diagonals, clean γ/ω/C
// updates, pruning by γ, fine-tuning; run folder and an exported smaller tfjs model.
// `bayesnas compress --bench`: wall time per compression round, tfjs vs PyTorch, alternating.
import fs from 'node:fs';
import path from 'node:path';
import { engineInfo, initEngine } from '../engine/index.js';
import { DATASET_NAMES, headOf, holdOut, loadDataset, UNIT_SCALE, type DatasetName, type Split } from '../data/index.js';
import { GROUPINGS } from '../compress/model.js';
import { loadModelSpec, weightLayerCount } from '../compress/spec.js';
import { compress, DEFAULT_COMPRESS, type CompressConfig } from '../compress/run.js';
import { SETTING_FLAGS, type SettingFlag } from '../compress/flags.js';
import { benchCompress } from '../compress/bench.js';
import { checkpointRounds } from '../compress/checkpoint.js';
import { findRuns, frontierFits, frontierTable, groupBySeed, markdownTables, readRun } from '../compress/table.js';
import { choiceFlag, intFlag, numFlag, parse, UsageError } from './args.js';
import { progress, type Progress } from './progress.js';

export const summary = 'network compression: group priors + weight Hessians prune neurons/filters of LeNet-style nets';
const D = DEFAULT_COMPRESS;
export const usage = `bayesnas compress --model lenet-300-100|lenet-5|FILE [options]
bayesnas compress --bench [bench options]
bayesnas compress --table RUN|FOLDER... [--at-weights W1,W2,...] [--json]

Each round (spec §8): train with the group penalty λ Σ_g ω_g ||W_g||₂ (SGD with momentum on the data
term followed by the penalty's proximal step, so whole groups reach exactly zero), compute the diagonal
weight Hessians by the forward-recorded recursion (spec §6.6; per sample, seed p(1−p), batch-mean
scale), update γ/ω/C per group by the clean rule (spec §5.1; h = H/λ), prune groups with γ < τ together
with what depends on them (a neuron's outgoing weights, a filter's input channel in the next layer),
fine-tune without the penalty. A group whose Hessian is exactly zero on every Hessian sample (a unit
that never fired there, or a pixel that is always 0) is pruned too: h = 0 makes ω = 0 and γ = ∞
(spec §5.4) although removing it changes none of those losses. Finally the physically smaller network is exported as a tfjs
LayersModel (run/model/), reloaded, and its test error recomputed.

  --model NAME|FILE   lenet-300-100, lenet-5 (Caffe variant), or a JSON file of dense/conv/maxpool/flatten layers
  --dataset NAME      mnist, fashion-mnist, cifar10   [mnist]
  --group KIND        neuron: dense input units + conv filters (Louizos et al.'s unit counts);
                      filter: fan-in groups everywhere; channel: fan-out groups everywhere;
                      weight: every weight alone   [${D.grouping}]
  --lambda L          penalty λ (on the batch-mean loss; the Hessian uses the same scale)   [${D.lambda}]
  --lambda-scale A,B,…  one multiplier of λ per weight layer (dense or conv), in order: layer l is
                      penalised, proximally shrunk and γ/ω-updated with λ·A_l (e.g. 2,1,1 prunes
                      the input pixels of lenet-300-100 harder; 0 leaves a layer unpenalised and
                      its groups unpruned, except those that never fired)   [1 everywhere]
  --lambda-rounds A,B,…  one multiplier of λ per round, the last one kept for later rounds: round r
                      trains and updates γ/ω with λ·A_r (e.g. 0.25,0.5,1 raises the penalty over
                      three rounds, so that the first prune is made by a better-trained network;
                      0 trains a round without the penalty and updates no γ)   [1 every round]
  --rounds K          rounds of train → Hessian → update → prune → fine-tune   [${D.rounds}]
  --epochs E          penalised epochs per round   [${D.epochs}]
  --finetune-epochs F unpenalised epochs after each prune   [${D.finetuneEpochs}]
  --final-epochs E    unpenalised epochs after the last round (reported as round K+1)   [${D.finalEpochs}]
  --final-lr X        their learning rate   [lr/10]
  --final-schedule constant|cosine   keep --final-lr, or decay it per step to 0 by a half cosine   [constant]
  --weight-decay W    L2 weight decay on every weight and bias, added to the data gradient   [0]
  --final-weight-decay W   the final epochs' weight decay   [--weight-decay]
  --val N             hold out the last N training images (after --train-size) as a validation split:
                      never trained on, its error is reported every round (valError) so that settings
                      can be chosen without the test set   [0 = none]
  --threshold T       prune groups with γ < T   [${D.threshold}]
  --batch N           batch size   [${D.batch}]
  --optimizer sgd|adam  SGD with momentum 0.9, or Adam   [${D.optimizer}]
  --lr X              learning rate   [${D.lr}]
  --penalty prox|loss prox: the optimiser's step on the data term, then the penalty's proximal step
                      (whole groups become exactly zero); loss: the penalty inside the optimiser's loss   [${D.penalty}]
  --hessian-batches M / --hessian-batch N   training batches for the Hessian   [${D.hessianBatches} / ${D.hessianBatch}]
  --normalize unit|dataset   inputs as pixel/255 (a blank background is exactly 0, so unused pixels get
                      no gradient and can be pruned) or the dataset's mean/std   [unit]
  --train-size N / --test-size N   use the first N samples (0 = all)   [0]
  --seed S            [${D.seed}]
  --out DIR           run folder   [runs/<date>-compress-<model>-<dataset>]
  --resume DIR        continue the run in DIR after its last finished round (a checkpoint is written after
                      every round, with the optimiser state; the final epochs run again from the last round).
                      The run's own settings apply; --rounds (more rounds than the checkpoint's),
                      --final-epochs, --final-lr, --final-schedule and --final-weight-decay may be changed, and with --out NEW
                      the rounds so far stay in DIR and the rest branches into NEW (a finished run can
                      only be branched)
  --from-round R      with --resume DIR --out NEW: branch from the checkpoint kept after round R instead of
                      the last one (every round's checkpoint is kept in checkpoint/round-<r>/); the branch
                      stops after round R (or runs up to --rounds) and then its final epochs
  --json              print the summary as JSON

--table: one row per finished run (a run folder, or every run folder inside FOLDER): the flags that
reproduce it, seed, pruned architecture, weights kept, ratio, reloaded test error, wall time; then,
for runs that differ only in --seed, mean ± sd over the seeds. Markdown, or --json.
--at-weights W1,W2,...: also fit test error = a + b·ln(weights) through all the runs of each model and
dataset (any λ, rounds or seed; pass the run folders to pool) and print the line's error ± its standard
error at each weight count, e.g. a published anchor's size (and the same for the validation error of
runs that held one out). Runs land at scattered sizes; the line compares them with an anchor at its size.

Bench options (--bench): one compression round on random MNIST-shaped data, tfjs and PyTorch
(python-ref, CPU) alternating, medians and their ratio:
  --model M (lenet-300-100)  --train-steps S (20)  --finetune-steps F (10)  --hessian-batches M (2)
  --batch N (100)  --repeats R (5)  --warmup W (1)  --threads T (2)  --no-pytorch`;

/** A comma-separated list of numbers; an empty or non-numeric entry is NaN, for the caller's check to name its flag. */
function numberList(raw: string): number[] {
  return raw.split(',').map((v) => (v.trim() === '' ? NaN : Number(v)));
}

/** A setting's value from its flag: its default when not given (undefined for optional settings). */
function settingFlag(values: Record<string, unknown>, f: SettingFlag): number | string | number[] | undefined {
  if (values[f.flag] === undefined && f.def === undefined) return undefined;
  if (f.kind === 'list') {
    const raw = String(values[f.flag]), list = numberList(raw);
    if (list.some((n) => !Number.isFinite(n) || n < f.min)) throw new UsageError(`--${f.flag} must be comma-separated numbers >= ${f.min} (got '${raw}')`);
    return list;
  }
  if (f.kind === 'choice') return choiceFlag(values, f.flag, f.choices, (f.def ?? f.choices[0]) as string);
  return (f.kind === 'int' ? intFlag : numFlag)(values, f.flag, f.def ?? 0, f.min);
}

/** The first `used` training images (0 = all), the last `val` of them held out as the validation split. */
function trainingImages(all: Split, used: number, val: number): { train: Split; held?: Split } {
  const base = used ? headOf(all, used) : all;
  if (!val) return { train: base };
  if (val >= base.n) throw new UsageError(`--val ${val}: the training set has only ${base.n} images (--val must leave some to train on)`);
  const { rest, held } = holdOut(base, val);
  return { train: rest, held };
}

function stamp(): string { return new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19); }

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...Object.fromEntries(SETTING_FLAGS.map((f) => [f.flag, { type: 'string' as const }])),
    model: { type: 'string' }, dataset: { type: 'string' }, 'train-size': { type: 'string' }, 'test-size': { type: 'string' },
    resume: { type: 'string' }, 'from-round': { type: 'string' }, out: { type: 'string' }, bench: { type: 'boolean' }, table: { type: 'boolean' }, 'at-weights': { type: 'string' },
    'train-steps': { type: 'string' }, 'finetune-steps': { type: 'string' }, repeats: { type: 'string' }, warmup: { type: 'string' }, threads: { type: 'string' }, 'no-pytorch': { type: 'boolean' },
  });
  if (values.help) { console.log(usage); return 0; }
  if (values.bench) return bench(values);
  if (values.table) return table(positionals, !!values.json, values['at-weights'] as string | undefined);
  if (values.resume !== undefined) return resume(values);
  if (!values.model) throw new UsageError('give --model lenet-300-100|lenet-5|FILE');
  let model;
  try { model = loadModelSpec(String(values.model)); } catch (e) { throw new UsageError((e as Error).message); }
  const dataset = choiceFlag(values, 'dataset', DATASET_NAMES, 'mnist') as DatasetName;
  const cfg = { model, dataset } as CompressConfig;
  for (const f of SETTING_FLAGS) {
    const v = settingFlag(values, f);
    if (v !== undefined) (cfg as unknown as Record<string, unknown>)[f.key] = v;
  }
  if (!cfg.val) delete cfg.val;   // no validation split: config.json has no `val`, as before the flag existed
  const weightLayers = weightLayerCount(model);
  if (cfg.lambdaScale && cfg.lambdaScale.length !== weightLayers) {
    throw new UsageError(`--lambda-scale: ${model.name} has ${weightLayers} weight layers, so it takes ${weightLayers} comma-separated multipliers (got ${cfg.lambdaScale.length})`);
  }
  await initEngine();
  const data = loadDataset(dataset);
  const trainSize = intFlag(values, 'train-size', 0, 0), testSize = intFlag(values, 'test-size', 0, 0);
  const { train, held } = trainingImages(data.train, trainSize, cfg.val ?? 0);
  const test = testSize ? headOf(data.test, testSize) : data.test;
  const runDir = path.resolve(String(values.out ?? path.join('runs', `${stamp()}-compress-${model.name}-${dataset}`)));
  if (fs.existsSync(path.join(runDir, 'config.json'))) throw new UsageError(`--out: ${runDir} already holds a run (--resume ${runDir} continues it; or give another folder)`);
  return execute(cfg, { train, test, val: held, classes: data.classes.length }, runDir, !!values.json, undefined);
}

/** `--resume DIR [--out NEW] [--final-…]`: the saved settings, data of the same sizes, the checkpoint. */
async function resume(values: Record<string, unknown>): Promise<number> {
  const from = path.resolve(String(values.resume));
  const changeable = SETTING_FLAGS.filter((f) => f.branch);
  const allowed = new Set(['resume', 'out', 'json', 'rounds', 'from-round', 'help', ...changeable.map((f) => f.flag)]);
  const extra = Object.keys(values).filter((k) => values[k] !== undefined && !allowed.has(k));
  if (extra.length) throw new UsageError(`--resume takes the run's own settings; only --rounds, --from-round, ${changeable.map((f) => `--${f.flag}`).join(', ')} and --out may be given (not ${extra.map((k) => `--${k}`).join(', ')})`);
  const cfgFile = path.join(from, 'config.json');
  if (!fs.existsSync(cfgFile)) throw new UsageError(`--resume: ${cfgFile} does not exist`);
  if (!fs.existsSync(path.join(from, 'checkpoint', 'state.json'))) throw new UsageError(`--resume: ${from} has no checkpoint (checkpoint/state.json; written after every round of an SGD run)`);
  const saved = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as { config: CompressConfig; train: number; test: number };
  const cfg: CompressConfig = { ...saved.config };
  let fromRound: number | undefined;
  if (values['from-round'] !== undefined) {
    if (values.out === undefined) throw new UsageError('--from-round branches a run: give --out NEW as well');
    const kept = checkpointRounds(from);
    fromRound = intFlag(values, 'from-round', 1, 1);
    if (!kept.includes(fromRound)) throw new UsageError(`--from-round: ${from} keeps no checkpoint of round ${fromRound} (${kept.length ? `rounds ${kept.join(', ')}` : 'no per-round checkpoints: --resume DIR --out NEW branches from its last round'})`);
    cfg.rounds = intFlag(values, 'rounds', fromRound, fromRound);   // by default the branch stops after that round
  } else if (values.rounds !== undefined) {
    const done = (JSON.parse(fs.readFileSync(path.join(from, 'checkpoint', 'state.json'), 'utf8')) as { roundDone: number }).roundDone;
    cfg.rounds = intFlag(values, 'rounds', cfg.rounds, done);
  }
  for (const f of changeable) if (values[f.flag] !== undefined) (cfg as unknown as Record<string, unknown>)[f.key] = settingFlag(values, f);
  const runDir = values.out !== undefined ? path.resolve(String(values.out)) : from;
  if (runDir === from && fs.existsSync(path.join(from, 'summary.json'))) throw new UsageError(`--resume: ${from} is a finished run; give --out NEW to branch its final epochs into a new folder`);
  if (runDir !== from && fs.existsSync(path.join(runDir, 'config.json'))) throw new UsageError(`--out: ${runDir} already holds a run`);
  await initEngine();
  const data = loadDataset(cfg.dataset as DatasetName);
  // the same images: the first `train` (+ `val` held out after them), the first `test`
  const { train, held } = trainingImages(data.train, saved.train + (cfg.val ?? 0), cfg.val ?? 0);
  const test = saved.test < data.test.n ? headOf(data.test, saved.test) : data.test;
  return execute(cfg, { train, test, val: held, classes: data.classes.length }, runDir, !!values.json, from, fromRound);
}

async function execute(cfg: CompressConfig, d: { train: Split; test: Split; val?: Split; classes: number }, runDir: string, quiet: boolean, resumeFrom: string | undefined,
  fromRound?: number): Promise<number> {
  const engine = engineInfo();   // initialised by the caller before it loaded the data
  const { model } = cfg, { train, test } = d;
  if (!quiet) console.error(`compress ${model.name} on ${cfg.dataset} (${train.n} train${d.val ? ` / ${d.val.n} validation` : ''} / ${test.n} test), group ${cfg.grouping}, λ ${cfg.lambda}${cfg.lambdaScale ? ` × ${cfg.lambdaScale.join(',')} per layer` : ''}${cfg.lambdaRounds ? ` × ${cfg.lambdaRounds.join(',')} per round` : ''}, τ ${cfg.threshold}, ${cfg.rounds} rounds, engine ${engine.backend} -> ${runDir}${resumeFrom ? ` (resuming from ${resumeFrom}${fromRound ? `, round ${fromRound}` : ''})` : ''}`);
  let bar: Progress | null = null;
  let elapsed = 0, done = 0;
  const result = await compress(cfg, { train, test, val: d.val, classes: d.classes, normalization: cfg.normalize === 'dataset' ? undefined : UNIT_SCALE }, runDir, {
    onPhase(r, phase, steps) { bar?.stop(); bar = progress(`round ${Math.min(r, cfg.rounds)}/${cfg.rounds} ${r > cfg.rounds ? 'final   ' : phase.padEnd(8)}`, steps, { quiet, fields: ['loss'] }); },
    onStep(done, loss) { bar?.update(done, { loss: loss.toFixed(4) }); },
    onRound(m) {
      bar?.stop(); bar = null;
      elapsed += m.secondsRound; done++;
      const left = m.round < cfg.rounds ? (elapsed / done) * (cfg.rounds - m.round) + (cfg.finalEpochs * elapsed) / (done * (cfg.epochs + cfg.finetuneEpochs) || 1) : 0;
      if (!quiet) console.error(`round ${m.round}: ${m.architecture}, ${m.weights} weights${m.layerWeights ? ` (${m.layerWeights})` : ''}, ${m.ratio.toFixed(1)}x fewer, test error ${(100 * m.testError).toFixed(2)}%${m.valError !== undefined ? `, validation error ${(100 * m.valError).toFixed(2)}%` : ''}, ${m.groupsPruned} groups pruned, ${m.secondsRound.toFixed(0)} s${left ? `; ETA of the remaining rounds about ${(left / 60).toFixed(1)} min` : ''}`);
    },
  }, { resumeFrom, fromRound });
  if (quiet) console.log(JSON.stringify(result, null, 2));
  else {
    const f = result.final, x = result.exported!;
    console.log(`${model.name} on ${cfg.dataset}: ${result.initial.architecture} -> ${f.architecture}`);
    console.log(`weights kept ${f.weights} of ${result.initial.weights}${f.layerWeights ? ` (${f.layerWeights} per layer)` : ''}, ${f.ratio.toFixed(1)}x fewer, test error ${(100 * f.testError).toFixed(2)}%${f.valError !== undefined ? `, validation error ${(100 * f.valError).toFixed(2)}%` : ''}`);
    console.log(`exported smaller model: ${x.params} parameters (${x.layers.join(', ')}) -> ${x.dir}; reloaded test error ${(100 * x.testErrorReloaded).toFixed(2)}%, max |logit diff| ${x.maxLogitDiff.toExponential(1)}`);
    console.log(`run folder ${runDir} (${result.seconds.toFixed(0)} s)`);
  }
  return 0;
}

async function table(paths: string[], json: boolean, atWeights?: string): Promise<number> {
  if (!paths.length) throw new UsageError('--table: give run folders (or folders of run folders)');
  const at = atWeights === undefined ? [] : numberList(atWeights);
  if (at.some((w) => !Number.isFinite(w) || w <= 0)) throw new UsageError(`--at-weights must be comma-separated weight counts > 0 (got '${atWeights}')`);
  let rows;
  try { rows = findRuns(paths).map(readRun); } catch (e) { throw new UsageError(`--table: ${(e as Error).message}`); }
  const groups = groupBySeed(rows);
  const fits = at.length ? frontierFits(rows, at) : undefined;
  if (json) console.log(JSON.stringify({ runs: rows, seedGroups: groups, ...(fits ? { frontier: fits } : {}) }, null, 2));
  else {
    console.log(markdownTables(rows, groups));
    if (fits) console.log(fits.length ? `\n${frontierTable(fits)}` : '\n(--at-weights: no model, dataset and kind of group has 3 runs at two sizes or more to fit)');
  }
  return 0;
}

async function bench(values: Record<string, unknown>): Promise<number> {
  const model = String(values.model ?? 'lenet-300-100');
  const o = {
    model, trainSteps: intFlag(values, 'train-steps', 20, 1), finetuneSteps: intFlag(values, 'finetune-steps', 10, 0),
    hessianBatches: intFlag(values, 'hessian-batches', 2, 1), batch: intFlag(values, 'batch', 100, 1), repeats: intFlag(values, 'repeats', 5, 1),
    warmup: intFlag(values, 'warmup', 1, 0), threads: intFlag(values, 'threads', 2, 1), seed: intFlag(values, 'seed', 0, 0),
    lambda: numFlag(values, 'lambda', 1e-4, 0), pytorch: !values['no-pytorch'],
  };
  if (!['lenet-300-100', 'lenet-5'].includes(model)) throw new UsageError('--bench: --model must be lenet-300-100 or lenet-5');
  await initEngine();
  const bar = progress('bench compress', o.warmup + o.repeats, { quiet: !!values.json });
  const r = await benchCompress(o, (i) => bar.update(i));
  bar.stop();
  const dir = path.resolve('runs', 'bench');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `compress-${model}-${stamp()}.json`), JSON.stringify(r, null, 2));
  if (values.json) console.log(JSON.stringify(r, null, 2));
  else {
    console.log(r.workload);
    console.log(`tfjs (${r.backend}${r.tensorflow ? ` ${r.tensorflow}` : ''}): median ${r.tfjs.medianMs.toFixed(0)} ms per round [${r.tfjs.roundsMs.map((v) => v.toFixed(0)).join(' ')}]`);
    if (r.pytorch) console.log(`PyTorch ${r.pytorch.torch} (${r.pytorch.threads} threads): median ${r.pytorch.medianMs.toFixed(0)} ms per round [${r.pytorch.roundsMs.map((v) => v.toFixed(0)).join(' ')}]`);
    if (r.ratio) console.log(`ratio tfjs / PyTorch: ${r.ratio.toFixed(2)}`);
  }
  return 0;
}
