// `bayesnas bench suite`: the engine, supernet and Hessian benchmarks in one run against PyTorch on a
// chosen device, one summary table (Markdown and JSON). It is what scripts/gpu/ runs on a GPU machine
// (webgpu against PyTorch CUDA); on a CPU machine it compares the native engine with PyTorch CPU.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeEngine, initEngine, tf } from '../engine/index.js';
import { benchEngine } from '../bench/engine.js';
import { benchSupernet } from '../bench/supernet.js';
import { benchHessian } from '../bench/hessian.js';
import { profileTable } from '../bench/profile.js';
import { codeVersion } from '../provenance.js';
import { intFlag, parse } from './args.js';
import { torchDevice } from './bench.js';

export const usage = `bayesnas bench suite [options]

Runs, each side by side with PyTorch (python-ref) and each alternating step by step:
  engine     the supernet slice's training step (batch 32 of 32x32x3)
  supernet   the DARTS supernet's training step (8 cells, C=16, batch 64) at 16x16 and at 32x32,
             and one TensorFlow.js step profiled kernel by kernel
  hessian    the switch-Hessian pass (bayesnas space, 8 cells, C=16, batch 32 of 16x16) against
             python-ref's recursion, and against one forward+backward pass
and writes summary.md and summary.json: median milliseconds of each side and the ratios. A workload
that fails is reported in the table and the others still run.

  --torch-device D   PyTorch's device: cpu or cuda   [cpu]
  --steps N          timed steps per workload   [5]
  --threads N        PyTorch CPU threads   [2]
  --quick            tiny shapes (a smoke test of the suite itself)
  --out DIR          where summary.md and summary.json go   [runs/bench-suite-<date>]
  --json             print summary.json instead of the table`;

interface Row { workload: string; tfjsMs: number | null; torchMs: number | null; ratio: number | null; note: string }

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    'torch-device': { type: 'string' }, steps: { type: 'string' }, threads: { type: 'string' }, quick: { type: 'boolean' }, out: { type: 'string' },
  });
  if (values.help) { console.log(usage); return 0; }
  const device = torchDevice(values);
  const engine = await initEngine();
  const steps = intFlag(values, 'steps', 5, 1), threads = intFlag(values, 'threads', 2, 1);
  const q = !!values.quick;
  const out = path.resolve(String(values.out ?? path.join('runs', `bench-suite-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`)));
  fs.mkdirSync(out, { recursive: true });
  const say = (s: string) => { if (!values.json) process.stderr.write(`${s}\n`); };
  const rows: Row[] = [];
  const results: Record<string, unknown> = {};
  const attempt = async (name: string, f: () => Promise<void>) => {
    say(`bench suite: ${name}`);
    try { await f(); } catch (e) {
      const msg = (e as Error).message.split('\n')[0];
      rows.push({ workload: name, tfjsMs: null, torchMs: null, ratio: null, note: `FAILED: ${msg}` });
      results[name] = { error: (e as Error).message };
    }
    write();
  };
  const common = { steps, threads, seed: 0, pytorch: true, torchDevice: device };

  const code = codeVersion();
  const fmt = (v: number | null, d = 1) => (v === null ? '–' : v.toFixed(d));
  /** summary.md and summary.json as far as the suite got (rewritten after every workload) */
  const write = () => {
    const torch = Object.values(results).map((r) => (r as { pytorch?: { torch?: string } })?.pytorch?.torch).find(Boolean) ?? 'not run';
    const head = {
      date: new Date().toISOString(), commit: code.commit, dirty: code.dirty, node: process.version, cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}`,
      tfjs: `${tf.version_core} on ${describeEngine(engine)}`, pytorch: `${torch} on ${device}`, steps, quick: q,
    };
    const profiled = Object.values(results).find((r) => (r as { profile?: unknown })?.profile) as { profile: Parameters<typeof profileTable>[0] } | undefined;
    const md = [
      '# bayesnas bench suite', '',
      ...Object.entries(head).map(([k, v]) => `- ${k}: ${v}`), '',
      `| workload | tfjs ms | PyTorch ms | tfjs / PyTorch | note |`, '|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.workload} | ${fmt(r.tfjsMs)} | ${fmt(r.torchMs)} | ${fmt(r.ratio, 2)} | ${r.note} |`), '',
      'Medians of the timed steps; each side\'s step ends with a read of its loss (tfjs) or a device sync (PyTorch).', '',
      ...(profiled ? ['## One tfjs supernet step, kernel by kernel', '', profileTable(profiled.profile, 20), ''] : []),
    ].join('\n');
    const summary = { ...head, rows, results };
    fs.writeFileSync(path.join(out, 'summary.md'), `${md}\n`);
    fs.writeFileSync(path.join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    return { md, summary };
  };

  await attempt('engine', async () => {
    const r = await benchEngine({ ...common, batch: q ? 8 : 32, size: q ? 16 : 32, warmup: q ? 1 : 3 });
    results.engine = r;
    rows.push({ workload: `slice step, batch ${r.options.batch} of ${r.options.size}²`, tfjsMs: r.tfjs.medianMs, torchMs: r.pytorch?.medianMs ?? null, ratio: r.ratio, note: `${r.tfjs.tensorsPerStep} tensors leaked per step` });
  });
  const supernet = async (size: number) => {
    await attempt(`supernet-${size}`, async () => {
      const r = await benchSupernet({ ...common, space: 'darts', batch: q ? 8 : 64, size, C: q ? 4 : 16, layers: q ? 3 : 8, warmup: q ? 1 : 2, profile: size === (q ? 8 : 16) });
      results[`supernet-${size}`] = r;
      rows.push({ workload: `DARTS supernet step, ${r.options.layers} cells, C=${r.options.C}, batch ${r.options.batch} of ${size}²`, tfjsMs: r.tfjs.medianMs, torchMs: r.pytorch?.medianMs ?? null, ratio: r.ratio,
        note: `${r.tfjs.imagesPerSecond.toFixed(0)} vs ${r.pytorch ? r.pytorch.imagesPerSecond.toFixed(0) : '–'} images/s` });
    });
  };
  await supernet(q ? 8 : 16);
  await attempt('hessian', async () => {
    const r = await benchHessian({ ...common, space: 'bayesnas', batch: q ? 4 : 32, size: q ? 8 : 16, C: q ? 4 : 16, layers: q ? 3 : 8, warmup: 1, hvpSwitches: q ? 2 : 16 });
    results.hessian = r;
    rows.push({ workload: `switch-Hessian pass (recursion), ${r.options.layers} cells, C=${r.options.C}, batch ${r.options.batch} of ${r.options.size}²`, tfjsMs: r.hessianMs.median,
      torchMs: r.pytorch?.recursionMs.median ?? null, ratio: r.pytorch ? r.hessianMs.median / r.pytorch.recursionMs.median : null,
      note: `tfjs Hessian / tfjs forward+backward ${r.ratio.toFixed(2)}` });
  });
  if (!q) await supernet(32);

  const { md, summary } = write();
  if (values.json) console.log(JSON.stringify(summary, null, 2));
  else console.log(`${md}\nwritten: ${path.join(out, 'summary.md')}, summary.json`);
  return rows.some((r) => r.note.startsWith('FAILED')) ? 1 : 0;
}
