// Compression-round benchmark: one round = S penalised Adam steps + the weight-Hessian recursion over
// M batches + the γ/ω/C update of every group + pruning (threshold 0, so that every repeat does the
// same work) + F fine-tune steps, on random MNIST-shaped batches. tfjs and PyTorch
// (python-ref/bayesnas_ref/compress.py --serve) alternate round by round; medians and their ratio.
import { engineInfo, tf } from '../engine/index.js';
import { median, startPytorchServer } from '../bench/engine.js';
import { randomNormalArray } from '../bench/util.js';
import { CompressNet } from './model.js';
import { MODEL_PRESETS } from './spec.js';
import { pruneByGamma, updateGroups, weightHessians } from './bayes.js';
import { Trainer } from './run.js';

export interface CompressBenchOptions {
  model: string; trainSteps: number; finetuneSteps: number; hessianBatches: number; batch: number;
  repeats: number; warmup: number; threads: number; seed: number; lambda: number; pytorch: boolean;
}

export interface CompressBenchResult {
  workload: string;
  backend: string;
  tensorflow: string | null;
  tfjs: { roundsMs: number[]; medianMs: number; weights: number };
  pytorch: { roundsMs: number[]; medianMs: number; torch: string; threads: number; weights: number; ompWaitPolicy: string | undefined } | null;
  ratio: number | null;
  options: CompressBenchOptions;
}

export async function benchCompress(o: CompressBenchOptions, onRound?: (i: number) => void): Promise<CompressBenchResult> {
  const net = new CompressNet(MODEL_PRESETS[o.model], { grouping: 'neuron', seed: o.seed, input: [28, 28, 1], classes: 10 });
  const trainer = new Trainer(net, 0.05);
  const x = tf.tensor4d(randomNormalArray(o.batch * 784, o.seed), [o.batch, 28, 28, 1]);
  const y = tf.tensor1d(Array.from({ length: o.batch }, (_, i) => (i * 7 + o.seed) % 10), 'int32');
  const round = async () => {
    const t0 = performance.now();
    for (let i = 0; i < o.trainSteps; i++) await trainer.step(x, y, o.lambda);
    const H = await weightHessians(net, Array.from({ length: o.hessianBatches }, () => ({ x, y })));
    await updateGroups(net, H, o.lambda);
    pruneByGamma(net, 0);
    for (let i = 0; i < o.finetuneSteps; i++) await trainer.step(x, y, 0);
    return performance.now() - t0;
  };
  const args = ['--model', o.model, '--train-steps', String(o.trainSteps), '--finetune-steps', String(o.finetuneSteps), '--hessian-batches', String(o.hessianBatches),
    '--batch', String(o.batch), '--threads', String(o.threads), '--seed', String(o.seed), '--lambda', String(o.lambda)];
  // OpenMP's default spin-waiting makes PyTorch's threads collapse on a machine shared with other jobs
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';   // inherited by the PyTorch server only (TensorFlow is loaded already)
  const py = o.pytorch ? await startPytorchServer('bayesnas_ref.compress', args) : null;
  try {
    for (let i = 0; i < o.warmup; i++) { await round(); if (py) await py.step(1); onRound?.(i + 1); }
    const tfjsMs: number[] = [], torchMs: number[] = [];
    for (let i = 0; i < o.repeats; i++) {
      tfjsMs.push(await round());
      if (py) torchMs.push(...(await py.step(1)).ms);
      onRound?.(o.warmup + i + 1);
    }
    const info = engineInfo();
    const tm = median(tfjsMs), pm = py ? median(torchMs) : null;
    return {
      workload: `one compression round of ${o.model} (group neuron): ${o.trainSteps} SGD steps with the proximal group penalty + weight Hessian over ${o.hessianBatches} batches + γ/ω/C update + prune + ${o.finetuneSteps} fine-tune steps; batch ${o.batch} of 28x28x1`,
      backend: info.backend, tensorflow: info.tensorflowVersion,
      tfjs: { roundsMs: tfjsMs, medianMs: tm, weights: net.counts().totalWeights },
      pytorch: py ? { roundsMs: torchMs, medianMs: pm!, torch: String(py.info.torch), threads: Number(py.info.threads), weights: Number(py.info.weights), ompWaitPolicy: process.env.OMP_WAIT_POLICY } : null,
      ratio: pm ? tm / pm : null,
      options: o,
    };
  } finally {
    await py?.close();
    tf.dispose([x, y]);
    trainer.dispose();
    net.dispose();
  }
}
