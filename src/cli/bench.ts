// `bayesnas bench <workload>`: side-by-side speed measurements against PyTorch.
import fs from 'node:fs';
import path from 'node:path';
import { initEngine } from '../engine/index.js';
import { benchEngine } from '../bench/engine.js';
import { intFlag, parse, UsageError } from './args.js';
import { progress } from './progress.js';

export const summary = 'benchmarks against PyTorch, measured side by side (engine)';
export const usage = `bayesnas bench engine [options]

  engine   one training step (forward, backward, SGD update) of a supernet slice: batch of 32x32x3,
           stem to 16 channels, a stride-1 and a stride-2 mixed edge of the 7 DARTS ops each gated
           by a scalar switch, global pool, dense 10. TensorFlow.js (the selected backend) and
           PyTorch CPU (python-ref) alternate step by step in one run; medians and the ratio
           tfjs/PyTorch are printed (goal: at most 1.5).

Options:
  --batch N        batch size (32)
  --size N         input height and width (32)
  --steps N        timed steps per framework (15)
  --warmup N       untimed steps first (3)
  --threads N      PyTorch intra-op threads (2)
  --seed N         seed of weights and batch (0)
  --no-pytorch     time TensorFlow.js only
  --out FILE       also write the JSON result to FILE
  --json           print the result as JSON`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    batch: { type: 'string' }, size: { type: 'string' }, steps: { type: 'string' }, warmup: { type: 'string' },
    threads: { type: 'string' }, seed: { type: 'string' }, 'no-pytorch': { type: 'boolean' }, out: { type: 'string' },
  });
  if (values.help || positionals.length === 0) { console.log(usage); return values.help ? 0 : 2; }
  const what = positionals[0];
  if (what !== 'engine') throw new UsageError(`unknown benchmark '${what}' (available: engine)`);
  const engine = await initEngine();
  const o = {
    batch: intFlag(values, 'batch', 32, 1), size: intFlag(values, 'size', 32, 4), steps: intFlag(values, 'steps', 15, 1),
    warmup: intFlag(values, 'warmup', 3, 0), threads: intFlag(values, 'threads', 2, 1), seed: intFlag(values, 'seed', 0),
    pytorch: !values['no-pytorch'],
  };
  const bar = progress('bench engine', o.steps, { quiet: !!values.json });
  const r = await benchEngine(o, (i) => bar.update(i));
  bar.stop();
  if (values.out) {
    fs.mkdirSync(path.dirname(path.resolve(String(values.out))), { recursive: true });
    fs.writeFileSync(String(values.out), `${JSON.stringify(r, null, 2)}\n`);
  }
  if (values.json) {
    console.log(JSON.stringify(r, null, 2));
  } else {
    console.log(`workload: ${r.workload}`);
    console.log(`tfjs (${engine.backend}${engine.tensorflowVersion ? ` TF ${engine.tensorflowVersion}` : ''}): median ${r.tfjs.medianMs.toFixed(1)} ms/step over ${o.steps} steps, ${r.tfjs.params} params, loss ${r.tfjs.lossFirst.toFixed(4)} -> ${r.tfjs.lossLast.toFixed(4)}, ${r.tfjs.tensorsPerStep} tensors leaked per step`);
    if (r.pytorch) {
      console.log(`pytorch ${r.pytorch.torch} (${r.pytorch.threads} threads): median ${r.pytorch.medianMs.toFixed(1)} ms/step, ${r.pytorch.params} params`);
      console.log(`ratio tfjs/pytorch: ${r.ratio!.toFixed(2)} (goal <= 1.5)`);
    }
  }
  return 0;
}
