import test from 'ava';
import { initEngine, tf } from '../src/engine/index.js';
import { Sgd } from '../src/engine/sgd.js';

await initEngine({ quiet: true });

/** PyTorch's SGD (momentum, coupled weight decay, buffer = g at the first step) after clip_grad_norm_, on plain arrays. */
function reference(ws: number[][], gradsPerStep: Array<Array<number[] | null>>, o: { lr: number; m: number; wd: number; clip?: number }) {
  const w = ws.map((a) => [...a]);
  const buf: Array<number[] | null> = ws.map(() => null);
  for (const gs of gradsPerStep) {
    let scale = 1;
    if (o.clip) {
      const norm = Math.sqrt(gs.reduce((a, g) => a + (g ? g.reduce((b, x) => b + x * x, 0) : 0), 0));
      scale = Math.min(1, o.clip / (norm + 1e-6));
    }
    gs.forEach((g, i) => {
      if (!g) return;
      const d = g.map((x, j) => x * scale + o.wd * w[i][j]);
      buf[i] = buf[i] ? buf[i]!.map((b, j) => o.m * b + d[j]) : d;
      w[i] = w[i].map((x, j) => x - o.lr * buf[i]![j]);
    });
  }
  return w;
}

test.serial('Sgd = PyTorch SGD (momentum, weight decay, clipping), with shape groups and parameters left without a gradient', async (t) => {
  const shapes = [[2, 3], [2, 3], [4], [2, 3], [4], [1]];
  let seed = 1;
  const rnd = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647 - 0.5; };
  const init = shapes.map((s) => Array.from({ length: s.reduce((a, b) => a * b, 1) }, rnd));
  const vars = init.map((a, i) => tf.variable(tf.tensor(a, shapes[i]), true, `sgdtest${i}`));
  const steps = Array.from({ length: 4 }, (_, k) => init.map((a, i) => ((k === 2 && i === 1) || (k === 1 && i === 4) ? null : a.map(() => 3 * rnd()))));
  const o = { lr: 0.1, m: 0.9, wd: 0.01, clip: 2 };
  const sgd = new Sgd(vars, { lr: o.lr, momentum: o.m, weightDecay: o.wd, clipNorm: o.clip });
  for (const gs of steps) {
    tf.tidy(() => {
      const map: tf.NamedTensorMap = {};
      gs.forEach((g, i) => { if (g) map[vars[i].name] = tf.tensor(g, shapes[i]); });
      sgd.apply(map);
    });
  }
  const want = reference(init, steps, o);
  vars.forEach((v, i) => {
    const got = v.dataSync();
    const err = Math.max(...want[i].map((x, j) => Math.abs(x - got[j])));
    t.true(err < 1e-6, `variable ${i}: max error ${err}`);
  });
  // momentum state round trip: a fresh optimiser restored from state() continues identically
  const state = await sgd.state();
  t.is(state.length, vars.length);
  t.deepEqual(state.map((s) => s.name).sort(), vars.map((v) => `${v.name}/momentum`).sort());
  for (const s of state) t.deepEqual(s.tensor.shape, vars.find((v) => s.name === `${v.name}/momentum`)!.shape);
  const copy = vars.map((v, i) => tf.variable(v.clone(), true, `sgdcopy${i}`));
  const sgd2 = new Sgd(copy, { lr: o.lr, momentum: o.m, weightDecay: o.wd, clipNorm: o.clip });
  // other variable names (a rebuilt network): restored by position
  await sgd2.restore(state.map((s) => ({ name: s.name.replace('sgdtest', 'othername'), tensor: s.tensor })));
  const g = init.map((a) => a.map(() => rnd()));
  tf.tidy(() => sgd.apply(Object.fromEntries(vars.map((v, i) => [v.name, tf.tensor(g[i], shapes[i])]))));
  tf.tidy(() => sgd2.apply(Object.fromEntries(copy.map((v, i) => [v.name, tf.tensor(g[i], shapes[i])]))));
  vars.forEach((v, i) => t.deepEqual(Array.from(copy[i].dataSync()), Array.from(v.dataSync())));
  // the tensor count stays constant across steps
  const before = tf.memory().numTensors;
  for (let k = 0; k < 3; k++) tf.tidy(() => sgd.apply(Object.fromEntries(vars.map((v, i) => [v.name, tf.tensor(g[i], shapes[i])]))));
  t.is(tf.memory().numTensors, before);
  sgd.dispose(); sgd2.dispose();
  tf.dispose([...vars, ...copy, ...state.map((s) => s.tensor)]);
});
