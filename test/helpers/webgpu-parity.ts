// Run with BAYESNAS_BACKEND=webgpu (and the launch environment): the same supernet computations on the
// cpu backend and on webgpu, printed as one JSON line for test/webgpu.test.ts.
import { describeEngine, initEngine, tf } from '../../src/engine/index.js';
import { Sgd, type OptimizerState, type SgdOptions } from '../../src/engine/sgd.js';
import { switchHessian } from '../../src/hessian/index.js';
import { BAYESNAS_SPACE, DARTS_SPACE, type SpaceSpec } from '../../src/space/spaces.js';
import { buildSupernet } from '../../src/space/supernet.js';
import { buildEvalNet } from '../../src/evalnet/network.js';
import { PUBLISHED } from '../../src/genotype/published.js';
import { CompressNet } from '../../src/compress/model.js';
import { weightHessians } from '../../src/compress/bayes.js';
import { LENET_5 } from '../../src/compress/spec.js';
import { avgPool2d, batchNorm, conv2d, depthwiseConv2d, maxPool2d } from '../../src/engine/ops.js';
import { weightedSumWebgpu } from '../../src/engine/webgpu-kernels.js';
import { ArchParams } from '../../src/search/arch.js';
import { randomTensor } from './numeric.js';

const engine = await initEngine({ quiet: true });

/** max |a − b| of each tensor over its own scale, floored at 1% of the largest value of all (exact zeros stay comparable) */
function relErrs(a: Float32Array[], b: Float32Array[]): number {
  const max = (v: Float32Array) => v.reduce((m, q) => Math.max(m, Math.abs(q)), 0);
  const top = Math.max(...a.map(max));
  return Math.max(...a.map((v, i) => v.reduce((m, q, j) => Math.max(m, Math.abs(q - b[i][j])), 0) / Math.max(max(v), 1e-2 * top)));
}

/** `pass` on the cpu backend, then on webgpu: the largest difference of their tensors over each one's scale. */
async function onBoth(pass: () => Promise<Float32Array[]>): Promise<number> {
  await tf.setBackend('cpu');
  const a = await pass();
  await tf.setBackend('webgpu');
  return relErrs(a, await pass());
}

async function compare(space: SpaceSpec) {
  await tf.setBackend('cpu');   // built on cpu: data moves cpu → webgpu, never back (that would need a synchronous read)
  const net = buildSupernet(space, { inChannels: 1, seed: 5 });
  const x = randomTensor([4, 8, 8, 1], 6) as tf.Tensor4D;
  const y = tf.tensor1d([1, 2, 3, 4], 'int32');
  const vars = net.params.variables();
  const pass = async () => {
    const out = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(tf.oneHot(y, 10), net.forward(x, { training: true })) as tf.Scalar, vars);
      return [value, ...vars.map((v) => grads[v.name])];
    });
    const data = await Promise.all(out.map(async (t) => await t.data() as Float32Array));
    tf.dispose(out);
    const h = await switchHessian(net, [{ x, y }]);
    return { loss: data[0][0], grads: data.slice(1), hessian: h.cells.flatMap((c) => [Float32Array.from(c.origin), Float32Array.from(c.child)]) };
  };
  const a = await pass();
  await tf.setBackend('webgpu');
  const b = await pass();
  // training steps on webgpu: the tensor count must not grow
  const sgd = new Sgd(vars, { lr: 0.01, momentum: 0.9, weightDecay: 3e-4 });
  const counts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const loss = sgd.step(() => tf.losses.softmaxCrossEntropy(tf.oneHot(y, 10), net.forward(x, { training: true })) as tf.Scalar);
    await loss.data();
    loss.dispose();
    counts.push(tf.memory().numTensors);
  }
  sgd.dispose(); net.dispose(); tf.dispose([x, y]);
  return { space: `${space.name}/${space.gate}`, lossCpu: a.loss, lossWebgpu: b.loss, gradErr: relErrs(a.grads, b.grads), hessianErr: relErrs(a.hessian, b.hessian), counts };
}

/** Loss and gradients of `lossOf` over `vars`, read back: once on cpu, once on webgpu (same tensors, moved). */
async function lossAndGrads(lossOf: () => tf.Scalar, vars: tf.Variable[]) {
  const out = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(lossOf, vars);
    return [value, ...vars.map((v) => grads[v.name])];
  });
  const data = await Promise.all(out.map(async (t) => await t.data() as Float32Array));
  tf.dispose(out);
  return { loss: data[0][0], grads: data.slice(1) };
}

