// The evaluation network built from a genotype, as DARTS builds it (spec §7.4, §7.5; DARTS
// `model.py` NetworkCIFAR / NetworkImageNet), for the general genotype: a node sums all its
// (op, input) entries, so DARTS's two-per-node cells and BayesNAS's cells build the same way.
//
//  cifar:    stem 3x3 conv in→3C + BN; `layers` cells, reductions at ⌊L/3⌋ and ⌊2L/3⌋ (channels
//            double there); optional auxiliary head on the output of cell ⌊2L/3⌋; global average
//            pool; Linear.
//  imagenet: stem0 = 3x3 s2 conv in→C/2, BN, ReLU, 3x3 s2 conv C/2→C, BN; stem1 = ReLU, 3x3 s2
//            conv C→C, BN; the first cell's c_{k-2} is stem0's output (twice stem1's resolution),
//            so its preprocessor is a FactorizedReduce; auxiliary head without its last BN (as
//            DARTS); global average pool (DARTS' 7x7 pool at 224x224); Linear.
//
// Cell: preprocess0 = FactorizedReduce(C_{k-2}→C) after a reduction, else ReLU-1x1 conv-BN;
// preprocess1 = ReLU-1x1 conv-BN; ops reading c_{k-2}/c_{k-1} in a reduction cell have stride 2;
// drop-path (per-sample, scaled by 1/keep) on every op output except identities, in training only;
// output = concat of the `concat` states.
//
// The auxiliary head's pooling is DARTS's AvgPool(5, stride 3) at 8x8 (CIFAR) and AvgPool(5,
// stride 2) at 7x7 (ImageNet at 224), i.e. kernel min(5, H−1) with stride H − kernel: a 2x2 map
// for the 2x2 conv at any input size (28x28 images give 7x7 there).
//
// style 'bayesnas' is the official BayesNAS evaluation network instead (spec §7.4, §7.5): stem
// conv without BN (ImageNet: stem1 without BN), CReduct preprocessors ([1x1 stride-2 conv in→in
// after a reduction], BN, ReLU, 1x1 conv), the pre-activation ops of the official search network,
// channel dropout (dropout2d) with the drop probability on every op output, identities included,
// instead of drop-path, and a head BN before the global pool.
//
// Parameter names equal the PyTorch reference's state_dict keys (python-ref/bayesnas_ref/evalnet.py).
import { tf } from '../engine/index.js';
import { bn, concatChannels, conv, factorizedReduce, relu, sequential, sumNode, type Ctx, type Sequential } from '../space/layers.js';
import { ParamStore } from '../space/params.js';
import * as ops from '../engine/ops.js';
import type { CellGenotype, Genotype } from '../genotype/types.js';
import { validateGenotype } from '../genotype/types.js';
import { buildEvalOp, EVAL_OP_NAMES, type EvalStyle } from './ops.js';

export type NetworkKind = 'cifar' | 'imagenet';

export interface EvalNetOptions {
  genotype: Genotype;
  /** initial channels (`--channels`; DARTS: 36 on CIFAR, 48 on ImageNet) */
  C: number;
  /** cells (`--layers`; DARTS: 20 on CIFAR, 14 on ImageNet) */
  layers: number;
  classes?: number;
  inChannels?: number;
  auxiliary?: boolean;
  kind?: NetworkKind;
  /** 'darts' (DARTS's evaluation network, default) or 'bayesnas' (the official BayesNAS one) */
  style?: EvalStyle;
  seed?: number;
}

export interface EvalCtx extends Ctx {
  /** drop-path probability (training only; 0 = off) */
  dropPath?: number;
  /** uniform [0, 1) source of the drop-path masks */
  random?: () => number;
}

interface CellOp { op: string; input: number; stride: number; identity: boolean; seq: Sequential }

export interface EvalCell {
  index: number;
  reduction: boolean;
  C: number;
  preprocess0: Sequential;
  preprocess1: Sequential;
  /** node i: its ops, summed */
  nodes: CellOp[][];
  concat: number[];
  /** drop probability as channel dropout on every op output (official BayesNAS) instead of drop-path */
  channelDropout: boolean;
}

