#!/usr/bin/env node
// A parity run against python-ref: for each configuration, `bayesnas parity --hessian [--exact]
// --table` on identical weights and batch (logits, loss, every gradient, the switch-Hessian
// recursion; with --exact the recursion against PyTorch's exact diagonal), a summary table, and the
// Hessian parity notebook on the per-switch tables.
// Writes runs/<date>-parity/ (parity/<config>.arrow, parity/hessian-parity.arrow = the first
// configuration's table, figures/, logs/, summary.md, summary.json).
import fs from 'node:fs';
import path from 'node:path';
import { bayesnas, flags, mdTable, notebooks, runFolder, say, secs, writeSummary } from './repro-common.mjs';

const CONFIGS = {
  'bayesnas': ['--space', 'bayesnas'],
  'bayesnas-input-gate': ['--space', 'bayesnas', '--gate', 'input'],
  'darts': ['--space', 'darts'],
};
const usage = `node scripts/parity-run.mjs [options]     (npm run parity:run -- ...)

TypeScript vs PyTorch (python-ref) on identical weights and one batch of the switch split, per
configuration: logits, loss, gradients of every weight and switch, the switch-Hessian recursion.

  --configs A,B        ${Object.keys(CONFIGS).join(', ')}   [all]
  --run DIR            instead: the weights of a search run (its checkpoint) and its configuration
  --C N --layers N     supernet size   [4, 3]
  --dataset NAME       [fashion-mnist]
  --batch N            [4]
  --exact              also the exact Hessian diagonal by PyTorch autograd (one double backward per
                       switch: minutes per configuration on 2 cores)
  --tolerance X        [1e-4]
  --out DIR            run folder   [runs/<date>-parity]
  --no-notebooks       skip the Hessian parity notebook
  --json               print summary.json instead of the Markdown table`;

const o = flags(usage, {
  configs: { type: 'string' }, run: { type: 'string' }, C: { type: 'string', default: '4' }, layers: { type: 'string', default: '3' },
  dataset: { type: 'string', default: 'fashion-mnist' }, batch: { type: 'string', default: '4' }, exact: { type: 'boolean' },
  tolerance: { type: 'string', default: '1e-4' }, out: { type: 'string' }, 'no-notebooks': { type: 'boolean' }, json: { type: 'boolean' },
});
const names = o.run ? ['run'] : (o.configs ? o.configs.split(',') : Object.keys(CONFIGS));
for (const n of names) if (n !== 'run' && !CONFIGS[n]) { say(`unknown configuration ${n} (known: ${Object.keys(CONFIGS).join(', ')})`); process.exit(2); }

const t0 = performance.now();
const dir = runFolder('parity', o.out);
fs.mkdirSync(path.join(dir, 'parity'), { recursive: true });
say(`parity-run (${names.join(', ')}) -> ${dir}`);
const results = [];
let failedChecks = 0;
try {
  for (const name of names) {
    const table = path.join(dir, 'parity', `${name}.arrow`);
    const base = o.run ? ['--run', path.resolve(o.run)] : [...CONFIGS[name], '--C', o.C, '--layers', o.layers, '--dataset', o.dataset];
    const r = await bayesnas(dir, `parity-${name}`, ['parity', ...base, '--batch', o.batch, '--tolerance', o.tolerance, '--hessian', ...(o.exact ? ['--exact'] : []), '--table', table], { allowFail: true });
    if (!r.json) throw new Error(`bayesnas parity (${name}) printed no result (exit ${r.exitCode}); see logs/parity-${name}.stderr.log`);
    const checks = r.json.checks;
    const get = (q) => checks.find((c) => c.quantity === q);
    const perTensor = checks.filter((c) => c.quantity.startsWith('grad ') && !c.quantity.startsWith('grad ('));
    const worst = perTensor.reduce((a, c) => (c.error > (a?.error ?? -1) ? c : a), null);
    const exact = r.json.recursionVsExact;
    results.push({
      name, seconds: r.seconds, exitCode: r.exitCode, failed: r.json.failed, checks: checks.length, table,
      logits: get('logits')?.error, loss: get('loss')?.error, gradWeights: get('grad (all weights)')?.error, gradSwitches: get('grad (all switches)')?.error,
      worstTensor: worst && { quantity: worst.quantity, error: worst.error }, hessianRecursion: get('switch Hessian (recursion)')?.error,
      vsExact: exact,
    });
    failedChecks += r.json.failed;
  }
  fs.copyFileSync(results[0].table, path.join(dir, 'parity', 'hessian-parity.arrow'));
  const nb = o['no-notebooks'] ? null : await notebooks(dir);
  const e = (x) => (Number.isFinite(x) ? x.toExponential(1) : 'n/a');
  const rows = results.map((r) => [r.name, `${r.checks - r.failed} / ${r.checks}`, e(r.logits), e(r.loss), e(r.gradWeights), e(r.gradSwitches),
    r.worstTensor ? `${e(r.worstTensor.error)} (${r.worstTensor.quantity.replace(/^grad /, '')})` : 'n/a', e(r.hessianRecursion),
    r.vsExact ? Object.entries(r.vsExact).map(([g, v]) => `${g} ${Number(v.spearman).toFixed(2)}`).join('; ') : '–', secs(r.seconds)]);
  const md = `## Parity against python-ref (${o.run ? `run ${o.run}` : `C=${o.C}, ${o.layers} cells, ${o.dataset}`}, batch ${o.batch}, tolerance ${o.tolerance})\n\n`
    + `${mdTable(['configuration', 'checks passed', 'logits', 'loss', 'grad weights', 'grad switches', 'worst tensor', 'Hessian recursion', 'Spearman vs exact', 'time'], rows)}\n\n`
    + 'Errors are relative to the quantity\'s own scale (per tensor: or 1% of the largest gradient), as `bayesnas parity` measures them. '
    + `${o.exact ? 'Spearman: rank correlation of the recursion with the exact diagonal per switch group (an approximation, not an error). ' : 'Run with --exact for the comparison with the exact Hessian. '}`
    + `${nb ? `Figures: ${nb.figures.filter((f) => f.startsWith('hessian')).join(', ') || 'none'} in figures/. ` : ''}Total ${secs((performance.now() - t0) / 1000)}.\n`;
  writeSummary(dir, md, { kind: 'parity-run', dir, options: o, configs: results, failedChecks, notebooks: nb }, { printJson: !!o.json });
  process.exit(failedChecks ? 1 : 0);
} catch (err) {
  say(`parity-run failed: ${err.message}`);
  process.exit(1);
}
