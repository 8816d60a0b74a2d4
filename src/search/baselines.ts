// The gradient-based baselines as search strategies on the same supernet and training session:
//
//   DARTS first order (Liu et al. 2019): before every weight step on a batch of the `switch` split,
//     one Adam step on α with the loss of a batch of the other split (`train`, cycled), the weights
//     held fixed (ξ = 0). Forward: child switches = softmax(α) per edge, `none` included.
//   SNAS (Xie et al. 2019, without its resource constraint): one Gumbel-softmax sample of the
//     architecture weights per step, softmax((α + G)/τ); weights (SGD) and α (Adam) trained on the
//     same batch by the same loss gradient; τ annealed linearly over the search epochs.
//
// Both validate with softmax(α) and derive the cell by DARTS's rule from softmax(α): per node the two
// incoming edges with the largest non-`none` weight, each with its best non-`none` op.
import fs from 'node:fs';
import path from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { tf } from '../engine/index.js';
import { batches, type TensorBatch as Batch } from '../data/index.js';
import { deriveCell } from '../genotype/derive.js';
import { ArchParams, type ArchWeights, type CellType } from './arch.js';
import { DEFAULT_ARCH, type SearchConfig, type SearchStrategy } from './search.js';
import type { TrainingSession } from './train.js';

/** SNAS temperature in search epoch `round` (1-based) of `rounds`: linear from tempInit to tempMin. */
export function snasTemperature(cfg: SearchConfig, round: number): number {
  const a = { ...DEFAULT_ARCH, ...cfg.arch };
  return cfg.rounds <= 1 ? a.tempInit : a.tempInit + ((a.tempMin - a.tempInit) * (round - 1)) / (cfg.rounds - 1);
}

/** Seed of SNAS's Gumbel noise at a step: reproducible, distinct per (seed, epoch, step). */
export const snasNoiseSeed = (seed: number, epoch: number, step: number) => seed * 1_000_003 + epoch * 10_007 + step + 1;

/** Per edge, the largest architecture weight of a non-`none` op. */
export function edgeStrength(w: ArrayLike<number>, E: number, ops: string[]): number[] {
  const O = ops.length;
  return Array.from({ length: E }, (_, e) => Math.max(...ops.map((op, o) => (op === 'none' ? -Infinity : w[e * O + o]))));
}

/** The architecture weights (softmax of α) of one cell type, read from the device. */
async function archWeights(arch: ArchParams, kind: CellType): Promise<Float32Array> {
  const w = tf.tidy(() => arch.softmax()[kind]);
  const v = await w.data() as Float32Array;
  w.dispose();
  return v;
}

async function writeArchTable(file: string, arch: ArchParams, cfg: SearchConfig, meta: Record<string, string>) {
  const cols = { cell_type: [] as string[], edge: [] as number[], node: [] as number[], source: [] as number[], op: [] as string[], alpha: [] as number[], weight: [] as number[] };
  for (const kind of ['normal', 'reduce'] as CellType[]) {
    const a = await arch.alpha[kind].data(), p = await archWeights(arch, kind);
    cfg.space.edges[kind].forEach((e, ei) => arch.ops.forEach((op, oi) => {
      const i = ei * arch.ops.length + oi;
      cols.cell_type.push(kind); cols.edge.push(ei); cols.node.push(e.node); cols.source.push(e.source); cols.op.push(op); cols.alpha.push(a[i]); cols.weight.push(p[i]);
    }));
  }
  const t = tableFromArrays({
    cell_type: cols.cell_type, edge: Int32Array.from(cols.edge), node: Int32Array.from(cols.node), source: Int32Array.from(cols.source),
    op: cols.op, alpha: Float64Array.from(cols.alpha), weight: Float64Array.from(cols.weight),
  });
  for (const [k, v] of Object.entries(meta)) t.schema.metadata.set(k, v);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, tableToIPC(t, 'file'));
}

