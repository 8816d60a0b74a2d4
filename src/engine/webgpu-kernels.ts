// Kernels of our own for the webgpu backend, where every launch has a fixed cost: the ReLU gradient in
// one launch (tfjs composes it of Step and Multiply), and training-mode batch norm.
//
// Batch norm runs in WebGPU programs of its own instead of about thirty element-wise and
// reduction kernels through autodiff of the composition (plus six for the running statistics). Batch
// norms make up more than half of the kernel launches of a supernet step on the webgpu backend, and
// each launch has a fixed cost.
//
// On x viewed as [M, C] (all axes but the last flattened), each program one launch:
//   forward   mean [C]; biased variance [C] (a second pass, exact); y = (x − mean)·rsqrt(var + eps)·g + b;
//             and, when asked, each running statistic r ← (1 − m)·r + m·f·batch (f = M/(M−1) for the variance)
//   backward  Σ dy [C]; Σ dy·x̂ [C]; dx = g·rstd/M·(M·dy − Σdy − x̂·Σdy·x̂)   (dg = Σ dy·x̂, db = Σ dy)
// The programs follow @tensorflow/tfjs-backend-webgpu's program interface (WebGPUBackend.runWebGPUProgram):
// the backend generates the bindings (`result`, one array per variable name, `uniforms`) and the entry
// point that calls `main(index)`.
import * as tf from '@tensorflow/tfjs-core';

interface Program {
  variableNames: string[]; outputShape: number[]; shaderKey: string; dispatchLayout: { x: number[] };
  dispatch: [number, number, number]; workgroupSize: [number, number, number]; uniforms: string; size: boolean;
  getUserCode(): string;
}
interface Backend { runWebGPUProgram(p: Program, inputs: tf.TensorInfo[], dtype: 'float32', uniforms: Array<{ type: string; data: number[] }>): tf.TensorInfo }

const WG = 64;
const UNIFORMS = 'M : i32, C : i32, eps : f32, momentum : f32, factor : f32,';

/** Σ over the workgroup, returned to every invocation (WG is a power of two). */
const WG_SUM = `
  var<workgroup> part : array<f32, ${WG}>;
  fn workgroupSum(v : f32) -> f32 {
    part[localId.x] = v;
    workgroupBarrier();
    for (var s = ${WG / 2}u; s > 0u; s = s / 2u) {
      if (localId.x < s) { part[localId.x] = part[localId.x] + part[localId.x + s]; }
      workgroupBarrier();
    }
    let total = part[0];
    workgroupBarrier();
    return total;
  }`;

/** Σ over the rows of channel c of `term` (a WGSL expression in the element index i): one workgroup per channel. */
function perChannel(key: string, variableNames: string[], C: number, prologue: string, term: string, epilogue: string): Program {
  return {
    variableNames, outputShape: [C], shaderKey: `bnas_bn_${key}`, dispatchLayout: { x: [0] }, dispatch: [C, 1, 1],
    workgroupSize: [WG, 1, 1], uniforms: UNIFORMS, size: false,
    getUserCode: () => `${WG_SUM}
  fn main(index : i32) {
    let c = i32(workgroupId.x);
    ${prologue}
    var s = 0.0;
    for (var m = i32(localId.x); m < uniforms.M; m = m + ${WG}) {
      let i = m * uniforms.C + c;
      s = s + ${term};
    }
    let total = workgroupSum(s);
    if (localId.x == 0u) { result[c] = ${epilogue}; }
  }`,
  };
}

/** `value` (a WGSL expression in index and channel c) for every element of an [M, C] or [C] output. */
function elementwise(key: string, variableNames: string[], shape: number[], prologue: string, value: string): Program {
  const size = shape.reduce((a, b) => a * b, 1);
  return {
    variableNames, outputShape: shape, shaderKey: `bnas_bn_${key}`, dispatchLayout: { x: shape.map((_, i) => i) }, dispatch: [Math.ceil(size / WG), 1, 1],
    workgroupSize: [WG, 1, 1], uniforms: UNIFORMS, size: true,
    getUserCode: () => `
  fn main(index : i32) {
    if (index < uniforms.size) {
      let c = index % uniforms.C;
      ${prologue}
      setOutputAtIndex(index, ${value});
    }
  }`,
  };
}

const NORMALIZED = 'let rstd = inverseSqrt(variance[c] + uniforms.eps);';

