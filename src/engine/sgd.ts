// SGD with momentum and (coupled) weight decay, PyTorch semantics: g ← g + wd·w; v ← m·v + g; w ← w − lr·v.
// `step` runs forward, loss, backward and update inside a tidy, so tensor counts stay constant;
// `apply` updates this optimiser's variables from gradients computed once for several optimisers.
import * as tf from '@tensorflow/tfjs-core';

export interface SgdOptions { lr: number; momentum?: number; weightDecay?: number; clipNorm?: number }

export class Sgd {
  private readonly opt: tf.MomentumOptimizer;
  constructor(readonly vars: tf.Variable[], private o: SgdOptions) {
    this.opt = tf.train.momentum(o.lr, o.momentum ?? 0);
  }

  set lr(v: number) { this.o.lr = v; this.opt.setLearningRate(v); }
  get lr(): number { return this.o.lr; }

  /** Applies gradients (a map by variable name that may hold other optimisers' variables too). Call inside a tidy. */
  apply(grads: tf.NamedTensorMap): void {
    const wd = this.o.weightDecay ?? 0;
    const own = this.vars.filter((v) => grads[v.name]);
    // clip the raw gradients' global norm first, then add weight decay (PyTorch's clip_grad_norm_ + SGD order)
    let scale: tf.Tensor | null = null;
    if (this.o.clipNorm) {
      const norm = tf.sqrt(tf.addN(own.map((v) => tf.sum(tf.square(grads[v.name])))));
      scale = tf.minimum(1, tf.div(this.o.clipNorm, tf.add(norm, 1e-6)));
    }
    const gs: tf.NamedTensorMap = {};
    for (const v of own) {
      const g = scale ? tf.mul(grads[v.name], scale) : grads[v.name];
      gs[v.name] = wd ? tf.add(g, tf.mul(v, wd)) : g;
    }
    this.opt.applyGradients(gs as unknown as Record<string, tf.Variable>);
  }

  /** One step on a loss over this optimiser's variables; returns the loss (kept; the caller disposes it). */
  step(lossFn: () => tf.Scalar): tf.Scalar {
    return tf.tidy(() => {
      const { value, grads } = tf.variableGrads(lossFn, this.vars);
      this.apply(grads);
      return value;
    });
  }

  /** Momentum buffers and iteration count, for checkpoints. */
  async state(): Promise<Array<{ name: string; tensor: tf.Tensor }>> { return this.opt.getWeights(); }
  async restore(state: Array<{ name: string; tensor: tf.Tensor }>): Promise<void> { await this.opt.setWeights(state); }

  dispose(): void { this.opt.dispose(); }
}