export interface EvalNet {
  kind: NetworkKind;
  style: EvalStyle;
  genotype: Genotype;
  C: number;
  layers: number;
  classes: number;
  inChannels: number;
  auxiliary: boolean;
  params: ParamStore;
  cells: EvalCell[];
  /** cell after which the auxiliary head reads (⌊2L/3⌋) */
  auxiliaryAt: number;
  /** logits, and the auxiliary head's logits when the net has one and ctx.training */
  forward(x: tf.Tensor4D, ctx: EvalCtx): { logits: tf.Tensor2D; logitsAux: tf.Tensor2D | null };
  /** trainable parameters without the auxiliary head (DARTS' count) and of the head alone */
  count(): { params: number; auxiliary: number };
  dispose(): void;
}

export const AUX_PREFIX = 'auxiliary_head.';

export function reductionIndices(layers: number): number[] {
  return [Math.floor(layers / 3), Math.floor((2 * layers) / 3)];
}

/** ReLU, 1x1 conv, BN (DARTS ReLUConvBN with kernel 1): names `op.1`, `op.2`. */
function reluConvBn(p: ParamStore, name: string, cin: number, cout: number): Sequential {
  return sequential([relu(), conv(p, `${name}.op.1`, { cin, cout, k: 1 }), bn(p, `${name}.op.2`, cout)]);
}

/** Official CReduct: [1x1 stride-2 conv in→in], BN(in), ReLU, 1x1 conv in→out. */
function cReduct(p: ParamStore, name: string, cin: number, cout: number, reduce: boolean): Sequential {
  const first = reduce ? [conv(p, `${name}.reduce`, { cin, cout: cin, k: 1, stride: 2 })] : [];
  return sequential([...first, bn(p, `${name}.bn`, cin), relu(), conv(p, `${name}.conv`, { cin, cout, k: 1 })]);
}

function buildCell(p: ParamStore, name: string, index: number, cell: CellGenotype, Cpp: number, Cp: number, C: number, reduction: boolean, reductionPrev: boolean, style: EvalStyle): EvalCell {
  const official = style === 'bayesnas';
  const preprocess0 = official ? cReduct(p, `${name}.preprocess0`, Cpp, C, reductionPrev)
    : reductionPrev ? sequential([factorizedReduce(p, `${name}.preprocess0`, Cpp, C)]) : reluConvBn(p, `${name}.preprocess0`, Cpp, C);
  const preprocess1 = official ? cReduct(p, `${name}.preprocess1`, Cp, C, false) : reluConvBn(p, `${name}.preprocess1`, Cp, C);
  let k = 0;
  const nodes = cell.nodes.map((entries) => entries.map((e) => {
    const stride = reduction && e.input < 2 ? 2 : 1;
    const seq = buildEvalOp(p, `${name}.ops.${k++}`, e.op, C, stride, style);
    return { op: e.op, input: e.input, stride, identity: e.op === 'skip_connect' && stride === 1, seq };
  }));
  return { index, reduction, C, preprocess0, preprocess1, nodes, concat: [...cell.concat], channelDropout: official };
}

/** dropout2d: each (sample, channel) kept with probability 1 − p and scaled by 1/(1 − p). */
export function channelDropout(x: tf.Tensor4D, prob: number, random: () => number): tf.Tensor4D {
  const keep = 1 - prob;
  const [B, , , C] = x.shape;
  const m = new Float32Array(B * C);
  for (let i = 0; i < m.length; i++) m[i] = random() < keep ? 1 / keep : 0;
  return tf.mul(x, tf.tensor4d(m, [B, 1, 1, C])) as tf.Tensor4D;
}

/** Per-sample drop-path mask (Bernoulli(keep) / keep), shape [B, 1, 1, 1]. */
export function dropPath(x: tf.Tensor4D, prob: number, random: () => number): tf.Tensor4D {
  const keep = 1 - prob;
  const B = x.shape[0];
  const m = new Float32Array(B);
  for (let i = 0; i < B; i++) m[i] = random() < keep ? 1 / keep : 0;
  return tf.mul(x, tf.tensor4d(m, [B, 1, 1, 1])) as tf.Tensor4D;
}

