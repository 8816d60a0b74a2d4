// The BayesNAS search (spec §1, §4.3): warm-up epochs on the weights, then K rounds of
//   switch epoch (weights + switches, penalty λ·ω·||s_g||₂) → diagonal switch Hessian over M batches
//   → HARD-prior update (γ, ω, C) → optional pruning of switches whose γ fell under a threshold,
// and finally the derivation of a connected cell from γ. Every round leaves a checkpoint (parameters,
// optimiser state, Bayesian state) so that `--resume` continues exactly; every round's switches,
// Hessians and γ/ω/C land in `state/round-<r>.arrow`; the result is genotype.json, genotype.txt (DARTS
// repr) and the SVG drawings of both cells.
import fs from 'node:fs';
import path from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { tf } from '../engine/index.js';
import { batches } from '../data/index.js';
import { initialState, updateType, type BayesState, type TypeInputs, type UpdateMode } from '../bayes/update.js';
import { switchHessian, type HessianMode, type Scale, type SwitchHessian } from '../hessian/index.js';
import { deriveCell, type DeriveOptions } from '../genotype/derive.js';
import { toDartsRepr, toJSON } from '../genotype/format.js';
import { cellToSvg } from '../genotype/svg.js';
import type { Genotype } from '../genotype/types.js';
import { seededRandom } from '../space/params.js';
import { TrainingSession, type EpochMetrics, type Omega, type TrainConfig, type TrainEvents } from './train.js';
import { baselineStrategy } from './baselines.js';

export type StrategyName = 'bayesnas' | 'darts' | 'snas';
export const STRATEGIES: readonly StrategyName[] = ['bayesnas', 'darts', 'snas'];

export interface ArchConfig {
  /** Adam on α (DARTS and SNAS): learning rate, betas, L2 weight decay */
  lr: number; beta1: number; beta2: number; weightDecay: number;
  /** SNAS: Gumbel-softmax temperature, annealed linearly from `tempInit` to `tempMin` over the search epochs */
  tempInit: number; tempMin: number;
}

export const DEFAULT_ARCH: ArchConfig = { lr: 3e-4, beta1: 0.5, beta2: 0.999, weightDecay: 1e-3, tempInit: 1, tempMin: 0.33 };

export interface SearchConfig extends TrainConfig {
  /** bayesnas (default; configs without the field are BayesNAS runs), or a baseline on the same supernet */
  strategy?: StrategyName;
  arch?: ArchConfig;
  /** search epochs: rounds of (switch epoch, Hessian, update) for BayesNAS, epochs of joint/bilevel training for the baselines; `switchEpochs` is set to this */
  rounds: number;
  updateMode: UpdateMode;
  hessian: { batches: number; batch: number; mode: HessianMode; seed: 'diagonal' | 'target' | 'full'; scale: Scale };
  /** prune (fix at zero) switches whose γ falls under this value after an update; 0 = never */
  prune: number;
  derive: DeriveOptions;
}

/**
 * One search epoch. `archSeconds` is the architecture-specific work of the strategy: Hessian + update
 * for BayesNAS, the α steps for DARTS, 0 for SNAS (its α gradient comes from the weight step).
 * gammaNormal/gammaReduce: per edge, γ_e (BayesNAS) or the largest non-`none` architecture weight.
 */
export interface RoundResult { round: number; epoch: EpochMetrics; hessianSeconds: number; updateSeconds: number; archSeconds: number; pruned: number; gammaNormal: number[]; gammaReduce: number[]; temperature?: number }

export interface SearchResult { runDir: string; rounds: RoundResult[]; warmup: EpochMetrics[]; genotype: Genotype; files: string[] }

type Kind = 'normal' | 'reduce';

