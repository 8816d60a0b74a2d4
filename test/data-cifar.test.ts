// CIFAR-10 readers on fixtures in the exact official byte formats, built from real Fashion-MNIST pixels
// plus one asymmetric RGB record (catches plane-order and row/column mix-ups).
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  findDatasets, loadCifarBinDir, loadCifarPyDir, loadDataset, locateDataset, parseCifarBin, readCifarBinFiles, readCifarMeta,
  readCifarPyBatch, readIdxImages, readIdxLabels, restrictedUnpickle,
} from '../src/data/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bayesnas-cifar-'));
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }));

const N_REAL = 40;
const ASYM_LABEL = 7;

/** First N_REAL Fashion-MNIST test images (28x28) and labels: real pixels for the fixtures. */
function fashion(): { images: Uint8Array; labels: Uint8Array } {
  const dir = locateDataset('fashion-mnist').dir;
  if (!dir) throw new Error('Fashion-MNIST not found: run npm run setup');
  const f = (b: string): string => (fs.existsSync(path.join(dir, b)) ? path.join(dir, b) : path.join(dir, `${b}.gz`));
  const im = readIdxImages(f('t10k-images-idx3-ubyte'));
  const lb = readIdxLabels(f('t10k-labels-idx1-ubyte'));
  return { images: im.images.slice(0, N_REAL * 784), labels: lb.labels.slice(0, N_REAL) };
}
const FASHION = fashion();

/** The gray value of real image k at (y, x) of the 32x32 canvas (28x28 placed at offset 2). */
function realPixel(k: number, y: number, x: number): number {
  const yy = y - 2, xx = x - 2;
  return yy >= 0 && yy < 28 && xx >= 0 && xx < 28 ? FASHION.images[k * 784 + yy * 28 + xx]! : 0;
}

/** The asymmetric synthetic record: R = row * 8, G = column * 8, B = 200. */
function asymPixel(y: number, x: number, c: number): number {
  return c === 0 ? y * 8 : c === 1 ? x * 8 : 200;
}

/** One official record: label, then the R plane (1024, row-major), G plane, B plane. */
function record(label: number, pixel: (y: number, x: number, c: number) => number): Uint8Array {
  const r = new Uint8Array(3073);
  r[0] = label;
  for (let c = 0; c < 3; c++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) r[1 + c * 1024 + y * 32 + x] = pixel(y, x, c);
  return r;
}
const realRecord = (k: number): Uint8Array => record(FASHION.labels[k]!, (y, x) => realPixel(k, y, x));
const concat = (parts: Uint8Array[]): Uint8Array => Buffer.concat(parts);

/** Checks sample s of an NHWC split against a pixel function, every byte; returns the first mismatch or null. */
function mismatch(images: Uint8Array, s: number, pixel: (y: number, x: number, c: number) => number): string | null {
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      for (let c = 0; c < 3; c++) {
        const got = images[((s * 32 + y) * 32 + x) * 3 + c]!;
        const want = pixel(y, x, c);
        if (got !== want) return `sample ${s} (y=${y}, x=${x}, c=${c}): got ${got}, want ${want}`;
      }
    }
  }
  return null;
}

function write(rel: string, bytes: Uint8Array | string): string {
  const p = path.join(tmp, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, bytes);
  return p;
}

const CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

test('binary batch: real images and the asymmetric record decode to NHWC byte for byte', (t) => {
  const recs = [realRecord(0), realRecord(1), record(ASYM_LABEL, asymPixel), ...Array.from({ length: N_REAL - 2 }, (_, k) => realRecord(k + 2))];
  const file = write('single/test_batch.bin', concat(recs));
  t.is(fs.statSync(file).size, (N_REAL + 1) * 3073);
  const s = readCifarBinFiles([file]);
  t.deepEqual([s.n, s.height, s.width, s.channels], [N_REAL + 1, 32, 32, 3]);
  t.is(s.images.length, (N_REAL + 1) * 3072);
  t.deepEqual(Array.from(s.labels), [FASHION.labels[0], FASHION.labels[1], ASYM_LABEL, ...FASHION.labels.subarray(2)]);
  t.is(mismatch(s.images, 2, asymPixel), null);
  // spot checks written out, so that a wrong layout is obvious in the failure
  const at = (y: number, x: number, c: number): number => s.images[((2 * 32 + y) * 32 + x) * 3 + c]!;
  t.deepEqual([at(0, 0, 0), at(0, 0, 1), at(0, 0, 2)], [0, 0, 200]);
  t.deepEqual([at(3, 5, 0), at(3, 5, 1), at(3, 5, 2)], [24, 40, 200]);
  t.deepEqual([at(31, 1, 0), at(31, 1, 1), at(31, 1, 2)], [248, 8, 200]);
  for (const [sample, k] of [[0, 0], [1, 1], ...Array.from({ length: N_REAL - 2 }, (_, i) => [i + 3, i + 2])] as Array<[number, number]>) {
    const m = mismatch(s.images, sample, (y, x) => realPixel(k, y, x));
    if (m) return t.fail(m);
  }
  // the real images are not blank (the fixture really carries Fashion-MNIST pixels)
  let ink = 0;
  for (let i = 0; i < s.images.length; i++) ink += s.images[i]! > 0 ? 1 : 0;
  t.true(ink > N_REAL * 300, `non-zero pixel bytes: ${ink}`);
  // parseCifarBin on the buffer gives the same
  t.deepEqual(parseCifarBin(fs.readFileSync(file), file).images, s.images);
});

