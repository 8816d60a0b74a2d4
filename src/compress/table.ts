// Tables of finished compression runs (`bayesnas compress --table RUN...`): one row per run folder with
// the flags that reproduce it, the pruned architecture, weights kept, ratio and the reloaded test
// error; runs whose settings differ only in --seed are summarised as mean ± sd over the seeds.
import fs from 'node:fs';
import path from 'node:path';
import type { CompressConfig, CompressSummary } from './run.js';
import { isImplicit, SETTING_FLAGS } from './flags.js';

export interface RunRow {
  dir: string;
  /** the flags that reproduce the run from scratch, without --seed and --out */
  flags: string;
  /** the model, dataset, kind of group and data sizes: the runs that one error-at-size line may pool */
  family: string;
  seed: number;
  architecture: string;
  weights: number;
  /** live weights per weight layer ("87+619+1726+185"), null for runs recorded before it was kept */
  layerWeights: string | null;
  ratio: number;
  /** test error of the exported model after reloading (the masked network's when nothing was exported) */
  testError: number;
  /** the final network's error on the held-out validation split (--val), null without one */
  valError: number | null;
  seconds: number;
  resumedFrom: string | null;
  /** the code's commit (7 characters, '+' when the tree had changes), null when not recorded */
  commit: string | null;
}

export interface Stat { mean: number; sd: number; min: number; max: number }

/** `commits`: the distinct code versions of the runs (null = not recorded); numbers may differ between them. */
export interface SeedGroup { flags: string; seeds: number[]; weights: Stat; testError: Stat; valError: Stat | null; commits: Array<string | null>; runs: RunRow[] }

