// SGD with momentum and (coupled) weight decay, PyTorch semantics: g ← g + wd·w; v ← m·v + g; w ← w − lr·v
// (v starts at 0, so the first step sets v = g, as PyTorch's buffer does).
// `step` runs forward, loss, backward and update inside a tidy, so tensor counts stay constant;
// `apply` updates this optimiser's variables from gradients computed once for several optimisers.
//
// Variables of the same shape are updated together: their gradients and values are stacked (one
// kernel), updated with a handful of element-wise kernels, and unstacked (one kernel with k outputs).
// A supernet has thousands of small parameters but only a few dozen distinct shapes, so this replaces
// ~6 kernels per parameter with ~8 per shape. The momentum buffers are kept stacked per shape.
// On the webgpu backend, where each unstacked tensor is a launch of its own, one program updates
// several variables and their buffers at once instead, and the buffers are kept per variable.
import * as tf from '@tensorflow/tfjs-core';
import type { TensorRow } from '../bridge/arrow.js';
import { sgdWebgpu, webgpuSgdWidth } from './webgpu-kernels.js';

/** An optimiser's checkpoint state: named tensors (Sgd's momentum buffers, or Adam's step and moments). */
export type OptimizerState = Array<{ name: string; tensor: tf.Tensor }>;

/** A state() list (copies, which the caller owns) as tensor-file rows named `${prefix}${name}`; the copies are disposed. */
export async function stateRows(state: OptimizerState, prefix = ''): Promise<TensorRow[]> {
  try {
    return await Promise.all(state.map(async (s) => ({ name: `${prefix}${s.name}`, shape: s.tensor.shape, data: Float32Array.from(await s.tensor.data()) })));
  } finally {
    tf.dispose(state.map((s) => s.tensor));
  }
}

/** Restores an optimiser from the tensor-file rows whose names start with `prefix` (in file order), disposing the tensors it makes. */
export async function restoreFromRows(opt: { restore(state: OptimizerState): Promise<void> }, rows: TensorRow[], prefix = ''): Promise<void> {
  const state = rows.filter((r) => r.name.startsWith(prefix)).map((r) => ({ name: r.name.slice(prefix.length), tensor: tf.tensor(r.data, r.shape) }));
  try { await opt.restore(state); } finally { tf.dispose(state.map((s) => s.tensor)); }
}

export interface SgdOptions { lr: number; momentum?: number; weightDecay?: number; clipNorm?: number }

interface Group { vars: tf.Variable[]; buffer: tf.Variable | null }

export class Sgd {
  private readonly groups: Group[] = [];
  /** momentum buffers per variable (the webgpu update keeps them so; elsewhere they are stacked per group) */
  private readonly buffers = new Map<tf.Variable, tf.Variable>();
  constructor(readonly vars: tf.Variable[], private o: SgdOptions) {
    const byShape = new Map<string, Group>();
    for (const v of vars) {
      const key = `${v.dtype}:${v.shape.join('x')}`;
      let g = byShape.get(key);
      if (!g) { g = { vars: [], buffer: null }; byShape.set(key, g); this.groups.push(g); }
      g.vars.push(v);
    }
  }

  set lr(v: number) { this.o.lr = v; }
  get lr(): number { return this.o.lr; }
  set weightDecay(v: number) { this.o.weightDecay = v; }
  get weightDecay(): number { return this.o.weightDecay ?? 0; }

  /** The factor that clips the gradients' global norm to clipNorm (null without clipping). */
  private clipScale(grads: tf.NamedTensorMap, live: tf.Variable[][]): tf.Tensor | null {
    if (!this.o.clipNorm) return null;
    const sq = live.filter((l) => l.length).map((l) => tf.sum(tf.square(l.length === 1 ? grads[l[0].name] : tf.stack(l.map((v) => grads[v.name])))));
    return sq.length ? tf.minimum(1, tf.div(this.o.clipNorm, tf.add(tf.sqrt(tf.addN(sq)), 1e-6))) : null;
  }

  /** Applies gradients (a map by variable name that may hold other optimisers' variables too). Call inside a tidy. */
  apply(grads: tf.NamedTensorMap): void {
    const wd = this.o.weightDecay ?? 0, m = this.o.momentum ?? 0, lr = this.o.lr;
    const live = this.groups.map((g) => g.vars.filter((v) => grads[v.name]));
    // clip the raw gradients' global norm first, then add weight decay (PyTorch's clip_grad_norm_ + SGD order)
    const scale = this.clipScale(grads, live);
    if (webgpuSgdWidth() > 0) {
      this.applyWebgpu(grads, live.flat(), scale);
      return;
    }
    this.stackBuffers();
    this.groups.forEach((g, gi) => {
      const own = live[gi];
      if (!own.length) return;
      // PyTorch skips parameters without a gradient: a group with some of them goes variable by variable
      const full = own.length === g.vars.length;
      const stackOf = (ts: tf.Tensor[]) => (ts.length === 1 ? tf.expandDims(ts[0], 0) : tf.stack(ts));
      let grad = stackOf(own.map((v) => grads[v.name]));
      if (scale) grad = tf.mul(grad, scale);
      const w = stackOf(own);
      if (wd) grad = tf.add(grad, tf.mul(w, wd));
      let step = grad;
      if (m) {
        const idx = full ? null : own.map((v) => g.vars.indexOf(v));
        const prev = g.buffer ? (idx ? tf.gather(g.buffer, idx) : g.buffer) : null;
        step = prev ? tf.add(tf.mul(prev, m), grad) : grad;
        if (full) {
          if (g.buffer) g.buffer.assign(step);
          else g.buffer = tf.keep(tf.variable(step, false));
        } else {
          const all = g.buffer ? tf.unstack(g.buffer) : g.vars.map((v) => tf.zerosLike(v));
          const next = tf.unstack(step);
          idx!.forEach((k, j) => { all[k] = next[j]; });
          if (g.buffer) g.buffer.assign(tf.stack(all));
          else g.buffer = tf.keep(tf.variable(tf.stack(all), false));
        }
      }
      const updated = tf.unstack(tf.sub(w, tf.mul(step, lr)));
      own.forEach((v, j) => v.assign(updated[j]));
    });
  }

