// The compression loop (spec §8): K rounds of
//   train with the group penalty λ Σ_g ω_g ||W_g||₂ → weight-Hessian diagonals (spec §6.6) →
//   clean γ/ω/C update per group (spec §5.1) → prune the groups with γ < τ (and their dependents) →
//   fine-tune without the penalty,
// then export the physically smaller network, reload it and recompute its test error. Everything
// lands in a run folder: config.json, metrics.arrow + metrics.csv (one row per round, plot-ready),
// gamma/round-<r>.arrow (γ, ω, ||W_g||, Σh per group), summary.json and model/ (tfjs format).
import fs from 'node:fs';
import path from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { engineInfo, tf } from '../engine/index.js';
import { Sgd } from '../engine/sgd.js';
import { batches, countBatches, type Normalization, type Split } from '../data/index.js';
import { CompressNet, type Grouping } from './model.js';
import { pruneByGamma, updateGroups, weightHessians, type GroupRow } from './bayes.js';
import { loadModel, saveModel, toLayersModel } from './export.js';
import type { ModelSpec } from './spec.js';
import { copyCheckpoints, loadCompressCheckpoint, saveCompressCheckpoint } from './checkpoint.js';
import { codeVersion } from '../provenance.js';

export interface CompressConfig {
  model: ModelSpec;
  dataset: string;
  grouping: Grouping;
  lambda: number;
  /** one multiplier of λ per weight layer, in order (absent: 1 everywhere) */
  lambdaScale?: number[];
  /** one multiplier of λ per round, the last one kept for later rounds (absent: 1 every round); 0 trains without the penalty and updates no γ */
  lambdaRounds?: number[];
  rounds: number;
  /** epochs with the penalty per round */
  epochs: number;
  /** epochs without the penalty after each prune */
  finetuneEpochs: number;
  batch: number;
  lr: number;
  /** prune groups with γ below this */
  threshold: number;
  hessianBatches: number;
  hessianBatch: number;
  seed: number;
  /** how the penalty is optimised: proximal step after Adam (exact zeros) or inside Adam's loss */
  penalty: PenaltyMode;
  optimizer: OptimizerName;
  /** unpenalised epochs after the last round (reported as round K+1) */
  finalEpochs: number;
  /** learning rate of the final epochs (default lr/10) */
  finalLr?: number;
  /** 'constant' keeps finalLr; 'cosine' decays it per step to 0 over the final epochs */
  finalSchedule?: FinalSchedule;
  /** L2 weight decay added to the data gradient of every weight and bias (PyTorch's coupled form), every epoch */
  weightDecay?: number;
  /** weight decay of the final epochs (default: weightDecay) */
  finalWeightDecay?: number;
  /** training images held out as a validation split (the last ones; recorded so that a resume rebuilds it) */
  val?: number;
  /** input normalisation, recorded in config.json ('unit' = pixel/255) */
  normalize?: 'unit' | 'dataset';
}

export const DEFAULT_COMPRESS: Omit<CompressConfig, 'model' | 'dataset'> = {
  grouping: 'neuron', lambda: 1e-4, rounds: 3, epochs: 2, finetuneEpochs: 1, batch: 100, lr: 0.05, threshold: 1e-3,
  hessianBatches: 10, hessianBatch: 200, seed: 0, penalty: 'prox', optimizer: 'sgd', finalEpochs: 0,
};

/** `val`: a held-out part of the training set, never trained on; its error is reported every round. */
export interface CompressData { train: Split; test: Split; val?: Split; normalization?: Normalization; classes: number }

export interface RoundMetrics {
  round: number;
  architecture: string;
  weights: number;
  /** live weights of each weight layer (dense or conv) in order, e.g. "87+619+1726+185"; they sum to `weights` */
  layerWeights?: string;
  biases: number;
  ratio: number;
  testError: number;
  /** error on the held-out validation split (only when the run has one) */
  valError?: number;
  groupsPruned: number;
  trainLoss: number;
  secondsTrain: number;
  secondsHessian: number;
  secondsRound: number;
}

export interface CompressEvents {
  onPhase?(round: number, phase: 'train' | 'hessian' | 'finetune', steps: number): void;
  onStep?(done: number, loss: number): void;
  onRound?(m: RoundMetrics): void;
}