/** The supernet with its switches from DARTS's softmax(α) (SupernetCtx.switches): loss and gradients of the weights and α. */
async function dartsAlpha() {
  await tf.setBackend('cpu');
  const space = { ...DARTS_SPACE, C: 4, layers: 3 };
  const net = buildSupernet(space, { inChannels: 1, seed: 8 });
  const arch = new ArchParams(space, 2, { lr: 3e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8, weightDecay: 1e-3 });
  // α away from its near-uniform start, so that the op weights differ
  arch.vars.forEach((v, i) => v.assign(randomTensor(v.shape, 20 + i)));
  const x = randomTensor([4, 8, 8, 1], 10) as tf.Tensor4D;
  const y = tf.oneHot(tf.tensor1d([0, 3, 6, 9], 'int32'), 10);
  const vars = [...net.params.variables('weights'), ...arch.vars];
  const lossOf = () => tf.losses.softmaxCrossEntropy(y, net.forward(x, { training: true, switches: arch.switchesFrom(arch.softmax()) })) as tf.Scalar;
  const a = await lossAndGrads(lossOf, vars);
  await tf.setBackend('webgpu');
  const b = await lossAndGrads(lossOf, vars);
  arch.adam.dispose(); tf.dispose(arch.vars); net.dispose(); tf.dispose([x, y]);
  return { space: 'darts/output, switches from softmax(α)', lossCpu: a.loss, lossWebgpu: b.loss, gradErr: relErrs(a.grads, b.grads), hessianErr: 0, counts: [0] };
}

/** DARTS_V2's evaluation network with its auxiliary head: CE + 0.4·CE(aux). */
async function evalnet() {
  await tf.setBackend('cpu');
  const net = buildEvalNet({ genotype: PUBLISHED.DARTS_V2.genotype, C: 4, layers: 3, auxiliary: true, seed: 3 });
  // batch 8: the head's last batch norm runs on 1x1 maps, so with 2 samples it would normalise ±1 and
  // amplify rounding differences hundredfold
  const x = randomTensor([8, 8, 8, 3], 7) as tf.Tensor4D;
  const y = tf.oneHot(tf.tensor1d([3, 8, 1, 0, 5, 2, 9, 4], 'int32'), 10);
  const vars = net.params.variables();
  const lossOf = () => {
    const { logits, logitsAux } = net.forward(x, { training: true });
    return tf.add(tf.losses.softmaxCrossEntropy(y, logits), tf.mul(0.4, tf.losses.softmaxCrossEntropy(y, logitsAux!))) as tf.Scalar;
  };
  const a = await lossAndGrads(lossOf, vars);
  await tf.setBackend('webgpu');
  const b = await lossAndGrads(lossOf, vars);
  net.dispose(); tf.dispose([x, y]);
  return { space: 'evalnet DARTS_V2 + auxiliary head', lossCpu: a.loss, lossWebgpu: b.loss, gradErr: relErrs(a.grads, b.grads), hessianErr: 0, counts: [0] };
}

/** LeNet-5 of the compression runs: loss, gradients, and the recursion's weight Hessians. */
async function lenet() {
  await tf.setBackend('cpu');
  const net = new CompressNet(LENET_5, { grouping: 'neuron', input: [28, 28, 1], classes: 10, seed: 1 });
  const x = randomTensor([4, 28, 28, 1], 9);
  const y = tf.tensor1d([1, 4, 7, 9], 'int32');
  const lossOf = () => tf.losses.softmaxCrossEntropy(tf.oneHot(y, 10), net.forward(x)) as tf.Scalar;
  const hess = async () => (await weightHessians(net, [{ x, y }])).flatMap((h) => [h.weight, h.bias]);
  const a = await lossAndGrads(lossOf, net.variables()), ha = await hess();
  await tf.setBackend('webgpu');
  const b = await lossAndGrads(lossOf, net.variables()), hb = await hess();
  tf.dispose([x, y]);
  return { space: 'compress LeNet-5', lossCpu: a.loss, lossWebgpu: b.loss, gradErr: relErrs(a.grads, b.grads), hessianErr: relErrs(ha, hb), counts: [0] };
}

