// Direct access to TensorFlow ops on the `tensorflow` backend (tfjs-node), by TensorFlow op name.
// tfjs-core composes several gradients out of many small kernels (batch norm, ReLU); TensorFlow has
// fused kernels for them. `native()` runs one TensorFlow op through a registered tfjs kernel, so the
// call is recorded by the engine like any other kernel (tidy, memory counts, profiler).
import * as tf from '@tensorflow/tfjs-core';

export type AttrKind = 'type' | 'int' | 'float' | 'bool' | 'string';
export interface NativeAttr { name: string; kind: AttrKind; value: number | number[] | boolean | string }

interface TfBinding {
  TF_ATTR_TYPE: number; TF_ATTR_INT: number; TF_ATTR_FLOAT: number; TF_ATTR_BOOL: number; TF_ATTR_STRING: number;
  TF_FLOAT: number; TF_INT32: number;
}
interface NodeBackend {
  binding: TfBinding;
  executeMultipleOutputs(name: string, attrs: unknown[], inputs: tf.TensorInfo[], n: number): tf.Tensor[];
}

const KERNEL = 'BayesnasNative';
let registered = false;
const aliases = new Set<string>();

export function onTensorflow(): boolean {
  return tf.getBackend() === 'tensorflow';
}

function register(): void {
  if (registered) return;
  registered = true;
  tf.registerKernel({ kernelName: KERNEL, backendName: 'tensorflow', kernelFunc: nativeKernelFunc });
}

/**
 * Registers `kernelName` as another name of the native kernel, so that a gradient can be registered
 * for one particular TensorFlow op (tf.registerGradient works by kernel name). Run it with
 * `runNative(kernelName, ...)`; inputs are named '0', '1', ... in order.
 */
export function registerNativeKernel(kernelName: string): void {
  if (aliases.has(kernelName)) return;
  aliases.add(kernelName);
  tf.registerKernel({ kernelName, backendName: 'tensorflow', kernelFunc: nativeKernelFunc });
}

const nativeKernelFunc: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as unknown as NodeBackend;
  const B = b.binding;
  const { op, spec, numOutputs } = attrs as unknown as { op: string; spec: NativeAttr[]; numOutputs: number };
  const opAttrs = spec.map((a) => {
    switch (a.kind) {
      case 'type': return { name: a.name, type: B.TF_ATTR_TYPE, value: a.value === 'int32' ? B.TF_INT32 : B.TF_FLOAT };
      case 'int': return { name: a.name, type: B.TF_ATTR_INT, value: a.value };
      case 'float': return { name: a.name, type: B.TF_ATTR_FLOAT, value: a.value };
      case 'bool': return { name: a.name, type: B.TF_ATTR_BOOL, value: a.value };
      case 'string': return { name: a.name, type: B.TF_ATTR_STRING, value: a.value };
      default: throw new Error(`native ${op}: unknown attribute kind ${(a as NativeAttr).kind}`);
    }
  });
  const list = Object.keys(inputs).sort((x, y) => Number(x) - Number(y)).map((k) => inputs[k] as tf.TensorInfo);
  return b.executeMultipleOutputs(op, opAttrs, list, numOutputs) as unknown as tf.TensorInfo[];
};

/** Runs TensorFlow op `op` on the tensorflow backend. Only valid when onTensorflow(). */
export function native(op: string, inputs: tf.Tensor[], spec: NativeAttr[], numOutputs = 1): tf.Tensor[] {
  register();
  return runNative(KERNEL, op, inputs, spec, numOutputs);
}

/** Runs TensorFlow op `op` through the kernel registered as `kernelName` by registerNativeKernel. */
export function runNative(kernelName: string, op: string, inputs: tf.Tensor[], spec: NativeAttr[], numOutputs = 1): tf.Tensor[] {
  if (!onTensorflow()) throw new Error(`native(${op}) needs the tensorflow backend (current: ${tf.getBackend()})`);
  const named: Record<string, tf.Tensor> = {};
  inputs.forEach((t, i) => { named[String(i)] = t; });
  const out = tf.engine().runKernel(kernelName, named, { op, spec, numOutputs } as unknown as tf.NamedAttrMap);
  return Array.isArray(out) ? (out as tf.Tensor[]) : [out as tf.Tensor];
}
