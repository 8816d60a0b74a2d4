// Fast diagonal Hessian of the data loss with respect to every switch (and optionally every weight),
// by one recorded forward and one reverse pass of the layer rules (spec §6). Per-sample mode: every
// H carries the batch dimension. Accumulates over M batches and averages them (spec §6.4), so that
// M identical batches give the one-batch value under every scale convention.
import { tf } from '../engine/index.js';
import type { Supernet } from '../space/supernet.js';
import { fillActivationGradients, HessianTape, softmaxSeed, type HessianMode, type Scale } from './tape.js';

export { HessianTape, averaged, fillActivationGradients, softmaxSeed, vjp, type HessianMode, type Scale, type SeedKind } from './tape.js';

export interface HessianOptions {
  /**
   * Output Hessian: 'diagonal' p_k(1−p_k) on every class (default), 'target' only at the label (the
   * official code), or 'full' diag(Wᵀ(diag p − ppᵀ)W) through the classifier (spec §6.3 a, b).
   */
  seed?: 'diagonal' | 'target' | 'full';
  scale?: Scale;
  /** N_train, for scale 'dataset' */
  datasetSize?: number;
  /** BN statistics of the batch (training mode, as used by the training forward) or running ones */
  training?: boolean;
  /** also the diagonal weight Hessians (spec §6.6) */
  weights?: boolean;
  /** 'per-sample' (default) or 'faithful' (the official code's batch averaging; see TapeOptions) */
  mode?: HessianMode;
}

export interface CellHessian { index: number; reduction: boolean; origin: Float64Array; child: Float64Array /* [E·O] row-major */ }

export interface SwitchHessian {
  cells: CellHessian[];
  batches: number;
  samples: number;
  options: Required<Omit<HessianOptions, 'datasetSize' | 'weights'>> & { datasetSize: number | null };
  /** diagonal weight Hessians by parameter name (when asked for) */
  weights?: Map<string, Float32Array>;
}

function emptyCells(net: Supernet): CellHessian[] {
  return net.cells.map((c) => ({ index: c.index, reduction: c.reduction, origin: new Float64Array(c.edges.length), child: new Float64Array(c.edges.length * net.space.ops.length) }));
}

/** One batch: records the forward, seeds at the logits, sweeps back. Returns raw sums for this batch. */
async function oneBatch(net: Supernet, x: tf.Tensor4D, labels: tf.Tensor1D, o: HessianOptions, into: CellHessian[], weights: Map<string, Float32Array> | null) {
  const nOps = net.space.ops.length;
  // the tidy returns the switch terms as one tensor and the weight Hessians by name, read (asynchronously) after it
  const out = tf.tidy(() => {
    const tape = new HessianTape({ weights: !!weights, mode: o.mode ?? 'per-sample' });
    const { logits, features } = net.forwardCells(x, { training: o.training ?? true, tape });
    const scale = o.scale ?? 'mean';
    // smooth activations (if the space has any) need ∂E/∂y for their f''·∂E/∂y terms: E on the seed's scale
    const lossScale = scale === 'mean' ? 1 : scale === 'batchSum' ? logits.shape[0] : (o.datasetSize ?? 0);
    fillActivationGradients(tape, (t) => tf.mul(lossScale, tf.losses.softmaxCrossEntropy(tf.oneHot(labels, logits.shape[1]),
      net.forwardCells(x, { training: o.training ?? true, tape: t }).logits)) as tf.Scalar);
    if ((o.seed ?? 'diagonal') === 'full') {
      // H_a[n,f] = Σ_k W_fk² p_k − (Σ_k W_fk p_k)²  (times the scale factor)
      const N = logits.shape[0];
      const factor = scale === 'mean' ? 1 / N : scale === 'batchSum' ? 1 : (o.datasetSize ?? 0) / N;
      const p = tf.softmax(logits);
      const W = net.classifier;
      const Ha = tf.mul(tf.sub(tf.matMul(p, tf.square(W), false, true), tf.square(tf.matMul(p, W, false, true))), factor);
      tape.backward(features, Ha);
    } else {
      tape.backward(logits, softmaxSeed(logits, labels, o.seed === 'target' ? 'target' : 'diagonal', scale, o.datasetSize));
    }
    const sw = tape.switchHessianTensor();
    const wh = weights ? [...tape.weightHessians()] : [];
    return { keys: sw.keys, values: sw.values ?? [], names: wh.map(([k]) => k), hw: wh.map(([, h]) => h) };
  });
  const vals = out.values instanceof tf.Tensor ? await out.values.data() : new Float32Array(0);
  out.keys.forEach((key, i) => {
    const m = /^cells\.(\d+)\.(origin|child)\.(\d+)(?:\.(\d+))?$/.exec(key);
    if (!m) return;
    const cell = into[Number(m[1])];
    if (m[2] === 'origin') cell.origin[Number(m[3])] += vals[i];
    else cell.child[Number(m[3]) * nOps + Number(m[4])] += vals[i];
  });
  for (const [j, name] of out.names.entries()) {
    const v = await out.hw[j].data() as Float32Array;
    const acc = weights!.get(name);
    if (acc) for (let i = 0; i < v.length; i++) acc[i] += v[i];
    else weights!.set(name, Float32Array.from(v));
  }
  tf.dispose([out.values, out.hw]);
}

/**
 * Switch Hessians averaged over the given batches (each {x, y}). The caller keeps ownership of the
 * batch tensors.
 */
export async function switchHessian(net: Supernet, batches: Iterable<{ x: tf.Tensor4D; y: tf.Tensor1D }>, o: HessianOptions = {}): Promise<SwitchHessian> {
  const cells = emptyCells(net);
  const weights = o.weights ? new Map<string, Float32Array>() : null;
  let M = 0, samples = 0;
  for (const b of batches) {
    await oneBatch(net, b.x, b.y, o, cells, weights);
    M++;
    samples += b.x.shape[0];
  }
  if (!M) throw new Error('switchHessian: no batches');
  for (const c of cells) {
    for (let i = 0; i < c.origin.length; i++) c.origin[i] /= M;
    for (let i = 0; i < c.child.length; i++) c.child[i] /= M;
  }
  if (weights) for (const v of weights.values()) for (let i = 0; i < v.length; i++) v[i] /= M;
  return {
    cells, batches: M, samples,
    options: { seed: o.seed ?? 'diagonal', scale: o.scale ?? 'mean', training: o.training ?? true, mode: o.mode ?? 'per-sample', datasetSize: o.datasetSize ?? null },
    ...(weights ? { weights } : {}),
  };
}