function readJson<T>(file: string): T {
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist (not a finished compression run)`);
  try { return JSON.parse(fs.readFileSync(file, 'utf8')) as T; } catch (e) { throw new Error(`${file}: not valid JSON (${(e as Error).message})`); }
}

/** The command-line flags of a configuration: the model and dataset, then every setting that differs from the defaults. */
export function flagsOf(c: CompressConfig): string {
  const out = [`--model ${c.model.name}`, `--dataset ${c.dataset}`];
  for (const f of SETTING_FLAGS) if (f.key !== 'seed' && !isImplicit(f, c)) out.push(`--${f.flag} ${c[f.key]}`);
  return out.join(' ');
}

/** Training and test set sizes of the datasets. */
const FULL_SIZES: Record<string, [number, number]> = { mnist: [60000, 10000], 'fashion-mnist': [60000, 10000], cifar10: [50000, 10000] };

/** One finished run folder (config.json + summary.json); errors name the file. */
export function readRun(dir: string): RunRow {
  const conf = readJson<{ config: CompressConfig; resumedFrom?: string; train?: number; test?: number; code?: { commit: string | null; dirty: boolean | null } }>(path.join(dir, 'config.json'));
  const sum = readJson<CompressSummary>(path.join(dir, 'summary.json'));
  if (!conf.config?.model?.name) throw new Error(`${path.join(dir, 'config.json')}: no config.model.name (not a compression run)`);
  if (!sum.final) throw new Error(`${path.join(dir, 'summary.json')}: no 'final' row`);
  // runs on the first N samples say so (N includes the held-out validation images)
  let sizes = '';
  const full = FULL_SIZES[conf.config.dataset], used = conf.train !== undefined ? conf.train + (conf.config.val ?? 0) : undefined;
  if (full && used !== undefined && used < full[0]) sizes += ` --train-size ${used}`;
  if (full && conf.test !== undefined && conf.test < full[1]) sizes += ` --test-size ${conf.test}`;
  return {
    dir, flags: flagsOf(conf.config) + sizes, family: `--model ${conf.config.model.name} --dataset ${conf.config.dataset} --group ${conf.config.grouping}${sizes}`, seed: conf.config.seed, architecture: sum.final.architecture, weights: sum.final.weights, layerWeights: sum.final.layerWeights ?? null, ratio: sum.final.ratio,
    testError: sum.exported?.testErrorReloaded ?? sum.final.testError, valError: typeof sum.final.valError === 'number' ? sum.final.valError : null, seconds: sum.seconds, resumedFrom: conf.resumedFrom ?? null,
    commit: conf.code?.commit ? `${conf.code.commit.slice(0, 7)}${conf.code.dirty ? '+' : ''}` : null,
  };
}

/** Run folders among `paths`: a folder with summary.json is a run; otherwise its subfolders that are runs. */
export function findRuns(paths: string[]): string[] {
  const runs: string[] = [];
  for (const p of paths) {
    if (!fs.existsSync(p) || !fs.statSync(p).isDirectory()) throw new Error(`${p}: no such folder`);
    if (fs.existsSync(path.join(p, 'summary.json'))) { runs.push(p); continue; }
    const sub = fs.readdirSync(p).sort().map((d) => path.join(p, d)).filter((d) => fs.statSync(d).isDirectory() && fs.existsSync(path.join(d, 'summary.json')));
    if (!sub.length) throw new Error(`${p}: neither a finished compression run (summary.json) nor a folder of runs`);
    runs.push(...sub);
  }
  return runs;
}

function stat(v: number[]): Stat {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, sd, min: Math.min(...v), max: Math.max(...v) };
}

/** Runs with the same flags and different seeds, two or more per group (a seed run twice counts once, the first). */
export function groupBySeed(rows: RunRow[]): SeedGroup[] {
  const by = new Map<string, RunRow[]>();
  for (const r of rows) {
    const g = by.get(r.flags) ?? [];
    if (!g.some((x) => x.seed === r.seed)) g.push(r);
    by.set(r.flags, g);
  }
  return [...by].filter(([, g]) => g.length > 1).map(([flags, g]) => ({
    flags, seeds: g.map((r) => r.seed), runs: g, commits: [...new Set(g.map((r) => r.commit))], weights: stat(g.map((r) => r.weights)), testError: stat(g.map((r) => r.testError)),
    valError: g.every((r) => r.valError !== null) ? stat(g.map((r) => r.valError!)) : null,
  }));
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

const meanSd = (e: Stat) => `${pct(e.mean)} ± ${(100 * e.sd).toFixed(2)} (${pct(e.min)}–${pct(e.max)})`;

/** A markdown table; a column whose `when` is false is left out. */
function mdTable<T>(cols: Array<{ head: string; cell: (r: T) => string; when?: boolean }>, rows: T[]): string[] {
  const shown = cols.filter((c) => c.when !== false);
  return [`| ${shown.map((c) => c.head).join(' | ')} |`, `|${shown.map(() => '---|').join('')}`, ...rows.map((r) => `| ${shown.map((c) => c.cell(r)).join(' | ')} |`)];
}

const count = (x: number) => Math.round(x).toLocaleString('en-US');

/** Markdown tables of runs and seed groups; a validation error column appears when any run held out a validation split. */
export function markdownTables(rows: RunRow[], groups: SeedGroup[]): string {
  const lines = mdTable<RunRow>([
    { head: 'run', cell: (r) => `${path.basename(r.dir)}${r.resumedFrom ? ` (branch of ${path.basename(r.resumedFrom)})` : ''}` },
    { head: 'flags', cell: (r) => `\`${r.flags}\`` },
    { head: 'seed', cell: (r) => String(r.seed) },
    { head: 'architecture', cell: (r) => r.architecture },
    { head: 'weights', cell: (r) => count(r.weights) },
    { head: 'per layer', cell: (r) => r.layerWeights ?? '–', when: rows.some((r) => r.layerWeights !== null) },
    { head: 'ratio', cell: (r) => `${r.ratio.toFixed(1)}x` },
    { head: 'validation error', cell: (r) => (r.valError !== null ? pct(r.valError) : '–'), when: rows.some((r) => r.valError !== null) },
    { head: 'test error', cell: (r) => pct(r.testError) },
    { head: 'wall', cell: (r) => `${(r.seconds / 60).toFixed(0)} min` },
    { head: 'code', cell: (r) => r.commit ?? '?' },
  ], rows);
  if (groups.length) lines.push('', ...mdTable<SeedGroup>([
    { head: 'flags', cell: (g) => `\`${g.flags}\`` },
    { head: 'seeds', cell: (g) => g.seeds.join(', ') },
    { head: 'weights, mean ± sd (min–max)', cell: ({ weights: w }) => `${count(w.mean)} ± ${count(w.sd)} (${count(w.min)}–${count(w.max)})` },
    { head: 'validation error, mean ± sd (min–max)', cell: (g) => (g.valError ? meanSd(g.valError) : '–'), when: groups.some((g) => g.valError) },
    { head: 'test error, mean ± sd (min–max)', cell: (g) => meanSd(g.testError) },
    { head: 'code', cell: (g) => g.commits.map((c) => c ?? '?').join(', ') },
  ], groups));
  return lines.join('\n');
}

/** The error a family of runs reaches at one weight count, from the least-squares line through (ln weights, error). */
export interface FrontierPoint { weights: number; error: number; se: number; extrapolated: boolean }

