// Retraining the evaluation network of a genotype from scratch (spec §7.4; DARTS's train.py recipe
// by default): SGD with momentum and weight decay, cosine learning rate per epoch down to lrMin,
// gradient-norm clipping, drop-path probability ramped linearly (dropPath·epoch/epochs), optional
// auxiliary loss CE + w·CE_aux, DARTS augmentation (crop, flip, cutout). Each epoch ends with a test
// pass (BN running statistics, no auxiliary head) and a checkpoint (parameters, BN statistics,
// momentum buffers, metrics so far), so `resume` continues exactly at an epoch boundary: the batch
// order, the augmentation and the drop-path masks of an epoch depend only on (seed, epoch).
import fs from 'node:fs';
import path from 'node:path';
import { engineInfo, tf } from '../engine/index.js';
import { restoreFromRows, Sgd, stateRows } from '../engine/sgd.js';
import { batches, countBatches, deriveSeed, evaluateSplit, loadDataset, permutation, resolveSizes, Rng, takeIndices, type DatasetName, type Split } from '../data/index.js';
import { readTensorFile, writeTensorFile } from '../bridge/arrow.js';
import type { Genotype } from '../genotype/types.js';
import { buildEvalNet, describeEvalNet, type EvalNet } from './network.js';
import type { EvalStyle } from './ops.js';
import { codeVersion } from '../provenance.js';

export interface RetrainConfig {
  genotype: Genotype;
  /** where the genotype came from (name, file or module:NAME) */
  genotypeSource: string;
  layers: number;
  channels: number;
  /** 'darts' (default) or 'bayesnas' (the official BayesNAS evaluation network) */
  style?: EvalStyle;
  dataset: DatasetName;
  seed: number;
  batch: number;
  epochs: number;
  lr: number;
  lrMin: number;
  momentum: number;
  weightDecay: number;
  /** gradient-norm clip; 0 = off */
  gradClip: number;
  /** auxiliary head weight; 0 = no auxiliary head */
  auxiliaryWeight: number;
  /** final drop-path probability (ramped linearly over the epochs); 0 = off */
  dropPath: number;
  augment: { cropPad: number; flip: boolean; cutout: number };
  /** training images: fraction (<= 1) or count of the training set (1 = all) */
  trainSize: number;
  /** test images: fraction (<= 1) or count of the test set (1 = all) */
  testSize: number;
}

/** DARTS's CIFAR-10 retraining recipe (train.py), except the epoch count and batch size. */
export const DEFAULT_RETRAIN = {
  seed: 0, batch: 96, epochs: 600, lr: 0.025, lrMin: 0, momentum: 0.9, weightDecay: 3e-4, gradClip: 5,
  auxiliaryWeight: 0, dropPath: 0, trainSize: 1, testSize: 1,
};

/** Default augmentation per dataset: DARTS's crop 4 + flip on CIFAR-10; crop 2 (+ flip for Fashion-MNIST) on 28x28 images. */
export function defaultAugment(dataset: DatasetName): RetrainConfig['augment'] {
  if (dataset === 'cifar10') return { cropPad: 4, flip: true, cutout: 0 };
  return { cropPad: 2, flip: dataset === 'fashion-mnist', cutout: 0 };
}

export interface RetrainEpoch {
  epoch: number;
  lr: number;
  dropPath: number;
  trainLoss: number;
  trainAcc: number;
  testLoss: number;
  testAcc: number;
  seconds: number;
  imagesPerSecond: number;
}

export interface RetrainEvents {
  onStart?(info: { params: number; paramsAuxiliary: number; trainImages: number; testImages: number; startEpoch: number }): void;
  onEpochStart?(epoch: number, steps: number): void;
  onStep?(step: number, m: { loss: number; acc: number; imagesPerSecond: number }): void;
  onEpochEnd?(m: RetrainEpoch): void;
}

export interface RetrainResult {
  runDir: string;
  genotype: string | null;
  params: number;
  paramsAuxiliary: number;
  epochs: RetrainEpoch[];
  testAcc: number;
  testLoss: number;
  trainImages: number;
  testImages: number;
}

