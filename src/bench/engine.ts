// Engine benchmark: one training step (forward, backward, SGD update) of the supernet slice in
// TensorFlow.js and in PyTorch (python-ref, CPU), same shapes, same machine, alternating step by
// step so that both see the same machine state. Reports both medians and the ratio tfjs / PyTorch.
import { execa } from 'execa';
import readline from 'node:readline';
import { engineInfo, tf } from '../engine/index.js';
import { Sgd } from '../engine/sgd.js';
import { buildSlice } from '../space/slice.js';
import { refPython, PROJECT_ROOT } from '../bridge/python.js';
import { randomNormalArray } from './util.js';

export interface EngineBenchOptions { batch: number; size: number; steps: number; warmup: number; threads: number; seed: number; pytorch: boolean; /** PyTorch's device: cpu (default) or cuda */ torchDevice?: string }

export interface EngineBenchResult {
  workload: string;
  backend: string;
  tensorflow: string | null;
  tfjs: { stepsMs: number[]; medianMs: number; lossFirst: number; lossLast: number; params: number; tensorsPerStep: number };
  pytorch: { stepsMs: number[]; medianMs: number; lossLast: number | null; torch: string; device: string; threads: number; params: number } | null;
  ratio: number | null;
  options: EngineBenchOptions;
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** A PyTorch benchmark process in `--serve` mode: `step(n)` returns the step times it measured. */
export async function startPytorchServer(module: string, args: string[]) {
  // OpenMP's default spin-waiting makes PyTorch's threads many times slower whenever another process
  // holds a core; PASSIVE (unless the environment sets a policy) keeps the side-by-side fair
  const ompWaitPolicy = process.env.OMP_WAIT_POLICY ?? 'PASSIVE';
  const proc = execa(refPython(), ['-m', module, '--serve', ...args], { cwd: PROJECT_ROOT, reject: false, buffer: false, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', env: { OMP_WAIT_POLICY: ompWaitPolicy } });
  const errLines: string[] = [];
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const rl = readline.createInterface({ input: proc.stderr! });
    rl.on('line', (l) => {
      errLines.push(l);
      try { const j = JSON.parse(l); if (j.ready) resolve(j); } catch { /* not JSON */ }
    });
    proc.then((r) => reject(new Error(`${module} exited (${r.exitCode}) before it was ready:\n${errLines.slice(-15).join('\n')}`)));
  });
  const lines = readline.createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  const info: Record<string, unknown> = { ...(await ready), ompWaitPolicy };
  return {
    info,
    /** One protocol line; the parsed JSON reply. */
    async command<T = Record<string, unknown>>(line: string): Promise<T> {
      proc.stdin!.write(`${line}\n`);
      const next = await lines.next();
      if (next.done) throw new Error(`${module} closed its output:\n${errLines.slice(-15).join('\n')}`);
      const j = JSON.parse(next.value);
      if (j.error) throw new Error(`${module}: ${j.error}`);
      return j;
    },
    step(n: number): Promise<{ ms: number[]; loss: number | null }> { return this.command(`step ${n}`); },
    async close() { proc.stdin!.end('quit\n'); await proc; },
  };
}

export async function benchEngine(o: EngineBenchOptions, onStep?: (i: number) => void): Promise<EngineBenchResult> {
  const net = buildSlice({ seed: o.seed });
  const vars = net.params.variables();
  const sgd = new Sgd(vars, { lr: 0.05, momentum: 0.9, weightDecay: 3e-4 });
  const x = tf.tensor4d(randomNormalArray(o.batch * o.size * o.size * 3, o.seed), [o.batch, o.size, o.size, 3]);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: o.batch }, (_, i) => (i * 7 + o.seed) % 10), 'int32'), 10);
  const step = async () => {   // the read waits for the device: the time covers the whole step on every backend
    const t0 = performance.now();
    const loss = sgd.step(() => tf.losses.softmaxCrossEntropy(labels, net.forward(x)) as tf.Scalar);
    const v = (await loss.data())[0];
    loss.dispose();
    return { ms: performance.now() - t0, loss: v };
  };
  const py = o.pytorch ? await startPytorchServer('bayesnas_ref.bench_engine', ['--batch', String(o.batch), '--size', String(o.size), '--threads', String(o.threads), '--seed', String(o.seed), '--device', o.torchDevice ?? 'cpu']) : null;
  try {
    let lossFirst = NaN;
    for (let i = 0; i < o.warmup; i++) {
      const r = await step();
      if (i === 0) lossFirst = r.loss;
      if (py) await py.step(1);
    }
    const before = tf.memory().numTensors;
    const tfjsMs: number[] = [], torchMs: number[] = [];
    let lossLast = NaN, torchLoss: number | null = null;
    for (let i = 0; i < o.steps; i++) {
      const r = await step();
      tfjsMs.push(r.ms);
      lossLast = r.loss;
      if (py) { const p = await py.step(1); torchMs.push(...p.ms); torchLoss = p.loss; }
      onStep?.(i + 1);
    }
    const tensorsPerStep = (tf.memory().numTensors - before) / o.steps;
    const info = engineInfo();
    const tfjsMedian = median(tfjsMs);
    const torchMedian = py ? median(torchMs) : null;
    return {
      workload: `supernet slice: batch ${o.batch} of ${o.size}x${o.size}x3, stem to 16 channels, mixed edges (7 DARTS ops, switch-gated) at stride 1 and 2, global pool, dense 10; SGD momentum 0.9, wd 3e-4`,
      backend: info.backend, tensorflow: info.tensorflowVersion,
      tfjs: { stepsMs: tfjsMs, medianMs: tfjsMedian, lossFirst, lossLast, params: net.params.count(), tensorsPerStep },
      pytorch: py ? { stepsMs: torchMs, medianMs: torchMedian!, lossLast: torchLoss, torch: String(py.info.torch), device: String(py.info.device ?? 'cpu'), threads: Number(py.info.threads), params: Number(py.info.params) } : null,
      ratio: torchMedian ? tfjsMedian / torchMedian : null,
      options: o,
    };
  } finally {
    await py?.close();
    tf.dispose([x, labels]);
    sgd.dispose();
    net.params.dispose();
  }
}