/** Switch values and Hessians of one cell type in the layout updateType expects. */
async function typeInputs(s: TrainingSession, h: SwitchHessian, kind: Kind): Promise<TypeInputs> {
  const O = s.cfg.space.ops.length;
  const cells = s.net.cells.filter((c) => c.reduction === (kind === 'reduce'));
  const hc = h.cells.filter((c) => c.reduction === (kind === 'reduce'));
  const rows = (flat: ArrayLike<number>, E: number) => Array.from({ length: E }, (_, e) => Array.from({ length: O }, (_, o) => flat[e * O + o]));
  return {
    origin: await Promise.all(cells.map(async (c) => Array.from(await c.origin.data()))),
    child: await Promise.all(cells.map(async (c) => rows(await c.child.data(), c.edges.length))),
    hOrigin: hc.map((c) => Array.from(c.origin)),
    hChild: hc.map((c) => rows(c.child, c.origin.length)),
  };
}

function omegaTensors(b: BayesState): Omega {
  const origin = new Map<string, tf.Tensor>(), child = new Map<string, tf.Tensor>();
  for (const kind of ['normal', 'reduce'] as const) {
    const t = b[kind];
    if (!t.origin.length) continue;
    origin.set(kind, tf.tensor1d(t.origin.map((g) => g.omega)));
    child.set(kind, tf.tensor2d(t.child.map((row) => row.map((g) => g.omega))));
  }
  return { origin, child };
}

/** γ of one cell type as the derivation wants it: origin [E] and effective child [E·O]. */
export function typeGammas(b: BayesState, kind: Kind) {
  return { origin: b[kind].origin.map((g) => g.gamma[0]), child: b[kind].child.flatMap((row) => row.map((g) => g.gamma[0])) };
}

async function writeRoundTable(file: string, s: TrainingSession, h: SwitchHessian, b: BayesState, meta: Record<string, string>) {
  const cols: Record<string, Array<string | number>> = { cell_type: [], cell: [], edge: [], node: [], source: [], op: [], kind: [], switch: [], hessian: [], gamma: [], omega: [], C: [] };
  const O = s.cfg.space.ops.length;
  const counter = { normal: 0, reduce: 0 };
  for (const cell of s.net.cells) {
    const kind: Kind = cell.reduction ? 'reduce' : 'normal';
    const k = counter[kind]++;
    const hc = h.cells[cell.index];
    const so = await cell.origin.data(), sc = await cell.child.data();
    cell.edges.forEach((e, ei) => {
      const push = (op: string, kindName: string, sw: number, hv: number, g: { gamma: number[]; omega: number; C: number[][] }) => {
        cols.cell_type.push(kind); cols.cell.push(cell.index); cols.edge.push(ei); cols.node.push(e.node); cols.source.push(e.source);
        cols.op.push(op); cols.kind.push(kindName); cols.switch.push(sw); cols.hessian.push(hv); cols.gamma.push(g.gamma[k] ?? g.gamma[0]);
        cols.omega.push(g.omega); cols.C.push(g.C[k]?.[0] ?? NaN);
      };
      push('', 'origin', so[ei], hc.origin[ei], b[kind].origin[ei]);
      s.cfg.space.ops.forEach((op, oi) => push(op, 'child', sc[ei * O + oi], hc.child[ei * O + oi], b[kind].child[ei][oi]));
    });
  }
  const t = tableFromArrays({
    cell_type: cols.cell_type as string[], cell: Int32Array.from(cols.cell as number[]), edge: Int32Array.from(cols.edge as number[]),
    node: Int32Array.from(cols.node as number[]), source: Int32Array.from(cols.source as number[]), op: cols.op as string[], kind: cols.kind as string[],
    switch: Float64Array.from(cols.switch as number[]), hessian: Float64Array.from(cols.hessian as number[]), gamma: Float64Array.from(cols.gamma as number[]),
    omega: Float64Array.from(cols.omega as number[]), C: Float64Array.from(cols.C as number[]),
  });
  for (const [key, v] of Object.entries(meta)) t.schema.metadata.set(key, v);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, tableToIPC(t, 'file'));
}

