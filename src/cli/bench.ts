// `bayesnas bench <workload>`: side-by-side speed measurements against PyTorch.
import fs from 'node:fs';
import path from 'node:path';
import { initEngine } from '../engine/index.js';
import { benchEngine } from '../bench/engine.js';
import { benchSupernet } from '../bench/supernet.js';
import { benchHessian } from '../bench/hessian.js';
import { benchBridge } from '../bench/bridge.js';
import { choiceFlag, intFlag, parse, UsageError, type Values } from './args.js';
import { progress } from './progress.js';
import { profileTable } from '../bench/profile.js';

export const summary = 'benchmarks measured side by side (engine, supernet, hessian, bridge)';
export const usage = `bayesnas bench engine|supernet|hessian|search|train|bridge|suite [options]

  engine   one training step (forward, backward, SGD update) of a supernet slice: batch of 32x32x3,
           stem to 16 channels, a stride-1 and a stride-2 mixed edge of the 7 DARTS ops each gated
           by a scalar switch, global pool, dense 10. TensorFlow.js (the selected backend) and
           PyTorch CPU (python-ref) alternate step by step in one run; medians and the ratio
           tfjs/PyTorch are printed (goal: at most 1.5).
  supernet training steps of the DARTS-space supernet (8 cells, C=16, batch 64) at a reduced input
           size (16x16x3), tfjs vs the same network in PyTorch CPU, alternating; images per second
           of each and the ratio of step times (goal: at most 1.5).
  hessian  the diagonal switch-Hessian pass vs one ordinary forward+backward pass of the same
           supernet (default: bayesnas space, 8 cells, C=16, batch 32 of 16x16x3), alternating;
           medians and their ratio (goal: at most 2); and, interleaved, the exact diagonal of the
           same network's switch Hessian by double-backward HVPs in PyTorch (--hvp-switches per
           step, default 16, scaled to all switches) and python-ref's recursion: the speed-up.
  search   the whole default search (\`npm start\`'s settings) in TypeScript and the same schedule in
           PyTorch (python-ref) on the same splits, interleaved phase by phase; seconds per phase
           (warm-up, switch epochs, Hessian, update, derivation). \`bayesnas bench search --help\`.
  train    one training epoch of DARTS_V2's evaluation network at a reduced size (8 cells, C=16,
           auxiliary head, drop-path, batch 64 of 32x32x3), tfjs vs PyTorch CPU, alternating step by
           step; medians, epoch times and their ratio. \`bayesnas bench train --help\`.
  suite    engine, supernet (with a per-kernel profile) and hessian in one run, one summary table:
           the GPU comparison (webgpu against PyTorch CUDA). \`bayesnas bench suite --help\`.
  bridge   a pythonia round trip (median of --calls), and a float32 tensor moved TypeScript →
           Python → TypeScript as an Arrow IPC file (--mb, default 100) and as a plain list
           through pythonia (--list-mb, default 10; lists are slow), medians of --repeats.

Options:
  --batch N        batch size (engine 32, supernet 64)
  --size N         input height and width (engine 32, supernet 16)
  --space NAME     supernet: darts | bayesnas (darts)
  --C N --layers N supernet: channels and cells (16, 8)
  --steps N        timed steps per framework (15)
  --warmup N       untimed steps first (3)
  --threads N      PyTorch intra-op threads (2)
  --seed N         seed of weights and batch (0)
  --hvp-switches N hessian: switches per timed batch of exact PyTorch HVPs (16)
  --torch-device D PyTorch's device: cpu or cuda (cpu); with cuda the steps are timed after a sync
  --profile        supernet: also time one TensorFlow.js step kernel by kernel (tf.profile)
  --no-pytorch     time TensorFlow.js only
  --out FILE       also write the JSON result to FILE
  --json           print the result as JSON`;

