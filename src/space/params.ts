// Named, seeded parameters. Every trainable tensor of a network lives in one ParamStore under a
// dotted name (`cells.0.edges.3.ops.sep_conv_3x3.dw1`), in creation order, so that weights can be
// saved, compared with the PyTorch reference and split into variable groups (weights vs switches).
import { tf } from '../engine/index.js';
import { readTensorFile, type TensorRow } from '../bridge/arrow.js';

/** weights and switches are trained (separate optimisers); buffers are BN running statistics. */
export type ParamGroup = 'weights' | 'switches' | 'buffers';

export interface ParamEntry { name: string; variable: tf.Variable; group: ParamGroup }

/** splitmix32: small, fast, seedable; enough for weight initialisation. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

let storeCounter = 0;

export class ParamStore {
  /** tfjs registers variables by name globally; this prefix keeps several stores apart */
  private readonly uid = `p${storeCounter++}`;
  readonly entries: ParamEntry[] = [];
  private readonly byName = new Map<string, ParamEntry>();
  private readonly rand: () => number;

  constructor(seed = 0) {
    this.rand = seededRandom(seed);
  }

  private add(name: string, value: tf.Tensor, group: ParamGroup): tf.Variable {
    if (this.byName.has(name)) throw new Error(`parameter ${name} defined twice`);
    const variable = tf.variable(value, group !== 'buffers', `${this.uid}/${name}`);
    value.dispose();
    const e = { name, variable, group };
    this.entries.push(e);
    this.byName.set(name, e);
    return variable;
  }

  /** PyTorch's default conv/linear initialisation: U(-1/sqrt(fanIn), 1/sqrt(fanIn)). */
  uniform(name: string, shape: number[], fanIn: number): tf.Variable {
    const n = shape.reduce((a, b) => a * b, 1);
    const bound = 1 / Math.sqrt(fanIn);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (this.rand() * 2 - 1) * bound;
    return this.add(name, tf.tensor(data, shape), 'weights');
  }

  constant(name: string, shape: number[], value: number, group: ParamGroup = 'weights'): tf.Variable {
    return this.add(name, tf.fill(shape, value), group);
  }

  get(name: string): tf.Variable {
    const e = this.byName.get(name);
    if (!e) throw new Error(`no parameter named ${name}`);
    return e.variable;
  }

  /** Variables of a group; without a group, every trainable one (weights and switches). */
  variables(group?: ParamGroup): tf.Variable[] {
    return this.select(group).map((e) => e.variable);
  }

  /** Number of trainable scalars (weights + switches), or of one group. */
  count(group?: ParamGroup): number {
    return this.select(group).reduce((a, e) => a + e.variable.size, 0);
  }

  /**
   * Every entry (parameters and BN running statistics, in creation order) as Arrow tensor rows, read
   * from the device: TypeScript names and NHWC layouts (python-ref/bayesnas_ref/tsweights.py converts them).
   */
  async rows(): Promise<TensorRow[]> {
    return Promise.all(this.entries.map(async (e) => ({ name: e.name, group: e.group, shape: e.variable.shape, data: Float32Array.from(await e.variable.data()) })));
  }

  /** Loads a tensor file into the entries; every entry must be present with its shape. */
  load(file: string): void {
    const byName = new Map(readTensorFile(file).rows.map((r) => [r.name, r]));
    for (const e of this.entries) {
      const r = byName.get(e.name);
      if (!r) throw new Error(`${file}: no tensor named ${e.name}`);
      if (r.shape.join('x') !== e.variable.shape.join('x')) throw new Error(`${file}: ${e.name} has shape [${r.shape}], the network expects [${e.variable.shape}]`);
      tf.tidy(() => e.variable.assign(tf.tensor(r.data, r.shape)));
    }
  }

  select(group?: ParamGroup): ParamEntry[] {
    return this.entries.filter((e) => (group ? e.group === group : e.group !== 'buffers'));
  }

  dispose(): void {
    for (const e of this.entries) e.variable.dispose();
    this.entries.length = 0;
    this.byName.clear();
  }
}
