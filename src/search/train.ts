// Supernet training on real data with the BayesNAS schedule (spec §4.2): warm-up epochs that train
// the weights only on the `train` split, then switch epochs that train weights and switches (two SGD
// optimisers; no weight decay on switches) on the disjoint `switch` split, with the group penalty
// λ·ω·||s_g||₂ over the cells of one type (spec §4.1; ω = 1 until the Bayesian update provides it).
// Each epoch ends with a validation pass (BN running statistics) and a checkpoint, so a run can be
// resumed exactly at an epoch boundary. Everything lands in a run folder.
import fs from 'node:fs';
import path from 'node:path';
import { engineInfo, tf } from '../engine/index.js';
import { restoreFromRows, Sgd, stateRows } from '../engine/sgd.js';
import { batches, countBatches, evaluateSplit, loadDataset, splitTrainingSet, type DatasetName } from '../data/index.js';
import { buildSupernet, type Supernet, type SupernetCtx } from '../space/supernet.js';
import type { SpaceSpec } from '../space/spaces.js';
import { readTensorFile, writeTensorFile, type TensorRow } from '../bridge/arrow.js';
import { codeVersion } from '../provenance.js';

export interface TrainConfig {
  space: SpaceSpec;
  dataset: DatasetName;
  seed: number;
  batch: number;
  warmupEpochs: number;
  switchEpochs: number;
  lr: number;
  lrSchedule: 'constant' | 'cosine';
  lrMin: number;
  momentum: number;
  weightDecay: number;
  switchLr: number;
  switchMomentum: number;
  lambdaOrigin: number;
  lambdaChild: number;
  gradClip: number;
  /** fractions (<= 1) or counts of the training set: warm-up `train`, `switch` epoch, `val` */
  sizes: { train: number; switch: number; val: number };
  augment: { cropPad: number; flip: boolean; cutout: number };
  /** zero-pad inputs to this size (0 = keep) and replicate to this many channels (0 = keep) */
  padTo: number;
  channels: number;
}

export const DEFAULT_CONFIG: Omit<TrainConfig, 'space' | 'dataset'> = {
  seed: 0, batch: 32, warmupEpochs: 1, switchEpochs: 1, lr: 0.05, lrSchedule: 'cosine', lrMin: 0.001,
  momentum: 0.9, weightDecay: 3e-4, switchLr: 0.1, switchMomentum: 0.9, lambdaOrigin: 0, lambdaChild: 0, gradClip: 5,
  sizes: { train: 0.1, switch: 0.8, val: 0.1 }, augment: { cropPad: 0, flip: false, cutout: 0 }, padTo: 0, channels: 0,
};

/** warm-up: weights only; switch: weights + switches (BayesNAS); arch: weights, with a strategy's architecture step (DARTS, SNAS) */
export type EpochPhase = 'warmup' | 'switch' | 'arch';

export interface EpochMetrics {
  epoch: number;
  phase: EpochPhase;
  trainLoss: number;
  trainAcc: number;
  valLoss: number;
  valAcc: number;
  imagesPerSecond: number;
  seconds: number;
  lr: number;
}

export interface TrainEvents {
  onEpochStart?(epoch: number, phase: EpochPhase, steps: number): void;
  onStep?(step: number, m: { loss: number; acc: number; imagesPerSecond: number; lr: number }): void;
  onEpochEnd?(m: EpochMetrics): void;
}

export interface TrainResult { runDir: string; epochs: EpochMetrics[]; params: number; switches: number; tensorsPerStep: number }

export const phaseOf = (cfg: TrainConfig, epoch: number) => (epoch < cfg.warmupEpochs ? 'warmup' as const : 'switch' as const);

/** Learning rate of epoch e (0-based) under the schedule over all epochs. */
export function learningRate(cfg: TrainConfig, epoch: number): number {
  const total = cfg.warmupEpochs + cfg.switchEpochs;
  if (cfg.lrSchedule === 'constant' || total <= 1) return cfg.lr;
  return cfg.lrMin + 0.5 * (cfg.lr - cfg.lrMin) * (1 + Math.cos((Math.PI * epoch) / total));
}

