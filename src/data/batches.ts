// Mini-batches: gathering, shape adaptation (pad to, channel replication), augmentation (DARTS' random crop
// with zero padding, horizontal flip, cutout), normalisation, and the batch iterators.
//
// All per-batch work is done on typed arrays; `batches()` creates exactly two tensors per batch (x and y)
// and the caller disposes them. The order of the steps follows DARTS' CIFAR transform:
//   RandomCrop(pad) -> RandomHorizontalFlip -> ToTensor + Normalize -> Cutout (on the normalised values,
//   so a cut-out pixel becomes 0 = the channel mean, exactly like DARTS' `img *= mask`).
import { tf } from '../engine/index.js';
import { deriveSeed, permutation, Rng } from './splits.js';
import type { DatasetName, Split } from './types.js';

export interface Normalization {
  /** per-channel mean of pixel/255 (length 1 is broadcast to every channel) */
  mean: readonly number[];
  /** per-channel standard deviation of pixel/255 */
  std: readonly number[];
}

/** Default normalisation constants (training-set statistics of pixel/255). */
export const NORMALIZATION: Record<DatasetName, Normalization> = {
  'mnist': { mean: [0.1307], std: [0.3081] },
  'fashion-mnist': { mean: [0.2860], std: [0.3530] },
  'cifar10': { mean: [0.4914, 0.4822, 0.4465], std: [0.2470, 0.2435, 0.2616] },
};

/** No normalisation beyond scaling to [0, 1]. */
export const UNIT_SCALE: Normalization = { mean: [0], std: [1] };

// ─── Whole-split shape adaptation ────────────────────────────────────────────────────────────────

/** Zero-pads every image to size x size, centred (28 -> 32 puts the image at offset 2). */
export function padTo(split: Split, size: number): Split {
  const { n, height: h, width: w, channels: c } = split;
  if (size < h || size < w) throw new Error(`padTo(${size}): images are ${h}x${w}, larger than the target`);
  if (size === h && size === w) return split;
  const out = new Uint8Array(n * size * size * c);
  gatherInto(split, identity(n), out, size, size, c);
  return { ...split, images: out, height: size, width: size };
}

/** Replicates a 1-channel split to `channels` identical channels (gray -> RGB). */
export function replicateChannels(split: Split, channels = 3): Split {
  if (split.channels === channels) return split;
  if (split.channels !== 1) throw new Error(`replicateChannels: images have ${split.channels} channels; only 1 -> ${channels} is supported`);
  const out = new Uint8Array(split.n * split.height * split.width * channels);
  gatherInto(split, identity(split.n), out, split.height, split.width, channels);
  return { ...split, images: out, channels };
}

function identity(n: number): Uint32Array {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

/**
 * Copies samples `indices` of `split` into `out` (NHWC, outH x outW x outC), zero-padding centred when the
 * output is larger and replicating channel 0 when the split has 1 channel and outC > 1.
 */
export function gatherInto(split: Split, indices: ArrayLike<number>, out: Uint8Array, outH: number, outW: number, outC: number): void {
  const { height: h, width: w, channels: c, images } = split;
  if (outH < h || outW < w) throw new Error(`cannot fit ${h}x${w} images into ${outH}x${outW}`);
  if (outC !== c && c !== 1) throw new Error(`cannot turn ${c}-channel images into ${outC} channels (only 1 -> n replication)`);
  const per = h * w * c;
  const outPer = outH * outW * outC;
  const oy = (outH - h) >> 1;
  const ox = (outW - w) >> 1;
  const same = outH === h && outW === w && outC === c;
  const padded = outH !== h || outW !== w;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    if (!(i >= 0 && i < split.n)) throw new Error(`sample index ${i} out of range 0..${split.n - 1}`);
    const src = i * per;
    const dst = k * outPer;
    if (same) {
      out.set(images.subarray(src, src + per), dst);
      continue;
    }
    if (padded) out.fill(0, dst, dst + outPer);
    for (let y = 0; y < h; y++) {
      let s = src + y * w * c;
      let d = dst + ((y + oy) * outW + ox) * outC;
      if (outC === c) {
        out.set(images.subarray(s, s + w * c), d);
      } else {
        for (let x = 0; x < w; x++, s++) {
          const v = images[s]!;
          for (let ch = 0; ch < outC; ch++) out[d++] = v;
        }
      }
    }
  }
}

// ─── Augmentation (in place, on NHWC batches) ────────────────────────────────────────────────────

/** Mirrors one image left-right in place (image at sample offset `base`). */
export function flipImage(data: Uint8Array | Float32Array, base: number, h: number, w: number, c: number): void {
  for (let y = 0; y < h; y++) {
    const row = base + y * w * c;
    for (let a = 0, b = w - 1; a < b; a++, b--) {
      const pa = row + a * c;
      const pb = row + b * c;
      for (let ch = 0; ch < c; ch++) {
        const t = data[pa + ch]!;
        data[pa + ch] = data[pb + ch]!;
        data[pb + ch] = t;
      }
    }
  }
}

