import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initEngine, tf } from '../src/engine/index.js';
import { HessianTape, softmaxSeed, vjp } from '../src/hessian/tape.js';
import { CompressNet, type Grouping } from '../src/compress/model.js';
import { checkModelSpec, LENET_5, type ModelSpec } from '../src/compress/spec.js';
import { pruneByGamma, updateGroups, weightHessians } from '../src/compress/bayes.js';
import { loadModel, saveModel, toLayersModel } from '../src/compress/export.js';
import { compress, DEFAULT_COMPRESS, finalLrAt, testError, Trainer } from '../src/compress/run.js';
import { findRuns, fitLogLine, frontierFits, frontierTable, groupBySeed, markdownTables, readRun, type RunRow } from '../src/compress/table.js';
import type { Split } from '../src/data/index.js';
import { randomArray, relErr } from './helpers/numeric.js';

await initEngine({ quiet: true });

const spec = (layers: unknown[], name = 'tiny'): ModelSpec => checkModelSpec({ name, layers }, 'test');

/** Metrics rows without their wall times (which differ between otherwise identical runs). */
const withoutTimes = (rows: Array<Record<string, unknown>>) => rows.map(({ secondsTrain: _1, secondsHessian: _2, secondsRound: _3, ...r }) => r);

/** The first `train` training images and first 200 test images of MNIST, as compress() takes them. */
async function mnistSlice(train: number) {
  const { loadDataset, headOf, UNIT_SCALE } = await import('../src/data/index.js');
  const mnist = loadDataset('mnist');
  return { train: headOf(mnist.train, train), test: headOf(mnist.test, 200), classes: 10, normalization: UNIT_SCALE };
}

/** Random weights (not PyTorch-small) so that every unit fires on some samples. */
function randomize(net: CompressNet, seed: number, scale = 0.6): void {
  net.layers.forEach((l, i) => {
    l.W.assign(tf.tensor(randomArray(l.W.size, seed + 2 * i).map((v) => v * scale), l.shape));
    l.b.assign(tf.tensor1d(randomArray(l.outUnits, seed + 2 * i + 1).map((v) => 0.1 * v)));
  });
}

const TINY_CONV = () => spec([
  { type: 'conv', filters: 2, kernel: 3 }, { type: 'maxpool', size: 2 }, { type: 'flatten' },
  { type: 'dense', units: 4 }, { type: 'dense', units: 3 },
]);

/** Recursion's weight diagonals for one batch. */
async function recursion(net: CompressNet, x: tf.Tensor, y: tf.Tensor1D): Promise<Float32Array[]> {
  return (await weightHessians(net, [{ x, y }])).map((h) => h.weight);
}

test('weight-Hessian recursion: classifier weights equal the exact second derivatives', async (t) => {
  const net = new CompressNet(TINY_CONV(), { grouping: 'neuron', input: [6, 6, 1], classes: 3, seed: 1 });
  randomize(net, 10);
  const N = 2;
  const x = tf.tensor4d(randomArray(N * 36, 5), [N, 6, 6, 1]);
  const y = tf.tensor1d([0, 2], 'int32');
  const rec = await recursion(net, x, y);
  // exact: logits are piecewise linear in any single weight, so ∂²L/∂w² = Σ_n J_nᵀ (diag p − ppᵀ)/N J_n,
  // with J_n[k, w] = ∂u[n,k]/∂w by reverse mode (one pass per logit)
  const cls = net.layers[net.layers.length - 1];
  const logits = net.forward(x);
  const p = tf.softmax(logits).arraySync() as number[][];
  const J: Float32Array[][] = [];
  for (let n = 0; n < N; n++) {
    J.push([]);
    for (let k = 0; k < 3; k++) {
      J[n].push(tf.tidy(() => tf.grad((w: tf.Tensor) => {
        const saved = cls.W;
        (cls as { W: tf.Variable | tf.Tensor }).W = w;
        const u = net.forward(x);
        (cls as { W: tf.Variable | tf.Tensor }).W = saved;
        return tf.sum(tf.slice(u, [n, k], [1, 1])) as tf.Scalar;
      })(cls.W).dataSync() as Float32Array));
    }
  }
  const exact = new Float64Array(cls.W.size);
  for (let i = 0; i < exact.length; i++) {
    for (let n = 0; n < N; n++) for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) {
      const hab = ((a === b ? p[n][a] : 0) - p[n][a] * p[n][b]) / N;
      exact[i] += J[n][a][i] * J[n][b][i] * hab;
    }
  }
  t.true(Math.max(...exact) > 1e-3);
  t.true(relErr(rec[rec.length - 1], exact) < 1e-4, `rel err ${relErr(rec[rec.length - 1], exact)}`);
  net.dispose();
});

/** diag(Jᵀ diag(h) J) of f at a (dense Jacobian rows by VJP). */
function denseDiag(f: (a: tf.Tensor) => tf.Tensor, a: tf.Tensor, h: Float32Array, outShape: number[]): Float64Array {
  const out = new Float64Array(a.size);
  for (let q = 0; q < h.length; q++) {
    if (h[q] === 0) continue;
    const row = tf.tidy(() => vjp(f, a, tf.reshape(tf.oneHot(tf.tensor1d([q], 'int32'), h.length), outShape)).dataSync());
    for (let j = 0; j < row.length; j++) out[j] += row[j] * row[j] * h[q];
  }
  return out;
}

test('weight-Hessian recursion equals the diagonal Gauss–Newton recursion built from dense Jacobians, every layer', async (t) => {
  const net = new CompressNet(TINY_CONV(), { grouping: 'neuron', input: [6, 6, 1], classes: 3, seed: 2 });
  randomize(net, 21, 0.5);
  const N = 4;
  const x = tf.tensor4d(randomArray(N * 36, 6), [N, 6, 6, 1]);
  const y = tf.tensor1d([1, 0, 2, 1], 'int32');
  const rec = await recursion(net, x, y);
  // activations op by op
  const acts: tf.Tensor[] = [x];
  for (let i = 0; i < net.ops.length; i++) acts.push(net.applyOp(i, acts[i]));
  const logits = acts[acts.length - 1];
  let H = Float32Array.from(softmaxSeed(logits as tf.Tensor2D, y, 'diagonal', 'mean').dataSync());
  const byLayer = new Map<number, Float64Array>();
  for (let i = net.ops.length - 1; i >= 0; i--) {
    const o = net.ops[i], a = acts[i], outShape = acts[i + 1].shape;
    if (o.op === 'weight') {
      const l = o.layer, saved = l.W;
      const withW = (w: tf.Tensor) => { (l as { W: tf.Tensor }).W = w; try { return net.applyOp(i, a); } finally { (l as { W: tf.Tensor }).W = saved; } };
      byLayer.set(l.index, denseDiag(withW, l.W, H, outShape));
    }
    H = Float32Array.from(denseDiag((z) => net.applyOp(i, z), a, H, outShape));
  }
  for (const l of net.layers) {
    const ref = byLayer.get(l.index)!;
    t.true(Math.max(...ref) > 1e-6, `layer ${l.index} has curvature (max ${Math.max(...ref)})`);
    t.true(relErr(rec[l.index], ref) < 1e-4, `layer ${l.index}: rel err ${relErr(rec[l.index], ref)}`);
  }
  net.dispose();
});

