// Seeded PRNG, shuffling and the train / switch / val split.
import test from 'ava';
import { Rng, headOf, holdOut, permutation, resolveSizes, splitTrainingSet, takeIndices, type Split } from '../src/data/index.js';

/** n samples of 2x2x1 whose pixels encode the sample index (so a subset's content can be traced back). */
function synthetic(n: number): Split {
  const images = new Uint8Array(n * 4);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    images.set([i & 255, (i >> 8) & 255, (i * 7) & 255, 1], i * 4);
    labels[i] = i % 10;
  }
  return { images, labels, n, height: 2, width: 2, channels: 1, dataset: 'mnist' };
}
const idOf = (s: Split, k: number): number => s.images[k * 4]! + 256 * s.images[k * 4 + 1]!;

test('Rng: deterministic per seed, pinned values, different across seeds, in range', (t) => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const sa = Array.from({ length: 100 }, () => a.nextUint32());
  const sb = Array.from({ length: 100 }, () => b.nextUint32());
  const sc = Array.from({ length: 100 }, () => c.nextUint32());
  t.deepEqual(sa, sb);
  t.notDeepEqual(sa, sc);
  // pinned: a change here changes every seeded run (shuffles, splits, augmentation)
  t.deepEqual(sa.slice(0, 4), [763744907, 2711839145, 2121928412, 3759587137]);
  const r0 = new Rng(0);
  t.deepEqual(Array.from({ length: 4 }, () => r0.nextUint32()), [2673918951, 1525398398, 1851933717, 1087923286]);
  // floats in [0, 1) with a sane mean and spread; ints in range and all values hit
  const r = new Rng(7);
  let sum = 0, sq = 0;
  const hits = new Array<number>(10).fill(0);
  for (let i = 0; i < 20000; i++) {
    const v = r.next();
    if (!(v >= 0 && v < 1)) return t.fail(`next() = ${v}`);
    sum += v;
    sq += v * v;
    hits[r.int(10)]!++;
  }
  t.true(Math.abs(sum / 20000 - 0.5) < 0.01, `mean ${sum / 20000}`);
  t.true(Math.abs(sq / 20000 - 1 / 3) < 0.01, `E[x^2] ${sq / 20000}`);
  t.true(hits.every((h) => h > 1800 && h < 2200), `int(10) counts ${hits.join(' ')}`);
  t.throws(() => new Rng(1).int(0));
  t.throws(() => new Rng(Number.NaN));
});

