import test from 'ava';
import { execa } from 'execa';
import { initEngine, nativeBindingPath, parseTfjsFlags, tf } from '../src/engine/index.js';
import * as ops from '../src/engine/ops.js';
import { fdCheck, randomTensor, relErr } from './helpers/numeric.js';
import { convRef, poolRef, type Arr4 } from './helpers/reference.js';

// Backend switching is process-global: every test here runs serially.
const info = await initEngine({ quiet: true });
const backends = info.backend === 'tensorflow' ? ['cpu', 'tensorflow'] : ['cpu'];
const arr4 = (t: tf.Tensor): Arr4 => ({ data: t.dataSync() as Float32Array, shape: t.shape as Arr4['shape'] });
const proj = (y: tf.Tensor, seed: number) => tf.tidy(() => tf.sum(tf.mul(y, randomTensor(y.shape, seed))) as tf.Scalar);

test.serial('native TensorFlow engine is selected where it was built', (t) => {
  if (process.env.BAYESNAS_BACKEND === 'cpu') return t.is(info.backend, 'cpu');
  t.truthy(nativeBindingPath('@tensorflow/tfjs-node'), 'npm install must build the tfjs-node addon');
  t.is(info.backend, 'tensorflow');
  t.regex(info.tensorflowVersion ?? '', /^2\.\d+/);
  t.false(info.degraded);
});

test.serial('a command line with -C-like flags does not derail the native addon lookup', async (t) => {
  if (info.backend !== 'tensorflow') return t.pass('native engine not built');
  const r = await execa('node', ['--import=tsx', 'test/helpers/print-backend.ts', '--C', '8', '--layers', '3']);
  t.is(JSON.parse(r.stdout).backend, 'tensorflow');
});

test.serial('BAYESNAS_BACKEND=cpu has every tfjs gradient (tfjs-core registers none of its own in Node)', async (t) => {
  const code = "import('./src/engine/index.ts').then(async ({ initEngine, tf }) => { const e = await initEngine({ quiet: true }); "
    + "const g = tf.grad((v) => tf.sum(tf.div(v, tf.add(v, 1))))(tf.tensor([1, 2, 3])); console.log(JSON.stringify({ backend: e.backend, g: Array.from(await g.data()) })); })";
  const r = await execa('node', ['--import=tsx', '-e', code], { env: { BAYESNAS_BACKEND: 'cpu' }, reject: false });
  t.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.is(out.backend, 'cpu');
  [1 / 4, 1 / 9, 1 / 16].forEach((want, i) => t.true(Math.abs(out.g[i] - want) < 1e-6, `d/dv v/(v+1) at ${i + 1}: ${out.g[i]}`));
});

test.serial('BAYESNAS_TFJS_FLAGS: parsed into numbers, booleans and text; an unknown flag is an error naming it', async (t) => {
  t.deepEqual(parseTfjsFlags(' A_B=64, C=true,D=false ,E=x1'), { A_B: 64, C: true, D: false, E: 'x1' });
  t.throws(() => parseTfjsFlags('lower=1'), { message: /'lower=1' is not NAME=value/ });
  const r = await execa('node', ['--import=tsx', 'test/helpers/print-backend.ts'], { env: { BAYESNAS_TFJS_FLAGS: 'NO_SUCH_FLAG=1' }, reject: false });
  t.not(r.exitCode, 0);
  t.regex(r.stderr, /BAYESNAS_TFJS_FLAGS: NO_SUCH_FLAG: Cannot set flag NO_SUCH_FLAG/);
  const ok = await execa('node', ['--import=tsx', 'test/helpers/print-backend.ts'], { env: { BAYESNAS_TFJS_FLAGS: 'IS_TEST=true' } });
  t.deepEqual(JSON.parse(ok.stdout).flags, { IS_TEST: true });
});

