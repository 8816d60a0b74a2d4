// Augmentation, normalisation, shape adaptation and the batch iterators.
import test from 'ava';
import { initEngine, tf } from '../src/engine/index.js';
import {
  NORMALIZATION, Rng, arrayBatches, batches, countBatches, cropImage, cutoutImage, cutoutRect, flipImage, loadDataset, normalize,
  padTo, randomCrop, randomCutout, randomFlip, replicateChannels, type Split,
} from '../src/data/index.js';

test.before(async () => {
  await initEngine({ backend: 'cpu', quiet: true });
});

function randomBytes(n: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  return Uint8Array.from({ length: n }, () => r.int(256));
}

/** n images of h x w x c where pixel (i, y, x, ch) = f(i, y, x, ch). */
function makeSplit(n: number, h: number, w: number, c: number, f: (i: number, y: number, x: number, ch: number) => number): Split {
  const images = new Uint8Array(n * h * w * c);
  for (let i = 0; i < n; i++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) images[((i * h + y) * w + x) * c + ch] = f(i, y, x, ch);
  return { images, labels: Uint8Array.from({ length: n }, (_, i) => i % 10), n, height: h, width: w, channels: c, dataset: 'cifar10' };
}

test('flip: once mirrors each row, twice is the identity (uint8 and float32)', (t) => {
  const h = 5, w = 7, c = 3;
  const img = randomBytes(h * w * c, 1);
  const once = img.slice();
  flipImage(once, 0, h, w, c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) {
    if (once[(y * w + x) * c + ch] !== img[(y * w + (w - 1 - x)) * c + ch]) return t.fail(`(${y},${x},${ch})`);
  }
  flipImage(once, 0, h, w, c);
  t.deepEqual(once, img);
  const f = Float32Array.from(img, (v) => v / 3);
  const f2 = f.slice();
  flipImage(f2, 0, h, w, c);
  t.notDeepEqual(f2, f);
  flipImage(f2, 0, h, w, c);
  t.deepEqual(f2, f);
  // randomFlip over a batch: the flipped ones are mirrored, the others untouched, about half flipped
  const n = 200, batch = randomBytes(n * h * w * c, 2);
  const out = batch.slice();
  const flipped = randomFlip(out, n, h, w, c, new Rng(3));
  const count = flipped.filter(Boolean).length;
  t.true(count > 70 && count < 130, `flipped ${count} of ${n}`);
  for (let i = 0; i < n; i++) {
    const a = out.slice(i * h * w * c, (i + 1) * h * w * c);
    if (flipped[i]) flipImage(a, 0, h, w, c);
    if (!Buffer.from(a).equals(Buffer.from(batch.subarray(i * h * w * c, (i + 1) * h * w * c)))) return t.fail(`image ${i}`);
  }
});

test('crop: pad 0 and the centred window are the identity; a corner window shifts in zeros', (t) => {
  const h = 8, w = 6, c = 2, n = 3;
  const batch = randomBytes(n * h * w * c, 4);
  const a = batch.slice();
  t.deepEqual(randomCrop(a, n, h, w, c, 0, new Rng(1)), []);
  t.deepEqual(a, batch);
  const scratch = new Uint8Array(h * w * c);
  const b = batch.slice();
  cropImage(b, h * w * c, h, w, c, 4, 4, 4, scratch); // image 1, centred window
  t.deepEqual(b, batch);
  // window at the top-left corner of the padded image: out(y, x) = in(y - 4, x - 4), zero outside
  const pad = 4, dy = 0, dx = 1;
  const d = batch.slice();
  cropImage(d, 0, h, w, c, pad, dy, dx, scratch);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) {
    const sy = y + dy - pad, sx = x + dx - pad;
    const want = sy >= 0 && sy < h && sx >= 0 && sx < w ? batch[(sy * w + sx) * c + ch]! : 0;
    if (d[(y * w + x) * c + ch] !== want) return t.fail(`(${y},${x},${ch}) got ${d[(y * w + x) * c + ch]} want ${want}`);
  }
  t.deepEqual(d.subarray(h * w * c), batch.subarray(h * w * c)); // other images untouched
  // random crops: offsets in [0, 2*pad], each result matches the hand computation for its offset
  const e = batch.slice();
  const offs = randomCrop(e, n, h, w, c, 2, new Rng(5));
  t.is(offs.length, n);
  for (const [i, [oy, ox]] of offs.entries()) {
    t.true(oy >= 0 && oy <= 4 && ox >= 0 && ox <= 4);
    const want = batch.slice(i * h * w * c, (i + 1) * h * w * c);
    cropImage(want, 0, h, w, c, 2, oy, ox, scratch);
    t.deepEqual(e.subarray(i * h * w * c, (i + 1) * h * w * c), want);
  }
});

