import test from 'ava';
import {
  fromJSON, GenotypeJsonError, GenotypeParseError, parseDartsRepr, readGenotype, toDartsRepr, toJSON,
} from '../src/genotype/format.js';
import { PUBLISHED, publishedGenotype } from '../src/genotype/published.js';
import { GenotypeError, validateGenotype, type CellGenotype, type Genotype } from '../src/genotype/types.js';

const DARTS_OPS = ['none', 'max_pool_3x3', 'avg_pool_3x3', 'skip_connect', 'sep_conv_3x3', 'sep_conv_5x5', 'dil_conv_3x3', 'dil_conv_5x5'];

// ---------------------------------------------------------------------------------------------
// the published genotypes, spelled as their sources print them

const DARTS_V1_REPR = "DARTS_V1 = Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])";
const DARTS_V2_REPR = "DARTS_V2 = Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";
// how DARTS's train_search.py logs a genotype under Python 3 (no name, concat as a range)
const DARTS_V2_LOGGED = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))";
// as SNAS's genotypes.py spells it: several lines, keyword spacing, range concat
const SNAS_MILD_REPR = `SNAS_MILD = Genotype(
  normal=[
    ('sep_conv_3x3', 0),
    ('sep_conv_3x3', 1),
    ('skip_connect', 0),
    ('dil_conv_3x3', 1),
    ('skip_connect', 0),
    ('skip_connect', 1),
    ('skip_connect', 0),
    ('sep_conv_3x3', 1)],
  normal_concat=range(2, 6),
  reduce=[
    ('max_pool_3x3', 0),
    ('max_pool_3x3', 1),
    ('max_pool_3x3', 1),
    ('skip_connect', 2),
    ('max_pool_3x3', 1),
    ('skip_connect', 2),
    ('max_pool_3x3', 0),
    ('dil_conv_5x5', 2)],
  reduce_concat=range(2, 6))`;
// BayesNAS cells, grouped form, transcribed here independently from spec §7.2
const BAYESNAS_0_01_REPR = `BAYESNAS_LAMBDA_0_01 = Genotype(
  normal=[[('sep_conv_5x5', 1), ('sep_conv_5x5', 0), ('max_pool_3x3', 0), ('avg_pool_3x3', 0), ('skip_connect', 0)],
          [('max_pool_3x3', 1), ('skip_connect', 1)],
          [('skip_connect', 1), ('max_pool_3x3', 0)],
          [('avg_pool_3x3', 2)]],
  normal_concat=[2, 3, 4, 5],
  reduce=[[('skip_connect', 1), ('sep_conv_3x3', 0), ('avg_pool_3x3', 0), ('max_pool_3x3', 0), ('sep_conv_5x5', 0)],
          [('max_pool_3x3', 0), ('avg_pool_3x3', 0)],
          [('sep_conv_3x3', 0), ('avg_pool_3x3', 0)],
          [('sep_conv_5x5', 2)]],
  reduce_concat=[2, 3, 4, 5])`;
const BAYESNAS_0_007_REPR = `BAYESNAS_LAMBDA_0_007 = Genotype(
  normal=[[('sep_conv_3x3', 0), ('skip_connect', 0)],
          [('sep_conv_3x3', 1), ('skip_connect', 1)],
          [('skip_connect', 1), ('sep_conv_3x3', 0)],
          [('sep_conv_5x5', 0), ('max_pool_3x3', 0), ('avg_pool_3x3', 0), ('skip_connect', 2)]],
  normal_concat=[2, 3, 4, 5],
  reduce=[[('sep_conv_5x5', 1), ('avg_pool_3x3', 1), ('avg_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 0), ('sep_conv_5x5', 0)],
          [('avg_pool_3x3', 0), ('skip_connect', 2)],
          [('avg_pool_3x3', 0), ('sep_conv_5x5', 2), ('skip_connect', 2)],
          [('avg_pool_3x3', 2), ('max_pool_3x3', 2)]],
  reduce_concat=[2, 3, 4, 5])`;
