import test from 'ava';
import { initEngine, tf } from '../src/engine/index.js';
import * as ops from '../src/engine/ops.js';
import { fillActivationGradients, HessianTape, softmaxSeed, switchHessian, vjp } from '../src/hessian/index.js';
import { activation, activationFwd, avgPool, bn, concatChannels, conv, factorizedReduce, maxPool, relu, SMOOTH_ACTIVATIONS, type Ctx, type Layer, type SmoothActivation } from '../src/space/layers.js';
import { ParamStore } from '../src/space/params.js';
import { BAYESNAS_SPACE, DARTS_SPACE, type SpaceSpec } from '../src/space/spaces.js';
import { buildSupernet } from '../src/space/supernet.js';
import { randomArray, randomTensor, relErr } from './helpers/numeric.js';

await initEngine({ quiet: true });
const tiny = (s: SpaceSpec, o: Partial<SpaceSpec> = {}): SpaceSpec => ({ ...s, C: 4, layers: 3, ...o });

/** diag(Jᵀ diag(h) J) of f at x by dense Jacobian rows (one VJP per output element). */
function denseDiag(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, h: tf.Tensor): Float64Array {
  const hv = h.dataSync();
  const out = new Float64Array(x.size);
  const size = hv.length;
  for (let p = 0; p < size; p++) {
    if (hv[p] === 0) continue;
    const row = tf.tidy(() => vjp(f, x, tf.reshape(tf.oneHot(tf.tensor1d([p], 'int32'), size), h.shape)).dataSync());
    for (let q = 0; q < row.length; q++) out[q] += row[q] * row[q] * hv[p];
  }
  return out;
}

/** The H_x that a layer's recorded rule gives for H_y = h. */
function ruleDiag(layer: Layer, x: tf.Tensor4D, h: tf.Tensor, training: boolean): Float32Array {
  return tf.tidy(() => {
    const tape = new HessianTape();
    const y = layer.forward(x, { training, tape });
    const H = tape.backward(y, h);
    return (H.get(x.id) ?? tf.zerosLike(x)).dataSync() as Float32Array;
  });
}

/** Positive random H_y and an input with well-separated values (no pooling ties, no ReLU zeros). */
function inputs(shape: [number, number, number, number], seed: number) {
  const n = shape.reduce((a, b) => a * b, 1);
  const r = randomArray(n, seed);
  const order = Array.from(r.keys()).sort((a, b) => r[a] - r[b]);
  const v = new Float32Array(n);
  order.forEach((idx, rank) => { v[idx] = (rank - n / 2 + 0.5) * (3 / n); });
  return tf.tensor(v, shape) as tf.Tensor4D;
}


