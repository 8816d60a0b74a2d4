// `bayesnas genotype show`: reads a genotype (published name, file in DARTS repr or JSON, or any
// Python module through the reference environment) and prints, converts or draws it.
import fs from 'node:fs';
import { describeGenotype, parseDartsRepr, readGenotype, toDartsRepr, toJSON } from '../genotype/format.js';
import { PUBLISHED, publishedGenotype } from '../genotype/published.js';
import { genotypeToSvgs } from '../genotype/svg.js';
import type { Genotype } from '../genotype/types.js';
import { closePython, pyCall, pyModule } from '../bridge/session.js';
import { parse, UsageError } from './args.js';

export const summary = 'show, convert or draw a genotype (published, file, or --from-python module:NAME)';
export const usage = `bayesnas genotype show NAME|FILE|--from-python module:NAME [--json] [--repr] [--svg PREFIX]

  NAME                    a published genotype: ${Object.keys(PUBLISHED).join(', ')}
  FILE                    a file with a DARTS repr (flat or per-node) or the JSON form
  --from-python MOD:NAME  a genotype object of any Python module importable in the reference
                          environment (e.g. a genotypes.py of another NAS code base on PYTHONPATH)
  --json / --repr         print the JSON form / the DARTS repr
  --svg PREFIX            write PREFIX-normal.svg and PREFIX-reduce.svg`;

export async function loadGenotypeArg(arg: string | undefined, fromPython: string | undefined): Promise<Genotype> {
  if (fromPython) {
    try {
      const mod = await pyModule('bayesnas_ref.genotypes');
      const text = String(await pyCall(`--from-python ${fromPython}`, () => mod.genotype_repr(fromPython)));
      return { ...parseDartsRepr(text, `python ${fromPython}`), name: fromPython };
    } finally {
      closePython();
    }
  }
  if (!arg) throw new UsageError('give a published name, a file, or --from-python module:NAME');
  if (fs.existsSync(arg)) return readGenotype(fs.readFileSync(arg, 'utf8'), arg);
  try {
    return publishedGenotype(arg);
  } catch {
    throw new UsageError(`'${arg}' is neither a file nor a published genotype (${Object.keys(PUBLISHED).join(', ')})`);
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { 'from-python': { type: 'string' }, repr: { type: 'boolean' }, svg: { type: 'string' } });
  if (values.help || positionals[0] !== 'show') { console.log(usage); return values.help ? 0 : 2; }
  const g = await loadGenotypeArg(positionals[1], values['from-python'] as string | undefined);
  if (values.svg) {
    const svgs = genotypeToSvgs(g);
    fs.writeFileSync(`${values.svg}-normal.svg`, svgs.normal);
    fs.writeFileSync(`${values.svg}-reduce.svg`, svgs.reduce);
  }
  if (values.json) console.log(toJSON(g));
  else if (values.repr) console.log(toDartsRepr(g));
  else console.log(describeGenotype(g));
  return 0;
}
