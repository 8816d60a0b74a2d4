#!/usr/bin/env node
// Comparative runs under one protocol: BayesNAS, DARTS (first order) and SNAS searched on the same
// supernet, space, data and budget with N seeds; every derived cell, plus the published DARTS_V2 and
// SNAS cells (read from python-ref's genotypes through the Python bridge), retrained under one
// evaluation protocol. One table (Markdown + Arrow, one row per run) and a plot.
// Writes runs/<date>-compare-<setting>-<dataset>/ (search/, train/, logs/, runs.arrow, compare.png,
// summary.md, summary.json). A finished step is not rerun when the same --out is given again.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { bayesnas, countOps, flags, mdTable, ROOT, say, secs, VENV_PYTHON, writeSummary } from './repro-common.mjs';

const SETTINGS = {
  // search: space, C, cells, warm-up/search/val images, batch, search epochs; retrain: cells, channels, epochs, train/test images
  tiny: { space: 'darts', C: 2, layers: 3, train: 64, switch: 64, val: 32, batch: 16, epochs: 1, hb: 1, rLayers: 3, rChannels: 4, rEpochs: 1, rTrain: 256, rTest: 256, seeds: 1 },
  quick: { space: 'darts', C: 4, layers: 3, train: 256, switch: 512, val: 256, batch: 32, epochs: 2, hb: 2, rLayers: 5, rChannels: 8, rEpochs: 2, rTrain: 2000, rTest: 1000, seeds: 3 },
  // the CIFAR-10 protocol (DARTS §3 / BayesNAS §5): 8-cell C=16 supernet on half/half of the 50k
  // training images (5k of the second half held out for validation), 50 search epochs; 20-cell 36-channel evaluation network, 600 epochs, cutout,
  // drop-path 0.2, auxiliary 0.4; needs the CIFAR-10 files and a GPU-class budget
  full: { space: 'darts', C: 16, layers: 8, train: 25000, switch: 20000, val: 5000, batch: 64, epochs: 50, hb: 10, rLayers: 20, rChannels: 36, rEpochs: 600, rTrain: 50000, rTest: 10000, seeds: 4, full: true },
};
const STRATEGIES = ['bayesnas', 'darts', 'snas'];
const PUBLISHED = ['DARTS_V2', 'SNAS_MILD'];
const PARAM_FREE = new Set(['skip_connect', 'max_pool_3x3', 'avg_pool_3x3', 'none']);

const usage = `node scripts/compare.mjs [--setting tiny|quick|full] [options]     (npm run compare -- ...)

Searches each strategy with N seeds on the same supernet and data, retrains every derived cell and
the published ${PUBLISHED.join(', ')} (through the Python bridge) under one protocol, and writes one table:
search wall time, architecture-step cost (BayesNAS: Hessian + update; DARTS: α steps; SNAS: none,
α trains in the weight step), parameters, test accuracy mean ± std over seeds, and the collapse
guard (skip_connect and parameter-free ops per derived cell).

Settings:
${Object.entries(SETTINGS).map(([k, s]) => `  ${k.padEnd(6)} search ${s.space} space C=${s.C}, ${s.layers} cells, ${s.train}/${s.switch}/${s.val} images, ${s.epochs} search epoch(s); retrain ${s.rLayers} cells x ${s.rChannels} ch, ${s.rEpochs} epochs on ${s.rTrain} images, test ${s.rTest}; ${s.seeds} seed(s)`).join('\n')}
  (full is the CIFAR-10 protocol; it needs the CIFAR-10 files (--dataset cifar10) and far more than a 2-core machine)

  --dataset NAME         fashion-mnist | mnist | cifar10   [fashion-mnist; full: cifar10]
  --seeds N              seeds per strategy (and per published cell)   [setting's]
  --strategies LIST      comma-separated subset of ${STRATEGIES.join(',')}   [all]
  --published LIST       published cells to retrain, comma-separated (python-ref genotypes)   [${PUBLISHED.join(',')}]
  --lambda X             BayesNAS λ   [0.01]
  --bayesnas-derive darts|bayesnas   BayesNAS's cells by DARTS's top-2 rule on γ (the same 8-op budget
                         as the baselines and the published cells), or by its own thresholds   [darts]
  --tau-op X             BayesNAS threshold on γ (relative) with --bayesnas-derive bayesnas   [0.75]
  --arch-lr X            Adam learning rate on α for DARTS and SNAS   [quick/tiny: 0.003 (ten times the published 3e-4,
                         for a budget of tens of α steps instead of thousands); full: 3e-4]
  --out DIR              run folder (an unfinished one is continued)   [runs/<date>-compare-<setting>-<dataset>]
  --no-plot              skip compare.png
  --json                 print summary.json instead of the Markdown table`;