test.serial('an unknown BAYESNAS_BACKEND is a clear error', async (t) => {
  const r = await execa('node', ['--import=tsx', '-e', "import('./src/engine/index.ts').then(m => m.initEngine()).catch(e => { console.error(e.message); process.exit(3); })"],
    { env: { BAYESNAS_BACKEND: 'tpu' }, reject: false });
  t.is(r.exitCode, 3);
  t.regex(r.stderr, /BAYESNAS_BACKEND=tpu is not a backend/);
});

for (const backend of backends) {
  for (const depthwise of [false, true]) {
    for (const [k, stride, pad, dil] of [[3, 1, 2, 2], [5, 1, 4, 2], [3, 2, 2, 2], [5, 2, 4, 2], [3, 2, 1, 1], [3, 1, 1, 1], [1, 2, 0, 1]]) {
      test.serial(`${backend}: ${depthwise ? 'depthwise' : 'full'} conv k${k} s${stride} p${pad} d${dil}: forward = direct loops, gradients = finite differences`, async (t) => {
        await tf.setBackend(backend);
        const Ci = 3, Co = depthwise ? 3 : 4;
        const x = randomTensor([2, 9, 8, Ci], 1) as tf.Tensor4D;
        const w = randomTensor([k, k, Ci, depthwise ? 1 : Co], 2) as tf.Tensor4D;
        const f = (xx: tf.Tensor4D, ww: tf.Tensor4D) => (depthwise ? ops.depthwiseConv2d : ops.conv2d)(xx, ww, { stride, padding: pad, dilation: dil });
        const y = f(x, w);
        const ref = convRef(arr4(x), arr4(w), stride, pad, dil, depthwise);
        t.deepEqual(y.shape, ref.shape);
        t.true(relErr(y.dataSync(), ref.data) < 1e-5, 'forward');
        const loss = (xx: tf.Tensor4D, ww: tf.Tensor4D) => proj(f(xx, ww), 3);
        const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => loss(a as tf.Tensor4D, b as tf.Tensor4D))([x, w]);
        // the loss is linear in x and in w, so unit-step central differences are exact up to rounding
        t.true(fdCheck((xx) => loss(xx as tf.Tensor4D, w), x, gx, 16, 1).err < 1e-4, 'dL/dx');
        t.true(fdCheck((ww) => loss(x, ww as tf.Tensor4D), w, gw, 16, 1).err < 1e-4, 'dL/dw');
        tf.dispose([x, w, y, gx, gw]);
      });
    }
  }

  test.serial(`${backend}: tf.conv2d / tf.depthwiseConv2d with dilation have gradients (stock tfjs throws)`, async (t) => {
    await tf.setBackend(backend);
    const x = randomTensor([1, 7, 7, 2], 4) as tf.Tensor4D;
    // TensorFlow's CPU depthwise kernel has no dilated forward at all: there, use ops.depthwiseConv2d
    const cases = [[randomTensor([3, 3, 2, 3], 5), tf.conv2d], [randomTensor([3, 3, 2, 1], 6), tf.depthwiseConv2d]] as const;
    for (const [w, fn] of backend === 'tensorflow' ? cases.slice(0, 1) : cases) {
      const loss = (xx: tf.Tensor, ww: tf.Tensor) => proj((fn as typeof tf.conv2d)(xx as tf.Tensor4D, ww as tf.Tensor4D, 1, 'same', 'NHWC', 2), 7);
      const [gx, gw] = tf.grads(loss)([x, w]);
      t.true(fdCheck((xx) => loss(xx, w), x, gx, 12, 1).err < 1e-4);
      t.true(fdCheck((ww) => loss(x, ww), w, gw, 12, 1).err < 1e-4);
    }
  });

  test.serial(`${backend}: stridedSlice has a gradient (strides, masks, shrink axis)`, async (t) => {
    await tf.setBackend(backend);
    const x = randomTensor([2, 7, 6, 3], 8);
    const cases: Array<(v: tf.Tensor) => tf.Tensor> = [
      (v) => tf.stridedSlice(v, [0, 1, 0, 0], [2, 7, 6, 3], [1, 2, 2, 1]),
      (v) => tf.stridedSlice(v, [0, -5, 1, 0], [1, 0, 5, 2], [1, 3, 1, 1], 0, 2),
      (v) => tf.stridedSlice(v, [1, 1, 0, 0], [2, 7, 6, 3], [1, 1, 1, 1], 0, 0, 0, 0, 1),  // (the cpu forward itself breaks on shrink + stride)
    ];
    for (const [i, c] of cases.entries()) {
      const loss = (v: tf.Tensor) => proj(c(v), 20 + i);
      const g = tf.grad(loss)(x);
      t.deepEqual(g.shape, x.shape);
      t.true(fdCheck(loss, x, g, 40, 1).err < 1e-5, `case ${i}`);
    }
  });

  test.serial(`${backend}: avgPool with 'same' padding has the exact gradient`, async (t) => {
    await tf.setBackend(backend);
    const x = randomTensor([2, 6, 7, 2], 9) as tf.Tensor4D;
    for (const s of [1, 2]) {
      const loss = (v: tf.Tensor) => proj(tf.avgPool(v as tf.Tensor4D, 3, s, 'same'), 30 + s);
      const g = tf.grad(loss)(x);
      t.true(fdCheck(loss, x, g, 40, 1).err < 1e-5, `stride ${s}`);
    }
  });

  test.serial(`${backend}: pooling with PyTorch padding semantics`, async (t) => {
    await tf.setBackend(backend);
    const x = randomTensor([2, 8, 7, 3], 10) as tf.Tensor4D;
    for (const s of [1, 2]) {
      t.true(relErr(ops.maxPool2d(x, 3, s, 1).dataSync(), poolRef(arr4(x), 3, s, 1, 'max').data) < 1e-6, `max s${s}`);
      t.true(relErr(ops.maxPool2d(x, 3, s, 1, 0).dataSync(), poolRef(arr4(x), 3, s, 1, 'max', { padValue: 0 }).data) < 1e-6, `max zero-pad s${s}`);
      t.true(relErr(ops.avgPool2d(x, 3, s, 1, false).dataSync(), poolRef(arr4(x), 3, s, 1, 'avg').data) < 1e-6, `avg s${s}`);
      t.true(relErr(ops.avgPool2d(x, 3, s, 1, true).dataSync(), poolRef(arr4(x), 3, s, 1, 'avg', { countIncludePad: true }).data) < 1e-6, `avg incl s${s}`);
      const loss = (v: tf.Tensor) => proj(ops.avgPool2d(v as tf.Tensor4D, 3, s, 1, false), 40 + s);
      t.true(fdCheck(loss, x, tf.grad(loss)(x), 30, 1).err < 1e-5, `avg grad s${s}`);
    }
  });

  test.serial(`${backend}: batch norm (training mode) forward and gradients against finite differences`, async (t) => {
    await tf.setBackend(backend);
    const x = randomTensor([4, 3, 3, 2], 11, 2) as tf.Tensor4D;
    const g = randomTensor([2], 12) as tf.Tensor1D, b = randomTensor([2], 13) as tf.Tensor1D;
    const { y, mean, variance } = ops.batchNorm(x, g, b);
    const m = tf.moments(x, [0, 1, 2]);
    t.true(relErr(mean.dataSync(), m.mean.dataSync()) < 1e-5);
    t.true(relErr(variance.dataSync(), m.variance.dataSync()) < 1e-4, 'biased batch variance');
    const yRef = tf.add(tf.mul(tf.div(tf.sub(x, m.mean), tf.sqrt(tf.add(m.variance, 1e-5))), g), b);
    t.true(relErr(y.dataSync(), yRef.dataSync()) < 1e-5);
    const loss = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.square(tf.mul(ops.batchNorm(xx, gg as tf.Tensor1D, bb as tf.Tensor1D).y, randomTensor(x.shape, 14)))) as tf.Scalar;
    const [gx, gg, gb] = tf.grads(loss)([x, g, b]);
    t.true(fdCheck((v) => loss(v, g, b), x, gx, 12, 1e-2).err < 2e-2, 'dx');
    t.true(fdCheck((v) => loss(x, v, b), g, gg, 2, 1e-2).err < 2e-2, 'dgamma');
    t.true(fdCheck((v) => loss(x, g, v), b, gb, 2, 1e-2).err < 2e-2, 'dbeta');
    // running statistics updated PyTorch's way (unbiased batch variance), in the same kernel on tensorflow
    const rm = randomTensor([2], 15) as tf.Tensor1D, rv = tf.abs(randomTensor([2], 16)) as tf.Tensor1D;
    const r = ops.batchNorm(x, g, b, 1e-5, { mean: rm, variance: rv, momentum: 0.1 });
    const n = x.size / 2;
    t.true(relErr(r.y.dataSync(), yRef.dataSync()) < 1e-5, 'y with running statistics given');
    t.true(relErr(r.mean.dataSync(), m.mean.dataSync()) < 1e-5 && relErr(r.variance.dataSync(), m.variance.dataSync()) < 1e-4, 'batch statistics with running statistics given');
    t.true(relErr(r.runningMean!.dataSync(), tf.add(tf.mul(rm, 0.9), tf.mul(m.mean, 0.1)).dataSync()) < 1e-5, 'running mean');
    t.true(relErr(r.runningVar!.dataSync(), tf.add(tf.mul(rv, 0.9), tf.mul(m.variance, 0.1 * n / (n - 1))).dataSync()) < 1e-4, 'running variance');
    // affine=false variant (stock tf.batchNorm without scale/offset breaks under the tape)
    const gx2 = tf.grad((v: tf.Tensor) => tf.sum(tf.square(ops.batchNorm(v).y)) as tf.Scalar)(x);
    t.true(gx2.dataSync().every(Number.isFinite));
  });

  test.serial(`${backend}: relu gradient`, async (t) => {
    await tf.setBackend(backend);
    const x = randomTensor([3, 5], 15);
    const g = tf.grad((v: tf.Tensor) => proj(tf.relu(v), 16))(x);
    const r = randomTensor([3, 5], 16).dataSync(), xv = x.dataSync();
    t.deepEqual(Array.from(g.dataSync(), (v) => v + 0), Array.from(r, (v, i) => (xv[i] > 0 ? v : 0)));
  });
}