/** The batch norm alone (webgpu: its fused kernels) on shapes with M not a multiple of the workgroup, rank 2, and 1x1 maps. */
async function batchNorms() {
  // [8, 32, 32, 4]: 8,192 rows per channel, reduced by workgroups of 256
  const shapes = [[8, 16, 16, 32], [7, 33], [3, 1, 1, 768], [8, 32, 32, 4]];
  const one = async (shape: number[]) => {
    const C = shape[shape.length - 1];
    const pass = async () => {
      const x = randomTensor(shape, 11), r = randomTensor(shape, 12);
      const g = tf.variable(tf.add(1, randomTensor([C], 13))), b = tf.variable(randomTensor([C], 14));
      const out = tf.tidy(() => {
        const f = (xx: tf.Tensor) => tf.sum(tf.mul(batchNorm(xx, g as unknown as tf.Tensor1D, b as unknown as tf.Tensor1D).y, r)) as tf.Scalar;
        const { grads } = tf.variableGrads(() => f(x), [g, b]);
        const running = { mean: randomTensor([C], 15) as tf.Tensor1D, variance: tf.abs(randomTensor([C], 16)) as tf.Tensor1D, momentum: 0.1 };
        const bn = batchNorm(x, g as unknown as tf.Tensor1D, b as unknown as tf.Tensor1D, 1e-5, running);
        // with the running statistics and without the batch statistics (webgpu: y and both running
        // statistics in one program, the gradients in one), affine and affine=false
        const train = (xx: tf.Tensor, affine: boolean, relu = false) => batchNorm(xx, affine ? g as unknown as tf.Tensor1D : null, affine ? b as unknown as tf.Tensor1D : null, 1e-5, running, { stats: false, relu });
        const p = train(x, false);
        const dxPlain = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(train(xx, false).y, r)) as tf.Scalar)(x);
        const fa = (xx: tf.Tensor) => tf.sum(tf.mul(train(xx, true).y, r)) as tf.Scalar;
        const ga = tf.variableGrads(() => fa(x), [g, b]).grads;
        // and followed by a ReLU (webgpu: in the same programs)
        const dxRelu = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(train(xx, false, true).y, r)) as tf.Scalar)(x);
        const far = (xx: tf.Tensor) => tf.sum(tf.mul(train(xx, true, true).y, r)) as tf.Scalar;
        const gar = tf.variableGrads(() => far(x), [g, b]).grads;
        return [bn.y, bn.mean, bn.variance, bn.runningMean!, bn.runningVar!, tf.grad(f)(x), grads[g.name], grads[b.name], p.y, p.runningMean!, p.runningVar!, dxPlain,
          train(x, true).y, tf.grad(fa)(x), ga[g.name], ga[b.name], train(x, false, true).y, dxRelu, train(x, true, true).y, tf.grad(far)(x), gar[g.name], gar[b.name]];
      });
      const data = await Promise.all(out.map(async (t) => await t.data() as Float32Array));
      tf.dispose([...out, x, r, g, b]);
      return data;
    };
    return onBoth(pass);
  };
  const errs = [];
  for (const shape of shapes) errs.push(await one(shape));
  return { space: 'batch norm (y, mean, variance, running statistics, dx, dg, db; in training with running statistics, also followed by a ReLU: y, dx, dg, db, affine=false y, running statistics, dx)', lossCpu: 1, lossWebgpu: 1, gradErr: Math.max(...errs), hessianErr: 0, counts: [0] };
}

/** A mixed edge's weighted sum Σ_o w_o·z_o and its gradients (webgpu: its programs) against the composition on cpu, small and large (dw in partial sums). */
async function weightedSums() {
  const one = async (k: number, shape: number[]) => {
    const pass = async () => {
      const zs = Array.from({ length: k }, (_, o) => randomTensor(shape, 30 + o));
      const w = randomTensor([k], 40) as tf.Tensor1D, r = randomTensor(shape, 41);
      const f = (...a: tf.Tensor[]) => {
        const ws = a[k] as tf.Tensor1D;
        const y = tf.getBackend() === 'webgpu' ? weightedSumWebgpu(a.slice(0, k), ws) : tf.addN(a.slice(0, k).map((z, o) => tf.mul(z, tf.slice(ws, o, 1))));
        return tf.sum(tf.mul(y, r)) as tf.Scalar;
      };
      const out = tf.tidy(() => {
        const { value, grads } = tf.valueAndGrads(f)([...zs, w]);
        return [value, ...grads];
      });
      const data = await Promise.all(out.map(async (t) => await t.data() as Float32Array));
      tf.dispose([...out, ...zs, w, r]);
      return data;
    };
    return onBoth(pass);
  };
  // 327,680 elements: the dz program's invocations go round twice, dw in 20 partial sums
  const errs = [await one(7, [4, 8, 8, 4]), await one(3, [2, 64, 64, 4]), await one(2, [2, 128, 128, 10])];
  return { space: 'weighted sum (y, dz, dw; 2,048, 32,768 and 327,680 elements)', lossCpu: 1, lossWebgpu: 1, gradErr: Math.max(...errs), hessianErr: 0, counts: [0] };
}

