// Kernels of our own for the webgpu backend, where every launch has a fixed cost and tfjs's autodiff
// of compositions launches many: training-mode batch norm (and the ReLU after it), a mixed edge's
// gated sum, SGD over several variables, the ReLU gradient, filter gradients that split their sums
// among a workgroup, dilated depthwise convolutions, the average pool's gradient, and fan-out aliases
// whose gradients are one sum. Programs with several outputs go through src/engine/webgpu-multi.ts.
//
// Batch norm: on x viewed as [M, C] (all axes but the last flattened), one workgroup per channel
// computes the channel's mean and biased variance itself (two passes, exact) and then writes its rows;
// the statistics are never a tensor unless asked for:
//   forward   y = x̂·g + b with x̂ = (x − mean)·rsqrt(var + eps) [then max(y, 0)], and with running
//             statistics r ← (1 − m)·r + m·f·batch (f = M/(M−1) for the variance)          1 launch
//   backward  dx = g·rstd/M·(M·dy − Σdy − x̂·Σdy·x̂) (dy masked by y > 0 after a ReLU), and when
//             affine dg = Σ dy·x̂ and db = Σ dy                                              1 launch
//   stats     mean [C] and variance [C], only for the Hessian tape's rule                  1 each
// The single-output programs follow @tensorflow/tfjs-backend-webgpu's program interface
// (WebGPUBackend.runWebGPUProgram): the backend generates the bindings (`result`, one array per
// variable name, `uniforms`) and the entry point that calls `main(index)`.
import * as tf from '@tensorflow/tfjs-core';
import { runMulti, type MultiProgram } from './webgpu-multi.js';

interface Program {
  variableNames: string[]; outputShape: number[]; shaderKey: string; dispatchLayout: { x: number[] };
  dispatch: [number, number, number]; workgroupSize: [number, number, number]; uniforms: string; size: boolean;
  getUserCode(): string;
}
interface Backend { runWebGPUProgram(p: Program, inputs: tf.TensorInfo[], dtype: 'float32', uniforms: Array<{ type: string; data: number[] }>): tf.TensorInfo }

/** workgroup size of the element-wise programs */
const WG = 64;
const UNIFORMS = 'M : i32, C : i32, eps : f32, momentum : f32, factor : f32,';

/**
 * Workgroup size of a program that reduces `rows` values per workgroup: 64 invocations, or 256 when
 * that leaves an invocation more than 64 values, so that long reductions on a GPU are not one thread's
 * serial loop (on a software rasteriser the larger group is slower, hence not always).
 */
const reductionGroup = (rows: number) => (rows > 64 * 64 ? 256 : 64);

/** Module-scope WGSL of a reducing program: the workgroup size WGS and Σ over the workgroup, returned to every invocation. */
const wgSum = (wg: number) => `
  const WGS : i32 = ${wg};
  var<workgroup> part : array<f32, ${wg}>;
  fn workgroupSum(v : f32) -> f32 {
    part[localId.x] = v;
    workgroupBarrier();
    for (var s = ${wg / 2}u; s > 0u; s = s / 2u) {
      if (localId.x < s) { part[localId.x] = part[localId.x] + part[localId.x + s]; }
      workgroupBarrier();
    }
    let total = part[0];
    workgroupBarrier();
    return total;
  }`;

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

/** Loops this invocation's rows m of channel c, with i the element index. */
const ROWS = (body: string) => `for (var m = i32(localId.x); m < uniforms.M; m = m + WGS) { let i = m * uniforms.C + c; ${body} }`;
/** Channel c's batch mean and biased variance (two passes, exact), as `mean` and `variance`, in every invocation. */
const MOMENTS = `
    var s = 0.0;
    ${ROWS('s = s + x[i];')}
    let mean = workgroupSum(s) / f32(uniforms.M);
    var q = 0.0;
    ${ROWS('let d = x[i] - mean; q = q + d * d;')}
    let variance = workgroupSum(q) / f32(uniforms.M);
    let rstd = inverseSqrt(variance + uniforms.eps);`;

/**
 * A whole-channel program: one workgroup per channel c (of `groups`, each reducing about `rows`
 * values) runs `body` (often after MOMENTS), which writes `result` itself (the channel's rows of an
 * [M, C] output, or element c of a [C] one).
 */
function channelProgram(key: string, variableNames: string[], outputShape: number[], groups: number, rows: number, body: string): Program {
  const wg = reductionGroup(rows);
  return {
    variableNames, outputShape, shaderKey: `bnas_bn_${key}_${wg}`, dispatchLayout: { x: [0] }, dispatch: [groups, 1, 1],
    workgroupSize: [wg, 1, 1], uniforms: UNIFORMS, size: false,
    getUserCode: () => `${wgSum(wg)}
  fn main(index : i32) {
    let c = i32(workgroupId.x);
    ${body}
  }`,
  };
}

/** A [C] output: Σ over the rows of channel c of `term` (a WGSL expression in the element index i), then `epilogue` of that `total`. */
const channelSum = (prologue: string, term: string, epilogue = 'total') => `${prologue}
    var a = 0.0;
    ${ROWS(`a = a + ${term};`)}
    let total = workgroupSum(a);
    if (localId.x == 0u) { result[c] = ${epilogue}; }`;