/** Flips each of the n images with probability p. Returns which were flipped. */
export function randomFlip(data: Uint8Array | Float32Array, n: number, h: number, w: number, c: number, rng: Rng, p = 0.5): boolean[] {
  const flipped: boolean[] = [];
  for (let i = 0; i < n; i++) {
    const f = rng.bool(p);
    flipped.push(f);
    if (f) flipImage(data, i * h * w * c, h, w, c);
  }
  return flipped;
}

/**
 * Crops one image in place: the image is zero-padded by `pad` on each side and the h x w window whose top-left
 * corner is at (dy, dx) of the padded image (0 <= dy, dx <= 2*pad) is kept. `scratch` holds >= h*w*c values.
 */
export function cropImage(data: Uint8Array, base: number, h: number, w: number, c: number, pad: number, dy: number, dx: number, scratch: Uint8Array): void {
  const per = h * w * c;
  scratch.set(data.subarray(base, base + per));
  const sy = dy - pad; // source row of output row 0
  const sx = dx - pad;
  const x0 = Math.max(0, -sx);
  const x1 = Math.min(w, w - sx); // exclusive
  for (let y = 0; y < h; y++) {
    const row = base + y * w * c;
    const srcY = y + sy;
    if (srcY < 0 || srcY >= h || x1 <= x0) {
      data.fill(0, row, row + w * c);
      continue;
    }
    if (x0 > 0) data.fill(0, row, row + x0 * c);
    const s = (srcY * w + x0 + sx) * c;
    data.set(scratch.subarray(s, s + (x1 - x0) * c), row + x0 * c);
    if (x1 < w) data.fill(0, row + x1 * c, row + w * c);
  }
}

/** DARTS-style random crop with zero padding `pad` for each of the n images; returns the offsets used. */
export function randomCrop(data: Uint8Array, n: number, h: number, w: number, c: number, pad: number, rng: Rng): Array<[number, number]> {
  const offs: Array<[number, number]> = [];
  if (pad <= 0) return offs;
  const scratch = new Uint8Array(h * w * c);
  for (let i = 0; i < n; i++) {
    const dy = rng.int(2 * pad + 1);
    const dx = rng.int(2 * pad + 1);
    offs.push([dy, dx]);
    cropImage(data, i * h * w * c, h, w, c, pad, dy, dx, scratch);
  }
  return offs;
}

/** The cutout rectangle [y1, y2) x [x1, x2) for centre (cy, cx) and side `length`, clipped like DARTS. */
export function cutoutRect(h: number, w: number, length: number, cy: number, cx: number): { y1: number; y2: number; x1: number; x2: number } {
  const half = Math.floor(length / 2);
  const clip = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi);
  return { y1: clip(cy - half, h), y2: clip(cy + half, h), x1: clip(cx - half, w), x2: clip(cx + half, w) };
}

/** Zeroes the cutout square centred at (cy, cx) in one image (all channels). */
export function cutoutImage(data: Uint8Array | Float32Array, base: number, h: number, w: number, c: number, length: number, cy: number, cx: number): void {
  const r = cutoutRect(h, w, length, cy, cx);
  for (let y = r.y1; y < r.y2; y++) data.fill(0, base + (y * w + r.x1) * c, base + (y * w + r.x2) * c);
}

/** DARTS cutout: for each image, a centre uniform over all pixels, a `length`-sided square zeroed (clipped). Returns the centres. */
export function randomCutout(data: Uint8Array | Float32Array, n: number, h: number, w: number, c: number, length: number, rng: Rng): Array<[number, number]> {
  const centres: Array<[number, number]> = [];
  if (length <= 0) return centres;
  for (let i = 0; i < n; i++) {
    const cy = rng.int(h);
    const cx = rng.int(w);
    centres.push([cy, cx]);
    cutoutImage(data, i * h * w * c, h, w, c, length, cy, cx);
  }
  return centres;
}

// ─── Normalisation ───────────────────────────────────────────────────────────────────────────────

function channelArray(v: readonly number[], c: number, what: string): number[] {
  if (v.length === c) return v.slice();
  if (v.length === 1) return new Array<number>(c).fill(v[0]!);
  throw new Error(`normalisation ${what} has ${v.length} values for ${c}-channel images`);
}

/** (pixel / 255 - mean[ch]) / std[ch] into a new (or the given) Float32Array; NHWC with c channels. */
export function normalize(u8: Uint8Array, c: number, norm: Normalization, out?: Float32Array): Float32Array {
  const mean = channelArray(norm.mean, c, 'mean');
  const std = channelArray(norm.std, c, 'std');
  if (std.some((s) => !(s > 0))) throw new Error(`normalisation std must be > 0, got ${std.join(', ')}`);
  const res = out ?? new Float32Array(u8.length);
  if (res.length < u8.length) throw new Error('normalize: output array too small');
  // lookup table per channel: 256 * c entries
  const lut = new Float32Array(256 * c);
  for (let ch = 0; ch < c; ch++) for (let v = 0; v < 256; v++) lut[ch * 256 + v] = (v / 255 - mean[ch]!) / std[ch]!;
  if (c === 1) {
    for (let i = 0; i < u8.length; i++) res[i] = lut[u8[i]!]!;
  } else {
    for (let i = 0, ch = 0; i < u8.length; i++) {
      res[i] = lut[ch * 256 + u8[i]!]!;
      if (++ch === c) ch = 0;
    }
  }
  return res;
}