const o = flags(usage, {
  setting: { type: 'string', default: 'quick' }, dataset: { type: 'string' }, seeds: { type: 'string' }, strategies: { type: 'string' },
  published: { type: 'string' }, 'bayesnas-derive': { type: 'string', default: 'darts' }, lambda: { type: 'string', default: '0.01' }, 'tau-op': { type: 'string', default: '0.75' },
  'arch-lr': { type: 'string' }, out: { type: 'string' }, 'no-plot': { type: 'boolean' }, json: { type: 'boolean' },
});
const S = SETTINGS[o.setting];
if (!S) { say(`--setting must be one of ${Object.keys(SETTINGS).join(', ')}\n\n${usage}`); process.exit(2); }
const dataset = o.dataset ?? (S.full ? 'cifar10' : 'fashion-mnist');
const seeds = Number(o.seeds ?? S.seeds);
if (!Number.isInteger(seeds) || seeds < 1) { say(`--seeds must be a positive integer (got '${o.seeds}')`); process.exit(2); }
const strategies = (o.strategies ?? STRATEGIES.join(',')).split(',').filter(Boolean);
for (const s of strategies) if (!STRATEGIES.includes(s)) { say(`--strategies: unknown strategy '${s}' (${STRATEGIES.join(', ')})`); process.exit(2); }
const published = (o.published ?? PUBLISHED.join(',')).split(',').filter(Boolean);
if (!['darts', 'bayesnas'].includes(o['bayesnas-derive'])) { say(`--bayesnas-derive must be darts or bayesnas (got '${o['bayesnas-derive']}')`); process.exit(2); }
const archLr = o['arch-lr'] ?? (S.full ? '3e-4' : '0.003');

const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
const dir = path.resolve(o.out ?? path.join(ROOT, 'runs', `${stamp}-compare-${o.setting}-${dataset}`));
fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
const t0 = performance.now();
say(`compare (${o.setting}, ${dataset}, ${seeds} seed(s); strategies ${strategies.join(', ')}; published ${published.join(', ') || 'none'}) -> ${dir}`);

/**
 * A step's JSON result, reused when a previous invocation with this --out finished it. A run folder
 * that an interrupted invocation left with a checkpoint is continued with `--resume` (its wall time
 * then adds the earlier invocation's time up to that checkpoint); one without a checkpoint starts again.
 */
async function step(name, argv) {
  const done = path.join(dir, 'logs', `${name}.done.json`);
  if (fs.existsSync(done)) { say(`[${name}] done before, reused`); return JSON.parse(fs.readFileSync(done, 'utf8')); }
  const runDir = argv[argv.indexOf('--run-dir') + 1];
  const state = path.join(runDir, 'checkpoint', 'state.json'), config = path.join(runDir, 'config.json');
  let r;
  if (fs.existsSync(state) && fs.existsSync(config)) {
    const earlier = (Date.parse(JSON.parse(fs.readFileSync(state, 'utf8')).savedAt) - Date.parse(JSON.parse(fs.readFileSync(config, 'utf8')).createdAt)) / 1000;
    say(`[${name}] continuing the interrupted run in ${runDir}`);
    r = await bayesnas(dir, name, [argv[0], '--resume', runDir]);
    r = { ...r, seconds: r.seconds + (Number.isFinite(earlier) ? earlier : 0), resumed: true };
  } else {
    fs.rmSync(runDir, { recursive: true, force: true });
    r = await bayesnas(dir, name, argv);
  }
  fs.writeFileSync(done, JSON.stringify(r));
  return r;
}

const paramFree = (cell) => cell.nodes.flat().filter((e) => PARAM_FREE.has(e.op)).length;
const skips = (cell) => cell.nodes.flat().filter((e) => e.op === 'skip_connect').length;
/** Op counts of a genotype's cells: all ops, skip_connect, parameter-free (the collapse guard). */
function cellStats(g) {
  const [opsNormal, opsReduce] = countOps(g);
  return { opsNormal, opsReduce, skipNormal: skips(g.normal), skipReduce: skips(g.reduce), paramFreeNormal: paramFree(g.normal), paramFreeReduce: paramFree(g.reduce) };
}