test.serial('tensorflow and cpu backends agree on a composite block (loss and gradients to 1e-4)', async (t) => {
  if (backends.length < 2) return t.pass('only the cpu backend is available');
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const x = randomTensor([4, 8, 8, 4], 17) as tf.Tensor4D;
    const w1 = randomTensor([3, 3, 4, 1], 18) as tf.Tensor4D, w2 = randomTensor([1, 1, 4, 4], 19, 0.5) as tf.Tensor4D;
    const wd = randomTensor([5, 5, 4, 1], 20) as tf.Tensor4D;
    const loss = (xx: tf.Tensor, a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.tidy(() => {
      let h = ops.batchNorm(ops.conv2d(ops.depthwiseConv2d(tf.relu(xx as tf.Tensor4D), a as tf.Tensor4D, { stride: 2, padding: 1 }), b as tf.Tensor4D)).y as tf.Tensor4D;
      h = tf.add(h, ops.depthwiseConv2d(tf.relu(h), c as tf.Tensor4D, { padding: 4, dilation: 2 })) as tf.Tensor4D;
      h = tf.add(ops.maxPool2d(h, 3, 1, 1), ops.avgPool2d(h, 3, 1, 1, false)) as tf.Tensor4D;
      return tf.losses.softmaxCrossEntropy(tf.oneHot([1, 2, 3, 0], 4), tf.mean(h, [1, 2])) as tf.Scalar;
    });
    const { value, grads } = tf.valueAndGrads(loss)([x, w1, w2, wd]);
    return { loss: value.dataSync()[0], grads: grads.map((g) => g.dataSync()) };
  };
  const a = await run('cpu');
  const b = await run('tensorflow');
  t.true(Math.abs(a.loss - b.loss) / Math.abs(a.loss) < 1e-4, `loss ${a.loss} vs ${b.loss}`);
  a.grads.forEach((g, i) => t.true(relErr(b.grads[i], g) < 1e-4, `grad ${i}: ${relErr(b.grads[i], g)}`));
});

