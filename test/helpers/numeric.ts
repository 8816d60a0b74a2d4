// Numerical helpers for gradient tests: central finite differences on selected coordinates, and
// relative-error comparison of typed arrays.
import { tf } from '../../src/engine/index.js';

/** Deterministic pseudo-random floats in [-1, 1) (mulberry32). */
export function randomArray(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

export function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(randomArray(n, seed).map((v) => v * scale), shape);
}

/** max |a-b| / max(1e-12, max|b|): a scale-aware relative error. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-12);
}

/**
 * Central finite differences of scalar f at x on `count` coordinates chosen deterministically.
 * Returns [indices, numeric, analytic] for comparison. For functions linear in x any h is exact
 * up to rounding, so linear ops are checked with h = 1.
 */
export function fdCheck(f: (x: tf.Tensor) => tf.Scalar, x: tf.Tensor, analytic: tf.Tensor, count = 12, h = 1e-2) {
  const base = x.dataSync().slice();
  const g = analytic.dataSync();
  const idx: number[] = [];
  const step = Math.max(1, Math.floor(base.length / count));
  for (let i = 0; i < base.length && idx.length < count; i += step) idx.push((i * 7919) % base.length);
  const num: number[] = [], ana: number[] = [];
  for (const i of idx) {
    const plus = base.slice(); plus[i] += h;
    const minus = base.slice(); minus[i] -= h;
    const fp = tf.tidy(() => f(tf.tensor(plus, x.shape)).dataSync()[0]);
    const fm = tf.tidy(() => f(tf.tensor(minus, x.shape)).dataSync()[0]);
    num.push((fp - fm) / (2 * h));
    ana.push(g[i]);
  }
  return { idx, numeric: num, analytic: ana, err: relErr(ana, num) };
}