test('cutout zeroes exactly the clipped square (DARTS rule)', (t) => {
  const h = 10, w = 9, c = 2;
  const cases: Array<[number, number, number, { y1: number; y2: number; x1: number; x2: number }]> = [
    [4, 5, 5, { y1: 3, y2: 7, x1: 3, x2: 7 }], // inside: side 4
    [4, 0, 0, { y1: 0, y2: 2, x1: 0, x2: 2 }], // corner: clipped to 2x2
    [16, 9, 8, { y1: 1, y2: 10, x1: 0, x2: 9 }], // larger than the image
    [5, 9, 3, { y1: 7, y2: 10, x1: 1, x2: 5 }], // odd side: half = 2, like DARTS' length // 2
  ];
  for (const [len, cy, cx, want] of cases) {
    t.deepEqual(cutoutRect(h, w, len, cy, cx), want);
    const img = new Float32Array(h * w * c).fill(1.5);
    cutoutImage(img, 0, h, w, c, len, cy, cx);
    let zeros = 0;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) {
      const inside = y >= want.y1 && y < want.y2 && x >= want.x1 && x < want.x2;
      const v = img[(y * w + x) * c + ch]!;
      if (v !== (inside ? 0 : 1.5)) return t.fail(`len ${len} centre (${cy},${cx}): (${y},${x},${ch}) = ${v}`);
      if (v === 0) zeros++;
    }
    t.is(zeros, (want.y2 - want.y1) * (want.x2 - want.x1) * c);
  }
  // random cutout on a batch: each image zeroed exactly at its reported centre's square
  const n = 20;
  const batch = new Uint8Array(n * h * w * c).fill(7);
  const centres = randomCutout(batch, n, h, w, c, 4, new Rng(11));
  t.is(centres.length, n);
  for (const [i, [cy, cx]] of centres.entries()) {
    t.true(cy >= 0 && cy < h && cx >= 0 && cx < w);
    const want = new Uint8Array(h * w * c).fill(7);
    cutoutImage(want, 0, h, w, c, 4, cy, cx);
    t.deepEqual(batch.subarray(i * h * w * c, (i + 1) * h * w * c), want);
  }
});

test('normalise: per-channel (v/255 - mean)/std, hand-computed', (t) => {
  const u8 = Uint8Array.from([0, 255, 128, 51, 102, 204]);
  const x = normalize(u8, 3, NORMALIZATION.cifar10);
  const want = [(0 - 0.4914) / 0.2470, (1 - 0.4822) / 0.2435, (128 / 255 - 0.4465) / 0.2616, (0.2 - 0.4914) / 0.2470, (0.4 - 0.4822) / 0.2435, (0.8 - 0.4465) / 0.2616];
  t.deepEqual(want.map((v) => v.toFixed(6)), [-1.989474, 2.126489, 0.212006, -1.179757, -0.337577, 1.3513].map((v) => v.toFixed(6)));
  for (let i = 0; i < 6; i++) t.true(Math.abs(x[i]! - want[i]!) < 1e-6, `${i}: ${x[i]} vs ${want[i]}`);
  const m = normalize(Uint8Array.from([0, 255]), 1, NORMALIZATION['mnist']);
  t.true(Math.abs(m[0]! - -0.4242129) < 1e-6 && Math.abs(m[1]! - 2.8214867) < 1e-6, `${m[0]} ${m[1]}`);
  const f = normalize(Uint8Array.from([73]), 1, NORMALIZATION['fashion-mnist']);
  t.true(Math.abs(f[0]! - (73 / 255 - 0.2860) / 0.3530) < 1e-6);
  // a 1-value normalisation is broadcast over channels; a wrong count is an error
  t.deepEqual(normalize(Uint8Array.from([10, 10, 10]), 3, { mean: [0], std: [1] }), Float32Array.from([10 / 255, 10 / 255, 10 / 255]));
  t.throws(() => normalize(Uint8Array.from([1, 2]), 2, NORMALIZATION.cifar10), { message: /3 values for 2-channel/ });
});