/** Group penalty Σ_T Σ_e λ_o ω ||s_{T,·,e}||₂ + λ_c Σ_o ω ||s_{T,·,e,o}||₂ with ω = 1 (spec §4.1). */
export function switchPenalty(net: Supernet, lambdaOrigin: number, lambdaChild: number, omega?: Omega): tf.Scalar {
  const terms: tf.Tensor[] = [];
  for (const type of ['normal', 'reduce'] as const) {
    const cells = net.cells.filter((c) => c.reduction === (type === 'reduce'));
    if (!cells.length) continue;
    const norm = (vs: tf.Tensor[]) => tf.sqrt(tf.add(tf.sum(tf.square(tf.stack(vs)), 0), 1e-12));
    if (lambdaOrigin) {
      const n = norm(cells.map((c) => c.origin));
      terms.push(tf.mul(lambdaOrigin, tf.sum(omega ? tf.mul(n, omega.origin.get(type)!) : n)));
    }
    if (lambdaChild) {
      const n = norm(cells.map((c) => c.child));
      terms.push(tf.mul(lambdaChild, tf.sum(omega ? tf.mul(n, omega.child.get(type)!) : n)));
    }
  }
  return (terms.length ? tf.addN(terms) : tf.scalar(0)) as tf.Scalar;
}

async function saveCheckpoint(dir: string, net: Supernet, opts: Sgd[], epochDone: number, extra: Record<string, unknown> = {}): Promise<void> {
  const ck = path.join(dir, 'checkpoint');
  writeTensorFile(path.join(ck, 'params.arrow'), await net.params.rows(), { kind: 'supernet-params' });
  const optRows: TensorRow[] = [];
  for (const [i, o] of opts.entries()) optRows.push(...await stateRows(await o.state(), `${i}/`));
  writeTensorFile(path.join(ck, 'optimizer.arrow'), optRows, { kind: 'sgd-state' });
  const tmp = path.join(ck, 'state.json.tmp');
  fs.writeFileSync(tmp, JSON.stringify({ ...extra, epochDone, savedAt: new Date().toISOString() }, null, 2));
  fs.renameSync(tmp, path.join(ck, 'state.json'));
}

async function loadCheckpoint(dir: string, net: Supernet, opts: Sgd[]): Promise<{ epochDone: number } & Record<string, unknown>> {
  const ck = path.join(dir, 'checkpoint');
  const stateFile = path.join(ck, 'state.json');
  if (!fs.existsSync(stateFile)) throw new Error(`${dir}: no checkpoint to resume from (checkpoint/state.json is missing)`);
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { epochDone: number } & Record<string, unknown>;
  net.params.load(path.join(ck, 'params.arrow'));
  const { rows } = readTensorFile(path.join(ck, 'optimizer.arrow'));
  for (const [i, o] of opts.entries()) await restoreFromRows(o, rows, `${i}/`);
  return state;
}

export type Omega = { origin: Map<string, tf.Tensor>; child: Map<string, tf.Tensor> };

/**
 * What a search strategy adds to an `arch` epoch (src/search/baselines.ts): the switches the
 * forward reads (called inside each step's tidy), extra variables trained by the same loss gradient
 * (SNAS's α), and a step run before each weight step (DARTS's α step on the other split).
 */
export interface EpochHooks {
  switches?(step: number): SupernetCtx['switches'];
  jointVars?: tf.Variable[];
  applyJoint?(grads: tf.NamedTensorMap): void;
  beforeStep?(step: number): void;
  /** switches of the validation pass */
  evalSwitches?(): SupernetCtx['switches'];
}

/**
 * Everything one training run holds: data splits, supernet, the two optimisers, the metrics log.
 * `runEpoch` trains one epoch of a phase (with the group penalty weighted by ω in switch epochs).
 */
export class TrainingSession {
  readonly data;
  readonly splits;
  readonly net: Supernet;
  readonly wOpt: Sgd;
  readonly sOpt: Sgd;
  readonly metricsFile: string;
  tensorsPerStep = 0;

