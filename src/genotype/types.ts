// The general genotype (spec §7.3, architecture.md "Genotypes"). A cell has two inputs, state 0 =
// c_{k-2} and state 1 = c_{k-1}, then intermediate node i = state i+2. Node i lists the (op, input)
// entries it sums; an input is any earlier state. DARTS's "two entries per node" is a special
// case: a BayesNAS node may have one entry, many, or several ops on the same input (§7.2). `concat`
// lists the states concatenated at the cell output, in channel order.
//
// A node with no entries is a dead node (spec §7.3 step 4, 'shrink'): it is allowed as long as no
// other node reads it and the concat leaves it out, so that the state numbering stays the search
// space's.

export interface GenotypeEntry { op: string; input: number }

export interface CellGenotype {
  /** node i (state i+2): the entries summed into it */
  nodes: GenotypeEntry[][];
  /** states concatenated at the output, each >= 2 */
  concat: number[];
}

export interface Genotype {
  normal: CellGenotype;
  reduce: CellGenotype;
  name?: string;
}

export type CellKind = 'normal' | 'reduce';
export const CELL_KINDS: readonly CellKind[] = ['normal', 'reduce'];

/** number of cell inputs (c_{k-2}, c_{k-1}) before the first intermediate node */
export const CELL_INPUTS = 2;

/** Human name of a state: c_{k-2}, c_{k-1}, or node j. */
export function stateName(state: number): string {
  if (state === 0) return 'c_{k-2}';
  if (state === 1) return 'c_{k-1}';
  return `node ${state - CELL_INPUTS}`;
}

/** Where a problem is: the cell, then a node and an entry field, or a concat position. */
export interface IssuePath {
  cell?: CellKind;
  node?: number;
  entry?: number;
  field?: 'op' | 'input';
  concat?: number;
}

export interface Issue { path: IssuePath; message: string }

export interface ValidateOptions {
  /** known op names; when given, every op must be one of them */
  ops?: readonly string[];
}