test.serial('tensorflow: the max-pool gradient (argmax scatter) equals TensorFlow MaxPoolGrad, ties included', async (t) => {
  if (info.backend !== 'tensorflow') return t.pass('native engine not built');
  await tf.setBackend('tensorflow');
  // rounded values: many windows hold their maximum more than once
  const x = tf.round(randomTensor([3, 9, 8, 4], 50, 2)) as tf.Tensor4D;
  for (const s of [1, 2]) {
    for (const pad of ['same', 'valid'] as const) {
      const y = tf.maxPool(x, 3, s, pad);
      const dy = randomTensor(y.shape, 51 + s);
      const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, 3, s, pad), dy)) as tf.Scalar)(x);
      const ref = tf.engine().runKernel('MaxPoolGrad', { dy, input: x, output: y }, { filterSize: 3, strides: s, pad }) as tf.Tensor;
      t.deepEqual(Array.from(g.dataSync()), Array.from(ref.dataSync()), `s${s} ${pad}`);
    }
  }
  const gp = tf.grad((v: tf.Tensor) => proj(ops.maxPool2d(v as tf.Tensor4D, 3, 2, 1), 55))(x);
  t.true(gp.dataSync().every(Number.isFinite), 'explicit -inf padding');
});

test.serial('tensorflow: depthwise filter gradients on the oneDNN and the Eigen path agree with the cpu backend', async (t) => {
  if (backends.length < 2) return t.pass('only the cpu backend is available');
  // 3x3 with a large output takes the oneDNN kernel, the others TensorFlow's Eigen kernel
  for (const [k, stride, pad] of [[3, 1, 1], [5, 1, 2], [3, 2, 1]]) {
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const x = randomTensor([8, 32, 32, 16], 60) as tf.Tensor4D, w = randomTensor([k, k, 16, 1], 61) as tf.Tensor4D;
      const gw = tf.grad((ww: tf.Tensor) => proj(ops.depthwiseConv2d(x, ww as tf.Tensor4D, { stride, padding: pad }), 62))(w);
      return gw.dataSync();
    };
    const a = await run('cpu');
    const b = await run('tensorflow');
    t.true(relErr(b, a) < 1e-4, `k${k} s${stride}: ${relErr(b, a)}`);
  }
});

