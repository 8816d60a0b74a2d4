// Published genotypes as data, each with its source. State indices follow DARTS: 0 = c_{k-2},
// 1 = c_{k-1}, 2+j = intermediate node j.
import { cellFromPairs, type CellGenotype, type Genotype, type GenotypeEntry } from './types.js';

export interface PublishedGenotype {
  genotype: Genotype;
  /** where the cells come from */
  source: string;
}

const C4 = [2, 3, 4, 5];

// DARTS (Liu, Simonyan, Yang, ICLR 2019), official code quark0/darts, cnn/genotypes.py
// (checked against commit f276dd3). V1 is the first-order search result, V2 the second-order one
// (the one the paper evaluates; `DARTS = DARTS_V2` there).
const DARTS_SOURCE = 'DARTS, Liu et al. ICLR 2019: quark0/darts cnn/genotypes.py';

export const DARTS_V1: Genotype = {
  name: 'DARTS_V1',
  normal: cellFromPairs([
    ['sep_conv_3x3', 1], ['sep_conv_3x3', 0],
    ['skip_connect', 0], ['sep_conv_3x3', 1],
    ['skip_connect', 0], ['sep_conv_3x3', 1],
    ['sep_conv_3x3', 0], ['skip_connect', 2],
  ], C4),
  reduce: cellFromPairs([
    ['max_pool_3x3', 0], ['max_pool_3x3', 1],
    ['skip_connect', 2], ['max_pool_3x3', 0],
    ['max_pool_3x3', 0], ['skip_connect', 2],
    ['skip_connect', 2], ['avg_pool_3x3', 0],
  ], C4),
};

export const DARTS_V2: Genotype = {
  name: 'DARTS_V2',
  normal: cellFromPairs([
    ['sep_conv_3x3', 0], ['sep_conv_3x3', 1],
    ['sep_conv_3x3', 0], ['sep_conv_3x3', 1],
    ['sep_conv_3x3', 1], ['skip_connect', 0],
    ['skip_connect', 0], ['dil_conv_3x3', 2],
  ], C4),
  reduce: cellFromPairs([
    ['max_pool_3x3', 0], ['max_pool_3x3', 1],
    ['skip_connect', 2], ['max_pool_3x3', 1],
    ['max_pool_3x3', 0], ['skip_connect', 2],
    ['skip_connect', 2], ['max_pool_3x3', 1],
  ], C4),
};

// SNAS (Xie, Zheng, Liu, Lin, ICLR 2019), the cell searched with the mild resource constraint,
// `SNAS_mild` in the official code SNAS-Series/SNAS-Series, SNAS/genotypes.py (checked against
// commit 9a43adb; Analysis/snas/genotypes.py holds the same cell). Concat range(2, 6).
export const SNAS_MILD: Genotype = {
  name: 'SNAS_MILD',
  normal: cellFromPairs([
    ['sep_conv_3x3', 0], ['sep_conv_3x3', 1],
    ['skip_connect', 0], ['dil_conv_3x3', 1],
    ['skip_connect', 0], ['skip_connect', 1],
    ['skip_connect', 0], ['sep_conv_3x3', 1],
  ], C4),
  reduce: cellFromPairs([
    ['max_pool_3x3', 0], ['max_pool_3x3', 1],
    ['max_pool_3x3', 1], ['skip_connect', 2],
    ['max_pool_3x3', 1], ['skip_connect', 2],
    ['max_pool_3x3', 0], ['dil_conv_5x5', 2],
  ], C4),
};

// BayesNAS (Zhou et al., ICML 2019), the hand-written cells of the official code,
// BayesNAS/BayesNAS CNN/pre_trained/{0.01,0.007,0.005}/OneShot.py, as transcribed in
// shared/design/bayesnas-algorithm.md §7.2. Ops listed on one node are summed; no published cell
// uses a dilated conv. The λ=0.007 normal cell's n1 also declares a max_pool module on c_{k-2}
// that its forward pass never uses; it is left out here, as the forward pass does.
const SPEC_ALIASES = { skip: 'skip_connect', sep3: 'sep_conv_3x3', sep5: 'sep_conv_5x5', max: 'max_pool_3x3', avg: 'avg_pool_3x3' } as const;
type Alias = keyof typeof SPEC_ALIASES;