const p = new ParamStore(9);
const cases: Array<[string, Layer, [number, number, number, number]]> = [
  ['conv 3x3 stride 1 pad 1', conv(p, 'c1', { cin: 2, cout: 3, k: 3, padding: 1 }), [2, 5, 5, 2]],
  ['conv 3x3 stride 2 pad 1 (even size: needs output padding)', conv(p, 'c2', { cin: 2, cout: 3, k: 3, stride: 2, padding: 1 }), [2, 6, 6, 2]],
  ['conv 1x1 stride 2', conv(p, 'c3', { cin: 3, cout: 2, k: 1, stride: 2 }), [1, 6, 6, 3]],
  ['conv 3x3 dilation 2 pad 2', conv(p, 'c4', { cin: 2, cout: 2, k: 3, padding: 2, dilation: 2 }), [1, 7, 7, 2]],
  ['conv 5x5 dilation 2 stride 2 pad 4', conv(p, 'c5', { cin: 2, cout: 2, k: 5, stride: 2, padding: 4, dilation: 2 }), [1, 8, 8, 2]],
  ['grouped conv 3x3 G=2 (4 -> 6 channels) pad 1', conv(p, 'g1', { cin: 4, cout: 6, k: 3, padding: 1, groups: 2 }), [2, 5, 5, 4]],
  ['grouped conv 3x3 G=3 stride 2 dilation 2 pad 2', conv(p, 'g2', { cin: 6, cout: 3, k: 3, stride: 2, padding: 2, dilation: 2, groups: 3 }), [1, 7, 7, 6]],
  ['tanh (Gauss–Newton part)', activation('tanh'), [2, 3, 3, 2]],
  ['sigmoid (Gauss–Newton part)', activation('sigmoid'), [2, 3, 3, 2]],
  ['softplus (Gauss–Newton part)', activation('softplus'), [2, 3, 3, 2]],
  ['elu (Gauss–Newton part)', activation('elu'), [2, 3, 3, 2]],
  ['depthwise 3x3 stride 2 pad 1', conv(p, 'd1', { cin: 3, cout: 3, k: 3, stride: 2, padding: 1, depthwise: true }), [2, 6, 6, 3]],
  ['depthwise 5x5 dilation 2 pad 4', conv(p, 'd2', { cin: 2, cout: 2, k: 5, padding: 4, dilation: 2, depthwise: true }), [1, 7, 7, 2]],
  ['max pool 3x3 s1 pad 1 (-inf)', maxPool(3, 1, 1), [2, 5, 5, 2]],
  ['max pool 3x3 s2 pad 1 (zero pad, official)', maxPool(3, 2, 1, 0), [2, 6, 6, 2]],
  ['avg pool 3x3 s1 count_include_pad=false', avgPool(3, 1, 1, false), [2, 5, 5, 2]],
  ['avg pool 3x3 s2 count_include_pad=true', avgPool(3, 2, 1, true), [2, 6, 6, 2]],
  ['relu', relu(), [2, 4, 4, 2]],
  ['factorized reduce', factorizedReduce(p, 'fr', 3, 4), [2, 6, 6, 3]],
];
for (const [name, layer, shape] of cases) {
  test(`rule = dense diag(Jᵀ diag(h) J): ${name}`, (t) => {
    const x = inputs(shape, 3);
    const training = name === 'factorized reduce' ? false : true;   // BN inside FR: frozen statistics (eval mode) make J exact
    const y = layer.forward(x, { training });
    const h = tf.abs(randomTensor(y.shape, 5)) as tf.Tensor;
    const dense = denseDiag((a) => layer.forward(a as tf.Tensor4D, { training }), x, h);
    const rule = ruleDiag(layer, x, h, training);
    t.true(relErr(rule, dense) < 1e-5, `relative error ${relErr(rule, dense)}`);
  });
}

test('rule = dense diag(Jᵀ diag(h) J): batch norm with frozen statistics, concat', (t) => {
  const x = inputs([3, 4, 4, 2], 7);
  const norm = bn(p, 'bn', 2);
  const h = tf.abs(randomTensor([3, 4, 4, 2], 8));
  t.true(relErr(ruleDiag(norm, x, h, false), denseDiag((a) => norm.forward(a as tf.Tensor4D, { training: false }), x, h)) < 1e-5);
  const tape = new HessianTape();
  const ctx: Ctx = { training: false, tape };
  const a = inputs([1, 2, 2, 2], 1), b = inputs([1, 2, 2, 3], 2);
  const y = concatChannels([a, b], ctx);
  const hy = tf.abs(randomTensor(y.shape, 3));
  const H = tape.backward(y, hy);
  t.deepEqual(Array.from(H.get(b.id)!.dataSync()), Array.from(tf.slice(hy, [0, 0, 0, 2], [1, 2, 2, 3]).dataSync()));
});