test('padTo 28->32 (offset 2) and channel replication 1->3', (t) => {
  const s = makeSplit(2, 28, 28, 1, (i, y, x) => (i * 50 + y * 3 + x) & 255 || 1);
  const p = padTo(s, 32);
  t.deepEqual([p.height, p.width, p.channels, p.images.length], [32, 32, 1, 2 * 1024]);
  for (let i = 0; i < 2; i++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) {
    const inside = y >= 2 && y < 30 && x >= 2 && x < 30;
    const want = inside ? s.images[(i * 28 + y - 2) * 28 + x - 2]! : 0;
    if (p.images[(i * 32 + y) * 32 + x] !== want) return t.fail(`(${i},${y},${x})`);
  }
  const r = replicateChannels(p, 3);
  t.deepEqual([r.channels, r.images.length], [3, 2 * 1024 * 3]);
  for (let k = 0; k < 2 * 1024; k++) {
    const v = p.images[k]!;
    if (r.images[3 * k] !== v || r.images[3 * k + 1] !== v || r.images[3 * k + 2] !== v) return t.fail(`pixel ${k}`);
  }
  t.throws(() => replicateChannels(r, 4));
  t.throws(() => padTo(s, 20));
});

test('arrayBatches: sizes, last batch, dropLast, shuffle covers every sample once, seeded', (t) => {
  const s = makeSplit(10, 4, 4, 3, (i, y, x, ch) => i * 10 + ch + (y * 4 + x === 0 ? 0 : 0));
  t.is(countBatches(10, 4), 3);
  t.is(countBatches(10, 4, true), 2);
  const b = [...arrayBatches(s, { batchSize: 4 })];
  t.deepEqual(b.map((x) => x.size), [4, 4, 2]);
  t.deepEqual(b[2]!.shape, [2, 4, 4, 3]);
  t.is(b[2]!.x.length, 2 * 48);
  t.deepEqual(Array.from(b[0]!.indices), [0, 1, 2, 3]);
  t.deepEqual(Array.from(b[0]!.y), [0, 1, 2, 3]);
  t.true(b[0]!.y instanceof Int32Array && b[0]!.x instanceof Float32Array);
  // pixel value of sample i, channel ch is i*10+ch: check the normalised value of one pixel
  const v = b[1]!.x[1 * 48 + 5 * 3 + 2]!; // batch 1, sample 5, pixel 5, channel 2
  t.true(Math.abs(v - ((52 / 255 - 0.4465) / 0.2616)) < 1e-6);
  t.deepEqual([...arrayBatches(s, { batchSize: 4, dropLast: true })].map((x) => x.size), [4, 4]);
  const sh = [...arrayBatches(s, { batchSize: 3, shuffle: true, seed: 7 })];
  const order = sh.flatMap((x) => Array.from(x.indices));
  t.deepEqual([...order].sort((a, c) => a - c), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.notDeepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  for (const x of sh) for (let k = 0; k < x.size; k++) t.is(x.y[k], x.indices[k]! % 10);
  const again = [...arrayBatches(s, { batchSize: 3, shuffle: true, seed: 7 })].flatMap((x) => Array.from(x.indices));
  t.deepEqual(again, order);
  const epoch1 = [...arrayBatches(s, { batchSize: 3, shuffle: true, seed: 7, epoch: 1 })].flatMap((x) => Array.from(x.indices));
  t.notDeepEqual(epoch1, order);
  t.throws(() => [...arrayBatches({ ...s, dataset: undefined }, { batchSize: 2 })], { message: /pass `normalization`/ });
});

test('arrayBatches: pad to 32 + 3 channels on real Fashion-MNIST, normalised statistics, seeded augmentation', (t) => {
  const ds = loadDataset('fashion-mnist', { trainLimit: 512, testLimit: 512 });
  const test0 = ds.test;
  let sum = 0, sq = 0, count = 0;
  for (const b of arrayBatches(test0, { batchSize: 128 })) {
    t.deepEqual(b.shape.slice(1), [28, 28, 1]);
    for (const v of b.x) { sum += v; sq += v * v; count++; }
  }
  const mean = sum / count, std = Math.sqrt(sq / count - mean * mean);
  t.true(Math.abs(mean) < 0.05 && Math.abs(std - 1) < 0.1, `normalised mean ${mean}, std ${std}`);

  const opts = { batchSize: 64, shuffle: true, seed: 3, padTo: 32, channels: 3, augment: { cropPad: 4, flip: true, cutout: 16 } } as const;
  const a = [...arrayBatches(ds.train, opts)];
  t.is(a.length, 8);
  t.deepEqual(a[0]!.shape, [64, 32, 32, 3]);
  const b = [...arrayBatches(ds.train, opts)];
  t.deepEqual(a[3]!.x, b[3]!.x); // same seed, same augmentation
  const c = [...arrayBatches(ds.train, { ...opts, seed: 4 })];
  t.notDeepEqual(a[0]!.x, c[0]!.x);
  // without augmentation, the padded/replicated batch equals the image: border = normalised zero, channels equal
  const plain = arrayBatches(ds.train, { batchSize: 2, padTo: 32, channels: 3 }).next().value!;
  const zero = (0 - 0.2860) / 0.3530;
  const px = (k: number, y: number, x: number, ch: number): number => plain.x[((k * 32 + y) * 32 + x) * 3 + ch]!;
  t.true(Math.abs(px(0, 0, 0, 0) - zero) < 1e-6 && Math.abs(px(1, 31, 31, 2) - zero) < 1e-6);
  for (let y = 2; y < 30; y++) for (let x = 2; x < 30; x++) {
    const want = (ds.train.images[(y - 2) * 28 + x - 2]! / 255 - 0.2860) / 0.3530;
    if (Math.abs(px(0, y, x, 0) - want) > 1e-6 || px(0, y, x, 1) !== px(0, y, x, 0) || px(0, y, x, 2) !== px(0, y, x, 0)) return t.fail(`(${y},${x})`);
  }
});

test('batches: two tensors per batch (float32 NHWC x, int32 y), values equal the typed arrays, no leaks', (t) => {
  const s = makeSplit(10, 6, 6, 3, (i, y, x, ch) => (i * 31 + y * 7 + x * 3 + ch) & 255);
  const start = tf.memory().numTensors;
  const opts = { batchSize: 4, shuffle: true, seed: 2, augment: { cropPad: 2, flip: true, cutout: 3 } };
  const arrays = [...arrayBatches(s, opts)];
  const sizes: number[] = [];
  let i = 0;
  for (const b of batches(s, opts)) {
    t.is(tf.memory().numTensors, start + 2);
    t.is(b.x.dtype, 'float32');
    t.is(b.y.dtype, 'int32');
    t.deepEqual(b.x.shape, [b.size, 6, 6, 3]);
    t.deepEqual(b.y.shape, [b.size]);
    t.deepEqual(b.x.dataSync(), arrays[i]!.x);
    t.deepEqual(b.y.dataSync(), arrays[i]!.y);
    sizes.push(b.size);
    b.x.dispose();
    b.y.dispose();
    i++;
  }
  t.deepEqual(sizes, [4, 4, 2]);
  t.is(tf.memory().numTensors, start);
  // dropLast, and leaving the loop early, leak nothing either
  const dl = [...batches(s, { batchSize: 4, dropLast: true })];
  t.deepEqual(dl.map((b) => b.size), [4, 4]);
  for (const b of dl) { b.x.dispose(); b.y.dispose(); }
  for (const b of batches(s, { batchSize: 3 })) { b.x.dispose(); b.y.dispose(); break; }
  t.is(tf.memory().numTensors, start);
});
