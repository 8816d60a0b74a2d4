// Primitive layers. Every candidate operation, preprocessor, stem and head is a sequence of these,
// so one object per kind carries its forward, its parameter count and the facts the diagonal-Hessian
// pass needs (kind, kernel, stride, padding, dilation, groups: spec §6.3), in the BackPACK manner.
// NHWC tensors; PyTorch semantics (see src/engine/ops.ts).
import { tf } from '../engine/index.js';
import * as ops from '../engine/ops.js';
import type { ParamStore } from './params.js';

export interface Ctx {
  /** training-mode batch norm (batch statistics, running statistics updated) */
  training: boolean;
}

export type LayerSpec =
  | { kind: 'relu' }
  | { kind: 'bn'; C: number; affine: boolean }
  | { kind: 'conv'; cin: number; cout: number; k: number; stride: number; padding: number; dilation: number; depthwise: boolean }
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
        const y = tf.batchNorm(x, rm, rv, b ?? tf.zeros([C]), g ?? tf.ones([C]), BN_EPS);
        return y as tf.Tensor4D;
      }
      const r = ops.batchNorm(x, g, b, BN_EPS);
      const n = x.size / C;
      tf.tidy(() => {
        rm.assign(tf.add(tf.mul(rm, 1 - BN_MOMENTUM), tf.mul(r.mean, BN_MOMENTUM)));
        rv.assign(tf.add(tf.mul(rv, 1 - BN_MOMENTUM), tf.mul(r.variance, (BN_MOMENTUM * n) / Math.max(1, n - 1))));
      });
      return r.y as tf.Tensor4D;
    },
  };
}

/** Conv weight [k, k, cin, cout] (depthwise [k, k, C, 1]) with PyTorch's default initialisation. */
export function conv(p: ParamStore, name: string, o: { cin: number; cout: number; k: number; stride?: number; padding?: number; dilation?: number; depthwise?: boolean }): Layer {
  const { cin, cout, k } = o;
  const stride = o.stride ?? 1, padding = o.padding ?? 0, dilation = o.dilation ?? 1, depthwise = !!o.depthwise;
  if (depthwise && cin !== cout) throw new Error(`${name}: a depthwise conv needs cin = cout (got ${cin}, ${cout})`);
  const w = (depthwise ? p.uniform(`${name}.weight`, [k, k, cin, 1], k * k) : p.uniform(`${name}.weight`, [k, k, cin, cout], k * k * cin)) as tf.Variable<tf.Rank.R4>;
  const f = depthwise ? ops.depthwiseConv2d : ops.conv2d;
  return {
    spec: { kind: 'conv', cin, cout, k, stride, padding, dilation, depthwise },
    params: w.size,
    forward: (x) => f(x, w, { stride, padding, dilation }),
  };
}

export const relu: () => Layer = () => ({ spec: { kind: 'relu' }, params: 0, forward: (x) => tf.relu(x) });
export const identity: () => Layer = () => ({ spec: { kind: 'identity' }, params: 0, forward: (x) => x });

export function zero(stride: number): Layer {
  return { spec: { kind: 'zero', stride }, params: 0, forward: (x) => tf.zerosLike(ops.subsample2d(x, stride)) };
}

export function maxPool(k: number, stride: number, padding: number, padValue = -Infinity): Layer {
  return { spec: { kind: 'max_pool', k, stride, padding, padValue }, params: 0, forward: (x) => ops.maxPool2d(x, k, stride, padding, padValue) };
}

export function avgPool(k: number, stride: number, padding: number, countIncludePad: boolean): Layer {
  return { spec: { kind: 'avg_pool', k, stride, padding, countIncludePad }, params: 0, forward: (x) => ops.avgPool2d(x, k, stride, padding, countIncludePad) };
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
      const r = tf.relu(x);
      const [B, H, W, C] = r.shape;
      const shifted = tf.slice(r, [0, 1, 1, 0], [B, H - 1, W - 1, C]);
      return norm.forward(tf.concat([c1.forward(r, ctx), c2.forward(shifted, ctx)], 3) as tf.Tensor4D, ctx);
    },
  };
}

/** A sequence of layers applied in order. */
export interface Sequential { layers: Layer[]; params: number; forward(x: tf.Tensor4D, ctx: Ctx): tf.Tensor4D }

export function sequential(layers: Layer[]): Sequential {
  return {
    layers,
    params: layers.reduce((a, l) => a + l.params, 0),
    forward: (x, ctx) => layers.reduce((h, l) => l.forward(h, ctx), x),
  };
}