const BAYESNAS_0_005_REPR = `BAYESNAS_LAMBDA_0_005 = Genotype(
  normal=[[('max_pool_3x3', 0), ('avg_pool_3x3', 0), ('skip_connect', 0)],
          [('skip_connect', 1), ('sep_conv_5x5', 0)],
          [('avg_pool_3x3', 1), ('skip_connect', 0), ('max_pool_3x3', 0)],
          [('sep_conv_5x5', 0), ('max_pool_3x3', 2)]],
  normal_concat=[2, 3, 4, 5],
  reduce=[[('sep_conv_3x3', 1), ('sep_conv_5x5', 1), ('max_pool_3x3', 1), ('avg_pool_3x3', 0), ('max_pool_3x3', 0)],
          [('max_pool_3x3', 2), ('avg_pool_3x3', 2), ('skip_connect', 2)],
          [('skip_connect', 0), ('max_pool_3x3', 0)],
          [('sep_conv_3x3', 0), ('max_pool_3x3', 0), ('max_pool_3x3', 2)]],
  reduce_concat=[2, 3, 4, 5])`;

const PUBLISHED_REPRS: Record<string, string> = {
  DARTS_V1: DARTS_V1_REPR,
  DARTS_V2: DARTS_V2_REPR,
  SNAS_MILD: SNAS_MILD_REPR,
  BAYESNAS_LAMBDA_0_01: BAYESNAS_0_01_REPR,
  BAYESNAS_LAMBDA_0_007: BAYESNAS_0_007_REPR,
  BAYESNAS_LAMBDA_0_005: BAYESNAS_0_005_REPR,
};

const sizes = (c: CellGenotype) => c.nodes.map((n) => n.length);

test('every published genotype has a repr here, and each parses to the published data', (t) => {
  t.deepEqual(Object.keys(PUBLISHED).sort(), Object.keys(PUBLISHED_REPRS).sort());
  for (const [name, repr] of Object.entries(PUBLISHED_REPRS)) {
    const g = parseDartsRepr(repr, name, { ops: DARTS_OPS });
    t.deepEqual(g, PUBLISHED[name].genotype, name);
    t.is(g.name, name);
    t.truthy(PUBLISHED[name].source, `${name} names its source`);
  }
});

test('DARTS entries: the flat list is split into pairs, node by node', (t) => {
  const g = parseDartsRepr(DARTS_V2_REPR);
  t.deepEqual(sizes(g.normal), [2, 2, 2, 2]);
  t.deepEqual(g.normal.nodes[3], [{ op: 'skip_connect', input: 0 }, { op: 'dil_conv_3x3', input: 2 }]);
  t.deepEqual(g.reduce.nodes[1], [{ op: 'skip_connect', input: 2 }, { op: 'max_pool_3x3', input: 1 }]);
  t.deepEqual(g.normal.concat, [2, 3, 4, 5]);
  // the logged spelling (range concat, no name) is the same genotype
  const logged = parseDartsRepr(DARTS_V2_LOGGED);
  t.is(logged.name, undefined);
  t.deepEqual({ ...logged, name: 'DARTS_V2' }, g);
});

test('BayesNAS published cells: nodes sizes as in spec §7.2, no dilated conv, concat 2..5', (t) => {
  const want: Record<string, [number[], number[]]> = {
    BAYESNAS_LAMBDA_0_01: [[5, 2, 2, 1], [5, 2, 2, 1]],
    BAYESNAS_LAMBDA_0_007: [[2, 2, 2, 4], [6, 2, 3, 2]],
    BAYESNAS_LAMBDA_0_005: [[3, 2, 3, 2], [5, 3, 2, 3]],
  };
  for (const [name, [normal, reduce]] of Object.entries(want)) {
    const g = PUBLISHED[name].genotype;
    t.deepEqual(sizes(g.normal), normal, name);
    t.deepEqual(sizes(g.reduce), reduce, name);
    for (const c of [g.normal, g.reduce]) {
      t.deepEqual(c.concat, [2, 3, 4, 5]);
      t.false(c.nodes.flat().some((e) => e.op.startsWith('dil_conv')));
    }
  }
  // one spot check per cell kind against the spec table
  t.deepEqual(PUBLISHED.BAYESNAS_LAMBDA_0_007.genotype.reduce.nodes[2],
    [{ op: 'avg_pool_3x3', input: 0 }, { op: 'sep_conv_5x5', input: 2 }, { op: 'skip_connect', input: 2 }]);
  t.deepEqual(PUBLISHED.BAYESNAS_LAMBDA_0_005.genotype.normal.nodes[1], [{ op: 'skip_connect', input: 1 }, { op: 'sep_conv_5x5', input: 0 }]);
});

