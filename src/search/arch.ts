// Architecture parameters of the gradient-based baselines (DARTS, SNAS) on the same supernet.
// One α matrix [E, O'] per cell type, shared by every cell of that type, where O' is the space's ops
// plus `none` (DARTS and SNAS keep `none` in the softmax; the supernet has no zero op because its
// origin switch plays that role, so the `none` column's mass simply multiplies a zero output).
// The supernet reads its switches from these weights through SupernetCtx.switches: origin = 1,
// child[e, o] = w[e, column of op o], with
//   DARTS  w = softmax(α)                          (deterministic)
//   SNAS   w = softmax((α + G) / τ),  G = −log(−log U), U ~ Uniform(0, 1) per step  (Gumbel-softmax)
// α is trained by Adam with PyTorch's semantics (L2 weight decay added to the gradient), as both
// official code bases do.
import { tf } from '../engine/index.js';
import type { CellInfo, SupernetCtx } from '../space/supernet.js';
import type { SpaceSpec } from '../space/spaces.js';
import { seededRandom } from '../space/params.js';

export type CellType = 'normal' | 'reduce';

let instances = 0;

export interface AdamOptions { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number }

/** torch.optim.Adam (non-amsgrad, L2 weight decay through the gradient) over a few variables. */
export class Adam {
  step = 0;
  readonly m: tf.Variable[];
  readonly v: tf.Variable[];

  constructor(readonly vars: tf.Variable[], public o: AdamOptions) {
    this.m = vars.map((x) => tf.variable(tf.zerosLike(x), false));
    this.v = vars.map((x) => tf.variable(tf.zerosLike(x), false));
  }

  apply(grads: Record<string, tf.Tensor>): void {
    this.step++;
    const { lr, beta1, beta2, eps, weightDecay } = this.o;
    const bc1 = 1 - beta1 ** this.step, bc2 = Math.sqrt(1 - beta2 ** this.step);
    tf.tidy(() => {
      this.vars.forEach((p, i) => {
        let g = grads[p.name];
        if (!g) return;
        if (weightDecay) g = tf.add(g, tf.mul(p, weightDecay));
        this.m[i].assign(tf.add(tf.mul(this.m[i], beta1), tf.mul(g, 1 - beta1)));
        this.v[i].assign(tf.add(tf.mul(this.v[i], beta2), tf.mul(tf.square(g), 1 - beta2)));
        const denom = tf.add(tf.div(tf.sqrt(this.v[i]), bc2), eps);
        p.assign(tf.sub(p, tf.mul(tf.div(this.m[i], denom), lr / bc1)));
      });
    });
  }

  async state(): Promise<{ step: number; m: number[][]; v: number[][] }> {
    const read = (ts: tf.Variable[]) => Promise.all(ts.map(async (t) => Array.from(await t.data())));
    return { step: this.step, m: await read(this.m), v: await read(this.v) };
  }

  restore(s: { step: number; m: number[][]; v: number[][] }): void {
    this.step = s.step;
    s.m.forEach((d, i) => this.m[i].assign(tf.tensor(d, this.m[i].shape)));
    s.v.forEach((d, i) => this.v[i].assign(tf.tensor(d, this.v[i].shape)));
  }

  dispose(): void { tf.dispose([...this.m, ...this.v]); }
}

/** The ops α ranges over: the space's ops, plus `none` when the space has no zero op. */
export function archOps(space: SpaceSpec): string[] {
  return space.ops.includes('none') ? [...space.ops] : [...space.ops, 'none'];
}

export interface ArchWeights { normal: tf.Tensor2D; reduce: tf.Tensor2D }

/**
 * α of both cell types (DARTS's initialisation: 1e-3 · N(0, 1)), the optimiser, and the map from
 * architecture weights to the supernet's switches.
 */
