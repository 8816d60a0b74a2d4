// Gradient fixes for gaps in tfjs-core 4.22 (shared/notes/engine-probe.md §1a), installed once by
// initEngine() for every backend:
//   * Conv2D / DepthwiseConv2dNative with dilation > 1: tfjs-core throws; TensorFlow's CPU backprop
//     kernels refuse dilation too. We compose the exact gradient from forward kernels.
//   * StridedSlice: no gradient in tfjs-core. We scatter dy back by zero insertion and padding.
//   * AvgPool with 'same' (or explicit) padding: the cpu backend's AvgPoolGrad divides border windows
//     by k² although the forward divides by the count of real inputs. We route it through the 'valid'
//     gradient on the padded input, which is right on every backend (tensorflow's own is right as it is;
//     webgpu has a program of its own).
//   * Relu: on the tensorflow backend the gradient runs TensorFlow's fused ReluGrad kernel, on webgpu a
//     program of our own (one kernel instead of tfjs-core's step+mul composition); cpu keeps the stock gradient.
//   * Multiply: tfjs-core's gradient casts both operands to float32 even when they are (one kernel each).
//   * MaxPool: on the tensorflow backend, an argmax scatter instead of TensorFlow's slow MaxPoolGrad.
//   * Conv2D 1x1 stride 1: on the tensorflow backend, the filter gradient is one Einsum (a matrix product).
//   * DepthwiseConv2dNative: on the tensorflow backend, the filter gradient picks TensorFlow's oneDNN
//     or Eigen kernel by shape (see depthwiseFilterGrad).
// `batchNorm` without scale/offset is handled by our own batch-norm op (ops.ts), which always passes both.
import * as tf from '@tensorflow/tfjs-core';
import { native, onTensorflow } from './native.js';
import { atrousConv } from './ops.js';
import { avgPoolGradWebgpu, reluGradWebgpu, webgpuKernelsReady } from './webgpu-kernels.js';

type Pads = { top: number; bottom: number; left: number; right: number };
const pair = (v: number | number[] | undefined, d = 1): [number, number] =>
  v == null ? [d, d] : Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v, v];

function convPads(xShape: number[], fShape: number[], attrs: Record<string, unknown>, depthwise: boolean): Pads {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], fShape as [number, number, number, number],
    attrs.strides as [number, number], attrs.dilations as [number, number],
    attrs.pad as 'valid', attrs.dimRoundingMode as 'floor' | undefined, depthwise);
  return info.padInfo;
}

/** Shifted windows of a padded input: win[i*kw+j][b,oh,ow,c] = x[b, oh + i*dh - top, ow + j*dw - left, c] (stride 1). */
function windows(x: tf.Tensor4D, kh: number, kw: number, dh: number, dw: number, p: Pads, Ho: number, Wo: number): tf.Tensor4D[] {
  const xp = tf.pad(x, [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]]);
  const out: tf.Tensor4D[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) out.push(tf.slice(xp, [0, i * dh, j * dw, 0], [x.shape[0], Ho, Wo, x.shape[3]]));
  }
  return out;
}

/** Exact gradient of a stride-1 dilated convolution (full or depthwise with multiplier 1). */
function dilatedConvGrad(dy: tf.Tensor4D, x: tf.Tensor4D, filter: tf.Tensor4D, attrs: Record<string, unknown>, depthwise: boolean) {
  const [sh, sw] = pair(attrs.strides as number[]);
  const [dh, dw] = pair(attrs.dilations as number[]);
  const [kh, kw, , m] = filter.shape;
  if (sh !== 1 || sw !== 1) throw new Error('dilated convolution gradient: stride must be 1 (use engine ops.conv2d for stride with dilation)');
  if (depthwise && m !== 1) throw new Error('dilated depthwise convolution gradient: channel multiplier must be 1');
  const p = convPads(x.shape, filter.shape, attrs, depthwise);
  const keh = (kh - 1) * dh + 1, kew = (kw - 1) * dw + 1;
  const back: [[number, number], [number, number], [number, number], [number, number]] =
    [[0, 0], [keh - 1 - p.top, keh - 1 - p.bottom], [kew - 1 - p.left, kew - 1 - p.right], [0, 0]];
  if (back.some(([a, b]) => a < 0 || b < 0)) throw new Error('dilated convolution gradient: padding larger than the kernel extent is not supported');
  const [, Ho, Wo] = dy.shape;
  return {
    x: () => {
      const flipped = tf.reverse(filter, [0, 1]) as tf.Tensor4D;
      if (dh === dw) return atrousConv(dy, depthwise ? flipped : tf.transpose(flipped, [0, 1, 3, 2]) as tf.Tensor4D, dh, depthwise, [back[1], back[2]]);
      const dyp = tf.pad(dy, back);
      return depthwise ? tf.depthwiseConv2d(dyp, flipped, 1, 'valid', 'NHWC', [dh, dw])
        : tf.conv2d(dyp, tf.transpose(flipped, [0, 1, 3, 2]) as tf.Tensor4D, 1, 'valid', 'NHWC', [dh, dw]);
    },
    filter: () => {
      const wins = windows(x, kh, kw, dh, dw, p, Ho, Wo);
      if (depthwise) {
        return tf.reshape(tf.stack(wins.map((w) => tf.sum(tf.mul(w, dy), [0, 1, 2]))), [kh, kw, x.shape[3], 1]);
      }
      const N = x.shape[0] * Ho * Wo;
      const cols = tf.reshape(tf.concat(wins, 3), [N, kh * kw * x.shape[3]]);
      return tf.reshape(tf.matMul(cols, tf.reshape(dy, [N, dy.shape[3]]), true, false), filter.shape);
    },
  };
}

