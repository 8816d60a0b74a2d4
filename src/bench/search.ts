// Search benchmark: the whole BayesNAS search (warm-up epochs, rounds of switch epoch → Hessian →
// update, derivation) run by the real TypeScript search (src/search/search.ts), and the same
// schedule in PyTorch CPU (python-ref/bayesnas_ref/search.py) on the same data splits and settings,
// interleaved phase by phase: after each TypeScript phase the PyTorch process runs the same phase,
// so both see the same machine state. Reports the wall time of every phase on both sides.
import fs from 'node:fs';
import path from 'node:path';
import { engineInfo } from '../engine/index.js';
import { arrayBatches, loadDataset, splitTrainingSet, type Split } from '../data/index.js';
import { writeTensorFile, type TensorRow } from '../bridge/arrow.js';
import { spaceToPython } from '../bridge/parity.js';
import { runSearch, type SearchConfig, type SearchEvents, type SearchPhase } from '../search/search.js';
import { describeGenotype } from '../genotype/format.js';
import { startPytorchServer } from './engine.js';

export interface PhaseTiming { phase: SearchPhase; index: number; tfjsSeconds: number; pytorchSeconds: number | null; ratio: number | null }

export interface SearchBenchResult {
  workload: string;
  backend: string;
  tensorflow: string | null;
  torch: string | null;
  /** OMP_WAIT_POLICY of the PyTorch process */
  ompWaitPolicy: string | null;
  phases: PhaseTiming[];
  /** per phase kind: sums over the run */
  totals: Record<SearchPhase | 'all', { tfjsSeconds: number; pytorchSeconds: number | null; ratio: number | null }>;
  tfjs: { genotype: string; valAcc: number | null; params: number | null };
  pytorch: { genotype: unknown; valAcc: number | null; params: number | null } | null;
  runDir: string;
  config: SearchConfig;
}

/** The splits exactly as the search's TrainingSession makes them, as normalised float32 NHWC rows. */
function splitRows(cfg: SearchConfig): TensorRow[] {
  const data = loadDataset(cfg.dataset);
  const splits = splitTrainingSet(data.train, { seed: cfg.seed, sizes: cfg.sizes });
  const rows: TensorRow[] = [];
  for (const name of ['train', 'switch', 'val'] as const) {
    const s: Split = splits[name];
    const H = cfg.padTo || s.height, W = cfg.padTo || s.width, C = cfg.channels || s.channels;
    let x = new Float32Array(0), y = new Int32Array(0);
    if (s.n) {
      const b = arrayBatches(s, { batchSize: s.n, padTo: cfg.padTo || undefined, channels: cfg.channels || undefined }).next().value!;
      x = b.x; y = b.y;
    }
    rows.push({ name: `${name}.x`, shape: [s.n, H, W, C], data: x });
    rows.push({ name: `${name}.y`, shape: [s.n], data: Float32Array.from(y) });
  }
  return rows;
}

export interface SearchBenchOptions { threads: number; pytorch: boolean; runDir: string }

export async function benchSearch(cfg: SearchConfig, o: SearchBenchOptions, events: SearchEvents = {}): Promise<SearchBenchResult> {
  if (fs.existsSync(path.join(o.runDir, 'config.json'))) throw new Error(`${o.runDir} already holds a run`);
  const exch = path.join(o.runDir, 'pytorch');
  fs.mkdirSync(exch, { recursive: true });
  const files = { space: path.join(exch, 'space.json'), config: path.join(exch, 'config.json'), data: path.join(exch, 'data.arrow') };
  let py: Awaited<ReturnType<typeof startPytorchServer>> | null = null;
  if (o.pytorch) {
    fs.writeFileSync(files.space, JSON.stringify({ ...JSON.parse(spaceToPython(cfg.space)), gate: cfg.space.gate }));
    fs.writeFileSync(files.config, JSON.stringify(cfg, null, 2));
    writeTensorFile(files.data, splitRows(cfg), { kind: 'search-splits', dataset: cfg.dataset });
    py = await startPytorchServer('bayesnas_ref.search', ['--space', files.space, '--config', files.config, '--data', files.data,
      '--threads', String(o.threads), '--classes', String(loadDataset(cfg.dataset).classes.length)]);
  }
  const phases: PhaseTiming[] = [];
  let pyVal: number | null = null, pyGenotype: unknown = null;
  try {
    const r = await runSearch(cfg, o.runDir, {
      ...events,
      afterPhase: async (phase, seconds, index) => {
        await events.afterPhase?.(phase, seconds, index);
        const p = py ? await py.command<Record<string, unknown> & { seconds: number }>(`phase ${phase} ${index}`) : null;
        if (p && typeof p.val_acc === 'number') pyVal = p.val_acc;
        if (p && p.genotype) pyGenotype = p.genotype;
        phases.push({ phase, index, tfjsSeconds: seconds, pytorchSeconds: p ? p.seconds : null, ratio: p ? seconds / p.seconds : null });
      },
    });
    const kinds: Array<SearchPhase | 'all'> = ['warmup', 'switch', 'hessian', 'update', 'derive', 'all'];
    const totals = Object.fromEntries(kinds.map((k) => {
      const sel = phases.filter((p) => k === 'all' || p.phase === k);
      const t = sel.reduce((a, p) => a + p.tfjsSeconds, 0);
      const pt = py ? sel.reduce((a, p) => a + (p.pytorchSeconds ?? 0), 0) : null;
      return [k, { tfjsSeconds: t, pytorchSeconds: pt, ratio: pt ? t / pt : null }];
    })) as SearchBenchResult['totals'];
    const last = r.rounds.at(-1)?.epoch ?? r.warmup.at(-1);
    const cfgFile = JSON.parse(fs.readFileSync(path.join(o.runDir, 'config.json'), 'utf8')) as { params?: number };
    return {
      workload: `BayesNAS search: ${cfg.space.name} space (C=${cfg.space.C}, ${cfg.space.layers} cells) on ${cfg.dataset}, ${cfg.warmupEpochs} warm-up epoch(s), ${cfg.rounds} round(s), batch ${cfg.batch}, Hessian ${cfg.hessian.batches}x${cfg.hessian.batch}`,
      backend: engineInfo().backend, tensorflow: engineInfo().tensorflowVersion, torch: py ? String(py.info.torch) : null,
      ompWaitPolicy: py ? String(py.info.ompWaitPolicy) : null,
      phases, totals,
      tfjs: { genotype: describeGenotype(r.genotype), valAcc: last?.valAcc ?? null, params: cfgFile.params ?? null },
      pytorch: py ? { genotype: pyGenotype, valAcc: pyVal, params: Number(py.info.params) } : null,
      runDir: o.runDir, config: cfg,
    };
  } finally {
    await py?.close();
  }
}
