// Training-epoch benchmark of the evaluation network: one epoch of DARTS_V2's CIFAR network at a
// reduced size (default 8 cells, 16 channels, auxiliary head 0.4, drop-path 0.2, batch 64 of
// 32x32x3, 640 random images = 10 steps) in TensorFlow.js and in PyTorch CPU
// (python-ref/bayesnas_ref/bench_train.py), same shapes and recipe (CE + 0.4·CE_aux, clip 5, SGD
// lr 0.025, momentum 0.9, wd 3e-4), alternating step by step; medians, epoch times and ratios.
// The PyTorch process gets OMP_WAIT_POLICY=PASSIVE unless the environment sets it: with OpenMP's
// default spin-waiting, 2 PyTorch threads on a busy 2-core machine were 5-10x slower per step.
import { engineInfo, tf } from '../engine/index.js';
import { Sgd } from '../engine/sgd.js';
import { publishedGenotype } from '../genotype/published.js';
import { Rng } from '../data/index.js';
import { buildEvalNet } from '../evalnet/network.js';
import { median, startPytorchServer } from './engine.js';
import { randomNormalArray } from './util.js';

export interface TrainBenchOptions {
  genotype: string; layers: number; C: number; batch: number; size: number; images: number;
  dropPath: number; auxiliaryWeight: number; warmup: number; threads: number; seed: number; pytorch: boolean;
}

export async function benchTrain(o: TrainBenchOptions, onStep?: (i: number, of: number) => void) {
  const genotype = publishedGenotype(o.genotype);
  const net = buildEvalNet({ genotype, C: o.C, layers: o.layers, auxiliary: o.auxiliaryWeight > 0, seed: o.seed });
  const sgd = new Sgd(net.params.variables('weights'), { lr: 0.025, momentum: 0.9, weightDecay: 3e-4, clipNorm: 5 });
  const stepsPerEpoch = Math.max(1, Math.floor(o.images / o.batch));
  const per = o.size * o.size * 3;
  const xs = randomNormalArray(stepsPerEpoch * o.batch * per, o.seed);
  const rng = new Rng(o.seed);
  const ys = Int32Array.from({ length: stepsPerEpoch * o.batch }, () => rng.int(10));
  const random = () => rng.next();
  let i = 0;
  const step = async () => {   // the read waits for the device: the time covers the whole step on every backend
    const k = i++ % stepsPerEpoch;
    const x = tf.tensor4d(xs.subarray(k * o.batch * per, (k + 1) * o.batch * per), [o.batch, o.size, o.size, 3]);
    const y = tf.oneHot(tf.tensor1d(ys.subarray(k * o.batch, (k + 1) * o.batch), 'int32'), 10);
    const t0 = performance.now();
    const loss = sgd.step(() => {
      const { logits, logitsAux } = net.forward(x, { training: true, dropPath: o.dropPath, random });
      const ce = tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
      return logitsAux ? tf.add(ce, tf.mul(o.auxiliaryWeight, tf.losses.softmaxCrossEntropy(y, logitsAux))) as tf.Scalar : ce;
    });
    const v = (await loss.data())[0];
    const ms = performance.now() - t0;
    tf.dispose([loss, x, y]);
    return { ms, loss: v };
  };
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';   // inherited by the PyTorch server only (TensorFlow is loaded already)
  const py = o.pytorch ? await startPytorchServer('bayesnas_ref.bench_train', ['--genotype', genotype.name ?? o.genotype, '--layers', String(o.layers),
    '--C', String(o.C), '--batch', String(o.batch), '--size', String(o.size), '--images', String(o.images), '--drop-path', String(o.dropPath),
    '--auxiliary-weight', String(o.auxiliaryWeight), '--threads', String(o.threads), '--seed', String(o.seed)]) : null;
  try {
    for (let w = 0; w < o.warmup; w++) { await step(); if (py) await py.step(1); }
    i = 0;
    const tfjsMs: number[] = [], torchMs: number[] = [];
    let lossLast = NaN, torchLoss: number | null = null;
    for (let s = 0; s < stepsPerEpoch; s++) {
      const r = await step();
      tfjsMs.push(r.ms);
      lossLast = r.loss;
      if (py) { const p = await py.step(1); torchMs.push(...p.ms); torchLoss = p.loss; }
      onStep?.(s + 1, stepsPerEpoch);
    }
    const c = net.count();
    const tm = median(tfjsMs), pm = py ? median(torchMs) : null;
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0) / 1000;
    return {
      workload: `one training epoch of ${genotype.name} (CIFAR network, ${o.layers} cells, ${o.C} channels, auxiliary ${o.auxiliaryWeight}, drop-path ${o.dropPath}): ${stepsPerEpoch} steps of batch ${o.batch} of ${o.size}x${o.size}x3, SGD lr 0.025 momentum 0.9 wd 3e-4, clip 5`,
      backend: engineInfo().backend, tensorflow: engineInfo().tensorflowVersion,
      tfjs: { stepsMs: tfjsMs, medianMs: tm, epochSeconds: sum(tfjsMs), imagesPerSecond: (o.batch * 1000) / tm, params: c.params, paramsAuxiliary: c.params + c.auxiliary, lossLast },
      pytorch: py ? { ompWaitPolicy: process.env.OMP_WAIT_POLICY, stepsMs: torchMs, medianMs: pm!, epochSeconds: sum(torchMs), imagesPerSecond: (o.batch * 1000) / pm!, torch: String(py.info.torch), threads: Number(py.info.threads), params: Number(py.info.params), paramsAuxiliary: Number(py.info.params_auxiliary), lossLast: torchLoss } : null,
      ratio: pm ? tm / pm : null,
      epochRatio: py ? sum(tfjsMs) / sum(torchMs) : null,
      options: o,
    };
  } finally {
    await py?.close();
    sgd.dispose();
    net.dispose();
  }
}
