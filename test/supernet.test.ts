import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initEngine, tf } from '../src/engine/index.js';
import { Sgd } from '../src/engine/sgd.js';
import { OPS, opParamCount, type Flavour, type OpName } from '../src/space/ops.js';
import { ParamStore } from '../src/space/params.js';
import { BAYESNAS_SPACE, DARTS_SPACE, loadSpaceFile, validateSpace, type SpaceSpec } from '../src/space/spaces.js';
import { buildSupernet } from '../src/space/supernet.js';
import { DEFAULT_CONFIG, trainSupernet, type TrainConfig } from '../src/search/train.js';
import { readTensorFile } from '../src/bridge/arrow.js';
import { fdCheck, randomArray, randomTensor, relErr } from './helpers/numeric.js';

// Backend switching is process-global: every test here runs serially.
const info = await initEngine({ quiet: true });
const backends = info.backend === 'tensorflow' ? ['cpu', 'tensorflow'] : ['cpu'];
const tiny = (s: SpaceSpec, o: Partial<SpaceSpec> = {}): SpaceSpec => ({ ...s, C: 4, layers: 3, ...o });

/** Input with well-separated values (no max-pool ties within a finite-difference step). */
function separated(shape: number[], seed: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const r = randomArray(n, seed);
  const order = Array.from(r.keys()).sort((a, b) => r[a] - r[b]);
  const v = new Float32Array(n);
  order.forEach((idx, rank) => { v[idx] = (rank - n / 2) * (4 / n) + 0.013; });
  return tf.tensor(v, shape);
}

test.serial('official BayesNAS search net: 26,911,350 parameters with 512 switches (spec §10.20)', (t) => {
  const net = buildSupernet(BAYESNAS_SPACE);
  t.is(net.params.count(), 26_911_350);
  t.is(net.params.count('switches'), 512);
  t.deepEqual(net.cells.map((c) => [c.reduction, c.C, c.edges.length]), [
    [false, 36, 8], [false, 36, 8], [true, 72, 8], [false, 72, 8], [false, 72, 8], [true, 144, 8], [false, 144, 8], [false, 144, 8]]);
  net.dispose();
});

test.serial('DARTS space: 14 edges per cell, 8 switches per edge, parameter count from the closed forms', (t) => {
  const net = buildSupernet(DARTS_SPACE);
  t.is(net.params.count('switches'), 8 * 14 * 8);
  // independent count: stem + per cell (preprocessors + ops) + classifier
  const C = 16;
  let total = 3 * 9 * 3 * C + 2 * 3 * C;
  let Cpp = 3 * C, Cp = 3 * C, Cc = C, redPrev = false;
  for (let i = 0; i < 8; i++) {
    const red = i === 2 || i === 5;
    if (red) Cc *= 2;
    total += redPrev ? Cpp * Cc + 2 * Cc : Cpp * Cc + 2 * Cc;   // FactorizedReduce and ReLU-conv-BN have the same count
    total += Cp * Cc + 2 * Cc;
    for (const e of DARTS_SPACE.edges.normal) {
      const stride = red && e.source < 2 ? 2 : 1;
      for (const op of DARTS_SPACE.ops) total += opParamCount('darts', op, Cc, stride);
    }
    total += 14 * 8;
    Cpp = Cp; Cp = 4 * Cc; redPrev = red;
  }
  total += Cp * 10 + 10;
  t.is(net.params.count(), total);
  net.dispose();
});

