import test from 'ava';
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchEnv, softwareVulkan } from '../src/engine/launch.js';
import { gpuDeviceNodePresent } from '../src/engine/webgpu.js';

// The webgpu backend needs a WebGPU adapter: a GPU with a Vulkan driver, or the software driver that
// `npm run setup -- --only=vulkan` unpacks into vendor/vulkan-sw. Where either is present the tests
// below must pass; elsewhere they report that there is no adapter. Each runs in a child process,
// because the loader reads the library paths only when a process starts.
const base = { ...process.env, BAYESNAS_BACKEND: 'webgpu' };
const env = { ...base, ...launchEnv(base) };
const expectAdapter = !!softwareVulkan() || gpuDeviceNodePresent();
const noAdapter = /webgpu backend cannot start/;

test('BAYESNAS_BACKEND=webgpu without an adapter is a clear error', async (t) => {
  const r = await execa('node', ['--import=tsx', 'test/helpers/print-backend.ts'], {
    env: { ...process.env, BAYESNAS_BACKEND: 'webgpu', BAYESNAS_LD_SET: '1', VK_DRIVER_FILES: path.join(os.tmpdir(), 'no-such-icd.json'), VK_ICD_FILENAMES: '' },
    extendEnv: false, reject: false,
  });
  t.not(r.exitCode, 0);
  t.regex(r.stderr, /BAYESNAS_BACKEND=webgpu but the webgpu backend cannot start: Dawn found no WebGPU adapter/);
});

test('webgpu: loss, gradients and Hessians of the supernets, an evaluation network and LeNet-5 equal the cpu backend\'s; training keeps the tensor count', async (t) => {
  const r = await execa('node', ['--import=tsx', 'test/helpers/webgpu-parity.ts'], { env, reject: false, timeout: 600_000 });
  if (r.exitCode !== 0 && noAdapter.test(r.stderr) && !expectAdapter) return t.pass('no WebGPU adapter on this machine');
  t.is(r.exitCode, 0, r.stderr.split('\n').filter((l) => !/artificially reduced/.test(l)).slice(-15).join('\n'));
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  t.log(out.engine);
  for (const x of out.results) {
    t.true(Math.abs(x.lossCpu - x.lossWebgpu) / Math.abs(x.lossCpu) < 1e-5, `${x.space}: loss ${x.lossCpu} vs ${x.lossWebgpu}`);
    t.true(x.gradErr < 1e-4, `${x.space}: gradients differ by ${x.gradErr} of their scale`);
    t.true(x.hessianErr < 1e-4, `${x.space}: switch Hessians differ by ${x.hessianErr} of their scale`);
    t.is(new Set(x.counts).size, 1, `${x.space}: tensor counts over three steps ${x.counts}`);
  }
  t.deepEqual(out.results.map((x: { space: string }) => x.space), ['darts/output', 'bayesnas/input', 'darts/output, switches from softmax(α)', 'weighted sum (y, dz, dw; 2,048, 32,768 and 327,680 elements)', 'conv and depthwise filter gradients', 'strided, padded and dilated convolutions and pools (y, dx, dw)', 'SGD (weights and momentum buffers; clipping, weight decay, a missing gradient, a restored state)', 'batch norm (y, mean, variance, running statistics, dx, dg, db; in training with running statistics, also followed by a ReLU: y, dx, dg, db, affine=false y, running statistics, dx)', 'evalnet DARTS_V2 + auxiliary head', 'compress LeNet-5']);
});

test('webgpu: `bayesnas search` runs end to end on real Fashion-MNIST (warm-up, switch epoch, Hessian, update, derivation)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bnas-webgpu-'));
  const r = await execa('node', ['bin/bayesnas.js', 'search', '--space', 'darts', '--C', '4', '--layers', '3', '--train-size', '32', '--switch-size', '32',
    '--val-size', '16', '--batch', '16', '--rounds', '1', '--hessian-batches', '1', '--hessian-batch', '8', '--run-dir', path.join(dir, 'run'), '--json'],
  { env: base, reject: false, timeout: 600_000 });
  if (r.exitCode !== 0 && noAdapter.test(r.stderr) && !expectAdapter) { fs.rmSync(dir, { recursive: true }); return t.pass('no WebGPU adapter on this machine'); }
  t.is(r.exitCode, 0, r.stderr.split('\n').filter((l) => !/artificially reduced/.test(l)).slice(-15).join('\n'));
  const res = JSON.parse(r.stdout);
  t.true(res.genotype.normal.nodes.length > 0);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'run', 'config.json'), 'utf8'));
  t.is(cfg.engine.backend, 'webgpu');
  const epochs = fs.readFileSync(path.join(dir, 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.type === 'epoch');
  t.is(epochs.length, 2);
  t.true(epochs.every((m) => Number.isFinite(m.trainLoss) && Number.isFinite(m.valLoss)));
  fs.rmSync(dir, { recursive: true });
});

test('webgpu: the batch-norm and mixed-edge programs cut a supernet step\'s GPU program launches (bench supernet --profile)', async (t) => {
  const launches = async (switches: Record<string, string>) => {
    const r = await execa('node', ['bin/bayesnas.js', 'bench', 'supernet', '--no-pytorch', '--steps', '1', '--warmup', '0', '--layers', '3', '--C', '4',
      '--batch', '8', '--size', '8', '--profile', '--json'], { env: { ...base, ...switches }, reject: false, timeout: 600_000 });
    return r;
  };
  const a = await launches({});
  if (a.exitCode !== 0 && noAdapter.test(a.stderr) && !expectAdapter) return t.pass('no WebGPU adapter on this machine');
  t.is(a.exitCode, 0, a.stderr.slice(-2000));
  const b = await launches({ BAYESNAS_WEBGPU_FUSED_EDGES: '0' });
  const c = await launches({ BAYESNAS_WEBGPU_FUSED_EDGES: '0', BAYESNAS_WEBGPU_FUSED_BN: '0' });
  t.is(b.exitCode, 0, b.stderr.slice(-2000));
  t.is(c.exitCode, 0, c.stderr.slice(-2000));
  const [fused, bnOnly, composed] = [a, b, c].map((r) => JSON.parse(r.stdout).profile.launches as number);
  t.log(`GPU program launches per step: ${composed} composed, ${bnOnly} with the batch-norm programs, ${fused} with the mixed-edge programs too`);
  t.true(bnOnly > 1000 && bnOnly < 0.5 * composed, `${bnOnly} vs ${composed}`);
  t.true(fused < 0.9 * bnOnly, `${fused} vs ${bnOnly}`);
  const kernels = (r: typeof a) => JSON.parse(r.stdout).profile.kernels.map((k: { kernel: string }) => k.kernel) as string[];
  t.true(kernels(a).includes('BnasBatchNormTrainAffine') && kernels(a).some((k) => k.startsWith('BnasWeightedSum')));
  t.false(kernels(b).some((k) => k.startsWith('BnasWeightedSum')));
});
