// Export of a pruned CompressNet as a physically smaller TensorFlow.js LayersModel: every dead neuron,
// filter and channel is gone from the weight tensors (not masked). Pruned input features (pixels, or
// flattened features of a live channel) are dropped by a `SelectFeatures` layer, a gather along the
// last axis, so the next layer's weights shrink too. Saved in the tfjs format (model.json +
// weights.bin) through tfjs-node's file:// handler when it is registered, else by an equivalent writer.
import fs from 'node:fs';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../engine/index.js';
import type { CompressNet } from './model.js';

/** Keeps the given positions of the last axis (a gather), so that pruned inputs cost no weights. */
export class SelectFeatures extends tfl.layers.Layer {
  static className = 'SelectFeatures';
  readonly indices: number[];
  constructor(args: { indices: number[]; name?: string }) {
    super({ name: args.name });
    this.indices = args.indices;
  }
  computeOutputShape(s: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = (Array.isArray(s[0]) ? s[0] : s) as tfl.Shape;
    return [...shape.slice(0, -1), this.indices.length];
  }
  call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => tf.gather(x, tf.tensor1d(this.indices, 'int32'), x.rank - 1));
  }
  getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), indices: this.indices };
  }
}
tf.serialization.registerClass(SelectFeatures);

const ids = (a: Uint8Array) => { const out: number[] = []; a.forEach((v, i) => { if (v) out.push(i); }); return out; };
const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/** Picks W[..., rows, cols] of a row-major [taps, I, O] weight. */
function pick(w: Float32Array, taps: number, I: number, O: number, rows: number[], cols: number[]): Float32Array {
  const out = new Float32Array(taps * rows.length * cols.length);
  let j = 0;
  for (let t = 0; t < taps; t++) for (const u of rows) { const base = (t * I + u) * O; for (const v of cols) out[j++] = w[base + v]; }
  return out;
}

export interface ExportInfo { params: number; layers: string[] }

/** Builds the smaller model with the pruned network's (masked) weights. */
export async function toLayersModel(net: CompressNet): Promise<{ model: tfl.LayersModel; info: ExportInfo }> {
  const input = tfl.input({ shape: [...net.input] });
  let x = input as tfl.SymbolicTensor;
  const pending: Array<{ layer: tfl.layers.Layer; weights: tf.Tensor[] }> = [];
  const desc: string[] = [];
  // `cur`: which original units the current tensor's last axis holds (channels, or features once flat)
  let cur = Array.from({ length: net.input[2] }, (_, i) => i);
  let [H, W] = net.input;
  let flat = false;
  const apply = (layer: tfl.layers.Layer, weights: tf.Tensor[] = []) => {
    x = layer.apply(x) as tfl.SymbolicTensor;
    if (weights.length) pending.push({ layer, weights });
  };
  const select = (keep: number[]) => {
    if (same(cur, keep)) return;
    const pos = new Map(cur.map((u, i) => [u, i]));
    apply(new SelectFeatures({ indices: keep.map((u) => { const p = pos.get(u); if (p === undefined) throw new Error(`export: unit ${u} is not present`); return p; }) }));
    desc.push(`select ${keep.length}/${cur.length}`);
    cur = keep;
  };
  for (const o of net.ops) {
    if (o.op === 'relu') { apply(tfl.layers.activation({ activation: 'relu' })); continue; }
    if (o.op === 'maxpool') {
      apply(tfl.layers.maxPooling2d({ poolSize: o.size, strides: o.stride, padding: 'valid' }));
      H = Math.floor((H - o.size) / o.stride) + 1; W = Math.floor((W - o.size) / o.stride) + 1;
      continue;
    }
    if (o.op === 'flatten') {
      if (flat) continue;
      const C = cur.length;
      // original flattened index of (h, w, original channel c) is (h·W + w)·C_orig + c
      const Corig = flatChannels(net);
      const next: number[] = [];
      for (let p = 0; p < H * W; p++) for (let c = 0; c < C; c++) next.push(p * Corig + cur[c]);
      apply(tfl.layers.flatten());
      cur = next;
      flat = true;
      continue;
    }
    const l = o.layer;
    const keepIn = ids(l.inAlive), keepOut = ids(l.outAlive);
    select(keepIn);
    const masked = [tf.mul(l.W, l.mask), tf.mul(l.b, l.bmask)];
    const [w, b] = await Promise.all(masked.map((t) => t.data() as Promise<Float32Array>));
    tf.dispose(masked);
    const taps = l.kind === 'conv' ? l.k * l.k : 1;
    const wk = pick(w, taps, l.inUnits, l.outUnits, keepIn, keepOut);
    const bk = Float32Array.from(keepOut, (v) => b[v]);
    if (l.kind === 'dense') {
      apply(tfl.layers.dense({ units: keepOut.length, name: `${l.name.replace('.', '_')}_dense` }), [tf.tensor2d(wk, [keepIn.length, keepOut.length]), tf.tensor1d(bk)]);
      desc.push(`dense ${keepIn.length}->${keepOut.length}`);
    } else {
      if (l.padding) apply(tfl.layers.zeroPadding2d({ padding: l.padding }));
      apply(tfl.layers.conv2d({ filters: keepOut.length, kernelSize: l.k, strides: l.stride, padding: 'valid', name: `${l.name.replace('.', '_')}_conv` }),
        [tf.tensor4d(wk, [l.k, l.k, keepIn.length, keepOut.length]), tf.tensor1d(bk)]);
      desc.push(`conv ${l.k}x${l.k} ${keepIn.length}->${keepOut.length}`);
      [H, W] = l.outHW;
    }
    cur = keepOut;
  }
  const model = tfl.model({ inputs: input, outputs: x });
  for (const p of pending) { p.layer.setWeights(p.weights); tf.dispose(p.weights); }
  return { model, info: { params: model.countParams(), layers: desc } };
}

/** Channels of the tensor that the network's flatten sees (the last conv's filters, or the input's channels). */
function flatChannels(net: CompressNet): number {
  const convs = net.layers.filter((l) => l.kind === 'conv');
  return convs.length ? convs[convs.length - 1].outUnits : net.input[2];
}

function fileHandlerAvailable(dir: string): boolean {
  return tf.io.getSaveHandlers(`file://${dir}`).length > 0;
}

/** Saves in the tfjs layers format: DIR/model.json + DIR/weights.bin. */
export async function saveModel(model: tfl.LayersModel, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  if (fileHandlerAvailable(dir)) { await model.save(`file://${path.resolve(dir)}`); return; }
  await model.save(tf.io.withSaveHandler(async (a) => {
    fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(a.weightData as ArrayBuffer));
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ modelTopology: a.modelTopology, format: a.format, generatedBy: a.generatedBy, convertedBy: a.convertedBy,
      weightsManifest: [{ paths: ['./weights.bin'], weights: a.weightSpecs }] }));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
}

export async function loadModel(dir: string): Promise<tfl.LayersModel> {
  const file = path.resolve(dir, 'model.json');
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist`);
  if (tf.io.getLoadHandlers(`file://${file}`).length) return tfl.loadLayersModel(`file://${file}`);
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  const bin = fs.readFileSync(path.join(dir, 'weights.bin'));
  const specs = j.weightsManifest.flatMap((g: { weights: tf.io.WeightsManifestEntry[] }) => g.weights);
  return tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: j.modelTopology, weightSpecs: specs, weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) }));
}