/** Filter gradients of convolutions and depthwise convolutions (webgpu: filterGradProgram) against cpu: strides, paddings, a channel multiplier, and 6,400 positions per filter element. */
async function filterGrads() {
  type Case = { x: number[]; w: number[]; stride: number; pad: 'same' | 'valid' | number; depthwise: boolean };
  const cases: Case[] = [
    { x: [2, 9, 9, 3], w: [3, 3, 3, 5], stride: 1, pad: 'same', depthwise: false },
    { x: [2, 9, 9, 3], w: [3, 3, 3, 5], stride: 2, pad: 'valid', depthwise: false },
    { x: [2, 9, 9, 3], w: [5, 5, 3, 2], stride: 2, pad: 2, depthwise: false },
    { x: [4, 40, 40, 6], w: [1, 1, 6, 4], stride: 1, pad: 'valid', depthwise: false },
    { x: [2, 9, 9, 4], w: [3, 3, 4, 1], stride: 1, pad: 'same', depthwise: true },
    { x: [2, 9, 9, 4], w: [5, 5, 4, 1], stride: 2, pad: 'valid', depthwise: true },
    { x: [2, 9, 9, 4], w: [3, 3, 4, 2], stride: 1, pad: 'same', depthwise: true },
    { x: [4, 40, 40, 3], w: [3, 3, 3, 1], stride: 1, pad: 'same', depthwise: true },
  ];
  const one = async (c: Case) => {
    const pass = async () => {
      const x = randomTensor(c.x, 50) as tf.Tensor4D, w = randomTensor(c.w, 51) as tf.Tensor4D;
      const y = (ww: tf.Tensor4D) => (c.depthwise ? tf.depthwiseConv2d(x, ww, c.stride, c.pad as 'same') : tf.conv2d(x, ww, c.stride, c.pad as 'same'));
      const r = tf.tidy(() => randomTensor(y(w).shape, 52));
      const g = tf.grad((ww: tf.Tensor) => tf.sum(tf.mul(y(ww as tf.Tensor4D), r)) as tf.Scalar)(w);
      const data = await g.data() as Float32Array;
      tf.dispose([x, w, r, g]);
      return [data];
    };
    return onBoth(pass);
  };
  const errs = [];
  for (const c of cases) errs.push(await one(c));
  return { space: 'conv and depthwise filter gradients', lossCpu: 1, lossWebgpu: 1, gradErr: Math.max(...errs), hessianErr: 0, counts: [0] };
}

/**
 * Strided, padded and dilated convolutions and pools as the ops use them (webgpu: the kernels' own
 * padding, dilated depthwise convolutions and the average pool's gradient in programs of our own;
 * cpu: explicit pads, space-to-batch and subsampling): y and the gradients of x and w.
 */