test('publishedGenotype: lookup by name and alias, returns a copy', (t) => {
  t.deepEqual(publishedGenotype('darts'), PUBLISHED.DARTS_V2.genotype);
  t.deepEqual(publishedGenotype('snas'), PUBLISHED.SNAS_MILD.genotype);
  t.deepEqual(publishedGenotype('bayesnas-0.007'), PUBLISHED.BAYESNAS_LAMBDA_0_007.genotype);
  t.deepEqual(publishedGenotype('0.005'), PUBLISHED.BAYESNAS_LAMBDA_0_005.genotype);
  const copy = publishedGenotype('DARTS_V1');
  copy.normal.nodes[0][0].op = 'changed';
  t.is(PUBLISHED.DARTS_V1.genotype.normal.nodes[0][0].op, 'sep_conv_3x3');
  t.throws(() => publishedGenotype('nasnet'), { message: /unknown published genotype 'nasnet'/ });
});

test('writer: DARTS genotypes come out exactly as genotypes.py spells them; BayesNAS cells grouped', (t) => {
  t.is(toDartsRepr(PUBLISHED.DARTS_V1.genotype), DARTS_V1_REPR);
  t.is(toDartsRepr(PUBLISHED.DARTS_V2.genotype), DARTS_V2_REPR);
  t.is(toDartsRepr(PUBLISHED.DARTS_V2.genotype, { assign: false }), DARTS_V2_REPR.replace('DARTS_V2 = ', ''));
  const b = toDartsRepr(PUBLISHED.BAYESNAS_LAMBDA_0_007.genotype);
  t.true(b.startsWith("BAYESNAS_LAMBDA_0_007 = Genotype(normal=[[('sep_conv_3x3', 0), ('skip_connect', 0)], [('sep_conv_3x3', 1)"), b);
  t.is(b, BAYESNAS_0_007_REPR.replace(/\n\s*/g, (m) => (m.length > 1 ? ' ' : '')).replace(/\( /g, '('));
});

test('grouped form per cell: a cell with a single-entry node is grouped, a pairs cell stays flat', (t) => {
  const g: Genotype = {
    normal: { nodes: [[{ op: 'skip_connect', input: 1 }], [{ op: 'sep_conv_3x3', input: 0 }, { op: 'max_pool_3x3', input: 2 }]], concat: [2, 3] },
    reduce: { nodes: [[{ op: 'max_pool_3x3', input: 0 }, { op: 'max_pool_3x3', input: 1 }]], concat: [2] },
  };
  const r = toDartsRepr(g);
  t.is(r, "Genotype(normal=[[('skip_connect', 1)], [('sep_conv_3x3', 0), ('max_pool_3x3', 2)]], normal_concat=[2, 3], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])");
  t.deepEqual(parseDartsRepr(r), g);
});

test('reader accepts: genotypes. prefix, double quotes, comments, trailing commas, positional fields, list(range())', (t) => {
  const text = `# searched by hand
  x = genotypes.Genotype(
    [("sep_conv_3x3", 0), ('skip_connect', 1),],   # normal
    list(range(2, 3)),
    [[('max_pool_3x3', 0)],],
    reduce_concat=(2,),
  )
  `;
  const g = parseDartsRepr(text);
  t.deepEqual(g, {
    name: 'x',
    normal: { nodes: [[{ op: 'sep_conv_3x3', input: 0 }, { op: 'skip_connect', input: 1 }]], concat: [2] },
    reduce: { nodes: [[{ op: 'max_pool_3x3', input: 0 }]], concat: [2] },
  });
});

test('reader: steps splits a flat list into that many equal nodes', (t) => {
  const text = "Genotype(normal=[('a', 0), ('b', 1), ('c', 2)], normal_concat=[2, 3, 4], reduce=[('d', 0), ('e', 1)], reduce_concat=[2])";
  const g = parseDartsRepr(text, 'x', { steps: { normal: 3, reduce: 1 } });
  t.deepEqual(g.normal.nodes, [[{ op: 'a', input: 0 }], [{ op: 'b', input: 1 }], [{ op: 'c', input: 2 }]]);
  t.deepEqual(g.reduce.nodes, [[{ op: 'd', input: 0 }, { op: 'e', input: 1 }]]);
  t.throws(() => parseDartsRepr(text, 'x', { steps: 2 }), { message: /has 3 entries, which cannot be split into 2 equal nodes/ });
});

// ---------------------------------------------------------------------------------------------
// malformed text: line, column, caret, and what was expected

function parseError(text: string, opts = {}): GenotypeParseError {
  const e = t_throws(() => parseDartsRepr(text, 'cell.txt', opts));
  if (!(e instanceof GenotypeParseError)) throw new Error(`expected a GenotypeParseError, got ${String(e)}`);
  return e;
}
function t_throws(f: () => unknown): unknown {
  try { f(); } catch (e) { return e; }
  throw new Error('expected an error, none was thrown');
}
/** 1-based line and column of the n-th occurrence of `needle` */
function whereIs(text: string, needle: string, nth = 0): { line: number; column: number } {
  let i = -1;
  for (let k = 0; k <= nth; k++) i = text.indexOf(needle, i + 1);
  if (i < 0) throw new Error(`${needle} not in text`);
  const before = text.slice(0, i).split('\n');
  return { line: before.length, column: before.at(-1)!.length + 1 };
}

const OK = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])";

