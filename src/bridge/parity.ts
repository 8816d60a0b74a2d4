// Parity with the PyTorch reference: the same supernet, weights and batch in both frameworks.
// Weights go to Python as an Arrow file in the TypeScript layout (python-ref/bayesnas_ref/tsweights.py
// converts layouts); PyTorch's logits, loss and gradients come back the same way.
import fs from 'node:fs';
import path from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { tf } from '../engine/index.js';
import type { SpaceSpec } from '../space/spaces.js';
import type { Supernet } from '../space/supernet.js';
import type { ArchParams } from '../search/arch.js';
import { readTensorFile, writeTensorFile } from './arrow.js';
import { exchangeDir, pyCall, pyModule } from './session.js';

/** The space in python-ref's JSON form (snake_case; reductions and concat are the defaults there). */
export function spaceToPython(s: SpaceSpec): string {
  return JSON.stringify({
    name: s.name, flavour: s.flavour, ops: s.ops, nodes: s.nodes,
    edges: { normal: s.edges.normal.map((e) => [e.node, e.source]), reduce: s.edges.reduce.map((e) => [e.node, e.source]) },
    layers: s.layers, C: s.C, stem_multiplier: s.stemMultiplier, preprocess: s.preprocess, stem: s.stem, head: s.head,
  });
}

export interface Comparison { quantity: string; maxAbs: number; relative: number; n: number }

/** max |a−b| and max |a−b| / max |b| over the pair. */
export function compare(quantity: string, a: ArrayLike<number>, b: ArrayLike<number>): Comparison {
  if (a.length !== b.length) throw new Error(`${quantity}: ${a.length} values vs ${b.length}`);
  let m = 0, s = 0;
  for (let i = 0; i < a.length; i++) { m = Math.max(m, Math.abs(a[i] - b[i])); s = Math.max(s, Math.abs(b[i])); }
  return { quantity, maxAbs: m, relative: m / Math.max(s, 1e-12), n: a.length };
}

/** The supernet's parameters (params.arrow) and one batch (batch.arrow) for the Python side. */
async function writeInputs(file: (n: string) => string, net: Supernet, x: tf.Tensor4D, y: tf.Tensor1D): Promise<void> {
  writeTensorFile(file('params.arrow'), await net.params.rows());
  writeTensorFile(file('batch.arrow'), [
    { name: 'x', shape: x.shape, data: Float32Array.from(await x.data()) },
    { name: 'y', shape: y.shape, data: Float32Array.from(await y.data()) },
  ]);
}

/** Logits, loss and every gradient in TypeScript and in PyTorch for one batch (training-mode BN). */
export async function forwardBackwardParity(net: Supernet, x: tf.Tensor4D, y: tf.Tensor1D): Promise<Comparison[]> {
  const ex = exchangeDir();
  try {
    await writeInputs(ex.file, net, x, y);
    const parity = await pyModule('bayesnas_ref.parity');
    await pyCall('parity.forward_backward', () => parity.forward_backward$(spaceToPython(net.space), ex.file('params.arrow'), ex.file('batch.arrow'), ex.file('torch.arrow'),
      { gate: net.space.gate, in_channels: net.inChannels, num_classes: net.classes }));
    const torch = new Map(readTensorFile(ex.file('torch.arrow')).rows.map((r) => [r.name, r]));
    const vars = net.params.variables();
    let logitsT: tf.Tensor | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const logits = net.forward(x, { training: true });
      logitsT = tf.keep(logits);
      return tf.losses.softmaxCrossEntropy(tf.oneHot(y, net.classes), logits) as tf.Scalar;
    }, vars);
    const ts = { loss: (await value.data())[0], grads: new Map(await Promise.all(net.params.select().map(async (e) => [e.name, await grads[e.variable.name].data() as Float32Array] as const))) };
    const logits = await (logitsT as tf.Tensor | null)!.data();
    tf.dispose([value, ...Object.values(grads), logitsT as unknown as tf.Tensor]);
    const out = [compare('logits', logits, torch.get('logits')!.data), compare('loss', [ts.loss], torch.get('loss')!.data)];
    const wg: number[] = [], tg: number[] = [], ws: number[] = [], tsw: number[] = [];
    for (const e of net.params.select()) {
      const r = torch.get(e.name);
      if (!r) throw new Error(`PyTorch returned no gradient for ${e.name}`);
      const mine = ts.grads.get(e.name)!;
      out.push(compare(`grad ${e.name}`, mine, r.data));
      (e.group === 'switches' ? ws : wg).push(...mine);
      (e.group === 'switches' ? tsw : tg).push(...r.data);
    }
    out.splice(2, 0, compare('grad (all weights)', wg, tg), compare('grad (all switches)', ws, tsw));
    return out;
  } finally {
    ex.cleanup();
  }
}