  constructor(readonly cfg: TrainConfig, readonly runDir: string) {
    fs.mkdirSync(runDir, { recursive: true });
    this.data = loadDataset(cfg.dataset);
    this.splits = splitTrainingSet(this.data.train, { seed: cfg.seed, sizes: cfg.sizes });
    if (!this.splits.train.n && cfg.warmupEpochs) throw new Error('the warm-up split is empty: raise --train-size');
    if (!this.splits.switch.n && cfg.switchEpochs) throw new Error('the switch split is empty: raise --switch-size');
    this.net = buildSupernet(cfg.space, { classes: this.data.classes.length, inChannels: cfg.channels || this.data.train.channels, seed: cfg.seed });
    // the weights' gradient norm is clipped (DARTS: 5); switches are not clipped
    this.wOpt = new Sgd(this.net.params.variables('weights'), { lr: cfg.lr, momentum: cfg.momentum, weightDecay: cfg.weightDecay, clipNorm: cfg.gradClip });
    this.sOpt = new Sgd(this.net.params.variables('switches'), { lr: cfg.switchLr, momentum: cfg.switchMomentum, weightDecay: 0 });
    this.metricsFile = path.join(runDir, 'metrics.jsonl');
  }

  /** Writes config.json (every setting, engine, split sizes) and starts an empty metrics log. */
  start(command: string, extra: object = {}): void {
    fs.writeFileSync(path.join(this.runDir, 'config.json'), `${JSON.stringify({
      command, config: this.cfg, ...extra, engine: engineInfo(), code: codeVersion(), node: process.version, createdAt: new Date().toISOString(),
      splitSizes: { train: this.splits.train.n, switch: this.splits.switch.n, val: this.splits.val.n, test: this.data.test.n },
      params: this.net.params.count('weights'), switches: this.net.params.count('switches'),
    }, null, 2)}\n`);
    fs.writeFileSync(this.metricsFile, '');
  }

  log(o: object): void { fs.appendFileSync(this.metricsFile, `${JSON.stringify(o)}\n`); }

  async save(epochDone: number, extra: Record<string, unknown> = {}): Promise<void> { await saveCheckpoint(this.runDir, this.net, [this.wOpt, this.sOpt], epochDone, extra); }

  async restore(): Promise<{ epochDone: number } & Record<string, unknown>> { return loadCheckpoint(this.runDir, this.net, [this.wOpt, this.sOpt]); }

  /** Validation loss and accuracy (BN running statistics). */
  evaluate(hooks?: EpochHooks): Promise<{ loss: number; acc: number }> {
    const { cfg, net } = this;
    return evaluateSplit(this.splits.val, { batchSize: Math.max(cfg.batch, 64), padTo: cfg.padTo || undefined, channels: cfg.channels || undefined },
      net.classes, (x) => net.forward(x, { training: false, switches: hooks?.evalSwitches?.() }));
  }