test('the base text of the error tests parses', (t) => {
  t.notThrows(() => parseDartsRepr(OK));
});

test('error: missing closing paren at the end', (t) => {
  const e = parseError(OK.slice(0, -1));
  t.is(e.line, 1);
  t.is(e.column, OK.length);  // just past the last character
  t.regex(e.message, /^cell\.txt: line 1, column 148: expected '\)' or ',', found the end of the text/);
  t.is(e.message.split('\n').at(-1)!.indexOf('^'), e.message.split('\n').at(-2)!.length);
});

test('error: missing paren inside the list, with caret under the offending token', (t) => {
  const text = OK.replace("('sep_conv_3x3', 1)", "('sep_conv_3x3', 1");
  const e = parseError(text);
  t.deepEqual({ line: e.line, column: e.column }, whereIs(text, ']'));
  t.regex(e.reason, /^expected '\)' or ',', found '\]'/);
  const [, excerpt, caret] = e.message.split('\n');
  t.is(excerpt[caret.indexOf('^')], ']');
});

test('error: an op whose closing quote is missing points at the quote', (t) => {
  const text = OK.replace("('sep_conv_3x3', 0)", "('sep_conv_3x3, 0)");
  const e = parseError(text);
  t.deepEqual({ line: e.line, column: e.column }, { line: 1, column: 40 });
  t.regex(e.reason, /expected '\)' or ',', found 'sep_conv_3x3' \(the string at line 1, column 19 may be missing its closing quote\)/);
  // mismatched quotes run to the end of the line
  const e2 = parseError(OK.replace("('sep_conv_3x3', 0)", "(\"sep_conv_3x3', 0)"));
  t.deepEqual({ line: e2.line, column: e2.column }, { line: 1, column: 19 });
  t.regex(e2.reason, /unterminated string: no closing " before the end of the line/);
  // an unquoted op
  const e3 = parseError(OK.replace("('sep_conv_3x3', 0)", '(sep_conv_3x3, 0)'));
  t.is(e3.column, 19);
  t.regex(e3.reason, /expected the op name as a quoted string/);
});

test('error: unknown field, with a suggestion', (t) => {
  const text = OK.replace('normal=', '\n  normall=');
  const e = parseError(text);
  t.deepEqual({ line: e.line, column: e.column }, { line: 2, column: 3 });
  t.regex(e.reason, /^unknown field 'normall' \(did you mean 'normal'\?\); the fields are normal, normal_concat, reduce, reduce_concat$/);
  t.regex(parseError(OK.replace('reduce_concat=[2]', 'reduce_concat=[2], steps=4')).reason, /unknown field 'steps'/);
});

test('error: input out of range names the node and the allowed states', (t) => {
  const text = `Genotype(
  normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1),
          ('sep_conv_3x3', 0), ('sep_conv_3x3', 2),
          ('sep_conv_3x3', 7), ('sep_conv_3x3', 1)],
  normal_concat=[2, 3, 4],
  reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])`;
  const e = parseError(text);
  t.deepEqual({ line: e.line, column: e.column }, whereIs(text, '7'));
  t.deepEqual({ line: e.line, column: e.column }, { line: 4, column: 28 });
  t.is(e.reason, 'normal cell: input 7 of node 2 is not an earlier state (0..3)');
  t.deepEqual(e.path, { cell: 'normal', node: 2, entry: 0, field: 'input' });
  // a self-loop is just as wrong
  t.regex(parseError(OK.replace("('sep_conv_3x3', 1)", "('sep_conv_3x3', 2)")).reason, /input 2 of node 0 is not an earlier state \(0\.\.1\)/);
});

test('error: odd flat list', (t) => {
  const text = OK.replace("('sep_conv_3x3', 1)]", "('sep_conv_3x3', 1), ('skip_connect', 0)]");
  const e = parseError(text);
  t.deepEqual({ line: e.line, column: e.column }, whereIs(text, '['));
  t.regex(e.reason, /the flat list of 'normal' has 3 entries, an odd number, so it cannot be split into DARTS pairs/);
  t.regex(e.reason, /one list per node/);
});

test('error: garbage after the end', (t) => {
  const text = `${OK}\n  )`;
  const e = parseError(text);
  t.deepEqual({ line: e.line, column: e.column }, { line: 2, column: 3 });
  t.regex(e.reason, /^unexpected text after the end of the genotype: '\)'/);
  t.regex(parseError(`${OK} extra`).reason, /after the end of the genotype: 'extra'/);
});

test('error: missing and repeated fields, mixed grouping, bad concat, unknown op, not a Genotype', (t) => {
  const missing = parseError(OK.replace(", reduce_concat=[2]", ''));
  t.regex(missing.reason, /missing field 'reduce_concat'/);
  t.is(missing.column, OK.length - ', reduce_concat=[2]'.length);
  t.regex(parseError(OK.replace('reduce_concat=[2]', 'normal=[]')).reason, /field 'normal' given twice/);
  const mixed = OK.replace("('sep_conv_3x3', 0), ('sep_conv_3x3', 1)", "[('sep_conv_3x3', 0)], ('sep_conv_3x3', 1)");
  const em = parseError(mixed);
  t.regex(em.reason, /expected a list of \(op, input\) pairs for this node/);
  t.deepEqual({ line: em.line, column: em.column }, whereIs(mixed, "('sep_conv_3x3', 1)"));
  const ec = parseError(OK.replace('normal_concat=[2]', 'normal_concat=[2, 1]'));
  t.is(ec.reason, 'normal cell: concat entry 1 is 1, not an intermediate state (2..2)');
  t.is(ec.column, OK.indexOf('normal_concat=[2]') + '_normal_concat=[2, '.length);
  const eo = parseError(OK.replace("'max_pool_3x3', 1", "'max_pool_7x7', 1"), { ops: DARTS_OPS });
  t.regex(eo.reason, /^reduce cell: unknown op 'max_pool_7x7' in entry 1 of node 0/);
  t.is(eo.column, OK.indexOf("'max_pool_3x3', 1") + 1);
  t.regex(parseError(`Foo(${OK.slice('Genotype('.length)}`).reason, /expected Genotype\(normal=/);
  t.regex(parseError(OK.replace('[2])', '[2.5])')).reason, /expected an integer, found '2\.5'/);
  t.regex(parseError(OK.replace("('sep_conv_3x3', 0)", "('sep_conv_3x3', 0, 1)")).reason, /found a tuple of 3 items/);
});

// ---------------------------------------------------------------------------------------------
// validation

test('validateGenotype names the cell, node and entry', (t) => {
  const g = structuredClone(PUBLISHED.BAYESNAS_LAMBDA_0_01.genotype);
  t.notThrows(() => validateGenotype(g, 'x', { ops: DARTS_OPS }));
  g.reduce.nodes[3][0].input = 5;
  t.throws(() => validateGenotype(g, 'run/genotype.json'), {
    instanceOf: GenotypeError,
    message: 'run/genotype.json: reduce cell, node 3 (state 5), entry 0 input: input 5 of node 3 is not an earlier state (0..4)',
  });
  const h = structuredClone(PUBLISHED.DARTS_V2.genotype);
  h.normal.nodes[1][1].op = 'conv_7x1_1x7';
  t.notThrows(() => validateGenotype(h, 'x'));
  t.throws(() => validateGenotype(h, 'x', { ops: DARTS_OPS }), { message: /normal cell, node 1 \(state 3\), entry 1 op: unknown op 'conv_7x1_1x7'/ });
  h.normal.nodes[1][1].op = 'sep_conv_3x3';
  h.normal.concat = [2, 3, 3];
  t.throws(() => validateGenotype(h, 'x'), { message: /normal cell, concat\[2\]: concat entry 2 repeats state 3/ });
  h.normal.concat = [];
  t.throws(() => validateGenotype(h, 'x'), { message: /the concat list is empty/ });
});

test('dead nodes: allowed when nothing reads them and the concat leaves them out', (t) => {
  const g: Genotype = {
    normal: { nodes: [[{ op: 'skip_connect', input: 0 }], [], [{ op: 'max_pool_3x3', input: 2 }]], concat: [2, 4] },
    reduce: { nodes: [[{ op: 'max_pool_3x3', input: 1 }]], concat: [2] },
  };
  t.notThrows(() => validateGenotype(g, 'x'));
  const r = toDartsRepr(g);
  t.true(r.includes('[[(\'skip_connect\', 0)], [], [(\'max_pool_3x3\', 2)]]'), r);
  t.deepEqual(parseDartsRepr(r), g);
  t.deepEqual(fromJSON(toJSON(g)), g);
  g.normal.concat = [2, 3, 4];
  t.throws(() => validateGenotype(g, 'x'), { message: /concat entry 1 is state 3, node 1, which has no inputs/ });
  g.normal.concat = [2, 4];
  g.normal.nodes[2][0].input = 3;
  t.throws(() => validateGenotype(g, 'x'), { message: /input 3 of node 2 is node 1, which has no inputs/ });
});

// ---------------------------------------------------------------------------------------------
// JSON

test('JSON: published genotypes round trip, and the layout is the documented one', (t) => {
  for (const { genotype } of Object.values(PUBLISHED)) {
    const text = toJSON(genotype);
    t.deepEqual(fromJSON(text), genotype);
    t.is(toJSON(fromJSON(text)), text);
    t.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify({ normal: genotype.normal, reduce: genotype.reduce, name: genotype.name })));
    t.deepEqual(readGenotype(text), genotype);
    t.deepEqual(readGenotype(toDartsRepr(genotype)), genotype);
  }
});

