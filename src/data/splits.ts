// Seeded randomness and train/switch/val splits.
//
// PRNG: mulberry32 (Tommy Ettinger's 32-bit generator: one 32-bit state word, a Weyl increment of
// 0x6D2B79F5 and an xorshift-multiply output mix; period 2^32). It is small, fast in JS (only Math.imul
// and shifts), and good enough for shuffling and augmentation; it is not cryptographic. The user's seed is
// first passed through a splitmix32-style finaliser so that nearby seeds (0, 1, 2, ...) start far apart.
// Everything in src/data that is random takes an `Rng`, so a run is reproducible from its seed.
import type { Split } from './types.js';

/** Seeded pseudo-random generator (mulberry32). */
export class Rng {
  private state: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`Rng seed must be a finite number, got ${seed}`);
    this.state = mixSeed(seed);
  }

  /** Next raw 32-bit unsigned integer. */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n), n >= 1 (n up to 2^32; the modulo bias is at most n / 2^32). */
  int(n: number): number {
    if (!(n >= 1) || !Number.isInteger(n)) throw new Error(`Rng.int: n must be a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** true with probability p. */
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
}

/** splitmix32-style finaliser of a (possibly non-integer, negative or > 2^32) seed into a 32-bit state. */
export function mixSeed(seed: number, salt = 0): number {
  // fold in the high part so that seeds beyond 2^32 are not silently truncated
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  let z = (lo ^ Math.imul(hi, 0x9e3779b9) ^ Math.imul(salt, 0x85ebca6b)) >>> 0;
  z = (z + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Derives an independent seed for a sub-stream (e.g. per epoch), deterministic in (seed, salt). */
export function deriveSeed(seed: number, salt: number): number {
  return mixSeed(seed, salt + 1);
}

/** In-place Fisher-Yates shuffle. */
export function shuffleInPlace<T extends { length: number; [i: number]: number }>(a: T, rng: Rng): T {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

/** A uniformly random permutation of 0..n-1. */
export function permutation(n: number, rng: Rng): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return shuffleInPlace(p, rng);
}

/** Copies the samples `indices` of a split into a new contiguous split (same layout). */
export function takeIndices(split: Split, indices: ArrayLike<number>): Split {
  const per = split.height * split.width * split.channels;
  const n = indices.length;
  const images = new Uint8Array(n * per);
  const labels = new Uint8Array(n);
  for (let k = 0; k < n; k++) {
    const i = indices[k]!;
    if (!(i >= 0 && i < split.n)) throw new Error(`takeIndices: index ${i} out of range 0..${split.n - 1}`);
    images.set(split.images.subarray(i * per, (i + 1) * per), k * per);
    labels[k] = split.labels[i]!;
  }
  return { images, labels, n, height: split.height, width: split.width, channels: split.channels, ...(split.dataset ? { dataset: split.dataset } : {}) };
}

/** The first k samples of a split (views, no copy); k >= n returns the split itself. */
export function headOf(split: Split, k: number): Split {
  if (!(k >= 0)) throw new Error(`limit must be >= 0, got ${k}`);
  if (k >= split.n) return split;
  const per = split.height * split.width * split.channels;
  return { ...split, images: split.images.subarray(0, k * per), labels: split.labels.subarray(0, k), n: k };
}

/** The last `k` samples of a split held out from the rest (as views): `{ rest, held }`. */
export function holdOut(split: Split, k: number): { rest: Split; held: Split } {
  if (!(Number.isInteger(k) && k > 0 && k < split.n)) throw new Error(`hold-out size must be an integer in 1..${split.n - 1}, got ${k}`);
  const per = split.height * split.width * split.channels, m = split.n - k;
  return {
    rest: { ...split, images: split.images.subarray(0, m * per), labels: split.labels.subarray(0, m), n: m },
    held: { ...split, images: split.images.subarray(m * per), labels: split.labels.subarray(m), n: k },
  };
}

export interface SplitSizes {
  /** weights-training subset */
  train?: number;
  /** the BayesNAS "switch" subset */
  switch?: number;
  /** validation subset */
  val?: number;
}

export interface SplitOptions {
  seed: number;
  /**
   * Sizes of the subsets: all values <= 1 are fractions of n (rounded down; if the fractions sum to 1 the
   * rounding remainder goes to `train`), otherwise counts. Missing entries are 0. Default
   * { train: 0.5, val: 0.5 } (DARTS' 50/50 search split, no switch subset).
   */
  sizes?: SplitSizes;
  /** After the shuffle and the split, keep only the first k of each subset (quick runs). */
  limits?: SplitSizes;
}

export interface Subset extends Split {
  /** positions of the samples in the split it was taken from */
  indices: Uint32Array;
}

export interface TrainSplits {
  train: Subset;
  switch: Subset;
  val: Subset;
  seed: number;
}

/** Resolves fractions or counts to integer counts for a set of n samples. */
export function resolveSizes(n: number, sizes: SplitSizes): { train: number; switch: number; val: number } {
  const keys = ['train', 'switch', 'val'] as const;
  const v = keys.map((k) => sizes[k] ?? 0);
  for (const [i, x] of v.entries()) {
    if (!(x >= 0) || !Number.isFinite(x)) throw new Error(`split size ${keys[i]}=${x} must be a finite number >= 0`);
  }
  const fractions = v.every((x) => x <= 1) && v.some((x) => x > 0);
  let c: number[];
  if (fractions) {
    const sum = v.reduce((a, b) => a + b, 0);
    if (sum > 1 + 1e-9) throw new Error(`split fractions sum to ${sum} > 1 (${keys.map((k, i) => `${k}=${v[i]}`).join(', ')})`);
    c = v.map((x) => Math.floor(x * n + 1e-9));
    if (Math.abs(sum - 1) < 1e-9) c[0]! += n - c.reduce((a, b) => a + b, 0);
  } else {
    for (const [i, x] of v.entries()) {
      if (!Number.isInteger(x)) throw new Error(`split size ${keys[i]}=${x}: counts must be integers (or give all sizes as fractions <= 1)`);
    }
    c = v;
    const sum = c.reduce((a, b) => a + b, 0);
    if (sum > n) throw new Error(`split counts sum to ${sum} but the set has only ${n} samples (${keys.map((k, i) => `${k}=${c[i]}`).join(', ')})`);
  }
  return { train: c[0]!, switch: c[1]!, val: c[2]! };
}

/**
 * Splits a training set into disjoint `train` / `switch` / `val` subsets: shuffle 0..n-1 with the seed,
 * then take consecutive runs of the permutation (train first, then switch, then val), then apply `limits`.
 * Deterministic for (n, sizes, seed); the subsets are copies in the source layout.
 */
export function splitTrainingSet(split: Split, opts: SplitOptions): TrainSplits {
  const sizes = resolveSizes(split.n, opts.sizes ?? { train: 0.5, val: 0.5 });
  const perm = permutation(split.n, new Rng(opts.seed));
  let at = 0;
  const take = (name: 'train' | 'switch' | 'val'): Subset => {
    const count = sizes[name];
    const lim = opts.limits?.[name];
    if (lim !== undefined && !(lim >= 0 && Number.isInteger(lim))) throw new Error(`limit ${name}=${lim} must be an integer >= 0`);
    const idx = perm.slice(at, at + Math.min(count, lim ?? count));
    at += count;
    return { ...takeIndices(split, idx), indices: idx };
  };
  const train = take('train');
  const sw = take('switch');
  const val = take('val');
  return { train, switch: sw, val, seed: opts.seed };
}