/** Gradient of StridedSlice with positive strides (any masks): zero-insert by stride, then pad into place. */
function stridedSliceGrad(dy: tf.Tensor, xShape: number[], attrs: Record<string, unknown>) {
  const a = attrs as { begin: number[]; end: number[]; strides: number[]; beginMask: number; endMask: number; ellipsisMask: number; newAxisMask: number; shrinkAxisMask: number };
  const info = tf.slice_util.sliceInfo(xShape, a.begin, a.end, a.strides, a.beginMask, a.endMask, a.ellipsisMask, a.newAxisMask, a.shrinkAxisMask);
  const sizes = xShape.map((dim, i) => {
    const s = info.strides[i];
    if (s <= 0) throw new Error(`StridedSlice gradient: only positive strides are supported (axis ${i} has ${s})`);
    return Math.max(0, Math.ceil((info.end[i] - info.begin[i]) / s));
  });
  let g = tf.reshape(dy, sizes);
  for (let ax = 0; ax < xShape.length; ax++) {
    const s = info.strides[ax];
    const n = sizes[ax];
    if (s === 1 || n === 0) continue;
    const shp = g.shape;
    // as [before, n, 1, after] padded to [before, n, s, after]: rank 4 whatever the tensor's rank
    // (the webgpu backend's Pad kernel does not compile for rank 5)
    const prod = (d: number[]) => d.reduce((p, q) => p * q, 1);
    g = tf.pad(tf.reshape(g, [prod(shp.slice(0, ax)), n, 1, prod(shp.slice(ax + 1))]), [[0, 0], [0, 0], [0, s - 1], [0, 0]]);
    g = tf.reshape(g, [...shp.slice(0, ax), n * s, ...shp.slice(ax + 1)]);
    g = tf.slice(g, shp.map(() => 0), shp.map((d, i) => (i === ax ? (n - 1) * s + 1 : d)));
  }
  const pads = xShape.map((dim, i) => {
    const before = sizes[i] === 0 ? 0 : info.begin[i];
    return [before, dim - before - g.shape[i]] as [number, number];
  });
  return tf.pad(g, pads);
}

/** AvgPool gradient that matches the forward's divisor at padded borders, on every backend. */
function avgPoolGrad(dy: tf.Tensor4D, x: tf.Tensor4D, attrs: Record<string, unknown>) {
  const filterSize = pair(attrs.filterSize as number[]);
  const strides = pair(attrs.strides as number[]);
  const info = tf.backend_util.computePool2DInfo(x.shape, filterSize, strides, 1, attrs.pad as 'same', attrs.dimRoundingMode as 'floor' | undefined);
  const p = info.padInfo;
  const [, H, W, C] = x.shape;
  // TensorFlow's own AvgPoolGrad divides border windows by their count of real inputs, as its forward
  if (onTensorflow() && (attrs.pad === 'same' || attrs.pad === 'valid') && attrs.dimRoundingMode == null) {
    return tf.engine().runKernel('AvgPoolGrad', { dy, input: x }, { filterSize, strides, pad: attrs.pad }) as tf.Tensor4D;
  }
  if (!p.top && !p.bottom && !p.left && !p.right) {
    return tf.engine().runKernel('AvgPoolGrad', { dy, input: x }, { filterSize, strides, pad: 'valid' }) as tf.Tensor4D;
  }
  if (webgpuKernelsReady()) return avgPoolGradWebgpu(dy, x.shape, filterSize, strides, attrs.pad, attrs.dimRoundingMode);
  // count of real inputs per window, as the forward uses it
  const ones = tf.pad(tf.ones([1, H, W, 1]), [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]]);
  const frac = tf.avgPool(ones as tf.Tensor4D, filterSize, strides, 'valid');  // count / k²
  const xp = tf.pad(x, [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]]);
  const gp = tf.engine().runKernel('AvgPoolGrad', { dy: tf.div(dy, frac), input: xp }, { filterSize, strides, pad: 'valid' }) as tf.Tensor4D;
  return tf.slice(gp, [0, p.top, p.left, 0], [x.shape[0], H, W, C]);
}