function jsonError(text: string, opts = {}): GenotypeJsonError {
  const e = t_throws(() => fromJSON(text, 'g.json', opts));
  if (!(e instanceof GenotypeJsonError)) throw new Error(`expected a GenotypeJsonError, got ${String(e)}`);
  return e;
}
const J = (normal: unknown, reduce: unknown = { nodes: [[{ op: 'skip_connect', input: 0 }]], concat: [2] }, extra = {}) =>
  JSON.stringify({ normal, reduce, ...extra });
const CELL = { nodes: [[{ op: 'sep_conv_3x3', input: 0 }], [{ op: 'skip_connect', input: 2 }]], concat: [2, 3] };

test('JSON errors name the JSON path', (t) => {
  t.notThrows(() => fromJSON(J(CELL)));
  const typed = jsonError(J({ ...CELL, nodes: [CELL.nodes[0], [{ op: 'skip_connect', input: '2' }]] }));
  t.is(typed.jsonPath, '$.normal.nodes[1][0].input');
  t.is(typed.message, 'g.json: $.normal.nodes[1][0].input: expected an integer state index, found string "2"');
  t.is(jsonError(J(CELL, { nodez: [], concat: [2] })).jsonPath, '$.reduce.nodez');
  t.regex(jsonError(J(CELL, { nodez: [], concat: [2] })).reason, /unknown key 'nodez' \(expected nodes, concat\)/);
  const range = jsonError(J(CELL, { nodes: [[{ op: 'max_pool_3x3', input: 3 }]], concat: [2] }));
  t.is(range.message, 'g.json: $.reduce.nodes[0][0].input: input 3 of node 0 is not an earlier state (0..1)');
  t.is(jsonError(J({ ...CELL, concat: [2, 7] })).jsonPath, '$.normal.concat[1]');
  t.is(jsonError(J({ ...CELL, concat: [] })).jsonPath, '$.normal.concat');
  const missing = jsonError(JSON.stringify({ normal: CELL }));
  t.is(missing.reason, "missing key 'reduce'");
  t.is(missing.jsonPath, '$');
  t.is(jsonError(J({ ...CELL, nodes: [[{ op: 'a', input: 0, weight: 1 }]] })).jsonPath, '$.normal.nodes[0][0].weight');
  t.is(jsonError(J({ ...CELL, nodes: [{ op: 'a', input: 0 }] })).jsonPath, '$.normal.nodes[0]');
  t.is(jsonError(J(CELL, CELL, { name: 3 })).jsonPath, '$.name');
  t.is(jsonError(J(CELL, CELL, { lambda: 0.01 })).jsonPath, '$.lambda');
  const op = jsonError(J(CELL), { ops: ['skip_connect'] });
  t.is(op.jsonPath, '$.normal.nodes[0][0].op');
  t.regex(op.reason, /unknown op 'sep_conv_3x3'/);
  t.is(jsonError('[1, 2]').jsonPath, '$');
});

