// The one-shot supernet over any cell DAG (spec §2): every candidate op on every edge is multiplied
// by its child switch s_{e,o}; every edge by its origin switch s_e (on the edge output or input, see
// SpaceSpec.gate). Switches start at 1 and live in the `switches` parameter group, one [E] origin and
// one [E, O] child variable per cell, so weights and switches train with separate optimisers.
import { tf } from '../engine/index.js';
import { bn, concatChannels, conv, factorizedReduce, relu, reluFwd, runLayers, sequential, sumNode, type Ctx, type Sequential } from './layers.js';
import { OPS } from './ops.js';
import { averaged } from '../hessian/tape.js';
import { fanOutWebgpu, webgpuMixedEdgesReady, weightedSumWebgpu } from '../engine/webgpu-kernels.js';
import { ParamStore } from './params.js';
import { concatNodes, reductionCells, type EdgeSpec, type SpaceSpec } from './spaces.js';

export interface EdgeInfo extends EdgeSpec { stride: number; ops: Sequential[] }

export interface CellInfo {
  index: number;
  reduction: boolean;
  /** channels of every node of this cell */
  C: number;
  edges: EdgeInfo[];
  origin: tf.Variable<tf.Rank.R1>;
  child: tf.Variable<tf.Rank.R2>;
  preprocess0: Sequential;
  preprocess1: Sequential;
}

/**
 * Forward context of the supernet: with `switches`, the cell's switch values come from it (e.g. the
 * softmax of DARTS's α or a Gumbel-softmax sample of SNAS) instead of the cell's switch variables.
 */
export interface SupernetCtx extends Ctx {
  switches?: (cell: CellInfo) => { origin: tf.Tensor1D; child: tf.Tensor2D };
}

export interface Supernet {
  space: SpaceSpec;
  params: ParamStore;
  cells: CellInfo[];
  classes: number;
  inChannels: number;
  /** logits [B, classes] */
  forward(x: tf.Tensor4D, ctx: SupernetCtx): tf.Tensor2D;
  /** output of each cell (for shape checks and analysis) */
  forwardCells(x: tf.Tensor4D, ctx: SupernetCtx): { cells: tf.Tensor4D[]; features: tf.Tensor2D; logits: tf.Tensor2D };
  /** classifier weight [features, classes] */
  classifier: tf.Variable<tf.Rank.R2>;
  dispose(): void;
}

export interface SupernetOptions { classes?: number; inChannels?: number; seed?: number }

function preprocessor(p: ParamStore, name: string, spec: SpaceSpec, cin: number, cout: number, reduce: boolean): Sequential {
  if (spec.preprocess === 'darts') {
    if (reduce) return sequential([factorizedReduce(p, name, cin, cout)]);
    return sequential([relu(), conv(p, `${name}.op.1`, { cin, cout, k: 1 }), bn(p, `${name}.op.2`, cout)]);
  }
  // CReduct (official): [1x1 stride-2 conv in→in when the input has twice the resolution], BN, ReLU, 1x1 conv.
  const layers = reduce ? [conv(p, `${name}.reduce`, { cin, cout: cin, k: 1, stride: 2 })] : [];
  return sequential([...layers, bn(p, `${name}.bn`, cin), relu(), conv(p, `${name}.conv`, { cin, cout, k: 1 })]);
}

