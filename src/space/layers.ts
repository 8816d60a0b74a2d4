// Primitive layers. Every candidate operation, preprocessor, stem and head is a sequence of these,
// so one object per kind carries its forward, its parameter count and the facts the diagonal-Hessian
// pass needs (kind, kernel, stride, padding, dilation, groups: spec §6.3), in the BackPACK manner.
// NHWC tensors; PyTorch semantics (see src/engine/ops.ts).
import { tf } from '../engine/index.js';
import * as ops from '../engine/ops.js';
import { webgpuBatchNormReady } from '../engine/webgpu-kernels.js';
import type { ParamStore } from './params.js';
import { averaged, vjp, type HessianTape } from '../hessian/tape.js';

export interface Ctx {
  /** training-mode batch norm (batch statistics, running statistics updated) */
  training: boolean;
  /** when set, every module records its diagonal-Hessian rule (spec §6.3) */
  tape?: HessianTape;
}

/** Records the rule of a module on the tape, if there is one. */
function rec(ctx: Ctx, inputs: tf.Tensor[], output: tf.Tensor, rule: (Hy: tf.Tensor) => Array<tf.Tensor | null>) {
  ctx.tape?.record(inputs, output, rule);
}

/** Concat along channels; rule (p): split H_y into the inputs' channel blocks. */
export function concatChannels(xs: tf.Tensor4D[], ctx: Ctx): tf.Tensor4D {
  const y = tf.concat(xs, 3) as tf.Tensor4D;
  rec(ctx, xs, y, (Hy) => tf.split(Hy, xs.map((x) => x.shape[3]), 3));
  return y;
}

/** Sum node; rule (n): every branch gets H_y. */
export function sumNode(xs: tf.Tensor4D[], ctx: Ctx): tf.Tensor4D {
  if (xs.length === 1) return xs[0];
  const y = tf.addN(xs) as tf.Tensor4D;
  rec(ctx, xs, y, (Hy) => xs.map(() => Hy));
  return y;
}

export type LayerSpec =
  | { kind: 'relu' }
  | { kind: 'bn'; C: number; affine: boolean }
  | { kind: 'conv'; cin: number; cout: number; k: number; stride: number; padding: number; dilation: number; depthwise: boolean; groups: number }
  | { kind: 'activation'; fn: SmoothActivation }
  | { kind: 'max_pool'; k: number; stride: number; padding: number; padValue: number }
  | { kind: 'avg_pool'; k: number; stride: number; padding: number; countIncludePad: boolean }
  | { kind: 'identity' }
  | { kind: 'zero'; stride: number }
  | { kind: 'factorized_reduce'; cin: number; cout: number };

export interface Layer {
  spec: LayerSpec;
  /** trainable scalars of this layer */
  params: number;
  forward(x: tf.Tensor4D, ctx: Ctx): tf.Tensor4D;
  /** this layer followed by a ReLU in one computation, where the engine has one (else null; never with a tape) */
  forwardRelu?(x: tf.Tensor4D, ctx: Ctx): tf.Tensor4D | null;
}

export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

/** Training-mode BN with PyTorch's running statistics (momentum 0.1, unbiased running variance). */
export function bn(p: ParamStore, name: string, C: number, affine = true): Layer {
  const g = affine ? p.constant(`${name}.weight`, [C], 1) as tf.Variable<tf.Rank.R1> : null;
  const b = affine ? p.constant(`${name}.bias`, [C], 0) as tf.Variable<tf.Rank.R1> : null;
  const rm = p.constant(`${name}.running_mean`, [C], 0, 'buffers') as tf.Variable<tf.Rank.R1>;
  const rv = p.constant(`${name}.running_var`, [C], 1, 'buffers') as tf.Variable<tf.Rank.R1>;
  return {
    spec: { kind: 'bn', C, affine },
    params: affine ? 2 * C : 0,
    forward(x, ctx) {
      if (!ctx.training) {
        const y = tf.batchNorm(x, rm, rv, b ?? tf.zeros([C]), g ?? tf.ones([C]), BN_EPS) as tf.Tensor4D;
        rec(ctx, [x], y, bnRule(ctx, name, x, g, rm, rv));
        return y;
      }
      // a repeated forward (probe pass) must not update the running statistics a second time
      const update = !ctx.tape?.opts.probes;
      // the batch statistics only matter to the tape's rule
      const r = ops.batchNorm(x, g, b, BN_EPS, update ? { mean: rm, variance: rv, momentum: BN_MOMENTUM } : undefined, { stats: !!ctx.tape });
      rec(ctx, [x], r.y, ctx.tape?.opts.mode === 'faithful' ? bnRule(ctx, name, x, g, rm, rv, 0) : bnRule(ctx, name, x, g, r.mean!, r.variance!));
      if (update) { rm.assign(r.runningMean!); rv.assign(r.runningVar!); }
      return r.y as tf.Tensor4D;
    },
    // webgpu: a training batch norm and the ReLU after it in the same programs (Sequential uses it)
    forwardRelu(x, ctx) {
      if (!ctx.training || ctx.tape || !webgpuBatchNormReady()) return null;
      const r = ops.batchNorm(x, g, b, BN_EPS, { mean: rm, variance: rv, momentum: BN_MOMENTUM }, { stats: false, relu: true });
      rm.assign(r.runningMean!);
      rv.assign(r.runningVar!);
      return r.y as tf.Tensor4D;
    },
  };
}