for (const flavour of ['darts', 'bayesnas'] as Flavour[]) {
  for (const op of ['max_pool_3x3', 'avg_pool_3x3', 'skip_connect', 'sep_conv_3x3', 'sep_conv_5x5', 'dil_conv_3x3', 'dil_conv_5x5', 'none'] as OpName[]) {
    if (flavour === 'bayesnas' && op === 'none') continue;
    for (const stride of [1, 2]) {
      test.serial(`${flavour} ${op} stride ${stride}: parameter count, output shape, gradients w.r.t. input, weights and switch = finite differences`, (t) => {
        const p = new ParamStore(3);
        const C = 4;
        const mod = OPS[flavour][op](p, 'op', C, stride);
        t.is(p.count(), opParamCount(flavour, op, C, stride), 'closed-form parameter count');
        t.is(mod.params, p.count());
        const sw = p.constant('switch', [], 0.7, 'switches');
        const x = separated([2, 6, 6, C], 7);
        const y0 = mod.forward(x as tf.Tensor4D, { training: true });
        t.deepEqual(y0.shape, [2, stride === 1 ? 6 : 3, stride === 1 ? 6 : 3, C]);
        const r = randomTensor(y0.shape, 11);
        const loss = () => tf.sum(tf.mul(tf.mul(mod.forward(x as tf.Tensor4D, { training: true }), sw), r)) as tf.Scalar;
        const vars = p.variables();
        const { grads } = tf.variableGrads(loss, vars);
        for (const v of vars) {
          const g = grads[v.name];
          if (op === 'none') { t.true(g.dataSync().every((q) => q === 0)); continue; }
          const res = fdCheck((val) => { const old = v.clone(); v.assign(val); const l = loss(); v.assign(old); old.dispose(); return l; }, v, g, 8, 1e-3);
          t.true(res.err < 3e-2, `${v.name}: relative error ${res.err.toExponential(2)} (numeric ${res.numeric.slice(0, 3)}, analytic ${res.analytic.slice(0, 3)})`);
        }
        const gx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(tf.mul(mod.forward(xx as tf.Tensor4D, { training: true }), sw), r)) as tf.Scalar)(x);
        if (op !== 'none') {
          const res = fdCheck((xx) => tf.sum(tf.mul(tf.mul(mod.forward(xx as tf.Tensor4D, { training: true }), sw), r)) as tf.Scalar, x, gx, 10, 1e-3);
          t.true(res.err < 3e-2, `input: relative error ${res.err.toExponential(2)}`);
        }
        p.dispose();
      });
    }
  }
}

test.serial('cell output shapes per cell for both spaces (channels double at reductions, resolution halves)', (t) => {
  for (const s of [tiny(DARTS_SPACE, { layers: 5 }), tiny(BAYESNAS_SPACE, { layers: 5 })]) {
    const net = buildSupernet(s, { inChannels: 1 });
    const x = randomTensor([2, 16, 16, 1], 1) as tf.Tensor4D;
    const r = net.forwardCells(x, { training: true });
    t.deepEqual(r.cells.map((c) => c.shape), [[2, 16, 16, 16], [2, 8, 8, 32], [2, 8, 8, 32], [2, 4, 4, 64], [2, 4, 4, 64]], s.name);
    t.deepEqual(r.logits.shape, [2, 10]);
    net.dispose();
  }
});

test.serial('output gate: s_e = 0 removes the edge exactly; input gate: BN-first ops ignore s_e > 0 (spec §10.21)', (t) => {
  const x = randomTensor([4, 8, 8, 1], 2) as tf.Tensor4D;
  const net = buildSupernet(tiny(BAYESNAS_SPACE, { gate: 'output', layers: 1, reductions: [] }), { inChannels: 1 });
  const cell = net.cells[0];
  // the cell's node 0 has edges 0 and 1; zero every edge into node 0: its slice of the output must be 0
  cell.origin.assign(tf.tensor1d(cell.edges.map((e) => (e.node === 0 ? 0 : 1))));
  const out = net.forwardCells(x, { training: true }).cells[0];
  const node0 = tf.slice(out, [0, 0, 0, 0], [4, 8, 8, 4]);
  t.is(tf.max(tf.abs(node0)).dataSync()[0], 0);
  net.dispose();
  // input gate: the sep_conv output does not change with s_e > 0 (training-mode BN normalises it away)
  const p = new ParamStore(1);
  const sep = OPS.bayesnas.sep_conv_3x3(p, 'sep', 4, 1);
  const z = randomTensor([4, 6, 6, 4], 3, 3) as tf.Tensor4D;
  const a = sep.forward(z, { training: true }), b = sep.forward(tf.mul(z, 2.5) as tf.Tensor4D, { training: true });
  t.true(relErr(b.dataSync(), a.dataSync()) < 1e-3);
  const mp = OPS.bayesnas.max_pool_3x3(p, 'mp', 4, 1);
  t.true(relErr(mp.forward(tf.mul(z, 2.5) as tf.Tensor4D, { training: true }).dataSync(), mp.forward(z, { training: true }).dataSync()) > 0.5, 'pooling ops do see s_e');
  p.dispose();
});