function retrainArgs(seed, runDir) {
  return ['--dataset', dataset, '--layers', String(S.rLayers), '--channels', String(S.rChannels), '--epochs', String(S.rEpochs),
    '--train-size', String(S.rTrain), '--test-size', String(S.rTest), '--batch', S.full ? '96' : '64', '--seed', String(seed),
    ...(S.full ? ['--auxiliary', '--cutout', '16', '--drop-path', '0.2'] : []), '--run-dir', runDir];
}

try {
  const rows = [];
  for (const strategy of strategies) {
    for (let seed = 0; seed < seeds; seed++) {
      const tag = `${strategy}-seed${seed}`;
      const searchDir = path.join(dir, 'search', tag);
      const search = await step(`search-${tag}`, ['search', '--strategy', strategy, '--space', S.space, '--dataset', dataset, '--C', String(S.C), '--layers', String(S.layers),
        '--train-size', String(S.train), '--switch-size', String(S.switch), '--val-size', String(S.val), '--batch', String(S.batch), '--rounds', String(S.epochs),
        '--seed', String(seed), '--run-dir', searchDir,
        ...(strategy === 'bayesnas' ? ['--lambda', o.lambda, '--hessian-batches', String(S.hb), '--hessian-batch', String(S.batch), '--derive', o['bayesnas-derive'], '--tau-op', o['tau-op']] : ['--arch-lr', archLr])]);
      const genotypeFile = path.join(searchDir, 'genotype.json');
      const train = await step(`train-${tag}`, ['train', '--genotype', genotypeFile, ...retrainArgs(seed, path.join(dir, 'train', tag))]);
      const sj = search.json, g = sj.genotype, tj = train.json;
      rows.push({
        method: strategy, source: 'searched', seed, searchSeconds: search.seconds, archSeconds: sj.rounds.reduce((a, r) => a + r.archSeconds, 0),
        searchEpochSeconds: sj.rounds.reduce((a, r) => a + r.epoch.seconds, 0), supernetValAcc: sj.rounds.at(-1)?.epoch.valAcc ?? NaN,
        params: tj.params, testAcc: tj.testAcc, trainSeconds: train.seconds,
        ...cellStats(g), genotype: fs.readFileSync(path.join(searchDir, 'genotype.txt'), 'utf8').trim(),
      });
    }
  }
  for (const name of published) {
    for (let seed = 0; seed < seeds; seed++) {
      const tag = `${name}-seed${seed}`;
      const train = await step(`train-${tag}`, ['train', '--from-python', `bayesnas_ref.genotypes:${name}`, ...retrainArgs(seed, path.join(dir, 'train', tag))]);
      const tj = train.json;
      const g = JSON.parse(fs.readFileSync(path.join(dir, 'train', tag, 'config.json'), 'utf8')).config.genotype;
      rows.push({
        method: name, source: 'published', seed, searchSeconds: NaN, archSeconds: NaN, searchEpochSeconds: NaN, supernetValAcc: NaN,
        params: tj.params, testAcc: tj.testAcc, trainSeconds: train.seconds,
        ...cellStats(g), genotype: '',
      });
    }
  }

  // one row per run (Arrow), one line per method (Markdown)
  const col = (k) => rows.map((r) => r[k]);
  const table = tableFromArrays({
    method: col('method'), source: col('source'), seed: Int32Array.from(col('seed')),
    ...Object.fromEntries(['searchSeconds', 'archSeconds', 'searchEpochSeconds', 'supernetValAcc', 'testAcc', 'trainSeconds'].map((k) => [k, Float64Array.from(col(k))])),
    ...Object.fromEntries(['params', 'opsNormal', 'opsReduce', 'skipNormal', 'skipReduce', 'paramFreeNormal', 'paramFreeReduce'].map((k) => [k, Int32Array.from(col(k))])),
    genotype: col('genotype'),
  });
  for (const [k, v] of Object.entries({ kind: 'compare', setting: o.setting, dataset, seeds: String(seeds), settings: JSON.stringify(S), arch_lr: archLr, lambda: o.lambda })) table.schema.metadata.set(k, v);
  const arrowFile = path.join(dir, 'runs.arrow');
  fs.writeFileSync(arrowFile, tableToIPC(table, 'file'));

  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = (xs) => (xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1)) : NaN);
  const pm = (xs, f) => (xs.every(Number.isFinite) ? `${f(mean(xs))}${xs.length > 1 ? ` ± ${f(std(xs))}` : ''}` : '—');
  const methods = [...new Set(rows.map((r) => r.method))];
  const agg = methods.map((m) => {
    const rs = rows.filter((r) => r.method === m);
    const searched = rs[0].source === 'searched';
    const archShare = searched ? mean(rs.map((r) => r.archSeconds / Math.max(r.searchEpochSeconds, 1e-9))) : NaN;
    return {
      method: m, source: rs[0].source, seeds: rs.map((r) => r.seed), n: rs.length,
      searchSeconds: searched ? mean(rs.map((r) => r.searchSeconds)) : null, archSeconds: searched ? mean(rs.map((r) => r.archSeconds)) : null, archShare: searched ? archShare : null,
      params: mean(rs.map((r) => r.params)), testAccMean: mean(rs.map((r) => r.testAcc)), testAccStd: std(rs.map((r) => r.testAcc)),
      skip: [mean(rs.map((r) => r.skipNormal)), mean(rs.map((r) => r.skipReduce))], paramFree: [mean(rs.map((r) => r.paramFreeNormal)), mean(rs.map((r) => r.paramFreeReduce))],
      ops: [mean(rs.map((r) => r.opsNormal)), mean(rs.map((r) => r.opsReduce))],
    };
  });
  const f1 = (x) => (Number.isInteger(x) ? String(x) : x.toFixed(1));
  const mdRows = agg.map((a) => {
    const rs = rows.filter((r) => r.method === a.method);
    return [
      a.source === 'searched' ? `**${a.method}** (searched)` : `${a.method} (published)`,
      a.source === 'searched' ? pm(rs.map((r) => r.searchSeconds), (x) => `${x.toFixed(0)} s`) : '—',
      a.source === 'searched' ? (a.method === 'snas' ? 'in the weight step' : `${a.archSeconds.toFixed(1)} s (${(100 * a.archShare).toFixed(0)} % of the search epochs)`) : '—',
      pm(rs.map((r) => r.params), (x) => Math.round(x).toLocaleString('en')),
      pm(rs.map((r) => 100 * r.testAcc), (x) => `${x.toFixed(2)} %`),
      a.seeds.join(', '),
      `${f1(a.skip[0])} / ${f1(a.skip[1])}`, `${f1(a.paramFree[0])} / ${f1(a.paramFree[1])} of ${f1(a.ops[0])} / ${f1(a.ops[1])}`,
    ];
  });
  let plot = null;
  if (!o['no-plot'] && fs.existsSync(VENV_PYTHON)) {
    const r = await execa(VENV_PYTHON, ['-m', 'bayesnas_ref.compare_plot', arrowFile, path.join(dir, 'compare.png')], { cwd: ROOT, reject: false, env: { MPLBACKEND: 'Agg' } });
    if (r.exitCode === 0) plot = path.join(dir, 'compare.png');
    else say(`[plot] failed (exit ${r.exitCode}): ${String(r.stderr).trim().split('\n').slice(-3).join(' | ')}`);
  }
  const total = (performance.now() - t0) / 1000;
  const setting = `${S.space} space, supernet C=${S.C} with ${S.layers} cells; ${dataset} ${S.train} warm-up / ${S.switch} search / ${S.val} validation images, batch ${S.batch}, 1 warm-up + ${S.epochs} search epoch(s); `
    + `BayesNAS λ=${o.lambda}, ${o['bayesnas-derive'] === 'darts' ? 'cells by the top-2 rule on γ' : `cells by γ thresholds (τ_op=${o['tau-op']})`}; DARTS/SNAS Adam lr ${archLr} on α. Retraining: ${S.rLayers} cells × ${S.rChannels} channels, ${S.rEpochs} epochs on ${S.rTrain} images, test on ${S.rTest}`;
  const md = `## Comparative runs (${o.setting}) on ${dataset}\n\n${setting}.\n\n`
    + `${mdTable(['method', 'search wall time', 'architecture-step cost', 'params', 'test accuracy', 'seeds', 'skip_connect (normal / reduce)', 'parameter-free ops (normal / reduce)'], mdRows)}\n\n`
    + `Mean ± sample std over seeds. Per-run rows: \`runs.arrow\`${plot ? '; plot: `compare.png`' : ''}. Total ${secs(total)}.\n`;
  writeSummary(dir, md, { kind: 'compare', setting: o.setting, settings: S, dataset, seeds, archLr, lambda: o.lambda, bayesnasDerive: o['bayesnas-derive'], tauOp: o['tau-op'], dir, seconds: total, methods: agg, runs: rows, plot, arrow: arrowFile }, { printJson: !!o.json });
} catch (e) {
  say(`compare failed: ${e.message}\n(finished steps are kept in ${dir}/logs; run again with --out ${dir} to continue)`);
  process.exit(1);
}