/** Cosine learning rate of epoch e (0-based): lrMin + ½(lr − lrMin)(1 + cos(πe/E)). */
export function retrainLr(cfg: Pick<RetrainConfig, 'lr' | 'lrMin' | 'epochs'>, epoch: number): number {
  return cfg.lrMin + 0.5 * (cfg.lr - cfg.lrMin) * (1 + Math.cos((Math.PI * epoch) / cfg.epochs));
}

/** Drop-path probability of epoch e (0-based): dropPath · e / E (DARTS's linear ramp). */
export function dropPathAt(cfg: Pick<RetrainConfig, 'dropPath' | 'epochs'>, epoch: number): number {
  return (cfg.dropPath * epoch) / cfg.epochs;
}

function subset(split: Split, size: number, seed: number): Split {
  const n = resolveSizes(split.n, { train: size }).train;
  if (n >= split.n) return split;
  return { ...takeIndices(split, permutation(split.n, new Rng(seed)).slice(0, n)), dataset: split.dataset };
}

/** Test loss and accuracy (eval-mode BN, no auxiliary head, no drop-path). */
export function evaluateEvalNet(net: EvalNet, split: Split, batchSize = 256): Promise<{ loss: number; acc: number }> {
  return evaluateSplit(split, { batchSize }, net.classes, (x) => net.forward(x, { training: false }).logits);
}

/**
 * Trains the evaluation network of `cfg.genotype` in `runDir` (config.json, metrics.jsonl,
 * checkpoint/, weights.arrow, result.json). With `resume`, continues the run there after its last
 * completed epoch.
 */
