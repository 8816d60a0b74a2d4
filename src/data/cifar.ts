// CIFAR-10 reader for the official binary batches (cifar-10-binary.tar.gz -> cifar-10-batches-bin/).
//
// Each .bin file is a sequence of 3073-byte records, no header: 1 label byte (0..9), then 3072 pixel bytes:
// the red plane (1024 bytes), the green plane, the blue plane, each 32x32 row-major (the first 32 bytes are
// the red values of the top row). So a record is CHW; we return NHWC uint8.
//
// Also reads the python version (cifar-10-python.tar.gz -> cifar-10-batches-py/: data_batch_1..5, test_batch,
// batches.meta), protocol-2 pickles of dicts, with the restricted unpickler of ./pickle.ts, which executes
// nothing and accepts only the opcodes and numpy globals these files use.
import fs from 'node:fs';
import path from 'node:path';
import { isNdArray, restrictedUnpickle } from './pickle.js';
import type { Split } from './types.js';

export const CIFAR_SIZE = 32;
export const CIFAR_PIXELS = CIFAR_SIZE * CIFAR_SIZE; // per plane
export const CIFAR_RECORD_BYTES = 1 + 3 * CIFAR_PIXELS; // 3073
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
export const CIFAR_TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
export const CIFAR_TEST_FILE = 'test_batch.bin';
export const CIFAR_META_FILE = 'batches.meta.txt';

/** Checks a buffer of CIFAR binary records: size a multiple of 3073 and every label < numClasses. Returns the record count. */
export function checkCifarBin(buf: Uint8Array, file: string, numClasses = 10): number {
  if (buf.length === 0) throw new Error(`${file}: empty file at byte 0: expected records of ${CIFAR_RECORD_BYTES} bytes (1 label byte + 3072 pixel bytes)`);
  const rem = buf.length % CIFAR_RECORD_BYTES;
  const n = (buf.length - rem) / CIFAR_RECORD_BYTES;
  if (rem !== 0) {
    throw new Error(`${file}: incomplete record ${n} at byte ${n * CIFAR_RECORD_BYTES}: it has ${rem} of ${CIFAR_RECORD_BYTES} bytes `
      + `(the file's ${buf.length} bytes are not a multiple of ${CIFAR_RECORD_BYTES} = 1 label byte + 3072 pixel bytes); the file is truncated or not a CIFAR-10 binary batch`);
  }
  for (let i = 0; i < n; i++) {
    const label = buf[i * CIFAR_RECORD_BYTES]!;
    if (label >= numClasses) {
      throw new Error(`${file}: bad label ${label} at byte ${i * CIFAR_RECORD_BYTES} (record ${i}): expected 0..${numClasses - 1}`);
    }
  }
  return n;
}

/**
 * Converts n CHW images (3 planes of 32x32, row-major) into NHWC, writing at sample `at` of `images`. Image i's
 * first byte is at src[first + i * stride]; the labels (if `labelOffset` >= 0) at src[labelOffset + i * stride].
 */
function chwToNhwc(src: Uint8Array, n: number, first: number, stride: number, images: Uint8Array, at: number): void {
  const P = CIFAR_PIXELS;
  for (let i = 0; i < n; i++) {
    const r = first + i * stride;
    const g = r + P;
    const b = g + P;
    let o = (at + i) * 3 * P;
    for (let p = 0; p < P; p++, o += 3) {
      images[o] = src[r + p]!;
      images[o + 1] = src[g + p]!;
      images[o + 2] = src[b + p]!;
    }
  }
}

function decodeRecords(buf: Uint8Array, n: number, images: Uint8Array, labels: Uint8Array, at: number): void {
  for (let i = 0; i < n; i++) labels[at + i] = buf[i * CIFAR_RECORD_BYTES]!;
  chwToNhwc(buf, n, 1, CIFAR_RECORD_BYTES, images, at);
}

/** Parses one binary batch held in memory into an NHWC split. */
export function parseCifarBin(buf: Uint8Array, file: string, numClasses = 10): Split {
  const n = checkCifarBin(buf, file, numClasses);
  const images = new Uint8Array(n * 3 * CIFAR_PIXELS);
  const labels = new Uint8Array(n);
  decodeRecords(buf, n, images, labels, 0);
  return { images, labels, n, height: CIFAR_SIZE, width: CIFAR_SIZE, channels: 3, dataset: 'cifar10' };
}

function readFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Reads one or more binary batch files, concatenated in the given order, into one NHWC split. */
export function readCifarBinFiles(files: string[], numClasses = 10): Split {
  const bufs = files.map((f) => readFile(f));
  const counts = bufs.map((b, i) => checkCifarBin(b, files[i]!, numClasses));
  const n = counts.reduce((a, b) => a + b, 0);
  const images = new Uint8Array(n * 3 * CIFAR_PIXELS);
  const labels = new Uint8Array(n);
  let at = 0;
  for (const [i, b] of bufs.entries()) {
    decodeRecords(b, counts[i]!, images, labels, at);
    at += counts[i]!;
  }
  return { images, labels, n, height: CIFAR_SIZE, width: CIFAR_SIZE, channels: 3, dataset: 'cifar10' };
}