test('group update: γ_g = ||W_g||₂ / sqrt(Σ h/(1+γh)) with h = H/λ, per group', async (t) => {
  const net = new CompressNet(spec([{ type: 'flatten' }, { type: 'dense', units: 3 }, { type: 'dense', units: 2 }]), { grouping: 'neuron', input: [1, 4, 1], classes: 2, seed: 3 });
  const x = tf.tensor4d(randomArray(8 * 4, 7), [8, 1, 4, 1]);
  const y = tf.tensor1d([0, 1, 0, 1, 1, 0, 0, 1], 'int32');
  const H = await weightHessians(net, [{ x, y }]);
  const lambda = 0.01;
  const w0 = net.layers[0].W.dataSync();
  const rows = await updateGroups(net, H, lambda);
  // group 2 of layer 0 = input feature 2: row 2 of the [4, 3] weight
  const idx = [6, 7, 8];
  const h = idx.map((j) => H[0].weight[j] / lambda);
  const omega = Math.sqrt(h.reduce((a, v) => a + v / (1 + v), 0));   // γ0 = 1
  const norm = Math.sqrt(idx.reduce((a, j) => a + w0[j] * w0[j], 0));
  const r = rows.find((q) => q.layer === 0 && q.group === 2)!;
  t.true(Math.abs(r.omega - omega) < 1e-6 * omega);
  t.true(Math.abs(r.gamma - norm / omega) < 1e-6 * (norm / omega));
  t.is(rows.filter((q) => q.layer === 0).length, 4);   // fan-out groups: one per input feature
  t.is(rows.filter((q) => q.layer === 1).length, 3);
  net.dispose();
});

test('--lambda-scale: layer l is penalised, proximally shrunk and γ/ω-updated with λ·A_l; a wrong count names the flag', async (t) => {
  const mlp = spec([{ type: 'flatten' }, { type: 'dense', units: 5 }, { type: 'dense', units: 4 }, { type: 'dense', units: 3 }]);
  const build = (lambdaScale?: number[]) => {
    const net = new CompressNet(mlp, { grouping: 'neuron', input: [2, 3, 1], classes: 3, seed: 5, lambdaScale });
    randomize(net, 11);
    return net;
  };
  const A = [2, 0.5, 1], lambda = 0.03;
  const scaled = build(A);
  // penalty: Σ_l A_l · (the penalty of layer l alone)
  const alone = [0, 1, 2].map((i) => { const n = build([0, 1, 2].map((j) => (j === i ? 1 : 0))); const p = n.penalty(lambda).dataSync()[0]; n.dispose(); return p; });
  t.true(alone.every((p) => p > 0));
  const close = (a: number, b: number, tol: number) => Math.abs(a - b) <= tol * Math.abs(b);
  t.true(close(scaled.penalty(lambda).dataSync()[0], A.reduce((s, a, i) => s + a * alone[i], 0), 1e-5));
  // γ/ω update: layer l's rows are those of the unscaled net updated with λ·A_l
  const x = tf.tensor4d(randomArray(16 * 6, 13), [16, 2, 3, 1]);
  const y = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0], 'int32');
  const H = await weightHessians(scaled, [{ x, y }]);
  const rows = await updateGroups(scaled, H, lambda);
  for (const [i, a] of A.entries()) {
    const plain = build();
    const want = (await updateGroups(plain, H, lambda * a)).filter((r) => r.layer === i);
    const got = rows.filter((r) => r.layer === i);
    t.is(got.length, want.length);
    got.forEach((r, g) => { t.true(close(r.omega, want[g].omega, 1e-9)); t.true(close(r.gamma, want[g].gamma, 1e-9)); });
    plain.dispose();
  }
  const unscaled = build();
  t.notDeepEqual(rows.filter((r) => r.layer === 0).map((r) => r.omega), (await updateGroups(unscaled, H, lambda)).filter((r) => r.layer === 0).map((r) => r.omega));
  unscaled.dispose();
  // proximal step: layer l shrinks by step·λ·A_l·ω_g (ω = 1 on fresh nets)
  const prox = build(A);
  prox.proxStep(lambda, 0.5);
  A.forEach((a, i) => {
    const plain = build();
    plain.proxStep(lambda * a, 0.5);
    t.deepEqual([...prox.layers[i].W.dataSync()], [...plain.layers[i].W.dataSync()]);
    plain.dispose();
  });
  // A_l = 0: the layer is neither shrunk nor updated (γ and ω stay 1, no NaN from h = H/0)
  const frozen = build([0, 1, 1]);
  const w0 = [...frozen.layers[0].W.dataSync()];
  frozen.proxStep(lambda, 0.5);
  t.deepEqual([...frozen.layers[0].W.dataSync()], w0);
  const frozenRows = await updateGroups(frozen, H, lambda);
  t.true(frozenRows.filter((r) => r.layer === 0).every((r) => r.gamma === 1 && r.omega === 1));
  t.true(frozenRows.filter((r) => r.layer === 1).every((r) => Number.isFinite(r.gamma) && r.gamma !== 1));
  frozen.dispose();
  t.throws(() => build([1, 1]), { message: /λ scale: tiny has 3 weight layers, so it takes 3 multipliers >= 0 \(got 1,1\)/ });
  const { run } = await import('../src/cli/compress.js');
  await t.throwsAsync(run(['--model', 'lenet-300-100', '--lambda-scale', '1,2']), { message: /--lambda-scale: lenet-300-100 has 3 weight layers, so it takes 3 comma-separated multipliers \(got 2\)/ });
  await t.throwsAsync(run(['--model', 'lenet-300-100', '--lambda-scale', '1,,2']), { message: /--lambda-scale must be comma-separated numbers >= 0 \(got '1,,2'\)/ });
  await t.throwsAsync(run(['--model', 'lenet-5', '--lambda-scale', '1,-1,1,1']), { message: /--lambda-scale must be comma-separated numbers >= 0/ });
  tf.dispose([x, y]);
  scaled.dispose(); prox.dispose();
});