function runCell(cell: EvalCell, s0: tf.Tensor4D, s1: tf.Tensor4D, ctx: EvalCtx): tf.Tensor4D {
  const states: Array<tf.Tensor4D | null> = [cell.preprocess0.forward(s0, ctx), cell.preprocess1.forward(s1, ctx)];
  const drop = ctx.training && (ctx.dropPath ?? 0) > 0;
  for (const node of cell.nodes) {
    if (!node.length) { states.push(null); continue; }
    const terms = node.map((o) => {
      const h = o.seq.forward(states[o.input]!, ctx);
      if (!drop) return h;
      if (cell.channelDropout) return channelDropout(h, ctx.dropPath!, ctx.random ?? Math.random);
      return o.identity ? h : dropPath(h, ctx.dropPath!, ctx.random ?? Math.random);
    });
    states.push(sumNode(terms, ctx));
  }
  return concatChannels(cell.concat.map((c) => states[c]!), ctx);
}

/** Auxiliary head (DARTS AuxiliaryHeadCIFAR / AuxiliaryHeadImageNet) on a C-channel map. */
function auxiliaryHead(p: ParamStore, C: number, classes: number, finalBn: boolean) {
  const c1 = conv(p, `${AUX_PREFIX}features.2`, { cin: C, cout: 128, k: 1 });
  const b1 = bn(p, `${AUX_PREFIX}features.3`, 128);
  const c2 = conv(p, `${AUX_PREFIX}features.5`, { cin: 128, cout: 768, k: 2 });
  const b2 = finalBn ? bn(p, `${AUX_PREFIX}features.6`, 768) : null;
  const w = p.uniform(`${AUX_PREFIX}classifier.weight`, [768, classes], 768) as tf.Variable<tf.Rank.R2>;
  const b = p.uniform(`${AUX_PREFIX}classifier.bias`, [classes], 768) as tf.Variable<tf.Rank.R1>;
  return (x: tf.Tensor4D, ctx: Ctx): tf.Tensor2D => {
    const H = x.shape[1];
    if (H < 2 || x.shape[2] !== H) throw new Error(`auxiliary head: needs a square map of at least 2x2, got ${H}x${x.shape[2]}`);
    const k = Math.min(5, H - 1);
    let h = ops.avgPool2d(tf.relu(x), k, H - k, 0, false);
    h = tf.relu(b1.forward(c1.forward(h, ctx), ctx));
    h = c2.forward(h, ctx);
    if (b2) h = b2.forward(h, ctx);
    h = tf.relu(h);
    return tf.add(tf.matMul(tf.reshape(h, [h.shape[0], -1]), w), b) as tf.Tensor2D;
  };
}

