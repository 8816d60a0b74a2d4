// Tensors as Apache Arrow IPC files: one row per tensor, columns `name` (utf8), `group` (utf8),
// `shape` (list<int32>) and `data` (list<float32>, row-major); table metadata carries the layout
// (NHWC on the TypeScript side, NCHW in PyTorch) and anything else the writer adds. pyarrow reads
// them with `pa.ipc.open_file(path).read_all()`.
import fs from 'node:fs';
import path from 'node:path';
import { Field, Float32, Int32, List, Table, Utf8, tableFromIPC, tableToIPC, vectorFromArray } from 'apache-arrow';

export interface TensorRow { name: string; group?: string; shape: number[]; data: Float32Array }

export function tensorsToArrow(rows: TensorRow[], metadata: Record<string, string> = {}): Uint8Array {
  for (const r of rows) {
    const n = r.shape.reduce((a, b) => a * b, 1);
    if (n !== r.data.length) throw new Error(`tensor ${r.name}: shape [${r.shape}] has ${n} elements but data has ${r.data.length}`);
  }
  const t = new Table({
    name: vectorFromArray(rows.map((r) => r.name), new Utf8()),
    group: vectorFromArray(rows.map((r) => r.group ?? ''), new Utf8()),
    shape: vectorFromArray(rows.map((r) => r.shape), new List(new Field('item', new Int32(), false))),
    data: vectorFromArray(rows.map((r) => r.data), new List(new Field('item', new Float32(), false))),
  });
  for (const [k, v] of Object.entries({ layout: 'NHWC', ...metadata })) t.schema.metadata.set(k, v);
  return tableToIPC(t, 'file');
}

/** Writes atomically (temp file + rename), so an interrupted write never replaces a good file. */
export function writeTensorFile(file: string, rows: TensorRow[], metadata: Record<string, string> = {}): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, tensorsToArrow(rows, metadata));
  fs.renameSync(tmp, file);
}

export function readTensorFile(file: string): { rows: TensorRow[]; metadata: Record<string, string> } {
  let t: Table;
  try {
    t = tableFromIPC(fs.readFileSync(file));
  } catch (e) {
    throw new Error(`${file}: not a readable Arrow IPC file (${(e as Error).message})`);
  }
  for (const col of ['name', 'shape', 'data']) if (!t.getChild(col)) throw new Error(`${file}: Arrow table has no '${col}' column`);
  const rows: TensorRow[] = [];
  for (let i = 0; i < t.numRows; i++) {
    const name = String(t.getChild('name')!.get(i));
    const shape = Array.from(t.getChild('shape')!.get(i).toArray() as Int32Array);
    const data = Float32Array.from(t.getChild('data')!.get(i).toArray() as Float32Array);
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new Error(`${file}: row ${i} (${name}) has shape [${shape}] but ${data.length} values`);
    rows.push({ name, group: t.getChild('group') ? String(t.getChild('group')!.get(i)) : undefined, shape, data });
  }
  return { rows, metadata: Object.fromEntries(t.schema.metadata) };
}
