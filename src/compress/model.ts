// A feed-forward network with group masks for structured compression (spec §8). Every dense or conv
// layer keeps its full weight tensor; what is pruned lives in three masks: `inAlive` (its input units:
// dense input features, conv input channels), `outAlive` (its output units: neurons, filters) and,
// for weight-level groups, `wAlive`. The effective weight is W ⊙ inAlive ⊗ outAlive ⊙ wAlive and the
// bias b ⊙ outAlive, so a pruned unit contributes exactly nothing downstream and the physically
// smaller network (export.ts) computes the same logits.
//
// Training and evaluation run on the live units only (`CompactPlan`): every step gathers the live
// rows and columns of W (and the live input features), so the kernels compute the pruned network's
// size while the variables, optimiser state, masks and group indices keep the full shapes; the
// gather's gradient scatters back into the full W (zeros at pruned entries, as with the masks). The
// Hessian recursion (a tape) runs on the masked full tensors.
//
// Groups (one γ_g, ω_g each; members = the weights in the group):
//   fanout  one group per input unit of the layer: a dense row (the unit's outgoing weights), or a
//           conv input channel W[:, :, c, :]; pruning it removes the unit, so also its incoming
//           weights and bias in the layer before
//   fanin   one group per output unit: a dense column (incoming weights) or a conv filter W[:, :, :, f];
//           pruning it removes the unit and its outgoing weights (the next layer's input channel f, or
//           every flattened feature of channel f)
//   weight  every weight alone (unstructured)
// `--group neuron`: dense fanout (input units, incl. the pixels), conv fanin (filters) — the unit
// counts of Louizos et al. 2017 (LeNet-300-100 "278-98-13", LeNet-5 "8-13-88-13");
// `filter`: fanin everywhere (neurons and filters; the classifier's classes are never grouped);
// `channel`: fanout everywhere; `weight`: weight-level.
import { tf } from '../engine/index.js';
import * as ops from '../engine/ops.js';
import { seededRandom } from '../space/params.js';
import { vjp, type HessianTape } from '../hessian/tape.js';
import { weightLayerCount, type Activation, type ModelSpec } from './spec.js';

let uid = 0;   // tfjs variable names are global

export type GroupKind = 'fanout' | 'fanin' | 'weight' | 'none';
export type Grouping = 'neuron' | 'filter' | 'channel' | 'weight';
export const GROUPINGS: readonly Grouping[] = ['neuron', 'filter', 'channel', 'weight'];

export interface WeightLayer {
  index: number;
  kind: 'dense' | 'conv';
  name: string;
  inUnits: number;
  outUnits: number;
  /** conv kernel size, stride, symmetric padding (dense: 1, 1, 0) */
  k: number;
  stride: number;
  padding: number;
  activation: Activation;
  /** dense [in, out]; conv [k, k, cin, cout] */
  shape: number[];
  W: tf.Variable;
  b: tf.Variable;
  inAlive: Uint8Array;
  outAlive: Uint8Array;
  wAlive: Uint8Array | null;
  /** effective masks (kept tensors, rebuilt by `refreshMasks`) */
  mask: tf.Tensor;
  bmask: tf.Tensor1D;
  group: GroupKind;
  /** member indices (into W, row-major) of every group */
  members: Int32Array[];
  gamma: Float64Array;
  omega: Float64Array;
  omegaT: tf.Tensor;
  /** this layer's multiplier of λ (penalty, proximal step and γ/ω update; 1 unless set per layer) */
  lambdaScale: number;
  /** input unit f of this layer belongs to output unit unitOf(f) of the previous weight layer */
  prevChannels: number | null;
  classifier: boolean;
  /** spatial size [H, W] of this layer's input (conv) and output */
  inHW: [number, number];
  outHW: [number, number];
}

export type Op =
  | { op: 'weight'; layer: WeightLayer }
  | { op: 'relu' }
  | { op: 'maxpool'; size: number; stride: number }
  | { op: 'flatten' };