async function stridedOps() {
  type Case = { name: string; x: number[]; w?: number[]; f: (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D };
  const cases: Case[] = [
    { name: 'dw 3x3 dilation 2', x: [2, 9, 9, 4], w: [3, 3, 4, 1], f: (x, w) => depthwiseConv2d(x, w, { padding: 2, dilation: 2 }) },
    { name: 'dw 5x5 dilation 2', x: [2, 8, 8, 3], w: [5, 5, 3, 1], f: (x, w) => depthwiseConv2d(x, w, { padding: 4, dilation: 2 }) },
    { name: 'dw 3x3 dilation 3', x: [3, 16, 16, 4], w: [3, 3, 4, 1], f: (x, w) => depthwiseConv2d(x, w, { padding: 3, dilation: 3 }) },
    { name: 'dw 3x3 stride 2 dilation 2', x: [2, 9, 9, 4], w: [3, 3, 4, 1], f: (x, w) => depthwiseConv2d(x, w, { stride: 2, padding: 2, dilation: 2 }) },
    { name: 'dw 5x5 stride 2 dilation 2', x: [2, 8, 8, 4], w: [5, 5, 4, 1], f: (x, w) => depthwiseConv2d(x, w, { stride: 2, padding: 4, dilation: 2 }) },
    { name: 'dw 3x3 stride 2', x: [2, 9, 9, 4], w: [3, 3, 4, 1], f: (x, w) => depthwiseConv2d(x, w, { stride: 2, padding: 1 }) },
    { name: 'conv 3x3 stride 2', x: [2, 8, 8, 3], w: [3, 3, 3, 5], f: (x, w) => conv2d(x, w, { stride: 2, padding: 1 }) },
    { name: 'max pool stride 2', x: [2, 9, 9, 4], f: (x) => maxPool2d(x, 3, 2, 1) },
    { name: 'avg pool stride 2', x: [2, 9, 9, 4], f: (x) => avgPool2d(x, 3, 2, 1, false) },
    { name: 'avg pool stride 1', x: [2, 8, 8, 4], f: (x) => avgPool2d(x, 3, 1, 1, false) },
  ];
  const one = async (c: Case) => {
    const pass = async () => {
      const x = randomTensor(c.x, 70) as tf.Tensor4D, w = randomTensor(c.w ?? [1], 71) as tf.Tensor4D;
      const y = c.f(x, w), r = randomTensor(y.shape, 72);
      const loss = (xx: tf.Tensor, ww: tf.Tensor = w) => tf.sum(tf.mul(c.f(xx as tf.Tensor4D, ww as tf.Tensor4D), r)) as tf.Scalar;
      const grads = c.w ? tf.grads(loss)([x, w]) : [tf.grad(loss)(x)];
      const data = await Promise.all([y, ...grads].map(async (t) => await t.data() as Float32Array));
      tf.dispose([x, w, y, r, ...grads]);
      return data;
    };
    return onBoth(pass);
  };
  const errs: string[] = [];
  let worst = 0;
  for (const c of cases) {
    const e = await one(c);
    worst = Math.max(worst, e);
    if (!(e < 1e-4)) errs.push(`${c.name}: ${e}`);
  }
  if (errs.length) console.error(`strided ops: ${errs.join('; ')}`);
  return { space: 'strided, padded and dilated convolutions and pools (y, dx, dw)', lossCpu: 1, lossWebgpu: 1, gradErr: worst, hessianErr: 0, counts: [0] };
}

/**
 * SGD (webgpu: several variables per launch, buffers per variable) against cpu: weights and momentum
 * buffers after three steps, with clipping, weight decay and a step where one variable has no
 * gradient; and one step after restoring the cpu optimiser's state (stacked buffers) into a new one.
 */
async function sgdParity() {
  const shapes = [[3, 3, 4, 1], [1, 1, 4, 4], [4], [10], [3, 3, 4, 1], [7, 5], [2]];
  let uid = 0;
  const run = async (backend: string, o: SgdOptions, from?: OptimizerState) => {
    await tf.setBackend(backend);
    const vars = shapes.map((sh, i) => tf.variable(randomTensor(sh, 60 + i), true, `sgd_parity_${uid++}`));
    const sgd = new Sgd(vars, o);
    if (from) await sgd.restore(from);
    for (let step = 0; step < (from ? 1 : 3); step++) {
      tf.tidy(() => sgd.apply(Object.fromEntries(vars.flatMap((v, i) => (step === 1 && i === 2 ? [] : [[v.name, randomTensor(v.shape, 100 * step + i)]])))));
    }
    const state = await sgd.state();
    const data = await Promise.all([...vars, ...state.map((x) => x.tensor)].map(async (t) => await t.data() as Float32Array));
    const kept = from ? null : await Promise.all(state.map(async (x) => ({ name: x.name, data: await x.tensor.data(), shape: x.tensor.shape })));
    tf.dispose([...vars, ...state.map((x) => x.tensor)]);
    sgd.dispose();
    return { data, kept };
  };
  const errs = [];
  for (const o of [{ lr: 0.1, momentum: 0.9, weightDecay: 1e-2, clipNorm: 0.5 }, { lr: 0.05 }]) {
    const a = await run('cpu', o), b = await run('webgpu', o);
    errs.push(relErrs(a.data, b.data));
    // restoring (by position: the new variables have new names), the state made on each backend from the cpu run's values
    const restored = async (backend: string) => {
      await tf.setBackend(backend);
      const state = a.kept!.map((k) => ({ name: k.name, tensor: tf.tensor(k.data, k.shape) }));
      try { return (await run(backend, o, state)).data; } finally { tf.dispose(state.map((x) => x.tensor)); }
    };
    errs.push(relErrs(await restored('cpu'), await restored('webgpu')));
  }
  return { space: 'SGD (weights and momentum buffers; clipping, weight decay, a missing gradient, a restored state)', lossCpu: 1, lossWebgpu: 1, gradErr: Math.max(...errs), hessianErr: 0, counts: [0] };
}

const results = [];
for (const space of [{ ...DARTS_SPACE, C: 4, layers: 3 }, { ...BAYESNAS_SPACE, C: 4, layers: 3, gate: 'input' as const }]) results.push(await compare(space));
results.push(await dartsAlpha(), await weightedSums(), await filterGrads(), await stridedOps(), await sgdParity(), await batchNorms(), await evalnet(), await lenet());
console.log(JSON.stringify({ engine: describeEngine(engine), adapter: engine.adapter, results }));
