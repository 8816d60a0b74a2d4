// Engine: loads and selects the TensorFlow.js backend, and installs the project's gradient fixes.
//
// Policy (shared/design/architecture.md): `tensorflow` from the GPU build of tfjs-node where it loads;
// else `webgpu` (TensorFlow.js on Dawn/Vulkan, webgpu.ts) where the machine shows a GPU and Dawn finds
// a hardware adapter for it; else `tensorflow` (tfjs-node built against a TensorFlow wheel by
// scripts/setup.mjs); else the pure-JS `cpu` backend, which is only good for tiny tests.
// BAYESNAS_BACKEND=tensorflow|webgpu|cpu forces one (a forced `webgpu` also takes a software adapter);
// BAYESNAS_AUTO_WEBGPU=0 keeps the automatic choice off the GPU.
// Every module imports `tf` from here, and reads tensors asynchronously (`await t.data()`): the webgpu
// backend cannot read synchronously in Node.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core registers no gradients of its own in Node; the union package does (tfjs-node loads it too)
import '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { installGradientFixes } from './grads.js';
import { describeAdapter, gpuDeviceNodePresent, installWebgpuBackend, probeAdapter, type AdapterInfo } from './webgpu.js';

export { tf };

export type BackendName = 'tensorflow' | 'webgpu' | 'cpu';
const BACKENDS: BackendName[] = ['tensorflow', 'webgpu', 'cpu'];

export interface EngineInfo {
  backend: BackendName;
  /** npm package that provides the backend */
  package: string;
  /** TensorFlow C library version (tensorflow backend only) */
  tensorflowVersion: string | null;
  gpu: boolean;
  /** true when the backend is the slow pure-JS one although a native one was wanted */
  degraded: boolean;
  /** why the native backend is not in use, if it is not */
  reason: string | null;
  /** TensorFlow's oneDNN kernels on (BAYESNAS_ONEDNN=1 / TF_ENABLE_ONEDNN_OPTS=1): faster, not deterministic */
  onednn?: boolean;
  /** the WebGPU adapter (webgpu backend only) */
  adapter?: AdapterInfo;
  /** TensorFlow.js flags set from BAYESNAS_TFJS_FLAGS */
  flags?: Record<string, number | boolean | string>;
}

/**
 * BAYESNAS_TFJS_FLAGS="NAME=value,…": TensorFlow.js environment flags (numbers, true/false, or text),
 * e.g. WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=64 for the webgpu backend's command batching.
 */
export function parseTfjsFlags(text: string): Record<string, number | boolean | string> {
  const out: Record<string, number | boolean | string> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(part);
    if (!m) throw new Error(`BAYESNAS_TFJS_FLAGS: '${part}' is not NAME=value`);
    const v = m[2].trim();
    out[m[1]] = v === 'true' ? true : v === 'false' ? false : v !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
  }
  return out;
}

const require = createRequire(import.meta.url);
let info: EngineInfo | null = null;
let pending: Promise<EngineInfo> | null = null;

/** Path of the compiled addon of a tfjs-node package, or null when it was not built. */
export function nativeBindingPath(pkg: '@tensorflow/tfjs-node' | '@tensorflow/tfjs-node-gpu'): string | null {
  let dir: string;
  try {
    dir = path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    return null;
  }
  const p = path.join(dir, 'lib', `napi-v${process.versions.napi}`, 'tfjs_binding.node');
  if (fs.existsSync(p)) return p;
  const p8 = path.join(dir, 'lib', 'napi-v8', 'tfjs_binding.node');
  return fs.existsSync(p8) ? p8 : null;
}

async function loadNative(): Promise<{ pkg: string; version: string; gpu: boolean } | string> {
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  // TensorFlow's oneDNN kernels (TF reads TF_ENABLE_ONEDNN_OPTS when the library loads) are off unless
  // asked for with BAYESNAS_ONEDNN=1 or TF_ENABLE_ONEDNN_OPTS=1. They run the supernet's batch norms
  // and convolution input gradients 2-3x faster on these AVX2 machines, but their filter gradient of
  // stride-2 1x1 convolutions (FactorizedReduce) with few channels differs from one call to the next,
  // by up to the gradient's own size (test/engine.test.ts keeps the default deterministic).
  process.env.TF_ENABLE_ONEDNN_OPTS ??= process.env.BAYESNAS_ONEDNN === '1' ? '1' : '0';
  const errors: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const) {
    if (!nativeBindingPath(pkg)) {
      if (pkg === '@tensorflow/tfjs-node') errors.push(`${pkg} has no compiled addon (run \`npm run setup\`)`);
      continue;
    }
    // tfjs-node locates its addon with node-pre-gyp, which parses process.argv (a user's `--C 8`
    // reads as its `-C <dir>`); hide our command line while it loads.
    const argv = process.argv;
    try {
      process.argv = argv.slice(0, 2);
      require(pkg);
      const backend = tf.findBackend('tensorflow') as unknown as { binding?: { TF_Version?: string } } | null;
      if (!backend) throw new Error('the package loaded but registered no `tensorflow` backend');
      const version = backend.binding?.TF_Version ?? 'unknown';
      return { pkg, version, gpu: pkg.endsWith('-gpu') };
    } catch (e) {
      errors.push(`${pkg}: ${(e as Error).message.split('\n')[0]}`);
    } finally {
      process.argv = argv;
    }
  }
  return errors.join('; ');
}