// ─── Batches ─────────────────────────────────────────────────────────────────────────────────────

export interface AugmentOptions {
  /** random crop: zero padding on each side (DARTS CIFAR: 4); 0/undefined = off */
  cropPad?: number;
  /** random horizontal flip with probability 0.5 */
  flip?: boolean;
  /** cutout square side (DARTS: 16); 0/undefined = off */
  cutout?: number;
}

/** DARTS' CIFAR-10 training augmentation (crop pad 4, flip) plus cutout 16 when `cutout` is true. */
export function dartsAugment(cutout = false): AugmentOptions {
  return { cropPad: 4, flip: true, ...(cutout ? { cutout: 16 } : {}) };
}

export interface BatchOptions {
  batchSize: number;
  /** shuffle the order (default false) */
  shuffle?: boolean;
  /** seed of the order and the augmentation (default 0) */
  seed?: number;
  /** epoch number, mixed into the seed so that each epoch gets another order (default 0) */
  epoch?: number;
  /** augmentation, or false/undefined for none */
  augment?: AugmentOptions | false;
  /** drop a last incomplete batch (default false) */
  dropLast?: boolean;
  /** per-channel normalisation; default NORMALIZATION[split.dataset], else an error */
  normalization?: Normalization | DatasetName;
  /** zero-pad images to this square size (e.g. 32 for MNIST in a CIFAR-shaped network) */
  padTo?: number;
  /** output channels; a 1-channel split is replicated (e.g. 3) */
  channels?: number;
}

export interface ArrayBatch {
  /** float32 NHWC, size x height x width x channels */
  x: Float32Array;
  /** int32 labels */
  y: Int32Array;
  size: number;
  shape: [number, number, number, number];
  /** positions of the samples in the split */
  indices: Uint32Array;
}

export interface TensorBatch {
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  size: number;
}

/** Number of batches an epoch yields. */
export function countBatches(n: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

function resolveNorm(split: Split, norm: BatchOptions['normalization']): Normalization {
  if (norm === undefined) {
    if (!split.dataset) throw new Error('batches: the split has no `dataset`; pass `normalization` (a dataset name or { mean, std })');
    return NORMALIZATION[split.dataset];
  }
  return typeof norm === 'string' ? NORMALIZATION[norm] : norm;
}

/** Batches as typed arrays (fresh arrays per batch). */
export function* arrayBatches(split: Split, opts: BatchOptions): Generator<ArrayBatch> {
  const bs = opts.batchSize;
  if (!(bs >= 1 && Number.isInteger(bs))) throw new Error(`batchSize must be a positive integer, got ${bs}`);
  const H = opts.padTo ?? split.height;
  const W = opts.padTo ?? split.width;
  const C = opts.channels ?? split.channels;
  const norm = resolveNorm(split, opts.normalization);
  const seed = opts.seed ?? 0;
  const epoch = opts.epoch ?? 0;
  const order = opts.shuffle ? permutation(split.n, new Rng(deriveSeed(seed, 2 * epoch))) : identity(split.n);
  const aug = opts.augment || null;
  const rng = new Rng(deriveSeed(seed, 2 * epoch + 1));
  const nb = countBatches(split.n, bs, opts.dropLast);
  const per = H * W * C;
  for (let b = 0; b < nb; b++) {
    const indices = order.slice(b * bs, Math.min(split.n, (b + 1) * bs));
    const size = indices.length;
    const u8 = new Uint8Array(size * per);
    gatherInto(split, indices, u8, H, W, C);
    if (aug?.cropPad) randomCrop(u8, size, H, W, C, aug.cropPad, rng);
    if (aug?.flip) randomFlip(u8, size, H, W, C, rng);
    const x = normalize(u8, C, norm);
    if (aug?.cutout) randomCutout(x, size, H, W, C, aug.cutout, rng);
    const y = new Int32Array(size);
    for (let k = 0; k < size; k++) y[k] = split.labels[indices[k]!]!;
    yield { x, y, size, shape: [size, H, W, C], indices };
  }
}

/**
 * Batches as tensors: x float32 [size, H, W, C] (NHWC), y int32 [size]. Exactly two tensors per batch,
 * created when the batch is yielded; the caller disposes both.
 */
export function* batches(split: Split, opts: BatchOptions): Generator<TensorBatch> {
  for (const b of arrayBatches(split, opts)) {
    const x = tf.tensor4d(b.x, b.shape, 'float32');
    let y: tf.Tensor1D;
    try {
      y = tf.tensor1d(b.y, 'int32');
    } catch (e) {
      x.dispose();
      throw e;
    }
    yield { x, y, size: b.size };
  }
}
