// Layer operations with PyTorch semantics (symmetric explicit padding, count_include_pad, training-mode
// batch norm), so that TypeScript and the PyTorch reference compute the same numbers on the same weights.
// All tensors are NHWC. Fast paths: 'same' padding where it coincides with PyTorch's symmetric padding,
// TensorFlow's fused batch norm on the tensorflow backend.
import * as tf from '@tensorflow/tfjs-core';
import { native, onTensorflow, registerNativeKernel, runNative, type NativeAttr } from './native.js';
import { batchNormWebgpu, depthwiseDilatedWebgpu, webgpuBatchNormReady, webgpuConvReady } from './webgpu-kernels.js';

export interface ConvOpts {
  stride?: number;
  /** symmetric zero padding on each spatial side, as PyTorch's `padding` */
  padding?: number;
  dilation?: number;
}

/** Keeps every s-th row and column starting at 0 (differentiable: pad + reshape + slice). */
export function subsample2d(x: tf.Tensor4D, s: number): tf.Tensor4D {
  if (s === 1) return x;
  const [B, H, W, C] = x.shape;
  const Ho = Math.ceil(H / s), Wo = Math.ceil(W / s);
  const xp = (Ho * s !== H || Wo * s !== W) ? tf.pad(x, [[0, 0], [0, Ho * s - H], [0, Wo * s - W], [0, 0]]) : x;
  // rank 4 throughout: the webgpu backend's Pad kernel (the slice's gradient) does not compile for rank 5
  const r = tf.reshape(xp, [B * Ho, s, Wo, s * C]);
  return tf.reshape(tf.slice(r, [0, 0, 0, 0], [B * Ho, 1, Wo, C]), [B, Ho, Wo, C]);
}

function padSpatial(x: tf.Tensor4D, p: number, value = 0): tf.Tensor4D {
  return p ? tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], value) : x;
}

/**
 * Stride-1 dilated convolution by the atrous identity y[d·j + a] = valid-conv(x[d·· + a])[j]:
 * spaceToBatch by d, undilated valid conv, batchToSpace. The zero padding `pad` ([top, bottom], [left,
 * right]) of the input is done by the spaceToBatch kernel itself. TensorFlow's CPU depthwise kernels
 * reject dilation; this path works on every backend and is differentiable with stock gradients.
 */
export function atrousConv(x: tf.Tensor4D, w: tf.Tensor4D, d: number, depthwise: boolean,
  pad: [[number, number], [number, number]] = [[0, 0], [0, 0]]): tf.Tensor4D {
  const Hp = x.shape[1] + pad[0][0] + pad[0][1], Wp = x.shape[2] + pad[1][0] + pad[1][1];
  const [kh, kw] = w.shape;
  const Ho = Hp - d * (kh - 1), Wo = Wp - d * (kw - 1);
  const eh = (d - (Hp % d)) % d, ew = (d - (Wp % d)) % d;
  const s2b = tf.spaceToBatchND(x, [d, d], [[pad[0][0], pad[0][1] + eh], [pad[1][0], pad[1][1] + ew]]);
  const c = depthwise ? tf.depthwiseConv2d(s2b, w, 1, 'valid') : tf.conv2d(s2b, w, 1, 'valid');
  const y = tf.batchToSpaceND(c, [d, d], [[0, 0], [0, 0]]) as tf.Tensor4D;
  return (y.shape[1] === Ho && y.shape[2] === Wo) ? y : tf.slice(y, [0, 0, 0, 0], [y.shape[0], Ho, Wo, y.shape[3]]);
}

function convGeneric(x: tf.Tensor4D, w: tf.Tensor4D, o: ConvOpts, depthwise: boolean): tf.Tensor4D {
  const s = o.stride ?? 1, p = o.padding ?? 0, d = o.dilation ?? 1;
  const k = w.shape[0];
  const ke = (k - 1) * d + 1;
  const call = (inp: tf.Tensor4D, stride: number, pad: 'same' | 'valid') => (depthwise
    ? tf.depthwiseConv2d(inp, w, stride, pad, 'NHWC', d)
    : tf.conv2d(inp, w, stride, pad, 'NHWC', d));
  // webgpu: dilated depthwise convolutions in one kernel each way, and padding done by the kernels
  const gpu = webgpuConvReady();
  if (gpu && depthwise && d > 1) return depthwiseDilatedWebgpu(x, w, s, d, p);
  if (d > 1 && s > 1) {
    // tfjs forbids stride and dilation together. With s = d: y[i] = Σ_k x_p[d(i + k)] = valid conv of x_p[::d]
    // with the undilated kernel; otherwise a stride-1 dilated conv followed by subsampling.
    const xp = padSpatial(x, p);
    if (s === d) {
      const sub = subsample2d(xp, d);
      const Ho = Math.floor((xp.shape[1] - ke) / s) + 1, Wo = Math.floor((xp.shape[2] - ke) / s) + 1;
      const y = depthwise ? tf.depthwiseConv2d(sub, w, 1, 'valid') : tf.conv2d(sub, w, 1, 'valid');
      return (y.shape[1] === Ho && y.shape[2] === Wo) ? y : tf.slice(y, [0, 0, 0, 0], [y.shape[0], Ho, Wo, y.shape[3]]);
    }
    return subsample2d(atrousConv(xp, w, d, depthwise), s);
  }
  if (d > 1) return atrousConv(x, w, d, depthwise, [[p, p], [p, p]]);
  if (s === 1 && 2 * p === ke - 1) return call(x, 1, 'same');
  if (gpu && p) return depthwise ? tf.depthwiseConv2d(x, w, s, p) : tf.conv2d(x, w, s, p);
  return call(padSpatial(x, p), s, 'valid');
}

