// Search spaces as data (spec §2.2.4). A cell is a DAG: states 0 = c_{k-2}, 1 = c_{k-1}, 2+i =
// intermediate node i; each candidate edge (node, source) carries every op of `ops`, one child switch
// per op, and one origin switch per edge. A node is the sum of its incoming edges; the cell output
// concatenates `concat`. The same structure drives the supernet, the Hessian pass, the derivation
// and the drawings.
import fs from 'node:fs';
import { isOpName, OP_NAMES, type Flavour, type OpName } from './ops.js';

export interface EdgeSpec { node: number; source: number }

export type Gate = 'input' | 'output';

export interface SpaceSpec {
  name: string;
  flavour: Flavour;
  ops: OpName[];
  nodes: number;
  edges: { normal: EdgeSpec[]; reduce: EdgeSpec[] };
  /** intermediate nodes concatenated at the cell output (default: all) */
  concat?: number[];
  layers: number;
  /** cell indices that are reduction cells (default: layers/3 and 2·layers/3, floored) */
  reductions?: number[];
  C: number;
  stemMultiplier: number;
  stem: 'conv-bn' | 'conv';
  preprocess: 'darts' | 'creduct';
  head: 'gap-linear' | 'bn-relu-gap-linear';
  /**
   * Origin switch placement: 'output' (y_e = s_e·Σ_o s_eo·op_o(x); s_e = 0 zeroes the edge exactly,
   * the paper-consistent default) or 'input' (y_e = Σ_o s_eo·op_o(s_e·x), as the official code does;
   * training-mode BN then cancels s_e > 0 in every BN-first op, spec §2.2.1).
   */
  gate: Gate;
}

const SEVEN: OpName[] = ['sep_conv_3x3', 'sep_conv_5x5', 'dil_conv_3x3', 'dil_conv_5x5', 'max_pool_3x3', 'avg_pool_3x3', 'skip_connect'];

function fullDag(nodes: number): EdgeSpec[] {
  const e: EdgeSpec[] = [];
  for (let n = 0; n < nodes; n++) for (let s = 0; s < n + 2; s++) e.push({ node: n, source: s });
  return e;
}

/** DARTS space: 4 nodes, 14 edges, the 7 non-zero DARTS ops; the origin switch replaces `none`. */
export const DARTS_SPACE: SpaceSpec = {
  name: 'darts', flavour: 'darts', ops: SEVEN, nodes: 4, edges: { normal: fullDag(4), reduce: fullDag(4) },
  layers: 8, C: 16, stemMultiplier: 3, stem: 'conv-bn', preprocess: 'darts', head: 'gap-linear', gate: 'output',
};

/**
 * The official BayesNAS search network (spec §2.2.2): 8 fixed candidate edges per cell, two per node.
 * Sources in DARTS numbering (0 = c_{k-2} = the code's in1, 1 = c_{k-1} = in0). The normal cell's
 * `in1_3` edge reads c_{k-2} as its name and the published cells intend (the official forward reads in0).
 */
export const BAYESNAS_SPACE: SpaceSpec = {
  name: 'bayesnas', flavour: 'bayesnas', ops: SEVEN, nodes: 4,
  edges: {
    normal: [[0, 1], [0, 0], [1, 1], [1, 0], [2, 1], [2, 0], [3, 0], [3, 2]].map(([node, source]) => ({ node, source })),
    reduce: [[0, 1], [0, 0], [1, 0], [1, 2], [2, 0], [2, 2], [3, 0], [3, 2]].map(([node, source]) => ({ node, source })),
  },
  layers: 8, C: 36, stemMultiplier: 3, stem: 'conv', preprocess: 'creduct', head: 'bn-relu-gap-linear', gate: 'output',
};

export const PRESETS: Record<string, SpaceSpec> = { darts: DARTS_SPACE, bayesnas: BAYESNAS_SPACE };

export function reductionCells(s: SpaceSpec): number[] {
  return s.reductions ?? [Math.floor(s.layers / 3), Math.floor((2 * s.layers) / 3)];
}

export function concatNodes(s: SpaceSpec): number[] {
  return s.concat ?? [...Array(s.nodes).keys()];
}