const zeros = (m: Float32Array) => [...m.keys()].filter((i) => m[i] === 0);

test('pruning a neuron removes exactly its outgoing weights, its incoming weights and its bias', (t) => {
  const net = new CompressNet(spec([{ type: 'flatten' }, { type: 'dense', units: 5 }, { type: 'dense', units: 4 }, { type: 'dense', units: 3 }]), { grouping: 'neuron', input: [2, 2, 1], classes: 3 });
  const before = net.counts();
  net.pruneGroup(net.layers[1], 2);   // fan-out group 2 of layer 1 = hidden unit 2 of layer 0's outputs
  net.cleanup();
  t.deepEqual(zeros(net.maskArray(net.layers[1])), [8, 9, 10, 11]);                   // row 2 of [5, 4]
  t.deepEqual(zeros(net.maskArray(net.layers[0])), [2, 7, 12, 17]);                    // column 2 of [4, 5]
  t.deepEqual(zeros(net.maskArray(net.layers[2])), []);
  t.deepEqual([...net.layers[0].outAlive], [1, 1, 0, 1, 1]);
  const after = net.counts();
  t.is(before.weights - after.weights, 8);
  t.is(before.biases - after.biases, 1);
  t.is(net.architecture(), '4-4-4');
  net.dispose();
});

test('pruning a filter removes its weights, its bias and its input channel downstream (conv and flattened features)', (t) => {
  const net = new CompressNet(spec([{ type: 'conv', filters: 3, kernel: 3 }, { type: 'conv', filters: 4, kernel: 2 }, { type: 'flatten' }, { type: 'dense', units: 3 }]),
    { grouping: 'filter', input: [5, 5, 1], classes: 3 });
  net.pruneGroup(net.layers[0], 1);
  net.cleanup();
  // conv0 [3,3,1,3]: index (t*1 + 0)*3 + 1 for the 9 taps
  t.deepEqual(zeros(net.maskArray(net.layers[0])), Array.from({ length: 9 }, (_, tap) => tap * 3 + 1));
  // conv1 [2,2,3,4]: input channel 1 of every tap and filter: (t*3 + 1)*4 + v
  const exp1: number[] = [];
  for (let tap = 0; tap < 4; tap++) for (let v = 0; v < 4; v++) exp1.push((tap * 3 + 1) * 4 + v);
  t.deepEqual(zeros(net.maskArray(net.layers[1])), exp1);
  t.deepEqual(zeros(net.maskArray(net.layers[2])), []);
  t.deepEqual([...net.layers[0].outAlive], [1, 0, 1]);
  // the last conv's filter 2 feeds flattened features f with f % 4 == 2 (NHWC flatten of 2x2x4)
  net.pruneGroup(net.layers[1], 2);
  net.cleanup();
  const feats = [2, 6, 10, 14];
  const exp2: number[] = [];
  for (const f of feats) for (let v = 0; v < 3; v++) exp2.push(f * 3 + v);
  t.deepEqual(zeros(net.maskArray(net.layers[2])), exp2);
  t.deepEqual([...net.layers[2].inAlive].map((a, f) => (a ? -1 : f)).filter((f) => f >= 0), feats);
  t.is(net.architecture(), '2-3-12');
  net.dispose();
});

test('the exported smaller network has fewer parameters and the same logits as the masked one, also after save and load', async (t) => {
  const net = new CompressNet(spec([
    { type: 'conv', filters: 4, kernel: 3, padding: 1 }, { type: 'maxpool', size: 2 }, { type: 'conv', filters: 5, kernel: 3 }, { type: 'flatten' },
    { type: 'dense', units: 6 }, { type: 'dense', units: 3 },
  ]), { grouping: 'neuron', input: [8, 8, 2], classes: 3, seed: 4 });
  randomize(net, 30, 0.4);
  net.pruneGroup(net.layers[0], 1);          // a filter of conv0
  net.pruneGroup(net.layers[1], 3);          // a filter of conv1
  net.pruneGroup(net.layers[2], 0);          // flattened feature 0 (dense fan-out group)
  net.pruneGroup(net.layers[2], 7);
  net.pruneGroup(net.layers[3], 4);          // hidden dense unit 4
  net.cleanup();
  const x = tf.tensor4d(randomArray(3 * 8 * 8 * 2, 9), [3, 8, 8, 2]);
  net.compact = false;
  const masked = net.forward(x).dataSync();
  const { model, info } = await toLayersModel(net);
  const small = (model.predict(x) as tf.Tensor).dataSync();
  t.true(relErr(small, masked) < 1e-5, `rel err ${relErr(small, masked)}`);
  const c = net.counts();
  t.is(info.params, c.weights + c.biases);            // every remaining parameter is a live one
  t.true(info.params < c.totalWeights + c.totalBiases);
  t.true(info.layers.some((d) => d.startsWith('select')));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compress-export-'));
  await saveModel(model, dir);
  t.true(fs.existsSync(path.join(dir, 'model.json')) && fs.existsSync(path.join(dir, 'weights.bin')));
  const loaded = await loadModel(dir);
  const again = (loaded.predict(x) as tf.Tensor).dataSync();
  t.true(relErr(again, masked) < 1e-5);
  t.is(loaded.countParams(), info.params);
  fs.rmSync(dir, { recursive: true, force: true });
  net.dispose();
});