export type SearchPhase = 'warmup' | 'switch' | 'arch' | 'hessian' | 'update' | 'derive';

export interface SearchEvents extends TrainEvents {
  onRound?(r: RoundResult): void;
  onPhase?(text: string): void;
  /**
   * Called (and awaited) after each phase with its wall time: an epoch (training + validation),
   * the Hessian, the update (+ pruning), the derivation. `index` is the 0-based epoch of an epoch
   * phase, the round of a Hessian or update, 0 for the derivation. Checkpoint writes are not timed.
   */
  afterPhase?(phase: SearchPhase, seconds: number, index: number): Promise<void> | void;
}


/**
 * A search strategy on the shared supernet and training session: what one search epoch trains, the
 * architecture work after it, its resumable state, and how a cell is derived. The driver
 * (`runSearch`) owns the warm-up, the epoch loop, checkpoints, and the result files.
 */
export interface SearchStrategy {
  readonly name: StrategyName;
  /** one search epoch (0-based `epoch` in the LR schedule, 1-based `round`) */
  searchEpoch(epoch: number, round: number, events: SearchEvents): Promise<EpochMetrics>;
  /** the work after a search epoch; fills the rest of the round's result */
  afterEpoch(round: number, events: SearchEvents): Promise<Omit<RoundResult, 'round' | 'epoch'>>;
  /** JSON-able state kept in the checkpoint */
  state(): Promise<Record<string, unknown>>;
  restore(state: Record<string, unknown>): void;
  derive(kind: Kind): Promise<{ nodes: Genotype['normal']['nodes']; concat: number[] }>;
  dispose(): void;
}