export function buildEvalNet(o: EvalNetOptions): EvalNet {
  const kind = o.kind ?? 'cifar';
  const style = o.style ?? 'darts';
  const official = style === 'bayesnas';
  const classes = o.classes ?? (kind === 'imagenet' ? 1000 : 10);
  const inChannels = o.inChannels ?? 3;
  const { C, layers, genotype } = o;
  const auxiliary = !!o.auxiliary;
  validateGenotype(genotype, genotype.name ?? 'genotype', { ops: EVAL_OP_NAMES });
  if (C < 2 || C % 2) throw new Error(`channels must be an even number >= 2 (FactorizedReduce halves them), got ${C}`);
  if (layers < 1) throw new Error(`layers must be >= 1, got ${layers}`);
  const p = new ParamStore(o.seed ?? 0);
  let stem: (x: tf.Tensor4D, ctx: Ctx) => [tf.Tensor4D, tf.Tensor4D];
  let Cpp: number, Cp: number, reductionPrev: boolean;
  if (kind === 'cifar') {
    const Cs = 3 * C;
    const s = sequential([conv(p, 'stem.0', { cin: inChannels, cout: Cs, k: 3, padding: 1 }), ...(official ? [] : [bn(p, 'stem.1', Cs)])]);
    stem = (x, ctx) => { const y = s.forward(x, ctx); return [y, y]; };
    Cpp = Cs; Cp = Cs; reductionPrev = false;
  } else {
    const s0 = sequential([
      conv(p, 'stem0.0', { cin: inChannels, cout: C / 2, k: 3, stride: 2, padding: 1 }), bn(p, 'stem0.1', C / 2), relu(),
      conv(p, 'stem0.3', { cin: C / 2, cout: C, k: 3, stride: 2, padding: 1 }), bn(p, 'stem0.4', C),
    ]);
    const s1 = sequential([relu(), conv(p, 'stem1.1', { cin: C, cout: C, k: 3, stride: 2, padding: 1 }), ...(official ? [] : [bn(p, 'stem1.2', C)])]);
    stem = (x, ctx) => { const a = s0.forward(x, ctx); return [a, s1.forward(a, ctx)]; };
    Cpp = C; Cp = C; reductionPrev = true;
  }
  const reductions = new Set(reductionIndices(layers));
  const auxiliaryAt = Math.floor((2 * layers) / 3);
  const cells: EvalCell[] = [];
  let Ccur = C, Caux = 0;
  for (let i = 0; i < layers; i++) {
    const reduction = reductions.has(i);
    if (reduction) Ccur *= 2;
    const g = reduction ? genotype.reduce : genotype.normal;
    cells.push(buildCell(p, `cells.${i}`, i, g, Cpp, Cp, Ccur, reduction, reductionPrev, style));
    reductionPrev = reduction;
    Cpp = Cp;
    Cp = g.concat.length * Ccur;
    if (i === auxiliaryAt) Caux = Cp;
  }
  const aux = auxiliary ? auxiliaryHead(p, Caux, classes, kind === 'cifar') : null;
  const headBn = official ? bn(p, 'head.bn', Cp) : null;
  const fcW = p.uniform('classifier.weight', [Cp, classes], Cp) as tf.Variable<tf.Rank.R2>;
  const fcB = p.uniform('classifier.bias', [classes], Cp) as tf.Variable<tf.Rank.R1>;

  const forward = (x: tf.Tensor4D, ctx: EvalCtx) => {
    let [s0, s1] = stem(x, ctx);
    let logitsAux: tf.Tensor2D | null = null;
    for (const cell of cells) {
      const out = runCell(cell, s0, s1, ctx);
      s0 = s1;
      s1 = out;
      if (aux && ctx.training && cell.index === auxiliaryAt) logitsAux = aux(s1, ctx);
    }
    const features = tf.mean(headBn ? headBn.forward(s1, ctx) : s1, [1, 2]) as tf.Tensor2D;
    return { logits: tf.add(tf.matMul(features, fcW), fcB) as tf.Tensor2D, logitsAux };
  };
  const count = () => {
    const all = p.select('weights');
    const auxN = all.filter((e) => e.name.startsWith(AUX_PREFIX)).reduce((a, e) => a + e.variable.size, 0);
    return { params: p.count('weights') - auxN, auxiliary: auxN };
  };
  return {
    kind, style, genotype, C, layers, classes, inChannels, auxiliary, params: p, cells, auxiliaryAt,
    forward, count, dispose: () => p.dispose(),
  };
}

/** Every shape-free fact of a network in one object (for config.json and --json). */
export function describeEvalNet(net: EvalNet) {
  const c = net.count();
  return {
    network: net.kind, style: net.style, genotype: net.genotype.name ?? null, layers: net.layers, channels: net.C, classes: net.classes,
    inChannels: net.inChannels, auxiliary: net.auxiliary, reductions: reductionIndices(net.layers), auxiliaryAt: net.auxiliary ? net.auxiliaryAt : null,
    params: c.params, paramsAuxiliary: c.params + c.auxiliary, auxiliaryHead: c.auxiliary,
  };
}
