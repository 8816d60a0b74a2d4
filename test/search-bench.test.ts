import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initEngine } from '../src/engine/index.js';
import { deriveCell, type DeriveOptions } from '../src/genotype/derive.js';
import { PRESETS } from '../src/space/spaces.js';
import { closePython, pyCall, pyModule } from '../src/bridge/session.js';
import { benchSearch } from '../src/bench/search.js';
import { searchConfigFromFlags } from '../src/cli/search.js';
import { seededRandom } from '../src/space/params.js';

test.before(async () => { await initEngine(); });
test.after.always(() => closePython());

test.serial('python-ref derives the same cells as TypeScript from the same γ (both spaces, every option)', async (t) => {
  const py = await pyModule('bayesnas_ref.search');
  const rand = seededRandom(3);
  let n = 0;
  for (const name of ['bayesnas', 'darts']) {
    const sp = PRESETS[name];
    for (const kind of ['normal', 'reduce'] as const) {
      const edges = sp.edges[kind], O = sp.ops.length;
      for (let trial = 0; trial < 12; trial++) {
        // heavy-tailed γ with exact zeros, so thresholds, dead nodes and ties all occur
        const g = () => (rand() < 0.2 ? 0 : Math.exp(6 * rand() - 5));
        const origin = edges.map(g), child = Array.from({ length: edges.length * O }, g);
        const options: DeriveOptions = {
          mode: trial % 4 === 3 ? 'darts' : 'bayesnas', tauEdge: 0.05 + 0.3 * rand(), tauOp: 0.05 + 0.5 * rand(),
          relative: trial % 2 === 0, onDead: trial % 3 === 0 ? 'shrink' : 'reattach',
        };
        const ts = deriveCell(edges, sp.ops, sp.nodes, { origin, child }, options);
        const args = JSON.stringify({ edges: edges.map((e) => [e.node, e.source]), ops: sp.ops, nodes: sp.nodes, origin,
          child: edges.map((_, e) => child.slice(e * O, (e + 1) * O)), options });
        const pyCell = JSON.parse(String(await pyCall('derive_cell_json', () => py.derive_cell_json(args)))) as { nodes: Array<Array<[string, number]>>; concat: number[] };
        t.deepEqual(pyCell.nodes.map((ns) => ns.map(([op, input]) => ({ op, input }))), ts.nodes, `${name}/${kind} trial ${trial}`);
        t.deepEqual(pyCell.concat, ts.concat);
        n++;
      }
    }
  }
  t.is(n, 48);
});

test.serial('bench search runs the TypeScript search and the PyTorch schedule phase by phase', async (t) => {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-search-'));
  fs.rmSync(runDir, { recursive: true });
  const cfg = searchConfigFromFlags({ space: 'bayesnas', dataset: 'fashion-mnist', C: '2', layers: '3', 'train-size': '48', 'switch-size': '64',
    'val-size': '32', rounds: '1', batch: '16', 'hessian-batches': '2', 'hessian-batch': '16' });
  const r = await benchSearch(cfg, { threads: 1, pytorch: true, runDir });
  t.deepEqual(r.phases.map((p) => `${p.phase}${p.index}`), ['warmup0', 'switch1', 'hessian1', 'update1', 'derive0']);
  for (const p of r.phases) {
    t.true(p.tfjsSeconds >= 0 && p.pytorchSeconds! > 0, p.phase);
    t.is(p.ratio, p.tfjsSeconds / p.pytorchSeconds!);
  }
  t.true(r.totals.all.tfjsSeconds > 0 && r.totals.all.pytorchSeconds! > 0);
  t.true(r.pytorch!.valAcc! >= 0 && r.pytorch!.valAcc! <= 1);
  // both sides built the same network: the same number of weights
  t.is(r.pytorch!.params, r.tfjs.params);
  t.truthy((r.pytorch!.genotype as { normal: { concat: number[] } }).normal.concat.length);
  t.true(fs.existsSync(path.join(runDir, 'genotype.json')) && fs.existsSync(path.join(runDir, 'pytorch', 'data.arrow')));
  fs.rmSync(runDir, { recursive: true, force: true });
});
