// Run with BAYESNAS_BACKEND=webgpu (and the launch environment): the same supernet computations on the
// cpu backend and on webgpu, printed as one JSON line for test/webgpu.test.ts.
import { describeEngine, initEngine, tf } from '../../src/engine/index.js';
import { Sgd } from '../../src/engine/sgd.js';
import { switchHessian } from '../../src/hessian/index.js';
import { BAYESNAS_SPACE, DARTS_SPACE, type SpaceSpec } from '../../src/space/spaces.js';
import { buildSupernet } from '../../src/space/supernet.js';
import { randomTensor } from './numeric.js';

const engine = await initEngine({ quiet: true });

/** max |a − b| of each tensor over its own scale, floored at 1% of the largest value of all (exact zeros stay comparable) */
function relErrs(a: Float32Array[], b: Float32Array[]): number {
  const max = (v: Float32Array) => v.reduce((m, q) => Math.max(m, Math.abs(q)), 0);
  const top = Math.max(...a.map(max));
  return Math.max(...a.map((v, i) => v.reduce((m, q, j) => Math.max(m, Math.abs(q - b[i][j])), 0) / Math.max(max(v), 1e-2 * top)));
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

const results = [];
for (const space of [{ ...DARTS_SPACE, C: 4, layers: 3 }, { ...BAYESNAS_SPACE, C: 4, layers: 3, gate: 'input' as const }]) results.push(await compare(space));
console.log(JSON.stringify({ engine: describeEngine(engine), adapter: engine.adapter, results }));
