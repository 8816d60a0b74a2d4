import { initEngine, tf } from '/work/main/src/engine/index.js';
import { buildSlice } from '/work/main/src/space/slice.js';
const info = await initEngine();
console.log(info.backend, info.tensorflowVersion);
const net = buildSlice();
console.log('params', net.params.count());
const x = tf.randomNormal([32, 32, 32, 3]) as tf.Tensor4D;
const y = tf.oneHot(tf.tensor1d(Array.from({length: 32}, (_, i) => i % 10), 'int32'), 10);
const opt = tf.train.momentum(0.05, 0.9);
const vars = net.params.variables();
const times: number[] = [];
for (let i = 0; i < 15; i++) {
  const t0 = performance.now();
  tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, net.forward(x)) as tf.Scalar, vars);
    opt.applyGradients(grads);
    value.dataSync();
  });
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
console.log('median', times[7].toFixed(1), 'tensors', tf.memory().numTensors);
const prof = await tf.profile(() => tf.tidy(() => {
  const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, net.forward(x)) as tf.Scalar, vars);
  opt.applyGradients(grads);
  value.dataSync();
}));
const agg = new Map<string, [number, number]>();
for (const k of prof.kernels) { const a = agg.get(k.name) ?? [0, 0]; a[0] += k.kernelTimeMs as number; a[1]++; agg.set(k.name, a); }
console.log([...agg].sort((a, b) => b[1][0] - a[1][0]).slice(0, 25).map(([n, [ms, c]]) => `${n} ${ms.toFixed(1)}ms x${c}`).join('\n'));
console.log('total', [...agg.values()].reduce((s, a) => s + a[0], 0).toFixed(1), 'kernels', prof.kernels.length);