test('JSON syntax errors give line and column', (t) => {
  const text = '{\n  "normal": {"nodes": [], "concat": [2]},\n  "reduce": {"nodes": [] "concat": [2]}\n}';
  const e = t_throws(() => fromJSON(text, 'g.json'));
  t.true(e instanceof GenotypeParseError);
  const pe = e as GenotypeParseError;
  t.deepEqual({ line: pe.line, column: pe.column }, whereIs(text, '"concat"', 1));
  t.regex(pe.message, /^g\.json: line 3, column 26: invalid JSON/);
});

// ---------------------------------------------------------------------------------------------
// round-trip properties over random genotypes

function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
const ODD_OPS = ["it's", 'say "hi"', 'back\\slash', 'tab\there', 'ünïcödé_op', 'conv_7x1_1x7'];

function randomCell(r: () => number, pairs: boolean, odd: boolean): CellGenotype {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const ops = odd ? [...DARTS_OPS, ...ODD_OPS] : DARTS_OPS;
  const n = 1 + Math.floor(r() * 6);
  const live = [0, 1];
  const nodes: CellGenotype['nodes'] = [];
  for (let i = 0; i < n; i++) {
    const dead = !pairs && i > 0 && r() < 0.15;
    const k = dead ? 0 : pairs ? 2 : 1 + Math.floor(r() * 5);
    nodes.push(Array.from({ length: k }, () => ({ op: pick(ops), input: pick(live) })));
    if (!dead) live.push(i + 2);
  }
  const states = live.filter((s) => s >= 2);
  const concat = states.filter(() => r() < 0.7);
  if (!concat.length) concat.push(pick(states));
  if (r() < 0.3) concat.reverse();
  return { nodes, concat };
}