export async function run(argv: string[]): Promise<number> {
  if (argv[0] === 'search') return (await import('./bench-search.js')).run(argv.slice(1));
  if (argv[0] === 'train') return (await import('./bench-train.js')).run(argv.slice(1));
  if (argv[0] === 'suite') return (await import('./bench-suite.js')).run(argv.slice(1));
  const { values, positionals } = parse(argv, {
    batch: { type: 'string' }, size: { type: 'string' }, steps: { type: 'string' }, warmup: { type: 'string' },
    threads: { type: 'string' }, seed: { type: 'string' }, 'no-pytorch': { type: 'boolean' }, out: { type: 'string' },
    space: { type: 'string' }, C: { type: 'string' }, layers: { type: 'string' },
    'hvp-switches': { type: 'string' }, 'torch-device': { type: 'string' }, profile: { type: 'boolean' }, calls: { type: 'string' }, mb: { type: 'string' }, 'list-mb': { type: 'string' }, repeats: { type: 'string' },
  });
  if (values.help || positionals.length === 0) { console.log(usage); return values.help ? 0 : 2; }
  const what = positionals[0];
  if (!['engine', 'supernet', 'hessian', 'bridge'].includes(what)) throw new UsageError(`unknown benchmark '${what}' (available: engine, supernet, hessian, search, train, bridge, suite)`);
  if (what === 'bridge') {
    const r = await benchBridge({ calls: intFlag(values, 'calls', 1000, 1), arrowMB: intFlag(values, 'mb', 100, 1), listMB: intFlag(values, 'list-mb', 10, 1), repeats: intFlag(values, 'repeats', 3, 1) });
    writeOut(values, r);
    if (values.json) console.log(JSON.stringify(r, null, 2));
    else {
      console.log(`pythonia round trip: median ${r.roundTripMs.median.toFixed(3)} ms over ${r.roundTripMs.calls} calls`);
      console.log(`Arrow IPC, ${r.arrow.MB} MB: TS→Python ${r.arrow.toPythonMs.toFixed(0)} ms (${r.arrow.toPythonMBps.toFixed(0)} MB/s), Python→TS ${r.arrow.fromPythonMs.toFixed(0)} ms (${r.arrow.fromPythonMBps.toFixed(0)} MB/s)`);
      console.log(`plain list, ${r.list.MB} MB: TS→Python ${r.list.toPythonMs.toFixed(0)} ms (${r.list.toPythonMBps.toFixed(1)} MB/s), Python→TS ${r.list.fromPythonMs.toFixed(0)} ms (${r.list.fromPythonMBps.toFixed(1)} MB/s)`);
    }
    return 0;
  }
  const engine = await initEngine();
  if (what === 'supernet') return runSupernet(values, engine.backend);
  if (what === 'hessian') return runHessian(values);
  const o = {
    batch: intFlag(values, 'batch', 32, 1), size: intFlag(values, 'size', 32, 4), steps: intFlag(values, 'steps', 15, 1),
    warmup: intFlag(values, 'warmup', 3, 0), threads: intFlag(values, 'threads', 2, 1), seed: intFlag(values, 'seed', 0),
    pytorch: !values['no-pytorch'], torchDevice: torchDevice(values),
  };
  const bar = progress('bench engine', o.steps, { quiet: !!values.json });
  const r = await benchEngine(o, (i) => bar.update(i));
  bar.stop();
  writeOut(values, r);
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

export function torchDevice(values: Values): string {
  const d = String(values['torch-device'] ?? 'cpu');
  if (!/^(cpu|cuda(:\d+)?)$/.test(d)) throw new UsageError(`--torch-device must be cpu or cuda (or cuda:N), got '${d}'`);
  return d;
}

function writeOut(values: Values, r: unknown) {
  if (!values.out) return;
  fs.mkdirSync(path.dirname(path.resolve(String(values.out))), { recursive: true });
  fs.writeFileSync(String(values.out), `${JSON.stringify(r, null, 2)}\n`);
}

async function runSupernet(values: Values, backend: string): Promise<number> {
  const space = choiceFlag(values, 'space', ['darts', 'bayesnas'] as const, 'darts');
  const o = {
    space, batch: intFlag(values, 'batch', 64, 1), size: intFlag(values, 'size', 16, 4), C: intFlag(values, 'C', 16, 2),
    layers: intFlag(values, 'layers', 8, 1), steps: intFlag(values, 'steps', 5, 1), warmup: intFlag(values, 'warmup', 1, 0),
    threads: intFlag(values, 'threads', 2, 1), seed: intFlag(values, 'seed', 0), pytorch: !values['no-pytorch'],
    torchDevice: torchDevice(values), profile: !!values.profile,
  };
  const bar = progress('bench supernet', o.steps, { quiet: !!values.json });
  const r = await benchSupernet(o, (i) => bar.update(i));
  bar.stop();
  writeOut(values, r);
  if (values.json) {
    console.log(JSON.stringify(r, null, 2));
  } else {
    console.log(`workload: ${r.workload}`);
    console.log(`tfjs (${backend}): median ${r.tfjs.medianMs.toFixed(0)} ms/step, ${r.tfjs.imagesPerSecond.toFixed(1)} images/s, ${r.tfjs.params} params`);
    if (r.pytorch) {
      console.log(`pytorch ${r.pytorch.torch}: median ${r.pytorch.medianMs.toFixed(0)} ms/step, ${r.pytorch.imagesPerSecond.toFixed(1)} images/s, ${r.pytorch.params} params`);
      console.log(`ratio tfjs/pytorch (step time): ${r.ratio!.toFixed(2)} (goal <= 1.5)`);
    }
    if (r.profile) console.log(`\none tfjs step by kernel:\n${profileTable(r.profile)}`);
  }
  return 0;
}

async function runHessian(values: Values): Promise<number> {
  const o = {
    space: choiceFlag(values, 'space', ['darts', 'bayesnas'] as const, 'bayesnas'), batch: intFlag(values, 'batch', 32, 1),
    size: intFlag(values, 'size', 16, 4), C: intFlag(values, 'C', 16, 2), layers: intFlag(values, 'layers', 8, 1),
    steps: intFlag(values, 'steps', 5, 1), warmup: intFlag(values, 'warmup', 1, 0), seed: intFlag(values, 'seed', 0),
    pytorch: !values['no-pytorch'], hvpSwitches: intFlag(values, 'hvp-switches', 16, 1), threads: intFlag(values, 'threads', 2, 1),
    torchDevice: torchDevice(values),
  };
  const bar = progress('bench hessian', o.steps, { quiet: !!values.json });
  const r = await benchHessian(o, (i) => bar.update(i));
  bar.stop();
  writeOut(values, r);
  if (values.json) console.log(JSON.stringify(r, null, 2));
  else {
    console.log(`workload: ${r.workload} (${r.backend})`);
    console.log(`forward+backward: median ${r.backwardMs.median.toFixed(0)} ms; Hessian pass: median ${r.hessianMs.median.toFixed(0)} ms; ratio ${r.ratio.toFixed(2)} (goal <= 2)`);
    if (r.pytorch) {
      const q = r.pytorch;
      console.log(`PyTorch ${q.torch} exact diagonal by HVPs: ${q.exactMsPerSwitch.toFixed(1)} ms per switch (median of ${q.hvpSwitches}-switch batches), ${(q.exactAllSwitchesMs / 1000).toFixed(1)} s for all switches`);
      console.log(`speed-up of the TypeScript Hessian pass over exact PyTorch HVPs: ${q.speedupVsExact.toFixed(0)}x; python-ref's own recursion: median ${q.recursionMs.median.toFixed(0)} ms`);
    }
  }
  return 0;
}