/**
 * error ≈ a + b·ln(weights) over runs of one model and dataset (whatever their λ, rounds or seed), and the
 * line's value at given weight counts with its standard error s·sqrt(xᵀ(XᵀX)⁻¹x), s² the residual variance
 * on n−2 degrees of freedom. Runs land at scattered sizes, so comparing their means with an anchor at
 * another size mixes size and error; the line pools every run into one estimate at the anchor's size.
 */
export interface FrontierFit { family: string; n: number; intercept: number; slope: number; residualSd: number; range: [number, number]; at: FrontierPoint[] }

/** Least-squares fit of `ys` on ln(`ws`) and its value ± standard error at each of `at`; null with fewer than 3 runs or one size only. */
export function fitLogLine(ws: number[], ys: number[], at: number[]): Omit<FrontierFit, 'family'> | null {
  const n = ws.length;
  if (n < 3 || n !== ys.length) return null;
  const xs = ws.map(Math.log);
  // XᵀX = [[n, Σx], [Σx, Σx²]], Xᵀy = [Σy, Σxy]
  const sx = xs.reduce((a, b) => a + b, 0), sxx = xs.reduce((a, b) => a + b * b, 0);
  const sy = ys.reduce((a, b) => a + b, 0), sxy = xs.reduce((a, x, i) => a + x * ys[i], 0);
  const det = n * sxx - sx * sx;
  if (!(det > 1e-12 * n * sxx)) return null;
  const inv = [[sxx / det, -sx / det], [-sx / det, n / det]];
  const intercept = inv[0][0] * sy + inv[0][1] * sxy, slope = inv[1][0] * sy + inv[1][1] * sxy;
  const rss = xs.reduce((a, x, i) => a + (ys[i] - intercept - slope * x) ** 2, 0);
  const s2 = rss / (n - 2);
  const lo = Math.min(...ws), hi = Math.max(...ws);
  return {
    n, intercept, slope, residualSd: Math.sqrt(s2), range: [lo, hi],
    at: at.map((w) => {
      const x = Math.log(w), q = inv[0][0] + 2 * inv[0][1] * x + inv[1][1] * x * x;
      return { weights: w, error: intercept + slope * x, se: Math.sqrt(s2 * q), extrapolated: w < lo || w > hi };
    }),
  };
}

/** One fit of test error (and of validation error, over the runs that have it) per model, dataset, kind of group and data sizes among `rows`. */
export function frontierFits(rows: RunRow[], at: number[]): Array<FrontierFit & { valError: FrontierFit | null }> {
  const by = new Map<string, RunRow[]>();
  for (const r of rows) by.set(r.family, [...(by.get(r.family) ?? []), r]);
  const out: Array<FrontierFit & { valError: FrontierFit | null }> = [];
  for (const [family, rs] of by) {
    const test = fitLogLine(rs.map((r) => r.weights), rs.map((r) => r.testError), at);
    if (!test) continue;
    const withVal = rs.filter((r) => r.valError !== null);
    const val = fitLogLine(withVal.map((r) => r.weights), withVal.map((r) => r.valError!), at);
    out.push({ family, ...test, valError: val ? { family, ...val } : null });
  }
  return out;
}

/** The fits as a markdown table: one row per family of runs (and per error kind), one column per weight count of the fits. */
export function frontierTable(fits: ReturnType<typeof frontierFits>): string {
  const at = fits[0]?.at.map((p) => p.weights) ?? [];
  const rows = fits.flatMap((f) => [{ kind: 'test', f }, ...(f.valError ? [{ kind: 'validation', f: f.valError }] : [])]);
  const cell = (p: FrontierPoint) => `${pct(p.error)} ± ${(100 * p.se).toFixed(2)}${p.extrapolated ? ' (outside the runs)' : ''}`;
  return mdTable<{ kind: string; f: FrontierFit }>([
    { head: 'runs', cell: (r) => `\`${r.f.family}\`` },
    { head: 'error', cell: (r) => r.kind },
    { head: 'n', cell: (r) => String(r.f.n) },
    { head: 'weights', cell: (r) => `${count(r.f.range[0])}–${count(r.f.range[1])}` },
    { head: 'per doubling of weights', cell: (r) => `${(100 * r.f.slope * Math.LN2).toFixed(2)} points` },
    { head: 'residual sd', cell: (r) => `${(100 * r.f.residualSd).toFixed(2)} points` },
    ...at.map((w, i) => ({ head: `at ${count(w)} weights`, cell: (r: { f: FrontierFit }) => cell(r.f.at[i]) })),
  ], rows).join('\n');
}
