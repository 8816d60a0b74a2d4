// Operations of the evaluation network (DARTS `operations.py` semantics, spec §2.1, §7.4): the
// convolutions, `skip_connect` (identity, or FactorizedReduce at stride 2) and `none` are the
// search flavour's; the pools differ from the search network's in having no BN after them
// (DARTS adds BN(affine=False) to pools in the search network only).
//
// Parameter names match the PyTorch reference (python-ref/bayesnas_ref/evalnet.py): sep/dil convs
// wrap their layers in `op` (`<name>.op.1.weight` ...), FactorizedReduce names its parts directly.
import type { ParamStore } from '../space/params.js';
import { avgPool, maxPool, sequential, type Sequential } from '../space/layers.js';
import { BAYESNAS_OPS, DARTS_OPS, isOpName, OP_NAMES } from '../space/ops.js';

export type EvalOpBuilder = (p: ParamStore, name: string, C: number, stride: number) => Sequential;

export const EVAL_OPS: Record<string, EvalOpBuilder> = {
  none: DARTS_OPS.none,
  max_pool_3x3: (_p, _n, _C, s) => sequential([maxPool(3, s, 1)]),
  avg_pool_3x3: (_p, _n, _C, s) => sequential([avgPool(3, s, 1, false)]),
  skip_connect: DARTS_OPS.skip_connect,
  sep_conv_3x3: (p, n, C, s) => DARTS_OPS.sep_conv_3x3(p, `${n}.op`, C, s),
  sep_conv_5x5: (p, n, C, s) => DARTS_OPS.sep_conv_5x5(p, `${n}.op`, C, s),
  dil_conv_3x3: (p, n, C, s) => DARTS_OPS.dil_conv_3x3(p, `${n}.op`, C, s),
  dil_conv_5x5: (p, n, C, s) => DARTS_OPS.dil_conv_5x5(p, `${n}.op`, C, s),
};

export const EVAL_OP_NAMES: readonly string[] = OP_NAMES;

/**
 * The official BayesNAS evaluation network's ops (spec §2.2.1, §7.4): the pre-activation flavour of
 * the search network (BN-ReLU-conv, zero-padded pools, avg-pool divisor 9, BN + strided 1x1 conv for
 * a reducing skip), named under `op` as in python-ref.
 */
export const BAYESNAS_EVAL_OPS: Record<string, EvalOpBuilder> = {
  max_pool_3x3: BAYESNAS_OPS.max_pool_3x3,
  avg_pool_3x3: BAYESNAS_OPS.avg_pool_3x3,
  skip_connect: (p, n, C, s) => BAYESNAS_OPS.skip_connect(p, `${n}.op`, C, s),
  sep_conv_3x3: (p, n, C, s) => BAYESNAS_OPS.sep_conv_3x3(p, `${n}.op`, C, s),
  sep_conv_5x5: (p, n, C, s) => BAYESNAS_OPS.sep_conv_5x5(p, `${n}.op`, C, s),
  dil_conv_3x3: (p, n, C, s) => BAYESNAS_OPS.dil_conv_3x3(p, `${n}.op`, C, s),
  dil_conv_5x5: (p, n, C, s) => BAYESNAS_OPS.dil_conv_5x5(p, `${n}.op`, C, s),
};

export type EvalStyle = 'darts' | 'bayesnas';

export function buildEvalOp(p: ParamStore, name: string, op: string, C: number, stride: number, style: EvalStyle = 'darts'): Sequential {
  if (!isOpName(op)) throw new Error(`${name}: unknown op '${op}' (known: ${OP_NAMES.join(', ')})`);
  const table = style === 'bayesnas' ? BAYESNAS_EVAL_OPS : EVAL_OPS;
  if (!table[op]) throw new Error(`${name}: op '${op}' does not exist in the ${style} evaluation network`);
  return table[op](p, name, C, stride);
}

/** Closed-form parameter count of an evaluation-network op (pools have none). */
export function evalOpParamCount(op: string, C: number, stride: number): number {
  const sep = (k: number) => 2 * (k * k * C + C * C + 2 * C);
  switch (op) {
    case 'none': case 'max_pool_3x3': case 'avg_pool_3x3': return 0;
    case 'skip_connect': return stride === 1 ? 0 : C * C + 2 * C;
    case 'sep_conv_3x3': return sep(3);
    case 'sep_conv_5x5': return sep(5);
    case 'dil_conv_3x3': return 9 * C + C * C + 2 * C;
    case 'dil_conv_5x5': return 25 * C + C * C + 2 * C;
    default: throw new Error(`unknown op '${op}'`);
  }
}