test('separable quadratic loss through a diagonal chain: recursion = exact ∂²E/∂s² (spec §10.4)', (t) => {
  // x → ReLU → BN (frozen) → gate s1 → BN (frozen) → gate s2 → y,  E = ½ Σ c ⊙ y²
  const q = new ParamStore(2);
  const b1 = bn(q, 'b1', 3), b2 = bn(q, 'b2', 3);
  q.get('b1.weight').assign(tf.tensor1d([0.5, -1.2, 2]));
  q.get('b2.running_var').assign(tf.tensor1d([0.3, 2, 0.7]));
  const x = inputs([2, 3, 3, 3], 4);
  const c = tf.abs(randomTensor([2, 3, 3, 3], 6));
  const s = tf.variable(tf.tensor1d([0.8, -1.3]));
  const net = (ss: tf.Tensor, ctx: Ctx) => {
    const [s1, s2] = tf.unstack(ss) as tf.Scalar[];
    const z1 = b1.forward(relu().forward(x, ctx), ctx);
    const y1 = tf.mul(z1, s1) as tf.Tensor4D; ctx.tape?.gate('s1', z1, s1, y1);
    const z2 = b2.forward(y1, ctx);
    const y2 = tf.mul(z2, s2) as tf.Tensor4D; ctx.tape?.gate('s2', z2, s2, y2);
    return y2;
  };
  const tape = new HessianTape();
  const y = net(s, { training: false, tape });
  tape.backward(y, c);
  const h = tape.switchHessians();
  const E = (ss: tf.Tensor) => tf.mul(0.5, tf.sum(tf.mul(c, tf.square(net(ss, { training: false }))))) as tf.Scalar;
  const hess = (i: number) => {   // exact: central differences of the autodiff gradient (E is quadratic in each s_i)
    const e = tf.reshape(tf.oneHot(tf.tensor1d([i], 'int32'), 2), [2]);
    const g = (d: number) => tf.grad(E)(tf.add(s, tf.mul(e, d))).dataSync()[i];
    return (g(0.5) - g(-0.5)) / 1;
  };
  t.true(Math.abs(h.get('s1')! - hess(0)) / Math.abs(hess(0)) < 1e-4, `s1: ${h.get('s1')} vs ${hess(0)}`);
  t.true(Math.abs(h.get('s2')! - hess(1)) / Math.abs(hess(1)) < 1e-4, `s2: ${h.get('s2')} vs ${hess(1)}`);
});

test('gate on the logits: the diagonal seed gives Σ z² p(1−p); the exact value differs by (pᵀz)² − Σ p² z² (spec §10.7)', (t) => {
  const z = randomTensor([1, 6], 12, 2) as tf.Tensor2D;
  const label = tf.tensor1d([2], 'int32');
  const s = tf.scalar(0.9);
  const tape = new HessianTape();
  const u = tf.mul(z, s) as tf.Tensor2D;
  tape.gate('s', z, s, u);
  tape.backward(u, softmaxSeed(u, label, 'diagonal', 'mean'));
  const h = tape.switchHessians().get('s')!;
  const E = (ss: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(label, 6), tf.mul(z, ss)) as tf.Scalar;
  const g = (v: number) => tf.grad(E)(tf.scalar(v)).dataSync()[0];
  const exact = (g(0.9 + 1e-2) - g(0.9 - 1e-2)) / 2e-2;
  const pz = Array.from(tf.softmax(u).dataSync()), zz = Array.from(z.dataSync());
  const diag = zz.reduce((a, zi, i) => a + zi * zi * pz[i] * (1 - pz[i]), 0);
  const ptz = zz.reduce((a, zi, i) => a + zi * pz[i], 0);
  const cross = ptz * ptz - zz.reduce((a, zi, i) => a + pz[i] * pz[i] * zi * zi, 0);
  t.true(Math.abs(h - diag) < 1e-5 * Math.abs(diag));
  t.true(Math.abs(diag - exact - cross) < 2e-3 * Math.abs(exact), `diag ${diag} exact ${exact} cross ${cross}`);
});

