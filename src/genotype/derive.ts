// Derivation of a cell from γ (spec §7.3), respecting the dependency proposition (§3.1):
//   1. edge gate γ_e ≥ τ_edge (zero-op priority: a dropped edge takes all its ops);
//   2. op gate γ_eo ≥ τ_op on surviving edges; an edge without ops is dropped;
//   3. a node with no surviving input from a live state is dead, and so is every edge leaving it
//      (one pass in node order suffices: sources always precede their node);
//   4. a dead node either gets its best edge re-attached (default: the concat keeps every node) or
//      leaves the concat ('shrink');
//   'darts' mode: the top-2 incoming edges per node by γ_e, the top-1 op on each by γ_eo.
// Thresholds are absolute, or relative to the largest γ of the cell (`relative: true`).
import type { EdgeSpec } from '../space/spaces.js';

export interface DerivedCell { nodes: Array<Array<{ op: string; input: number }>>; concat: number[] }

export interface CellGammas {
  /** γ_e per edge */
  origin: ArrayLike<number>;
  /** effective γ_eo per edge and op, row-major [E × O] */
  child: ArrayLike<number>;
}

export interface DeriveOptions {
  mode?: 'bayesnas' | 'darts';
  tauEdge?: number;
  tauOp?: number;
  /** thresholds as fractions of the largest origin / child γ of the cell */
  relative?: boolean;
  onDead?: 'reattach' | 'shrink';
  /** inputs per node in 'darts' mode */
  inputsPerNode?: number;
}

export const DEFAULT_DERIVE: Required<DeriveOptions> = { mode: 'bayesnas', tauEdge: 0.1, tauOp: 0.1, relative: true, onDead: 'reattach', inputsPerNode: 2 };

export function deriveCell(edges: EdgeSpec[], ops: readonly string[], nodes: number, g: CellGammas, opts: DeriveOptions = {}): DerivedCell {
  const o = { ...DEFAULT_DERIVE, ...opts };
  const O = ops.length;
  if (g.origin.length !== edges.length || g.child.length !== edges.length * O) {
    throw new Error(`deriveCell: γ sizes (${g.origin.length} origins, ${g.child.length} children) do not match ${edges.length} edges × ${O} ops`);
  }
  const usable = ops.map((op) => op !== 'none');
  const child = (e: number, k: number) => g.child[e * O + k];
  const bestOp = (e: number) => {
    let best = -1;
    for (let k = 0; k < O; k++) if (usable[k] && (best < 0 || child(e, k) > child(e, best))) best = k;
    return best;
  };
  const out: DerivedCell = { nodes: Array.from({ length: nodes }, () => []), concat: [] };
  if (o.mode === 'darts') {
    for (let n = 0; n < nodes; n++) {
      const cand = edges.map((e, i) => ({ e, i })).filter((c) => c.e.node === n)
        .sort((a, b) => g.origin[b.i] - g.origin[a.i] || a.i - b.i).slice(0, o.inputsPerNode);
      out.nodes[n] = cand.map((c) => ({ op: ops[bestOp(c.i)], input: c.e.source }));
      out.concat.push(n + 2);
    }
    return out;
  }
  const maxO = Math.max(...Array.from(g.origin)), maxC = Math.max(...Array.from(g.child));
  const tauE = o.relative ? o.tauEdge * maxO : o.tauEdge;
  const tauO = o.relative ? o.tauOp * maxC : o.tauOp;
  const alive = [true, true];
  for (let n = 0; n < nodes; n++) {
    const entries: Array<{ op: string; input: number }> = [];
    edges.forEach((e, i) => {
      if (e.node !== n || !alive[e.source] || !(g.origin[i] >= tauE)) return;
      for (let k = 0; k < O; k++) if (usable[k] && child(i, k) >= tauO) entries.push({ op: ops[k], input: e.source });
    });
    if (!entries.length && o.onDead === 'reattach') {
      let best = -1;
      edges.forEach((e, i) => { if (e.node === n && alive[e.source] && (best < 0 || g.origin[i] > g.origin[best])) best = i; });
      if (best >= 0) entries.push({ op: ops[bestOp(best)], input: edges[best].source });
    }
    alive.push(entries.length > 0);
    out.nodes[n] = entries;
    if (entries.length) out.concat.push(n + 2);
  }
  // a cell must output something: if 'shrink' left no node at all, keep the re-attached form
  if (!out.concat.length) return deriveCell(edges, ops, nodes, g, { ...opts, onDead: 'reattach' });
  return out;
}