/**
 * BN rule (f): statistics frozen at the values the forward used, H_x = g²/(σ²+ε) · H_y per channel
 * (faithful mode: the running variance without ε, as the official code).
 * Weight Hessians (§6.6): H_g = Σ x̂² H_y, H_b = Σ H_y over batch and positions.
 */
function bnRule(ctx: Ctx, name: string, x: tf.Tensor, g: tf.Tensor1D | null, mean: tf.Tensor1D, variance: tf.Tensor1D, eps = BN_EPS) {
  return (Hy: tf.Tensor) => {
    const inv = tf.div(1, tf.add(variance, eps));
    if (g && ctx.tape?.opts.weights) {
      const axes = [0, 1, 2];
      ctx.tape.addWeight(`${name}.weight`, tf.sum(tf.mul(tf.mul(tf.square(tf.sub(x, mean)), inv), Hy), axes));
      ctx.tape.addWeight(`${name}.bias`, tf.sum(Hy, axes));
    }
    return [tf.mul(Hy, g ? tf.mul(tf.square(g), inv) : inv)];
  };
}

/**
 * Grouped convolution (PyTorch `groups`): input channels split into G blocks, block g convolved with
 * w[:, :, :, g·cout/G : (g+1)·cout/G] (weight [k, k, cin/G, cout]), outputs concatenated.
 */
export function groupedConv2d(x: tf.Tensor4D, w: tf.Tensor4D, o: ops.ConvOpts, groups: number): tf.Tensor4D {
  if (groups === 1) return ops.conv2d(x, w, o);
  const xs = tf.split(x, groups, 3), ws = tf.split(w, groups, 3);
  return tf.concat(xs.map((xg, i) => ops.conv2d(xg as tf.Tensor4D, ws[i] as tf.Tensor4D, o)), 3) as tf.Tensor4D;
}

/**
 * Conv weight [k, k, cin/groups, cout] (depthwise [k, k, C, 1]) with PyTorch's default initialisation.
 * `groups` (1 < G ≤ C, dividing cin and cout) gives a grouped conv; `depthwise` is the native G = C
 * with one filter per channel.
 */
export function conv(p: ParamStore, name: string, o: { cin: number; cout: number; k: number; stride?: number; padding?: number; dilation?: number; depthwise?: boolean; groups?: number }): Layer {
  const { cin, cout, k } = o;
  const stride = o.stride ?? 1, padding = o.padding ?? 0, dilation = o.dilation ?? 1, depthwise = !!o.depthwise;
  const groups = depthwise ? cin : o.groups ?? 1;
  if (depthwise && cin !== cout) throw new Error(`${name}: a depthwise conv needs cin = cout (got ${cin}, ${cout})`);
  if (!(Number.isInteger(groups) && groups >= 1 && cin % groups === 0 && cout % groups === 0)) {
    throw new Error(`${name}: groups must divide cin and cout (got groups ${groups}, cin ${cin}, cout ${cout})`);
  }
  const w = (depthwise ? p.uniform(`${name}.weight`, [k, k, cin, 1], k * k)
    : p.uniform(`${name}.weight`, [k, k, cin / groups, cout], k * k * (cin / groups))) as tf.Variable<tf.Rank.R4>;
  const f = depthwise ? ops.depthwiseConv2d
    : groups > 1 ? (x: tf.Tensor4D, ww: tf.Tensor4D, oo: ops.ConvOpts) => groupedConv2d(x, ww, oo, groups) : ops.conv2d;
  const o2 = { stride, padding, dilation };
  return {
    spec: { kind: 'conv', cin, cout, k, stride, padding, dilation, depthwise, groups },
    params: w.size,
    forward: (x, ctx) => {
      const y = f(x, w, o2);
      // rule (h): the input-gradient (transposed) convolution of H_y with the squared kernel (for a
      // grouped conv, block by block: the VJP of the grouped conv itself);
      // weights (§6.6): the filter gradient with x² in place of x and H_y in place of dy
      rec(ctx, [x], y, (Hy) => {
        const H = ctx.tape?.opts.mode === 'faithful' ? averaged(Hy, [0, 1, 2]) : Hy;
        if (ctx.tape?.opts.weights) ctx.tape.addWeight(`${name}.weight`, vjp((ww) => f(tf.square(x) as tf.Tensor4D, ww as tf.Tensor4D, o2), w, H));
        return [vjp((xx) => f(xx as tf.Tensor4D, tf.square(w) as tf.Tensor4D, o2), x, H)];
      });
      return y;
    },
  };
}