export interface HessianParity {
  /** TS recursion vs python-ref recursion, all switches */
  recursion: Comparison;
  /** python-ref's comparison of the recursion with the exact diagonal, per switch group */
  vsExact: Record<string, { spearman: number; median_rel_err?: number; [k: string]: number | undefined }> | null;
  /** every switch's value, flat per cell (origin switches, then child switches row-major [edge, op]) */
  values: { typescript: number[]; pytorch: number[]; exact: number[] | null };
}

/** TS switch Hessian (recursion) against python-ref's recursion on identical weights and batch. */
export async function hessianParity(net: Supernet, x: tf.Tensor4D, y: tf.Tensor1D, o: { mode?: 'per-sample' | 'faithful'; seed?: 'diagonal' | 'target' | 'full'; scale?: 'mean' | 'batchSum'; exact?: boolean } = {}): Promise<HessianParity> {
  const { switchHessian } = await import('../hessian/index.js');
  const ex = exchangeDir();
  try {
    await writeInputs(ex.file, net, x, y);
    const parity = await pyModule('bayesnas_ref.parity');
    const text = String(await pyCall('parity.switch_hessians', () => parity.switch_hessians$(spaceToPython(net.space), ex.file('params.arrow'), ex.file('batch.arrow'),
      { gate: net.space.gate, in_channels: net.inChannels, num_classes: net.classes, mode: o.mode ?? 'per-sample', seed: o.seed ?? 'diagonal', scale: o.scale ?? 'mean', exact: !!o.exact })));
    const py = JSON.parse(text) as { recursion: Array<{ origin: number[]; child: number[] }>; exact?: Array<{ origin: number[]; child: number[] }>; comparison?: HessianParity['vsExact'] };
    const h = await switchHessian(net, [{ x, y }], { mode: o.mode, seed: o.seed, scale: o.scale });
    const mine = h.cells.flatMap((c) => [...c.origin, ...c.child]);
    const theirs = py.recursion.flatMap((c) => [...c.origin, ...c.child]);
    const exact = py.exact ? py.exact.flatMap((c) => [...c.origin, ...c.child]) : null;
    return { recursion: compare('switch Hessian (recursion)', mine, theirs), vsExact: py.comparison ?? null, values: { typescript: mine, pytorch: theirs, exact } };
  } finally {
    ex.cleanup();
  }
}

/** One row per switch (cell type, cell, edge, node, source, op, kind) with the TypeScript recursion,
 * python-ref's recursion and (when computed) PyTorch's exact diagonal, as an Arrow file. */
export function writeHessianParityTable(file: string, net: Supernet, v: HessianParity['values'], metadata: Record<string, string> = {}): number {
  const ops = net.space.ops;
  const cols = { cell_type: [] as string[], cell: [] as number[], edge: [] as number[], node: [] as number[], source: [] as number[], op: [] as string[], kind: [] as string[], typescript: [] as number[], pytorch: [] as number[], exact: [] as (number | null)[] };
  let at = 0;
  const push = (cellType: string, cell: number, e: { node: number; source: number }, edge: number, op: string, i: number) => {
    cols.cell_type.push(cellType); cols.cell.push(cell); cols.edge.push(edge); cols.node.push(e.node); cols.source.push(e.source);
    cols.op.push(op); cols.kind.push(op ? 'child' : 'origin');
    cols.typescript.push(v.typescript[i]); cols.pytorch.push(v.pytorch[i]); cols.exact.push(v.exact ? v.exact[i] : null);
  };
  net.cells.forEach((c, k) => {
    const type = c.reduction ? 'reduce' : 'normal', E = c.edges.length;
    c.edges.forEach((e, ei) => push(type, k, e, ei, '', at + ei));
    c.edges.forEach((e, ei) => ops.forEach((op, oi) => push(type, k, e, ei, op, at + E + ei * ops.length + oi)));
    at += E * (1 + ops.length);
  });
  if (at !== v.typescript.length) throw new Error(`Hessian parity table: ${at} switches in the network, ${v.typescript.length} values`);
  const t = tableFromArrays({
    cell_type: cols.cell_type, cell: Int32Array.from(cols.cell), edge: Int32Array.from(cols.edge), node: Int32Array.from(cols.node),
    source: Int32Array.from(cols.source), op: cols.op, kind: cols.kind, typescript: Float64Array.from(cols.typescript),
    pytorch: Float64Array.from(cols.pytorch), exact: Float64Array.from(cols.exact, (x) => x ?? NaN),
  });
  for (const [k, val] of Object.entries({ kind: 'switch-hessian-parity', exact: String(!!v.exact), ...metadata })) t.schema.metadata.set(k, val);
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, tableToIPC(t, 'file'));
  fs.renameSync(tmp, file);
  return at;
}