for (const space of [tiny(BAYESNAS_SPACE), tiny(DARTS_SPACE, { gate: 'input' })]) {
  test.serial(`${space.name} supernet (gate ${space.gate}): switch Hessians are ≥ 0, cover every switch, and follow the scale conventions (spec §10.9–11)`, async (t) => {
    const net = buildSupernet(space, { inChannels: 1, seed: 4 });
    const x = randomTensor([4, 8, 8, 1], 5) as tf.Tensor4D;
    const y = tf.tensor1d([1, 2, 3, 4], 'int32');
    const mean = await switchHessian(net, [{ x, y }]);
    const all = mean.cells.flatMap((c) => [...c.origin, ...c.child]);
    t.is(all.length, net.params.count('switches'));
    t.true(all.every((v) => v >= 0 && Number.isFinite(v)));
    t.true(all.filter((v) => v > 0).length > all.length * 0.9, 'curvature reaches nearly every switch');
    const sum = await switchHessian(net, [{ x, y }], { scale: 'batchSum' });
    const ds = await switchHessian(net, [{ x, y }], { scale: 'dataset', datasetSize: 1000 });
    const twice = await switchHessian(net, [{ x, y }, { x, y }]);
    const flat = (h: typeof mean) => h.cells.flatMap((c) => [...c.origin, ...c.child]);
    t.true(relErr(flat(sum), all.map((v) => 4 * v)) < 1e-4, 'batchSum = N · mean');
    t.true(relErr(flat(ds), all.map((v) => 1000 * v)) < 1e-4, 'dataset = N_train · mean');
    t.true(relErr(flat(twice), all) < 1e-6, 'M identical batches = one batch');
    const target = flat(await switchHessian(net, [{ x, y }], { seed: 'target' }));
    t.true(target.every((v, i) => v <= all[i] * (1 + 1e-4) + 1e-12), 'target-only seed keeps a part of the diagonal seed');
    const before = tf.memory().numTensors;
    await switchHessian(net, [{ x, y }]);
    t.is(tf.memory().numTensors, before, 'no tensors leak from the Hessian pass');
    net.dispose();
  });
}

test('weight Hessians: conv filter diagonal = dense Σ_p (∂y_p/∂w)² h_p; classifier = Σ a² H_u (spec §6.6)', async (t) => {
  const q = new ParamStore(3);
  const layer = conv(q, 'cw', { cin: 2, cout: 2, k: 3, stride: 2, padding: 1 });
  const w = q.get('cw.weight');
  const x = inputs([2, 6, 6, 2], 9);
  const tape = new HessianTape({ weights: true });
  const y = layer.forward(x, { training: true, tape });
  const h = tf.abs(randomTensor(y.shape, 10));
  tape.backward(y, h);
  const rule = tape.weightHessians().get('cw.weight')!.dataSync();
  const dense = denseDiag((ww) => ops.conv2d(x, ww as tf.Tensor4D, { stride: 2, padding: 1 }), w, h);
  t.true(relErr(rule, dense) < 1e-5, `relative error ${relErr(rule, dense)}`);
  const net = buildSupernet(tiny(BAYESNAS_SPACE, { layers: 2, reductions: [1] }), { inChannels: 1 });
  const hw = (await switchHessian(net, [{ x: randomTensor([2, 8, 8, 1], 3) as tf.Tensor4D, y: tf.tensor1d([0, 1], 'int32') }], { weights: true })).weights!;
  t.true(hw.has('classifier.weight') && hw.has('cells.0.preprocess0.conv.weight') && hw.has('stem.0.weight'));
  t.true([...hw.values()].every((v) => v.every((q2) => q2 >= 0 && Number.isFinite(q2))));
  net.dispose();
});