/**
 * Filter gradient of an undilated depthwise convolution on the tensorflow backend. With oneDNN on,
 * TensorFlow runs the oneDNN kernel for 'SAME'/'VALID' padding and its own Eigen kernel for explicit
 * padding. Measured on the supernet's shapes (2 cores, AVX2): oneDNN is 2-3x faster for 3x3 filters
 * with at least 128K output elements, Eigen 1.5-9x faster for 5x5 filters and for small outputs.
 */
function depthwiseFilterGrad(dy: tf.Tensor4D, x: tf.Tensor4D, filter: tf.Tensor4D, attrs: Record<string, unknown>): tf.Tensor {
  const p = convPads(x.shape, filter.shape, attrs, true);
  const [sh, sw] = pair(attrs.strides as number[]);
  const explicit = !(filter.shape[0] * filter.shape[1] <= 9 && dy.size >= 131072);
  return native('DepthwiseConv2dNativeBackpropFilter', [x, tf.tensor1d(filter.shape, 'int32'), dy], [
    { name: 'T', kind: 'type', value: 'float32' },
    { name: 'strides', kind: 'int', value: [1, sh, sw, 1] },
    ...(explicit
      ? [{ name: 'padding', kind: 'string' as const, value: 'EXPLICIT' }, { name: 'explicit_paddings', kind: 'int' as const, value: [0, 0, p.top, p.bottom, p.left, p.right, 0, 0] }]
      : [{ name: 'padding', kind: 'string' as const, value: p.top || p.bottom || p.left || p.right ? 'SAME' : 'VALID' }]),
    { name: 'data_format', kind: 'string', value: 'NHWC' },
    { name: 'dilations', kind: 'int', value: [1, 1, 1, 1] },
  ])[0];
}

/**
 * Filter gradient of a 1x1 stride-1 convolution on the tensorflow backend: one matrix product xᵀ·dy over
 * the B·H·W positions (an Einsum, so no reshape kernels), 15-30% faster than TensorFlow's
 * Conv2DBackpropFilter on the supernet's shapes.
 */
function pointwiseFilterGrad(dy: tf.Tensor4D, x: tf.Tensor4D, filter: tf.Tensor4D): tf.Tensor {
  const g = native('Einsum', [x, dy], [
    { name: 'equation', kind: 'string', value: 'bhwi,bhwo->io' }, { name: 'N', kind: 'int', value: 2 }, { name: 'T', kind: 'type', value: 'float32' },
  ])[0];
  return tf.reshape(g, filter.shape);
}

/**
 * MaxPool gradient on the tensorflow backend: TensorFlow's MaxPoolGrad CPU kernel is 10-15x slower
 * than the forward pool on our shapes. MaxPoolWithArgmax recomputes the pool with the flat index of
 * each window's maximum (the first one in raster order on ties, as MaxPoolGrad and PyTorch route it),
 * and an unsorted segment sum scatters dy to those indices: the same gradient in about a third of the time.
 */
function maxPoolGradArgmax(dy: tf.Tensor4D, x: tf.Tensor4D, attrs: Record<string, unknown>): tf.Tensor4D {
  const [kh, kw] = pair(attrs.filterSize as number[]);
  const [sh, sw] = pair(attrs.strides as number[]);
  const [, argmax] = native('MaxPoolWithArgmax', [x], [
    { name: 'T', kind: 'type', value: 'float32' }, { name: 'Targmax', kind: 'type', value: 'int32' },
    { name: 'ksize', kind: 'int', value: [1, kh, kw, 1] }, { name: 'strides', kind: 'int', value: [1, sh, sw, 1] },
    { name: 'padding', kind: 'string', value: attrs.pad === 'same' ? 'SAME' : 'VALID' },
    { name: 'include_batch_in_index', kind: 'bool', value: true },
  ], 2);
  // scatter-add of dy into x.size bins. UnsortedSegmentSum adds in a fixed order; Bincount with
  // weights is faster but not deterministic where overlapping windows share a maximum.
  const size = tf.scalar(x.size, 'int32');
  const dx = native('UnsortedSegmentSum', [dy, argmax, size], [
    { name: 'T', kind: 'type', value: 'float32' }, { name: 'Tindices', kind: 'type', value: 'int32' }, { name: 'Tnumsegments', kind: 'type', value: 'int32' },
  ])[0];
  return tf.reshape(dx, x.shape);
}