/** Validates a space and returns it with defaults filled; errors name the field (and the file). */
export function validateSpace(raw: unknown, where = 'space'): SpaceSpec {
  const fail = (field: string, msg: string): never => { throw new Error(`${where}: field '${field}' ${msg}`); };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${where}: expected a JSON object`);
  const r = raw as Record<string, unknown>;
  const base = typeof r.preset === 'string' ? PRESETS[r.preset] ?? fail('preset', `must be one of ${Object.keys(PRESETS).join(', ')}`) : null;
  const get = <K extends keyof SpaceSpec>(k: K): unknown => (r[k] !== undefined ? r[k] : base?.[k]);
  const int = (k: keyof SpaceSpec, min: number) => {
    const v = get(k);
    if (!Number.isInteger(v) || (v as number) < min) fail(k, `must be an integer >= ${min} (got ${JSON.stringify(v)})`);
    return v as number;
  };
  const oneOf = <T extends string>(k: keyof SpaceSpec, choices: readonly T[]) => {
    const v = get(k);
    if (!choices.includes(v as T)) fail(k, `must be one of ${choices.join(', ')} (got ${JSON.stringify(v)})`);
    return v as T;
  };
  const name = get('name') ?? 'custom';
  if (typeof name !== 'string') fail('name', 'must be a string');
  const flavour = oneOf('flavour', ['darts', 'bayesnas'] as const);
  const ops = get('ops');
  if (!Array.isArray(ops) || ops.length === 0) fail('ops', `must be a non-empty list of op names (${OP_NAMES.join(', ')})`);
  (ops as unknown[]).forEach((o, i) => {
    if (typeof o !== 'string' || !isOpName(o)) fail(`ops[${i}]`, `is not an op (got ${JSON.stringify(o)}; known: ${OP_NAMES.join(', ')})`);
    if (o === 'none' && flavour === 'bayesnas') fail(`ops[${i}]`, "'none' is not an op of the bayesnas flavour");
  });
  if (new Set(ops as string[]).size !== (ops as string[]).length) fail('ops', 'has duplicates');
  const nodes = int('nodes', 1);
  const edges = get('edges') as Record<string, unknown> | undefined;
  if (typeof edges !== 'object' || edges === null) fail('edges', 'must be an object {normal: [...], reduce: [...]}');
  const edgeList = (kind: 'normal' | 'reduce'): EdgeSpec[] => {
    const list = (edges as Record<string, unknown>)[kind];
    if (!Array.isArray(list) || list.length === 0) fail(`edges.${kind}`, 'must be a non-empty list of {node, source}');
    const seen = new Set<string>();
    const out = (list as unknown[]).map((e, i) => {
      const f = `edges.${kind}[${i}]`;
      const ee = (Array.isArray(e) ? { node: e[0], source: e[1] } : e) as Record<string, unknown>;
      if (typeof ee !== 'object' || ee === null) fail(f, 'must be {node, source} or [node, source]');
      const { node, source } = ee;
      if (!Number.isInteger(node) || (node as number) < 0 || (node as number) >= nodes) fail(`${f}.node`, `must be an integer in 0..${nodes - 1} (got ${JSON.stringify(node)})`);
      if (!Number.isInteger(source) || (source as number) < 0 || (source as number) >= (node as number) + 2) fail(`${f}.source`, `must be an earlier state 0..${(node as number) + 1} (0 = c_{k-2}, 1 = c_{k-1}, 2+i = node i; got ${JSON.stringify(source)})`);
      const key = `${node}:${source}`;
      if (seen.has(key)) fail(f, `duplicates the edge node ${node} <- source ${source}`);
      seen.add(key);
      return { node: node as number, source: source as number };
    });
    for (let n = 0; n < nodes; n++) if (!out.some((e) => e.node === n)) fail(`edges.${kind}`, `gives node ${n} no input edge`);
    return out;
  };
  const spec: SpaceSpec = {
    name: name as string, flavour, ops: ops as OpName[], nodes,
    edges: { normal: edgeList('normal'), reduce: edgeList('reduce') },
    layers: int('layers', 1), C: int('C', 1), stemMultiplier: int('stemMultiplier', 1),
    stem: oneOf('stem', ['conv-bn', 'conv'] as const), preprocess: oneOf('preprocess', ['darts', 'creduct'] as const),
    head: oneOf('head', ['gap-linear', 'bn-relu-gap-linear'] as const), gate: oneOf('gate', ['input', 'output'] as const),
  };
  const concat = get('concat');
  if (concat !== undefined) {
    if (!Array.isArray(concat) || concat.length === 0 || concat.some((c) => !Number.isInteger(c) || c < 0 || c >= nodes)) fail('concat', `must be a non-empty list of node indices 0..${nodes - 1}`);
    spec.concat = concat as number[];
  }
  const red = get('reductions');
  if (red !== undefined) {
    if (!Array.isArray(red) || red.some((c) => !Number.isInteger(c) || c < 0 || c >= spec.layers)) fail('reductions', `must be a list of cell indices 0..${spec.layers - 1}`);
    spec.reductions = red as number[];
  }
  if (spec.C % 2 && spec.flavour === 'darts') fail('C', 'must be even (FactorizedReduce halves it)');
  return spec;
}

/** Loads a space from a JSON file: a full description, or {"preset": "darts", ...overrides}. */
export function loadSpaceFile(file: string): SpaceSpec {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) { throw new Error(`${file}: cannot read (${(e as NodeJS.ErrnoException).code})`); }
  let raw: unknown;
  try { raw = JSON.parse(text); } catch (e) { throw new Error(`${file}: not valid JSON (${(e as Error).message})`); }
  return validateSpace(raw, file);
}

/** A preset name, a preset with overrides, or a JSON file path. */
export function resolveSpace(nameOrFile: string, overrides: Partial<SpaceSpec> = {}): SpaceSpec {
  const base = PRESETS[nameOrFile] ? { ...PRESETS[nameOrFile] } : loadSpaceFile(nameOrFile);
  return validateSpace({ ...base, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) }, nameOrFile);
}