test('the compact forward pass (live units only) gives the masked logits and gradients, every grouping', (t) => {
  const layers = [
    { type: 'conv', filters: 4, kernel: 3, padding: 1 }, { type: 'maxpool', size: 2 }, { type: 'conv', filters: 5, kernel: 3 }, { type: 'flatten' },
    { type: 'dense', units: 6 }, { type: 'dense', units: 3 },
  ];
  const x = tf.tensor4d(randomArray(4 * 8 * 8 * 2, 19), [4, 8, 8, 2]);
  const y = tf.tensor1d([0, 2, 1, 2], 'int32');
  for (const grouping of ['neuron', 'filter', 'channel', 'weight'] as Grouping[]) {
    const net = new CompressNet(spec(layers), { grouping, input: [8, 8, 2], classes: 3, seed: 5 });
    randomize(net, 40, 0.4);
    // prune about a third of every layer's groups (never all of them), then the dependents
    net.layers.forEach((l, li) => { for (let g = li % 3; g < l.members.length - 1; g += 3) net.pruneGroup(l, g); });
    net.cleanup();
    t.true(net.counts().weights < net.counts().totalWeights, grouping);
    const run = (compact: boolean) => tf.tidy(() => {
      net.compact = compact;
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(tf.oneHot(y, 3), net.forward(x)) as tf.Scalar, net.variables());
      return { logits: net.forward(x).dataSync(), loss: value.dataSync()[0], grads: net.variables().map((v) => grads[v.name].dataSync()) };
    });
    const a = run(true), b = run(false);
    t.true(relErr(a.logits, b.logits) < 1e-5, `${grouping}: logits rel err ${relErr(a.logits, b.logits)}`);
    t.true(Math.abs(a.loss - b.loss) < 1e-5, grouping);
    a.grads.forEach((g, i) => {
      t.true(relErr(g, b.grads[i]) < 1e-5, `${grouping}: gradient of ${net.variables()[i].name} rel err ${relErr(g, b.grads[i])}`);
      const mask = i % 2 === 0 ? net.maskArray(net.layers[i >> 1]) : Float32Array.from(net.layers[i >> 1].outAlive);
      t.true(g.every((v, j) => mask[j] > 0 || v === 0), `${grouping}: a pruned entry of ${net.variables()[i].name} gets a gradient`);
    });
    // the first layer's live inputs are gathered too (pixels of a dense first layer)
    net.dispose();
  }
  const mlp = new CompressNet(spec([{ type: 'flatten' }, { type: 'dense', units: 5 }, { type: 'dense', units: 3 }]), { grouping: 'neuron', input: [4, 4, 1], classes: 3, seed: 6 });
  randomize(mlp, 50);
  for (const g of [0, 3, 4, 9, 15]) mlp.pruneGroup(mlp.layers[0], g);
  mlp.cleanup();
  const xm = tf.tensor4d(randomArray(4 * 16, 21), [4, 4, 4, 1]);
  mlp.compact = true; const lc = mlp.forward(xm).dataSync();
  mlp.compact = false; const lm = mlp.forward(xm).dataSync();
  t.true(relErr(lc, lm) < 1e-5);
  mlp.dispose();
  tf.dispose([x, y, xm]);
});

/** 16 features in 1x16 "images"; the label depends on features 0-3 only. */
function synthetic(n: number, seed: number): Split {
  const r = randomArray(n * 16, seed);
  const images = Uint8Array.from(r, (v) => Math.round((v + 1) * 127.5));
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const f = (j: number) => images[i * 16 + j] / 255 - 0.5;
    labels[i] = f(0) + f(1) - f(2) - f(3) > 0 ? 1 : 0;
  }
  return { images, labels, n, height: 1, width: 16, channels: 1 };
}

test('a synthetic task with known irrelevant inputs is pruned to the relevant inputs', async (t) => {
  const norm = { mean: [0.5], std: [0.29] };
  const cfg = { ...DEFAULT_COMPRESS, model: spec([{ type: 'flatten' }, { type: 'dense', units: 8 }, { type: 'dense', units: 2 }]), dataset: 'synthetic',
    grouping: 'neuron' as Grouping, lambda: 0.2, rounds: 3, epochs: 3, finetuneEpochs: 1, batch: 50, lr: 0.05, threshold: 1e-3, hessianBatches: 4, hessianBatch: 100 };
  const s = await compress(cfg, { train: synthetic(2000, 1), test: synthetic(1000, 2), normalization: norm, classes: 2 }, null);
  const inputs = s.final.architecture.split('-')[0];
  t.is(inputs, '4', `architecture ${s.final.architecture}`);
  t.true(s.final.testError < 0.05, `test error ${s.final.testError}`);
});

test('weight decay adds lr·wd·w to the first SGD step; the cosine final schedule runs from the final lr to 0', async (t) => {
  const m = spec([{ type: 'flatten' }, { type: 'dense', units: 5 }, { type: 'dense', units: 3 }]);
  const x = tf.tensor4d(randomArray(8 * 6, 11), [8, 2, 3, 1]), y = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32');
  const after = async (wd: number) => {
    const net = new CompressNet(m, { grouping: 'neuron', input: [2, 3, 1], classes: 3, seed: 3 });
    const w0 = net.layers[0].W.dataSync().slice();
    const tr = new Trainer(net, 0.1, 'prox', 'sgd', wd);
    await tr.step(x, y, 0);
    const w1 = net.layers[0].W.dataSync().slice();
    tr.dispose(); net.dispose();
    return { w0, w1 };
  };
  const a = await after(0), b = await after(0.5);
  t.deepEqual(a.w0, b.w0);
  let worst = 0;
  for (let j = 0; j < a.w0.length; j++) worst = Math.max(worst, Math.abs((a.w1[j] - b.w1[j]) - 0.1 * 0.5 * a.w0[j]));
  t.true(worst < 1e-6, `max deviation ${worst}`);
  t.true(a.w0.some((v, j) => Math.abs(a.w1[j] - b.w1[j]) > 1e-4));
  // setting the weight decay later (the final epochs' own) acts as giving it to the constructor
  const net = new CompressNet(m, { grouping: 'neuron', input: [2, 3, 1], classes: 3, seed: 3 });
  const tr = new Trainer(net, 0.1, 'prox', 'sgd', 0);
  tr.setWeightDecay(0.5);
  await tr.step(x, y, 0);
  t.deepEqual(net.layers[0].W.dataSync().slice(), b.w1);
  tr.dispose(); net.dispose();
  x.dispose(); y.dispose();
  t.is(finalLrAt('constant', 0.01, 7, 10), 0.01);
  t.is(finalLrAt('cosine', 0.01, 0, 10), 0.01);
  t.true(Math.abs(finalLrAt('cosine', 0.01, 5, 10) - 0.005) < 1e-12);
  t.true(finalLrAt('cosine', 0.01, 9, 10) > 0 && finalLrAt('cosine', 0.01, 9, 10) < 0.0003);
});

test('LeNet-5 preset has 430,500 weights (431,080 parameters) and the Louizos unit counts 20-50-800-500', (t) => {
  const net = new CompressNet(LENET_5, { grouping: 'neuron', input: [28, 28, 1], classes: 10 });
  t.is(net.counts().totalWeights, 430500);
  t.is(net.counts().totalWeights + net.counts().totalBiases, 431080);
  t.is(net.fullArchitecture(), '20-50-800-500');
  t.is(net.architecture(), '20-50-800-500');
  net.dispose();
});