/** Reads batches.meta.txt: one class name per line, trimmed, trailing blank lines dropped. */
export function readCifarMeta(file: string): string[] {
  const lines = readFile(file).toString('latin1').split(/\r?\n/).map((l) => l.trim());
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const blank = lines.indexOf('');
  if (lines.length === 0) throw new Error(`${file}: no class names (expected one per line)`);
  if (blank >= 0) throw new Error(`${file}: line ${blank + 1} is blank: expected one class name per line`);
  return lines;
}

/** Loads a `cifar-10-batches-bin` folder: train = data_batch_1..5 in order, test = test_batch. */
export function loadCifarBinDir(dir: string): { train: Split; test: Split; classes: string[] } {
  const meta = path.join(dir, CIFAR_META_FILE);
  const classes = fs.existsSync(meta) ? readCifarMeta(meta) : CIFAR10_CLASSES.slice();
  if (classes.length !== 10) throw new Error(`${meta}: ${classes.length} class names: expected 10 for CIFAR-10`);
  const train = readCifarBinFiles(CIFAR_TRAIN_FILES.map((f) => path.join(dir, f)), classes.length);
  const test = readCifarBinFiles([path.join(dir, CIFAR_TEST_FILE)], classes.length);
  return { train, test, classes };
}

// ─── Python (pickle) version ─────────────────────────────────────────────────────────────────────

export const CIFAR_PY_TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}`);
export const CIFAR_PY_TEST_FILE = 'test_batch';
export const CIFAR_PY_META_FILE = 'batches.meta';

function pickleDict(file: string): Map<string, unknown> {
  const v = restrictedUnpickle(readFile(file), file);
  if (!(v instanceof Map)) throw new Error(`${file}: the pickle holds no dict: not a CIFAR-10 python batch`);
  return v as Map<string, unknown>;
}

/** Reads one python batch (dict with b'data' uint8 N x 3072 and b'labels' list of N ints) into an NHWC split. */
export function readCifarPyBatch(file: string, numClasses = 10): Split {
  const d = pickleDict(file);
  const data = d.get('data');
  const labels = d.get('labels');
  if (!isNdArray(data)) throw new Error(`${file}: no 'data' uint8 array in the batch dict (keys: ${[...d.keys()].join(', ')})`);
  if (data.shape.length !== 2 || data.shape[1] !== 3 * CIFAR_PIXELS || data.fortranOrder) {
    throw new Error(`${file}: 'data' has shape ${data.shape.join('x')}${data.fortranOrder ? ' (Fortran order)' : ''}: expected N x 3072 in C order`);
  }
  const n = data.shape[0]!;
  if (!Array.isArray(labels) || labels.length !== n) {
    throw new Error(`${file}: 'labels' is ${Array.isArray(labels) ? `a list of ${labels.length}` : 'not a list'}: expected ${n} labels, one per row of 'data'`);
  }
  const lab = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const l = labels[i];
    if (typeof l !== 'number' || !Number.isInteger(l) || l < 0 || l >= numClasses) {
      throw new Error(`${file}: bad label ${String(l)} at 'labels'[${i}]: expected 0..${numClasses - 1}`);
    }
    lab[i] = l;
  }
  const images = new Uint8Array(n * 3 * CIFAR_PIXELS);
  chwToNhwc(data.data, n, 0, 3 * CIFAR_PIXELS, images, 0);
  return { images, labels: lab, n, height: CIFAR_SIZE, width: CIFAR_SIZE, channels: 3, dataset: 'cifar10' };
}

/** Reads batches.meta (dict with b'label_names'). */
export function readCifarPyMeta(file: string): string[] {
  const names = pickleDict(file).get('label_names');
  if (!Array.isArray(names) || !names.every((x) => x instanceof Uint8Array || typeof x === 'string')) {
    throw new Error(`${file}: no 'label_names' list of strings`);
  }
  return names.map((x) => (typeof x === 'string' ? x : Buffer.from(x as Uint8Array).toString('latin1')));
}

function concatSplits(parts: Split[]): Split {
  if (parts.length === 1) return parts[0]!;
  const n = parts.reduce((a, p) => a + p.n, 0);
  const images = new Uint8Array(n * 3 * CIFAR_PIXELS);
  const labels = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * 3 * CIFAR_PIXELS);
    labels.set(p.labels, at);
    at += p.n;
  }
  return { images, labels, n, height: CIFAR_SIZE, width: CIFAR_SIZE, channels: 3, dataset: 'cifar10' };
}

/** Loads a `cifar-10-batches-py` folder: train = data_batch_1..5 in order, test = test_batch. */
export function loadCifarPyDir(dir: string): { train: Split; test: Split; classes: string[] } {
  const meta = path.join(dir, CIFAR_PY_META_FILE);
  const classes = fs.existsSync(meta) ? readCifarPyMeta(meta) : CIFAR10_CLASSES.slice();
  if (classes.length !== 10) throw new Error(`${meta}: ${classes.length} class names: expected 10 for CIFAR-10`);
  const train = concatSplits(CIFAR_PY_TRAIN_FILES.map((f) => readCifarPyBatch(path.join(dir, f), classes.length)));
  const test = readCifarPyBatch(path.join(dir, CIFAR_PY_TEST_FILE), classes.length);
  return { train, test, classes };
}