/** Each kernel's inputs, in the order of its program's bindings, and the program (built per call; the backend caches its pipeline by shader key). */
type Build = (v: string[], M: number, C: number) => Program;
/** dy at element i: as given, or (after a fused ReLU) where the output y is positive */
const DYV = (relu: boolean) => (relu ? 'select(0.0, dy[i], y[i] > 0.0)' : 'dy[i]');
const DX = (relu = false) => `rstd / n * (n * ${DYV(relu)} - sdy - (x[i] - mean) * rstd * sdyx)`;
/** Σdy and Σdy·x̂ of channel c (after MOMENTS), as `sdy` and `sdyx`, and n = M */
const DY_SUMS = (relu = false) => `
    var a = 0.0;
    var a2 = 0.0;
    ${ROWS(`let d = ${DYV(relu)}; a = a + d; a2 = a2 + d * (x[i] - mean) * rstd;`)}
    let sdy = workgroupSum(a);
    let sdyx = workgroupSum(a2);
    let n = f32(uniforms.M);`;
const KERNELS = {
  BnasBatchNormNormalize: { inputs: ['x'], program: (v, M, C) => channelProgram('normalize', v, [M, C], C, M, `${MOMENTS} ${ROWS('result[i] = (x[i] - mean) * rstd;')}`) },
  BnasBatchNormNormalizeAffine: {
    inputs: ['x', 'g', 'b'],
    program: (v, M, C) => channelProgram('normalizeaffine', v, [M, C], C, M, `${MOMENTS} ${ROWS('result[i] = (x[i] - mean) * rstd * g[c] + b[c];')}`),
  },
  BnasBatchNormNormalizeGrad: { inputs: ['dy', 'x'], program: (v, M, C) => channelProgram('normalizegrad', v, [M, C], C, M, `${MOMENTS} ${DY_SUMS()} ${ROWS(`result[i] = ${DX()};`)}`) },
  // the same through a fused ReLU (y: the ReLU's output)
  BnasBatchNormNormalizeReluGrad: {
    inputs: ['dy', 'x', 'y'],
    program: (v, M, C) => channelProgram('normalizerelugrad', v, [M, C], C, M, `${MOMENTS} ${DY_SUMS(true)} ${ROWS(`result[i] = ${DX(true)};`)}`),
  },
  BnasBatchNormMean: { inputs: ['x'], program: (v, M, C) => channelProgram('mean', v, [C], C, M, channelSum('', 'x[i]', 'total / f32(uniforms.M)')) },
  BnasBatchNormVariance: {
    inputs: ['x', 'mean'],
    program: (v, M, C) => channelProgram('variance', v, [C], C, M, channelSum('let mu = mean[c];', '(x[i] - mu) * (x[i] - mu)', 'total / f32(uniforms.M)')),
  },
  BnasReluGrad: { inputs: ['dy', 'x'], program: (v, M, C) => elementwise('relugrad', v, [M * C], '', 'select(0.0, dy[index], x[index] > 0.0)') },
} satisfies Record<string, { inputs: string[]; program: Build }>;
interface Attrs { M: number; C: number; eps?: number; momentum?: number; factor?: number }

// Programs with several outputs (src/engine/webgpu-multi.ts), all with the uniforms M, C, eps, momentum, factor.
const MULTI_UNIFORMS: MultiProgram['uniforms'] = [['M', 'i32'], ['C', 'i32'], ['eps', 'f32'], ['momentum', 'f32'], ['factor', 'f32']];
const channelMulti = (key: string, outputs: Array<[string, number]>, inputs: string[], M: number, C: number, body: () => string): MultiProgram => {
  const wg = reductionGroup(M);
  return { key: `bnas_${key}_${wg}`, outputs, inputs, uniforms: MULTI_UNIFORMS, workgroupSize: wg, workgroups: C, header: () => wgSum(wg), body };
};
/** r ← (1 − m)·r + m·f·stat */
const RUNNING = (r: string, stat: string, f: string) => `(1.0 - uniforms.momentum) * ${r}[c] + uniforms.momentum * ${f}${stat}`;
/** training-mode batch norm with its running statistics (and a ReLU after it): y and both statistics in one launch */
const trainProgram = (affine: boolean, relu: boolean) => {
  const inputs = ['x', ...(affine ? ['g', 'b'] : []), 'runMean', 'runVar'];
  const v = `(x[i] - mean) * rstd${affine ? ' * g[c] + b[c]' : ''}`;
  return {
    inputs,
    program: (a: Attrs) => channelMulti(`bn_train${affine ? '_affine' : ''}${relu ? '_relu' : ''}`, [['y', a.M * a.C], ['rm', a.C], ['rv', a.C]], inputs, a.M, a.C,
      () => `${MOMENTS}
    ${ROWS(`y[i] = ${relu ? `max(${v}, 0.0)` : v};`)}
    if (localId.x == 0u) { rm[c] = ${RUNNING('runMean', 'mean', '')}; rv[c] = ${RUNNING('runVar', 'variance', 'uniforms.factor * ')}; }`),
  };
};
/** the affine batch norm's gradients dx, dg, db in one launch (through a fused ReLU: y its output) */
const affineGradProgram = (relu: boolean) => {
  const inputs = ['dy', 'x', 'g', ...(relu ? ['y'] : [])];
  return {
    inputs,
    program: (a: Attrs) => channelMulti(`bn_affine_grad${relu ? '_relu' : ''}`, [['dx', a.M * a.C], ['dg', a.C], ['db', a.C]], inputs, a.M, a.C,
      () => `${MOMENTS} ${DY_SUMS(relu)}
    ${ROWS(`dx[i] = g[c] * ${DX(relu)};`)}
    if (localId.x == 0u) { dg[c] = sdyx; db[c] = sdy; }`),
  };
};
const MULTI = {
  BnasBatchNormTrain: trainProgram(false, false),
  BnasBatchNormTrainAffine: trainProgram(true, false),
  BnasBatchNormTrainRelu: trainProgram(false, true),
  BnasBatchNormTrainAffineRelu: trainProgram(true, true),
  BnasBatchNormAffineGrad: affineGradProgram(false),
  BnasBatchNormAffineReluGrad: affineGradProgram(true),
} satisfies Record<string, { inputs: string[]; program: (a: Attrs) => MultiProgram }>;