test('pruneByGamma keeps at least one group per layer and prunes groups under the threshold', (t) => {
  const net = new CompressNet(spec([{ type: 'flatten' }, { type: 'dense', units: 3 }, { type: 'dense', units: 2 }]), { grouping: 'neuron', input: [1, 4, 1], classes: 2 });
  net.layers[0].gamma.set([0.5, 1e-5, 2e-5, 1e-6]);
  net.layers[1].gamma.set([1e-9, 1e-8, 1e-7]);
  t.is(pruneByGamma(net, 1e-3), 3 + 2);
  t.deepEqual([...net.layers[0].inAlive], [1, 0, 0, 0]);
  t.deepEqual([...net.layers[1].inAlive], [0, 0, 1]);
  net.dispose();
});

test('bayesnas compress on a slice of MNIST writes the run folder: γ per group per round, metrics, the smaller model', async (t) => {
  const { run } = await import('../src/cli/compress.js');
  const { tableFromIPC } = await import('apache-arrow');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compress-run-'));
  const out = path.join(dir, 'run');
  const code = await run(['--model', 'lenet-300-100', '--rounds', '2', '--epochs', '1', '--finetune-epochs', '0', '--lambda', '0.05',
    '--train-size', '600', '--test-size', '200', '--hessian-batches', '2', '--hessian-batch', '100', '--out', out, '--json',
    '--weight-decay', '1e-4', '--final-epochs', '1', '--final-lr', '0.02', '--final-schedule', 'cosine']);
  t.is(code, 0);
  for (const f of ['config.json', 'metrics.csv', 'metrics.arrow', 'gamma/round-1.arrow', 'gamma/round-2.arrow', 'summary.json', 'architecture.txt', 'model/model.json', 'model/weights.bin']) {
    t.true(fs.existsSync(path.join(out, f)), f);
  }
  const g = tableFromIPC(fs.readFileSync(path.join(out, 'gamma', 'round-1.arrow')));
  t.is(g.numRows, 784 + 300 + 100);                      // one row per group of the neuron grouping
  const s = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  t.is(s.rounds.length, 3);                             // 2 rounds + the final epochs
  t.true(s.final.weights < 266200);
  // the live weights per layer: one count per weight layer, within its size, summing to the total; the same text in metrics.arrow
  for (const m of s.rounds) {
    const parts = m.layerWeights.split('+').map(Number);
    t.is(parts.length, 3);
    t.is(parts.reduce((a: number, b: number) => a + b, 0), m.weights);
    [784 * 300, 300 * 100, 100 * 10].forEach((total, i) => t.true(parts[i] >= 0 && parts[i] <= total, m.layerWeights));
  }
  t.deepEqual(tableFromIPC(fs.readFileSync(path.join(out, 'metrics.arrow'))).getChild('layerWeights')!.toArray(), s.rounds.map((m: { layerWeights: string }) => m.layerWeights));
  const { config } = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  t.like(config, { weightDecay: 1e-4, finalEpochs: 1, finalLr: 0.02, finalSchedule: 'cosine' });
  t.is(s.exported.testErrorReloaded, s.final.testError);
  t.true(s.exported.maxLogitDiff < 1e-4);
  t.is(fs.readFileSync(path.join(out, 'metrics.csv'), 'utf8').trim().split('\n').length, 4);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a compression run interrupted after round 1 resumes from its checkpoint to the same result; a finished run branches its final epochs', async (t) => {
  const { LENET_300_100 } = await import('../src/compress/spec.js');
  const { run } = await import('../src/cli/compress.js');
  const data = await mnistSlice(600);
  const cfg = { ...DEFAULT_COMPRESS, model: LENET_300_100, dataset: 'mnist', lambda: 0.05, rounds: 2, epochs: 1, finetuneEpochs: 1, hessianBatches: 2, hessianBatch: 100, threshold: 0.05 };
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'compress-resume-'));
  const [a, b, c] = ['a', 'b', 'c'].map((x) => path.join(root, x));
  const full = await compress(cfg, data, a);
  for (const f of ['params.arrow', 'masks.arrow', 'groups.arrow', 'state.json']) {
    t.true(fs.existsSync(path.join(a, 'checkpoint', f)), f);
    for (const r of [1, 2]) t.true(fs.existsSync(path.join(a, 'checkpoint', `round-${r}`, f)), `round-${r}/${f}`);
  }
  await t.throwsAsync(compress(cfg, data, b, { onRound: (m) => { if (m.round === 1) throw new Error('interrupted'); } }), { message: 'interrupted' });
  t.false(fs.existsSync(path.join(b, 'summary.json')));
  const resumed = await compress(cfg, data, b, {}, { resumeFrom: b });
  t.deepEqual(withoutTimes(resumed.rounds as never), withoutTimes(full.rounds as never));
  t.is(resumed.exported!.testErrorReloaded, full.exported!.testErrorReloaded);
  t.is(fs.readFileSync(path.join(b, 'metrics.csv'), 'utf8').trim().split('\n').length, 3);
  // a finished run: in place is refused, other flags are refused, --out branches the final epochs
  const log = console.log;
  console.log = () => {};
  try {
    await t.throwsAsync(run(['--resume', a]), { message: /is a finished run; give --out NEW/ });
    await t.throwsAsync(run(['--model', 'lenet-300-100', '--out', b]), { message: /--out: .* already holds a run \(--resume .* continues it/ });
    await t.throwsAsync(run(['--resume', a, '--lambda', '1', '--out', c]), { message: /only --rounds, --from-round, --final-epochs, --final-lr, --final-schedule, --final-weight-decay and --out may be given \(not --lambda\)/ });
    await t.throwsAsync(run(['--resume', a, '--from-round', '1']), { message: /--from-round branches a run: give --out NEW/ });
    await t.throwsAsync(run(['--resume', a, '--from-round', '5', '--out', c]), { message: /keeps no checkpoint of round 5 \(rounds 1, 2\)/ });
    // from round 1's kept checkpoint: stopping there, and running round 2 again to the same numbers
    t.is(await run(['--resume', a, '--from-round', '1', '--out', `${c}-r1`, '--json']), 0);
    t.is(await run(['--resume', a, '--from-round', '1', '--rounds', '2', '--out', `${c}-r1to2`, '--json']), 0);
    // a folder written before per-round checkpoints (only checkpoint/*) still branches from its last round
    fs.cpSync(a, `${c}-older`, { recursive: true });
    for (const r of [1, 2]) fs.rmSync(path.join(`${c}-older`, 'checkpoint', `round-${r}`), { recursive: true });
    t.is(await run(['--resume', `${c}-older`, '--out', `${c}-older-branch`, '--json']), 0);
    await t.throwsAsync(run(['--resume', a, '--rounds', '1', '--out', c]), { message: /--rounds must be an integer >= 2 \(got '1'\)/ });
    t.is(await run(['--resume', a, '--out', `${c}-more`, '--rounds', '3', '--json']), 0);
    t.is(await run(['--resume', a, '--out', c, '--final-epochs', '1', '--final-schedule', 'cosine', '--json']), 0);
  } finally { console.log = log; }
  const branched = JSON.parse(fs.readFileSync(path.join(c, 'summary.json'), 'utf8'));
  t.deepEqual(withoutTimes(branched.rounds.slice(0, 2)), withoutTimes(full.rounds as never));
  t.is(branched.rounds.length, 3);
  const conf = JSON.parse(fs.readFileSync(path.join(c, 'config.json'), 'utf8'));
  t.like(conf, { resumedFrom: a, roundsFrom: 2, config: { finalEpochs: 1, finalSchedule: 'cosine', lambda: 0.05 } });
  t.true(fs.existsSync(path.join(c, 'gamma', 'round-2.arrow')));
  const more = JSON.parse(fs.readFileSync(path.join(`${c}-more`, 'summary.json'), 'utf8'));
  t.deepEqual(more.rounds.map((m: { round: number }) => m.round), [1, 2, 3]);
  t.deepEqual(withoutTimes(more.rounds.slice(0, 2)), withoutTimes(full.rounds as never));
  t.true(fs.existsSync(path.join(`${c}-more`, 'gamma', 'round-3.arrow')));
  const r1 = JSON.parse(fs.readFileSync(path.join(`${c}-r1`, 'summary.json'), 'utf8'));
  t.deepEqual(withoutTimes(r1.rounds.slice(0, 1)), withoutTimes(full.rounds.slice(0, 1) as never));
  t.deepEqual(r1.rounds.map((m: { round: number }) => m.round), [1]);   // the source has no final epochs
  t.is(r1.final.architecture, full.rounds[0].architecture);
  t.deepEqual(fs.readdirSync(path.join(`${c}-r1`, 'gamma')), ['round-1.arrow']);
  t.deepEqual(fs.readdirSync(path.join(`${c}-r1`, 'checkpoint')).filter((d) => d.startsWith('round-')), ['round-1']);
  const older = JSON.parse(fs.readFileSync(path.join(`${c}-older-branch`, 'summary.json'), 'utf8'));
  t.deepEqual(withoutTimes(older.rounds), withoutTimes(full.rounds as never));
  t.true(fs.existsSync(path.join(`${c}-older-branch`, 'checkpoint', 'state.json')));
  const r1to2 = JSON.parse(fs.readFileSync(path.join(`${c}-r1to2`, 'summary.json'), 'utf8'));
  t.deepEqual(withoutTimes(r1to2.rounds), withoutTimes(full.rounds as never));
  t.is(r1to2.exported.testErrorReloaded, full.exported!.testErrorReloaded);
  fs.rmSync(root, { recursive: true, force: true });
});

