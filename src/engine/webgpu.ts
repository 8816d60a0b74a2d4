// The `webgpu` backend: TensorFlow.js's WebGPU kernels on Dawn (npm `webgpu`, Dawn's Node binding),
// which reaches the GPU through Vulkan. Both packages are optional dependencies.
//
// Two requirements of running it in Node are met here, once:
//   * @tensorflow/tfjs-backend-webgpu registers itself only if a window-like global with
//     `navigator.gpu` exists when its module is evaluated, so the globals are set first and the
//     module is imported (dynamically) afterwards;
//   * synchronous reads (dataSync/arraySync) need an OffscreenCanvas, which Node lacks: the rest
//     of the project reads tensors with `await t.data()` only.
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { registerWebgpuKernels } from './webgpu-kernels.js';

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** a software rasteriser (e.g. Mesa's lavapipe on the CPU), not a GPU */
  fallback: boolean;
}

interface Probe { gpu: unknown; globals: Record<string, unknown>; adapter: AdapterInfo }

/** Whether the machine exposes a GPU device node (NVIDIA's, or a DRM render node): only then is an automatic probe worth its Vulkan start-up. */
export function gpuDeviceNodePresent(): boolean {
  return fs.existsSync('/dev/nvidiactl') || fs.existsSync('/dev/dri');
}

/** Finds a WebGPU adapter; a string says why there is none. */
export async function probeAdapter(): Promise<Probe | string> {
  let mod: { create: (flags: string[]) => { requestAdapter: (o?: object) => Promise<unknown> }; globals: Record<string, unknown> };
  try {
    // a variable keeps tsc from needing the package's WebGPU type declarations, and keeps bundlers from
    // inlining its native module (scripts/gpu/pack.mjs carries the package beside the bundle)
    const name = 'webgpu';
    mod = await import(name);
  } catch (e) {
    return `the optional package \`webgpu\` (Dawn for Node) cannot load: ${(e as Error).message.split('\n')[0]}`;
  }
  const gpu = mod.create(process.env.BAYESNAS_DAWN_FLAGS ? process.env.BAYESNAS_DAWN_FLAGS.split(',') : []);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' }) as { info?: Record<string, unknown> } | null;
  if (!adapter) {
    return 'Dawn found no WebGPU adapter: no Vulkan loader (libvulkan.so.1) or no Vulkan driver for a GPU '
      + '(VK_DRIVER_FILES names the driver\'s ICD file; README, "GPU: the webgpu backend", shows a set-up, and '
      + '`npm run setup -- --only=vulkan` a software driver)';
  }
  const i = adapter.info ?? {};
  const s = (k: string) => String(i[k] ?? '');
  return { gpu, globals: mod.globals, adapter: { vendor: s('vendor'), architecture: s('architecture'), device: s('device'), description: s('description'), fallback: i.isFallbackAdapter === true } };
}

type Limits = Record<string, number>;
interface Adapter { limits: Limits; requestDevice(d?: { requiredLimits?: Limits; requiredFeatures?: string[] }): Promise<unknown> }

/**
 * Limits the backend's device asks for beyond its own list: the adapter's storage-buffer bindings per
 * shader stage. WebGPU's default is 8, and a program with more inputs (AddN of the gradient terms of a
 * tensor that feeds many ops: 16 in a DARTS cell) fails to compile under it.
 */
const RAISED_LIMITS = ['maxStorageBuffersPerShaderStage'];

/** Installs the globals the backend looks for, then loads and registers it. */
export async function installWebgpuBackend(p: Probe): Promise<void> {
  const g = globalThis as Record<string, unknown>;
  Object.assign(g, p.globals);
  if (g.window === undefined) g.window = globalThis;
  const gpu = p.gpu as { requestAdapter(o?: object): Promise<Adapter | null> };
  const requestAdapter = gpu.requestAdapter.bind(gpu);
  const wrapped = {
    async requestAdapter(o?: object) {
      const adapter = await requestAdapter(o);
      if (!adapter) return adapter;
      const requestDevice = adapter.requestDevice.bind(adapter);
      const raised: Limits = Object.fromEntries(RAISED_LIMITS.filter((k) => typeof adapter.limits[k] === 'number').map((k) => [k, adapter.limits[k]]));
      return new Proxy(adapter, {
        get(target, key) {
          if (key === 'requestDevice') return (d: Parameters<Adapter['requestDevice']>[0] = {}) => requestDevice({ ...d, requiredLimits: { ...raised, ...d.requiredLimits } });
          const v = Reflect.get(target, key, target);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    },
  };
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: wrapped }, configurable: true, writable: true });
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!tf.findBackendFactory('webgpu')) throw new Error('@tensorflow/tfjs-backend-webgpu loaded but registered no `webgpu` backend');
  chunkAddN();
  registerWebgpuKernels();
}

/**
 * AddN in programs that fit the device's storage-buffer limit: the stock kernel binds every input at
 * once, so a sum of more terms than the limit allows fails to compile (16 gradient terms of one DARTS
 * cell input, against 16 bindings for inputs and output on Mesa's lavapipe). Larger sums are folded
 * into a running sum, each program taking the partial sum and as many new terms as fit.
 */
function chunkAddN(): void {
  const stock = tf.getKernel('AddN', 'webgpu');
  if (!stock) throw new Error('the webgpu backend has no AddN kernel');
  const run = stock.kernelFunc as (a: { inputs: unknown; backend: unknown; attrs?: unknown }) => tf.TensorInfo;
  tf.unregisterKernel('AddN', 'webgpu');
  tf.registerKernel({
    kernelName: 'AddN', backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const terms = inputs as unknown as tf.TensorInfo[];
      const be = backend as unknown as { device: { limits: Limits }; disposeData(id: object): void };
      const fit = Math.max(2, be.device.limits.maxStorageBuffersPerShaderStage - 1);   // one binding is the output
      if (terms.length <= fit) return run({ inputs, backend, attrs });
      let acc = run({ inputs: terms.slice(0, fit), backend, attrs });
      for (let i = fit; i < terms.length; i += fit - 1) {
        const next = run({ inputs: [acc, ...terms.slice(i, i + fit - 1)], backend, attrs });
        be.disposeData(acc.dataId);
        acc = next;
      }
      return acc;
    },
  });
}

export function describeAdapter(a: AdapterInfo): string {
  return [a.vendor, a.architecture, a.description || a.device].filter(Boolean).join(' / ') + (a.fallback ? ' (software fallback adapter)' : '');
}
