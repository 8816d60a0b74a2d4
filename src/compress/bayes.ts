// The Bayesian machinery of BayesNAS applied to groups of weights (spec §8): diagonal weight Hessians by
// the forward-recorded recursion (spec §6.6), the clean γ/ω/C update of spec §5.1 per group with the
// group's weights as the members (h_k = H_{W_k}/λ), and pruning of the groups whose γ falls under a
// threshold.
import { tf } from '../engine/index.js';
import { HessianTape, softmaxSeed } from '../hessian/tape.js';
import { updateGroupClean } from '../bayes/update.js';
import type { CompressNet } from './model.js';

export interface LayerHessian { weight: Float32Array; bias: Float32Array }

/**
 * Diagonal Hessian of the batch-mean cross-entropy w.r.t. every weight and bias (per-sample recursion,
 * seed p(1−p) on every class), averaged over the batches. The caller keeps the batch tensors.
 */
export async function weightHessians(net: CompressNet, batches: Iterable<{ x: tf.Tensor; y: tf.Tensor1D }>): Promise<LayerHessian[]> {
  const acc = net.layers.map((l) => ({ weight: new Float32Array(l.shape.reduce((a, b) => a * b, 1)), bias: new Float32Array(l.outUnits) }));
  let M = 0;
  for (const b of batches) {
    // the tidy returns every layer's Hessian as one flat tensor, read (asynchronously) after it
    const parts: Array<{ into: Float32Array; size: number }> = [];
    const flat = tf.tidy(() => {
      const tape = new HessianTape({ weights: true });
      const logits = net.forward(b.x, { tape });
      tape.backward(logits, softmaxSeed(logits, b.y, 'diagonal', 'mean'));
      const hw = tape.weightHessians();
      const ts: tf.Tensor[] = [];
      net.layers.forEach((l, i) => {
        for (const [key, into] of [['weight', acc[i].weight], ['bias', acc[i].bias]] as const) {
          const t = hw.get(`${l.name}.${key}`);
          if (!t) continue;   // no curvature reached the layer (everything downstream pruned)
          ts.push(tf.reshape(t, [-1]));
          parts.push({ into, size: t.size });
        }
      });
      return ts.length ? tf.concat(ts) : undefined;
    });
    if (flat) {
      const v = await flat.data();
      flat.dispose();
      let at = 0;
      for (const { into, size } of parts) { for (let j = 0; j < size; j++) into[j] += v[at + j]; at += size; }
    }
    M++;
  }
  if (!M) throw new Error('weightHessians: no batches');
  for (const a of acc) { for (let j = 0; j < a.weight.length; j++) a.weight[j] /= M; for (let j = 0; j < a.bias.length; j++) a.bias[j] /= M; }
  return acc;
}

/** One row per group and update: what goes into the per-round γ table. */
export interface GroupRow { layer: number; group: number; kind: string; members: number; norm: number; hSum: number; gamma: number; omega: number; alive: boolean }

/**
 * Clean update (spec §5.1, one group = one γ_g shared by its live weights): h_k = H_k/λ_l with λ_l = λ ·
 * the layer's lambdaScale, C_k = 1/(1/γ_g + h_k), ω_g = sqrt(Σ_k h_k/(1+γ_g h_k)), γ_g = ||W_g||₂/ω_g.
 * Pruned groups keep γ = 0; the groups of a layer with λ_l = 0 keep their γ and ω.
 */
export async function updateGroups(net: CompressNet, H: LayerHessian[], lambda: number): Promise<GroupRow[]> {
  const rows: GroupRow[] = [];
  const ws = await Promise.all(net.layers.map((l) => (l.group === 'none' ? null : l.W.data())));
  net.layers.forEach((l, li) => {
    if (l.group === 'none') return;
    const w = ws[li]!;
    const mask = net.maskArray(l);
    const h = H[li].weight;
    l.members.forEach((mem, g) => {
      const alive = net.groupAlive(l, g, mask);
      if (!alive) {
        l.gamma[g] = 0; l.omega[g] = 0;
        rows.push({ layer: li, group: g, kind: l.group, members: 0, norm: 0, hSum: 0, gamma: 0, omega: 0, alive: false });
        return;
      }
      const s: number[] = [], hk: number[] = [];
      for (const j of mem) if (mask[j] > 0) { s.push(w[j]); hk.push(h[j]); }
      const lam = lambda * l.lambdaScale;
      if (lam > 0) {   // λ_l = 0: the layer is neither penalised nor updated, so its γ stays and nothing is pruned by γ
        const next = updateGroupClean({ gamma: [l.gamma[g]], omega: l.omega[g], C: [] }, s, hk, lam, undefined, { lambdaOrigin: lam, lambdaChild: lam });
        l.gamma[g] = next.gamma[0];
        l.omega[g] = next.omega;
      }
      rows.push({ layer: li, group: g, kind: l.group, members: s.length, norm: Math.sqrt(s.reduce((a, v) => a + v * v, 0)),
        hSum: hk.reduce((a, v) => a + v, 0), gamma: l.gamma[g], omega: l.omega[g], alive: true });
    });
  });
  net.refreshMasks();
  return rows;
}

/**
 * Prunes every live group with γ < threshold, keeping at least one group per layer (the one with the
 * largest γ), then removes the dependents. With `rows` of the last update, groups whose Hessian was
 * exactly zero on every Hessian sample (a ReLU unit that never fired there: h = 0 makes ω = 0 and
 * γ = ∞, spec §5.4, although removing the group leaves those losses unchanged) are pruned too.
 * Returns the number of groups pruned here.
 */
export function pruneByGamma(net: CompressNet, threshold: number, rows?: GroupRow[]): number {
  let pruned = 0;
  const dead = new Set((rows ?? []).filter((r) => r.alive && r.hSum === 0).map((r) => `${r.layer}/${r.group}`));
  for (const l of net.layers) {
    if (l.group === 'none') continue;
    const mask = net.maskArray(l);
    const live: number[] = [];
    for (let g = 0; g < l.members.length; g++) if (net.groupAlive(l, g, mask)) live.push(g);
    const drop = live.filter((g) => l.gamma[g] < threshold || dead.has(`${l.index}/${g}`));
    if (drop.length && drop.length === live.length) {
      const best = drop.reduce((a, g) => (l.gamma[g] > l.gamma[a] ? g : a), drop[0]);
      drop.splice(drop.indexOf(best), 1);
    }
    for (const g of drop) net.pruneGroup(l, g);
    pruned += drop.length;
  }
  net.cleanup();
  return pruned;
}