test('--lambda-rounds: round r trains and updates γ/ω with λ·A_r, the last multiplier kept; 0 is a round without the penalty', async (t) => {
  const { LENET_300_100 } = await import('../src/compress/spec.js');
  const { lambdaOfRound } = await import('../src/compress/run.js');
  t.deepEqual([1, 2, 3, 4].map((r) => lambdaOfRound({ lambda: 0.1, lambdaRounds: [0, 0.5, 1] }, r)), [0, 0.05, 0.1, 0.1]);
  t.deepEqual([1, 5].map((r) => lambdaOfRound({ lambda: 0.1 }, r)), [0.1, 0.1]);
  const data = await mnistSlice(500);
  const cfg = { ...DEFAULT_COMPRESS, model: LENET_300_100, dataset: 'mnist', grouping: 'weight' as const, lambda: 0.05, rounds: 2, epochs: 1, finetuneEpochs: 1, hessianBatches: 1, hessianBatch: 100, threshold: 0.05 };
  const plain = await compress(cfg, data, null);
  // a constant multiplier is the same as scaling λ: training, updates and pruning round for round
  const halved = await compress({ ...cfg, lambda: 0.1, lambdaRounds: [0.5] }, data, null);
  t.deepEqual(withoutTimes(halved.rounds as never), withoutTimes(plain.rounds as never));
  // 0 then 1: round 1 is a λ = 0 run's round 1 (no γ pruning), round 2 prunes with the full λ
  const ramp = await compress({ ...cfg, lambdaRounds: [0, 1] }, data, null);
  const free = await compress({ ...cfg, lambda: 0, rounds: 1 }, data, null);
  t.deepEqual(withoutTimes([ramp.rounds[0]] as never), withoutTimes([free.rounds[0]] as never));
  t.true(ramp.rounds[0].weights > 1.3 * plain.rounds[0].weights, `${ramp.rounds[0].weights} vs ${plain.rounds[0].weights}`);
  t.true(ramp.rounds[1].weights < 0.7 * ramp.rounds[0].weights, `${ramp.rounds[1].weights} of ${ramp.rounds[0].weights}`);
  // the flag, its check, and the command --table prints back
  const { run } = await import('../src/cli/compress.js');
  await t.throwsAsync(run(['--model', 'lenet-300-100', '--lambda-rounds', '1,-0.5']), { message: /--lambda-rounds must be comma-separated numbers >= 0 \(got '1,-0.5'\)/ });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'compress-lambda-rounds-'));
  const dir = path.join(root, 'r');
  await compress({ ...cfg, rounds: 1, lambdaRounds: [0.25, 1] }, data, dir);
  t.regex(readRun(dir).flags, / --group weight --lambda 0.05 --lambda-rounds 0.25,1 --threshold 0.05 /);
  fs.rmSync(root, { recursive: true, force: true });
});