/** A cell written as in the spec table: one string per node, e.g. 'sep5(1) sep5(0) max(0)'. */
function specCell(...nodes: string[]): CellGenotype {
  return {
    nodes: nodes.map((text): GenotypeEntry[] => text.trim().split(/\s+/).map((tok) => {
      const m = /^(\w+)\((\d+)\)$/.exec(tok);
      if (!m || !(m[1] in SPEC_ALIASES)) throw new Error(`published.ts: bad spec entry '${tok}'`);
      return { op: SPEC_ALIASES[m[1] as Alias], input: Number(m[2]) };
    })),
    concat: [...C4],
  };
}

const BAYESNAS_SOURCE = (lambda: string) =>
  `BayesNAS, Zhou et al. ICML 2019, λ=${lambda}: BayesNAS/BayesNAS CNN/pre_trained/${lambda}/OneShot.py (spec §7.2)`;

export const BAYESNAS_LAMBDA_0_01: Genotype = {
  name: 'BAYESNAS_LAMBDA_0_01',
  normal: specCell('sep5(1) sep5(0) max(0) avg(0) skip(0)', 'max(1) skip(1)', 'skip(1) max(0)', 'avg(2)'),
  reduce: specCell('skip(1) sep3(0) avg(0) max(0) sep5(0)', 'max(0) avg(0)', 'sep3(0) avg(0)', 'sep5(2)'),
};

export const BAYESNAS_LAMBDA_0_007: Genotype = {
  name: 'BAYESNAS_LAMBDA_0_007',
  normal: specCell('sep3(0) skip(0)', 'sep3(1) skip(1)', 'skip(1) sep3(0)', 'sep5(0) max(0) avg(0) skip(2)'),
  reduce: specCell('sep5(1) avg(1) avg(0) max(0) skip(0) sep5(0)', 'avg(0) skip(2)', 'avg(0) sep5(2) skip(2)', 'avg(2) max(2)'),
};

export const BAYESNAS_LAMBDA_0_005: Genotype = {
  name: 'BAYESNAS_LAMBDA_0_005',
  normal: specCell('max(0) avg(0) skip(0)', 'skip(1) sep5(0)', 'avg(1) skip(0) max(0)', 'sep5(0) max(2)'),
  reduce: specCell('sep3(1) sep5(1) max(1) avg(0) max(0)', 'max(2) avg(2) skip(2)', 'skip(0) max(0)', 'sep3(0) max(0) max(2)'),
};

/** Every published genotype, by name. */
export const PUBLISHED: Readonly<Record<string, PublishedGenotype>> = {
  DARTS_V1: { genotype: DARTS_V1, source: `${DARTS_SOURCE}, DARTS_V1 (first order)` },
  DARTS_V2: { genotype: DARTS_V2, source: `${DARTS_SOURCE}, DARTS_V2 (second order)` },
  SNAS_MILD: { genotype: SNAS_MILD, source: 'SNAS, Xie et al. ICLR 2019, mild constraint: SNAS-Series/SNAS-Series SNAS/genotypes.py SNAS_mild' },
  BAYESNAS_LAMBDA_0_01: { genotype: BAYESNAS_LAMBDA_0_01, source: BAYESNAS_SOURCE('0.01') },
  BAYESNAS_LAMBDA_0_007: { genotype: BAYESNAS_LAMBDA_0_007, source: BAYESNAS_SOURCE('0.007') },
  BAYESNAS_LAMBDA_0_005: { genotype: BAYESNAS_LAMBDA_0_005, source: BAYESNAS_SOURCE('0.005') },
};

/** A published genotype by name (case-insensitive; `DARTS` means DARTS_V2, as in DARTS's code, `SNAS` SNAS_MILD,
 * `0.01` or `bayesnas-0.01` the BayesNAS λ=0.01 cells). */
export function publishedGenotype(name: string): Genotype {
  const upper = name.toUpperCase().replace(/[.\-]/g, '_');
  const key = ({ DARTS: 'DARTS_V2', SNAS: 'SNAS_MILD' } as Record<string, string>)[upper] ?? upper;
  const hit = PUBLISHED[key] ?? PUBLISHED[`BAYESNAS_LAMBDA_${key.replace(/^BAYESNAS_?/, '').replace(/^LAMBDA_?/, '')}`];
  if (!hit) throw new Error(`unknown published genotype '${name}' (known: ${Object.keys(PUBLISHED).join(', ')})`);
  return structuredClone(hit.genotype);
}
