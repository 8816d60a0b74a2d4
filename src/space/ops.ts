// Candidate operations by name, in two flavours (spec §2.1 and §2.2.1). Each builder returns a
// sequence of primitive layers (src/space/layers.ts): forward, parameter count and the facts the
// Hessian pass needs come with the primitives. Parameter names follow the layer's index in the
// sequence, as a PyTorch nn.Sequential would name them.
import type { ParamStore } from './params.js';
import {
  avgPool, bn, conv, factorizedReduce, identity, maxPool, relu, sequential, zero, type Layer, type Sequential,
} from './layers.js';

export type Flavour = 'darts' | 'bayesnas';
export type OpBuilder = (p: ParamStore, name: string, C: number, stride: number) => Sequential;

export const OP_NAMES = ['none', 'max_pool_3x3', 'avg_pool_3x3', 'skip_connect', 'sep_conv_3x3', 'sep_conv_5x5', 'dil_conv_3x3', 'dil_conv_5x5'] as const;
export type OpName = typeof OP_NAMES[number];

/** Builds named layers: entry i is named `${name}.${i}` (parameter-free entries keep their index). */
function seq(p: ParamStore, name: string, parts: Array<Layer | ((n: string) => Layer)>): Sequential {
  return sequential(parts.map((part, i) => (typeof part === 'function' ? part(`${name}.${i}`) : part)));
}

// DARTS: ReLU-conv-BN; pools followed by BN(affine=false); FactorizedReduce for skip at stride 2.
const dartsSep = (k: number): OpBuilder => (p, n, C, s) => seq(p, n, [
  relu(), (m) => conv(p, m, { cin: C, cout: C, k, stride: s, padding: (k - 1) / 2, depthwise: true }),
  (m) => conv(p, m, { cin: C, cout: C, k: 1 }), (m) => bn(p, m, C),
  relu(), (m) => conv(p, m, { cin: C, cout: C, k, padding: (k - 1) / 2, depthwise: true }),
  (m) => conv(p, m, { cin: C, cout: C, k: 1 }), (m) => bn(p, m, C),
]);
const dartsDil = (k: number): OpBuilder => (p, n, C, s) => seq(p, n, [
  relu(), (m) => conv(p, m, { cin: C, cout: C, k, stride: s, padding: k - 1, dilation: 2, depthwise: true }),
  (m) => conv(p, m, { cin: C, cout: C, k: 1 }), (m) => bn(p, m, C),
]);

export const DARTS_OPS: Record<OpName, OpBuilder> = {
  none: (_p, _n, _C, s) => sequential([zero(s)]),
  max_pool_3x3: (p, n, C, s) => seq(p, n, [maxPool(3, s, 1), (m) => bn(p, m, C, false)]),
  avg_pool_3x3: (p, n, C, s) => seq(p, n, [avgPool(3, s, 1, false), (m) => bn(p, m, C, false)]),
  skip_connect: (p, n, C, s) => sequential([s === 1 ? identity() : factorizedReduce(p, n, C, C)]),
  sep_conv_3x3: dartsSep(3),
  sep_conv_5x5: dartsSep(5),
  dil_conv_3x3: dartsDil(3),
  dil_conv_5x5: dartsDil(5),
};

// Official BayesNAS search net: BN-ReLU-conv (pre-activation), full dilated convs, zero-padded pools
// with no BN after them, avg-pool divisor always 9, reduction `ident` = BN + strided 1x1 conv; no `none`.
const bnasSep = (k: number): OpBuilder => (p, n, C, s) => seq(p, n, [
  (m) => bn(p, m, C), relu(), (m) => conv(p, m, { cin: C, cout: C, k, stride: s, padding: (k - 1) / 2, depthwise: true }),
  (m) => conv(p, m, { cin: C, cout: C, k: 1 }),
  (m) => bn(p, m, C), relu(), (m) => conv(p, m, { cin: C, cout: C, k, padding: (k - 1) / 2, depthwise: true }),
  (m) => conv(p, m, { cin: C, cout: C, k: 1 }),
]);
const bnasDil = (k: number): OpBuilder => (p, n, C, s) => seq(p, n, [
  (m) => bn(p, m, C), relu(), (m) => conv(p, m, { cin: C, cout: C, k, stride: s, padding: k - 1, dilation: 2 }),
  (m) => conv(p, m, { cin: C, cout: C, k: 1 }),
]);

export const BAYESNAS_OPS: Record<OpName, OpBuilder> = {
  none: () => { throw new Error("the bayesnas flavour has no 'none' op: the origin switch carries the zero decision"); },
  max_pool_3x3: (_p, _n, _C, s) => sequential([maxPool(3, s, 1, 0)]),
  avg_pool_3x3: (_p, _n, _C, s) => sequential([avgPool(3, s, 1, true)]),
  skip_connect: (p, n, C, s) => (s === 1 ? sequential([identity()]) : seq(p, n, [(m) => bn(p, m, C), (m) => conv(p, m, { cin: C, cout: C, k: 1, stride: 2 })])),
  sep_conv_3x3: bnasSep(3),
  sep_conv_5x5: bnasSep(5),
  dil_conv_3x3: bnasDil(3),
  dil_conv_5x5: bnasDil(5),
};

export const OPS: Record<Flavour, Record<OpName, OpBuilder>> = { darts: DARTS_OPS, bayesnas: BAYESNAS_OPS };

export function isOpName(s: string): s is OpName {
  return (OP_NAMES as readonly string[]).includes(s);
}

/** Closed-form parameter count of an op (checked against instantiation in the tests). */
export function opParamCount(flavour: Flavour, op: OpName, C: number, stride: number): number {
  const sep = (k: number) => 2 * (k * k * C + C * C);
  if (flavour === 'darts') {
    switch (op) {
      case 'none': case 'max_pool_3x3': case 'avg_pool_3x3': return 0;
      case 'skip_connect': return stride === 1 ? 0 : C * C + 2 * C;   // two 1x1 C→C/2 + BN(C)
      case 'sep_conv_3x3': return sep(3) + 4 * C;
      case 'sep_conv_5x5': return sep(5) + 4 * C;
      case 'dil_conv_3x3': return 9 * C + C * C + 2 * C;
      case 'dil_conv_5x5': return 25 * C + C * C + 2 * C;
    }
  }
  switch (op) {
    case 'none': throw new Error("the bayesnas flavour has no 'none' op");
    case 'max_pool_3x3': case 'avg_pool_3x3': return 0;
    case 'skip_connect': return stride === 1 ? 0 : 2 * C + C * C;
    case 'sep_conv_3x3': return sep(3) + 4 * C;
    case 'sep_conv_5x5': return sep(5) + 4 * C;
    case 'dil_conv_3x3': return 2 * C + 9 * C * C + C * C;
    case 'dil_conv_5x5': return 2 * C + 25 * C * C + C * C;
  }
}