test('an Adam compression run resumes from its checkpoint to the same result: the step count and both moments are in it', async (t) => {
  const { LENET_300_100 } = await import('../src/compress/spec.js');
  const { readTensorFile } = await import('../src/bridge/arrow.js');
  const data = await mnistSlice(400);
  const cfg = { ...DEFAULT_COMPRESS, model: LENET_300_100, dataset: 'mnist', optimizer: 'adam' as const, lr: 1e-3, lambda: 0.05, rounds: 2, epochs: 1, finetuneEpochs: 1, hessianBatches: 2, hessianBatch: 100, threshold: 0.05 };
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'compress-adam-'));
  const [a, b] = ['a', 'b'].map((x) => path.join(root, x));
  const full = await compress(cfg, data, a);
  const opt = readTensorFile(path.join(a, 'checkpoint', 'round-1', 'params.arrow')).rows.filter((r) => r.name.startsWith('optimizer/'));
  t.is(opt[0].name, 'optimizer/iter');
  t.is(opt[0].data[0], 2 * 4);   // two epochs of four steps of 100
  t.is(opt.length, 1 + 2 * 2 * 3);   // first and second moments of three layers' weights and biases
  await t.throwsAsync(compress(cfg, data, b, { onRound: (m) => { if (m.round === 1) throw new Error('interrupted'); } }), { message: 'interrupted' });
  const resumed = await compress(cfg, data, b, {}, { resumeFrom: b });
  t.deepEqual(withoutTimes(resumed.rounds as never), withoutTimes(full.rounds as never));
  t.is(resumed.exported!.testErrorReloaded, full.exported!.testErrorReloaded);
  fs.rmSync(root, { recursive: true, force: true });
});

test('compress --table: the flags it prints reproduce a run; runs that differ in --seed are summarised; config.json records the code version', async (t) => {
  const { LENET_300_100 } = await import('../src/compress/spec.js');
  const { run } = await import('../src/cli/compress.js');
  const { execa } = await import('execa');
  const data = await mnistSlice(500);
  const cfg = { ...DEFAULT_COMPRESS, model: LENET_300_100, dataset: 'mnist', lambda: 0.05, rounds: 1, epochs: 1, hessianBatches: 1, hessianBatch: 100, threshold: 0.05, finalEpochs: 1, finalSchedule: 'cosine' as const,
    lambdaScale: [2, 1, 0.5] };
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'compress-table-'));
  const s0 = await compress({ ...cfg, seed: 0 }, data, path.join(root, 'runs', 's0'));
  const s1 = await compress({ ...cfg, seed: 1 }, data, path.join(root, 'runs', 's1'));
  const head = (await execa('git', ['rev-parse', 'HEAD'])).stdout.trim();
  t.is(JSON.parse(fs.readFileSync(path.join(root, 'runs', 's0', 'config.json'), 'utf8')).code.commit, head);
  // the library's rows (the CLI prints these; other tests here replace console.log, so it is not captured)
  const rows = findRuns([path.join(root, 'runs')]).map(readRun);
  const table = { runs: rows, seedGroups: groupBySeed(rows) };
  const flags = table.runs[1].flags;
  t.is(flags, '--model lenet-300-100 --dataset mnist --lambda 0.05 --lambda-scale 2,1,0.5 --threshold 0.05 --rounds 1 --epochs 1 --final-epochs 1 --final-schedule cosine --hessian-batches 1 --hessian-batch 100 --train-size 500 --test-size 200');
  // the printed flags, run again from scratch, give the same run
  t.is(await run([...flags.split(' '), '--seed', '1', '--out', path.join(root, 'again'), '--json']), 0);
  const both = [path.join(root, 'runs', 's1'), path.join(root, 'again')].map(readRun);
  t.regex(markdownTables(both, groupBySeed(both)), /\| again \| `--model lenet-300-100 .*` \| 1 \|/);
  t.true(markdownTables(both, []).includes(`| ${both[1].weights.toLocaleString('en-US')} | ${s1.final.layerWeights} |`));
  t.is(await run(['--table', path.join(root, 'runs'), '--json']), 0);
  await t.throwsAsync(run(['--table', path.join(root, 'runs', 's0', 'gamma')]), { message: /--table: .*gamma: neither a finished compression run \(summary.json\) nor a folder of runs/ });
  const again = JSON.parse(fs.readFileSync(path.join(root, 'again', 'summary.json'), 'utf8'));
  t.deepEqual(withoutTimes(again.rounds), withoutTimes(s1.rounds as never));
  t.deepEqual(table.runs.map((r) => r.seed), [0, 1]);
  t.is(table.seedGroups.length, 1);
  t.deepEqual(table.seedGroups[0].seeds, [0, 1]);
  const e0 = s0.exported!.testErrorReloaded, e1 = s1.exported!.testErrorReloaded;
  t.true(Math.abs(table.seedGroups[0].testError.mean - (e0 + e1) / 2) < 1e-12);
  t.is(table.seedGroups[0].weights.mean, (s0.final.weights + s1.final.weights) / 2);
  fs.rmSync(root, { recursive: true, force: true });
});