export interface Ctx { tape?: HessianTape }

/**
 * How layer l computes on live units only. The compact input of l is the full input for the first
 * layer and otherwise the previous layer's live outputs (for a dense layer after a flatten: every
 * position × live channel). `select` picks, from that compact input, the features l reads (null:
 * all of them), `rows`/`cols` the matching rows and columns of W (null: all), `wmask` the weight
 * mask on the gathered W (weight-level groups only).
 */
export interface CompactLayer { select: tf.Tensor1D | null; rows: tf.Tensor1D | null; cols: tf.Tensor1D | null; wmask: tf.Tensor | null }

function disposeCompactLayer(p: CompactLayer): void {
  tf.dispose([p.select, p.rows, p.cols, p.wmask].filter((t): t is tf.Tensor => !!t));
}

const rec = (ctx: Ctx, x: tf.Tensor, y: tf.Tensor, rule: (Hy: tf.Tensor) => Array<tf.Tensor | null>) => ctx.tape?.record([x], y, rule);

function groupKindFor(grouping: Grouping, kind: 'dense' | 'conv', classifier: boolean): GroupKind {
  if (grouping === 'weight') return 'weight';
  if (grouping === 'channel') return 'fanout';
  if (grouping === 'filter') return classifier ? 'none' : 'fanin';
  return kind === 'dense' ? 'fanout' : 'fanin';
}

/** Row-major index sets of the groups of a layer. */
function groupMembers(l: Pick<WeightLayer, 'kind' | 'shape' | 'inUnits' | 'outUnits' | 'group'>): Int32Array[] {
  const size = l.shape.reduce((a, b) => a * b, 1);
  const taps = l.kind === 'conv' ? l.shape[0] * l.shape[1] : 1;
  const I = l.inUnits, O = l.outUnits;
  switch (l.group) {
    case 'none': return [];
    case 'weight': return Array.from({ length: size }, (_, i) => Int32Array.of(i));
    case 'fanout': return Array.from({ length: I }, (_, u) => {
      const m = new Int32Array(taps * O);
      for (let t = 0, j = 0; t < taps; t++) for (let v = 0; v < O; v++) m[j++] = (t * I + u) * O + v;
      return m;
    });
    case 'fanin': return Array.from({ length: O }, (_, v) => {
      const m = new Int32Array(taps * I);
      for (let t = 0, j = 0; t < taps; t++) for (let u = 0; u < I; u++) m[j++] = (t * I + u) * O + v;
      return m;
    });
  }
}

/** `lambdaScale`: one multiplier of λ per weight layer (dense or conv), in order; default all 1. */
export interface BuildOptions { grouping: Grouping; seed?: number; input: [number, number, number]; classes: number; lambdaScale?: number[] }

export class CompressNet {
  readonly ops: Op[] = [];
  readonly layers: WeightLayer[] = [];
  readonly input: [number, number, number];
  /** compute on live units only (false: the masked full tensors everywhere, e.g. to compare) */
  compact = true;
  private plan: CompactLayer[] | null = null;

