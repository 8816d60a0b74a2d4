import test from 'ava';
import { initEngine, tf } from '../src/engine/index.js';
import { AUX_PREFIX, buildEvalNet, dropPath, reductionIndices } from '../src/evalnet/network.js';
import { evalOpParamCount } from '../src/evalnet/ops.js';
import { evalNetParity, exportPythonInit, pythonParamCount } from '../src/evalnet/parity.js';
import { PUBLISHED } from '../src/genotype/published.js';
import type { Genotype } from '../src/genotype/types.js';
import { closePython, exchangeDir } from '../src/bridge/session.js';
import { main } from '../src/cli/main.js';
import { randomTensor } from './helpers/numeric.js';

await initEngine({ quiet: true });
test.after.always(() => closePython());

const G = (name: string): Genotype => PUBLISHED[name].genotype;

test('DARTS_V2 at 20 cells and 36 channels has 3,349,342 parameters without the auxiliary head (the paper\'s 3.3M), 3,825,768 with it', (t) => {
  const net = buildEvalNet({ genotype: G('DARTS_V2'), C: 36, layers: 20, auxiliary: true });
  t.deepEqual(net.count(), { params: 3_349_342, auxiliary: 476_426 });
  net.dispose();
});

test('the official BayesNAS evaluation network (style bayesnas) has the counts of spec §7.2 for the published BayesNAS cells', (t) => {
  const expected: Record<string, [number, number]> = {
    BAYESNAS_LAMBDA_0_01: [2_575_702, 4_008_928], BAYESNAS_LAMBDA_0_007: [3_197_350, 4_709_920], BAYESNAS_LAMBDA_0_005: [2_512_198, 3_901_216],
  };
  for (const [name, [cifar, imagenet]] of Object.entries(expected)) {
    const a = buildEvalNet({ genotype: G(name), C: 36, layers: 20, style: 'bayesnas' });
    const b = buildEvalNet({ genotype: G(name), C: 48, layers: 14, kind: 'imagenet', classes: 1000, style: 'bayesnas' });
    t.is(a.count().params, cifar, name);
    t.is(b.count().params, imagenet, name);
    a.dispose();
    b.dispose();
  }
});

test('structure: reductions at L/3 and 2L/3 double the channels; stride 2 only on ops reading the cell inputs; pools carry no parameters', (t) => {
  const net = buildEvalNet({ genotype: G('DARTS_V2'), C: 8, layers: 8 });
  t.deepEqual(reductionIndices(8), [2, 5]);
  t.deepEqual(net.cells.map((c) => c.reduction), [false, false, true, false, false, true, false, false]);
  t.deepEqual(net.cells.map((c) => c.C), [8, 8, 16, 16, 16, 32, 32, 32]);
  const red = net.cells[2];
  t.deepEqual(red.nodes.flat().map((o) => [o.op, o.input, o.stride]), [
    ['max_pool_3x3', 0, 2], ['max_pool_3x3', 1, 2], ['skip_connect', 2, 1], ['max_pool_3x3', 1, 2],
    ['max_pool_3x3', 0, 2], ['skip_connect', 2, 1], ['skip_connect', 2, 1], ['max_pool_3x3', 1, 2],
  ]);
  t.true(red.nodes.flat().every((o) => o.seq.params === 0));
  // the cell after a reduction reduces c_{k-2} with a FactorizedReduce
  t.is(net.cells[3].preprocess0.layers[0].spec.kind, 'factorized_reduce');
  t.is(net.cells[2].preprocess0.layers[0].spec.kind, 'relu');
  // every op's parameters equal the closed form
  for (const c of net.cells) for (const o of c.nodes.flat()) t.is(o.seq.params, evalOpParamCount(o.op, c.C, o.stride), `${o.op} C=${c.C}`);
  net.dispose();
});

test('a BayesNAS cell (several ops per node, one input per node) builds with every entry summed', (t) => {
  const net = buildEvalNet({ genotype: G('BAYESNAS_LAMBDA_0_01'), C: 4, layers: 3, inChannels: 1, auxiliary: true });
  t.deepEqual(net.cells[0].nodes.map((n) => n.length), [5, 2, 2, 1]);
  const { logits, logitsAux } = tf.tidy(() => {
    const r = net.forward(randomTensor([2, 28, 28, 1], 3) as tf.Tensor4D, { training: true });
    return { logits: tf.keep(r.logits), logitsAux: tf.keep(r.logitsAux!) };
  });
  t.deepEqual(logits.shape, [2, 10]);
  t.deepEqual(logitsAux.shape, [2, 10]);
  t.true(Array.from(logits.dataSync()).every(Number.isFinite));
  // evaluation mode: no auxiliary logits
  t.true(tf.tidy(() => net.forward(randomTensor([2, 28, 28, 1], 3) as tf.Tensor4D, { training: false }).logitsAux === null));
  tf.dispose([logits, logitsAux]);
  net.dispose();
});

test('parameter counts equal the PyTorch reference for every published genotype, CIFAR (20 cells, 36 ch) and ImageNet (14 cells, 48 ch)', async (t) => {
  for (const [name, p] of Object.entries(PUBLISHED)) {
    for (const o of [{ kind: 'cifar' as const, C: 36, layers: 20 }, { kind: 'imagenet' as const, C: 48, layers: 14 }, { kind: 'cifar' as const, C: 16, layers: 8, inChannels: 1 }]) {
      const net = buildEvalNet({ genotype: p.genotype, ...o, auxiliary: true });
      const c = net.count();
      net.dispose();
      const py = await pythonParamCount(p.genotype, o);
      t.deepEqual({ params: c.params, paramsAuxiliary: c.params + c.auxiliary }, py, `${name} ${JSON.stringify(o)}`);
    }
  }
});