/** Each kernel's inputs, in the order of its program's bindings, and the program (built per call; the backend caches its pipeline by shader key). */
type Build = (v: string[], M: number, C: number) => Program;
const KERNELS = {
  BnasBatchNormMean: { inputs: ['x'], program: (v, M, C) => perChannel('mean', v, C, '', 'x[i]', 'total / f32(uniforms.M)') },
  BnasBatchNormVariance: { inputs: ['x', 'mean'], program: (v, M, C) => perChannel('variance', v, C, 'let mu = mean[c];', '(x[i] - mu) * (x[i] - mu)', 'total / f32(uniforms.M)') },
  BnasBatchNormApply: {
    inputs: ['x', 'mean', 'variance', 'g', 'b'],
    program: (v, M, C) => elementwise('apply', v, [M, C], NORMALIZED, '(x[index] - mean[c]) * rstd * g[c] + b[c]'),
  },
  BnasBatchNormRunning: {
    inputs: ['running', 'batch'],
    program: (v, M, C) => elementwise('running', v, [C], '', '(1.0 - uniforms.momentum) * running[c] + uniforms.momentum * uniforms.factor * batch[c]'),
  },
  BnasBatchNormSumDy: { inputs: ['dy'], program: (v, M, C) => perChannel('sumdy', v, C, '', 'dy[i]', 'total') },
  BnasBatchNormSumDyXhat: {
    inputs: ['dy', 'x', 'mean', 'variance'],
    program: (v, M, C) => perChannel('sumdyxhat', v, C, `let mu = mean[c]; ${NORMALIZED}`, 'dy[i] * (x[i] - mu) * rstd', 'total'),
  },
  BnasBatchNormGradInput: {
    inputs: ['dy', 'x', 'mean', 'variance', 'sdy', 'sdyx', 'g'],
    program: (v, M, C) => elementwise('gradinput', v, [M, C], `${NORMALIZED} let xhat = (x[index] - mean[c]) * rstd; let n = f32(uniforms.M);`,
      'g[c] * rstd / n * (n * dy[index] - sdy[c] - xhat * sdyx[c])'),
  },
  BnasReluGrad: { inputs: ['dy', 'x'], program: (v, M, C) => elementwise('relugrad', v, [M * C], '', 'select(0.0, dy[index], x[index] > 0.0)') },
} satisfies Record<string, { inputs: string[]; program: Build }>;
type KernelName = keyof typeof KERNELS;
interface Attrs { M: number; C: number; eps?: number; momentum?: number; factor?: number }

let registered = false;
/** BAYESNAS_WEBGPU_FUSED_BN=0 keeps the composed batch norm (read once, when the kernels are registered) */
let fusedBatchNorm = true;

/** Registers the kernels on the webgpu backend (once; after the backend's module has loaded). */
export function registerWebgpuKernels(): void {
  if (registered) return;
  fusedBatchNorm = process.env.BAYESNAS_WEBGPU_FUSED_BN !== '0';
  for (const [name, k] of Object.entries(KERNELS)) {
    tf.registerKernel({
      kernelName: name, backendName: 'webgpu',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const ins = k.inputs.map((n) => (inputs as Record<string, tf.TensorInfo>)[n]);
        const a = attrs as unknown as Attrs;
        return (backend as unknown as Backend).runWebGPUProgram(k.program(k.inputs, a.M, a.C), ins, 'float32', [
          { type: 'int32', data: [a.M] }, { type: 'int32', data: [a.C] }, { type: 'float32', data: [a.eps ?? 0] },
          { type: 'float32', data: [a.momentum ?? 0] }, { type: 'float32', data: [a.factor ?? 1] }]);
      },
    });
  }
  registered = true;
}

export const webgpuKernelsReady = () => registered && tf.getBackend() === 'webgpu';
export const webgpuBatchNormReady = () => fusedBatchNorm && webgpuKernelsReady();

const run = (name: KernelName, inputs: Record<string, tf.Tensor>, attrs: Attrs) =>
  tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;

/** dy where x > 0, else 0: ReLU's gradient in one launch. */
export function reluGradWebgpu(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.reshape(run('BnasReluGrad', { dy: tf.reshape(dy, [dy.size]), x: tf.reshape(x, [x.size]) }, { M: x.size, C: 1 }), x.shape);
}

/**
 * y, batch mean and biased batch variance of x over all axes but the last, and with `running` the
 * updated running statistics (PyTorch's: unbiased variance). The statistics carry no gradient of
 * their own: y's gradient already accounts for their dependence on x.
 */
export function batchNormWebgpu(x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D, eps: number, running?: { mean: tf.Tensor1D; variance: tf.Tensor1D; momentum: number }) {
  const C = x.shape[x.rank - 1], M = x.size / C;
  const at: Attrs = { M, C, eps };
  const x2 = tf.reshape(x, [M, C]);
  const mean = run('BnasBatchNormMean', { x: x2 }, at) as tf.Tensor1D;
  const variance = run('BnasBatchNormVariance', { x: x2, mean }, at) as tf.Tensor1D;
  const f = tf.customGrad((xx, gg, bb, save) => {
    // the backward pass runs after the forward's scope has ended: what it reads must be saved
    (save as tf.GradSaveFunc)([xx as tf.Tensor, gg as tf.Tensor, mean, variance]);
    return {
      value: run('BnasBatchNormApply', { x: xx as tf.Tensor, mean, variance, g: gg as tf.Tensor, b: bb as tf.Tensor }, at),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, gs, mean, variance] = saved;
        const sdy = run('BnasBatchNormSumDy', { dy }, at);
        const sdyx = run('BnasBatchNormSumDyXhat', { dy, x: xs, mean, variance }, at);
        return [run('BnasBatchNormGradInput', { dy, x: xs, mean, variance, sdy, sdyx, g: gs }, at), sdyx, sdy];
      },
    };
  });
  const y = tf.reshape(f(x2, g, b) as tf.Tensor, x.shape);
  const updated = running ? {
    runningMean: run('BnasBatchNormRunning', { running: running.mean, batch: mean }, { M, C, momentum: running.momentum, factor: 1 }) as tf.Tensor1D,
    runningVar: run('BnasBatchNormRunning', { running: running.variance, batch: variance }, { M, C, momentum: running.momentum, factor: M / Math.max(1, M - 1) }) as tf.Tensor1D,
  } : {};
  return { y, mean, variance, ...updated };
}