function writeBinDir(root: string, metaText: string): { trainLabels: number[]; testLabels: number[] } {
  const dir = path.join(root, 'cifar-10-batches-bin');
  const trainLabels: number[] = [];
  for (let b = 1; b <= 5; b++) {
    const recs: Uint8Array[] = [];
    for (let j = 0; j < 4; j++) {
      const k = (b - 1) * 4 + j;
      recs.push(realRecord(k));
      trainLabels.push(FASHION.labels[k]!);
    }
    if (b === 3) {
      recs.push(record(ASYM_LABEL, asymPixel));
      trainLabels.push(ASYM_LABEL);
    }
    write(path.relative(tmp, path.join(dir, `data_batch_${b}.bin`)), concat(recs));
  }
  const testRecs = Array.from({ length: 6 }, (_, j) => realRecord(20 + j));
  write(path.relative(tmp, path.join(dir, 'test_batch.bin')), concat(testRecs));
  write(path.relative(tmp, path.join(dir, 'batches.meta.txt')), metaText);
  return { trainLabels, testLabels: Array.from(FASHION.labels.subarray(20, 26)) };
}

test('directory loader: data_batch_1..5 in order, test_batch, batches.meta.txt with trailing blank lines', (t) => {
  const root = path.join(tmp, 'dirtest');
  const want = writeBinDir(root, `${CLASSES.join('\n')}\n\n  \n`);
  const d = loadCifarBinDir(path.join(root, 'cifar-10-batches-bin'));
  t.deepEqual(d.classes, CLASSES);
  t.is(d.train.n, 21);
  t.deepEqual(Array.from(d.train.labels), want.trainLabels);
  t.is(mismatch(d.train.images, 8, (y, x) => realPixel(8, y, x)), null);
  t.is(mismatch(d.train.images, 12, asymPixel), null); // batch 3 = samples 8..12, asymmetric last
  t.is(mismatch(d.train.images, 13, (y, x) => realPixel(12, y, x)), null);
  t.is(mismatch(d.train.images, 20, (y, x) => realPixel(19, y, x)), null);
  t.is(d.test.n, 6);
  t.deepEqual(Array.from(d.test.labels), want.testLabels);
  t.is(mismatch(d.test.images, 5, (y, x) => realPixel(25, y, x)), null);

  // the same through loadDataset and findDatasets
  const ds = loadDataset('cifar10', { dataDir: root });
  t.is(ds.name, 'cifar10');
  t.is(ds.dir, path.join(root, 'cifar-10-batches-bin'));
  t.deepEqual(ds.train.images, d.train.images);
  t.is(ds.train.dataset, 'cifar10');
  const st = findDatasets({ dataDir: root }).find((s) => s.name === 'cifar10')!;
  t.true(st.found);
  t.is(st.format, 'bin');
  t.deepEqual([st.trainCount, st.testCount], [21, 6]);
  t.deepEqual(st.problems, []);
  const lim = loadDataset('cifar10', { dataDir: root, trainLimit: 3, testLimit: 2 });
  t.deepEqual([lim.train.n, lim.test.n, lim.train.images.length], [3, 2, 3 * 3072]);
});