test('drop-path keeps or zeroes whole samples, scaled by 1/keep; identities are exempt; off in evaluation', (t) => {
  const x = tf.ones([6, 2, 2, 3]) as tf.Tensor4D;
  const u = [0.1, 0.9, 0.5, 0.74, 0.76, 0.0];
  let i = 0;
  const y = dropPath(x, 0.25, () => u[i++]);
  const per = tf.unstack(tf.reshape(y, [6, -1])).map((r) => Array.from(new Set(r.dataSync())));
  const k = Math.fround(4 / 3);
  t.deepEqual(per, [[k], [0], [k], [k], [0], [k]]);
  const net = buildEvalNet({ genotype: G('DARTS_V2'), C: 4, layers: 3 });
  t.deepEqual(net.cells[0].nodes.flat().filter((o) => o.identity).map((o) => o.op), ['skip_connect', 'skip_connect']);
  const inp = randomTensor([2, 8, 8, 3], 5) as tf.Tensor4D;
  const run = (o: object) => tf.tidy(() => net.forward(inp, { training: false, ...o }).logits.dataSync());
  t.deepEqual(run({ dropPath: 0.5, random: () => 0.99 }), run({}));
  const train = (o: object) => tf.tidy(() => net.forward(inp, { training: true, ...o }).logits.dataSync());
  t.notDeepEqual(train({ dropPath: 0.5, random: () => 0.99 }), train({}));
  net.dispose();
  tf.dispose([x, y, inp]);
});

for (const c of [
  { name: 'DARTS_V2', kind: 'cifar' as const, size: 16, layers: 3, aux: true },
  { name: 'BAYESNAS_LAMBDA_0_007', kind: 'cifar' as const, size: 16, layers: 3, aux: true },
  { name: 'SNAS_MILD', kind: 'imagenet' as const, size: 64, layers: 3, aux: true },
  { name: 'BAYESNAS_LAMBDA_0_005', kind: 'cifar' as const, size: 16, layers: 3, aux: false, style: 'bayesnas' as const },
  { name: 'BAYESNAS_LAMBDA_0_01', kind: 'imagenet' as const, size: 64, layers: 3, aux: true, style: 'bayesnas' as const },
]) {
  test.serial(`${c.name} ${c.kind} network${'style' in c ? ` (${c.style} style)` : ''}: TypeScript and PyTorch give the same logits, loss and gradients on identical weights (1e-4)`, async (t) => {
    const net = buildEvalNet({ genotype: G(c.name), C: 4, layers: c.layers, kind: c.kind, classes: 10, inChannels: 1, auxiliary: c.aux, seed: 3, style: 'style' in c ? c.style : 'darts' });
    const x = randomTensor([4, c.size, c.size, 1], 9) as tf.Tensor4D;
    const y = tf.tensor1d([1, 2, 3, 4], 'int32');
    const r = await evalNetParity(net, x, y, 0.4);
    const get = (q: string) => r.find((e) => e.quantity === q)!;
    for (const q of ['logits', 'loss', ...(c.aux ? ['logits (auxiliary)'] : []), 'grad (all weights)']) t.true(get(q).relative <= 1e-4, `${q}: ${get(q).relative}`);
    t.is(r.some((e) => e.quantity.startsWith(`grad ${AUX_PREFIX}`)), c.aux);
    net.dispose();
    tf.dispose([x, y]);
  });
}

test.serial('weights initialised by PyTorch load into the TypeScript network by name and layout and give the same outputs', async (t) => {
  const net = buildEvalNet({ genotype: G('DARTS_V1'), C: 4, layers: 3, inChannels: 1, auxiliary: true, seed: 99 });
  const ex = exchangeDir();
  await exportPythonInit(net, ex.file('init.arrow'), 11);
  net.params.load(ex.file('init.arrow'));
  const r = await evalNetParity(net, randomTensor([4, 16, 16, 1], 12) as tf.Tensor4D, tf.tensor1d([0, 1, 2, 3], 'int32'));
  for (const q of ['logits', 'loss', 'grad (all weights)']) t.true(r.find((e) => e.quantity === q)!.relative <= 1e-4, q);
  ex.cleanup();
  net.dispose();
});

test.serial('bayesnas eval-net --json prints params without and with the auxiliary head, and --pytorch agrees', async (t) => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: unknown) => { lines.push(String(s)); };
  let code: number;
  try {
    code = await main(['eval-net', '--genotype', 'DARTS_V2', '--layers', '8', '--channels', '16', '--json', '--pytorch']);
  } finally {
    console.log = log;
  }
  t.is(code, 0);
  const j = JSON.parse(lines.join('\n'));
  const net = buildEvalNet({ genotype: G('DARTS_V2'), C: 16, layers: 8, auxiliary: true });
  const c = net.count();
  net.dispose();
  t.is(j.params, c.params);
  t.is(j.paramsAuxiliary, c.params + c.auxiliary);
  t.true(j.pytorch.match);
});