function randomGenotype(seed: number): Genotype {
  const r = rng(seed);
  const pairs = r() < 0.4, odd = r() < 0.3;
  const g: Genotype = { normal: randomCell(r, pairs, odd), reduce: randomCell(r, pairs || r() < 0.3, odd) };
  if (r() < 0.5) g.name = `G_${seed}`;
  return g;
}

/** The same repr with other whitespace, comments, quotes, trailing commas and range() concat. */
function respell(repr: string, seed: number): string {
  const r = rng(seed * 7 + 1);
  const ws = () => [' ', '', '\n    ', '  ', '\t', ' # note\n  '][Math.floor(r() * 6)];
  let s = repr.replace(/([,([])/g, (m) => `${m}${ws()}`).replace(/([)\]])/g, (m) => `${r() < 0.3 ? ws() : ''}${m}`);
  s = s.replace(/'([A-Za-z0-9_]+)'/g, (m, op: string) => (r() < 0.5 ? `"${op}"` : m));
  s = s.replace(/(_concat=)\[([\d, \n\t#a-z]*)\]/g, (m, pre: string, body: string) => {
    const xs = body.replace(/#[^\n]*/g, '').split(',').map((x) => x.trim()).filter(Boolean).map(Number);
    const contiguous = xs.every((x, i) => x === xs[0] + i);
    return contiguous && r() < 0.7 ? `${pre}range(${xs[0]}, ${xs[0] + xs.length})` : m;
  });
  return s.replace(/\)\s*\]/g, (m) => (r() < 0.3 ? `),${m.slice(1)}` : m));
}

test('property: repr -> genotype -> repr is stable, and respelled reprs read the same (300 random genotypes)', (t) => {
  for (let seed = 1; seed <= 300; seed++) {
    const g = randomGenotype(seed);
    const repr = toDartsRepr(g);
    const back = parseDartsRepr(repr, `seed ${seed}`);
    t.deepEqual(back, g, `seed ${seed}: ${repr}`);
    t.is(toDartsRepr(back), repr, `seed ${seed}`);
    const other = respell(repr, seed);
    t.deepEqual(parseDartsRepr(other, `seed ${seed} respelled`), g, `seed ${seed}: ${other}`);
  }
});

test('property: JSON -> genotype -> JSON is stable, and JSON.stringify output reads the same (300 random genotypes)', (t) => {
  for (let seed = 1; seed <= 300; seed++) {
    const g = randomGenotype(seed);
    const text = toJSON(g);
    const back = fromJSON(text, `seed ${seed}`);
    t.deepEqual(back, g, `seed ${seed}`);
    t.is(toJSON(back), text);
    t.deepEqual(fromJSON(JSON.stringify(g, null, seed % 3)), g);
    t.deepEqual(fromJSON(toJSON(parseDartsRepr(toDartsRepr(g)))), g);
  }
});

test('property: the writers refuse invalid genotypes', (t) => {
  for (let seed = 1; seed <= 50; seed++) {
    const g = randomGenotype(seed);
    const node = g.normal.nodes.findIndex((n) => n.length > 0);
    g.normal.nodes[node][0].input = node + 2;  // a self-loop
    t.throws(() => toDartsRepr(g), { instanceOf: GenotypeError, message: new RegExp(`toDartsRepr: normal cell, node ${node} \\(state ${node + 2}\\), entry 0 input`) });
    t.throws(() => toJSON(g), { instanceOf: GenotypeError });
  }
});