export function buildSupernet(space: SpaceSpec, opts: SupernetOptions = {}): Supernet {
  const classes = opts.classes ?? 10, inChannels = opts.inChannels ?? 3;
  const p = new ParamStore(opts.seed ?? 0);
  const Cstem = space.stemMultiplier * space.C;
  const stem = sequential(space.stem === 'conv-bn'
    ? [conv(p, 'stem.0', { cin: inChannels, cout: Cstem, k: 3, padding: 1 }), bn(p, 'stem.1', Cstem)]
    : [conv(p, 'stem.0', { cin: inChannels, cout: Cstem, k: 3, padding: 1 })]);
  const reductions = new Set(reductionCells(space));
  const concat = concatNodes(space);
  const cells: CellInfo[] = [];
  let Cpp = Cstem, Cp = Cstem, Ccur = space.C, reductionPrev = false;
  for (let i = 0; i < space.layers; i++) {
    const reduction = reductions.has(i);
    if (reduction) Ccur *= 2;
    const pre = `cells.${i}`;
    const preprocess0 = preprocessor(p, `${pre}.preprocess0`, space, Cpp, Ccur, reductionPrev);
    const preprocess1 = preprocessor(p, `${pre}.preprocess1`, space, Cp, Ccur, false);
    const edges = (reduction ? space.edges.reduce : space.edges.normal).map((e, ei) => {
      const stride = reduction && e.source < 2 ? 2 : 1;
      const ops = space.ops.map((o, oi) => OPS[space.flavour][o](p, `${pre}.edges.${ei}.ops.${oi}`, Ccur, stride));
      return { ...e, stride, ops };
    });
    const origin = p.constant(`${pre}.switch_origin`, [edges.length], 1, 'switches') as tf.Variable<tf.Rank.R1>;
    const child = p.constant(`${pre}.switch_child`, [edges.length, space.ops.length], 1, 'switches') as tf.Variable<tf.Rank.R2>;
    cells.push({ index: i, reduction, C: Ccur, edges, origin, child, preprocess0, preprocess1 });
    Cpp = Cp;
    Cp = concat.length * Ccur;
    reductionPrev = reduction;
  }
  const headBn = space.head === 'bn-relu-gap-linear' ? bn(p, 'head.bn', Cp) : null;
  const fcW = p.uniform('classifier.weight', [Cp, classes], Cp) as tf.Variable<tf.Rank.R2>;
  const fcB = p.uniform('classifier.bias', [classes], Cp) as tf.Variable<tf.Rank.R1>;

  // Gates record h_s on the tape under `cells.<i>.origin.<e>` and `cells.<i>.child.<e>.<o>`.
  const gate = (ctx: Ctx, key: string, z: tf.Tensor4D, s: tf.Scalar) => {
    const y = tf.mul(z, s) as tf.Tensor4D;
    ctx.tape?.gate(key, z, s, y);
    return y;
  };
  const runCell = (cell: CellInfo, s0: tf.Tensor4D, s1: tf.Tensor4D, ctx: SupernetCtx): tf.Tensor4D => {
    const states: tf.Tensor4D[] = [cell.preprocess0.forward(s0, ctx), cell.preprocess1.forward(s1, ctx)];
    const sw = ctx.switches?.(cell) ?? { origin: cell.origin, child: cell.child };
    const key = `cells.${cell.index}`;
    // Without a tape, on webgpu, an edge's gated sum is one program over a row of the cell's weights
    // (origin·child when the origin gates the output); the tape records every gate on its own.
    const fused = !ctx.tape && webgpuMixedEdgesReady(space.ops.length);
    const so = fused && space.gate === 'output' ? [] : tf.unstack(sw.origin) as tf.Scalar[];
    const rows = !fused ? [] : tf.unstack(space.gate === 'output' ? tf.mul(tf.expandDims(sw.origin, 1), sw.child) : sw.child) as tf.Tensor1D[];
    const sc = fused ? [] : tf.unstack(sw.child).map((r) => tf.unstack(r)) as tf.Scalar[][];
    // Without a tape, the ops that start with a ReLU share one ReLU of their input (DARTS: the four
    // convolutions of every edge that leaves a state): exact, and a quarter of the ReLU kernels.
    const relus = new Map<tf.Tensor, tf.Tensor4D>();
    const startsWithRelu = (op: Sequential) => op.layers[0]?.spec.kind === 'relu';
    const nRelu = cell.edges[0]?.ops.filter(startsWithRelu).length ?? 0, nPlain = space.ops.length - nRelu;
    // On the fused path, a tensor with k consumers hands each its own alias (fanOutWebgpu), so that its
    // gradient is one sum instead of k − 1 adds; `use` takes the next alias (the tensor itself when none is left).
    const aliases = new Map<tf.Tensor, tf.Tensor4D[]>();
    const share = (t: tf.Tensor4D, k: number) => { if (fused && k > 1) aliases.set(t, fanOutWebgpu(t, k)); return t; };
    const use = (t: tf.Tensor4D) => aliases.get(t)?.pop() ?? t;
    const edgesFrom = (s: number) => cell.edges.filter((e) => e.source === s).length;
    /** op on inp, an edge's input read by `edges` edges (1 with the input gate: each edge gates its own) */
    const runOp = (op: Sequential, inp: tf.Tensor4D, edges: number) => {
      if (ctx.tape || !startsWithRelu(op)) return op.forward(use(inp), ctx);
      let r = relus.get(inp);
      if (!r) relus.set(inp, r = share(reluFwd(use(inp), ctx), nRelu * edges));
      return runLayers(op.layers.slice(1), use(r), ctx);
    };
    /** consumers of state s: its edges' ops (those starting with a ReLU count once: they share it), or their input gates, and the output concat */
    const shareState = (s: number) => {
      const E = edgesFrom(s), out = concat.includes(s - 2) ? 1 : 0;
      share(states[s], (space.gate === 'output' ? E * nPlain + (nRelu && E ? 1 : 0) : E) + out);
    };
    shareState(0);
    shareState(1);
    for (let n = 0; n < space.nodes; n++) {
      const terms: tf.Tensor4D[] = [];
      cell.edges.forEach((e, ei) => {
        if (e.node !== n) return;
        const x = states[e.source];
        if (fused) {
          const inp = space.gate === 'output' ? x : share(tf.mul(use(x), so[ei]) as tf.Tensor4D, nPlain + (nRelu ? 1 : 0));
          terms.push(weightedSumWebgpu(e.ops.map((op) => runOp(op, inp, space.gate === 'output' ? edgesFrom(e.source) : 1)), rows[ei]));
          return;
        }
        const child = (inp: tf.Tensor4D) => sumNode(e.ops.map((op, oi) => gate(ctx, `${key}.child.${ei}.${oi}`, runOp(op, inp, 1), sc[ei][oi])), ctx);
        if (space.gate === 'output') terms.push(gate(ctx, `${key}.origin.${ei}`, child(x), so[ei]));
        else terms.push(child(gate(ctx, `${key}.origin.${ei}`, x, so[ei])));
      });
      states.push(sumNode(terms, ctx));
      shareState(states.length - 1);
    }
    return concatChannels(concat.map((c) => use(states[c + 2])), ctx);
  };

  const forwardCells = (x: tf.Tensor4D, ctx: SupernetCtx) => {
    let s0 = stem.forward(x, ctx), s1 = s0;
    const outs: tf.Tensor4D[] = [];
    for (const cell of cells) {
      const out = runCell(cell, s0, s1, ctx);
      outs.push(out);
      s0 = s1;
      s1 = out;
    }
    const h = headBn ? reluFwd(headBn.forward(s1, ctx), ctx) : s1;
    const features = tf.mean(h, [1, 2]) as tf.Tensor2D;
    const P = h.shape[1] * h.shape[2];
    // rule (d): global average pool, H_x = H_a / P² broadcast over positions
    ctx.tape?.record([h], features, (Ha) => [tf.mul(tf.ones(h.shape), tf.reshape(tf.div(Ha, P * P), [h.shape[0], 1, 1, h.shape[3]]))]);
    const logits = tf.add(tf.matMul(features, fcW), fcB) as tf.Tensor2D;
    // rule (b): H_a[n,f] = Σ_k W_fk² H_u[n,k]; weights (§6.6): H_W = (a²)ᵀ H_u, H_b = Σ_n H_u
    ctx.tape?.record([features], logits, (Hu) => {
      if (ctx.tape?.opts.weights) {
        ctx.tape.addWeight('classifier.weight', tf.matMul(tf.square(features), Hu, true, false));
        ctx.tape.addWeight('classifier.bias', tf.sum(Hu, 0));
      }
      const H = ctx.tape?.opts.mode === 'faithful' ? averaged(Hu, [0]) : Hu;
      return [tf.matMul(H, tf.square(fcW), false, true)];
    });
    return { cells: outs, features, logits };
  };

  return {
    space, params: p, cells, classes, inChannels,
    forward: (x, ctx) => forwardCells(x, ctx).logits,
    forwardCells,
    classifier: fcW,
    dispose: () => p.dispose(),
  };
}