  constructor(readonly spec: ModelSpec, readonly opts: BuildOptions) {
    const scale = opts.lambdaScale, n = weightLayerCount(spec);
    if (scale && (scale.length !== n || scale.some((v) => !Number.isFinite(v) || v < 0))) {
      throw new Error(`λ scale: ${spec.name} has ${n} weight layers, so it takes ${n} multipliers >= 0 (got ${scale.join(',')})`);
    }
    const rand = seededRandom(opts.seed ?? 0);
    this.input = opts.input;
    let [H, W, C] = opts.input;
    let flat: number | null = null;   // feature count once flattened
    let channelsAtFlatten: number | null = null;
    const defs = spec.layers;
    const lastWeighted = defs.length - 1;
    defs.forEach((d, i) => {
      if (d.type === 'flatten') {
        if (flat === null) { flat = H * W * C; channelsAtFlatten = C; }
        this.ops.push({ op: 'flatten' });
        return;
      }
      if (d.type === 'maxpool') {
        if (flat !== null) throw new Error(`${spec.name}: layer ${i}: max-pool after flatten`);
        const s = d.stride ?? d.size;
        H = Math.floor((H - d.size) / s) + 1; W = Math.floor((W - d.size) / s) + 1;
        if (H < 1 || W < 1) throw new Error(`${spec.name}: layer ${i}: the max-pool leaves no pixels`);
        this.ops.push({ op: 'maxpool', size: d.size, stride: s });
        return;
      }
      const index = this.layers.length;
      const classifier = i === lastWeighted;
      const activation: Activation = d.activation ?? (classifier ? 'linear' : 'relu');
      const prev = this.layers[index - 1];
      let l: Omit<WeightLayer, 'W' | 'b' | 'mask' | 'bmask' | 'members' | 'gamma' | 'omega' | 'omegaT' | 'lambdaScale'>;
      if (d.type === 'dense') {
        if (flat === null) { flat = H * W * C; channelsAtFlatten = C; this.ops.push({ op: 'flatten' }); }
        const inUnits: number = flat;
        const prevChannels = prev && prev.kind === 'conv' ? channelsAtFlatten : null;
        l = { index, kind: 'dense', name: `layers.${index}`, inUnits, outUnits: d.units, k: 1, stride: 1, padding: 0, activation, shape: [inUnits, d.units],
          inAlive: new Uint8Array(inUnits).fill(1), outAlive: new Uint8Array(d.units).fill(1), wAlive: null, group: groupKindFor(opts.grouping, 'dense', classifier),
          prevChannels, classifier, inHW: [1, 1], outHW: [1, 1] };
        flat = d.units;
      } else {
        if (flat !== null) throw new Error(`${spec.name}: layer ${i}: conv after flatten`);
        const s = d.stride ?? 1, p = d.padding ?? 0;
        const Ho = Math.floor((H + 2 * p - d.kernel) / s) + 1, Wo = Math.floor((W + 2 * p - d.kernel) / s) + 1;
        if (Ho < 1 || Wo < 1) throw new Error(`${spec.name}: layer ${i}: a ${d.kernel}x${d.kernel} conv does not fit a ${H}x${W} input`);
        l = { index, kind: 'conv', name: `layers.${index}`, inUnits: C, outUnits: d.filters, k: d.kernel, stride: s, padding: p, activation, shape: [d.kernel, d.kernel, C, d.filters],
          inAlive: new Uint8Array(C).fill(1), outAlive: new Uint8Array(d.filters).fill(1), wAlive: null, group: groupKindFor(opts.grouping, 'conv', classifier),
          prevChannels: null, classifier, inHW: [H, W], outHW: [Ho, Wo] };
        H = Ho; W = Wo; C = d.filters;
      }
      if (classifier && l.outUnits !== opts.classes) throw new Error(`${spec.name}: the classifier has ${l.outUnits} outputs but the dataset has ${opts.classes} classes`);
      // PyTorch's default initialisation: U(−1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases
      const fanIn = l.kind === 'dense' ? l.inUnits : l.k * l.k * l.inUnits;
      const bound = 1 / Math.sqrt(fanIn);
      const size = l.shape.reduce((a, b) => a * b, 1);
      const w0 = Float32Array.from({ length: size }, () => (2 * rand() - 1) * bound);
      const b0 = Float32Array.from({ length: l.outUnits }, () => (2 * rand() - 1) * bound);
      const members = groupMembers(l);
      const layer: WeightLayer = {
        ...l,
        W: tf.variable(tf.tensor(w0, l.shape), true, `${l.name}.weight.${uid}`),
        b: tf.variable(tf.tensor1d(b0), true, `${l.name}.bias.${uid}`),
        wAlive: l.group === 'weight' ? new Uint8Array(size).fill(1) : null,
        mask: tf.keep(tf.ones(l.shape)), bmask: tf.keep(tf.ones([l.outUnits])) as tf.Tensor1D,
        members, gamma: new Float64Array(members.length).fill(1), omega: new Float64Array(members.length).fill(1),
        omegaT: tf.keep(l.group === 'weight' ? tf.ones(l.shape) : tf.ones([members.length])),
        lambdaScale: opts.lambdaScale?.[index] ?? 1,
      };
      uid++;
      this.layers.push(layer);
      this.ops.push({ op: 'weight', layer });
      if (activation === 'relu') this.ops.push({ op: 'relu' });
    });
    this.plan = this.buildPlan();
  }

