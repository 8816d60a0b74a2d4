// `bayesnas eval-net`: builds the evaluation network of a genotype and reports its size.
import { initEngine } from '../engine/index.js';
import { PUBLISHED } from '../genotype/published.js';
import { buildEvalNet, describeEvalNet, type NetworkKind } from '../evalnet/network.js';
import { closePython } from '../bridge/session.js';
import { loadGenotypeArg } from './genotype.js';
import { choiceFlag, intFlag, parse } from './args.js';

export const summary = 'build the evaluation network of a genotype and count its parameters';
export const usage = `bayesnas eval-net --genotype NAME|FILE | --from-python module:NAME [options]

Builds the network that retrains a genotype, stacked as DARTS builds it (spec §7.4, §7.5): stem,
--layers cells with reduction cells at 1/3 and 2/3, --channels initial channels, FactorizedReduce
after reductions, optional auxiliary head at 2/3, global pool, classifier. Nodes with any number
of (op, input) entries are summed, so BayesNAS cells build as well as DARTS ones.

  --genotype NAME|FILE     published (${Object.keys(PUBLISHED).join(', ')}) or a DARTS repr / JSON file
  --from-python MOD:NAME   a genotype object of a Python module in the reference environment
  --network cifar|imagenet [cifar]
  --style darts|bayesnas   DARTS's evaluation network, or the official BayesNAS one (pre-activation
                           ops, CReduct preprocessing, head BN; spec §7.4)   [darts]
  --layers N               cells   [cifar 20, imagenet 14]
  --channels N             initial channels   [cifar 36, imagenet 48]
  --classes N              [cifar 10, imagenet 1000]
  --in-channels N          input channels   [3]
  --auxiliary              the network has the auxiliary head (reported either way)
  --pytorch                also build it in PyTorch (python-ref) and compare the counts
  --json                   {"params": N, "paramsAuxiliary": M, ...}: N without the auxiliary head
                           (DARTS's count), M with it; "auxiliaryHead" = M − N`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    genotype: { type: 'string' }, 'from-python': { type: 'string' }, network: { type: 'string' }, layers: { type: 'string' },
    channels: { type: 'string' }, classes: { type: 'string' }, 'in-channels': { type: 'string' }, auxiliary: { type: 'boolean' },
    pytorch: { type: 'boolean' }, style: { type: 'string' },
  });
  if (values.help) { console.log(usage); return 0; }
  const genotype = await loadGenotypeArg(values.genotype as string | undefined, values['from-python'] as string | undefined);
  const kind = choiceFlag(values, 'network', ['cifar', 'imagenet'] as const, 'cifar') as NetworkKind;
  const o = {
    genotype, kind, style: choiceFlag(values, 'style', ['darts', 'bayesnas'] as const, 'darts'),
    layers: intFlag(values, 'layers', kind === 'cifar' ? 20 : 14, 1), C: intFlag(values, 'channels', kind === 'cifar' ? 36 : 48, 2),
    classes: intFlag(values, 'classes', kind === 'cifar' ? 10 : 1000, 1), inChannels: intFlag(values, 'in-channels', 3, 1),
  };
  await initEngine({ quiet: true });
  // always built with the head, so that both counts are known
  const net = buildEvalNet({ ...o, auxiliary: true });
  const d = { ...describeEvalNet(net), auxiliary: !!values.auxiliary, auxiliaryAt: net.auxiliaryAt };
  net.dispose();
  let pytorch: { params: number; paramsAuxiliary: number; match: boolean } | null = null;
  if (values.pytorch) {
    const { pythonParamCount } = await import('../evalnet/parity.js');
    try {
      const c = await pythonParamCount(genotype, o);
      pytorch = { ...c, match: c.params === d.params && c.paramsAuxiliary === d.paramsAuxiliary };
    } finally {
      closePython();
    }
  }
  const result = { ...d, ...(pytorch ? { pytorch } : {}) };
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(`${d.genotype ?? 'genotype'}: ${kind} network (${d.style} style), ${d.layers} cells (reductions at ${d.reductions.join(', ')}), ${d.channels} channels, ${d.classes} classes`);
    console.log(`parameters: ${d.params.toLocaleString('en')} (${(d.params / 1e6).toFixed(2)} M) without the auxiliary head, ${d.paramsAuxiliary.toLocaleString('en')} with it (head ${d.auxiliaryHead.toLocaleString('en')}, after cell ${d.auxiliaryAt})`);
    if (pytorch) console.log(`PyTorch reference: ${pytorch.params.toLocaleString('en')} / ${pytorch.paramsAuxiliary.toLocaleString('en')} — ${pytorch.match ? 'identical' : 'DIFFERENT'}`);
  }
  return pytorch && !pytorch.match ? 1 : 0;
}