/** BayesNAS (spec §4.3): switch epoch with the ω-weighted group penalty → switch Hessian → HARD update → pruning. */
export function bayesnasStrategy(cfg: SearchConfig, s: TrainingSession): SearchStrategy {
  const { space } = cfg;
  const counts = { normal: s.net.cells.filter((c) => !c.reduction).length, reduce: s.net.cells.filter((c) => c.reduction).length };
  const lambdas = { lambdaOrigin: cfg.lambdaOrigin, lambdaChild: cfg.lambdaChild, mode: cfg.updateMode };
  if (!(cfg.lambdaOrigin > 0) || !(cfg.lambdaChild > 0)) throw new Error('the search needs λ_origin > 0 and λ_child > 0 (--lambda)');
  let bayes = initialState(counts, { normal: space.edges.normal.length, reduce: space.edges.reduce.length }, space.ops.length, cfg.updateMode, seededRandom(cfg.seed + 17));
  const pruned = new Set<string>();   // `${kind}:${edge}:${op|-1}`
  const mask = () => {
    if (!pruned.size) return undefined;
    const m = new Map<tf.Variable, tf.Tensor>();
    for (const c of s.net.cells) {
      const kind = c.reduction ? 'reduce' : 'normal';
      const E = c.edges.length, O = space.ops.length;
      m.set(c.origin, tf.tensor1d(Array.from({ length: E }, (_, e) => (pruned.has(`${kind}:${e}:-1`) ? 0 : 1))));
      m.set(c.child, tf.tensor2d(Array.from({ length: E }, (_, e) => Array.from({ length: O }, (_, o) => (pruned.has(`${kind}:${e}:${o}`) || pruned.has(`${kind}:${e}:-1`) ? 0 : 1)))));
    }
    return m;
  };
  return {
    name: 'bayesnas',
    async searchEpoch(epoch, _round, events) {
      const omega = omegaTensors(bayes);
      const msk = mask();
      const te = performance.now();
      const m = await s.runEpoch(epoch, 'switch', events, omega, msk);
      tf.dispose([...omega.origin.values(), ...omega.child.values(), ...(msk ? [...msk.values()] : [])]);
      events.onEpochEnd?.(m);
      await events.afterPhase?.('switch', (performance.now() - te) / 1000, epoch);
      return m;
    },
    async afterEpoch(round, events) {
      events.onPhase?.(`round ${round}: switch Hessian over ${cfg.hessian.batches} batches`);
      const t0 = performance.now();
      const list = [];
      for (const b of batches(s.splits.switch, { batchSize: cfg.hessian.batch, shuffle: true, seed: cfg.seed + 1000 + round, dropLast: true, padTo: cfg.padTo || undefined, channels: cfg.channels || undefined })) {
        list.push(b);
        if (list.length === cfg.hessian.batches) break;
      }
      const h = await switchHessian(s.net, list, { mode: cfg.hessian.mode, seed: cfg.hessian.seed, scale: cfg.hessian.scale, datasetSize: s.splits.switch.n });
      for (const b of list) tf.dispose([b.x, b.y]);
      const hessianSeconds = (performance.now() - t0) / 1000;
      await events.afterPhase?.('hessian', hessianSeconds, round);
      const tu = performance.now();
      bayes = {
        normal: counts.normal ? updateType(bayes.normal, await typeInputs(s, h, 'normal'), lambdas) : bayes.normal,
        reduce: counts.reduce ? updateType(bayes.reduce, await typeInputs(s, h, 'reduce'), lambdas) : bayes.reduce,
        updates: bayes.updates + 1,
      };
      if (cfg.prune > 0) {
        for (const kind of ['normal', 'reduce'] as const) {
          bayes[kind].origin.forEach((g, e) => { if (g.gamma[0] < cfg.prune) pruned.add(`${kind}:${e}:-1`); });
          bayes[kind].child.forEach((row, e) => row.forEach((g, o) => { if (g.gamma[0] < cfg.prune) pruned.add(`${kind}:${e}:${o}`); }));
        }
        const msk2 = mask();
        if (msk2) { for (const [v, mm] of msk2) tf.tidy(() => v.assign(tf.mul(v, mm))); tf.dispose([...msk2.values()]); }
      }
      const updateSeconds = (performance.now() - tu) / 1000;
      await events.afterPhase?.('update', updateSeconds, round);
      await writeRoundTable(path.join(s.runDir, 'state', `round-${round}.arrow`), s, h, bayes, {
        kind: 'search-state', round: String(round), lambda_origin: String(cfg.lambdaOrigin), lambda_child: String(cfg.lambdaChild),
        update_mode: cfg.updateMode, hessian_mode: cfg.hessian.mode, hessian_scale: cfg.hessian.scale, hessian_seed: cfg.hessian.seed,
      });
      return { hessianSeconds, updateSeconds, archSeconds: hessianSeconds + updateSeconds, pruned: pruned.size, gammaNormal: typeGammas(bayes, 'normal').origin, gammaReduce: typeGammas(bayes, 'reduce').origin };
    },
    state: async () => ({ bayes, pruned: [...pruned] }),
    restore(st) {
      if (st.bayes) bayes = st.bayes as BayesState;
      for (const p of (st.pruned as string[] | undefined) ?? []) pruned.add(p);
    },
    async derive(kind) {
      const cell = deriveCell(space.edges[kind], space.ops, space.nodes, typeGammas(bayes, kind), cfg.derive);
      return { nodes: cell.nodes, concat: cell.concat };
    },
    dispose() {},
  };
}

/**
 * The warm-up epochs and rounds that a resumed run finished before its last checkpoint, read back from
 * metrics.jsonl (the last entry per epoch and round wins: work after a checkpoint is redone on resume,
 * so an interrupted epoch may have been logged before).
 */