test('file size not a multiple of 3073: error names the file and the offset of the incomplete record', (t) => {
  const p = write('bad/size.bin', concat([realRecord(0), realRecord(1), new Uint8Array(100)]));
  t.is(t.throws(() => readCifarBinFiles([p]))!.message.split(' (')[0], `${p}: incomplete record 2 at byte 6146: it has 100 of 3073 bytes`);
  const empty = write('bad/empty.bin', new Uint8Array(0));
  t.regex(t.throws(() => readCifarBinFiles([empty]))!.message, /empty\.bin: empty file at byte 0/);
});

test('bad CIFAR label: error names the file, the byte offset and the record', (t) => {
  const bad = record(10, asymPixel);
  const p = write('bad/label.bin', concat([realRecord(0), bad, realRecord(1)]));
  t.is(t.throws(() => readCifarBinFiles([p]))!.message, `${p}: bad label 10 at byte 3073 (record 1): expected 0..9`);
  // in a directory, the error names the right batch file
  const root = path.join(tmp, 'badlabel-dir');
  writeBinDir(root, CLASSES.join('\n'));
  const b4 = path.join(root, 'cifar-10-batches-bin', 'data_batch_4.bin');
  const buf = fs.readFileSync(b4);
  buf[2 * 3073] = 255;
  fs.writeFileSync(b4, buf);
  t.is(t.throws(() => loadDataset('cifar10', { dataDir: root }))!.message, `${b4}: bad label 255 at byte 6146 (record 2): expected 0..9`);
});

test('batches.meta.txt: trimmed, trailing blanks dropped, inner blank line rejected', (t) => {
  t.deepEqual(readCifarMeta(write('meta/a.txt', ' airplane \r\nautomobile\r\n\r\n')), ['airplane', 'automobile']);
  const p = write('meta/b.txt', 'airplane\n\nbird\n');
  t.is(t.throws(() => readCifarMeta(p))!.message, `${p}: line 2 is blank: expected one class name per line`);
});

