// Environment that only takes effect when a process starts (the dynamic loader reads LD_LIBRARY_PATH
// once), so `bin/bayesnas.js` and tests that start a child set it before the engine loads.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gpuDeviceNodePresent } from './webgpu.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const join = (...parts: Array<string | undefined>) => parts.filter(Boolean).join(path.delimiter);

/** The software Vulkan driver that `npm run setup -- --only=vulkan` unpacks, if it is there. */
export function softwareVulkan(): { icd: string; libraryPath: string } | null {
  const dir = path.join(ROOT, 'vendor', 'vulkan-sw');
  const icd = path.join(dir, 'lvp_icd.json');
  if (!fs.existsSync(icd)) return null;
  return { icd, libraryPath: fs.readFileSync(path.join(dir, 'ld-library-path'), 'utf8').trim() };
}

/**
 * Variables to add before the engine loads, or null when none are needed:
 *  - the GPU build of tfjs-node: TensorFlow's and CUDA's library folders (vendor/gpu-ld-library-path);
 *  - BAYESNAS_BACKEND=webgpu where no Vulkan driver is named and no GPU device node exists: the
 *    software driver of vendor/vulkan-sw, when it was set up.
 */
export function launchEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> | null {
  if (env.BAYESNAS_LD_SET) return null;
  const add: string[] = [];
  const out: Record<string, string> = {};
  const gpuLd = path.join(ROOT, 'vendor', 'gpu-ld-library-path');
  if (fs.existsSync(gpuLd)) add.push(fs.readFileSync(gpuLd, 'utf8').trim());
  const sw = softwareVulkan();
  if (env.BAYESNAS_BACKEND === 'webgpu' && sw && !env.VK_DRIVER_FILES && !env.VK_ICD_FILENAMES && !gpuDeviceNodePresent()) {
    add.push(sw.libraryPath);
    out.VK_DRIVER_FILES = sw.icd;
  }
  if (!add.length) return null;
  return { ...out, BAYESNAS_LD_SET: '1', LD_LIBRARY_PATH: join(...add, env.LD_LIBRARY_PATH) };
}