export interface CompressSummary {
  runDir: string | null;
  initial: { architecture: string; weights: number; biases: number };
  rounds: RoundMetrics[];
  final: RoundMetrics;
  exported: { dir: string; params: number; layers: string[]; testErrorReloaded: number; maxLogitDiff: number } | null;
  seconds: number;
}

/** Test error of a logits function over a split. */
export async function testError(predict: (x: tf.Tensor4D) => tf.Tensor, split: Split, norm?: Normalization): Promise<number> {
  let wrong = 0;
  for (const b of batches(split, { batchSize: 1000, normalization: norm })) {
    const w = tf.tidy(() => tf.sum(tf.notEqual(tf.argMax(predict(b.x), 1), b.y)));
    b.x.dispose(); b.y.dispose();
    wrong += (await w.data())[0];
    w.dispose();
  }
  return wrong / split.n;
}

export type PenaltyMode = 'prox' | 'loss';

export type OptimizerName = 'sgd' | 'adam';

export type FinalSchedule = 'constant' | 'cosine';

/** Learning rate of final step `t` of `T` (0-based): constant, or a half cosine from `lr` down to 0. */
export function finalLrAt(schedule: FinalSchedule, lr: number, t: number, T: number): number {
  return schedule === 'cosine' ? 0.5 * lr * (1 + Math.cos((Math.PI * t) / Math.max(1, T))) : lr;
}

export class Trainer {
  private readonly adam: tf.Optimizer | null = null;
  private readonly sgd: Sgd | null = null;
  private lrNow: number;
  private wdNow: number;
  /** the network's variables by name (Adam's weight decay reads them) */
  private readonly byName: Map<string, tf.Variable>;
  constructor(readonly net: CompressNet, readonly lr: number, readonly penaltyMode: PenaltyMode = 'prox', optimizer: OptimizerName = 'sgd',
    weightDecay = 0) {
    this.lrNow = lr;
    this.wdNow = weightDecay;
    this.byName = new Map(net.variables().map((w) => [w.name, w]));
    if (optimizer === 'adam') this.adam = tf.train.adam(lr);
    else this.sgd = new Sgd(net.variables(), { lr, momentum: 0.9, weightDecay });
  }
  /**
   * One step on the mean cross-entropy with the group penalty λ Σ ω_g ||W_g||₂ (λ > 0): 'prox' = an
   * optimiser step (SGD with momentum 0.9, or Adam) on the data term, then the penalty's proximal step
   * with step size lr (exact zeros); 'loss' = the penalty inside the optimiser's loss. Weight decay is
   * added to the gradients before the optimiser (inside Sgd; by hand for Adam). Returns the data loss
   * (plus the penalty in 'loss' mode).
   */
  async step(x: tf.Tensor, y: tf.Tensor1D, lambda: number): Promise<number> {
    const loss = tf.tidy(() => {
      const classes = this.net.layers[this.net.layers.length - 1].outUnits;
      const inLoss = lambda > 0 && this.penaltyMode === 'loss';
      const { value, grads } = tf.variableGrads(() => {
        const ce = tf.losses.softmaxCrossEntropy(tf.oneHot(y, classes), this.net.forward(x)) as tf.Scalar;
        return inLoss ? tf.add(ce, this.net.penalty(lambda)) as tf.Scalar : ce;
      }, this.net.variables());
      if (this.adam) {
        const wd = this.wdNow;
        this.adam.applyGradients(wd ? Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.add(g, tf.mul(this.byName.get(k)!, wd))])) : grads);
      } else this.sgd!.apply(grads);
      return value;
    });
    if (lambda > 0 && this.penaltyMode === 'prox') this.net.proxStep(lambda, this.lrNow);
    // read after the proximal step is queued: the loss is computed already, the step does not change it
    const v = (await loss.data())[0];
    loss.dispose();
    return v;
  }
  /**
   * Optimiser state for checkpoints, as copies: SGD's momentum buffers, or Adam's step count and
   * first and second moments (tfjs names them after the variables).
   */
  async state(): Promise<Array<{ name: string; tensor: tf.Tensor }>> {
    if (this.sgd) return this.sgd.state();
    const ws = await this.adam!.getWeights();
    return ws.map((w) => ({ name: w.name, tensor: w.tensor instanceof tf.Variable ? w.tensor.clone() : w.tensor }));
  }
  /** Restores `state()` (the caller keeps ownership of the tensors). */
  async restore(state: Array<{ name: string; tensor: tf.Tensor }>): Promise<void> {
    if (this.sgd) return this.sgd.restore(state);
    const vars = this.net.variables();
    if (state[0]?.name !== 'iter' || state.length !== 2 * vars.length + 1)
      throw new Error(`the checkpoint's optimiser state has ${state.length} tensors; Adam on this network needs its step count and ${2 * vars.length} moments`);
    // tfjs keeps the moments by position: all first moments, then all second ones, in variable order
    state.slice(1).forEach((s, i) => {
      const v = vars[i % vars.length];
      if (s.tensor.shape.join('x') !== v.shape.join('x')) throw new Error(`Adam moment '${s.name}': shape [${s.tensor.shape}], the variable has [${v.shape}]`);
    });
    await this.adam!.setWeights(state);
  }
  /** Sets the learning rate of the optimiser and of the proximal step. */
  setLr(lr: number): void {
    this.lrNow = lr;
    if (this.adam) (this.adam as unknown as { learningRate: number }).learningRate = lr; else this.sgd!.lr = lr;
  }
  /** Sets the weight decay (the final epochs may use their own). */
  setWeightDecay(wd: number): void {
    this.wdNow = wd;
    if (this.sgd) this.sgd.weightDecay = wd;
  }
  dispose(): void { this.adam?.dispose(); this.sgd?.dispose(); }
}