export class ArchParams {
  readonly ops: string[];
  readonly alpha: { normal: tf.Variable<tf.Rank.R2>; reduce: tf.Variable<tf.Rank.R2> };
  readonly adam: Adam;
  /** column of each space op in α */
  private readonly columns: tf.Tensor1D;

  constructor(readonly space: SpaceSpec, seed: number, adam: AdamOptions) {
    this.ops = archOps(space);
    this.columns = tf.tensor1d(space.ops.map((o) => this.ops.indexOf(o)), 'int32');
    const rnd = seededRandom(seed);
    const id = instances++;
    const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
    const make = (kind: CellType) => {
      const E = space.edges[kind].length, O = this.ops.length;
      return tf.variable(tf.tensor2d(Array.from({ length: E * O }, () => 1e-3 * gauss()), [E, O]), true, `arch${id}.alpha_${kind}`) as tf.Variable<tf.Rank.R2>;
    };
    this.alpha = { normal: make('normal'), reduce: make('reduce') };
    this.adam = new Adam([this.alpha.normal, this.alpha.reduce], adam);
  }

  get vars(): tf.Variable[] { return [this.alpha.normal, this.alpha.reduce]; }

  /** DARTS: softmax(α) per edge. */
  softmax(): ArchWeights {
    return { normal: tf.softmax(this.alpha.normal) as tf.Tensor2D, reduce: tf.softmax(this.alpha.reduce) as tf.Tensor2D };
  }

  /** SNAS: softmax((α + G)/τ) with G from uniform noise U ([E, O'] per type, in (0, 1)). */
  gumbel(noise: { normal: tf.Tensor2D; reduce: tf.Tensor2D }, temperature: number): ArchWeights {
    const one = (a: tf.Tensor2D, u: tf.Tensor2D) => tf.softmax(tf.div(tf.sub(a, tf.log(tf.neg(tf.log(u)))), temperature)) as tf.Tensor2D;
    return { normal: one(this.alpha.normal, noise.normal), reduce: one(this.alpha.reduce, noise.reduce) };
  }

  /** Uniform noise in [1e-10, 1 − 1e-7] for one SNAS sample, reproducible from `seed`. */
  noise(seed: number): { normal: tf.Tensor2D; reduce: tf.Tensor2D } {
    return {
      normal: tf.randomUniform(this.alpha.normal.shape, 1e-10, 1 - 1e-7, 'float32', seed) as tf.Tensor2D,
      reduce: tf.randomUniform(this.alpha.reduce.shape, 1e-10, 1 - 1e-7, 'float32', seed + 7919) as tf.Tensor2D,
    };
  }

  /** The supernet context that reads its switches from architecture weights `w`. */
  switchesFrom(w: ArchWeights): NonNullable<SupernetCtx['switches']> {
    const cache = new Map<CellType, { origin: tf.Tensor1D; child: tf.Tensor2D }>();
    return (cell: CellInfo) => {
      const kind: CellType = cell.reduction ? 'reduce' : 'normal';
      let s = cache.get(kind);
      if (!s) {
        const ww = w[kind];
        s = { origin: tf.ones([ww.shape[0]]) as tf.Tensor1D, child: tf.gather(ww, this.columns, 1) as tf.Tensor2D };
        cache.set(kind, s);
      }
      return s;
    };
  }

  async state(): Promise<Record<string, unknown>> {
    return { alpha: { normal: Array.from(await this.alpha.normal.data()), reduce: Array.from(await this.alpha.reduce.data()) }, adam: await this.adam.state() };
  }

  restore(s: { alpha: { normal: number[]; reduce: number[] }; adam: { step: number; m: number[][]; v: number[][] } }): void {
    for (const kind of ['normal', 'reduce'] as const) this.alpha[kind].assign(tf.tensor2d(s.alpha[kind], this.alpha[kind].shape));
    this.adam.restore(s.adam);
  }

  dispose(): void {
    tf.dispose([...this.vars, this.columns]);
    this.adam.dispose();
  }
}
