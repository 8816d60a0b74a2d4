// `bayesnas bench search`: the default search in TypeScript and in PyTorch, phase by phase.
import fs from 'node:fs';
import path from 'node:path';
import { initEngine } from '../engine/index.js';
import { PROJECT_ROOT } from '../bridge/python.js';
import { benchSearch } from '../bench/search.js';
import { intFlag, parse } from './args.js';
import { progress, type Progress } from './progress.js';
import { SEARCH_FLAGS, searchConfigFromFlags } from './search.js';

/** `npm start`'s search (package.json), the default workload of this benchmark. */
export const DEFAULT_SEARCH: Record<string, string> = {
  space: 'bayesnas', dataset: 'fashion-mnist', C: '8', layers: '3', 'train-size': '512', 'switch-size': '1024', 'val-size': '1000', rounds: '1', 'tau-op': '0.75',
};

export const usage = `bayesnas bench search [search options] [--threads N] [--no-pytorch] [--out FILE] [--json]

Runs the BayesNAS search with \`npm start\`'s settings (${Object.entries(DEFAULT_SEARCH).map(([k, v]) => `--${k} ${v}`).join(' ')})
in TypeScript (the real \`bayesnas search\` code) and the same schedule in PyTorch CPU
(python-ref/bayesnas_ref/search.py: same splits, batch size, optimisers, learning-rate schedule,
penalty, Hessian recursion, update and derivation rules), interleaved phase by phase so that both see
the same machine state. Prints the seconds of every phase (warm-up epoch, switch epoch — each with
its validation pass —, Hessian, update, derivation) on both sides and the ratio tfjs/PyTorch.
The two sides start from their own random weights, so their genotypes differ; parity on identical
weights is \`bayesnas parity\`'s job.

Every \`bayesnas search\` option is accepted and overrides the default (see bayesnas search --help).
  --threads N     PyTorch intra-op threads (2)
  --no-pytorch    time the TypeScript search only
  --run-dir DIR   the TypeScript run folder (default runs/bench/search-<date>)
  --out FILE      also write the JSON result to FILE (default <run folder>/bench.json)
  --json          print the result as JSON`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...SEARCH_FLAGS, threads: { type: 'string' }, 'no-pytorch': { type: 'boolean' } });
  if (values.help) { console.log(usage); return 0; }
  const engine = await initEngine();
  const cfg = searchConfigFromFlags({ ...DEFAULT_SEARCH, ...values });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const runDir = path.resolve(String(values['run-dir'] ?? path.join(PROJECT_ROOT, 'runs', 'bench', `search-${stamp}`)));
  const quiet = !!values.json;
  const say = (m: string) => { if (!quiet) process.stderr.write(`${m}\n`); };
  say(`bench search: ${cfg.space.name} (C=${cfg.space.C}, ${cfg.space.layers} cells) on ${cfg.dataset}, backend ${engine.backend}, run folder ${runDir}`);
  let bar: Progress | null = null;
  const r = await benchSearch(cfg, { threads: intFlag(values, 'threads', 2, 1), pytorch: !values['no-pytorch'], runDir }, {
    onEpochStart: (e, phase, steps) => { bar = progress(`tfjs epoch ${e + 1} ${phase.padEnd(6)}`, steps, { quiet, fields: ['loss', 'img_s'] }); },
    onStep: (step, m) => bar?.update(step, { loss: m.loss.toFixed(4), img_s: m.imagesPerSecond.toFixed(0) }),
    onEpochEnd: () => bar?.stop(),
    afterPhase: (phase, s, i) => say(`tfjs ${phase} ${i}: ${s.toFixed(2)} s${values['no-pytorch'] ? '' : '; now the same phase in PyTorch'}`),
  });
  const out = String(values.out ?? path.join(runDir, 'bench.json'));
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(r, null, 2)}\n`);
  if (values.json) { console.log(JSON.stringify(r, null, 2)); return 0; }
  const f = (v: number | null, d = 2) => (v === null ? '-' : v.toFixed(d));
  console.log(`workload: ${r.workload}`);
  console.log(`tfjs ${r.backend}${r.tensorflow ? ` (TF ${r.tensorflow})` : ''} vs PyTorch ${r.torch ?? '-'}\n`);
  console.log('| phase | tfjs s | PyTorch s | ratio |\n|---|---|---|---|');
  for (const p of r.phases) console.log(`| ${p.phase} ${p.phase === 'derive' ? '' : p.index} | ${f(p.tfjsSeconds)} | ${f(p.pytorchSeconds)} | ${f(p.ratio)} |`);
  const t = r.totals.all;
  console.log(`| **total** | ${f(t.tfjsSeconds)} | ${f(t.pytorchSeconds)} | ${f(t.ratio)} |`);
  console.log(`\nvalidation accuracy after the last epoch: tfjs ${f(r.tfjs.valAcc, 3)}, PyTorch ${f(r.pytorch?.valAcc ?? null, 3)}`);
  console.log(`result: ${out}`);
  return 0;
}