function writeArrow(file: string, cols: Record<string, unknown>, metadata: Record<string, string> = {}): void {
  const t = tableFromArrays(cols as Parameters<typeof tableFromArrays>[0]);
  for (const [k, v] of Object.entries(metadata)) t.schema.metadata.set(k, v);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, tableToIPC(t, 'file'));
}

export function writeGammaTable(file: string, round: number, rows: GroupRow[], prunedNow: Set<string>): void {
  writeArrow(file, {
    round: Int32Array.from(rows, () => round), layer: Int32Array.from(rows, (r) => r.layer), group: Int32Array.from(rows, (r) => r.group),
    kind: rows.map((r) => r.kind), members: Int32Array.from(rows, (r) => r.members), norm: Float64Array.from(rows, (r) => r.norm),
    h_sum: Float64Array.from(rows, (r) => r.hSum), gamma: Float64Array.from(rows, (r) => r.gamma), omega: Float64Array.from(rows, (r) => r.omega),
    alive_before: rows.map((r) => r.alive), pruned: rows.map((r) => prunedNow.has(`${r.layer}/${r.group}`)),
  }, { kind: 'compress-gamma', round: String(round) });
}

/** A metrics row's size fields: the pruned architecture, live weights in all and per weight layer
 * (one text field, "87+619+1726+185"), live biases and the compression ratio. */
function sizeOf(net: CompressNet): Pick<RoundMetrics, 'architecture' | 'weights' | 'layerWeights' | 'biases' | 'ratio'> {
  const c = net.counts();
  return {
    architecture: net.architecture(), weights: c.weights, layerWeights: c.perLayer.map((l) => l.weights).join('+'), biases: c.biases,
    ratio: c.totalWeights / Math.max(1, c.weights),
  };
}

function writeMetrics(dir: string, rows: RoundMetrics[]): void {
  // every key of any row (a branch of a run without a validation split adds valError later; a run resumed
  // from a checkpoint written before layerWeights was kept adds that); missing = NaN, or '' in a text column
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))] as Array<keyof RoundMetrics>;
  const text = (k: keyof RoundMetrics) => k === 'architecture' || k === 'layerWeights';
  const at = (r: RoundMetrics, k: keyof RoundMetrics) => r[k] ?? (text(k) ? '' : NaN);
  writeArrow(path.join(dir, 'metrics.arrow'), Object.fromEntries(keys.map((k) => [k, text(k) ? rows.map((r) => String(at(r, k))) : Float64Array.from(rows, (r) => at(r, k) as number)])));
  fs.writeFileSync(path.join(dir, 'metrics.csv'), [keys.join(','), ...rows.map((r) => keys.map((k) => at(r, k)).join(','))].join('\n') + '\n');
}

/** λ of round r (1-based): λ times the round's multiplier of `lambdaRounds`, the last multiplier for the rounds after the list. */
export function lambdaOfRound(cfg: Pick<CompressConfig, 'lambda' | 'lambdaRounds'>, r: number): number {
  const m = cfg.lambdaRounds;
  return m?.length ? cfg.lambda * m[Math.min(r, m.length) - 1] : cfg.lambda;
}