export const conv2d = (x: tf.Tensor4D, w: tf.Tensor4D, o: ConvOpts = {}) => convGeneric(x, w, o, false);
export const depthwiseConv2d = (x: tf.Tensor4D, w: tf.Tensor4D, o: ConvOpts = {}) => convGeneric(x, w, o, true);

/** Max pool with symmetric padding; PyTorch pads with -inf (`padValue`), the official BayesNAS search net with 0. */
export function maxPool2d(x: tf.Tensor4D, k: number, stride: number, padding: number, padValue = -Infinity): tf.Tensor4D {
  if (stride === 1 && 2 * padding === k - 1 && padValue === -Infinity) return tf.maxPool(x, k, 1, 'same');
  // webgpu: the kernel's own padding, whose windows skip the padded positions (= −∞ padding)
  if (padding && padValue === -Infinity && webgpuConvReady()) return tf.maxPool(x, k, stride, padding);
  return tf.maxPool(padSpatial(x, padding, padValue), k, stride, 'valid');
}

/** Average pool with symmetric zero padding; countIncludePad=false divides by the number of real inputs. */
export function avgPool2d(x: tf.Tensor4D, k: number, stride: number, padding: number, countIncludePad: boolean): tf.Tensor4D {
  // TensorFlow's 'same' at stride 1 pads (k-1)/2 on each side and divides by the count of real inputs
  if (stride === 1 && 2 * padding === k - 1 && padding && !countIncludePad) return tf.avgPool(x, k, 1, 'same');
  // webgpu: the kernel's own padding, whose windows divide by their count of real inputs
  if (padding && !countIncludePad && webgpuConvReady()) return tf.avgPool(x, k, stride, padding);
  const y = tf.avgPool(padSpatial(x, padding), k, stride, 'valid');
  if (countIncludePad || padding === 0) return y;
  const [, H, W] = x.shape;
  const frac = tf.avgPool(padSpatial(tf.ones([1, H, W, 1]) as tf.Tensor4D, padding), k, stride, 'valid');
  return tf.div(y, frac);
}

export interface BatchNormResult {
  y: tf.Tensor;
  /** batch mean and biased batch variance (what the normalisation used) */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  /** updated running statistics, when `running` was given */
  runningMean?: tf.Tensor1D;
  runningVar?: tf.Tensor1D;
}

/** Running statistics to update PyTorch's way: r ← (1−momentum)·r + momentum·batch (unbiased variance). */
export interface RunningStats { mean: tf.Tensor1D; variance: tf.Tensor1D; momentum: number }

const FBN_ATTRS = (eps: number) => [
  { name: 'T', kind: 'type' as const, value: 'float32' }, { name: 'U', kind: 'type' as const, value: 'float32' },
  { name: 'epsilon', kind: 'float' as const, value: eps }, { name: 'data_format', kind: 'string' as const, value: 'NHWC' },
];

const FBN_KERNEL = 'BayesnasFusedBatchNormV3';
let fbnRegistered = false;

