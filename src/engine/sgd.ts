// SGD with momentum and (coupled) weight decay, PyTorch semantics: g ← g + wd·w; v ← m·v + g; w ← w − lr·v.
// One `step` is forward, loss, backward and update inside a tidy, so tensor counts stay constant.
import * as tf from '@tensorflow/tfjs-core';

export interface SgdOptions { lr: number; momentum?: number; weightDecay?: number; clipNorm?: number }

export class Sgd {
  private readonly opt: tf.MomentumOptimizer;
  constructor(private readonly vars: tf.Variable[], private o: SgdOptions) {
    this.opt = tf.train.momentum(o.lr, o.momentum ?? 0);
  }

  set lr(v: number) { this.o.lr = v; this.opt.setLearningRate(v); }
  get lr(): number { return this.o.lr; }

  /** Runs one step; returns the loss tensor (kept; the caller disposes it) and any kept extras. */
  step<T extends tf.TensorContainer>(lossFn: () => { loss: tf.Scalar; extra?: T }): { loss: tf.Scalar; extra?: T } {
    let extra: T | undefined;
    const loss = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        const r = lossFn();
        if (r.extra !== undefined) extra = tf.keep(r.extra as never) as T;
        return r.loss;
      }, this.vars);
      const wd = this.o.weightDecay ?? 0;
      let gs: tf.NamedTensorMap = grads;
      if (wd) {
        gs = {};
        for (const v of this.vars) gs[v.name] = tf.add(grads[v.name], tf.mul(v, wd));
      }
      if (this.o.clipNorm) {
        const norm = tf.sqrt(tf.addN(Object.values(gs).map((g) => tf.sum(tf.square(g)))));
        const scale = tf.minimum(1, tf.div(this.o.clipNorm, tf.add(norm, 1e-6)));
        for (const k of Object.keys(gs)) gs[k] = tf.mul(gs[k], scale);
      }
      this.opt.applyGradients(gs as unknown as Record<string, tf.Variable>);
      return value;
    });
    return { loss, extra };
  }

  dispose(): void { this.opt.dispose(); }
}
