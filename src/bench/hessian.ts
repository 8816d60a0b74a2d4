// Hessian benchmark: the diagonal switch-Hessian pass (recorded forward + reverse sweep of the rules)
// against one ordinary forward+backward pass of the same supernet and batch, alternating in one run
// (goal: at most 2x); optionally the exact per-switch Hessian by Hessian-vector products in PyTorch
// for the same network size (python-ref), to report the speed-up.
import { engineInfo, tf } from '../engine/index.js';
import { switchHessian } from '../hessian/index.js';
import { PRESETS } from '../space/spaces.js';
import { buildSupernet } from '../space/supernet.js';
import { median, startPytorchServer } from './engine.js';
import { randomNormalArray } from './util.js';

export interface HessianBenchOptions {
  space: string; batch: number; size: number; C: number; layers: number; steps: number; warmup: number; seed: number;
  /** also time exact per-switch Hessians (double-backward HVPs) and the recursion in PyTorch (python-ref) */
  pytorch?: boolean;
  /** switches per timed HVP batch (the exact cost is linear in the number of switches) */
  hvpSwitches?: number;
  threads?: number;
  /** PyTorch's device: cpu (default) or cuda */
  torchDevice?: string;
}

export async function benchHessian(o: HessianBenchOptions, onStep?: (i: number) => void) {
  const net = buildSupernet({ ...PRESETS[o.space], C: o.C, layers: o.layers }, { seed: o.seed });
  const x = tf.tensor4d(randomNormalArray(o.batch * o.size * o.size * 3, o.seed), [o.batch, o.size, o.size, 3]);
  const y = tf.tensor1d(Array.from({ length: o.batch }, (_, i) => (i * 7 + o.seed) % 10), 'int32');
  const vars = net.params.variables();
  const backward = async () => {
    const t0 = performance.now();
    const g = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(tf.oneHot(y, 10), net.forward(x, { training: true })) as tf.Scalar, vars);
      return [value, grads[vars[0].name]];
    });
    for (const t of g) await t.data();   // waits for the device: the time covers the whole pass on every backend
    tf.dispose(g);
    return performance.now() - t0;
  };
  const hessian = async () => {
    const t0 = performance.now();
    await switchHessian(net, [{ x, y }]);
    return performance.now() - t0;
  };
  const nSwitches = net.params.count('switches');
  const hvpN = Math.min(o.hvpSwitches ?? 16, nSwitches);
  const py = o.pytorch ? await startPytorchServer('bayesnas_ref.hessian', ['--space', o.space, '--C', String(o.C), '--layers', String(o.layers),
    '--batch-size', String(o.batch), '--size', String(o.size), '--seed', String(o.seed), '--threads', String(o.threads ?? 2), '--device', o.torchDevice ?? 'cpu']) : null;
  try {
    const pyStep = async () => py ? {
      hvp: (await py.command<{ ms: number[] }>(`hvp ${hvpN} 1`)).ms[0],
      rec: (await py.command<{ ms: number[] }>('recursion 1')).ms[0],
    } : null;
    for (let i = 0; i < o.warmup; i++) { await backward(); await hessian(); await pyStep(); }
    const b: number[] = [], h: number[] = [], hvp: number[] = [], rec: number[] = [];
    for (let i = 0; i < o.steps; i++) {
      b.push(await backward()); h.push(await hessian());
      const p = await pyStep();
      if (p) { hvp.push(p.hvp); rec.push(p.rec); }
      onStep?.(i + 1);
    }
    const mb = median(b), mh = median(h);
    const perSwitch = py ? median(hvp) / hvpN : null;
    return {
      workload: `${o.space} supernet, ${o.layers} cells, C=${o.C}, batch ${o.batch} of ${o.size}x${o.size}x3, ${nSwitches} switches`,
      backend: engineInfo().backend,
      backwardMs: { steps: b, median: mb }, hessianMs: { steps: h, median: mh }, ratio: mh / mb,
      pytorch: py ? {
        torch: String(py.info.torch), device: String(py.info.device ?? 'cpu'), switches: Number(py.info.switches), hvpSwitches: hvpN,
        exactMsPerSwitch: perSwitch!, exactAllSwitchesMs: perSwitch! * nSwitches, hvpMs: hvp,
        recursionMs: { steps: rec, median: median(rec) },
        /** exact diagonal of every switch by HVPs in PyTorch ÷ the TypeScript Hessian pass */
        speedupVsExact: (perSwitch! * nSwitches) / mh,
      } : null,
      options: o,
    };
  } finally {
    await py?.close();
    tf.dispose([x, y]);
    net.dispose();
  }
}