  variables(): tf.Variable[] { return this.layers.flatMap((l) => [l.W, l.b]); }

  /** Effective weight and bias of a layer (masked). */
  effective(l: WeightLayer): { W: tf.Tensor; b: tf.Tensor1D } {
    return { W: tf.mul(l.W, l.mask), b: tf.mul(l.b, l.bmask) as tf.Tensor1D };
  }

  /** Applies op `i` (with its Hessian rule when ctx.tape is set). */
  applyOp(i: number, x: tf.Tensor, ctx: Ctx = {}): tf.Tensor {
    const o = this.ops[i];
    switch (o.op) {
      case 'flatten': {
        const y = tf.reshape(x, [x.shape[0], -1]);
        rec(ctx, x, y, (Hy) => [tf.reshape(Hy, x.shape)]);
        return y;
      }
      case 'relu': {
        const y = tf.relu(x);
        rec(ctx, x, y, (Hy) => [tf.mul(Hy, tf.step(x))]);   // rule (e): 1[x>0] ⊙ H_y
        return y;
      }
      case 'maxpool': {
        const f = (a: tf.Tensor) => ops.maxPool2d(a as tf.Tensor4D, o.size, o.stride, 0);
        const y = f(x);
        rec(ctx, x, y, (Hy) => [vjp(f, x, Hy)]);   // rule (k): scatter-add to each window's argmax
        return y;
      }
      case 'weight': {
        const l = o.layer;
        const { W, b } = this.effective(l);
        if (l.kind === 'dense') {
          const y = tf.add(tf.matMul(x as tf.Tensor2D, W as tf.Tensor2D), b);
          // rule (b): H_x = H_y (W∘²)ᵀ; weights (§6.6): H_W[u,v] = Σ_n x[n,u]² H_y[n,v], H_b = Σ_n H_y
          rec(ctx, x, y, (Hy) => {
            if (ctx.tape?.opts.weights) {
              ctx.tape.addWeight(`${l.name}.weight`, tf.matMul(tf.square(x) as tf.Tensor2D, Hy as tf.Tensor2D, true, false));
              ctx.tape.addWeight(`${l.name}.bias`, tf.sum(Hy, 0));
            }
            return [tf.matMul(Hy as tf.Tensor2D, tf.square(W) as tf.Tensor2D, false, true)];
          });
          return y;
        }
        const co = { stride: l.stride, padding: l.padding };
        const y = tf.add(ops.conv2d(x as tf.Tensor4D, W as tf.Tensor4D, co), b);
        // rule (h): the transposed convolution of H_y with W∘²; weights: the filter gradient of x² against H_y
        rec(ctx, x, y, (Hy) => {
          if (ctx.tape?.opts.weights) {
            ctx.tape.addWeight(`${l.name}.weight`, vjp((w) => ops.conv2d(tf.square(x) as tf.Tensor4D, w as tf.Tensor4D, co), W, Hy));
            ctx.tape.addWeight(`${l.name}.bias`, tf.sum(Hy, [0, 1, 2]));
          }
          return [vjp((a) => ops.conv2d(a as tf.Tensor4D, tf.square(W) as tf.Tensor4D, co), x, Hy)];
        });
        return y;
      }
    }
  }