/**
 * Selects and initialises the backend (once per process). `BAYESNAS_BACKEND` or `opts.backend` force one;
 * forcing `tensorflow` where it cannot load is an error, not a silent fallback.
 */
export function initEngine(opts: { backend?: BackendName; quiet?: boolean } = {}): Promise<EngineInfo> {
  if (pending) return pending;
  pending = (async () => {
    const forced = (opts.backend ?? process.env.BAYESNAS_BACKEND ?? '').trim() as BackendName | '';
    if (forced && !BACKENDS.includes(forced)) {
      throw new Error(`BAYESNAS_BACKEND=${forced} is not a backend; use ${BACKENDS.join(', ')}`);
    }
    let result: EngineInfo;
    if (forced === 'webgpu') {
      const probe = await probeAdapter();
      if (typeof probe === 'string') throw new Error(`BAYESNAS_BACKEND=webgpu but the webgpu backend cannot start: ${probe}`);
      await installWebgpuBackend(probe);
      result = webgpuInfo(probe.adapter, 'forced by BAYESNAS_BACKEND=webgpu');
    } else if (forced === 'cpu') {
      result = { backend: 'cpu', package: '@tensorflow/tfjs-backend-cpu', tensorflowVersion: null, gpu: false, degraded: false, reason: 'forced by BAYESNAS_BACKEND=cpu' };
    } else {
      const native = await loadNative();
      const autoWebgpu = forced !== 'tensorflow' && process.env.BAYESNAS_AUTO_WEBGPU !== '0' && !(typeof native !== 'string' && native.gpu) && gpuDeviceNodePresent();
      const probe = autoWebgpu ? await probeAdapter() : null;
      if (probe && typeof probe !== 'string' && !probe.adapter.fallback) {
        await installWebgpuBackend(probe);
        result = webgpuInfo(probe.adapter, 'a GPU adapter was found and no GPU build of TensorFlow is present');
      } else if (typeof native === 'string') {
        if (forced === 'tensorflow') throw new Error(`BAYESNAS_BACKEND=tensorflow but the native engine cannot load: ${native}`);
        result = { backend: 'cpu', package: '@tensorflow/tfjs-backend-cpu', tensorflowVersion: null, gpu: false, degraded: true, reason: native };
      } else {
        result = { backend: 'tensorflow', package: native.pkg, tensorflowVersion: native.version, gpu: native.gpu, degraded: false, reason: null, onednn: process.env.TF_ENABLE_ONEDNN_OPTS === '1' };
      }
    }
    tf.env().set('PROD', true);   // silences tfjs-core's console adverts and notices; we print our own
    if (!(await tf.setBackend(result.backend))) throw new Error(`tf.setBackend('${result.backend}') failed`);
    await tf.ready();
    const flags = parseTfjsFlags(process.env.BAYESNAS_TFJS_FLAGS ?? '');
    for (const [k, v] of Object.entries(flags)) {
      try { tf.env().set(k, v); } catch (e) {
        const hint = k.startsWith('WEBGPU_') && result.backend !== 'webgpu' ? ` (a flag of the webgpu backend; the backend is ${result.backend})` : '';
        throw new Error(`BAYESNAS_TFJS_FLAGS: ${k}: ${(e as Error).message}${hint}`);
      }
    }
    if (Object.keys(flags).length) result.flags = flags;
    installGradientFixes();
    if (result.degraded && !opts.quiet) {
      process.stderr.write(`WARNING: native TensorFlow engine unavailable (${result.reason}).\n`
        + 'WARNING: running on the pure-JS cpu backend, about 100x slower. `npx bayesnas doctor` explains.\n');
    }
    info = result;
    return result;
  })();
  return pending;
}

function webgpuInfo(adapter: AdapterInfo, reason: string): EngineInfo {
  return { backend: 'webgpu', package: '@tensorflow/tfjs-backend-webgpu', tensorflowVersion: null, gpu: !adapter.fallback, degraded: false, reason, adapter };
}

/** One line naming the backend, for logs and run headers. */
export function describeEngine(e: EngineInfo): string {
  if (e.backend === 'tensorflow') return `tensorflow (TensorFlow ${e.tensorflowVersion}, ${e.gpu ? 'GPU' : 'CPU'} build, ${e.package})`;
  if (e.backend === 'webgpu') return `webgpu (${e.adapter ? describeAdapter(e.adapter) : 'unknown adapter'})`;
  return 'cpu (pure JS: SLOW)';
}

export function engineInfo(): EngineInfo {
  if (!info) throw new Error('engine not initialised: await initEngine() first');
  return info;
}
