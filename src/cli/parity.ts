// `bayesnas parity`: the same supernet, weights and batch in TypeScript and PyTorch; a table of every
// checked quantity with its max absolute and relative error and pass/fail.
import fs from 'node:fs';
import path from 'node:path';
import { initEngine, tf } from '../engine/index.js';
import { batches, loadDataset, splitTrainingSet, type DatasetName } from '../data/index.js';
import { buildSupernet } from '../space/supernet.js';
import type { TrainConfig } from '../search/train.js';
import { forwardBackwardParity, hessianParity, writeHessianParityTable } from '../bridge/parity.js';
import { closePython } from '../bridge/session.js';
import { configFromFlags, FLAGS as TRAIN_FLAGS } from './supernet.js';
import { intFlag, numFlag, parse, UsageError } from './args.js';

export const summary = 'TypeScript vs PyTorch on identical weights and batch: logits, loss, gradients';
export const usage = `bayesnas parity (--run DIR | --space NAME|FILE [supernet options]) [--batch N] [--tolerance X] [--hessian] [--exact] [--table FILE] [--json]

Exports the supernet's weights (a run's checkpoint, or a fresh seeded one) and one batch of the
'switch' split to Arrow files, runs the same network in PyTorch (python-ref), and compares the
logits, the loss and the gradient of every weight and switch. A quantity passes when its error
relative to its own scale (or 1% of the largest gradient, for gradients that vanish exactly)
is at most --tolerance (1e-4). Exit status 1 if any check fails.

Real images have flat regions (background) where max-pool windows tie; TensorFlow and PyTorch
pick different maxima there, so the gradients legitimately differ. --jitter X (default 1e-3) adds
uniform noise of that size to the batch, the same for both sides, to break the ties; --jitter 0
compares the raw batch.

--hessian also compares the switch-Hessian recursion with python-ref's independent recursion;
--exact also reports, per switch group, how the recursion relates to the exact diagonal from
PyTorch autograd (Spearman rank correlation, median relative error; slow: one double backward per
switch). --table FILE (with --hessian) writes one row per switch as an Arrow table: cell_type, cell,
edge, node, source, op, kind, typescript, pytorch (python-ref's recursion), exact (NaN without
--exact); notebooks/hessian-parity.ipynb plots it.`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...TRAIN_FLAGS, run: { type: 'string' }, tolerance: { type: 'string' }, jitter: { type: 'string' }, hessian: { type: 'boolean' }, exact: { type: 'boolean' }, table: { type: 'string' } });
  if (values.help) { console.log(usage); return 0; }
  if (!values.run && !values.space) throw new UsageError('give --run DIR or --space NAME|FILE');
  if (values.table && !values.hessian && !values.exact) throw new UsageError('--table needs --hessian (or --exact)');
  await initEngine();
  let cfg: TrainConfig, params: string | null = null;
  if (values.run) {
    const f = path.join(String(values.run), 'config.json');
    if (!fs.existsSync(f)) throw new UsageError(`--run: ${f} does not exist`);
    cfg = (JSON.parse(fs.readFileSync(f, 'utf8')) as { config: TrainConfig }).config;
    params = path.join(String(values.run), 'checkpoint', 'params.arrow');
  } else {
    cfg = configFromFlags(values);
  }
  const tol = numFlag(values, 'tolerance', 1e-4, 0);
  const B = intFlag(values, 'batch', 8, 1);
  const data = loadDataset(cfg.dataset as DatasetName);
  const splits = splitTrainingSet(data.train, { seed: cfg.seed, sizes: cfg.sizes });
  const net = buildSupernet(cfg.space, { classes: data.classes.length, inChannels: cfg.channels || data.train.channels, seed: cfg.seed });
  if (params) net.params.load(params);
  const it = batches(splits.switch, { batchSize: B, shuffle: true, seed: cfg.seed + 7, padTo: cfg.padTo || undefined, channels: cfg.channels || undefined });
  const b = it.next().value;
  if (!b) throw new Error('the switch split holds no batch');
  const jitter = numFlag(values, 'jitter', 1e-3, 0);
  if (jitter) {
    const x = tf.tidy(() => tf.add(b.x, tf.randomUniform(b.x.shape, -jitter, jitter, 'float32', cfg.seed)) as tf.Tensor4D);
    b.x.dispose();
    b.x = x;
  }
  try {
    const r = await forwardBackwardParity(net, b.x, b.y);
    const all = r.find((c) => c.quantity === 'grad (all weights)')!;
    const gmax = all.maxAbs / Math.max(all.relative, 1e-30);
    const rows = r.map((c) => {
      const scale = c.quantity.startsWith('grad ') && !c.quantity.startsWith('grad (') ? Math.max(c.maxAbs / Math.max(c.relative, 1e-30), 1e-2 * gmax) : c.maxAbs / Math.max(c.relative, 1e-30);
      const err = c.maxAbs / Math.max(scale, 1e-30);
      return { ...c, error: err, pass: err <= tol };
    });
    let vsExact = null;
    if (values.hessian || values.exact) {
      const h = await hessianParity(net, b.x, b.y, { exact: !!values.exact });
      rows.push({ ...h.recursion, error: h.recursion.relative, pass: h.recursion.relative <= tol });
      vsExact = h.vsExact;
      if (values.table) writeHessianParityTable(String(values.table), net, h.values, { space: net.space.name, batch: String(B), jitter: String(jitter), seed: String(cfg.seed) });
    }
    const failed = rows.filter((x) => !x.pass).length;
    if (values.json) console.log(JSON.stringify({ tolerance: tol, failed, checks: rows, recursionVsExact: vsExact, ...(values.table ? { table: path.resolve(String(values.table)) } : {}) }, null, 2));
    else {
      console.log(`${'quantity'.padEnd(52)} ${'n'.padStart(7)} ${'max abs'.padStart(10)} ${'relative'.padStart(10)}  result`);
      for (const x of rows) console.log(`${x.quantity.slice(0, 52).padEnd(52)} ${String(x.n).padStart(7)} ${x.maxAbs.toExponential(2).padStart(10)} ${x.error.toExponential(2).padStart(10)}  ${x.pass ? 'pass' : 'FAIL'}`);
      if (vsExact) {
        console.log('\nrecursion vs exact switch Hessian (approximation, not an error):');
        for (const [g, v] of Object.entries(vsExact)) console.log(`  ${g.padEnd(14)} Spearman ${Number(v.spearman).toFixed(2)}, median relative error ${Number(v.median_rel_err).toFixed(2)}`);
      }
      console.log(`\n${rows.length - failed} of ${rows.length} checks within ${tol}`);
    }
    return failed ? 1 : 0;
  } finally {
    tf.dispose([b.x, b.y]);
    net.dispose();
    closePython();
  }
}