  /** One epoch (0-based index `epoch` in the learning-rate schedule) of `phase`. */
  async runEpoch(epoch: number, phase: EpochPhase, events: TrainEvents = {}, omega?: Omega, mask?: Map<tf.Variable, tf.Tensor>, hooks: EpochHooks = {}): Promise<EpochMetrics> {
    const { cfg, net, wOpt, sOpt } = this;
    const split = phase === 'warmup' ? this.splits.train : this.splits.switch;
    const lr = learningRate(cfg, epoch);
    wOpt.lr = lr;
    const vars = phase === 'switch' ? [...wOpt.vars, ...sOpt.vars] : [...wOpt.vars, ...(phase === 'arch' ? hooks.jointVars ?? [] : [])];
    const steps = countBatches(split.n, cfg.batch, true);
    events.onEpochStart?.(epoch, phase, steps);
    const augment = cfg.augment.cropPad || cfg.augment.flip || (cfg.augment.cutout && phase === 'warmup')
      ? { cropPad: cfg.augment.cropPad, flip: cfg.augment.flip, cutout: phase === 'warmup' ? cfg.augment.cutout : 0 } : false;
    const penalty = phase === 'switch' && (cfg.lambdaOrigin || cfg.lambdaChild);
    const t0 = performance.now();
    let lossSum = 0, hits = 0, seen = 0, step = 0, countAfterFirst = -1;
    for (const b of batches(split, { batchSize: cfg.batch, shuffle: true, seed: cfg.seed, epoch, augment, dropLast: true, padTo: cfg.padTo || undefined, channels: cfg.channels || undefined })) {
      let hitsT: tf.Tensor | null = null;
      if (phase === 'arch') hooks.beforeStep?.(step);
      const lossT = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          // inside the gradient scope: SNAS's α gets its gradient through the sampled switches
          const switches = phase === 'arch' ? hooks.switches?.(step) : undefined;
          const logits = net.forward(b.x, { training: true, switches });
          hitsT = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), b.y), 'float32')));
          const ce = tf.losses.softmaxCrossEntropy(tf.oneHot(b.y, net.classes), logits) as tf.Scalar;
          return penalty ? tf.add(ce, switchPenalty(net, cfg.lambdaOrigin, cfg.lambdaChild, omega)) as tf.Scalar : ce;
        }, vars);
        wOpt.apply(grads);
        if (phase === 'arch') hooks.applyJoint?.(grads);
        if (phase === 'switch') {
          sOpt.apply(grads);
          // pruned switches stay at exactly zero
          if (mask) for (const [v, m] of mask) v.assign(tf.mul(v, m));
        }
        return tf.stack([value, (hitsT as tf.Tensor | null) ?? tf.scalar(0)]);
      });
      (hitsT as tf.Tensor | null)?.dispose();
      tf.dispose([b.x, b.y]);
      const [loss, stepHits] = await lossT.data();   // one read per step: the NaN check below needs it
      lossT.dispose();
      hits += stepHits;
      if (!Number.isFinite(loss)) {
        throw new Error(`loss became ${loss} at epoch ${epoch + 1}, step ${step + 1} (lr ${lr}); the last checkpoint in ${this.runDir}/checkpoint is intact — lower --lr and resume`);
      }
      lossSum += loss * b.size; seen += b.size; step++;
      if (step === 1) countAfterFirst = tf.memory().numTensors;
      if (step === steps) this.tensorsPerStep = steps > 1 ? (tf.memory().numTensors - countAfterFirst) / (steps - 1) : 0;
      const ips = seen / ((performance.now() - t0) / 1000);
      events.onStep?.(step, { loss: lossSum / seen, acc: hits / Math.max(seen, 1), imagesPerSecond: ips, lr });
      if (step % 20 === 0 || step === steps) this.log({ type: 'step', epoch: epoch + 1, phase, step, loss, lr, imagesPerSecond: ips });
    }
    const seconds = (performance.now() - t0) / 1000;
    const val = await this.evaluate(phase === 'arch' ? hooks : undefined);
    const m: EpochMetrics = { epoch: epoch + 1, phase, trainLoss: lossSum / Math.max(seen, 1), trainAcc: hits / Math.max(seen, 1), valLoss: val.loss, valAcc: val.acc, imagesPerSecond: seen / seconds, seconds, lr };
    this.log({ type: 'epoch', ...m });
    return m;
  }

  /** Final weights and switches as Arrow tables in the run folder. */
  async saveResults(): Promise<void> {
    const { net, cfg } = this;
    writeTensorFile(path.join(this.runDir, 'weights.arrow'), (await net.params.rows()).filter((r) => r.group !== 'switches'), { kind: 'supernet-weights', space: cfg.space.name });
    const rows: TensorRow[] = [];
    for (const c of net.cells) {
      const group = c.reduction ? 'reduce' : 'normal';
      rows.push({ name: `cells.${c.index}.switch_origin`, group, shape: c.origin.shape, data: await c.origin.data() as Float32Array },
        { name: `cells.${c.index}.switch_child`, group, shape: c.child.shape, data: await c.child.data() as Float32Array });
    }
    writeTensorFile(path.join(this.runDir, 'switches.arrow'), rows, { kind: 'switches', ops: cfg.space.ops.join(',') });
  }

  dispose(): void {
    this.wOpt.dispose();
    this.sOpt.dispose();
    this.net.dispose();
  }
}

/**
 * Trains a supernet. With `resume`, `runDir` must hold a previous run's config.json and checkpoint;
 * training continues after the last completed epoch.
 */
export async function trainSupernet(cfg: TrainConfig, runDir: string, events: TrainEvents = {}, resume = false): Promise<TrainResult> {
  const s = new TrainingSession(cfg, runDir);
  try {
    const startEpoch = resume ? (await s.restore()).epochDone + 1 : (s.start('supernet train'), 0);
    const epochs: EpochMetrics[] = [];
    for (let epoch = startEpoch; epoch < cfg.warmupEpochs + cfg.switchEpochs; epoch++) {
      const m = await s.runEpoch(epoch, phaseOf(cfg, epoch), events);
      epochs.push(m);
      await s.save(epoch);
      events.onEpochEnd?.(m);
    }
    await s.saveResults();
    return { runDir, epochs, params: s.net.params.count('weights'), switches: s.net.params.count('switches'), tensorsPerStep: s.tensorsPerStep };
  } finally {
    s.dispose();
  }
}