  /**
   * The webgpu backend's update: each variable's momentum buffer on its own, and several variables per
   * launch (src/engine/webgpu-kernels.ts sgdWebgpu), instead of stacking and unstacking per shape.
   */
  private applyWebgpu(grads: tf.NamedTensorMap, live: tf.Variable[], scale: tf.Tensor | null): void {
    const m = this.o.momentum ?? 0;
    this.unstackBuffers();
    // without momentum the buffer term is 0·g: the gradient stands in for a buffer
    const bufs = live.map((v) => (m ? this.buffers.get(v) ?? tf.zerosLike(v) : grads[v.name]));
    const r = sgdWebgpu(live, live.map((v) => grads[v.name]), bufs, scale ?? tf.scalar(1), { lr: this.o.lr, wd: this.o.weightDecay ?? 0, momentum: m });
    live.forEach((v, j) => {
      v.assign(r.w[j]);
      if (!m) return;
      const b = this.buffers.get(v);
      if (b) b.assign(r.bufs[j]); else this.buffers.set(v, tf.keep(tf.variable(r.bufs[j], false)));
    });
  }

  /** Per-variable momentum buffers of the webgpu update, moved into the stacked ones. */
  private stackBuffers(): void {
    if (!this.buffers.size) return;
    for (const g of this.groups) {
      const stacked = tf.tidy(() => tf.stack(g.vars.map((v) => this.buffers.get(v) ?? tf.zerosLike(v))));
      if (g.buffer) g.buffer.assign(stacked); else g.buffer = tf.variable(stacked, false);
      stacked.dispose();
    }
    this.disposeBuffers();
  }

  /** Stacked momentum buffers moved into per-variable ones (for the webgpu update). */
  private unstackBuffers(): void {
    for (const g of this.groups) {
      if (!g.buffer) continue;
      const parts = tf.unstack(g.buffer);
      g.vars.forEach((v, j) => { this.buffers.get(v)?.dispose(); this.buffers.set(v, tf.keep(tf.variable(parts[j], false))); });
      tf.dispose(parts);
      g.buffer.dispose();
      g.buffer = null;
    }
  }

  private disposeBuffers(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }

  /** One step on a loss over this optimiser's variables; returns the loss (kept; the caller disposes it). */
  step(lossFn: () => tf.Scalar): tf.Scalar {
    return tf.tidy(() => {
      const { value, grads } = tf.variableGrads(lossFn, this.vars);
      this.apply(grads);
      return value;
    });
  }

  /**
   * Momentum buffers, one per variable (`<variable>/momentum`, zeros where no step has run yet, which
   * the update treats exactly like no buffer), in a fixed order, for checkpoints.
   */
  async state(): Promise<OptimizerState> {
    const out: Array<{ name: string; tensor: tf.Tensor }> = [];
    for (const g of this.groups) {
      const parts = g.buffer ? tf.unstack(g.buffer) : g.vars.map((v) => (this.buffers.has(v) ? tf.clone(this.buffers.get(v)!) : tf.zerosLike(v)));
      g.vars.forEach((v, j) => out.push({ name: `${v.name}/momentum`, tensor: parts[j] }));
    }
    return out;
  }

  /**
   * Restores `state()`'s buffers: by variable name when every name matches, else by position (a
   * network rebuilt in the same process has new variable names); shapes are checked either way.
   */
  async restore(state: OptimizerState): Promise<void> {
    const rows = state.filter((s) => s.name.endsWith('/momentum'));
    const ordered = this.groups.flatMap((g) => g.vars);
    if (rows.length !== ordered.length) throw new Error(`optimizer state holds ${rows.length} momentum buffers for ${ordered.length} variables`);
    this.disposeBuffers();
    const by = new Map(rows.map((s) => [s.name, s.tensor]));
    const byName = ordered.every((v) => by.has(`${v.name}/momentum`));
    let k = 0;
    for (const g of this.groups) {
      const parts = g.vars.map((v) => (byName ? by.get(`${v.name}/momentum`)! : rows[k++].tensor));
      parts.forEach((p, j) => {
        if (p.shape.join('x') !== g.vars[j].shape.join('x')) throw new Error(`momentum of ${g.vars[j].name}: shape [${p.shape}], the variable has [${g.vars[j].shape}]`);
      });
      const stacked = tf.tidy(() => tf.stack(parts));
      if (g.buffer) g.buffer.assign(stacked); else g.buffer = tf.variable(stacked, false);
      stacked.dispose();
    }
  }

  dispose(): void {
    for (const g of this.groups) { g.buffer?.dispose(); g.buffer = null; }
    this.disposeBuffers();
  }
}
