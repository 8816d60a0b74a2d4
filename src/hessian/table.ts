// Switch-level results as an Arrow table, one row per switch: cell type, cell, edge (with its node and
// source), op ('' for the origin switch), kind, value. Used for Hessians now and for γ, ω, C later.
import fs from 'node:fs';
import path from 'node:path';
import { tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';
import type { Supernet } from '../space/supernet.js';
import type { CellHessian } from './index.js';

export interface SwitchRow { cellType: 'normal' | 'reduce'; cell: number; edge: number; node: number; source: number; op: string; kind: 'origin' | 'child'; value: number }

export function switchRows(net: Supernet, cells: CellHessian[]): SwitchRow[] {
  const rows: SwitchRow[] = [];
  const nOps = net.space.ops.length;
  for (const c of cells) {
    const info = net.cells[c.index];
    info.edges.forEach((e, ei) => {
      const base = { cellType: info.reduction ? 'reduce' as const : 'normal' as const, cell: c.index, edge: ei, node: e.node, source: e.source };
      rows.push({ ...base, op: '', kind: 'origin', value: c.origin[ei] });
      net.space.ops.forEach((op, oi) => rows.push({ ...base, op, kind: 'child', value: c.child[ei * nOps + oi] }));
    });
  }
  return rows;
}

export function writeSwitchTable(file: string, rows: SwitchRow[], metadata: Record<string, string>): void {
  const t = tableFromArrays({
    cell_type: rows.map((r) => r.cellType), cell: Int32Array.from(rows, (r) => r.cell), edge: Int32Array.from(rows, (r) => r.edge),
    node: Int32Array.from(rows, (r) => r.node), source: Int32Array.from(rows, (r) => r.source), op: rows.map((r) => r.op),
    kind: rows.map((r) => r.kind), value: Float64Array.from(rows, (r) => r.value),
  });
  for (const [k, v] of Object.entries(metadata)) t.schema.metadata.set(k, v);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, tableToIPC(t, 'file'));
  fs.renameSync(tmp, file);
}

export function readSwitchTable(file: string): { rows: SwitchRow[]; metadata: Record<string, string> } {
  const t = tableFromIPC(fs.readFileSync(file));
  const col = (n: string) => { const c = t.getChild(n); if (!c) throw new Error(`${file}: no column '${n}'`); return c; };
  const rows: SwitchRow[] = [];
  for (let i = 0; i < t.numRows; i++) {
    rows.push({ cellType: col('cell_type').get(i), cell: col('cell').get(i), edge: col('edge').get(i), node: col('node').get(i), source: col('source').get(i), op: col('op').get(i), kind: col('kind').get(i), value: col('value').get(i) });
  }
  return { rows, metadata: Object.fromEntries(t.schema.metadata) };
}