/**
 * Runs the whole compression; `runDir` null keeps everything in memory (tests). With a run folder, a
 * checkpoint is written after every round; `resumeFrom` (a run folder with a checkpoint: the
 * same as `runDir` to continue a run, another one to branch its final epochs into a new folder)
 * continues after the checkpoint's last round.
 */
export async function compress(cfg: CompressConfig, data: CompressData, runDir: string | null, ev: CompressEvents = {},
  opts: { resumeFrom?: string; fromRound?: number } = {}): Promise<CompressSummary> {
  const t0 = performance.now();
  const { train, test } = data;
  const net = new CompressNet(cfg.model, { grouping: cfg.grouping, seed: cfg.seed, input: [train.height, train.width, train.channels], classes: data.classes,
    lambdaScale: cfg.lambdaScale });
  const trainer = new Trainer(net, cfg.lr, cfg.penalty, cfg.optimizer, cfg.weightDecay ?? 0);
  const c0 = net.counts();
  const initial = { architecture: net.fullArchitecture(), weights: c0.weights, biases: c0.biases };
  let rounds: RoundMetrics[] = [];
  let epochCounter = 0, firstRound = 1;
  if (opts.resumeFrom) {
    const st = await loadCompressCheckpoint(opts.resumeFrom, net, trainer, opts.fromRound);
    rounds = st.rounds.filter((m) => m.round <= st.roundDone);
    epochCounter = st.epochCounter;
    firstRound = st.roundDone + 1;
  }
  const inPlace = !!runDir && !!opts.resumeFrom && path.resolve(opts.resumeFrom) === path.resolve(runDir);
  if (runDir && !inPlace) {
    fs.mkdirSync(runDir, { recursive: true });
    let engine: unknown = null;
    try { engine = engineInfo(); } catch { /* not initialised by a CLI */ }
    fs.writeFileSync(path.join(runDir, 'config.json'), JSON.stringify({ command: 'compress', config: cfg, engine, code: codeVersion(), train: train.n, test: test.n, createdAt: new Date().toISOString(),
      ...(opts.resumeFrom ? { resumedFrom: path.resolve(opts.resumeFrom), roundsFrom: firstRound - 1 } : {}) }, null, 2));
    if (opts.resumeFrom) {
      // the branch starts with the source's round tables, metrics and checkpoints up to the round it continues
      for (let r = 1; r < firstRound; r++) {
        const g = path.join(opts.resumeFrom, 'gamma', `round-${r}.arrow`);
        if (fs.existsSync(g)) fs.cpSync(g, path.join(runDir, 'gamma', `round-${r}.arrow`));
      }
      copyCheckpoints(opts.resumeFrom, runDir, firstRound - 1);
      if (rounds.length) writeMetrics(runDir, rounds);
    }
  }
  const checkpoints = !!runDir;
  const valErrorOf = async () => (data.val ? { valError: await testError((x) => net.forward(x), data.val, data.normalization) } : {});
  const steps = countBatches(train.n, cfg.batch, true);
  const epoch = async (round: number, phase: 'train' | 'finetune', lambda: number, lrAt?: (step: number) => number): Promise<number> => {
    ev.onPhase?.(round, phase, steps);
    let sum = 0, n = 0;
    for (const b of batches(train, { batchSize: cfg.batch, shuffle: true, seed: cfg.seed, epoch: epochCounter, dropLast: true, normalization: data.normalization })) {
      if (lrAt) trainer.setLr(lrAt(n));
      const l = await trainer.step(b.x, b.y, lambda);
      b.x.dispose(); b.y.dispose();
      sum += l; n++;
      ev.onStep?.(n, l);
    }
    epochCounter++;
    return n ? sum / n : NaN;
  };
  for (let r = firstRound; r <= cfg.rounds; r++) {
    const tr = performance.now();
    const lambda = lambdaOfRound(cfg, r);
    let trainLoss = NaN;
    for (let e = 0; e < cfg.epochs; e++) trainLoss = await epoch(r, 'train', lambda);
    const secondsTrain = (performance.now() - tr) / 1000;
    const th = performance.now();
    ev.onPhase?.(r, 'hessian', cfg.hessianBatches);
    const hb: Array<{ x: tf.Tensor4D; y: tf.Tensor1D }> = [];
    for (const b of batches(train, { batchSize: cfg.hessianBatch, shuffle: true, seed: cfg.seed + 7919, epoch: r, dropLast: true, normalization: data.normalization })) {
      hb.push(b);
      if (hb.length === cfg.hessianBatches) break;
    }
    const H = await weightHessians(net, hb);
    for (const b of hb) { b.x.dispose(); b.y.dispose(); }
    const rows = await updateGroups(net, H, lambda);
    const aliveBefore = new Set(rows.filter((x) => x.alive).map((x) => `${x.layer}/${x.group}`));
    const groupsPruned = pruneByGamma(net, cfg.threshold, rows);
    const masks = net.layers.map((l) => net.maskArray(l));
    const prunedNow = new Set([...aliveBefore].filter((k) => { const [li, g] = k.split('/').map(Number); return !net.groupAlive(net.layers[li], g, masks[li]); }));
    const secondsHessian = (performance.now() - th) / 1000;
    for (let e = 0; e < cfg.finetuneEpochs; e++) trainLoss = await epoch(r, 'finetune', 0);
    const m: RoundMetrics = {
      round: r, ...sizeOf(net),
      testError: await testError((x) => net.forward(x), test, data.normalization), ...(await valErrorOf()), groupsPruned, trainLoss, secondsTrain, secondsHessian,
      secondsRound: (performance.now() - tr) / 1000,
    };
    rounds.push(m);
    if (runDir) {
      writeGammaTable(path.join(runDir, 'gamma', `round-${r}.arrow`), r, rows, prunedNow);
      writeMetrics(runDir, rounds);
    }
    if (checkpoints) await saveCompressCheckpoint(runDir!, net, trainer, { roundDone: r, epochCounter, rounds });
    ev.onRound?.(m);
  }
  if (cfg.finalEpochs > 0) {
    const tr = performance.now();
    const lr = cfg.finalLr ?? cfg.lr / 10, total = cfg.finalEpochs * steps;
    trainer.setWeightDecay(cfg.finalWeightDecay ?? cfg.weightDecay ?? 0);
    let trainLoss = NaN;
    for (let e = 0; e < cfg.finalEpochs; e++) trainLoss = await epoch(cfg.rounds + 1, 'finetune', 0, (i) => finalLrAt(cfg.finalSchedule ?? 'constant', lr, e * steps + i, total));
    const m: RoundMetrics = {
      round: cfg.rounds + 1, ...sizeOf(net),
      testError: await testError((x) => net.forward(x), test, data.normalization), ...(await valErrorOf()), groupsPruned: 0, trainLoss, secondsTrain: (performance.now() - tr) / 1000,
      secondsHessian: 0, secondsRound: (performance.now() - tr) / 1000,
    };
    rounds.push(m);
    if (runDir) writeMetrics(runDir, rounds);
    ev.onRound?.(m);
  }
  let exported: CompressSummary['exported'] = null;
  if (runDir) {
    const { model, info } = await toLayersModel(net);
    const dir = path.join(runDir, 'model');
    await saveModel(model, dir);
    model.dispose();
    const loaded = await loadModel(dir);
    const testErrorReloaded = await testError((x) => loaded.predict(x) as tf.Tensor, test, data.normalization);
    // logits of the reloaded small model against the masked network on the first test batch
    const first = batches(test, { batchSize: Math.min(500, test.n), normalization: data.normalization }).next().value!;
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(loaded.predict(first.x) as tf.Tensor, net.forward(first.x)))));
    first.x.dispose(); first.y.dispose();
    const maxLogitDiff = (await diff.data())[0];
    diff.dispose();
    loaded.dispose();
    exported = { dir, params: info.params, layers: info.layers, testErrorReloaded, maxLogitDiff };
  }
  const summary: CompressSummary = { runDir, initial, rounds, final: rounds[rounds.length - 1], exported, seconds: (performance.now() - t0) / 1000 };
  if (runDir) {
    fs.writeFileSync(path.join(runDir, 'architecture.txt'), `${initial.architecture} -> ${summary.final.architecture}\n`);
    fs.writeFileSync(path.join(runDir, 'summary.json'), JSON.stringify(summary, null, 2));
  }
  trainer.dispose();
  net.dispose();
  return summary;
}
