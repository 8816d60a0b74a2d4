// `bayesnas search`: the whole BayesNAS method on real data, ending in a connected genotype.
import fs from 'node:fs';
import path from 'node:path';
import { initEngine } from '../engine/index.js';
import { PROJECT_ROOT } from '../bridge/python.js';
import { DEFAULT_ARCH, runSearch, STRATEGIES, type SearchConfig } from '../search/search.js';
import { describeGenotype } from '../genotype/format.js';
import { configFromFlags, FLAGS as TRAIN_FLAGS, usage as trainUsage } from './supernet.js';
import { choiceFlag, intFlag, numFlag, parse, UsageError } from './args.js';
import { progress, type Progress } from './progress.js';

export const summary = 'architecture search (BayesNAS, or the DARTS / SNAS baselines with --strategy), ending in a derived cell';
export const usage = `bayesnas search [options]

Warm-up epochs train the weights; then each round trains weights and switches for one epoch with
the penalty λ·ω·||s_g||₂, computes the diagonal switch Hessian over M batches, and updates γ, ω, C
(spec §5); switches whose γ falls under --prune are fixed at zero. The cell is derived from the
final γ (spec §7.3).

--strategy darts|snas runs a baseline on the same supernet and schedule instead: one α matrix per
cell type (the space's ops plus 'none'), child switches = softmax(α) (DARTS, first order: an Adam
step on α with a batch of the warm-up split before every weight step) or a Gumbel-softmax sample
softmax((α+G)/τ) per step (SNAS: α and weights trained jointly on the same batch, τ annealed
linearly). Their cells are derived by DARTS's top-2 rule from softmax(α); state/round-<r>.arrow
holds α and softmax(α) per edge and op. The run folder gets config.json, metrics.jsonl, state/round-<r>.arrow (switch,
Hessian, γ, ω, C per switch), genotype.json, genotype.txt (DARTS repr), cell-normal.svg,
cell-reduce.svg, weights.arrow, switches.arrow and checkpoint/ (--resume DIR continues).

Search options:
  --strategy NAME            ${STRATEGIES.join(' | ')}   [bayesnas]
  --rounds K                 search epochs: rounds of (switch epoch, Hessian, update) for BayesNAS   [1]
  --arch-lr X --arch-weight-decay X   Adam on α (darts, snas; betas ${DEFAULT_ARCH.beta1}, ${DEFAULT_ARCH.beta2})   [${DEFAULT_ARCH.lr}, ${DEFAULT_ARCH.weightDecay}]
  --temp-init X --temp-min X SNAS Gumbel-softmax temperature, linear over the search epochs   [${DEFAULT_ARCH.tempInit}, ${DEFAULT_ARCH.tempMin}]
  --lambda X                 λ for origin and child groups (or --lambda-origin / --lambda-child)   [0.01]
  --update clean|faithful    §5.1 clean form, or the official code's update (§5.2)   [clean]
  --hessian-batches M --hessian-batch N   batches of the switch split for the Hessian   [4, 32]
  --hessian-mode per-sample|faithful  --hessian-seed diagonal|target|full  --hessian-scale mean|batchSum|dataset
                             [per-sample, diagonal, dataset: λ is read on the scale of the training-set sum]
  --prune X                  fix switches with γ < X at zero after an update (0 = off)   [0]
  --derive bayesnas|darts    keep every surviving op and edge, or DARTS's top-2 edges / top-1 op   [bayesnas; darts for the baselines]
  --tau-edge X --tau-op X    thresholds, relative to the largest γ of the cell unless --absolute   [0.1, 0.1]
  --on-dead reattach|shrink  a node left without inputs: re-attach its best edge, or drop it from the concat
  --out DIR                  the run folder (same as --run-dir)

${trainUsage.split('\n').slice(trainUsage.split('\n').findIndex((l) => l.startsWith('Search space:'))).join('\n').replace(/--epochs N[^\n]*\n/, '').replace("[runs/<date>-supernet-<space>-<dataset>]", '[runs/<date>-search-<space>-<dataset>]')}`;

export const SEARCH_FLAGS = {
  ...TRAIN_FLAGS, rounds: { type: 'string' }, update: { type: 'string' }, 'hessian-batches': { type: 'string' }, 'hessian-batch': { type: 'string' },
  'hessian-mode': { type: 'string' }, 'hessian-seed': { type: 'string' }, 'hessian-scale': { type: 'string' }, prune: { type: 'string' },
  out: { type: 'string' }, strategy: { type: 'string' }, 'arch-lr': { type: 'string' }, 'arch-weight-decay': { type: 'string' },
  'temp-init': { type: 'string' }, 'temp-min': { type: 'string' }, derive: { type: 'string' }, 'tau-edge': { type: 'string' }, 'tau-op': { type: 'string' }, absolute: { type: 'boolean' }, 'on-dead': { type: 'string' },
} as const;