  /** Logits of a batch (NHWC). */
  forward(x: tf.Tensor, ctx: Ctx = {}): tf.Tensor2D {
    if (this.compact && this.plan && !ctx.tape) return this.forwardCompact(x, this.plan);
    let h = x;
    for (let i = 0; i < this.ops.length; i++) h = this.applyOp(i, h, ctx);
    return h as tf.Tensor2D;
  }

  /** The same logits, computed on the live units only (see `CompactLayer`). */
  private forwardCompact(x: tf.Tensor, plan: CompactLayer[]): tf.Tensor2D {
    let h = x;
    for (const o of this.ops) {
      if (o.op === 'flatten') h = tf.reshape(h, [h.shape[0], -1]);
      else if (o.op === 'relu') h = tf.relu(h);
      else if (o.op === 'maxpool') h = ops.maxPool2d(h as tf.Tensor4D, o.size, o.stride, 0);
      else {
        const l = o.layer, p = plan[l.index];
        const dense = l.kind === 'dense';
        if (p.select) h = tf.gather(h, p.select, dense ? 1 : 3);
        let W: tf.Tensor = l.W;
        if (p.rows) W = tf.gather(W, p.rows, dense ? 0 : 2);
        if (p.cols) W = tf.gather(W, p.cols, dense ? 1 : 3);
        if (p.wmask) W = tf.mul(W, p.wmask);
        const b = p.cols ? tf.gather(l.b, p.cols) : l.b;
        h = tf.add(dense ? tf.matMul(h as tf.Tensor2D, W as tf.Tensor2D) : ops.conv2d(h as tf.Tensor4D, W as tf.Tensor4D, { stride: l.stride, padding: l.padding }), b);
      }
    }
    return h as tf.Tensor2D;
  }

  /** Builds the compact plan from the unit masks (null when a layer has no live unit left). */
  private buildPlan(): CompactLayer[] | null {
    const live = (a: Uint8Array) => { const r: number[] = []; a.forEach((v, i) => { if (v) r.push(i); }); return r; };
    const idx = (a: number[], n: number) => (a.length === n ? null : tf.keep(tf.tensor1d(a, 'int32')));
    const plan: CompactLayer[] = [];
    let prevLive: number[] = [];
    for (const l of this.layers) {
      // full input-unit index of every feature of the compact input
      let layout: number[];
      if (l.index === 0) layout = Array.from({ length: l.inUnits }, (_, i) => i);
      else if (l.prevChannels) {
        const C = l.prevChannels;
        layout = [];
        for (let s = 0; s < l.inUnits / C; s++) for (const c of prevLive) layout.push(s * C + c);
      } else layout = prevLive;
      const select: number[] = [], rows: number[] = [];
      layout.forEach((u, j) => { if (l.inAlive[u]) { select.push(j); rows.push(u); } });
      const cols = live(l.outAlive);
      if (!rows.length || !cols.length) { plan.forEach(disposeCompactLayer); return null; }
      let wmask: tf.Tensor | null = null;
      if (l.wAlive) {
        const taps = l.kind === 'conv' ? l.k * l.k : 1, I = l.inUnits, O = l.outUnits;
        const m = new Float32Array(taps * rows.length * cols.length);
        let j = 0;
        for (let t = 0; t < taps; t++) for (const u of rows) for (const v of cols) m[j++] = l.wAlive[(t * I + u) * O + v];
        wmask = tf.keep(tf.tensor(m, l.kind === 'conv' ? [l.k, l.k, rows.length, cols.length] : [rows.length, cols.length]));
      }
      plan.push({ select: idx(select, layout.length), rows: idx(rows, l.inUnits), cols: idx(cols, l.outUnits), wmask });
      prevLive = cols;
    }
    return plan;
  }

  private disposePlan(): void {
    this.plan?.forEach(disposeCompactLayer);
    this.plan = null;
  }