export async function retrain(cfg: RetrainConfig, runDir: string, events: RetrainEvents = {}, resume = false): Promise<RetrainResult> {
  fs.mkdirSync(runDir, { recursive: true });
  const data = loadDataset(cfg.dataset);
  const train = subset(data.train, cfg.trainSize, deriveSeed(cfg.seed, 11));
  const test = subset(data.test, cfg.testSize, deriveSeed(cfg.seed, 12));
  const net = buildEvalNet({
    genotype: cfg.genotype, C: cfg.channels, layers: cfg.layers, classes: data.classes.length, style: cfg.style ?? 'darts',
    inChannels: data.train.channels, auxiliary: cfg.auxiliaryWeight > 0, seed: cfg.seed,
  });
  const sgd = new Sgd(net.params.variables('weights'), { lr: cfg.lr, momentum: cfg.momentum, weightDecay: cfg.weightDecay, clipNorm: cfg.gradClip || undefined });
  const metricsFile = path.join(runDir, 'metrics.jsonl');
  const ck = path.join(runDir, 'checkpoint');
  const log = (o: object) => fs.appendFileSync(metricsFile, `${JSON.stringify(o)}\n`);
  const desc = describeEvalNet(net);
  try {
    let epochs: RetrainEpoch[] = [];
    let startEpoch = 0;
    if (resume) {
      const stateFile = path.join(ck, 'state.json');
      if (!fs.existsSync(stateFile)) throw new Error(`${runDir}: no checkpoint to resume from (checkpoint/state.json is missing)`);
      const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { epochDone: number; epochs: RetrainEpoch[] };
      net.params.load(path.join(ck, 'params.arrow'));
      const opt = readTensorFile(path.join(ck, 'optimizer.arrow')).rows;
      await restoreFromRows(sgd, opt);
      epochs = state.epochs;
      startEpoch = state.epochDone + 1;
      log({ type: 'resume', fromEpoch: startEpoch + 1, at: new Date().toISOString() });
    } else {
      fs.writeFileSync(path.join(runDir, 'config.json'), `${JSON.stringify({
        command: 'train', config: cfg, network: desc, engine: engineInfo(), code: codeVersion(), node: process.version, createdAt: new Date().toISOString(),
        images: { train: train.n, test: test.n, height: data.train.height, width: data.train.width, channels: data.train.channels },
      }, null, 2)}\n`);
      fs.writeFileSync(metricsFile, '');
    }
    events.onStart?.({ params: desc.params, paramsAuxiliary: desc.paramsAuxiliary, trainImages: train.n, testImages: test.n, startEpoch });
    const classes = net.classes;
    for (let epoch = startEpoch; epoch < cfg.epochs; epoch++) {
      const lr = retrainLr(cfg, epoch);
      sgd.lr = lr;
      const dp = dropPathAt(cfg, epoch);
      const rng = new Rng(deriveSeed(cfg.seed, 1000 + epoch));
      const random = () => rng.next();
      const steps = countBatches(train.n, cfg.batch, true);
      events.onEpochStart?.(epoch, steps);
      const augment = cfg.augment.cropPad || cfg.augment.flip || cfg.augment.cutout ? cfg.augment : false;
      const t0 = performance.now();
      let lossSum = 0, hits = 0, seen = 0, step = 0;
      for (const b of batches(train, { batchSize: cfg.batch, shuffle: true, seed: cfg.seed, epoch, augment, dropLast: true })) {
        const lh = tf.tidy(() => {
          let hitsT: tf.Tensor | null = null;
          const { value, grads } = tf.variableGrads(() => {
            const { logits, logitsAux } = net.forward(b.x, { training: true, dropPath: dp, random });
            hitsT = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), b.y), 'int32')));
            const labels = tf.oneHot(b.y, classes);
            const ce = tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
            return logitsAux ? tf.add(ce, tf.mul(cfg.auxiliaryWeight, tf.losses.softmaxCrossEntropy(labels, logitsAux))) as tf.Scalar : ce;
          }, sgd.vars);
          sgd.apply(grads);
          const hit = (hitsT as tf.Tensor | null)!;
          const r = tf.stack([value, tf.cast(hit, 'float32')]);   // loss and hits in one read (hits < 2^24: exact)
          hit.dispose();
          return r;
        });
        tf.dispose([b.x, b.y]);
        const [loss, h] = await lh.data();
        lh.dispose();
        if (!Number.isFinite(loss)) throw new Error(`loss became ${loss} at epoch ${epoch + 1}, step ${step + 1} (lr ${lr}); the last checkpoint in ${ck} is intact — lower --lr and resume`);
        lossSum += loss * b.size; hits += h; seen += b.size; step++;
        const ips = seen / ((performance.now() - t0) / 1000);
        events.onStep?.(step, { loss: lossSum / seen, acc: hits / seen, imagesPerSecond: ips });
        if (step % 20 === 0 || step === steps) log({ type: 'step', epoch: epoch + 1, step, loss, lr, dropPath: dp, imagesPerSecond: ips });
      }
      const seconds = (performance.now() - t0) / 1000;
      const t = await evaluateEvalNet(net, test);
      const m: RetrainEpoch = { epoch: epoch + 1, lr, dropPath: dp, trainLoss: lossSum / Math.max(seen, 1), trainAcc: hits / Math.max(seen, 1), testLoss: t.loss, testAcc: t.acc, seconds, imagesPerSecond: seen / seconds };
      log({ type: 'epoch', ...m });
      epochs.push(m);
      writeTensorFile(path.join(ck, 'params.arrow'), await net.params.rows(), { kind: 'evalnet-params' });
      writeTensorFile(path.join(ck, 'optimizer.arrow'), await stateRows(await sgd.state()), { kind: 'sgd-state' });
      const tmp = path.join(ck, 'state.json.tmp');
      fs.writeFileSync(tmp, JSON.stringify({ epochDone: epoch, epochs, savedAt: new Date().toISOString() }, null, 2));
      fs.renameSync(tmp, path.join(ck, 'state.json'));
      events.onEpochEnd?.(m);
    }
    writeTensorFile(path.join(runDir, 'weights.arrow'), await net.params.rows(), { kind: 'evalnet-weights', genotype: cfg.genotype.name ?? '' });
    const last = epochs.at(-1);
    const result: RetrainResult = {
      runDir, genotype: cfg.genotype.name ?? null, params: desc.params, paramsAuxiliary: desc.paramsAuxiliary, epochs,
      testAcc: last?.testAcc ?? NaN, testLoss: last?.testLoss ?? NaN, trainImages: train.n, testImages: test.n,
    };
    fs.writeFileSync(path.join(runDir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    sgd.dispose();
    net.dispose();
  }
}
