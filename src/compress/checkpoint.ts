// Checkpoints of a compression run, written after every round into <run>/checkpoint/ (the latest) and
// kept per round in <run>/checkpoint/round-<r>/ (a branch can start from any round): the weights and
// biases of every layer and the SGD momentum buffers (params.arrow), the unit and weight masks
// (masks.arrow), γ and ω of every group in float64 (groups.arrow), and state.json (rounds done, the
// epoch counter that seeds the batch order, the metrics rows so far). Restoring one into a freshly
// built network of the same spec and grouping continues the run exactly.
import fs from 'node:fs';
import path from 'node:path';
import { tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';
import { tf } from '../engine/index.js';
import { restoreFromRows, stateRows } from '../engine/sgd.js';
import { readTensorFile, writeTensorFile, type TensorRow } from '../bridge/arrow.js';
import type { CompressNet } from './model.js';
import type { RoundMetrics, Trainer } from './run.js';

export interface CompressCheckpointState {
  /** rounds finished (the final epochs are not checkpointed: a resume runs them again from here) */
  roundDone: number;
  epochCounter: number;
  rounds: RoundMetrics[];
  savedAt: string;
}

/** The checkpoint files of a run folder: the latest round's, or round `round`'s. */
const files = (dir: string, round?: number) => {
  const ck = round === undefined ? path.join(dir, 'checkpoint') : path.join(dir, 'checkpoint', `round-${round}`);
  return { ck, params: path.join(ck, 'params.arrow'), masks: path.join(ck, 'masks.arrow'), groups: path.join(ck, 'groups.arrow'), state: path.join(ck, 'state.json') };
};

/** Rounds whose checkpoint a run folder keeps, ascending. */
export function checkpointRounds(runDir: string): number[] {
  const ck = path.join(runDir, 'checkpoint');
  if (!fs.existsSync(ck)) return [];
  return fs.readdirSync(ck).map((d) => /^round-(\d+)$/.exec(d)).filter((m): m is RegExpExecArray => !!m && fs.existsSync(path.join(ck, m[0], 'state.json')))
    .map((m) => Number(m[1])).sort((a, b) => a - b);
}

/** Copies one checkpoint's files into another checkpoint folder (created if missing), state.json last. */
function copyCheckpoint(src: ReturnType<typeof files>, dst: ReturnType<typeof files>): void {
  fs.mkdirSync(dst.ck, { recursive: true });
  for (const k of ['params', 'masks', 'groups', 'state'] as const) fs.copyFileSync(src[k], dst[k]);
}

/** Copies the per-round checkpoints 1..upTo of `from` into `to` and makes round `upTo` the latest there. */
export function copyCheckpoints(from: string, to: string, upTo: number): void {
  for (const r of checkpointRounds(from).filter((r) => r <= upTo)) copyCheckpoint(files(from, r), files(to, r));
  // folders from before per-round copies keep the latest only
  copyCheckpoint(fs.existsSync(files(from, upTo).state) ? files(from, upTo) : files(from), files(to));
}

export async function saveCompressCheckpoint(runDir: string, net: CompressNet, trainer: Trainer, st: Omit<CompressCheckpointState, 'savedAt'>): Promise<void> {
  const f = files(runDir);
  const params: TensorRow[] = [];
  for (const l of net.layers) {
    params.push({ name: `${l.name}.weight`, shape: l.shape, data: Float32Array.from(await l.W.data()) });
    params.push({ name: `${l.name}.bias`, shape: [l.outUnits], data: Float32Array.from(await l.b.data()) });
  }
  params.push(...await stateRows(await trainer.state(), 'optimizer/'));
  writeTensorFile(f.params, params, { kind: 'compress-params' });
  const masks: TensorRow[] = net.layers.flatMap((l) => [
    { name: `${l.name}.inAlive`, shape: [l.inUnits], data: Float32Array.from(l.inAlive) },
    { name: `${l.name}.outAlive`, shape: [l.outUnits], data: Float32Array.from(l.outAlive) },
    ...(l.wAlive ? [{ name: `${l.name}.wAlive`, shape: l.shape, data: Float32Array.from(l.wAlive) }] : []),
  ]);
  writeTensorFile(f.masks, masks, { kind: 'compress-masks' });
  const layer = net.layers.flatMap((l) => Array.from(l.gamma, () => l.index));
  const groups = tableFromArrays({
    layer: Int32Array.from(layer),
    gamma: Float64Array.from(net.layers.flatMap((l) => Array.from(l.gamma))),
    omega: Float64Array.from(net.layers.flatMap((l) => Array.from(l.omega))),
  });
  fs.writeFileSync(`${f.groups}.tmp`, tableToIPC(groups, 'file'));
  fs.renameSync(`${f.groups}.tmp`, f.groups);
  fs.writeFileSync(`${f.state}.tmp`, JSON.stringify({ ...st, savedAt: new Date().toISOString() }, null, 2));
  fs.renameSync(`${f.state}.tmp`, f.state);   // last: a checkpoint counts once its state.json is there
  copyCheckpoint(f, files(runDir, st.roundDone));
}

/**
 * Restores a checkpoint of `runDir` (the latest, or the one kept after round `round`) into `net` and
 * `trainer`; errors name the file and the tensor.
 */
export async function loadCompressCheckpoint(runDir: string, net: CompressNet, trainer: Trainer, round?: number): Promise<CompressCheckpointState> {
  const f = files(runDir, round);
  if (round !== undefined && !fs.existsSync(f.state)) {
    const kept = checkpointRounds(runDir);
    throw new Error(`${runDir}: no checkpoint of round ${round} (${kept.length ? `checkpoint/ keeps rounds ${kept.join(', ')}` : 'checkpoint/ keeps no per-round checkpoints'})`);
  }
  if (!fs.existsSync(f.state)) throw new Error(`${runDir}: no checkpoint to resume from (checkpoint/state.json is missing)`);
  const st = JSON.parse(fs.readFileSync(f.state, 'utf8')) as CompressCheckpointState;
  const byName = (file: string) => new Map(readTensorFile(file).rows.map((r) => [r.name, r]));
  const need = (m: Map<string, TensorRow>, file: string, name: string, size: number) => {
    const r = m.get(name);
    if (!r) throw new Error(`${file}: no tensor '${name}'`);
    if (r.data.length !== size) throw new Error(`${file}: '${name}' has ${r.data.length} values, the network expects ${size}`);
    return r.data;
  };
  const params = byName(f.params), masks = byName(f.masks);
  const g = tableFromIPC(fs.readFileSync(f.groups));
  const gamma = g.getChild('gamma')!.toArray() as Float64Array, omega = g.getChild('omega')!.toArray() as Float64Array;
  const total = net.layers.reduce((a, l) => a + l.gamma.length, 0);
  if (gamma.length !== total) throw new Error(`${f.groups}: ${gamma.length} groups, the network has ${total}`);
  let k = 0;
  for (const l of net.layers) {
    const size = l.shape.reduce((a, b) => a * b, 1);
    tf.tidy(() => {
      l.W.assign(tf.tensor(need(params, f.params, `${l.name}.weight`, size), l.shape));
      l.b.assign(tf.tensor1d(need(params, f.params, `${l.name}.bias`, l.outUnits)));
    });
    l.inAlive.set(need(masks, f.masks, `${l.name}.inAlive`, l.inUnits));
    l.outAlive.set(need(masks, f.masks, `${l.name}.outAlive`, l.outUnits));
    if (l.wAlive) l.wAlive.set(need(masks, f.masks, `${l.name}.wAlive`, size));
    l.gamma.set(gamma.subarray(k, k + l.gamma.length));
    l.omega.set(omega.subarray(k, k + l.omega.length));
    k += l.gamma.length;
  }
  net.refreshMasks();
  await restoreFromRows(trainer, [...params.values()], 'optimizer/');   // in the order written (by position)
  return st;
}
