import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { initEngine, tf } from '../src/engine/index.js';
import { runSearch, type SearchConfig } from '../src/search/search.js';
import { snasTemperature } from '../src/search/baselines.js';
import { ArchParams, archOps } from '../src/search/arch.js';
import { DEFAULT_CONFIG } from '../src/search/train.js';
import { archStepParity } from '../src/bridge/parity.js';
import { closePython } from '../src/bridge/session.js';
import { fromJSON } from '../src/genotype/format.js';
import { buildSupernet } from '../src/space/supernet.js';
import { BAYESNAS_SPACE, DARTS_SPACE } from '../src/space/spaces.js';
import { randomTensor } from './helpers/numeric.js';

await initEngine({ quiet: true });
test.after.always(() => closePython());

const ADAM = { lr: 3e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8, weightDecay: 1e-3 };

/** α with clearly unequal entries, so that the softmax and its gradient are not trivial. */
function spreadAlpha(arch: ArchParams, seed: number) {
  for (const k of ['normal', 'reduce'] as const) arch.alpha[k].assign(tf.mul(randomTensor(arch.alpha[k].shape, seed + (k === 'reduce' ? 1 : 0)), 0.8) as tf.Tensor2D);
}

for (const strategy of ['darts', 'snas'] as const) {
  test.serial(`${strategy}: one ${strategy === 'darts' ? 'architecture' : 'sampling'} step equals PyTorch on identical weights, α, batch${strategy === 'snas' ? ' and Gumbel noise' : ''} (1e-4)`, async (t) => {
    const space = { ...DARTS_SPACE, C: 4, layers: 3 };
    const net = buildSupernet(space, { inChannels: 1, seed: 3 });
    const arch = new ArchParams(space, 5, ADAM);
    spreadAlpha(arch, 21);
    const x = randomTensor([4, 8, 8, 1], 8) as tf.Tensor4D;
    const y = tf.tensor1d([0, 3, 5, 9], 'int32');
    const alphaBefore = Array.from(arch.alpha.normal.dataSync());
    const r = await archStepParity(strategy, net, arch, x, y, { temperature: 0.7, noiseSeed: 42 });
    const names = r.map((c) => c.quantity);
    for (const q of ['loss', 'logits', 'architecture weights (normal)', 'grad α (normal)', 'grad α (reduce)', 'α after Adam (normal)', 'α after Adam (reduce)']) t.true(names.includes(q), q);
    if (strategy === 'snas') t.true(names.includes('grad (all weights)'));
    for (const c of r) t.true(c.relative <= 1e-4, `${c.quantity}: relative ${c.relative}`);
    // the gradient reaching α is not trivially zero, and the parity run left α as it was
    t.true(r.find((c) => c.quantity === 'grad α (normal)')!.maxAbs >= 0 && tf.tidy(() => tf.max(tf.abs(arch.alpha.normal)).dataSync()[0]) > 0.1);
    t.deepEqual(Array.from(arch.alpha.normal.dataSync()), alphaBefore);
    arch.dispose();
    net.dispose();
    tf.dispose([x, y]);
  });
}

test('α gets a non-zero gradient through the softmax and through the Gumbel sample; the sample follows the noise seed and sharpens as τ falls', (t) => {
  const space = { ...DARTS_SPACE, C: 2, layers: 3 };
  const net = buildSupernet(space, { inChannels: 1, seed: 1 });
  const arch = new ArchParams(space, 2, ADAM);
  t.deepEqual(arch.ops, [...space.ops, 'none']);
  t.deepEqual(archOps({ ...space, ops: [...space.ops, 'none'] }), [...space.ops, 'none']);
  const x = randomTensor([2, 8, 8, 1], 4) as tf.Tensor4D;
  const y = tf.tensor1d([1, 2], 'int32');
  for (const sample of [false, true]) {
    const g = tf.tidy(() => {
      const { grads } = tf.variableGrads(() => {
        const w = sample ? arch.gumbel(arch.noise(3), 0.5) : arch.softmax();
        return tf.losses.softmaxCrossEntropy(tf.oneHot(y, 10), net.forward(x, { training: true, switches: arch.switchesFrom(w) })) as tf.Scalar;
      }, arch.vars);
      return tf.max(tf.abs(grads[arch.alpha.normal.name])).dataSync()[0];
    });
    t.true(g > 1e-6, `sample ${sample}: |grad α| ${g}`);
  }
  const sample = (seed: number, tau: number) => tf.tidy(() => Array.from(arch.gumbel(arch.noise(seed), tau).normal.dataSync()));
  t.deepEqual(sample(7, 1), sample(7, 1));
  t.notDeepEqual(sample(7, 1), sample(8, 1));
  const peak = (w: number[]) => { const O = arch.ops.length; let s = 0; for (let e = 0; e < w.length / O; e++) s += Math.max(...w.slice(e * O, e * O + O)); return s / (w.length / O); };
  t.true(peak(sample(7, 0.1)) > peak(sample(7, 1)));
  const cfg = { rounds: 5, arch: { ...ADAM, tempInit: 1, tempMin: 0.2 } } as unknown as SearchConfig;
  t.deepEqual([1, 3, 5].map((r) => Number(snasTemperature(cfg, r).toFixed(12))), [1, 0.6, 0.2]);
  arch.dispose();
  net.dispose();
  tf.dispose([x, y]);
});