/**
 * One DARTS architecture step or one SNAS sampling step in TypeScript and in PyTorch on identical
 * weights, α, batch and (SNAS) uniform noise: loss, logits, architecture weights, α gradients, α after
 * one Adam step and (SNAS) the weight gradients. `arch` is left as it was.
 */
export async function archStepParity(strategy: 'darts' | 'snas', net: Supernet, arch: ArchParams, x: tf.Tensor4D, y: tf.Tensor1D,
  o: { temperature?: number; noiseSeed?: number } = {}): Promise<Comparison[]> {
  const before = await arch.state();
  const ex = exchangeDir();
  const temperature = o.temperature ?? 1;
  try {
    await writeInputs(ex.file, net, x, y);
    const rows = (prefix: string, t: { normal: tf.Tensor; reduce: tf.Tensor }) =>
      Promise.all((['normal', 'reduce'] as const).map(async (k) => ({ name: `${prefix}_${k}`, shape: t[k].shape, data: Float32Array.from(await t[k].data()) })));
    writeTensorFile(ex.file('alphas.arrow'), await rows('alpha', arch.alpha));
    const noise = strategy === 'snas' ? arch.noise(o.noiseSeed ?? 1) : null;
    if (noise) writeTensorFile(ex.file('noise.arrow'), await rows('noise', noise));
    const a = arch.adam.o;
    const py = await pyModule('bayesnas_ref.strategies');
    await pyCall(`strategies.arch_step ${strategy}`, () => py.arch_step$(strategy, spaceToPython(net.space), ex.file('params.arrow'), ex.file('batch.arrow'),
      ex.file('alphas.arrow'), ex.file('torch.arrow'), {
        noise: noise ? ex.file('noise.arrow') : null, temperature, lr: a.lr, beta1: a.beta1, beta2: a.beta2, weight_decay: a.weightDecay,
        gate: net.space.gate, in_channels: net.inChannels, num_classes: net.classes,
      }));
    const torch = new Map(readTensorFile(ex.file('torch.arrow')).rows.map((r) => [r.name, r.data]));
    const want = (n: string) => { const v = torch.get(n); if (!v) throw new Error(`PyTorch returned no ${n}`); return v; };
    const weightVars = strategy === 'snas' ? net.params.variables('weights') : [];
    let logitsT: tf.Tensor | null = null, wT: tf.Tensor[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const w = noise ? arch.gumbel(noise, temperature) : arch.softmax();
      wT = [tf.keep(w.normal), tf.keep(w.reduce)];
      const logits = net.forward(x, { training: true, switches: arch.switchesFrom(w) });
      logitsT = tf.keep(logits);
      return tf.losses.softmaxCrossEntropy(tf.oneHot(y, net.classes), logits) as tf.Scalar;
    }, [...arch.vars, ...weightVars]);
    const out = [
      compare('loss', await value.data(), want('loss')), compare('logits', await (logitsT as tf.Tensor | null)!.data(), want('logits')),
      compare('architecture weights (normal)', await wT[0].data(), want('weights_normal')), compare('architecture weights (reduce)', await wT[1].data(), want('weights_reduce')),
      compare('grad α (normal)', await grads[arch.alpha.normal.name].data(), want('grad_alpha_normal')),
      compare('grad α (reduce)', await grads[arch.alpha.reduce.name].data(), want('grad_alpha_reduce')),
    ];
    if (strategy === 'snas') {
      const mine: number[] = [], theirs: number[] = [];
      for (const e of net.params.select('weights')) { mine.push(...await grads[e.variable.name].data()); theirs.push(...want(`grad ${e.name}`)); }
      out.push(compare('grad (all weights)', mine, theirs));
    }
    arch.adam.apply(grads);
    out.push(compare('α after Adam (normal)', await arch.alpha.normal.data(), want('alpha_normal')), compare('α after Adam (reduce)', await arch.alpha.reduce.data(), want('alpha_reduce')));
    tf.dispose([value, ...Object.values(grads), logitsT as unknown as tf.Tensor, ...wT, ...(noise ? [noise.normal, noise.reduce] : [])]);
    return out;
  } finally {
    arch.restore(before as Parameters<ArchParams['restore']>[0]);
    ex.cleanup();
  }
}