/** An endless stream of batches of a split, reshuffled per pass (pass p uses epoch `base + p`). */
function* cycle(s: TrainingSession, base: number): Generator<Batch> {
  const { cfg } = s;
  const split = s.splits.train;
  if (!split.n) throw new Error('DARTS needs a non-empty `train` split for its architecture steps: raise --train-size');
  for (let pass = 0; ; pass++) {
    let any = false;
    for (const b of batches(split, { batchSize: cfg.batch, shuffle: true, seed: cfg.seed + 5003, epoch: base + pass, dropLast: true, padTo: cfg.padTo || undefined, channels: cfg.channels || undefined })) {
      any = true;
      yield b;
    }
    if (!any) throw new Error(`the train split (${split.n} images) holds no full batch of ${cfg.batch}: raise --train-size or lower --batch`);
  }
}

export function baselineStrategy(name: 'darts' | 'snas', cfg: SearchConfig, s: TrainingSession): SearchStrategy {
  const a = { ...DEFAULT_ARCH, ...cfg.arch };
  const arch = new ArchParams(cfg.space, cfg.seed + 31, { lr: a.lr, beta1: a.beta1, beta2: a.beta2, eps: 1e-8, weightDecay: a.weightDecay });
  const { net } = s;
  const classes = net.classes;
  let archSeconds = 0, temperature = a.tempInit;
  const lossOf = (x: tf.Tensor4D, y: tf.Tensor1D, w: ArchWeights) =>
    tf.losses.softmaxCrossEntropy(tf.oneHot(y, classes), net.forward(x, { training: true, switches: arch.switchesFrom(w) })) as tf.Scalar;
  const strengths = async (kind: CellType) => edgeStrength(await archWeights(arch, kind), cfg.space.edges[kind].length, arch.ops);
  return {
    name,
    async searchEpoch(epoch, round, events) {
      archSeconds = 0;
      temperature = snasTemperature(cfg, round);
      const other = name === 'darts' ? cycle(s, epoch * 1000) : null;
      const hooks = name === 'darts' ? {
        beforeStep: () => {
          const t0 = performance.now();
          const b = other!.next().value as Batch;
          tf.tidy(() => {
            const { grads } = tf.variableGrads(() => lossOf(b.x, b.y, arch.softmax()), arch.vars);
            arch.adam.apply(grads);
          });
          tf.dispose([b.x, b.y]);
          archSeconds += (performance.now() - t0) / 1000;
        },
        switches: () => arch.switchesFrom(arch.softmax()),
        evalSwitches: () => arch.switchesFrom(arch.softmax()),
      } : {
        switches: (step: number) => arch.switchesFrom(arch.gumbel(arch.noise(snasNoiseSeed(cfg.seed, epoch, step)), temperature)),
        jointVars: arch.vars,
        applyJoint: (grads: tf.NamedTensorMap) => arch.adam.apply(grads),
        evalSwitches: () => arch.switchesFrom(arch.softmax()),
      };
      const te = performance.now();
      try {
        const m = await s.runEpoch(epoch, 'arch', events, undefined, undefined, hooks);
        events.onEpochEnd?.(m);
        await events.afterPhase?.('arch', (performance.now() - te) / 1000, epoch);
        return m;
      } finally {
        other?.return(undefined);
      }
    },
    async afterEpoch(round) {
      await writeArchTable(path.join(s.runDir, 'state', `round-${round}.arrow`), arch, cfg, {
        kind: 'search-arch', strategy: name, round: String(round), ops: arch.ops.join(','), ...(name === 'snas' ? { temperature: String(temperature) } : {}),
      });
      return {
        hessianSeconds: 0, updateSeconds: 0, archSeconds, pruned: 0, gammaNormal: await strengths('normal'), gammaReduce: await strengths('reduce'),
        ...(name === 'snas' ? { temperature } : {}),
      };
    },
    state: async () => ({ arch: await arch.state() }),
    restore(st) {
      if (st.arch) arch.restore(st.arch as Parameters<ArchParams['restore']>[0]);
    },
    async derive(kind) {
      const w = Array.from(await archWeights(arch, kind));
      const E = cfg.space.edges[kind].length;
      const cell = deriveCell(cfg.space.edges[kind], arch.ops, cfg.space.nodes, { origin: edgeStrength(w, E, arch.ops), child: w },
        { ...cfg.derive, mode: cfg.derive.mode ?? 'darts' });
      return { nodes: cell.nodes, concat: cell.concat };
    },
    dispose: () => arch.dispose(),
  };
}
