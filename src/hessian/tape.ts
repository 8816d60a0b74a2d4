// Diagonal-Hessian tape (spec §6.4). A forward pass with `ctx.tape` set records, for every module,
// its input and output tensors and its rule H_y ↦ H_x (spec §6.3); `backward` then visits the
// records in reverse order, seeds the loss Hessian at the logits, adds each rule's results into
// the accumulators of the input tensors (sum, fan-out and concat rules n, o, p fall out of this),
// and gates add h_s into their switch accumulators. Per-sample mode: every H has the shape of its
// activation, batch dimension included.
import { tf } from '../engine/index.js';

export type Rule = (Hy: tf.Tensor) => Array<tf.Tensor | null>;

interface Rec { inputs: tf.Tensor[]; output: tf.Tensor; rule: Rule }

/** A switch accumulator key: any string the caller chooses (e.g. `cells.3.child.5.2`). */
export type SwitchKey = string;

export type HessianMode = 'per-sample' | 'faithful';

export interface TapeOptions {
  /** also compute diagonal weight Hessians (spec §6.6) */
  weights?: boolean;
  /**
   * 'per-sample' (default): every H keeps its batch dimension; the rules are the exact diagonal
   * Gauss–Newton propagation up to the dropped cross terms (spec §6.5).
   * 'faithful': the official code's batch averaging (spec §6.2): at every dense, conv and ReLU step the
   * incoming H is averaged over the batch (for convs also over positions, per channel), the rule is
   * applied and the result copied to every sample; ReLU uses the batch-averaged mask, squared; BN uses
   * the running variance without ε. The code's wiring and scatter bugs are NOT reproduced.
   */
  mode?: HessianMode;
  /**
   * Probe pass (internal): smooth activations add these zero tensors to their outputs, in call
   * order, and nothing is recorded; differentiating the loss w.r.t. them gives ∂E/∂y there.
   */
  probes?: tf.Tensor[];
}

/** Mean over `axes` (kept), broadcast back to the full shape: the faithful mode's averaging. */
export function averaged(H: tf.Tensor, axes: number[]): tf.Tensor {
  return tf.mul(tf.onesLike(H), tf.mean(H, axes, true));
}

export class HessianTape {
  private readonly recs: Rec[] = [];
  private readonly switchTerms = new Map<SwitchKey, tf.Tensor[]>();
  private readonly weightTerms = new Map<string, tf.Tensor[]>();
  /** output shapes of the smooth activations of the recorded forward, in call order */
  readonly activationShapes: number[][] = [];
  private activationGrads: tf.Tensor[] | null = null;
  constructor(readonly opts: TapeOptions = {}) {}

  /** Records a module; `rule` maps the output's H to one H per input (null: no curvature flows there). */
  record(inputs: tf.Tensor[], output: tf.Tensor, rule: Rule): void {
    if (this.opts.probes) return;
    if (inputs.some((x) => x.id === output.id)) return;   // identity: same tensor, nothing to do
    this.recs.push({ inputs, output, rule });
  }

  /**
   * A smooth activation y = f(x) whose rule needs the first-order term: `rule(H_y, ∂E/∂y)` with
   * ∂E/∂y from `setActivationGradients` (null when none were set: Gauss–Newton). Returns the tensor
   * the forward continues with (y, plus the probe in a probe pass).
   */
  activation(x: tf.Tensor, y: tf.Tensor, rule: (Hy: tf.Tensor, gy: tf.Tensor | null) => tf.Tensor): tf.Tensor {
    const i = this.activationShapes.length;
    this.activationShapes.push(y.shape);
    if (this.opts.probes) {
      const p = this.opts.probes[i];
      if (!p) throw new Error(`probe pass: activation ${i + 1} has no probe (the forward differs from the recorded one)`);
      return tf.add(y, p);
    }
    this.record([x], y, (Hy) => [rule(Hy, this.activationGrads?.[i] ?? null)]);
    return y;
  }

  setActivationGradients(gs: tf.Tensor[]): void {
    if (gs.length !== this.activationShapes.length) throw new Error(`${gs.length} activation gradients for ${this.activationShapes.length} activations`);
    this.activationGrads = gs;
  }

  /** Gate y = s·z: h_s += Σ z² ⊙ H_y (spec §6.3 m); H_z = s² H_y. */
  gate(key: SwitchKey, z: tf.Tensor, s: tf.Tensor, y: tf.Tensor): void {
    this.record([z], y, (Hy) => {
      this.addSwitch(key, tf.sum(tf.mul(tf.square(z), Hy)));
      return [tf.mul(tf.square(s), Hy)];
    });
  }