function registerMulti(name: string, k: { inputs: string[]; program: (a: Attrs) => MultiProgram }): void {
  tf.registerKernel({
    kernelName: name, backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const a = attrs as unknown as Attrs;
      return runMulti(backend, k.program(a), k.inputs.map((n) => (inputs as Record<string, tf.TensorInfo>)[n]), [a.M, a.C, a.eps ?? 0, a.momentum ?? 0, a.factor ?? 1]);
    },
  });
}

// SGD with momentum and weight decay for n variables in one launch: per variable j, with s the clip
// scale (1 without clipping): g = s·grad_j + wd·w_j; v = m·buf_j + g; buf_j ← v; w_j ← w_j − lr·v.
// 5 bindings per variable (grad, w, buf in; w, buf out) and one for s.
const sgdProgram = (n: number, sizes: number[]): MultiProgram => {
  const vs = [...Array(n).keys()];
  const groups = Math.min(Math.ceil(Math.max(...sizes) / WG), 4096);
  return {
    key: `bnas_sgd${n}`, outputs: vs.flatMap((j) => [[`w${j}out`, sizes[j]], [`buf${j}out`, sizes[j]]] as Array<[string, number]>),
    inputs: ['scale', ...vs.flatMap((j) => [`grad${j}`, `w${j}`, `buf${j}`])],
    uniforms: [['lr', 'f32'], ['wd', 'f32'], ['momentum', 'f32'], ['groups', 'i32'], ...vs.map((j) => [`size${j}`, 'i32'] as [string, 'i32'])],
    workgroupSize: WG, workgroups: groups, header: () => `const WGS : i32 = ${WG};`,
    body: () => `let s = scale[0];
  let stride = uniforms.groups * WGS;
  ${vs.map((j) => `for (var i = c * WGS + i32(localId.x); i < uniforms.size${j}; i = i + stride) {
    let v = uniforms.momentum * buf${j}[i] + (s * grad${j}[i] + uniforms.wd * w${j}[i]);
    buf${j}out[i] = v;
    w${j}out[i] = w${j}[i] - uniforms.lr * v;
  }`).join('\n  ')}`,
  };
};

/** How many variables one SGD launch can update on this device (0: the webgpu programs are not in use). */
export function webgpuSgdWidth(): number {
  if (!webgpuKernelsReady() || !fusedSgd) return 0;
  return Math.max(0, Math.min(16, Math.floor((storageBufferLimit() - 1) / 5)));
}

/**
 * One SGD step of `vars` (weights w, gradients, momentum buffers of the same shapes; scale a scalar)
 * in launches of webgpuSgdWidth() variables: returns the new weights and buffers, in order.
 */
export function sgdWebgpu(w: tf.Tensor[], grads: tf.Tensor[], bufs: tf.Tensor[], scale: tf.Tensor, o: { lr: number; wd: number; momentum: number }): { w: tf.Tensor[]; bufs: tf.Tensor[] } {
  const width = webgpuSgdWidth(), outW: tf.Tensor[] = [], outB: tf.Tensor[] = [];
  const be = tf.backend();
  for (let at = 0; at < w.length; at += width) {
    const idx = [...Array(Math.min(width, w.length - at)).keys()].map((j) => at + j);
    const sizes = idx.map((j) => w[j].size);
    const program = sgdProgram(idx.length, sizes);
    const infos = runMulti(be, program, [scale, ...idx.flatMap((j) => [grads[j], w[j], bufs[j]])],
      [o.lr, o.wd, o.momentum, program.workgroups, ...sizes]);
    idx.forEach((j, q) => {
      outW.push(tf.engine().makeTensorFromTensorInfo({ ...infos[2 * q], shape: w[j].shape }));
      outB.push(tf.engine().makeTensorFromTensorInfo({ ...infos[2 * q + 1], shape: w[j].shape }));
    });
  }
  return { w: outW, bufs: outB };
}

