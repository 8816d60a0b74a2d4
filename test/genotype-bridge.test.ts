import test from 'ava';
import { parseDartsRepr, toDartsRepr } from '../src/genotype/format.js';
import { PUBLISHED } from '../src/genotype/published.js';
import { closePython, pyCall, pyModule } from '../src/bridge/session.js';

test.after.always(() => closePython());

test.serial('genotypes round-trip TypeScript → Python namedtuple → TypeScript unchanged', async (t) => {
  const py = await pyModule('bayesnas_ref.genotypes');
  for (const [name, p] of Object.entries(PUBLISHED)) {
    const back = String(await pyCall(`roundtrip ${name}`, () => py.roundtrip(toDartsRepr(p.genotype))));
    const g = parseDartsRepr(back, `python ${name}`);
    t.deepEqual({ normal: g.normal, reduce: g.reduce }, { normal: p.genotype.normal, reduce: p.genotype.reduce }, name);
  }
});

test.serial('the Python side loads genotypes from any module by module:NAME, and the published ones match', async (t) => {
  const py = await pyModule('bayesnas_ref.genotypes');
  for (const name of ['DARTS_V1', 'DARTS_V2', 'SNAS_MILD', 'BAYESNAS_LAMBDA_0_005']) {
    const text = String(await py.genotype_repr(`bayesnas_ref.genotypes:${name}`));
    const g = parseDartsRepr(text);
    const ts = Object.values(PUBLISHED).find((p) => p.genotype.name === name)!.genotype;
    t.deepEqual({ normal: g.normal, reduce: g.reduce }, { normal: ts.normal, reduce: ts.reduce }, name);
  }
  const err = await t.throwsAsync(pyCall('load', () => py.genotype_repr('no_such_module:X')));
  t.regex(err!.message, /cannot import module 'no_such_module'/);
});