  /** Σ_l λ_l Σ_g ω_g ||W_g||₂ over the live groups (λ_l = λ · the layer's lambdaScale; ω of pruned groups is 0). */
  penalty(lambda: number): tf.Scalar {
    const terms: tf.Tensor[] = [];
    for (const l of this.layers) {
      if (l.group === 'none') continue;
      const sq = tf.square(tf.mul(l.W, l.mask));
      let norms: tf.Tensor;
      if (l.group === 'weight') norms = tf.sqrt(tf.add(sq, 1e-16));
      else {
        const taps = l.kind === 'conv' ? l.k * l.k : 1;
        const s3 = tf.reshape(sq, [taps, l.inUnits, l.outUnits]);
        norms = tf.sqrt(tf.add(tf.sum(s3, l.group === 'fanout' ? [0, 2] : [0, 1]), 1e-16));
      }
      terms.push(tf.mul(tf.sum(tf.mul(norms, l.omegaT)), l.lambdaScale));
    }
    return tf.mul(lambda, terms.length ? tf.addN(terms) : tf.scalar(0)) as tf.Scalar;
  }

  /**
   * Proximal step of the group penalty with step size `step`·λ_l: W_g ← W_g · max(0, 1 − step·λ_l·ω_g/||W_g||₂)
   * (for weight groups the soft threshold), which sets whole groups exactly to zero.
   */
  proxStep(lambda: number, step: number): void {
    tf.tidy(() => {
      for (const l of this.layers) {
        if (l.group === 'none') continue;
        const t = tf.mul(l.omegaT, lambda * l.lambdaScale * step);
        if (l.group === 'weight') {
          l.W.assign(tf.mul(tf.sign(l.W), tf.relu(tf.sub(tf.abs(l.W), t))));
          continue;
        }
        const taps = l.kind === 'conv' ? l.k * l.k : 1;
        const w3 = tf.reshape(tf.mul(l.W, l.mask), [taps, l.inUnits, l.outUnits]);
        const fanout = l.group === 'fanout';
        const norms = tf.sqrt(tf.sum(tf.square(w3), fanout ? [0, 2] : [0, 1], true));
        const factor = tf.relu(tf.sub(1, tf.div(fanout ? tf.reshape(t, [1, -1, 1]) : tf.reshape(t, [1, 1, -1]), tf.add(norms, 1e-30))));
        l.W.assign(tf.reshape(tf.mul(w3, factor), l.shape));
      }
    });
  }

  /** The unit of the previous weight layer that input unit f of layer l reads. */
  static unitOf(l: WeightLayer, f: number): number { return l.prevChannels ? f % l.prevChannels : f; }

  /**
   * Removes what pruning made dead, to a fixed point: an input unit without a live outgoing weight is
   * dead; a unit of layer p is dead when no input unit of layer p+1 that reads it is alive, and then
   * every input unit of layer p+1 that reads it is dead too. The classifier's outputs never die.
   */
  cleanup(): void {
    for (let changed = true; changed;) {
      changed = false;
      for (const l of this.layers) {
        const taps = l.kind === 'conv' ? l.k * l.k : 1;
        const I = l.inUnits, O = l.outUnits;
        for (let u = 0; u < I; u++) {
          if (!l.inAlive[u]) continue;
          let any = false;
          for (let t = 0; t < taps && !any; t++) for (let v = 0; v < O; v++) {
            if (l.outAlive[v] && (!l.wAlive || l.wAlive[(t * I + u) * O + v])) { any = true; break; }
          }
          if (!any) { l.inAlive[u] = 0; changed = true; }
        }
        const p = this.layers[l.index - 1];
        if (!p) continue;
        const read = new Uint8Array(p.outUnits);
        for (let f = 0; f < I; f++) {
          const c = CompressNet.unitOf(l, f);
          if (!p.outAlive[c] && l.inAlive[f]) { l.inAlive[f] = 0; changed = true; }
          if (l.inAlive[f]) read[c] = 1;
        }
        for (let c = 0; c < p.outUnits; c++) if (p.outAlive[c] && !read[c]) { p.outAlive[c] = 0; changed = true; }
      }
    }
    this.refreshMasks();
  }

