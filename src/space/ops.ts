// Candidate operations by name (DARTS flavour: ReLU-conv-BN, as in the DARTS search space,
// shared/design/bayesnas-algorithm.md §2.1). Each builder creates its parameters in a ParamStore
// under `prefix` and returns the forward function. NHWC, training-mode batch norm.
import { tf } from '../engine/index.js';
import * as ops from '../engine/ops.js';
import type { ParamStore } from './params.js';

export interface OpModule { forward(x: tf.Tensor4D): tf.Tensor4D }
export type OpBuilder = (p: ParamStore, prefix: string, C: number, stride: number) => OpModule;

/** Affine (or not) batch norm; parameters `${prefix}.weight` / `${prefix}.bias` as in PyTorch. */
export function bnLayer(p: ParamStore, prefix: string, C: number, affine = true) {
  const g = affine ? p.constant(`${prefix}.weight`, [C], 1) as tf.Variable<tf.Rank.R1> : null;
  const b = affine ? p.constant(`${prefix}.bias`, [C], 0) as tf.Variable<tf.Rank.R1> : null;
  return (x: tf.Tensor4D) => ops.batchNorm(x, g, b).y as tf.Tensor4D;
}

/** Conv weight [k, k, Cin/groups…, Cout] (depthwise: [k, k, C, 1]) with PyTorch's default init. */
export function convWeight(p: ParamStore, name: string, k: number, cin: number, cout: number, depthwise = false) {
  return depthwise
    ? p.uniform(name, [k, k, cin, 1], k * k) as tf.Variable<tf.Rank.R4>
    : p.uniform(name, [k, k, cin, cout], k * k * cin) as tf.Variable<tf.Rank.R4>;
}

function sepConv(k: number): OpBuilder {
  return (p, pre, C, stride) => {
    const pad = (k - 1) / 2;
    const dw1 = convWeight(p, `${pre}.op.1.weight`, k, C, C, true), pw1 = convWeight(p, `${pre}.op.2.weight`, 1, C, C);
    const bn1 = bnLayer(p, `${pre}.op.3`, C);
    const dw2 = convWeight(p, `${pre}.op.5.weight`, k, C, C, true), pw2 = convWeight(p, `${pre}.op.6.weight`, 1, C, C);
    const bn2 = bnLayer(p, `${pre}.op.7`, C);
    return {
      forward: (x) => {
        let h = ops.depthwiseConv2d(tf.relu(x), dw1, { stride, padding: pad });
        h = bn1(ops.conv2d(h, pw1));
        h = ops.depthwiseConv2d(tf.relu(h), dw2, { padding: pad });
        return bn2(ops.conv2d(h, pw2));
      },
    };
  };
}

function dilConv(k: number): OpBuilder {
  return (p, pre, C, stride) => {
    const dw = convWeight(p, `${pre}.op.1.weight`, k, C, C, true), pw = convWeight(p, `${pre}.op.2.weight`, 1, C, C);
    const bn = bnLayer(p, `${pre}.op.3`, C);
    return { forward: (x) => bn(ops.conv2d(ops.depthwiseConv2d(tf.relu(x), dw, { stride, padding: k - 1, dilation: 2 }), pw)) };
  };
}

/** ReLU, two 1x1 stride-2 convs on x and on x shifted by one pixel, concatenated, BN (DARTS). */
export function factorizedReduce(p: ParamStore, pre: string, cin: number, cout: number): OpModule {
  const w1 = convWeight(p, `${pre}.conv_1.weight`, 1, cin, cout / 2), w2 = convWeight(p, `${pre}.conv_2.weight`, 1, cin, cout / 2);
  const bn = bnLayer(p, `${pre}.bn`, cout);
  return {
    forward: (x) => {
      const r = tf.relu(x);
      const [B, H, W, C] = r.shape;
      const shifted = tf.slice(r, [0, 1, 1, 0], [B, H - 1, W - 1, C]);
      return bn(tf.concat([ops.conv2d(r, w1, { stride: 2 }), ops.conv2d(shifted, w2, { stride: 2 })], 3) as tf.Tensor4D);
    },
  };
}

export const DARTS_OPS: Record<string, OpBuilder> = {
  none: (_p, _pre, _C, stride) => ({
    forward: (x) => (stride === 1 ? tf.zerosLike(x) : tf.zerosLike(ops.subsample2d(x, stride))),
  }),
  max_pool_3x3: (p, pre, C, stride) => {
    const bn = bnLayer(p, `${pre}.1`, C, false);
    return { forward: (x) => bn(ops.maxPool2d(x, 3, stride, 1)) };
  },
  avg_pool_3x3: (p, pre, C, stride) => {
    const bn = bnLayer(p, `${pre}.1`, C, false);
    return { forward: (x) => bn(ops.avgPool2d(x, 3, stride, 1, false)) };
  },
  skip_connect: (p, pre, C, stride) => (stride === 1 ? { forward: (x) => x } : factorizedReduce(p, pre, C, C)),
  sep_conv_3x3: sepConv(3),
  sep_conv_5x5: sepConv(5),
  dil_conv_3x3: dilConv(3),
  dil_conv_5x5: dilConv(5),
};

/** The 7 non-zero DARTS candidates, in the order of the engine benchmark's mixed edge. */
export const SLICE_OPS = ['sep_conv_3x3', 'sep_conv_5x5', 'dil_conv_3x3', 'dil_conv_5x5', 'max_pool_3x3', 'avg_pool_3x3', 'skip_connect'];
