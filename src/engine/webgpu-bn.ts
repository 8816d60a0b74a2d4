// Training-mode batch norm in four WebGPU programs (two forward, two backward) instead of about thirty
// element-wise and reduction kernels through autodiff of the composition. Batch norms make up more than
// half of the kernel launches of a supernet step on the webgpu backend, and each launch has a fixed cost.
//
// On x viewed as [M, C] (all axes but the last flattened):
//   stats      [2, C]  mean and biased variance per channel (one workgroup per channel, two passes)
//   apply      y = (x − mean)·rsqrt(var + eps)·g + b
//   gradStats  [2, C]  Σ dy and Σ dy·x̂ per channel
//   gradInput  dx = g·rstd/M·(M·dy − Σdy − x̂·Σdy·x̂);  dg = Σ dy·x̂, db = Σ dy
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

/** One workgroup per channel; `body` computes `a` and `b`, written to rows 0 and 1 of the [2, C] result. */
function perChannel(key: string, variableNames: string[], C: number, body: string): Program {
  return {
    variableNames, outputShape: [2, C], shaderKey: `bnas_bn_${key}`, dispatchLayout: { x: [0, 1] }, dispatch: [C, 1, 1],
    workgroupSize: [WG, 1, 1], uniforms: 'M : i32, C : i32, eps : f32,', size: false,
    getUserCode: () => `${WG_SUM}
  fn main(index : i32) {
    let c = i32(workgroupId.x);
    ${body}
    if (localId.x == 0u) { result[c] = a; result[uniforms.C + c] = b; }
  }`,
  };
}

function elementwise(key: string, variableNames: string[], shape: number[], body: string): Program {
  const size = shape[0] * shape[1];
  return {
    variableNames, outputShape: shape, shaderKey: `bnas_bn_${key}`, dispatchLayout: { x: [0, 1] }, dispatch: [Math.ceil(size / WG), 1, 1],
    workgroupSize: [WG, 1, 1], uniforms: 'M : i32, C : i32, eps : f32,', size: true,
    getUserCode: () => `
  fn main(index : i32) {
    if (index < uniforms.size) {
      let c = index % uniforms.C;
      let mean = stats[c];
      let rstd = inverseSqrt(stats[uniforms.C + c] + uniforms.eps);
      ${body}
    }
  }`,
  };
}

const STATS = `
    var s = 0.0;
    for (var m = i32(localId.x); m < uniforms.M; m = m + ${WG}) { s = s + x[m * uniforms.C + c]; }
    let a = workgroupSum(s) / f32(uniforms.M);
    var q = 0.0;
    for (var m = i32(localId.x); m < uniforms.M; m = m + ${WG}) { let d = x[m * uniforms.C + c] - a; q = q + d * d; }
    let b = workgroupSum(q) / f32(uniforms.M);`;

const GRAD_STATS = `
    let mean = stats[c];
    let rstd = inverseSqrt(stats[uniforms.C + c] + uniforms.eps);
    var s = 0.0;
    var q = 0.0;
    for (var m = i32(localId.x); m < uniforms.M; m = m + ${WG}) {
      let i = m * uniforms.C + c;
      s = s + dy[i];
      q = q + dy[i] * (x[i] - mean) * rstd;
    }
    let a = workgroupSum(s);
    let b = workgroupSum(q);`;

const KERNELS = {
  BnasBatchNormStats: (M: number, C: number) => perChannel('stats', ['x'], C, STATS),
  BnasBatchNormApply: (M: number, C: number) => elementwise('apply', ['x', 'stats', 'g', 'b'], [M, C], 'setOutputAtIndex(index, (x[index] - mean) * rstd * g[c] + b[c]);'),
  BnasBatchNormGradStats: (M: number, C: number) => perChannel('gradstats', ['dy', 'x', 'stats'], C, GRAD_STATS),
  BnasBatchNormGradInput: (M: number, C: number) => elementwise('gradinput', ['dy', 'x', 'stats', 'gstats', 'g'], [M, C],
    `let xhat = (x[index] - mean) * rstd;
      setOutputAtIndex(index, g[c] * rstd / f32(uniforms.M) * (f32(uniforms.M) * dy[index] - gstats[c] - xhat * gstats[uniforms.C + c]));`),
} as const;
type KernelName = keyof typeof KERNELS;
/** each kernel's inputs, in the order of its program's variable names */
const INPUTS: Record<KernelName, string[]> = {
  BnasBatchNormStats: ['x'], BnasBatchNormApply: ['x', 'stats', 'g', 'b'],
  BnasBatchNormGradStats: ['dy', 'x', 'stats'], BnasBatchNormGradInput: ['dy', 'x', 'stats', 'gstats', 'g'],
};

let registered = false;

/** Registers the four kernels on the webgpu backend (once; after the backend's module has loaded). */
export function registerWebgpuBatchNorm(): void {
  if (registered) return;
  for (const name of Object.keys(KERNELS) as KernelName[]) {
    tf.registerKernel({
      kernelName: name, backendName: 'webgpu',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const ins = INPUTS[name].map((k) => (inputs as Record<string, tf.TensorInfo>)[k]);
        const [M, C] = ins[INPUTS[name].indexOf('x')].shape;
        const eps = (attrs as { eps?: number }).eps ?? 0;
        return (backend as unknown as Backend).runWebGPUProgram(KERNELS[name](M, C), ins, 'float32',
          [{ type: 'int32', data: [M] }, { type: 'int32', data: [C] }, { type: 'float32', data: [eps] }]);
      },
    });
  }
  registered = true;
}

export const webgpuBatchNormReady = () => registered && tf.getBackend() === 'webgpu';

const run = (name: KernelName, inputs: Record<string, tf.Tensor>, eps = 0) =>
  tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, { eps } as unknown as tf.NamedAttrMap) as tf.Tensor;

/** Row r of a [2, C] tensor, as [C]. */
const row = (t: tf.Tensor, r: number) => tf.reshape(tf.slice(t, [r, 0], [1, t.shape[1]!]), [t.shape[1]!]) as tf.Tensor1D;

/**
 * y, batch mean and biased batch variance of x over all axes but the last. The statistics carry no
 * gradient of their own: y's gradient already accounts for their dependence on x.
 */
export function batchNormWebgpu(x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const C = x.shape[x.rank - 1], M = x.size / C;
  const x2 = tf.reshape(x, [M, C]);
  const stats = run('BnasBatchNormStats', { x: x2 });
  const f = tf.customGrad((xx, gg, bb, save) => {
    (save as tf.GradSaveFunc)([xx as tf.Tensor, gg as tf.Tensor]);
    return {
      value: run('BnasBatchNormApply', { x: xx as tf.Tensor, stats, g: gg as tf.Tensor, b: bb as tf.Tensor }, eps),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, gs] = saved;
        const gstats = run('BnasBatchNormGradStats', { dy, x: xs, stats }, eps);
        const dx = run('BnasBatchNormGradInput', { dy, x: xs, stats, gstats, g: gs }, eps);
        return [dx, row(gstats, 1), row(gstats, 0)];
      },
    };
  });
  const y = tf.reshape(f(x2, g, b) as tf.Tensor, x.shape);
  return { y, mean: row(stats, 0), variance: row(stats, 1) };
}