/** The affine batch norm's gradients [dx as [M, C], dg, db] (one launch; with y, through the fused ReLU whose output it is). */
const affineGrads = (dy: tf.Tensor, x: tf.Tensor, g: tf.Tensor, at: Attrs, y?: tf.Tensor) => {
  const [dx, dg, db] = tf.engine().runKernel(y ? 'BnasBatchNormAffineReluGrad' : 'BnasBatchNormAffineGrad', { dy, x, g, ...(y ? { y } : {}) } as unknown as tf.NamedTensorMap,
    at as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return [tf.reshape(dx, [at.M, at.C]), dg, db];
};

/** Gradients of the training kernels, computed when the backward pass reaches them (the running statistics have none). */
function registerBatchNormGradients(): void {
  const none = (a: Attrs) => ({ runMean: () => tf.zeros([a.C]), runVar: () => tf.zeros([a.C]) });
  tf.registerGradient({
    kernelName: 'BnasBatchNormTrain', inputsToSave: ['x'],
    gradFunc: (dys, [x], attrs) => {
      const a = attrs as unknown as Attrs, dy = (dys as tf.Tensor[])[0];
      const dx = run('BnasBatchNormNormalizeGrad', { dy, x }, a);
      return { x: () => dx, ...none(a) };
    },
  });
  tf.registerGradient({
    kernelName: 'BnasBatchNormTrainAffine', inputsToSave: ['x', 'g'],
    gradFunc: (dys, [x, g], attrs) => {
      // all three in one launch, here rather than in the thunks: each thunk runs in a scope of its own
      const a = attrs as unknown as Attrs, [dx, dg, db] = affineGrads((dys as tf.Tensor[])[0], x, g, a);
      return { x: () => dx, g: () => dg, b: () => db, ...none(a) };
    },
  });
  // with the ReLU fused in, the output y (saved) masks dy
  tf.registerGradient({
    kernelName: 'BnasBatchNormTrainRelu', inputsToSave: ['x'], outputsToSave: [true, false, false],
    gradFunc: (dys, [x, y], attrs) => {
      const a = attrs as unknown as Attrs, dy = (dys as tf.Tensor[])[0];
      const dx = run('BnasBatchNormNormalizeReluGrad', { dy, x, y }, a);
      return { x: () => dx, ...none(a) };
    },
  });
  tf.registerGradient({
    kernelName: 'BnasBatchNormTrainAffineRelu', inputsToSave: ['x', 'g'], outputsToSave: [true, false, false],
    gradFunc: (dys, [x, g, y], attrs) => {
      const a = attrs as unknown as Attrs, [dx, dg, db] = affineGrads((dys as tf.Tensor[])[0], x, g, a, y);
      return { x: () => dx, g: () => dg, b: () => db, ...none(a) };
    },
  });
}

// A mixed edge's weighted sum y = Σ_o w[o]·z_o of k same-shape tensors, flattened to [M], in one launch,
// and its gradients: every dz_o = w[o]·dy in one launch (gradZ), and, when the weights train,
// dw[o] = Σ dy·z_o in one launch for all o (P workgroups per o each sum a contiguous chunk; when
// P > 1 a second launch adds the P partial sums).
const zNames = (k: number) => [...Array(k).keys()].map((o) => `z${o}`);
/** values per partial sum of dw */
const CHUNK = 16384;
const WEIGHTED = {
  sum: (k: number) => ({ inputs: [...zNames(k), 'w'], program: ((v, M) => elementwise(`wsum${k}`, v, [M], '', zNames(k).map((z, o) => `w[${o}] * ${z}[index]`).join(' + '))) as Build }),
  // attrs: M elements, C = P chunks
  gradW: (k: number) => ({
    inputs: ['dy', ...zNames(k)],
    program: ((v, M, P) => channelProgram(`wsumgradw${k}`, v, [k * P], k * P, Math.ceil(M / P), `
    let o = c / uniforms.C;
    let chunk = (uniforms.M + uniforms.C - 1) / uniforms.C;
    let start = (c % uniforms.C) * chunk;
    let end = min(uniforms.M, start + chunk);
    var a = 0.0;
    ${zNames(k).map((z, o) => `if (o == ${o}) { for (var i = start + i32(localId.x); i < end; i = i + WGS) { a = a + dy[i] * ${z}[i]; } }`).join('\n    ')}
    let total = workgroupSum(a);
    if (localId.x == 0u) { result[c] = total; }`)) as Build,
  }),
};
/** dz_o = w[o]·dy for every o in one launch: invocations stride over the elements (attrs: M elements, C workgroups) */
const gradZ = (k: number) => ({
  inputs: ['dy', 'w'],
  program: (a: Attrs): MultiProgram => ({
    key: `bnas_wsum_gradz${k}`, outputs: zNames(k).map((z) => [`d${z}`, a.M] as [string, number]), inputs: ['dy', 'w'], uniforms: MULTI_UNIFORMS,
    workgroupSize: WG, workgroups: a.C, header: () => `const WGS : i32 = ${WG};`,
    body: () => `for (var i = c * WGS + i32(localId.x); i < uniforms.M; i = i + uniforms.C * WGS) {
    let d = dy[i];
    ${zNames(k).map((z, o) => `d${z}[i] = w[${o}] * d;`).join(' ')}
  }`,
  }),
});

function registerProgram(name: string, k: { inputs: string[]; program: Build }): void {
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

// Filter gradients of convolutions (Conv2DBackpropFilter, DepthwiseConv2dNativeBackpropFilter, NHWC).
// The stock programs give each filter element one invocation, which loops over all B·Ho·Wo output
// positions in series: at batch 64 that is milliseconds per launch on a GPU, for a few hundred
// invocations in all. Here each filter element is a workgroup whose invocations split the positions
// and sum them: dw[wR, wC, a, b] = Σ_{n, yR, yC} x[n, wR·dH + yR·sH − pT, wC·dW + yC·sW − pL, a] · dy[n, yR, yC, c]
// with c = b (conv: a input and b output channel) or a·mul + b (depthwise: channel a, multiplier b).
const FILTER_UNIFORMS = 'N : i32, H : i32, W : i32, Ho : i32, Wo : i32, Cx : i32, Cy : i32, sH : i32, sW : i32, pT : i32, pL : i32, dH : i32, dW : i32, kW : i32, A : i32, B : i32, total : i32,';
function filterGradProgram(depthwise: boolean, filterShape: number[], positions: number): Program {
  const wg = reductionGroup(positions), total = filterShape.reduce((a, b) => a * b, 1);
  return {
    variableNames: ['x', 'dy'], outputShape: filterShape, shaderKey: `bnas_filtergrad_${depthwise}_${wg}`, dispatchLayout: { x: [0] }, dispatch: [total, 1, 1],
    workgroupSize: [wg, 1, 1], uniforms: FILTER_UNIFORMS, size: false,
    // the dispatch may be folded into two or three dimensions (more than 65,535 workgroups): o is the flat workgroup index
    getUserCode: () => `${wgSum(wg)}
  fn main(index : i32) {
    let u = uniforms;
    let o = i32(workgroupId.z * numWorkgroups.x * numWorkgroups.y + workgroupId.y * numWorkgroups.x + workgroupId.x);
    let b = o % u.B;
    let t = o / u.B;
    let a = t % u.A;
    let wC = (t / u.A) % u.kW;
    let wR = (t / u.A) / u.kW;
    let c = ${depthwise ? 'a * u.B + b' : 'b'};
    var acc = 0.0;
    // invocations split the output rows (n, yR); each walks its rows' columns
    for (var row = i32(localId.x); row < u.N && o < u.total; row = row + WGS) {
      let n = row / u.Ho;
      let yR = row - n * u.Ho;
      let xR = wR * u.dH + yR * u.sH - u.pT;
      if (xR < 0 || xR >= u.H) { continue; }
      for (var yC = 0; yC < u.Wo; yC = yC + 1) {
        let xC = wC * u.dW + yC * u.sW - u.pL;
        if (xC >= 0 && xC < u.W) { acc = acc + x[((n * u.H + xR) * u.W + xC) * u.Cx + a] * dy[((n * u.Ho + yR) * u.Wo + yC) * u.Cy + c]; }
      }
    }
    let sum = workgroupSum(acc);
    if (localId.x == 0u && o < u.total) { result[o] = sum; }
  }`,
  };
}

// The input gradient of a depthwise convolution with any stride, dilation, padding and channel
// multiplier, one invocation per input element (tfjs's own program ignores dilation, and tfjs-core
// has no gradient for a dilated depthwise convolution). With the filter gradient above, it lets a
// dilated depthwise convolution run as one kernel each way (depthwiseDilatedWebgpu) instead of
// space-to-batch, convolution and batch-to-space.
/**
 * A gradient with one invocation per element (n, xR, xC, c) of an NHWC input of shape xShape, whose
 * `body` adds to `acc` (uniforms: at least H, W, Cx; `u` stands for them).
 */
function perInputElement(key: string, variableNames: string[], xShape: number[], uniforms: string, body: string): Program {
  const size = xShape.reduce((a, b) => a * b, 1);
  return {
    variableNames, outputShape: xShape, shaderKey: key, dispatchLayout: { x: xShape.map((_, i) => i) },
    dispatch: [Math.ceil(size / WG), 1, 1], workgroupSize: [WG, 1, 1], uniforms, size: true,
    getUserCode: () => `
  fn main(index : i32) {
    if (index < uniforms.size) {
      let u = uniforms;
      let c = index % u.Cx;
      let t = index / u.Cx;
      let xC = t % u.W;
      let xR = (t / u.W) % u.H;
      let n = (t / u.W) / u.H;
      var acc = 0.0;
      ${body}
      setOutputAtIndex(index, acc);
    }
  }`,
  };
}

const DW_INPUT_UNIFORMS = 'H : i32, W : i32, Ho : i32, Wo : i32, Cx : i32, mul : i32, kH : i32, kW : i32, sH : i32, sW : i32, pT : i32, pL : i32, dH : i32, dW : i32,';
const depthwiseGradInputProgram = (xShape: number[]) => perInputElement('bnas_dw_gradinput', ['dy', 'w'], xShape, DW_INPUT_UNIFORMS, `
      for (var kr = 0; kr < u.kH; kr = kr + 1) {
        let r = xR + u.pT - kr * u.dH;
        if (r < 0 || r % u.sH != 0 || r / u.sH >= u.Ho) { continue; }
        for (var kc = 0; kc < u.kW; kc = kc + 1) {
          let q = xC + u.pL - kc * u.dW;
          if (q < 0 || q % u.sW != 0 || q / u.sW >= u.Wo) { continue; }
          let base = ((n * u.Ho + r / u.sH) * u.Wo + q / u.sW) * u.Cx * u.mul + c * u.mul;
          for (var m = 0; m < u.mul; m = m + 1) { acc = acc + dy[base + m] * w[((kr * u.kW + kc) * u.Cx + c) * u.mul + m]; }
        }
      }`);

/** Registers BnasDepthwiseGradInput (attrs: the input shape, filter shape, strides, pad, dilations as for tfjs's conv kernels). */
function registerDepthwiseGradInput(): void {
  tf.registerKernel({
    kernelName: 'BnasDepthwiseGradInput', backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { dy, w } = inputs as { dy: tf.TensorInfo; w: tf.TensorInfo };
      const a = attrs as unknown as { inShape: [number, number, number, number]; strides: number; pad: number; dilations: number };
      const ci = tf.backend_util.computeConv2DInfo(a.inShape, w.shape as [number, number, number, number], a.strides, a.dilations, a.pad, undefined, true);
      const ints = [ci.inHeight, ci.inWidth, ci.outHeight, ci.outWidth, ci.inChannels, ci.outChannels / ci.inChannels, ci.filterHeight, ci.filterWidth,
        ci.strideHeight, ci.strideWidth, ci.padInfo.top, ci.padInfo.left, ci.dilationHeight, ci.dilationWidth];
      return (backend as Backend).runWebGPUProgram(depthwiseGradInputProgram(a.inShape), [dy, w], 'float32', intUniforms(ints));
    },
  });
}

/**
 * A dilated depthwise convolution (stride s, dilation d, symmetric zero padding p) in one kernel each
 * way on the webgpu backend: tfjs's forward program (run as a kernel: the op refuses stride and
 * dilation together, the program does not), our input and filter gradients.
 */
export function depthwiseDilatedWebgpu(x: tf.Tensor4D, w: tf.Tensor4D, s: number, d: number, p: number): tf.Tensor4D {
  const attrs = { strides: s, pad: p, dilations: d };
  const f = tf.customGrad((xx, ww, save) => {
    (save as tf.GradSaveFunc)([xx as tf.Tensor, ww as tf.Tensor]);
    return {
      value: tf.engine().runKernel('DepthwiseConv2dNative', { x: xx, filter: ww } as unknown as tf.NamedTensorMap,
        { strides: [s, s], pad: p, dilations: [d, d], dataFormat: 'NHWC' } as unknown as tf.NamedAttrMap) as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor, [xs, ws]: tf.Tensor[]) => {
        return [
          tf.engine().runKernel('BnasDepthwiseGradInput', { dy, w: ws } as unknown as tf.NamedTensorMap, { ...attrs, inShape: xs.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
          tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x: xs, dy } as unknown as tf.NamedTensorMap, { ...attrs, filterShape: ws.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
        ];
      },
    };
  });
  return f(x, w) as tf.Tensor4D;
}

/**
 * Whether convolutions and pools on webgpu take their padding as the kernels' own (explicit) padding,
 * and dilated depthwise convolutions run through depthwiseDilatedWebgpu: it needs our filter
 * gradient (which takes dilation); BAYESNAS_WEBGPU_FILTER_GRAD=0 keeps the composed forms too.
 */
export const webgpuConvReady = () => webgpuKernelsReady() && filterGradsOn;

// The average pool's gradient with the forward's divisor, the count of real inputs in each window
// (count_include_pad=False, TensorFlow's 'SAME'): one invocation per input element.
const AVG_GRAD_UNIFORMS = 'H : i32, W : i32, Ho : i32, Wo : i32, Cx : i32, fH : i32, fW : i32, sH : i32, sW : i32, pT : i32, pL : i32,';
const avgPoolGradProgram = (xShape: number[]) => perInputElement('bnas_avgpool_grad', ['dy'], xShape, AVG_GRAD_UNIFORMS, `
      for (var kr = 0; kr < u.fH; kr = kr + 1) {
        let r = xR + u.pT - kr;
        if (r < 0 || r % u.sH != 0 || r / u.sH >= u.Ho) { continue; }
        let top = (r / u.sH) * u.sH - u.pT;
        let rows = min(u.H, top + u.fH) - max(0, top);
        for (var kc = 0; kc < u.fW; kc = kc + 1) {
          let q = xC + u.pL - kc;
          if (q < 0 || q % u.sW != 0 || q / u.sW >= u.Wo) { continue; }
          let left = (q / u.sW) * u.sW - u.pL;
          let cols = min(u.W, left + u.fW) - max(0, left);
          acc = acc + dy[((n * u.Ho + r / u.sH) * u.Wo + q / u.sW) * u.Cx + c] / f32(rows * cols);
        }
      }`);

/** dx of tf.avgPool(x, filterSize, strides, pad) whose windows divide by their count of real inputs (webgpu, one launch). */
export function avgPoolGradWebgpu(dy: tf.Tensor4D, xShape: [number, number, number, number], filterSize: [number, number], strides: [number, number], pad: unknown, dimRoundingMode?: unknown): tf.Tensor4D {
  const info = tf.backend_util.computePool2DInfo(xShape, filterSize, strides, 1, pad as 'same', dimRoundingMode as 'floor' | undefined);
  const ints = [info.inHeight, info.inWidth, info.outHeight, info.outWidth, info.inChannels, info.filterHeight, info.filterWidth,
    info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left];
  return tf.engine().runKernel('BnasAvgPoolGrad', { dy } as unknown as tf.NamedTensorMap, { xShape, ints } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/** i32 uniforms, in the order of a program's uniform declaration */
const intUniforms = (ints: number[]) => ints.map((v) => ({ type: 'int32', data: [v] }));

type KernelFunc = (a: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => tf.TensorInfo | tf.TensorInfo[];
/** Replaces the webgpu backend's filter-gradient kernels by filterGradProgram (the stock ones stay for NCHW). */
function registerFilterGrads(): void {
  for (const [name, depthwise] of [['Conv2DBackpropFilter', false], ['DepthwiseConv2dNativeBackpropFilter', true]] as const) {
    const stock = tf.getKernel(name, 'webgpu')?.kernelFunc as KernelFunc | undefined;
    if (!stock) throw new Error(`the webgpu backend has no ${name} kernel`);
    tf.unregisterKernel(name, 'webgpu');
    tf.registerKernel({
      kernelName: name, backendName: 'webgpu',
      kernelFunc: (args) => {
        const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
        const at = args.attrs as unknown as { strides: number | [number, number]; pad: 'valid' | 'same' | number; dataFormat?: 'NHWC' | 'NCHW';
          dilations?: number | [number, number]; dimRoundingMode?: 'floor' | 'round' | 'ceil'; filterShape: [number, number, number, number] };
        if ((at.dataFormat ?? 'NHWC') !== 'NHWC' || x.dtype !== 'float32') return stock(args);
        const ci = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], at.filterShape, at.strides, depthwise ? at.dilations ?? 1 : 1,
          at.pad, at.dimRoundingMode, depthwise);
        const N = ci.batchSize * ci.outHeight;   // output rows (n, yR)
        const [, , A, B] = at.filterShape;
        const ints = [N, ci.inHeight, ci.inWidth, ci.outHeight, ci.outWidth, ci.inChannels, ci.outChannels, ci.strideHeight, ci.strideWidth,
          ci.padInfo.top, ci.padInfo.left, ci.dilationHeight, ci.dilationWidth, ci.filterWidth, A, B, at.filterShape.reduce((p, q) => p * q, 1)];
        return (args.backend as Backend).runWebGPUProgram(filterGradProgram(depthwise, at.filterShape, N * ci.outWidth), [x, dy], 'float32', intUniforms(ints));
      },
    });
  }
}

let registered = false;
/** BAYESNAS_WEBGPU_FUSED_EDGES=0 keeps the mixed edges' composed gates (read once, when the kernels are registered) */
let fusedMixedEdges = true;
/** our filter gradients are registered (BAYESNAS_WEBGPU_FILTER_GRAD) */
let filterGradsOn = true;
/** BAYESNAS_WEBGPU_FUSED_SGD=0 keeps the composed SGD update (read once, when the kernels are registered) */
let fusedSgd = true;
/** the weighted sums registered so far, by number of terms */
const weightedSums = new Set<number>();
/** BAYESNAS_WEBGPU_FUSED_BN=0 keeps the composed batch norm (read once, when the kernels are registered) */
let fusedBatchNorm = true;

/** Registers the kernels on the webgpu backend (once; after the backend's module has loaded). */
export function registerWebgpuKernels(): void {
  if (registered) return;
  fusedBatchNorm = process.env.BAYESNAS_WEBGPU_FUSED_BN !== '0';
  fusedMixedEdges = process.env.BAYESNAS_WEBGPU_FUSED_EDGES !== '0';
  fusedSgd = process.env.BAYESNAS_WEBGPU_FUSED_SGD !== '0';
  for (const [name, k] of Object.entries(KERNELS)) registerProgram(name, k);
  for (const [name, k] of Object.entries(MULTI)) registerMulti(name, k);
  registerBatchNormGradients();
  // BAYESNAS_WEBGPU_FILTER_GRAD=0 keeps the stock filter-gradient programs (and dilated convolutions composed)
  filterGradsOn = process.env.BAYESNAS_WEBGPU_FILTER_GRAD !== '0';
  if (filterGradsOn) registerFilterGrads();
  registerDepthwiseGradInput();
  tf.registerKernel({
    kernelName: 'BnasAvgPoolGrad', backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const a = attrs as unknown as { xShape: number[]; ints: number[] };
      return (backend as Backend).runWebGPUProgram(avgPoolGradProgram(a.xShape), [(inputs as { dy: tf.TensorInfo }).dy], 'float32', intUniforms(a.ints));
    },
  });
  registered = true;
}

export const webgpuKernelsReady = () => registered && tf.getBackend() === 'webgpu';
/** storage buffers one program may bind on the webgpu backend's device */
const storageBufferLimit = () => (tf.backend() as unknown as { device: { limits: Record<string, number> } }).device.limits.maxStorageBuffersPerShaderStage;
export const webgpuBatchNormReady = () => fusedBatchNorm && webgpuKernelsReady();

/**
 * Whether the mixed edges of k ops can use weightedSumWebgpu: the webgpu backend with its programs, and
 * k + 2 storage buffers within the device's limit (k terms and the weights or dy, and the output).
 */
export function webgpuMixedEdgesReady(k: number): boolean {
  if (!fusedMixedEdges || !webgpuKernelsReady()) return false;
  return k + 2 <= storageBufferLimit();
}

/** Σ_o w[o]·zs[o] (zs of one shape, w [k]) in one launch, differentiable in both (see WEIGHTED). */
export function weightedSumWebgpu<T extends tf.Tensor>(zs: T[], w: tf.Tensor1D): T {
  const k = zs.length, name = `BnasWeightedSum${k}`;
  if (!weightedSums.has(k)) {
    registerProgram(name, WEIGHTED.sum(k));
    registerProgram(`BnasWeightedSumGradW${k}`, WEIGHTED.gradW(k));
    registerMulti(`BnasWeightedSumGradZ${k}`, gradZ(k));
    tf.registerGradient({
      kernelName: name, inputsToSave: WEIGHTED.sum(k).inputs,
      gradFunc: (dy, saved) => {
        const d = dy as tf.Tensor, ws = saved[k], M = d.size;
        // every dz_o in one launch, here rather than in the thunks: each thunk runs in a scope of its own
        const dz = tf.engine().runKernel(`BnasWeightedSumGradZ${k}`, { dy: d, w: ws } as unknown as tf.NamedTensorMap,
          { M, C: Math.min(Math.ceil(M / WG), 4096) } as unknown as tf.NamedAttrMap) as tf.Tensor[];
        const grads: Record<string, () => tf.Tensor> = Object.fromEntries(zNames(k).map((z, o) => [z, () => dz[o]]));
        grads.w = () => {
          const P = Math.ceil(M / CHUNK);
          const parts = run(`BnasWeightedSumGradW${k}`, { dy: d, ...Object.fromEntries(zNames(k).map((z, o) => [z, saved[o]])) }, { M, C: P });
          return P === 1 ? parts : tf.sum(tf.reshape(parts, [k, P]), 1);
        };
        return grads;
      },
    });
    weightedSums.add(k);
  }
  const M = zs[0].size, flat = Object.fromEntries(zs.map((z, o) => [`z${o}`, tf.reshape(z, [M])]));
  return tf.reshape(run(name, { ...flat, w }, { M, C: 1 }), zs[0].shape) as T;
}

/**
 * k aliases of t, made without a launch, whose gradients come back as one sum (AddN: one launch per
 * 15 terms on lavapipe) instead of the k − 1 pairwise adds tfjs's backward pass does for a tensor
 * with k consumers. k ≥ 2.
 */
export function fanOutWebgpu<T extends tf.Tensor>(t: T, k: number): T[] {
  if (!fanOutRegistered) {
    tf.registerKernel({
      kernelName: 'BnasFanOut', backendName: 'webgpu',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const x = (inputs as { x: tf.TensorInfo }).x, be = backend as unknown as { incRef(dataId: object): void };
        return Array.from({ length: (attrs as unknown as { k: number }).k }, () => { be.incRef(x.dataId); return { dataId: x.dataId, shape: x.shape, dtype: x.dtype }; });
      },
    });
    tf.registerGradient({ kernelName: 'BnasFanOut', gradFunc: (dys) => ({ x: () => tf.addN(dys as tf.Tensor[]) }) });
    fanOutRegistered = true;
  }
  // a copy: the engine's tape holds the array it returns as the node's outputs
  return (tf.engine().runKernel('BnasFanOut', { x: t } as unknown as tf.NamedTensorMap, { k } as unknown as tf.NamedAttrMap) as unknown as T[]).slice();
}
let fanOutRegistered = false;

const run = (name: string, inputs: Record<string, tf.Tensor>, attrs: Attrs) =>
  tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;

/** dy where x > 0, else 0: ReLU's gradient in one launch. */
export function reluGradWebgpu(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.reshape(run('BnasReluGrad', { dy: tf.reshape(dy, [dy.size]), x: tf.reshape(x, [x.size]) }, { M: x.size, C: 1 }), x.shape);
}

/**
 * y = (x − mean)·rsqrt(var + eps)·g + b over all axes but the last (g and b null: affine=false), with
 * `running` the updated running statistics (PyTorch's: unbiased variance), and with `stats` the batch
 * mean and biased variance. The statistics carry no gradient of their own: y's gradient already
 * accounts for their dependence on x.
 */
export function batchNormWebgpu(x: tf.Tensor, g: tf.Tensor1D | null, b: tf.Tensor1D | null, eps: number,
  running: { mean: tf.Tensor1D; variance: tf.Tensor1D; momentum: number } | undefined, stats: boolean, relu = false) {
  const C = x.shape[x.rank - 1], M = x.size / C;
  const at: Attrs = { M, C, eps };
  const x2 = tf.reshape(x, [M, C]);
  const affine = !!(g || b);
  const gg = affine ? g ?? tf.ones([C]) : null, bb = affine ? b ?? tf.zeros([C]) : null;
  const out: { y: tf.Tensor; mean?: tf.Tensor1D; variance?: tf.Tensor1D; runningMean?: tf.Tensor1D; runningVar?: tf.Tensor1D } = { y: x };
  if (running) {
    // y and the running statistics in one launch (gradients: registerBatchNormGradients)
    const ins = { x: x2, ...(affine ? { g: gg, b: bb } : {}), runMean: running.mean, runVar: running.variance };
    const [y, rm, rv] = tf.engine().runKernel(`BnasBatchNormTrain${affine ? 'Affine' : ''}${relu ? 'Relu' : ''}`, ins as unknown as tf.NamedTensorMap,
      { ...at, momentum: running.momentum, factor: M / Math.max(1, M - 1) } as unknown as tf.NamedAttrMap) as tf.Tensor[];
    Object.assign(out, { y: tf.reshape(y, x.shape), runningMean: rm, runningVar: rv });
  } else if (affine) {
    const f = tf.customGrad((xx, g1, b1, save) => {
      // the backward pass runs after the forward's scope has ended: what it reads must be saved
      (save as tf.GradSaveFunc)([xx as tf.Tensor, g1 as tf.Tensor]);
      return {
        value: run('BnasBatchNormNormalizeAffine', { x: xx as tf.Tensor, g: g1 as tf.Tensor, b: b1 as tf.Tensor }, at),
        gradFunc: (dy: tf.Tensor, [xs, gs]: tf.Tensor[]) => affineGrads(dy, xs, gs, at),
      };
    });
    out.y = tf.reshape(f(x2, gg!, bb!) as tf.Tensor, x.shape);
  } else {
    const f = tf.customGrad((xx, save) => {
      (save as tf.GradSaveFunc)([xx as tf.Tensor]);
      return {
        value: run('BnasBatchNormNormalize', { x: xx as tf.Tensor }, at),
        gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) => run('BnasBatchNormNormalizeGrad', { dy, x: xs }, at),
      };
    });
    out.y = tf.reshape(f(x2) as tf.Tensor, x.shape);
  }
  if (relu && !running) out.y = tf.relu(out.y);
  if (stats) {
    out.mean = run('BnasBatchNormMean', { x: x2 }, at) as tf.Tensor1D;
    out.variance = run('BnasBatchNormVariance', { x: x2, mean: out.mean }, at) as tf.Tensor1D;
  }
  return out;
}