test('compress --table --at-weights: the log-size line through the runs, its value and standard error at an anchor\'s size', async (t) => {
  // points exactly on a line in ln(weights): recovered, with zero residual and zero standard error
  const exact = fitLogLine([1000, 2000, 4000, 8000], [1000, 2000, 4000, 8000].map((w) => 0.03 - 0.002 * Math.log(w)), [3000])!;
  t.true(Math.abs(exact.slope + 0.002) < 1e-12 && Math.abs(exact.intercept - 0.03) < 1e-12 && exact.residualSd < 1e-9);
  t.true(Math.abs(exact.at[0].error - (0.03 - 0.002 * Math.log(3000))) < 1e-12);
  // scattered points: the textbook form se² = s²(1/n + (x₀ − x̄)²/Sxx) on centred x, computed independently
  const ws = [2314, 2548, 2700, 2729, 3158, 3255, 3498, 4187, 4680, 4930], ys = [1.02, 1.06, 1.13, 0.91, 0.96, 1.03, 1.06, 0.84, 0.82, 1.01].map((e) => e / 100);
  const f = fitLogLine(ws, ys, [4074, 1500])!;
  const xs = ws.map(Math.log), n = xs.length, xm = xs.reduce((a, b) => a + b) / n, ym = ys.reduce((a, b) => a + b) / n;
  const Sxx = xs.reduce((a, x) => a + (x - xm) ** 2, 0), b = xs.reduce((a, x, i) => a + (x - xm) * (ys[i] - ym), 0) / Sxx, a0 = ym - b * xm;
  const s2 = xs.reduce((a, x, i) => a + (ys[i] - a0 - b * x) ** 2, 0) / (n - 2);
  for (const [i, w] of [4074, 1500].entries()) {
    const x0 = Math.log(w);
    t.true(Math.abs(f.at[i].error - (a0 + b * x0)) < 1e-12);
    t.true(Math.abs(f.at[i].se - Math.sqrt(s2 * (1 / n + (x0 - xm) ** 2 / Sxx))) < 1e-12);
  }
  t.false(f.at[0].extrapolated);
  t.true(f.at[1].extrapolated);
  t.is(fitLogLine([1000, 1000, 1000], [0.01, 0.02, 0.03], [1000]), null); // one size: no line
  t.is(fitLogLine([1000, 2000], [0.01, 0.02], [1000]), null);
  // one fit per model, dataset, kind of group and data sizes (the family readRun records); the validation fit only over runs that held one out
  const row = (family: string, extra: string, weights: number, testError: number, valError: number | null): RunRow =>
    ({ dir: 'x', flags: `${family} ${extra}`, family, seed: 0, architecture: '', weights, layerWeights: null, ratio: 1, testError, valError, seconds: 0, resumedFrom: null, commit: null });
  const spaced = '--model my nets/lenet 5.json --dataset mnist';
  const rows = [...ws.map((w, i) => row('--model lenet-5 --dataset mnist', `--lambda ${0.03 + i}`, w, ys[i], i < 3 ? null : ys[i] + 0.001)),
    row('--model lenet-300-100 --dataset mnist', '', 20000, 0.02, null), row('--model lenet-300-100 --dataset mnist', '', 30000, 0.018, null),
    row('--model lenet-300-100 --dataset mnist --train-size 5000', '', 10000, 0.05, null),
    ...[1000, 2000, 4000].map((w, i) => row(spaced, `--lambda 0.0${i + 1}`, w, 0.02 - 0.001 * i, null))];
  const fits = frontierFits(rows, [4074, 1500]);
  // two (or one) lenet-300-100 runs per data size are too few for a line; a model path with spaces stays one family
  t.deepEqual(fits.map((f) => [f.family, f.n]), [['--model lenet-5 --dataset mnist', 10], [spaced, 3]]);
  t.deepEqual(fits[0].at, f.at);
  t.is(fits[0].valError!.n, 7);
  t.true(Math.abs(fits[0].valError!.slope - fitLogLine(ws.slice(3), ys.slice(3), [])!.slope) < 1e-12);
  t.regex(frontierTable(fits), /\| `--model lenet-5 --dataset mnist` \| test \| 10 \| 2,314–4,930 \| .* \| 0\.\d\d% ± 0\.\d\d \| .* \(outside the runs\) \|/);
  const { run } = await import('../src/cli/compress.js');
  await t.throwsAsync(run(['--table', 'runs', '--at-weights', '4074,x']), { message: /--at-weights must be comma-separated weight counts > 0 \(got '4074,x'\)/ });
});

test('compress --val N holds out the last N training images: never trained on, their error reported every round, the same split on a branch', async (t) => {
  const { loadDataset, headOf, holdOut, UNIT_SCALE } = await import('../src/data/index.js');
  const { run } = await import('../src/cli/compress.js');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'compress-val-'));
  const common = ['--model', 'lenet-300-100', '--lambda', '0.05', '--threshold', '0.05', '--rounds', '1', '--epochs', '1', '--hessian-batches', '1', '--hessian-batch', '100',
    '--final-epochs', '1', '--test-size', '200', '--json'];
  const [withVal, without, branch] = ['val', 'plain', 'branch'].map((x) => path.join(root, x));
  const log = console.log;
  console.log = () => {};
  try {
    t.is(await run([...common, '--train-size', '700', '--val', '200', '--out', withVal]), 0);
    t.is(await run([...common, '--train-size', '500', '--out', without]), 0);
    t.is(await run(['--resume', withVal, '--out', branch, '--final-epochs', '1', '--final-weight-decay', '0.01', '--json']), 0);
    await t.throwsAsync(run([...common, '--train-size', '700', '--val', '700', '--out', path.join(root, 'bad')]), { message: /--val 700: the training set has only 700 images/ });
  } finally { console.log = log; }
  const read = (d: string) => ({ conf: JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8')), sum: JSON.parse(fs.readFileSync(path.join(d, 'summary.json'), 'utf8')) });
  const a = read(withVal), b = read(without), c = read(branch);
  t.like(a.conf, { train: 500, config: { val: 200 } });
  // training on the first 500 of 700 is training without the last 200: the same path, round for round
  const strip = (rows: Array<Record<string, unknown>>) => withoutTimes(rows).map(({ valError: _, ...r }) => r);
  t.deepEqual(strip(a.sum.rounds), strip(b.sum.rounds));
  t.true(a.sum.rounds.every((r: { valError?: number }) => typeof r.valError === 'number'));
  t.false(b.sum.rounds.some((r: Record<string, unknown>) => 'valError' in r));
  // the reported validation error is the final network's error on training images 500..699
  const held = holdOut(headOf(loadDataset('mnist').train, 700), 200).held;
  t.is(held.n, 200);
  const model = await loadModel(path.join(withVal, 'model'));
  t.is(await testError((x) => model.predict(x) as tf.Tensor, held, UNIT_SCALE), a.sum.final.valError);
  model.dispose();
  t.true(fs.readFileSync(path.join(withVal, 'metrics.csv'), 'utf8').split('\n')[0].includes('valError'));
  // the branch rebuilds the same split (its round 1 equals the source's, validation error included) and records its own final weight decay
  t.like(c.conf, { train: 500, config: { val: 200, finalWeightDecay: 0.01 } });
  t.deepEqual(c.sum.rounds[0], a.sum.rounds[0]);
  t.is(typeof c.sum.final.valError, 'number');
  const rows = [withVal, branch].map(readRun);
  t.is(rows[0].flags, '--model lenet-300-100 --dataset mnist --lambda 0.05 --threshold 0.05 --rounds 1 --epochs 1 --final-epochs 1 --val 200 --hessian-batches 1 --hessian-batch 100 --train-size 700 --test-size 200');
  t.is(rows[0].family, '--model lenet-300-100 --dataset mnist --group neuron --train-size 700 --test-size 200');
  t.regex(rows[1].flags, / --final-weight-decay 0.01 --val 200 /);
  t.is(rows[0].valError, a.sum.final.valError);
  t.regex(markdownTables(rows, []), /\| validation error \| test error \|/);
  fs.rmSync(root, { recursive: true, force: true });
});