test('permutation is a permutation, seeded', (t) => {
  const p = permutation(1000, new Rng(3));
  t.deepEqual(Array.from(p).sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
  t.deepEqual(p, permutation(1000, new Rng(3)));
  t.notDeepEqual(p, permutation(1000, new Rng(4)));
  // not the identity, and the first position is not stuck
  t.true(p.some((v, i) => v !== i));
  const firsts = new Set(Array.from({ length: 50 }, (_, s) => permutation(10, new Rng(s))[0]));
  t.true(firsts.size >= 8, `first elements over 50 seeds: ${[...firsts].join(',')}`);
});

test('split: disjoint, covering, content follows the indices', (t) => {
  const src = synthetic(1000);
  const s = splitTrainingSet(src, { seed: 1, sizes: { train: 0.5, switch: 0.1, val: 0.4 } });
  t.deepEqual([s.train.n, s.switch.n, s.val.n], [500, 100, 400]);
  const all = [...s.train.indices, ...s.switch.indices, ...s.val.indices];
  t.is(new Set(all).size, 1000);
  t.deepEqual(all.sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  for (const sub of [s.train, s.switch, s.val]) {
    t.deepEqual([sub.height, sub.width, sub.channels, sub.dataset], [2, 2, 1, 'mnist']);
    t.is(sub.images.length, sub.n * 4);
    for (let k = 0; k < sub.n; k++) {
      const i = sub.indices[k]!;
      if (idOf(sub, k) !== i || sub.labels[k] !== i % 10) return t.fail(`sample ${k} is not source sample ${i}`);
    }
  }
  // the shuffle really mixes: the train half is not just the first 500
  t.true(s.train.indices.some((i) => i >= 500));
});

test('split: deterministic for a seed, different across seeds', (t) => {
  const src = synthetic(300);
  const a = splitTrainingSet(src, { seed: 5, sizes: { train: 100, switch: 50, val: 100 } });
  const b = splitTrainingSet(src, { seed: 5, sizes: { train: 100, switch: 50, val: 100 } });
  const c = splitTrainingSet(src, { seed: 6, sizes: { train: 100, switch: 50, val: 100 } });
  t.deepEqual(a.train.indices, b.train.indices);
  t.deepEqual(a.switch.indices, b.switch.indices);
  t.deepEqual(a.val.images, b.val.images);
  t.notDeepEqual(a.train.indices, c.train.indices);
  t.notDeepEqual(a.val.indices, c.val.indices);
  // counts that do not use all samples leave the rest out
  t.is(a.train.n + a.switch.n + a.val.n, 250);
});

test('split: limits take the first k of each subset after the shuffle', (t) => {
  const src = synthetic(400);
  const full = splitTrainingSet(src, { seed: 9, sizes: { train: 0.5, switch: 0.25, val: 0.25 } });
  const lim = splitTrainingSet(src, { seed: 9, sizes: { train: 0.5, switch: 0.25, val: 0.25 }, limits: { train: 32, val: 10 } });
  t.deepEqual([lim.train.n, lim.switch.n, lim.val.n], [32, 100, 10]);
  t.deepEqual(lim.train.indices, full.train.indices.subarray(0, 32));
  t.deepEqual(lim.switch.indices, full.switch.indices);
  t.deepEqual(lim.val.indices, full.val.indices.subarray(0, 10));
  // a limit larger than the subset is harmless
  t.is(splitTrainingSet(src, { seed: 9, limits: { train: 10000 } }).train.n, 200);
});

test('resolveSizes: fractions, counts, remainder to train, errors', (t) => {
  t.deepEqual(resolveSizes(10, { train: 0.5, val: 0.5 }), { train: 5, switch: 0, val: 5 });
  t.deepEqual(resolveSizes(11, { train: 0.5, val: 0.5 }), { train: 6, switch: 0, val: 5 });
  t.deepEqual(resolveSizes(101, { train: 0.3, switch: 0.3, val: 0.4 }), { train: 31, switch: 30, val: 40 });
  t.deepEqual(resolveSizes(100, { train: 0.2, val: 0.2 }), { train: 20, switch: 0, val: 20 });
  t.deepEqual(resolveSizes(100, { train: 60, switch: 10, val: 30 }), { train: 60, switch: 10, val: 30 });
  t.regex(t.throws(() => resolveSizes(100, { train: 0.7, val: 0.5 }))!.message, /fractions sum to 1\.2/);
  t.regex(t.throws(() => resolveSizes(100, { train: 70, val: 50 }))!.message, /counts sum to 120 but the set has only 100/);
  t.throws(() => resolveSizes(100, { train: 2.5, val: 3 }));
  t.throws(() => resolveSizes(100, { train: -1 }));
});

test('takeIndices and headOf', (t) => {
  const src = synthetic(20);
  const s = takeIndices(src, [19, 0, 7]);
  t.deepEqual([idOf(s, 0), idOf(s, 1), idOf(s, 2)], [19, 0, 7]);
  t.deepEqual(Array.from(s.labels), [9, 0, 7]);
  t.throws(() => takeIndices(src, [20]));
  const h = headOf(src, 5);
  t.is(h.n, 5);
  t.is(h.images.length, 20);
  t.is(headOf(src, 50), src);
});

test('holdOut: the last k samples apart from the rest, as views; bad sizes name the range', (t) => {
  const src = synthetic(30);
  const { rest, held } = holdOut(src, 8);
  t.is(rest.n, 22);
  t.is(held.n, 8);
  t.deepEqual(Array.from({ length: 22 }, (_, k) => idOf(rest, k)), Array.from({ length: 22 }, (_, k) => k));
  t.deepEqual(Array.from({ length: 8 }, (_, k) => idOf(held, k)), Array.from({ length: 8 }, (_, k) => 22 + k));
  t.deepEqual(Array.from(held.labels), [2, 3, 4, 5, 6, 7, 8, 9]);
  t.is(held.images.buffer, src.images.buffer);
  for (const k of [0, 30, 2.5]) t.throws(() => holdOut(src, k), { message: /hold-out size must be an integer in 1\.\.29/ });
});