test.serial('the default engine is deterministic: supernet gradients repeat bit for bit (max-pool scatter, stride-2 1x1 convolutions, batch norms)', async (t) => {
  const { buildSupernet } = await import('../src/space/supernet.js');
  const { DARTS_SPACE } = await import('../src/space/spaces.js');
  t.false(info.onednn ?? false, 'oneDNN stays off unless BAYESNAS_ONEDNN=1');
  // C=3 puts FactorizedReduce's stride-2 1x1 convolutions on the few channels where oneDNN's filter
  // gradient changed from call to call; 3x3 stride-1 max pools share maxima between windows
  for (const C of [3, 8]) {
    const net = buildSupernet({ ...DARTS_SPACE, C, layers: 3 }, { inChannels: 1, seed: 1 });
    const x = randomTensor([16, 16, 16, 1], 3) as tf.Tensor4D;
    const y = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 10), 'int32');
    const vars = net.params.variables();
    const run = () => tf.tidy(() => {
      const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(tf.oneHot(y, 10), net.forward(x, { training: true })) as tf.Scalar, vars);
      return vars.map((v) => Array.from(grads[v.name].dataSync()));
    });
    const first = run();
    for (let r = 0; r < 3; r++) {
      const again = run();
      const differ = vars.filter((_, i) => again[i].some((v, k) => v !== first[i][k])).map((v) => v.name);
      t.deepEqual(differ, [], `C=${C}, repeat ${r + 1}`);
    }
    net.dispose();
    tf.dispose([x, y]);
  }
});