/** The search configuration from parsed flags (defaults as documented in the usage). */
export function searchConfigFromFlags(values: Record<string, unknown>): SearchConfig {
  const rounds = intFlag(values, 'rounds', 1, 1);
  const base = configFromFlags({ ...values, epochs: String(intFlag(values, 'warmup-epochs', 1, 0) + rounds), lambda: values.lambda ?? '0.01' });
  const strategy = choiceFlag(values, 'strategy', STRATEGIES, 'bayesnas');
  const arch = {
    ...DEFAULT_ARCH, lr: numFlag(values, 'arch-lr', DEFAULT_ARCH.lr, 0), weightDecay: numFlag(values, 'arch-weight-decay', DEFAULT_ARCH.weightDecay, 0),
    tempInit: numFlag(values, 'temp-init', DEFAULT_ARCH.tempInit, 1e-6), tempMin: numFlag(values, 'temp-min', DEFAULT_ARCH.tempMin, 1e-6),
  };
  return {
    ...base, strategy, arch, rounds, switchEpochs: rounds,
    updateMode: choiceFlag(values, 'update', ['clean', 'faithful'] as const, 'clean'),
    hessian: {
      batches: intFlag(values, 'hessian-batches', 4, 1), batch: intFlag(values, 'hessian-batch', 32, 1),
      mode: choiceFlag(values, 'hessian-mode', ['per-sample', 'faithful'] as const, 'per-sample'),
      seed: choiceFlag(values, 'hessian-seed', ['diagonal', 'target', 'full'] as const, 'diagonal'),
      scale: choiceFlag(values, 'hessian-scale', ['mean', 'batchSum', 'dataset'] as const, 'dataset'),
    },
    prune: numFlag(values, 'prune', 0, 0),
    derive: {
      mode: choiceFlag(values, 'derive', ['bayesnas', 'darts'] as const, strategy === 'bayesnas' ? 'bayesnas' : 'darts'), tauEdge: numFlag(values, 'tau-edge', 0.1, 0),
      tauOp: numFlag(values, 'tau-op', 0.1, 0), relative: !values.absolute, onDead: choiceFlag(values, 'on-dead', ['reattach', 'shrink'] as const, 'reattach'),
    },
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, SEARCH_FLAGS);
  if (values.help) { console.log(usage); return 0; }
  const engine = await initEngine();
  const resume = values.resume !== undefined;
  let cfg: SearchConfig, runDir: string;
  if (resume) {
    runDir = path.resolve(String(values.resume));
    const f = path.join(runDir, 'config.json');
    if (!fs.existsSync(f)) throw new UsageError(`--resume: ${f} does not exist`);
    cfg = (JSON.parse(fs.readFileSync(f, 'utf8')) as { config: SearchConfig }).config;
  } else {
    cfg = searchConfigFromFlags(values);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
    runDir = path.resolve(String(values.out ?? values['run-dir'] ?? path.join(PROJECT_ROOT, 'runs', `${stamp}-search-${cfg.strategy === 'bayesnas' ? '' : `${cfg.strategy}-`}${cfg.space.name}-${cfg.dataset}`)));
    if (fs.existsSync(path.join(runDir, 'config.json'))) throw new UsageError(`--run-dir ${runDir} already holds a run (use --resume to continue it, or another folder)`);
  }
  const strategy = cfg.strategy ?? 'bayesnas';   // configs of runs made before --strategy existed have none
  const quiet = !!values.json;
  const say = (m: string) => { if (!quiet) process.stderr.write(`${m}\n`); };
  say(`search (${strategy}): space ${cfg.space.name} (C=${cfg.space.C}, ${cfg.space.layers} cells, gate ${cfg.space.gate}) on ${cfg.dataset}, λ ${cfg.lambdaOrigin}/${cfg.lambdaChild}, ${cfg.rounds} round(s), backend ${engine.backend}, run folder ${runDir}`);
  let bar: Progress | null = null;
  const r = await runSearch(cfg, runDir, {
    onEpochStart: (e, phase, steps) => { bar = progress(`epoch ${e + 1} ${phase.padEnd(6)}`, steps, { quiet, fields: ['loss', 'acc', 'img_s'] }); },
    onStep: (step, m) => bar?.update(step, { loss: m.loss.toFixed(4), acc: m.acc.toFixed(3), img_s: m.imagesPerSecond.toFixed(0) }),
    onEpochEnd: (m) => { bar?.stop(); say(`epoch ${m.epoch} (${m.phase}): train loss ${m.trainLoss.toFixed(4)} acc ${m.trainAcc.toFixed(3)} | val loss ${m.valLoss.toFixed(4)} acc ${m.valAcc.toFixed(3)} | ${m.seconds.toFixed(0)} s`); },
    onPhase: say,
    onRound: (x) => say(strategy === 'bayesnas'
      ? `round ${x.round}: Hessian ${x.hessianSeconds.toFixed(1)} s; γ(normal edges) ${x.gammaNormal.map((v) => Number(v).toExponential(1)).join(' ')}; pruned ${x.pruned}`
      : `search epoch ${x.round}: architecture steps ${x.archSeconds.toFixed(1)} s${x.temperature !== undefined ? `, τ ${x.temperature.toFixed(3)}` : ''}; largest op weight per normal edge ${x.gammaNormal.map((v) => v.toFixed(3)).join(' ')}`),
  }, resume);
  if (values.json) console.log(JSON.stringify({ runDir: r.runDir, genotype: r.genotype, rounds: r.rounds, warmup: r.warmup, files: r.files }, null, 2));
  else console.log(`\n${describeGenotype(r.genotype)}\n\nresults in ${r.runDir} (genotype.json, genotype.txt, cell-normal.svg, cell-reduce.svg, state/)`);
  return 0;
}