/** Smooth elementwise activations with their first and second derivatives. */
export type SmoothActivation = 'tanh' | 'sigmoid' | 'softplus' | 'elu';

export const SMOOTH_ACTIVATIONS: Record<SmoothActivation, { f(x: tf.Tensor): tf.Tensor; d1(x: tf.Tensor): tf.Tensor; d2(x: tf.Tensor): tf.Tensor }> = {
  tanh: { f: tf.tanh, d1: (x) => tf.sub(1, tf.square(tf.tanh(x))), d2: (x) => { const t = tf.tanh(x); return tf.mul(-2, tf.mul(t, tf.sub(1, tf.square(t)))); } },
  sigmoid: { f: tf.sigmoid, d1: (x) => { const s = tf.sigmoid(x); return tf.mul(s, tf.sub(1, s)); }, d2: (x) => { const s = tf.sigmoid(x); return tf.mul(tf.mul(s, tf.sub(1, s)), tf.sub(1, tf.mul(2, s))); } },
  softplus: { f: tf.softplus, d1: tf.sigmoid, d2: (x) => { const s = tf.sigmoid(x); return tf.mul(s, tf.sub(1, s)); } },
  // for x ≤ 0: f' = f'' = eˣ; for x > 0: f' = 1, f'' = 0 (written with step so that it stays differentiable)
  elu: { f: tf.elu, d1: (x) => { const st = tf.step(x); return tf.add(st, tf.mul(tf.sub(1, st), tf.exp(tf.minimum(x, 0)))); }, d2: (x) => tf.mul(tf.sub(1, tf.step(x)), tf.exp(tf.minimum(x, 0))) },
};

/**
 * Smooth activation y = f(x); rule (e): H_x = f'(x)² ⊙ H_y + f''(x) ⊙ ∂E/∂y. The first-order term
 * ∂E/∂y comes from the tape (`HessianTape.activation`, filled by a gradient pass on the same batch);
 * a tape without gradients drops it (the Gauss–Newton form).
 */
export function activationFwd(x: tf.Tensor4D, fn: SmoothActivation, ctx: Ctx): tf.Tensor4D {
  const a = SMOOTH_ACTIVATIONS[fn];
  const y = a.f(x) as tf.Tensor4D;
  if (!ctx.tape) return y;
  return ctx.tape.activation(x, y, (Hy, gy) => {
    const d1 = a.d1(x);
    let Hx = tf.mul(tf.square(d1), ctx.tape?.opts.mode === 'faithful' ? averaged(Hy, [0]) : Hy);
    if (gy) Hx = tf.add(Hx, tf.mul(a.d2(x), gy));
    return Hx;
  }) as tf.Tensor4D;
}
export const activation = (fn: SmoothActivation): Layer => ({ spec: { kind: 'activation', fn }, params: 0, forward: (x, ctx) => activationFwd(x, fn, ctx) });

/** ReLU; rule (e): H_x = 1[x>0] ⊙ H_y (no second-derivative term). */
export function reluFwd(x: tf.Tensor4D, ctx: Ctx): tf.Tensor4D {
  const y = tf.relu(x);
  rec(ctx, [x], y, (Hy) => {
    if (ctx.tape?.opts.mode !== 'faithful') return [tf.mul(Hy, tf.step(x))];
    const mask = averaged(tf.step(x), [0]);   // faithful: B̄² ⊙ mean_n H_y
    return [tf.mul(averaged(Hy, [0]), tf.square(mask))];
  });
  return y;
}
export const relu: () => Layer = () => ({ spec: { kind: 'relu' }, params: 0, forward: reluFwd });
export const identity: () => Layer = () => ({ spec: { kind: 'identity' }, params: 0, forward: (x) => x });

