// `bayesnas bench train`: one training epoch of an evaluation network in TypeScript and in PyTorch.
import fs from 'node:fs';
import path from 'node:path';
import { initEngine } from '../engine/index.js';
import { benchTrain } from '../bench/train.js';
import { intFlag, numFlag, parse } from './args.js';
import { progress } from './progress.js';

export const usage = `bayesnas bench train [options]

One training epoch of the evaluation network of a published genotype (CIFAR network, reduced size)
in TensorFlow.js and in PyTorch CPU (python-ref/bayesnas_ref/bench_train.py), alternating step by
step on the same shapes and recipe: CE + w·CE_aux, drop-path, gradient clip 5, SGD (lr 0.025,
momentum 0.9, wd 3e-4) over --images random images. Prints the median step time of each, the epoch
times, and the ratios tfjs/PyTorch.

  --genotype NAME        published genotype   [DARTS_V2]
  --layers N --C N       cells and initial channels   [8 16]
  --batch N --size N     batch of size x size x 3 images   [64 32]
  --images N             images in the epoch (steps = images / batch)   [640]
  --drop-path P          [0.2]
  --auxiliary-weight W   auxiliary head weight, 0 = no head   [0.4]
  --warmup N             untimed steps on each side first   [1]
  --threads N            PyTorch intra-op threads   [2]
  --seed N               [0]
  --no-pytorch           time TensorFlow.js only
  --out FILE             also write the JSON result to FILE
  --json                 print the result as JSON`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    genotype: { type: 'string' }, layers: { type: 'string' }, C: { type: 'string' }, batch: { type: 'string' }, size: { type: 'string' },
    images: { type: 'string' }, 'drop-path': { type: 'string' }, 'auxiliary-weight': { type: 'string' }, warmup: { type: 'string' },
    threads: { type: 'string' }, seed: { type: 'string' }, 'no-pytorch': { type: 'boolean' }, out: { type: 'string' },
  });
  if (values.help) { console.log(usage); return 0; }
  const engine = await initEngine();
  const o = {
    genotype: String(values.genotype ?? 'DARTS_V2'), layers: intFlag(values, 'layers', 8, 1), C: intFlag(values, 'C', 16, 2),
    batch: intFlag(values, 'batch', 64, 1), size: intFlag(values, 'size', 32, 8), images: intFlag(values, 'images', 640, 1),
    dropPath: numFlag(values, 'drop-path', 0.2, 0), auxiliaryWeight: numFlag(values, 'auxiliary-weight', 0.4, 0),
    warmup: intFlag(values, 'warmup', 1, 0), threads: intFlag(values, 'threads', 2, 1), seed: intFlag(values, 'seed', 0),
    pytorch: !values['no-pytorch'],
  };
  let bar: ReturnType<typeof progress> | null = null;
  const r = await benchTrain(o, (i, of) => { bar ??= progress('bench train', of, { quiet: !!values.json }); bar.update(i); });
  (bar as ReturnType<typeof progress> | null)?.stop();
  if (values.out) {
    fs.mkdirSync(path.dirname(path.resolve(String(values.out))), { recursive: true });
    fs.writeFileSync(String(values.out), `${JSON.stringify(r, null, 2)}\n`);
  }
  if (values.json) console.log(JSON.stringify(r, null, 2));
  else {
    console.log(`workload: ${r.workload}`);
    console.log(`tfjs (${engine.backend}${engine.tensorflowVersion ? ` TF ${engine.tensorflowVersion}` : ''}): median ${r.tfjs.medianMs.toFixed(0)} ms/step, epoch ${r.tfjs.epochSeconds.toFixed(1)} s, ${r.tfjs.imagesPerSecond.toFixed(1)} images/s, ${r.tfjs.params} params`);
    if (r.pytorch) {
      console.log(`pytorch ${r.pytorch.torch} (${r.pytorch.threads} threads): median ${r.pytorch.medianMs.toFixed(0)} ms/step, epoch ${r.pytorch.epochSeconds.toFixed(1)} s, ${r.pytorch.imagesPerSecond.toFixed(1)} images/s, ${r.pytorch.params} params`);
      console.log(`ratio tfjs/pytorch: ${r.ratio!.toFixed(2)} (median step), ${r.epochRatio!.toFixed(2)} (epoch)`);
    }
  }
  return 0;
}