export function priorResults(runDir: string, epochDone: number, warmupEpochs: number): { warmup: EpochMetrics[]; rounds: RoundResult[] } {
  const file = path.join(runDir, 'metrics.jsonl');
  const warmup = new Map<number, EpochMetrics>(), rounds = new Map<number, RoundResult>();
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let o: Record<string, unknown>;
    try { o = JSON.parse(line); } catch { throw new Error(`${file}: line ${i + 1} is not JSON`); }
    if (o.type === 'epoch' && o.phase === 'warmup' && typeof o.epoch === 'number' && o.epoch <= Math.min(epochDone + 1, warmupEpochs)) {
      const { type: _t, ...m } = o;
      warmup.set(o.epoch, m as unknown as EpochMetrics);
    } else if (o.type === 'round' && typeof o.round === 'number' && o.round <= epochDone + 1 - warmupEpochs) {
      const { type: _t, strategy: _s, ...r } = o;
      rounds.set(o.round, r as unknown as RoundResult);
    }
  });
  const sorted = <T>(m: Map<number, T>) => [...m.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
  return { warmup: sorted(warmup), rounds: sorted(rounds) };
}

export async function runSearch(cfg: SearchConfig, runDir: string, events: SearchEvents = {}, resume = false): Promise<SearchResult> {
  const s = new TrainingSession({ ...cfg, switchEpochs: cfg.rounds }, runDir);
  const strategyName = cfg.strategy ?? 'bayesnas';
  let strategy: SearchStrategy | null = null;
  const warmup: EpochMetrics[] = [], rounds: RoundResult[] = [];
  let nextEpoch = 0;
  try {
    strategy = strategyName === 'bayesnas' ? bayesnasStrategy(cfg, s) : baselineStrategy(strategyName, cfg, s);
    if (resume) {
      const st = await s.restore();
      nextEpoch = st.epochDone + 1;
      strategy.restore(st);
      const prior = priorResults(runDir, st.epochDone, cfg.warmupEpochs);
      warmup.push(...prior.warmup);
      rounds.push(...prior.rounds);
    } else {
      s.start('search');
    }
    for (let epoch = nextEpoch; epoch < cfg.warmupEpochs; epoch++) {
      const t0 = performance.now();
      const m = await s.runEpoch(epoch, 'warmup', events);
      await events.afterPhase?.('warmup', (performance.now() - t0) / 1000, epoch);
      warmup.push(m);
      await s.save(epoch, await strategy.state());
      events.onEpochEnd?.(m);
    }
    for (let epoch = Math.max(nextEpoch, cfg.warmupEpochs); epoch < cfg.warmupEpochs + cfg.rounds; epoch++) {
      const round = epoch - cfg.warmupEpochs + 1;
      const m = await strategy.searchEpoch(epoch, round, events);
      const r: RoundResult = { round, epoch: m, ...(await strategy.afterEpoch(round, events)) };
      rounds.push(r);
      s.log({ type: 'round', strategy: strategy.name, ...r });
      await s.save(epoch, { ...(await strategy.state()), round });
      events.onRound?.(r);
    }
    await s.saveResults();
    const td = performance.now();
    const reduce = s.net.cells.some((c) => c.reduction);
    const genotype: Genotype = { normal: await strategy.derive('normal'), reduce: await strategy.derive(reduce ? 'reduce' : 'normal'), name: path.basename(runDir) };
    await events.afterPhase?.('derive', (performance.now() - td) / 1000, 0);
    const files = ['genotype.json', 'genotype.txt', 'cell-normal.svg', 'cell-reduce.svg'].map((f) => path.join(runDir, f));
    fs.writeFileSync(files[0], `${toJSON(genotype)}\n`);
    fs.writeFileSync(files[1], `${toDartsRepr(genotype)}\n`);
    fs.writeFileSync(files[2], cellToSvg(genotype.normal, 'normal cell'));
    fs.writeFileSync(files[3], cellToSvg(genotype.reduce, 'reduction cell'));
    return { runDir, rounds, warmup, genotype, files };
  } finally {
    strategy?.dispose();
    s.dispose();
  }
}