export function zero(stride: number): Layer {
  return { spec: { kind: 'zero', stride }, params: 0, forward: (x) => tf.zerosLike(ops.subsample2d(x, stride)) };   // no curvature flows back
}

export function maxPool(k: number, stride: number, padding: number, padValue = -Infinity): Layer {
  const f = (x: tf.Tensor4D) => ops.maxPool2d(x, k, stride, padding, padValue);
  return {
    spec: { kind: 'max_pool', k, stride, padding, padValue }, params: 0,
    forward(x, ctx) {
      const y = f(x);
      // rule (k): scatter-add H_y to each window's argmax = the pool's own VJP applied to H_y
      rec(ctx, [x], y, (Hy) => [vjp((a) => f(a as tf.Tensor4D), x, Hy)]);
      return y;
    },
  };
}

export function avgPool(k: number, stride: number, padding: number, countIncludePad: boolean): Layer {
  const f = (x: tf.Tensor4D) => ops.avgPool2d(x, k, stride, padding, countIncludePad);
  return {
    spec: { kind: 'avg_pool', k, stride, padding, countIncludePad }, params: 0,
    forward(x, ctx) {
      const y = f(x);
      // rule (l): Σ_p H_y[p] / div(p)²; the VJP divides once, so feed it H_y / div
      rec(ctx, [x], y, (Hy) => {
        let div: tf.Tensor = tf.scalar(k * k);
        if (!countIncludePad && padding) {
          const [, H, W] = x.shape;
          const ones = tf.pad(tf.ones([1, H, W, 1]), [[0, 0], [padding, padding], [padding, padding], [0, 0]]) as tf.Tensor4D;
          div = tf.mul(tf.avgPool(ones, k, stride, 'valid'), k * k);
        }
        return [vjp((a) => f(a as tf.Tensor4D), x, tf.div(Hy, div))];
      });
      return y;
    },
  };
}

/** DARTS FactorizedReduce: ReLU; 1x1 stride-2 convs on x and on x shifted by one pixel; concat; BN. */
export function factorizedReduce(p: ParamStore, name: string, cin: number, cout: number): Layer {
  if (cout % 2) throw new Error(`${name}: FactorizedReduce needs an even number of output channels (got ${cout})`);
  const c1 = conv(p, `${name}.conv_1`, { cin, cout: cout / 2, k: 1, stride: 2 });
  const c2 = conv(p, `${name}.conv_2`, { cin, cout: cout / 2, k: 1, stride: 2 });
  const norm = bn(p, `${name}.bn`, cout);
  return {
    spec: { kind: 'factorized_reduce', cin, cout },
    params: c1.params + c2.params + norm.params,
    forward(x, ctx) {
      // rule (r): split, conv rules, shift the second half back by (1,1), add; ReLU and BN rules around
      const r = reluFwd(x, ctx);
      const [B, H, W, C] = r.shape;
      const shifted = tf.slice(r, [0, 1, 1, 0], [B, H - 1, W - 1, C]);
      rec(ctx, [r], shifted, (Hy) => [tf.pad(Hy, [[0, 0], [1, 0], [1, 0], [0, 0]])]);
      return norm.forward(concatChannels([c1.forward(r, ctx), c2.forward(shifted, ctx)], ctx), ctx);
    },
  };
}

/** A sequence of layers applied in order. */
export interface Sequential { layers: Layer[]; params: number; forward(x: tf.Tensor4D, ctx: Ctx): tf.Tensor4D }

export function sequential(layers: Layer[]): Sequential {
  return {
    layers,
    params: layers.reduce((a, l) => a + l.params, 0),
    forward: (x, ctx) => runLayers(layers, x, ctx),
  };
}

/** Layers applied in order; a layer followed by a ReLU runs both in one computation where it offers one (forwardRelu). */
export function runLayers(layers: Layer[], x: tf.Tensor4D, ctx: Ctx): tf.Tensor4D {
  let h = x;
  for (let i = 0; i < layers.length; i++) {
    const fused = layers[i + 1]?.spec.kind === 'relu' ? layers[i].forwardRelu?.(h, ctx) : null;
    if (fused) { h = fused; i++; } else h = layers[i].forward(h, ctx);
  }
  return h;
}