test.serial('space JSON: presets with overrides, full descriptions, and errors that name the field and file', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bnas-space-'));
  const f = path.join(dir, 'space.json');
  fs.writeFileSync(f, JSON.stringify({ preset: 'darts', C: 8, layers: 3, ops: ['sep_conv_3x3', 'skip_connect'] }));
  const s = loadSpaceFile(f);
  t.is(s.C, 8);
  t.is(s.edges.normal.length, 14);
  const custom = validateSpace({ name: 'chain', flavour: 'darts', ops: ['sep_conv_3x3', 'max_pool_3x3'], nodes: 2, edges: { normal: [[0, 1], [1, 2]], reduce: [[0, 0], [1, 2]] }, layers: 3, C: 4, stemMultiplier: 1, stem: 'conv-bn', preprocess: 'darts', head: 'gap-linear', gate: 'output' });
  const net = buildSupernet(custom, { inChannels: 1 });
  t.deepEqual(net.forward(randomTensor([2, 8, 8, 1], 4) as tf.Tensor4D, { training: true }).shape, [2, 10]);
  net.dispose();
  fs.writeFileSync(f, JSON.stringify({ preset: 'darts', edges: { normal: [[0, 1], [1, 5]], reduce: [[0, 0]] } }));
  t.throws(() => loadSpaceFile(f), { message: new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: field 'edges.normal\\[1\\].source' must be an earlier state`) });
  fs.writeFileSync(f, JSON.stringify({ preset: 'bayesnas', ops: ['none', 'sep_conv_3x3'] }));
  t.throws(() => loadSpaceFile(f), { message: /field 'ops\[0\]' 'none' is not an op of the bayesnas flavour/ });
  fs.writeFileSync(f, '{"preset": "darts",');
  t.throws(() => loadSpaceFile(f), { message: /not valid JSON/ });
  fs.rmSync(dir, { recursive: true });
});

for (const space of [tiny(DARTS_SPACE), tiny(BAYESNAS_SPACE, { gate: 'input' })]) {
  test.serial(`${space.name} (gate ${space.gate}): cpu and tensorflow backends give the same loss and gradients (1e-4)`, async (t) => {
    if (backends.length < 2) return t.pass('only the cpu backend is available');
    const net = buildSupernet(space, { inChannels: 1, seed: 5 });
    const x = randomTensor([4, 8, 8, 1], 6) as tf.Tensor4D;
    const labels = tf.oneHot(tf.tensor1d([1, 2, 3, 4], 'int32'), 10);
    const vars = net.params.variables();
    const run = async (b: string) => {
      await tf.setBackend(b);
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, net.forward(x, { training: true })) as tf.Scalar, vars);
      return { loss: value.dataSync()[0], grads: vars.map((v) => grads[v.name].dataSync() as Float32Array) };
    };
    const a = await run('cpu');
    const b = await run('tensorflow');
    t.true(Math.abs(a.loss - b.loss) / Math.abs(a.loss) < 1e-4, `loss ${a.loss} vs ${b.loss}`);
    // Some gradients are exactly 0 in exact arithmetic (a per-channel shift that the next training-mode BN
    // removes), so the error of each tensor is measured against its own scale or 1% of the largest gradient.
    const globalMax = Math.max(...a.grads.map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
    const errs = a.grads.map((g, i) => {
      const scale = Math.max(g.reduce((m, v) => Math.max(m, Math.abs(v)), 0), 1e-2 * globalMax);
      return { name: vars[i].name, err: g.reduce((m, v, j) => Math.max(m, Math.abs(v - b.grads[i][j])), 0) / scale };
    }).sort((p, q) => q.err - p.err);
    t.true(errs[0].err < 1e-4, `worst relative gradient differences ${JSON.stringify(errs.slice(0, 3))}`);
    t.true(vars.filter((v, i) => v.name.includes('switch')).every((v) => a.grads[vars.indexOf(v)].some((q) => q !== 0)), 'switches get gradients');
    net.dispose();
  });
}

test.serial('training steps keep the tensor count constant (no leaks)', (t) => {
  const net = buildSupernet(tiny(DARTS_SPACE), { inChannels: 1 });
  const w = new Sgd(net.params.variables('weights'), { lr: 0.01, momentum: 0.9, weightDecay: 3e-4 });
  const s = new Sgd(net.params.variables('switches'), { lr: 0.1, momentum: 0.9 });
  const x = randomTensor([4, 8, 8, 1], 8) as tf.Tensor4D;
  const labels = tf.oneHot(tf.tensor1d([1, 2, 3, 4], 'int32'), 10);
  const counts: number[] = [];
  for (let i = 0; i < 4; i++) {
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, net.forward(x, { training: true })) as tf.Scalar, net.params.variables());
      w.apply(grads);
      s.apply(grads);
    });
    counts.push(tf.memory().numTensors);
  }
  t.is(counts[1], counts[2]);
  t.is(counts[2], counts[3]);
  w.dispose(); s.dispose(); net.dispose();
});

test.serial('trainSupernet on real Fashion-MNIST: run folder, metrics, switch updates, no leaks, exact resume', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bnas-run-'));
  const cfg: TrainConfig = {
    ...DEFAULT_CONFIG, space: tiny(DARTS_SPACE, { layers: 2, reductions: [1] }), dataset: 'fashion-mnist', batch: 16,
    warmupEpochs: 1, switchEpochs: 1, sizes: { train: 64, switch: 64, val: 64 }, lambdaOrigin: 0.01, lambdaChild: 0.01,
  };
  const r = await trainSupernet(cfg, dir);
  t.is(r.epochs.length, 2);
  t.is(r.tensorsPerStep, 0);
  t.true(r.epochs.every((e) => Number.isFinite(e.trainLoss) && e.valAcc >= 0 && e.valAcc <= 1));
  for (const f of ['config.json', 'metrics.jsonl', 'weights.arrow', 'switches.arrow', 'checkpoint/params.arrow', 'checkpoint/optimizer.arrow', 'checkpoint/state.json']) t.true(fs.existsSync(path.join(dir, f)), f);
  const sw = readTensorFile(path.join(dir, 'switches.arrow')).rows;
  t.is(sw.length, 4);
  t.true(sw.some((row) => row.data.some((v) => Math.abs(v - 1) > 1e-6)), 'the switch epoch moved the switches');
  // resume after epoch 1 reproduces epoch 2 exactly
  const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), 'bnas-run-'));
  await trainSupernet({ ...cfg, switchEpochs: 0 }, dir2);
  const cfgFile = path.join(dir2, 'config.json');
  const saved = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  saved.config.switchEpochs = 1;
  fs.writeFileSync(cfgFile, JSON.stringify(saved));
  const resumed = await trainSupernet(saved.config, dir2, {}, true);
  t.is(resumed.epochs.length, 1);
  t.is(resumed.epochs[0].trainLoss, r.epochs[1].trainLoss);
  t.is(resumed.epochs[0].valAcc, r.epochs[1].valAcc);
  fs.rmSync(dir, { recursive: true });
  fs.rmSync(dir2, { recursive: true });
});
