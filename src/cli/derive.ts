// `bayesnas derive`: re-derives the cells of a search run from its saved γ (state/round-<r>.arrow),
// with other thresholds or mode, without re-running anything.
import fs from 'node:fs';
import path from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { deriveCell } from '../genotype/derive.js';
import { describeGenotype, toDartsRepr, toJSON } from '../genotype/format.js';
import { cellToSvg } from '../genotype/svg.js';
import type { Genotype } from '../genotype/types.js';
import type { SearchConfig } from '../search/search.js';
import { archOps } from '../search/arch.js';
import { edgeStrength } from '../search/baselines.js';
import { choiceFlag, intFlag, numFlag, parse, UsageError } from './args.js';

export const summary = 're-derive the cells of a search run from its saved γ or α (other thresholds or mode)';
export const usage = `bayesnas derive --run DIR [options]

  --run DIR                  a 'bayesnas search' run folder (any --strategy)
  --round R                  which round's γ, or α for DARTS/SNAS runs (default: the last)
  --mode bayesnas|darts      keep every surviving op and edge, or DARTS's top-2 edges / top-1 op
                             [bayesnas; darts for DARTS/SNAS runs, whose thresholds apply to softmax(α)]
  --tau-edge X --tau-op X    thresholds, relative to the largest γ of the cell unless --absolute
  --on-dead reattach|shrink
  --out DIR                  where to write genotype.json, genotype.txt and the SVGs   [DIR/derived-<mode>]
  --json                     print the genotype as JSON`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    run: { type: 'string' }, round: { type: 'string' }, mode: { type: 'string' }, 'tau-edge': { type: 'string' }, 'tau-op': { type: 'string' },
    absolute: { type: 'boolean' }, 'on-dead': { type: 'string' }, out: { type: 'string' },
  });
  if (values.help) { console.log(usage); return 0; }
  if (!values.run) throw new UsageError('--run DIR is required');
  const dir = path.resolve(String(values.run));
  const cfgFile = path.join(dir, 'config.json');
  if (!fs.existsSync(cfgFile)) throw new UsageError(`--run: ${cfgFile} does not exist`);
  const cfg = (JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as { config: SearchConfig }).config;
  const stateDir = path.join(dir, 'state');
  const rounds = fs.existsSync(stateDir) ? fs.readdirSync(stateDir).map((f) => /^round-(\d+)\.arrow$/.exec(f)?.[1]).filter(Boolean).map(Number).sort((a, b) => a - b) : [];
  if (!rounds.length) throw new UsageError(`--run: ${stateDir} holds no round-<r>.arrow (did the search finish a round?)`);
  const round = intFlag(values, 'round', rounds.at(-1)!, 1);
  if (!rounds.includes(round)) throw new UsageError(`--round ${round}: available rounds are ${rounds.join(', ')}`);
  const file = path.join(stateDir, `round-${round}.arrow`);
  const t = tableFromIPC(fs.readFileSync(file));
  const col = (n: string) => { const c = t.getChild(n); if (!c) throw new Error(`${file}: no column '${n}'`); return c; };
  const { space } = cfg;
  const baseline = t.schema.metadata.get('kind') === 'search-arch';
  // DARTS/SNAS tables: softmax(α) per edge and op (with none); the edge score is its best non-none weight
  const ops: string[] = baseline ? archOps(space) : space.ops;
  const O = ops.length;
  const gam = { normal: { origin: [] as number[], child: [] as number[], cell: -1 }, reduce: { origin: [] as number[], child: [] as number[], cell: -1 } };
  for (let i = 0; i < t.numRows; i++) {
    const kind = col('cell_type').get(i) as 'normal' | 'reduce';
    if (baseline) {
      gam[kind].child[(col('edge').get(i) as number) * O + ops.indexOf(col('op').get(i) as string)] = col('weight').get(i) as number;
      continue;
    }
    const cell = col('cell').get(i) as number;
    const g = gam[kind];
    if (g.cell === -1) g.cell = cell;
    if (cell !== g.cell) continue;   // γ is shared by the cells of a type; read the first one
    const edge = col('edge').get(i) as number, op = col('op').get(i) as string, v = col('gamma').get(i) as number;
    if (col('kind').get(i) === 'origin') g.origin[edge] = v;
    else g.child[edge * O + ops.indexOf(op)] = v;
  }
  if (baseline) for (const kind of ['normal', 'reduce'] as const) gam[kind].origin = edgeStrength(gam[kind].child, space.edges[kind].length, ops);
  const opts = {
    mode: choiceFlag(values, 'mode', ['bayesnas', 'darts'] as const, baseline ? 'darts' : 'bayesnas'), tauEdge: numFlag(values, 'tau-edge', cfg.derive?.tauEdge ?? 0.1, 0),
    tauOp: numFlag(values, 'tau-op', cfg.derive?.tauOp ?? 0.1, 0), relative: !values.absolute, onDead: choiceFlag(values, 'on-dead', ['reattach', 'shrink'] as const, 'reattach'),
  };
  const cellOf = (kind: 'normal' | 'reduce') => {
    const g = gam[kind].origin.length ? gam[kind] : gam.normal;
    const c = deriveCell(space.edges[kind], ops, space.nodes, g, opts);
    return { nodes: c.nodes, concat: c.concat };
  };
  const genotype: Genotype = { normal: cellOf('normal'), reduce: cellOf('reduce'), name: `${path.basename(dir)}-round${round}-${opts.mode}` };
  const out = path.resolve(String(values.out ?? path.join(dir, `derived-${opts.mode}`)));
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'genotype.json'), `${toJSON(genotype)}\n`);
  fs.writeFileSync(path.join(out, 'genotype.txt'), `${toDartsRepr(genotype)}\n`);
  fs.writeFileSync(path.join(out, 'cell-normal.svg'), cellToSvg(genotype.normal, 'normal cell'));
  fs.writeFileSync(path.join(out, 'cell-reduce.svg'), cellToSvg(genotype.reduce, 'reduction cell'));
  fs.writeFileSync(path.join(out, 'derive.json'), `${JSON.stringify({ run: dir, round, options: opts }, null, 2)}\n`);
  if (values.json) console.log(JSON.stringify({ out, round, options: opts, genotype }, null, 2));
  else console.log(`${describeGenotype(genotype)}\n\nround ${round}, ${opts.mode} mode -> ${out}`);
  return 0;
}