// TensorFlow's FusedBatchNormV3 (CPU) in training mode, as one tfjs kernel with its own gradient
// (FusedBatchNormGradV3). Inputs x, scale, offset, running mean, running variance; outputs y,
// batch_mean, batch_variance, reserve_1 (batch mean), reserve_2 (biased batch variance), reserve_3.
// With running statistics as inputs and exponential_avg_factor = momentum, batch_mean/batch_variance
// are the updated running mean and running variance (Bessel-corrected batch variance), exactly
// PyTorch's update, in the same kernel; without them (factor 1) they are the batch mean and the
// unbiased batch variance. Only y is differentiated: the statistics outputs get no gradient (they feed
// the running-statistics update and the Hessian rules, never the loss).
function registerFusedBatchNorm(): void {
  if (fbnRegistered) return;
  fbnRegistered = true;
  registerNativeKernel(FBN_KERNEL);
  tf.registerGradient({
    kernelName: FBN_KERNEL,
    inputsToSave: ['0', '1'],
    outputsToSave: [false, false, false, true, true, true],
    gradFunc: (dys, saved, attrs) => {
      const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor | null;
      const [x, scale, r1, r2, r3] = saved;
      const spec = (attrs as unknown as { spec: NativeAttr[] }).spec;
      const eps = spec.find((a) => a.name === 'epsilon')!.value as number;
      // one kernel computes all three gradients; the tape asks for them one by one
      const g = dy ? native('FusedBatchNormGradV3', [dy, x, scale, r1, r2, r3], [...FBN_ATTRS(eps), { name: 'is_training', kind: 'bool', value: true }], 5) : null;
      return {
        0: () => g ? g[0] : tf.zerosLike(x),
        1: () => g ? g[1] : tf.zerosLike(scale),
        2: () => g ? g[2] : tf.zerosLike(scale),
        3: () => tf.zerosLike(scale),
        4: () => tf.zerosLike(scale),
      };
    },
  });
}

/** Outputs y, batch mean, biased batch variance[, updated running mean, running variance]. */
function fusedBatchNorm(x: tf.Tensor4D, g: tf.Tensor1D, b: tf.Tensor1D, eps: number, running?: RunningStats): tf.Tensor[] {
  registerFusedBatchNorm();
  const empty = running ? null : tf.tensor1d([], 'float32');
  const out = runNative(FBN_KERNEL, 'FusedBatchNormV3', [x, g, b, running?.mean ?? empty!, running?.variance ?? empty!],
    [...FBN_ATTRS(eps), { name: 'is_training', kind: 'bool', value: true }, { name: 'exponential_avg_factor', kind: 'float', value: running ? running.momentum : 1 }], 6);
  empty?.dispose();
  tf.dispose([out[5], ...(running ? [] : [out[1], out[2]])]);
  return [out[0], out[3], out[4], ...(running ? [out[1], out[2]] : [])];
}

/**
 * Training-mode batch normalisation over all axes but the last (NHWC or NC), PyTorch's biased batch
 * variance. Scale and offset default to 1 and 0 (affine=false), always passed explicitly. With
 * `running`, also returns the updated running statistics (the caller assigns them).
 */
export function batchNorm(x: tf.Tensor, gamma?: tf.Tensor1D | null, beta?: tf.Tensor1D | null, eps?: number, running?: RunningStats): BatchNormResult;
/**
 * With `stats: false` the batch mean and variance may be absent (the webgpu backend then does not
 * compute them); with `relu`, y is followed by a ReLU (on webgpu, in the same programs).
 */
export function batchNorm(x: tf.Tensor, gamma: tf.Tensor1D | null, beta: tf.Tensor1D | null, eps: number, running: RunningStats | undefined,
  opts: { stats: boolean; relu?: boolean }): Omit<BatchNormResult, 'mean' | 'variance'> & Partial<BatchNormResult>;
export function batchNorm(x: tf.Tensor, gamma?: tf.Tensor1D | null, beta?: tf.Tensor1D | null, eps = 1e-5, running?: RunningStats,
  opts: { stats?: boolean; relu?: boolean } = {}): Partial<BatchNormResult> & { y: tf.Tensor } {
  if (webgpuBatchNormReady()) return batchNormWebgpu(x, gamma ?? null, beta ?? null, eps, running, opts.stats !== false, opts.relu);
  const r = batchNormComposed(x, gamma, beta, eps, running);
  return opts.relu ? { ...r, y: tf.relu(r.y) } : r;
}

function batchNormComposed(x: tf.Tensor, gamma: tf.Tensor1D | null | undefined, beta: tf.Tensor1D | null | undefined, eps: number, running?: RunningStats): BatchNormResult {
  const C = x.shape[x.rank - 1];
  const g = gamma ?? tf.ones([C]) as tf.Tensor1D;
  const b = beta ?? tf.zeros([C]) as tf.Tensor1D;
  if (onTensorflow() && x.rank === 4) {
    const [y, mean, variance, runningMean, runningVar] = fusedBatchNorm(x as tf.Tensor4D, g, b, eps, running);
    return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D, runningMean: runningMean as tf.Tensor1D | undefined, runningVar: runningVar as tf.Tensor1D | undefined };
  }
  const axes = [...Array(x.rank - 1).keys()];
  const { mean, variance } = tf.moments(x, axes);
  const y = tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), g), b);
  const res: BatchNormResult = { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
  if (running) {
    const n = x.size / C, m = running.momentum;
    res.runningMean = tf.add(tf.mul(running.mean, 1 - m), tf.mul(mean, m)) as tf.Tensor1D;
    res.runningVar = tf.add(tf.mul(running.variance, 1 - m), tf.mul(variance, (m * n) / Math.max(1, n - 1))) as tf.Tensor1D;
  }
  return res;
}