  /** Rebuilds the effective mask tensors and the ω tensors from the unit masks and ω. */
  refreshMasks(): void {
    for (const l of this.layers) {
      const m = this.maskArray(l);
      tf.dispose([l.mask, l.bmask, l.omegaT]);
      l.mask = tf.keep(tf.tensor(m, l.shape));
      l.bmask = tf.keep(tf.tensor1d(Float32Array.from(l.outAlive))) as tf.Tensor1D;
      const om = Float32Array.from(l.omega, (w, g) => (this.groupAlive(l, g, m) ? w : 0));
      l.omegaT = tf.keep(l.group === 'weight' ? tf.tensor(om, l.shape) : tf.tensor1d(om));
    }
    this.disposePlan();
    this.plan = this.buildPlan();
  }

  maskArray(l: WeightLayer): Float32Array {
    const taps = l.kind === 'conv' ? l.k * l.k : 1;
    const I = l.inUnits, O = l.outUnits;
    const m = new Float32Array(taps * I * O);
    for (let t = 0; t < taps; t++) for (let u = 0; u < I; u++) {
      if (!l.inAlive[u]) continue;
      const base = (t * I + u) * O;
      for (let v = 0; v < O; v++) m[base + v] = l.outAlive[v] && (!l.wAlive || l.wAlive[base + v]) ? 1 : 0;
    }
    return m;
  }

  groupAlive(l: WeightLayer, g: number, mask?: Float32Array): boolean {
    switch (l.group) {
      case 'fanout': return !!l.inAlive[g];
      case 'fanin': return !!l.outAlive[g];
      case 'weight': return (mask ?? this.maskArray(l))[g] > 0;
      default: return false;
    }
  }

  /** Prunes group g of layer l (the unit, or the weight) and clears what depends on it (call cleanup after). */
  pruneGroup(l: WeightLayer, g: number): void {
    if (l.group === 'fanout') l.inAlive[g] = 0;
    else if (l.group === 'fanin') l.outAlive[g] = 0;
    else if (l.group === 'weight') l.wAlive![g] = 0;
    l.gamma[g] = 0;
  }

  /** Live (non-zero-mask) weights, biases, and the totals. */
  counts(): { weights: number; biases: number; totalWeights: number; totalBiases: number; perLayer: Array<{ weights: number; total: number }> } {
    let weights = 0, biases = 0, totalWeights = 0, totalBiases = 0;
    const perLayer = this.layers.map((l) => {
      const m = this.maskArray(l);
      let w = 0;
      for (let i = 0; i < m.length; i++) w += m[i];
      weights += w; totalWeights += m.length;
      for (const a of l.outAlive) biases += a;
      totalBiases += l.outUnits;
      return { weights: w, total: m.length };
    });
    return { weights, biases, totalWeights, totalBiases, perLayer };
  }

  /** Unit counts in the convention of Louizos et al.: conv layers their filters, dense layers their input units. */
  architecture(): string {
    return this.layers.filter((l) => !(l.kind === 'conv' && l.classifier)).map((l) => {
      const a = l.kind === 'conv' ? l.outAlive : l.inAlive;
      return String(a.reduce((s, v) => s + v, 0));
    }).join('-');
  }

  /** The same convention for the unpruned network, e.g. 784-300-100 or 20-50-800-500. */
  fullArchitecture(): string {
    return this.layers.map((l) => String(l.kind === 'conv' ? l.outUnits : l.inUnits)).join('-');
  }

  /** Weight values as a flat copy, per layer. */
  weightArrays(): Promise<Float32Array[]> { return Promise.all(this.layers.map((l) => l.W.data() as Promise<Float32Array>)); }

  dispose(): void {
    for (const l of this.layers) tf.dispose([l.W, l.b, l.mask, l.bmask, l.omegaT]);
    this.disposePlan();
  }
}

