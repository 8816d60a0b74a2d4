// The evaluation network against python-ref/bayesnas_ref/evalnet.py: parameter counts of the same
// genotype and size, and logits, loss and gradients on identical weights and batch. Genotypes
// cross the bridge as DARTS reprs; weights and batches as Arrow files in the TypeScript layout.
import { tf } from '../engine/index.js';
import { toDartsRepr } from '../genotype/format.js';
import type { Genotype } from '../genotype/types.js';
import { readTensorFile, writeTensorFile } from '../bridge/arrow.js';
import { compare, type Comparison } from '../bridge/parity.js';
import { exchangeDir, pyCall, pyModule } from '../bridge/session.js';
import type { EvalNet, NetworkKind } from './network.js';
import type { EvalStyle } from './ops.js';


export interface PythonCount { params: number; paramsAuxiliary: number }

/** PyTorch's count of the same network: without and with the auxiliary head. */
export async function pythonParamCount(g: Genotype, o: { C: number; layers: number; kind?: NetworkKind; style?: EvalStyle; classes?: number; inChannels?: number }): Promise<PythonCount> {
  const py = await pyModule('bayesnas_ref.evalnet');
  const text = String(await pyCall('evalnet.count_params', () => py.count_params$(toDartsRepr(g), o.C, o.layers,
    { kind: o.kind ?? 'cifar', num_classes: o.classes ?? null, in_channels: o.inChannels ?? 3, style: o.style ?? 'darts' })));
  const j = JSON.parse(text) as { params: number; params_auxiliary: number };
  return { params: j.params, paramsAuxiliary: j.params_auxiliary };
}

/** PyTorch-initialised weights of the same network, as an Arrow file in TypeScript names and layouts. */
export async function exportPythonInit(net: EvalNet, file: string, seed = 0): Promise<void> {
  const py = await pyModule('bayesnas_ref.evalnet');
  await pyCall('evalnet.export_fresh', () => py.export_fresh$(toDartsRepr(net.genotype), file, net.C, net.layers,
    { kind: net.kind, num_classes: net.classes, auxiliary: net.auxiliary, in_channels: net.inChannels, seed, style: net.style }));
}

/**
 * Training-mode forward and backward (no drop-path) in both frameworks on the same weights and
 * batch; loss = CE + auxiliaryWeight·CE_aux when the net has an auxiliary head.
 */
export async function evalNetParity(net: EvalNet, x: tf.Tensor4D, y: tf.Tensor1D, auxiliaryWeight = 0.4): Promise<Comparison[]> {
  const ex = exchangeDir();
  try {
    writeTensorFile(ex.file('params.arrow'), await net.params.rows());
    writeTensorFile(ex.file('batch.arrow'), [
      { name: 'x', shape: x.shape, data: Float32Array.from(await x.data()) },
      { name: 'y', shape: y.shape, data: Float32Array.from(await y.data()) },
    ]);
    const py = await pyModule('bayesnas_ref.evalnet');
    await pyCall('evalnet.forward_backward', () => py.forward_backward$(toDartsRepr(net.genotype), ex.file('params.arrow'), ex.file('batch.arrow'), ex.file('torch.arrow'),
      net.C, net.layers, { kind: net.kind, num_classes: net.classes, auxiliary: net.auxiliary, in_channels: net.inChannels, auxiliary_weight: auxiliaryWeight, style: net.style }));
    const torch = new Map(readTensorFile(ex.file('torch.arrow')).rows.map((r) => [r.name, r]));
    const entries = net.params.select('weights');
    let kept: tf.Tensor[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const { logits, logitsAux } = net.forward(x, { training: true });
      kept = [tf.keep(logits), ...(logitsAux ? [tf.keep(logitsAux)] : [])];
      const ce = (l: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(y, net.classes), l) as tf.Scalar;
      return logitsAux ? tf.add(ce(logits), tf.mul(auxiliaryWeight, ce(logitsAux))) as tf.Scalar : ce(logits);
    }, entries.map((e) => e.variable));
    const out = [compare('logits', await kept[0].data(), torch.get('logits')!.data), compare('loss', await value.data(), torch.get('loss')!.data)];
    if (kept[1]) out.push(compare('logits (auxiliary)', await kept[1].data(), torch.get('logits_aux')!.data));
    const mine: number[] = [], theirs: number[] = [];
    const per: Comparison[] = [];
    for (const e of entries) {
      const r = torch.get(e.name);
      if (!r) throw new Error(`PyTorch returned no gradient for ${e.name}`);
      const g = await grads[e.variable.name].data();
      per.push(compare(`grad ${e.name}`, g, r.data));
      for (let i = 0; i < g.length; i++) { mine.push(g[i]); theirs.push(r.data[i]); }
    }
    tf.dispose([value, ...Object.values(grads), ...kept]);
    return [...out, compare('grad (all weights)', mine, theirs), ...per];
  } finally {
    ex.cleanup();
  }
}