const base: SearchConfig = {
  ...DEFAULT_CONFIG, space: { ...BAYESNAS_SPACE, C: 2, layers: 2, reductions: [1] }, dataset: 'fashion-mnist', batch: 16,
  warmupEpochs: 1, switchEpochs: 2, rounds: 2, sizes: { train: 32, switch: 32, val: 32 }, lambdaOrigin: 0.01, lambdaChild: 0.01,
  updateMode: 'clean', hessian: { batches: 1, batch: 16, mode: 'per-sample', seed: 'diagonal', scale: 'dataset' }, prune: 0,
  derive: { mode: 'darts' }, arch: { lr: 0.05, beta1: 0.5, beta2: 0.999, weightDecay: 1e-3, tempInit: 1, tempMin: 0.5 },
};

for (const strategy of ['darts', 'snas'] as const) {
  test.serial(`${strategy} search on real Fashion-MNIST: α moves, round tables hold α and softmax(α), a top-2 genotype without none; resume continues exactly`, async (t) => {
    const cfg = { ...base, strategy };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bnas-${strategy}-`));
    const r = await runSearch(cfg, dir);
    t.is(r.rounds.length, 2);
    if (strategy === 'darts') t.true(r.rounds.every((x) => x.archSeconds > 0));
    else t.deepEqual(r.rounds.map((x) => x.temperature), [1, 0.5]);
    const table = tableFromIPC(fs.readFileSync(path.join(dir, 'state', 'round-2.arrow')));
    t.is(table.numRows, 2 * 8 * 8, '2 cell types × 8 edges × (7 ops + none)');
    const alpha = Array.from(table.getChild('alpha')!.toArray() as Float64Array);
    t.true(Math.max(...alpha.map(Math.abs)) > 0.02, 'α moved away from its 1e-3 initialisation');
    const w = Array.from(table.getChild('weight')!.toArray() as Float64Array);
    for (let e = 0; e < 16; e++) t.true(Math.abs(w.slice(e * 8, e * 8 + 8).reduce((a, b) => a + b, 0) - 1) < 1e-5);
    const g = fromJSON(fs.readFileSync(path.join(dir, 'genotype.json'), 'utf8'));
    for (const cell of [g.normal, g.reduce]) {
      t.true(cell.nodes.every((n) => n.length === 2 && n.every((e) => e.op !== 'none')));
    }
    // `bayesnas derive` re-derives the same cells from the saved softmax(α)
    const { run: derive } = await import('../src/cli/derive.js');
    const log = console.log;
    console.log = () => {};
    try { t.is(await derive(['--run', dir, '--out', path.join(dir, 'rederived')]), 0); } finally { console.log = log; }
    const again = fromJSON(fs.readFileSync(path.join(dir, 'rederived', 'genotype.json'), 'utf8'));
    t.deepEqual([again.normal, again.reduce], [g.normal, g.reduce]);
    const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), `bnas-${strategy}-`));
    await t.throwsAsync(runSearch(cfg, dir2, { onRound: (x) => { if (x.round === 1) throw new Error('interrupted'); } }), { message: 'interrupted' });
    const resumed = await runSearch(cfg, dir2, {}, true);
    t.deepEqual(resumed.rounds.map((x) => x.round), [1, 2]);
    t.is(resumed.rounds[1].epoch.trainLoss, r.rounds[1].epoch.trainLoss);
    t.deepEqual(resumed.rounds[1].gammaNormal, r.rounds[1].gammaNormal);
    t.deepEqual(resumed.genotype, { ...r.genotype, name: resumed.genotype.name });
    fs.rmSync(dir, { recursive: true });
    fs.rmSync(dir2, { recursive: true });
  });
}

test.serial('a baseline epoch keeps the tensor count constant across steps and leaves the switch variables at 1', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bnas-snas-'));
  const { TrainingSession } = await import('../src/search/train.js');
  const { baselineStrategy } = await import('../src/search/baselines.js');
  const cfg = { ...base, strategy: 'darts' as const, sizes: { train: 32, switch: 64, val: 16 }, warmupEpochs: 0, rounds: 1 };
  for (const name of ['darts', 'snas'] as const) {
    const s = new TrainingSession({ ...cfg, switchEpochs: 1 }, dir);
    const st = baselineStrategy(name, { ...cfg, strategy: name }, s);
    await st.searchEpoch(0, 1, {});
    t.is(s.tensorsPerStep, 0, name);
    t.true(s.net.cells.every((c) => c.origin.dataSync().every((v) => v === 1) && c.child.dataSync().every((v) => v === 1)));
    st.dispose();
    s.dispose();
  }
  fs.rmSync(dir, { recursive: true });
});
