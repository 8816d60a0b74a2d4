// WebGPU programs with several outputs. tfjs's program interface (WebGPUBackend.runWebGPUProgram)
// binds one output, so a kernel that produces k tensors costs k launches. These programs are compiled
// here and recorded through the backend's own recordAndSubmit, which gives them the same command
// batching, uniform buffers and tf.profile timing. The extra outputs go where the backend binds
// inputs, and our shader declares those bindings writable. Every tensor is bound flat (1-D), so the
// backend's uniform block is a run of scalars that the shader's struct mirrors: NaN, Infinity, then a
// size and a stride per binding, then the program's own uniforms.
import * as tf from '@tensorflow/tfjs-core';

export interface MultiProgram {
  /** names the compiled pipeline: equal keys must mean equal shader code */
  key: string;
  /** output names and element counts, in binding order */
  outputs: Array<[string, number]>;
  /** input names, in the order the tensors are passed */
  inputs: string[];
  /** the program's own uniforms, read in WGSL as `uniforms.<name>` */
  uniforms: Array<[string, 'i32' | 'f32']>;
  /** invocations per workgroup */
  workgroupSize: number;
  /** workgroups, indexed by `c` in the body (at most 65,535) */
  workgroups: number;
  /** module-scope WGSL (helpers; may use localId); built only when the pipeline is */
  header?: () => string;
  /** WGSL body of main(): `c` is the workgroup index, localId the invocation's; built only when the pipeline is */
  body: () => string;
}

interface Backend {
  device: { createShaderModule(d: { code: string }): unknown; createComputePipeline(d: object): unknown };
  makeTensorInfo(shape: number[], dtype: 'float32'): tf.TensorInfo;
  uploadToGPU(dataId: object): void;
  recordAndSubmit(program: object, output: tf.TensorInfo, inputs: tf.TensorInfo[], uniforms: Array<{ type: string; data: number[] }>): void;
}

const pipelines = new Map<string, unknown>();

export function shaderOf(p: MultiProgram): string {
  const bindings = p.outputs.length + p.inputs.length;
  const fields = ['NAN : f32', 'INFINITY : f32', ...Array.from({ length: 2 * bindings }, (_, i) => `layout${i} : i32`), ...p.uniforms.map(([n, t]) => `${n} : ${t}`)];
  const decl = [
    ...p.outputs.map(([n], i) => `@group(0) @binding(${i}) var<storage, read_write> ${n} : array<f32>;`),
    ...p.inputs.map((n, i) => `@group(0) @binding(${p.outputs.length + i}) var<storage, read> ${n} : array<f32>;`),
  ];
  return `struct Uniforms { ${fields.join(', ')} };
${decl.join('\n')}
@group(0) @binding(${bindings}) var<uniform> uniforms : Uniforms;
var<private> localId : vec3<u32>;
var<private> workgroupId : vec3<u32>;
${p.header?.() ?? ''}
fn main() {
  let c = i32(workgroupId.x);
  ${p.body()}
}
@compute @workgroup_size(${p.workgroupSize}, 1, 1)
fn _start(@builtin(local_invocation_id) lid : vec3<u32>, @builtin(workgroup_id) wid : vec3<u32>) {
  localId = lid;
  workgroupId = wid;
  main();
}
`;
}

/** Runs `p` on the webgpu backend: one launch, returning one flat float32 tensor per output. */
export function runMulti(backend: unknown, p: MultiProgram, inputs: tf.TensorInfo[], uniforms: number[]): tf.TensorInfo[] {
  if (inputs.length !== p.inputs.length || uniforms.length !== p.uniforms.length) throw new Error(`${p.key}: ${inputs.length} inputs and ${uniforms.length} uniforms for a program of ${p.inputs.length} and ${p.uniforms.length}`);
  if (p.workgroups > 65535) throw new Error(`${p.key}: ${p.workgroups} workgroups, more than one dispatch dimension holds`);
  const be = backend as Backend;
  let pipeline = pipelines.get(p.key);
  if (!pipeline) {
    const missing = (['recordAndSubmit', 'makeTensorInfo', 'uploadToGPU'] as const).filter((m) => typeof be[m] !== 'function');
    if (missing.length) throw new Error(`${p.key}: the webgpu backend has no ${missing.join(', ')} (written against @tensorflow/tfjs-backend-webgpu 4.22)`);
    pipeline = be.device.createComputePipeline({ layout: 'auto', compute: { module: be.device.createShaderModule({ code: shaderOf(p) }), entryPoint: '_start' } });
    pipelines.set(p.key, pipeline);
  }
  const outs = p.outputs.map(([, n]) => be.makeTensorInfo([n], 'float32'));
  for (const t of [...outs, ...inputs]) be.uploadToGPU(t.dataId);
  const flat = inputs.map((t) => ({ ...t, shape: [tf.util.sizeFromShape(t.shape)] }));
  const program = { pipeline, dispatch: [p.workgroups, 1, 1], size: false };
  be.recordAndSubmit(program, outs[0], [...outs.slice(1), ...flat], p.uniforms.map(([, t], i) => ({ type: t === 'i32' ? 'int32' : 'float32', data: [uniforms[i]] })));
  return outs;
}