/** Thrown for a genotype whose structure is wrong; `path` says where. */
export class GenotypeError extends Error {
  constructor(message: string, readonly path: IssuePath = {}) {
    super(message);
    this.name = 'GenotypeError';
  }
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** Every problem of one cell, in reading order (nodes, entries, then concat). Types are checked too. */
export function cellIssues(cell: CellGenotype, opts: ValidateOptions = {}, kind?: CellKind): Issue[] {
  const issues: Issue[] = [];
  const at = (p: Omit<IssuePath, 'cell'>): IssuePath => (kind ? { cell: kind, ...p } : p);
  if (!cell || typeof cell !== 'object' || !Array.isArray(cell.nodes)) {
    return [{ path: at({}), message: 'a cell needs a list of nodes' }];
  }
  if (cell.nodes.length === 0) issues.push({ path: at({}), message: 'a cell needs at least one intermediate node' });
  const known = opts.ops ? new Set(opts.ops) : undefined;
  const states = CELL_INPUTS + cell.nodes.length;
  const empty = (s: number) => s >= CELL_INPUTS && Array.isArray(cell.nodes[s - CELL_INPUTS]) && cell.nodes[s - CELL_INPUTS].length === 0;
  cell.nodes.forEach((node, i) => {
    if (!Array.isArray(node)) { issues.push({ path: at({ node: i }), message: `node ${i} must be a list of (op, input) entries` }); return; }
    const last = i + CELL_INPUTS - 1;
    node.forEach((e, j) => {
      if (!e || typeof e !== 'object') { issues.push({ path: at({ node: i, entry: j }), message: `entry ${j} of node ${i} must be an {op, input} pair` }); return; }
      if (typeof e.op !== 'string' || e.op === '') {
        issues.push({ path: at({ node: i, entry: j, field: 'op' }), message: `the op of entry ${j} of node ${i} must be a non-empty string` });
      } else if (known && !known.has(e.op)) {
        issues.push({ path: at({ node: i, entry: j, field: 'op' }), message: `unknown op '${e.op}' in entry ${j} of node ${i} (known: ${[...known].join(', ')})` });
      }
      if (!isIndex(e.input)) {
        issues.push({ path: at({ node: i, entry: j, field: 'input' }), message: `the input of entry ${j} of node ${i} must be an integer state index` });
      } else if (e.input < 0 || e.input > last) {
        issues.push({ path: at({ node: i, entry: j, field: 'input' }), message: `input ${e.input} of node ${i} is not an earlier state (0..${last})` });
      } else if (empty(e.input)) {
        issues.push({ path: at({ node: i, entry: j, field: 'input' }), message: `input ${e.input} of node ${i} is ${stateName(e.input)}, which has no inputs (a dead node)` });
      }
    });
  });
  if (!Array.isArray(cell.concat)) {
    issues.push({ path: at({}), message: 'a cell needs a concat list' });
    return issues;
  }
  if (cell.concat.length === 0) issues.push({ path: at({}), message: 'the concat list is empty' });
  const seen = new Set<number>();
  cell.concat.forEach((s, k) => {
    const p = at({ concat: k });
    if (!isIndex(s)) issues.push({ path: p, message: `concat entry ${k} must be an integer state index` });
    else if (s < CELL_INPUTS || s >= states) issues.push({ path: p, message: `concat entry ${k} is ${s}, not an intermediate state (${CELL_INPUTS}..${states - 1})` });
    else if (seen.has(s)) issues.push({ path: p, message: `concat entry ${k} repeats state ${s}` });
    else if (empty(s)) issues.push({ path: p, message: `concat entry ${k} is state ${s}, ${stateName(s)}, which has no inputs (a dead node)` });
    if (isIndex(s)) seen.add(s);
  });
  return issues;
}

/** Every problem of a genotype: normal cell first, then reduce. */
export function genotypeIssues(g: Genotype, opts: ValidateOptions = {}): Issue[] {
  if (!g || typeof g !== 'object') return [{ path: {}, message: 'a genotype must be an object with normal and reduce cells' }];
  const issues: Issue[] = [];
  for (const kind of CELL_KINDS) {
    if (!g[kind]) issues.push({ path: { cell: kind }, message: `the ${kind} cell is missing` });
    else issues.push(...cellIssues(g[kind], opts, kind));
  }
  if (g.name !== undefined && typeof g.name !== 'string') issues.push({ path: {}, message: 'the name must be a string' });
  return issues;
}

/** "normal cell, node 2, entry 1" */
export function describePath(p: IssuePath): string {
  const parts: string[] = [];
  if (p.cell) parts.push(`${p.cell} cell`);
  if (p.node !== undefined) parts.push(`node ${p.node} (state ${p.node + CELL_INPUTS})`);
  if (p.entry !== undefined) parts.push(`entry ${p.entry}${p.field ? ` ${p.field}` : ''}`);
  if (p.concat !== undefined) parts.push(`concat[${p.concat}]`);
  return parts.join(', ');
}

/** Throws a GenotypeError naming `where`, the cell, node and entry of the first problem. */
export function validateCell(cell: CellGenotype, where: string, opts: ValidateOptions = {}, kind?: CellKind): void {
  const [first] = cellIssues(cell, opts, kind);
  if (first) throw new GenotypeError(`${where}: ${describePath(first.path) || 'cell'}: ${first.message}`, first.path);
}

/** Throws a GenotypeError naming `where`, the cell, node and entry of the first problem. */
export function validateGenotype(g: Genotype, where: string, opts: ValidateOptions = {}): void {
  const [first] = genotypeIssues(g, opts);
  if (first) throw new GenotypeError(`${where}: ${describePath(first.path) || 'genotype'}: ${first.message}`, first.path);
}

/** Total number of (op, input) entries of a cell. */
export function entryCount(cell: CellGenotype): number {
  return cell.nodes.reduce((n, node) => n + node.length, 0);
}

/** Groups a flat DARTS list into nodes of `perNode` entries each (default 2). */
export function cellFromPairs(pairs: ReadonlyArray<readonly [string, number]>, concat: number[], perNode = 2): CellGenotype {
  if (perNode < 1 || pairs.length % perNode !== 0) throw new GenotypeError(`${pairs.length} entries cannot be split into nodes of ${perNode}`);
  const nodes: GenotypeEntry[][] = [];
  for (let i = 0; i < pairs.length; i += perNode) nodes.push(pairs.slice(i, i + perNode).map(([op, input]) => ({ op, input })));
  return { nodes, concat: [...concat] };
}
