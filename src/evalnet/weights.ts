// Parameters of an evaluation network as Arrow tensor rows (TypeScript names and NHWC layouts;
// python-ref/bayesnas_ref/tsweights.py converts them for PyTorch), and loading them back.
import { tf } from '../engine/index.js';
import { readTensorFile, type TensorRow } from '../bridge/arrow.js';
import type { EvalNet } from './network.js';

/** Every parameter and BN running statistic, in creation order. */
export async function evalParamRows(net: EvalNet): Promise<TensorRow[]> {
  return Promise.all(net.params.entries.map(async (e) => ({ name: e.name, group: e.group, shape: e.variable.shape, data: Float32Array.from(await e.variable.data()) })));
}

/** Loads a parameter file into the network; every tensor must be present with the network's shape. */
export function loadEvalParams(net: EvalNet, file: string): void {
  const byName = new Map(readTensorFile(file).rows.map((r) => [r.name, r]));
  for (const e of net.params.entries) {
    const r = byName.get(e.name);
    if (!r) throw new Error(`${file}: no tensor named ${e.name}`);
    if (r.shape.join('x') !== e.variable.shape.join('x')) throw new Error(`${file}: ${e.name} has shape [${r.shape}], the network expects [${e.variable.shape}]`);
    tf.tidy(() => e.variable.assign(tf.tensor(r.data, r.shape)));
  }
}