test('faithful mode = per-sample mode for one layer when samples and per-channel H_y are identical; otherwise batch-constant (spec §10.3)', async (t) => {
  const q = new ParamStore(4);
  const layer = conv(q, 'cf', { cin: 2, cout: 3, k: 3, padding: 1 });
  const one = inputs([1, 5, 5, 2], 2);
  const x = tf.concat([one, one, one], 0) as tf.Tensor4D;
  const y = layer.forward(x, { training: true });
  const hConst = tf.mul(tf.ones(y.shape), tf.tensor1d([0.3, 1.1, 2.0]));
  const run = (mode: 'per-sample' | 'faithful', h: tf.Tensor, input: tf.Tensor4D) => {
    const tape = new HessianTape({ mode });
    const out = layer.forward(input, { training: true, tape });
    return tape.backward(out, h).get(input.id)!;
  };
  t.true(relErr(run('faithful', hConst, x).dataSync(), run('per-sample', hConst, x).dataSync()) < 1e-6);
  const xr = inputs([3, 5, 5, 2], 6), hr = tf.abs(randomTensor(y.shape, 7));
  const f = run('faithful', hr, xr), ps = run('per-sample', hr, xr);
  t.true(relErr(f.dataSync(), ps.dataSync()) > 1e-2, 'differs in general');
  const [a, b] = tf.split(f, [1, 2], 0);
  t.true(relErr(tf.slice(b, [0, 0, 0, 0], [1, 5, 5, 2]).dataSync(), a.dataSync()) < 1e-6, 'copied to every sample');
  const net = buildSupernet(tiny(BAYESNAS_SPACE), { inChannels: 1 });
  const hf = await switchHessian(net, [{ x: randomTensor([4, 8, 8, 1], 5) as tf.Tensor4D, y: tf.tensor1d([1, 2, 3, 4], 'int32') }], { mode: 'faithful' });
  t.true(hf.cells.every((c) => [...c.origin, ...c.child].every((v) => v >= 0 && Number.isFinite(v))));
  net.dispose();
});

test('gated linear-softmax layer, full seed: recursion = exact diagonal of the switch Hessian (spec §10.6)', (t) => {
  // u = W (s ⊙ z) + b, E = CE(u, y), one sample: ∂²E/∂s_i² = z_i² [Wᵀ(diag p − ppᵀ)W]_ii
  const F = 5, K = 4;
  const z = randomTensor([1, F], 21, 1.5) as tf.Tensor2D;
  const W = randomTensor([F, K], 22) as tf.Tensor2D, bias = randomTensor([K], 23);
  const label = tf.tensor1d([1], 'int32');
  const s = tf.tensor1d([0.7, -1.1, 0.4, 1.3, 0.9]);
  const tape = new HessianTape();
  const parts = tf.unstack(s).map((si, i) => {
    const zi = tf.slice(z, [0, i], [1, 1]);
    const yi = tf.mul(zi, si);
    tape.gate(`s${i}`, zi, si, yi);
    return yi;
  });
  const a = tf.concat(parts, 1) as tf.Tensor2D;
  tape.record(parts, a, (Ha) => tf.split(Ha, F, 1));
  const u = tf.add(tf.matMul(a, W), bias) as tf.Tensor2D;
  const p = tf.softmax(u);
  tape.backward(a, tf.sub(tf.matMul(p, tf.square(W), false, true), tf.square(tf.matMul(p, W, false, true))));   // full seed, N = 1
  const h = tape.switchHessians();
  const E = (ss: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(label, K), tf.add(tf.matMul(tf.mul(z, ss), W), bias)) as tf.Scalar;
  for (let i = 0; i < F; i++) {
    const e = tf.reshape(tf.oneHot(tf.tensor1d([i], 'int32'), F), [F]);
    const g = (d: number) => tf.grad(E)(tf.add(s, tf.mul(e, d))).dataSync()[i];
    const exact = (g(1e-2) - g(-1e-2)) / 2e-2;
    t.true(Math.abs(h.get(`s${i}`)! - exact) < 2e-3 * Math.abs(exact) + 1e-6, `s${i}: ${h.get(`s${i}`)} vs ${exact}`);
  }
});

test('grouped conv: each output block sees only its input block; the weight has cin/G input channels', (t) => {
  const q = new ParamStore(4);
  const g = conv(q, 'g', { cin: 4, cout: 4, k: 1, groups: 2 });
  t.is(g.params, 1 * 1 * 2 * 4);
  const x = tf.concat([tf.zeros([1, 2, 2, 2]), tf.ones([1, 2, 2, 2])], 3) as tf.Tensor4D;
  const y = g.forward(x, { training: false }).dataSync();
  for (let i = 0; i < y.length; i += 4) { t.is(y[i], 0); t.is(y[i + 1], 0); t.not(y[i + 2], 0); }
  t.throws(() => conv(q, 'bad', { cin: 4, cout: 6, k: 1, groups: 4 }), { message: /groups must divide cin and cout/ });
});

