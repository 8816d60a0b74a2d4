// The "supernet slice" of the engine benchmark (same network as python-ref/bayesnas_ref/slice_net.py):
// stem conv3x3 + BN, a stride-1 mixed edge with a residual add, a stride-2 mixed edge, global
// average pool, dense. A mixed edge is Σ_o s_o · op_o(x) over the 7 DARTS candidates, one scalar
// switch per op.
import { tf } from '../engine/index.js';
import { bn, conv, type Ctx } from './layers.js';
import { DARTS_OPS, type OpName } from './ops.js';
import { ParamStore } from './params.js';

export const SLICE_OPS: OpName[] = ['sep_conv_3x3', 'sep_conv_5x5', 'dil_conv_3x3', 'dil_conv_5x5', 'max_pool_3x3', 'avg_pool_3x3', 'skip_connect'];

export interface SliceNet {
  params: ParamStore;
  /** logits [B, classes] */
  forward(x: tf.Tensor4D, ctx?: Ctx): tf.Tensor2D;
}

function mixedEdge(p: ParamStore, pre: string, C: number, stride: number) {
  const mods = SLICE_OPS.map((n, i) => DARTS_OPS[n](p, `${pre}.ops.${i}`, C, stride));
  const switches = p.constant(`${pre}.switches`, [SLICE_OPS.length], 1, 'switches');
  return (x: tf.Tensor4D, ctx: Ctx) => {
    const s = tf.unstack(switches);
    return tf.addN(mods.map((m, i) => tf.mul(m.forward(x, ctx), s[i]))) as tf.Tensor4D;
  };
}

export function buildSlice(opts: { C?: number; classes?: number; inChannels?: number; seed?: number } = {}): SliceNet {
  const C = opts.C ?? 16, K = opts.classes ?? 10, cin = opts.inChannels ?? 3;
  const p = new ParamStore(opts.seed ?? 0);
  const stem = conv(p, 'stem.0', { cin, cout: C, k: 3, padding: 1 });
  const stemBn = bn(p, 'stem.1', C);
  const edge1 = mixedEdge(p, 'edge1', C, 1);
  const edge2 = mixedEdge(p, 'edge2', C, 2);
  const fcW = p.uniform('classifier.weight', [C, K], C) as tf.Variable<tf.Rank.R2>;
  const fcB = p.uniform('classifier.bias', [K], C) as tf.Variable<tf.Rank.R1>;
  return {
    params: p,
    forward: (x, ctx = { training: true }) => {
      let h = stemBn.forward(stem.forward(x, ctx), ctx);
      h = tf.add(h, edge1(h, ctx)) as tf.Tensor4D;
      h = edge2(h, ctx);
      return tf.add(tf.matMul(tf.mean(h, [1, 2]) as tf.Tensor2D, fcW), fcB) as tf.Tensor2D;
    },
  };
}