  addSwitch(key: SwitchKey, h: tf.Tensor): void {
    const list = this.switchTerms.get(key);
    if (list) list.push(h); else this.switchTerms.set(key, [h]);
  }

  addWeight(name: string, h: tf.Tensor): void {
    const list = this.weightTerms.get(name);
    if (list) list.push(h); else this.weightTerms.set(name, [h]);
  }

  /**
   * Reverse sweep from `output` (the logits) seeded with `Hout`. Returns the H of every recorded tensor
   * that received curvature (by tensor id). Switch and weight sums are read with `switchHessians()`
   * and `weightHessians()`.
   */
  backward(output: tf.Tensor, Hout: tf.Tensor): Map<number, tf.Tensor> {
    const H = new Map<number, tf.Tensor>([[output.id, Hout]]);
    for (let i = this.recs.length - 1; i >= 0; i--) {
      const r = this.recs[i];
      const Hy = H.get(r.output.id);
      if (!Hy) continue;
      const Hx = r.rule(Hy);
      r.inputs.forEach((x, j) => {
        const h = Hx[j];
        if (!h) return;
        if (h.shape.join() !== x.shape.join()) throw new Error(`Hessian rule output ${j} has shape [${h.shape}] for an input of shape [${x.shape}]`);
        const prev = H.get(x.id);
        H.set(x.id, prev ? tf.add(prev, h) : h);
      });
    }
    return H;
  }

  /** Σ of the gate terms per switch key, as one tensor [keys] (null without switches): read it with `await data()`. */
  switchHessianTensor(): { keys: SwitchKey[]; values: tf.Tensor1D | null } {
    const keys = [...this.switchTerms.keys()];
    return { keys, values: keys.length ? tf.stack(keys.map((k) => tf.addN(this.switchTerms.get(k)!))) as tf.Tensor1D : null };
  }

  /** Σ of the gate terms per switch key (scalars), read synchronously: for tests on the cpu and tensorflow backends. */
  switchHessians(): Map<SwitchKey, number> {
    const { keys, values } = this.switchHessianTensor();
    if (!values) return new Map();
    const vals = values.dataSync();
    values.dispose();
    return new Map(keys.map((k, i) => [k, vals[i]]));
  }

  weightHessians(): Map<string, tf.Tensor> {
    return new Map([...this.weightTerms].map(([k, v]) => [k, v.length === 1 ? v[0] : tf.addN(v)]));
  }
}

/**
 * Fills ∂E/∂y at every smooth activation that the forward recorded on `tape` (for their f''·∂E/∂y
 * terms): runs the forward again through `loss(probeTape)` with zero probes added to those outputs
 * and differentiates w.r.t. the probes. `loss` must repeat the recorded forward on the same batch and
 * return E on the Hessian's scale. Does nothing when the forward had no smooth activation.
 */
export function fillActivationGradients(tape: HessianTape, loss: (probeTape: HessianTape) => tf.Scalar): void {
  if (!tape.activationShapes.length) return;
  const probes = tape.activationShapes.map((s) => tf.zeros(s));
  const gs = tf.grads((...ps: tf.Tensor[]) => loss(new HessianTape({ ...tape.opts, probes: ps })))(probes);
  tf.dispose(probes);
  tape.setActivationGradients(gs);
}

/** VJP of `f` at `a0` with cotangent `dy` (for the linear maps of conv and pooling rules). */
export function vjp(f: (a: tf.Tensor) => tf.Tensor, a0: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  return tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), dy)) as tf.Scalar)(a0);
}

export type SeedKind = 'diagonal' | 'target' ;
export type Scale = 'mean' | 'batchSum' | 'dataset';

/**
 * Seed at the logits for softmax cross-entropy (spec §6.3 a): per sample p_k(1−p_k) on every class
 * ('diagonal') or only at the target ('target', as the official code). Scale: Hessian of the mean loss
 * over the batch (÷N), of the batch sum, or of the sum over a dataset of `datasetSize` samples.
 */
export function softmaxSeed(logits: tf.Tensor2D, labels: tf.Tensor1D, kind: SeedKind, scale: Scale, datasetSize = 0): tf.Tensor2D {
  return tf.tidy(() => {
    const N = logits.shape[0];
    const p = tf.softmax(logits);
    let h = tf.mul(p, tf.sub(1, p));
    if (kind === 'target') h = tf.mul(h, tf.oneHot(labels, logits.shape[1]));
    const factor = scale === 'mean' ? 1 / N : scale === 'batchSum' ? 1 : datasetSize / N;
    if (scale === 'dataset' && !(datasetSize > 0)) throw new Error('scale "dataset" needs the dataset size');
    return tf.mul(h, factor) as tf.Tensor2D;
  });
}
