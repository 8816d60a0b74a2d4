// Shared helpers of the reproducibility scripts (pipeline-quick.mjs, protocol-cifar10.mjs,
// parity-run.mjs): the `bayesnas` CLI through execa with --json, run folders under runs/, logs,
// Markdown/JSON summaries, and the headless notebooks of python-ref.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = path.join(ROOT, 'bin', 'bayesnas.js');
export const VENV_PYTHON = process.env.BAYESNAS_REF_PYTHON || path.join(ROOT, 'python-ref', '.venv', 'bin', 'python');

export const say = (msg) => process.stderr.write(`${msg}\n`);
const stamp = () => new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);

/** Parses flags (node:util parseArgs) and prints `usage` for --help. */
export function flags(usage, options) {
  let parsed;
  try {
    parsed = parseArgs({ options: { help: { type: 'boolean', short: 'h' }, ...options }, allowPositionals: false });
  } catch (e) {
    say(`${e.message}\n\n${usage}`);
    process.exit(2);
  }
  if (parsed.values.help) { console.log(usage); process.exit(0); }
  return parsed.values;
}

/** A fresh run folder: --out, or runs/<date>-<name>. Refuses a folder that already holds a summary. */
export function runFolder(name, out) {
  const dir = path.resolve(out ?? path.join(ROOT, 'runs', `${stamp()}-${name}`));
  if (fs.existsSync(path.join(dir, 'summary.json'))) throw new Error(`${dir} already holds a summary; give another --out`);
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  return dir;
}

/** Runs `bayesnas <argv> --json`; the JSON result (stdout) is kept in logs/<step>.json and stderr in
 * logs/<step>.stderr.log. Returns { json, seconds, exitCode }; throws on a failure unless allowFail. */
export async function bayesnas(dir, step, argv, { allowFail = false, env = {} } = {}) {
  const t0 = performance.now();
  say(`[${step}] bayesnas ${argv.join(' ')}`);
  const r = await execa(process.execPath, [BIN, ...argv, '--json'], {
    cwd: ROOT, reject: false, env: { TF_CPP_MIN_LOG_LEVEL: '2', ...env },
    stdout: 'pipe', stderr: ['pipe'], maxBuffer: 512 * 1024 * 1024,
  });
  const seconds = (performance.now() - t0) / 1000;
  fs.writeFileSync(path.join(dir, 'logs', `${step}.stderr.log`), r.stderr ?? '');
  fs.writeFileSync(path.join(dir, 'logs', `${step}.json`), r.stdout ?? '');
  let json = null;
  try { json = JSON.parse(r.stdout); } catch { /* reported below */ }
  if ((r.exitCode !== 0 || !json) && !allowFail) {
    const tail = String(r.stderr ?? '').trim().split('\n').slice(-8).join('\n');
    throw new Error(`bayesnas ${argv[0]} failed (exit ${r.exitCode}) after ${seconds.toFixed(0)} s; log ${path.join(dir, 'logs', `${step}.stderr.log`)}\n${tail}`);
  }
  say(`[${step}] done in ${seconds.toFixed(1)} s`);
  return { json, seconds, exitCode: r.exitCode };
}

/** Executes the analysis notebooks on `dir` (python -m bayesnas_ref.notebooks); null when the
 * reference environment is missing. */
export async function notebooks(dir) {
  if (!fs.existsSync(VENV_PYTHON)) { say(`[notebooks] skipped: no ${VENV_PYTHON} (npm run setup)`); return null; }
  const t0 = performance.now();
  say(`[notebooks] python -m bayesnas_ref.notebooks ${dir}`);
  const r = await execa(VENV_PYTHON, ['-m', 'bayesnas_ref.notebooks', dir, '--json'], { cwd: ROOT, reject: false, env: { MPLBACKEND: 'Agg' } });
  fs.writeFileSync(path.join(dir, 'logs', 'notebooks.stderr.log'), r.stderr ?? '');
  let json = null;
  try { json = JSON.parse(r.stdout); } catch { say(`[notebooks] failed (exit ${r.exitCode}): ${String(r.stderr).trim().split('\n').slice(-3).join(' | ')}`); }
  return json && { ...json, seconds: (performance.now() - t0) / 1000, exitCode: r.exitCode };
}

/** A Markdown table from a header and rows (cells are stringified; `|` escaped). */
export function mdTable(header, rows) {
  const cell = (v) => String(v ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [`| ${header.map(cell).join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

/** Writes summary.md and summary.json into the run folder and prints the Markdown. */
export function writeSummary(dir, markdown, json, { printJson = false } = {}) {
  fs.writeFileSync(path.join(dir, 'summary.md'), `${markdown.trim()}\n`);
  fs.writeFileSync(path.join(dir, 'summary.json'), `${JSON.stringify(json, null, 2)}\n`);
  console.log(printJson ? JSON.stringify(json, null, 2) : markdown.trim());
  say(`\nsummary: ${path.join(dir, 'summary.md')} (and summary.json)`);
}

export const pct = (x) => (Number.isFinite(x) ? `${(100 * x).toFixed(2)} %` : 'n/a');
export const secs = (s) => (s >= 120 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`);
export const countOps = (g) => (g ? ['normal', 'reduce'].map((t) => g[t].nodes.reduce((n, es) => n + es.length, 0)) : [NaN, NaN]);