/**
 * Multiply's gradient as tfjs-core's, without its Cast kernels when the operands are float32 already
 * and without a Reshape kernel when the reduced gradient has the operand's shape (a scalar switch).
 */
function multiplyGrad(dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) {
  const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
  const f32 = (t: tf.Tensor) => (t.dtype === 'float32' ? t : tf.cast(t, 'float32'));
  const der = (self: tf.Tensor, other: tf.Tensor) => () => {
    const res = tf.mul(dy, f32(other));
    const axes = tf.backend_util.getReductionAxes(self.shape, outShape);
    if (!axes.length) return res;
    const r = tf.sum(res, axes);
    return tf.util.arraysEqual(r.shape, self.shape) ? r : tf.reshape(r, self.shape);
  };
  return { a: der(a, b), b: der(b, a) };
}

let installed = false;

export function installGradientFixes(): void {
  if (installed) return;
  installed = true;
  const stockConv = tf.getGradient('Conv2D')!;
  const stockDw = tf.getGradient('DepthwiseConv2dNative')!;
  const stockRelu = tf.getGradient('Relu')!;
  const stockMaxPool = tf.getGradient('MaxPool')!;
  const dilated = (attrs: Record<string, unknown>) => pair(attrs.dilations as number[]).some((d) => d !== 1);
  tf.registerGradient({
    kernelName: 'Conv2D', inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const a = attrs as Record<string, unknown>;
      if (dilated(a)) return dilatedConvGrad(dy as tf.Tensor4D, saved[0] as tf.Tensor4D, saved[1] as tf.Tensor4D, a, false);
      const stock = stockConv.gradFunc(dy, saved, attrs);
      const [x, filter] = saved as tf.Tensor4D[];
      const pointwise = filter.shape[0] === 1 && filter.shape[1] === 1 && pair(a.strides as number[]).every((s) => s === 1)
        && (a.pad === 'same' || a.pad === 'valid') && (a.dataFormat ?? 'NHWC') === 'NHWC';
      if (!onTensorflow() || !pointwise) return stock;
      return { x: stock.x, filter: () => pointwiseFilterGrad(dy as tf.Tensor4D, x, filter) };
    },
  });
  tf.registerGradient({
    kernelName: 'DepthwiseConv2dNative', inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const a = attrs as Record<string, unknown>;
      if (dilated(a)) return dilatedConvGrad(dy as tf.Tensor4D, saved[0] as tf.Tensor4D, saved[1] as tf.Tensor4D, a, true);
      const stock = stockDw.gradFunc(dy, saved, attrs);
      if (!onTensorflow()) return stock;
      return { x: stock.x, filter: () => depthwiseFilterGrad(dy as tf.Tensor4D, saved[0] as tf.Tensor4D, saved[1] as tf.Tensor4D, a) };
    },
  });
  tf.registerGradient({
    kernelName: 'StridedSlice', inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => ({ x: () => stridedSliceGrad(dy as tf.Tensor, saved[0].shape, attrs as Record<string, unknown>) }),
  });
  tf.registerGradient({
    kernelName: 'AvgPool', inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => ({ x: () => avgPoolGrad(dy as tf.Tensor4D, saved[0] as tf.Tensor4D, attrs as Record<string, unknown>) }),
  });
  tf.registerGradient({
    kernelName: 'MaxPool', inputsToSave: ['x'], outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const a = attrs as Record<string, unknown>;
      if (!onTensorflow() || (a.pad !== 'same' && a.pad !== 'valid') || a.dimRoundingMode != null || saved[0].dtype !== 'float32' || saved[0].size >= 2 ** 31) {
        return stockMaxPool.gradFunc(dy, saved, attrs);
      }
      return { x: () => maxPoolGradArgmax(dy as tf.Tensor4D, saved[0] as tf.Tensor4D, a) };
    },
  });
  tf.registerGradient({
    kernelName: 'Multiply', inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => multiplyGrad(dy as tf.Tensor, saved[0], saved[1]),
  });
  tf.registerGradient({
    kernelName: 'Relu', inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => (onTensorflow()
      ? { x: () => native('ReluGrad', [dy as tf.Tensor, saved[0]], [{ name: 'T', kind: 'type', value: 'float32' }])[0] }
      : webgpuKernelsReady() && saved[0].dtype === 'float32' ? { x: () => reluGradWebgpu(dy as tf.Tensor, saved[0]) } : stockRelu.gradFunc(dy, saved, attrs)),
  });
}