test('missing CIFAR-10: the error lists every folder searched and the fix', (t) => {
  const root = path.join(tmp, 'empty-root');
  fs.mkdirSync(path.join(root, 'cifar-10-batches-bin'), { recursive: true });
  fs.writeFileSync(path.join(root, 'cifar-10-batches-bin', 'data_batch_1.bin'), realRecord(0));
  const saved = process.env.BAYESNAS_DATA_DIR;
  process.env.BAYESNAS_DATA_DIR = path.join(tmp, 'env-root-that-does-not-exist');
  try {
    const loc = locateDataset('cifar10', { dataDir: root });
    if (loc.dir) return t.pass(`a real CIFAR-10 is installed at ${loc.dir}; the not-found message cannot be tested here`);
    const e = t.throws(() => loadDataset('cifar10', { dataDir: root }))!;
    t.true(e.message.startsWith('dataset cifar10 not found. Searched:\n'), e.message);
    t.true(e.message.includes(`${path.join(root, 'cifar-10-batches-bin')} (dataDir option, binary version): incomplete, missing data_batch_2.bin, data_batch_3.bin`), e.message);
    t.true(e.message.includes(`${path.join(tmp, 'env-root-that-does-not-exist', 'cifar-10-batches-bin')} ($BAYESNAS_DATA_DIR, binary version): no such folder`), e.message);
    t.true(e.message.includes(`${path.join(tmp, 'env-root-that-does-not-exist', 'cifar-10-batches-py')} ($BAYESNAS_DATA_DIR, python version)`), e.message);
    t.regex(e.message, /project data\/ folder/);
    t.regex(e.message, /Fix: .*cifar-10-binary\.tar\.gz.*data\/cifar-10-batches-bin\//);
  } finally {
    if (saved === undefined) delete process.env.BAYESNAS_DATA_DIR;
    else process.env.BAYESNAS_DATA_DIR = saved;
  }
});

// ─── Python (pickle) version ───────────────────────────────────────────────────────────────────

/**
 * A CIFAR python batch as Python 2's cPickle (protocol 2) writes it: dict with str keys 'batch_label',
 * 'labels' (list of ints), 'data' (numpy uint8 array N x 3072 via numpy.core.multiarray._reconstruct),
 * 'filenames' (list of str).
 */
function py2Pickle(labels: number[], data: Uint8Array, batchLabel = 'testing batch 1 of 1'): Uint8Array {
  const out: number[] = [];
  const put = (...b: number[]): void => { for (const x of b) out.push(x); };
  const str = (s: string): void => put(...Buffer.from(s, 'latin1'));
  let memo = 1;
  const binput = (): void => put(0x71, memo++ & 255);
  const sbs = (s: string): void => { put(0x55, s.length); str(s); binput(); }; // SHORT_BINSTRING
  const int = (v: number): void => { if (v < 256) put(0x4b, v); else put(0x4d, v & 255, v >> 8); };
  put(0x80, 2, 0x7d); binput(); put(0x28); // PROTO 2, EMPTY_DICT, MARK
  sbs('batch_label'); sbs(batchLabel);
  sbs('labels'); put(0x5d); binput(); put(0x28); for (const l of labels) int(l); put(0x65); // list, MARK, ints, APPENDS
  sbs('data');
  str('cnumpy.core.multiarray\n_reconstruct\n'); binput();
  str('cnumpy\nndarray\n'); binput();
  put(0x4b, 0, 0x85); put(0x55, 1); str('b'); put(0x87, 0x52); binput(); // (0,), 'b', TUPLE3, REDUCE
  put(0x28, 0x4b, 1); int(labels.length); put(0x4d, 0x00, 0x0c, 0x86); // MARK 1 (N, 3072)
  str('cnumpy\ndtype\n'); binput(); put(0x55, 2); str('u1'); put(0x4b, 0, 0x4b, 1, 0x87, 0x52); binput(); // dtype('u1', 0, 1)
  put(0x28, 0x4b, 3, 0x55, 1); str('|'); put(0x4e, 0x4e, 0x4e, 0x4a, 255, 255, 255, 255, 0x4a, 255, 255, 255, 255, 0x4b, 0, 0x74, 0x62); // dtype state, BUILD
  put(0x89, 0x54); // False, BINSTRING
  const len = Buffer.alloc(4); len.writeInt32LE(data.length); put(...len);
  const head = Uint8Array.from(out);
  const tail: number[] = [];
  const tput = (...b: number[]): void => { for (const x of b) tail.push(x); };
  tput(0x74, 0x62); // TUPLE (state), BUILD
  const tstr = (s: string): void => { tput(0x55, s.length, ...Buffer.from(s, 'latin1')); };
  tstr('filenames'); tput(0x5d, 0x28); labels.forEach((_, i) => tstr(`img_${i}.png`)); tput(0x65);
  tput(0x75, 0x2e); // SETITEMS, STOP
  return concat([head, data, Uint8Array.from(tail)]);
}

/** CHW rows (N x 3072) of the records, i.e. the 'data' array of the python version. */
function chwRows(recs: Uint8Array[]): Uint8Array {
  return concat(recs.map((r) => r.subarray(1)));
}

function findPython(): string | null {
  const venv = path.join(process.cwd(), 'python-ref', '.venv', 'bin', 'python');
  for (const py of [venv, 'python3']) {
    const r = spawnSync(py, ['-c', 'import numpy, pickle'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

test('python batch (restricted unpickler): Python-2-style pickle equals the binary version', (t) => {
  const recs = [realRecord(0), record(ASYM_LABEL, asymPixel), realRecord(1), realRecord(2)];
  const labels = [FASHION.labels[0]!, ASYM_LABEL, FASHION.labels[1]!, FASHION.labels[2]!];
  const pk = write('py/test_batch', py2Pickle(labels, chwRows(recs)));
  const bin = write('py/test_batch.bin', concat(recs));
  const a = readCifarPyBatch(pk);
  const b = readCifarBinFiles([bin]);
  t.deepEqual(Array.from(a.labels), labels);
  t.deepEqual(a.images, b.images);
  t.is(mismatch(a.images, 1, asymPixel), null);
});

test('python version cross-checked with real Python/numpy pickles (protocols 2 and 4), when Python is present', (t) => {
  const py = findPython();
  if (!py) return t.pass('no python3 with numpy here: only the Python-2-style fixture above is checked');
  t.log(`cross-checking with ${py}`);
  const recs = [record(ASYM_LABEL, asymPixel), ...Array.from({ length: 5 }, (_, k) => realRecord(k))];
  const labels = [ASYM_LABEL, ...Array.from(FASHION.labels.subarray(0, 5))];
  const bin = write('pyx/all.bin', concat(recs));
  const mine = write('pyx/py2style', py2Pickle(labels, chwRows(recs)));
  const script = `
import pickle, sys, numpy as np
raw = np.fromfile(sys.argv[1], dtype=np.uint8).reshape(-1, 3073)
with open(sys.argv[2], 'rb') as f: d = pickle.load(f, encoding='bytes')
assert d[b'labels'] == raw[:, 0].tolist(), 'labels differ'
assert d[b'data'].dtype == np.uint8 and d[b'data'].shape == (raw.shape[0], 3072) and (d[b'data'] == raw[:, 1:]).all(), 'data differs'
out = {b'batch_label': b'testing batch 1 of 1', b'labels': raw[:, 0].tolist(), b'data': np.ascontiguousarray(raw[:, 1:]),
       b'filenames': [b'x%d.png' % i for i in range(raw.shape[0])]}
for proto in (2, 4):
    with open(sys.argv[3] + str(proto), 'wb') as f: pickle.dump(out, f, protocol=proto)
with open(sys.argv[3] + 'meta', 'wb') as f:
    pickle.dump({b'label_names': [c.encode() for c in sys.argv[4].split(',')], b'num_cases_per_batch': 10000, b'num_vis': 3072}, f, protocol=2)
print('ok')
`;
  const prefix = path.join(tmp, 'pyx', 'p');
  const r = spawnSync(py, ['-c', script, bin, mine, prefix, CLASSES.join(',')], { encoding: 'utf8' });
  t.is(r.status, 0, `python: ${r.stderr}`);
  t.is(r.stdout.trim(), 'ok'); // Python reads our Python-2-style fixture as the same data
  const want = readCifarBinFiles([bin]);
  for (const proto of [2, 4]) {
    const s = readCifarPyBatch(`${prefix}${proto}`);
    t.deepEqual(Array.from(s.labels), labels, `protocol ${proto}`);
    t.deepEqual(s.images, want.images, `protocol ${proto}`);
  }
  // a whole cifar-10-batches-py folder written by Python
  const dir = path.join(tmp, 'pyroot', 'cifar-10-batches-py');
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch']) fs.copyFileSync(`${prefix}2`, path.join(dir, f));
  fs.copyFileSync(`${prefix}meta`, path.join(dir, 'batches.meta'));
  const d = loadCifarPyDir(dir);
  t.deepEqual(d.classes, CLASSES);
  t.is(d.train.n, 5 * recs.length);
  t.deepEqual(d.train.images.subarray(2 * want.images.length, 3 * want.images.length), want.images);
  const ds = loadDataset('cifar10', { dataDir: path.join(tmp, 'pyroot') });
  t.is(ds.dir, dir);
  t.deepEqual(ds.test.images, want.images);
});

test('restricted unpickler refuses code, unknown opcodes and truncation, naming file and offset', (t) => {
  // protocol 2: GLOBAL 'os system' then REDUCE: refused at the GLOBAL
  const evil = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('cos\nsystem\n'), Buffer.from([0x55, 2]), Buffer.from('id'), Buffer.from([0x85, 0x52, 0x2e])]);
  const p = write('evil/pk', evil);
  const e = t.throws(() => readCifarPyBatch(p))!;
  t.true(e.message.startsWith(`${p}: refused global os.system`), e.message);
  t.regex(e.message, /at byte 2 /);
  // protocol 0 text opcodes are not accepted
  const p0 = write('evil/p0', Buffer.from("cos\nsystem\n(S'id'\ntR."));
  t.regex(t.throws(() => readCifarPyBatch(p0))!.message, /refused global os\.system at byte 0/);
  const inst = write('evil/inst', Buffer.from([0x80, 0x02, 0x28, 0x69]));
  t.regex(t.throws(() => readCifarPyBatch(inst))!.message, /evil\/inst: unsupported pickle opcode at byte 3 \(pickle opcode 0x69\)/);
  // truncated in the middle of the data string
  const good = py2Pickle([1], chwRows([realRecord(0)]));
  const cut = write('evil/cut', good.subarray(0, 2000));
  t.regex(t.throws(() => readCifarPyBatch(cut))!.message, /evil\/cut: truncated at byte 2000: pickle opcode 0x54 at byte \d+ needs 3072 more bytes/);
  // bad label in the list
  const bl = write('evil/badlabel', py2Pickle([3, 11], chwRows([realRecord(0), realRecord(1)])));
  t.is(t.throws(() => readCifarPyBatch(bl))!.message, `${bl}: bad label 11 at 'labels'[1]: expected 0..9`);
  // the unpickler returns plain data
  const v = restrictedUnpickle(Buffer.from([0x80, 0x02, 0x5d, 0x28, 0x4b, 0x05, 0x4a, 0xff, 0xff, 0xff, 0xff, 0x88, 0x4e, 0x65, 0x2e]), 'inline');
  t.deepEqual(v, [5, -1, true, null]);
});
