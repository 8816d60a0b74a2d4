// Supernet benchmark: training steps of the DARTS-space supernet (8 cells, C=16, batch 64) at a
// reduced input size, in TensorFlow.js and in PyTorch CPU (python-ref/bayesnas_ref/bench_supernet.py),
// same shapes, alternating step by step in one run; images per second of each and the time ratio.
import { engineInfo, tf } from '../engine/index.js';
import { Sgd } from '../engine/sgd.js';
import { PRESETS } from '../space/spaces.js';
import { buildSupernet } from '../space/supernet.js';
import { median, startPytorchServer } from './engine.js';
import { profileStep } from './profile.js';
import { randomNormalArray } from './util.js';

export interface SupernetBenchOptions {
  space: string; batch: number; size: number; C: number; layers: number; steps: number; warmup: number; threads: number; seed: number; pytorch: boolean;
  /** PyTorch's device: cpu (default) or cuda */
  torchDevice?: string;
  /** also profile one tfjs step by kernel (src/bench/profile.ts) */
  profile?: boolean;
}

export async function benchSupernet(o: SupernetBenchOptions, onStep?: (i: number) => void) {
  const space = { ...PRESETS[o.space], C: o.C, layers: o.layers };
  const net = buildSupernet(space, { seed: o.seed });
  const sgd = new Sgd(net.params.variables(), { lr: 0.025, momentum: 0.9, weightDecay: 3e-4 });
  const x = tf.tensor4d(randomNormalArray(o.batch * o.size * o.size * 3, o.seed), [o.batch, o.size, o.size, 3]);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: o.batch }, (_, i) => (i * 7 + o.seed) % 10), 'int32'), 10);
  const lossStep = () => sgd.step(() => tf.losses.softmaxCrossEntropy(labels, net.forward(x, { training: true })) as tf.Scalar);
  const step = async () => {   // the read waits for the device: the time covers the whole step on every backend
    const t0 = performance.now();
    const loss = lossStep();
    const v = (await loss.data())[0];
    loss.dispose();
    return { ms: performance.now() - t0, loss: v };
  };
  const py = o.pytorch ? await startPytorchServer('bayesnas_ref.bench_supernet', ['--space', o.space, '--batch', String(o.batch), '--size', String(o.size),
    '--C', String(o.C), '--layers', String(o.layers), '--threads', String(o.threads), '--seed', String(o.seed), '--device', o.torchDevice ?? 'cpu']) : null;
  try {
    for (let i = 0; i < o.warmup; i++) { await step(); if (py) await py.step(1); }
    const tfjsMs: number[] = [], torchMs: number[] = [];
    let lossLast = NaN;
    for (let i = 0; i < o.steps; i++) {
      const r = await step();
      tfjsMs.push(r.ms);
      lossLast = r.loss;
      if (py) torchMs.push(...(await py.step(1)).ms);
      onStep?.(i + 1);
    }
    const tm = median(tfjsMs), pm = py ? median(torchMs) : null;
    const profile = o.profile ? await profileStep(lossStep) : null;
    return {
      workload: `${o.space} supernet, ${o.layers} cells, C=${o.C}, batch ${o.batch} of ${o.size}x${o.size}x3, SGD step (lr 0.025, momentum 0.9, wd 3e-4)`,
      backend: engineInfo().backend, tensorflow: engineInfo().tensorflowVersion,
      tfjs: { stepsMs: tfjsMs, medianMs: tm, imagesPerSecond: (o.batch * 1000) / tm, params: net.params.count(), lossLast },
      pytorch: py ? { stepsMs: torchMs, medianMs: pm!, imagesPerSecond: (o.batch * 1000) / pm!, torch: String(py.info.torch), device: String(py.info.device ?? 'cpu'), params: Number(py.info.params) } : null,
      ratio: pm ? tm / pm : null,
      profile,
      options: o,
    };
  } finally {
    await py?.close();
    tf.dispose([x, labels]);
    sgd.dispose();
    net.dispose();
  }
}