test('activation derivatives f\', f\'\' equal the autodiff ones', (t) => {
  const x = tf.linspace(-2.5, 2.5, 41);
  for (const [name, a] of Object.entries(SMOOTH_ACTIVATIONS)) {
    const d1 = tf.grad((v: tf.Tensor) => tf.sum(a.f(v)) as tf.Scalar)(x);
    const d2 = tf.grad((v: tf.Tensor) => tf.sum(a.d1(v)) as tf.Scalar)(x);
    t.true(relErr(a.d1(x).dataSync(), d1.dataSync()) < 1e-5, `${name} f'`);
    // elu's f'' jumps at 0: compare away from it
    const keep = (arr: ArrayLike<number>) => Array.from(arr).filter((_, i) => Math.abs(-2.5 + i * 0.125) > 0.2);
    t.true(relErr(keep(a.d2(x).dataSync()), keep(d2.dataSync())) < 1e-4, `${name} f''`);
  }
});

/**
 * logits_k = f(s_k · x_k) per sample (every switch feeds one logit through a smooth activation), softmax
 * cross-entropy: ∂²E/∂s_k² = Σ_n p(1−p)(f' x)² + (p − y) f'' x², so the recursion with the f''·∂E/∂y term
 * is exact, and without it (Gauss–Newton) it is not.
 */
for (const fn of ['tanh', 'sigmoid', 'softplus', 'elu'] as SmoothActivation[]) {
  test(`smooth activation (${fn}): the recursion with the f''·∂E/∂y term = exact ∂²E/∂s² (rule e)`, (t) => {
    const N = 6, K = 4;
    const x = tf.tidy(() => tf.mul(randomTensor([N, 1, 1, K], 21), 1.5)) as tf.Tensor4D;
    const labels = tf.tensor1d(Array.from({ length: N }, (_, n) => n % K), 'int32');
    const s0 = randomArray(K, 22).map((v) => 0.5 + v);
    const forward = (s: tf.Tensor1D, tape?: HessianTape) => {
      const cols = Array.from({ length: K }, (_, k) => {
        const z = tf.slice(x, [0, 0, 0, k], [N, 1, 1, 1]);
        const sk = tf.slice(s, [k], [1]);
        const y = tf.mul(z, sk);
        tape?.gate(`s${k}`, z, sk, y);
        return y as tf.Tensor4D;
      });
      const u = concatChannels(cols, { training: false, tape });
      return activationFwd(u, fn, { training: false, tape });
    };
    const loss = (s: tf.Tensor1D, tape?: HessianTape) => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, K), tf.reshape(forward(s, tape), [N, K])) as tf.Scalar;
    const recursion = (withTerm: boolean) => tf.tidy(() => {
      const s = tf.tensor1d(s0);
      const tape = new HessianTape();
      const out = forward(s, tape);
      if (withTerm) fillActivationGradients(tape, (pt) => loss(s, pt));
      tape.backward(out, tf.reshape(softmaxSeed(tf.reshape(out, [N, K]) as tf.Tensor2D, labels, 'diagonal', 'mean'), out.shape));
      const h = tape.switchHessians();
      return Array.from({ length: K }, (_, k) => h.get(`s${k}`)!);
    });
    // exact diagonal: central differences of the autodiff gradient (float64 accumulation of float32 values)
    const grad = (s: number[]) => tf.tidy(() => Array.from(tf.grad((v: tf.Tensor) => loss(v as tf.Tensor1D))(tf.tensor1d(s)).dataSync()));
    const eps = 2e-3;
    const exact = Array.from({ length: K }, (_, k) => {
      const up = [...s0], dn = [...s0];
      up[k] += eps; dn[k] -= eps;
      return (grad(up)[k] - grad(dn)[k]) / (2 * eps);
    });
    const full = recursion(true), gn = recursion(false);
    t.true(relErr(full, exact) < 2e-3, `${fn}: with the term ${full} vs exact ${exact} (rel ${relErr(full, exact)})`);
    t.true(relErr(gn, exact) > 1e-2, `${fn}: Gauss–Newton alone should differ (rel ${relErr(gn, exact)})`);
  });
}
