// `bayesnas doctor`: what this installation has (engine, Python reference, datasets) and what is
// missing, with the fix for each.
import os from 'node:os';
import { describeEngine, initEngine, tf } from '../engine/index.js';
import { softwareVulkan } from '../engine/launch.js';
import { findDatasets } from '../data/index.js';
import { probePython } from '../bridge/python.js';
import { parse } from './args.js';

export const summary = 'report backend, TensorFlow, Python reference and datasets, with fixes for what is missing';
export const usage = `bayesnas doctor [--json]

Checks the installation: which TensorFlow.js backend is used (tensorflow = native TensorFlow, webgpu
= TensorFlow.js on a GPU through Dawn/Vulkan, cpu = pure JS, about 100x slower), the TensorFlow
version or the WebGPU adapter, the PyTorch reference's interpreter and its
torch / pyarrow / numpy versions, and which datasets were found where. Exit status 0 when the native
engine, the Python reference and the datasets are all present, 1 otherwise.`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, {});
  if (values.help) { console.log(usage); return 0; }
  const engine = await initEngine({ quiet: true });
  const python = await probePython();
  const datasets = findDatasets().map((d) => ({ name: d.name, found: d.found, dir: d.dir, origin: d.origin, train: d.trainCount, test: d.testCount, problems: d.problems, fix: d.fix }));
  const missing: string[] = [];
  if (engine.backend === 'cpu') missing.push(`native TensorFlow engine: ${engine.reason ?? 'not selected'}; fix: npm run setup -- --only=engine --force`);
  if (!python.ok) missing.push(`Python reference: ${python.error}`);
  for (const d of datasets) {
    if (!d.found && d.name !== 'cifar10') missing.push(`${d.name}: not found; fix: ${d.fix ?? 'npm run setup -- --only=data'}`);
  }
  const report = {
    node: process.version, platform: `${os.platform()}-${os.arch()}`, cpus: os.cpus().length,
    backend: engine.backend, package: engine.package, tensorflow: engine.tensorflowVersion, gpu: engine.gpu, adapter: engine.adapter ?? null, tfjs: tf.version_core,
    softwareVulkan: softwareVulkan()?.icd ?? null,
    python, datasets, missing, ok: missing.length === 0,
  };
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    const line = (k: string, v: string) => console.log(`${k.padEnd(18)} ${v}`);
    line('node', `${report.node} on ${report.platform}, ${report.cpus} cores`);
    line('backend', describeEngine(engine));
    line('tfjs-core', tf.version_core);
    line('python reference', python.ok ? `${python.interpreter} (Python ${python.python}, torch ${python.torch}, pyarrow ${python.pyarrow}, numpy ${python.numpy}${python.cuda ? ', CUDA' : ''})` : `MISSING: ${python.error}`);
    for (const d of datasets) {
      line(`dataset ${d.name}`, d.found ? `${d.dir} (${d.origin}; ${d.train ?? '?'} train / ${d.test ?? '?'} test)${d.problems.length ? ` PROBLEMS: ${d.problems.join('; ')}` : ''}` : `not found${d.name === 'cifar10' ? ' (optional: put the official cifar-10-batches-bin/ in data/)' : ''}`);
    }
    console.log(missing.length ? `\nMissing:\n${missing.map((m) => `  - ${m}`).join('\n')}` : '\nAll components present.');
  }
  return missing.length ? 1 : 0;
}
