import test from 'ava';
import { deriveCell } from '../src/genotype/derive.js';
import { BAYESNAS_SPACE, DARTS_SPACE } from '../src/space/spaces.js';
import { seededRandom } from '../src/space/params.js';

const ops = DARTS_SPACE.ops;

function randomGammas(E: number, O: number, seed: number, zeroFrac = 0.4) {
  const r = seededRandom(seed);
  const z = (v: number) => (r() < zeroFrac ? r() * 1e-3 : v);
  return { origin: Float64Array.from({ length: E }, () => z(r())), child: Float64Array.from({ length: E * O }, () => z(r())) };
}

for (const [name, space] of [['darts', DARTS_SPACE], ['bayesnas', BAYESNAS_SPACE]] as const) {
  for (const onDead of ['reattach', 'shrink'] as const) {
    test(`${name} space, ${onDead}: random γ never leave a dangling node; sources are earlier live states (spec §10.17)`, (t) => {
      for (const kind of ['normal', 'reduce'] as const) {
        const edges = space.edges[kind];
        for (let seed = 0; seed < 300; seed++) {
          const g = randomGammas(edges.length, ops.length, seed, 0.5);
          const cell = deriveCell(edges, ops, 4, g, { onDead, tauEdge: 0.3, tauOp: 0.3 });
          const live = new Set([0, 1, ...cell.concat]);
          cell.nodes.forEach((entries, n) => {
            for (const e of entries) {
              t.true(e.input < n + 2, 'acyclic');
              t.true(live.has(e.input), `node ${n + 2} reads dead state ${e.input}`);
              t.true(edges.some((c) => c.node === n && c.source === e.input), 'only candidate edges');
              t.not(e.op, 'none');
            }
            t.is(entries.length > 0, cell.concat.includes(n + 2), 'a node is in the concat exactly when it has inputs');
          });
          if (onDead === 'reattach') t.deepEqual(cell.concat, [2, 3, 4, 5], 'output shape kept');
        }
      }
      t.pass();
    });
  }
}

test('zero-op priority: a pruned origin takes all its ops, whatever their child γ (spec §10.18)', (t) => {
  const edges = DARTS_SPACE.edges.normal;
  const g = randomGammas(edges.length, ops.length, 7, 0);
  g.origin[0] = 0;   // edge (node 0, source 0)
  for (let k = 0; k < ops.length; k++) g.child[k] = 10;
  const cell = deriveCell(edges, ops, 4, g, { tauEdge: 0.05, tauOp: 0.05 });
  t.false(cell.nodes[0].some((e) => e.input === 0));
});

test('a node whose inputs are all pruned is dead and its outgoing edges go with it (Proposition 1)', (t) => {
  const edges = DARTS_SPACE.edges.normal;
  const g = { origin: new Float64Array(edges.length).fill(1), child: new Float64Array(edges.length * ops.length).fill(1) };
  edges.forEach((e, i) => { if (e.node === 0) g.origin[i] = 0; });   // node 0 (state 2) loses both inputs
  const cell = deriveCell(edges, ops, 4, g, { onDead: 'shrink', tauEdge: 0.5, tauOp: 0.5, relative: false });
  t.deepEqual(cell.nodes[0], []);
  t.false(cell.nodes.flat().some((e) => e.input === 2), 'no edge leaves the dead node');
  t.deepEqual(cell.concat, [3, 4, 5]);
  const re = deriveCell(edges, ops, 4, g, { onDead: 'reattach', tauEdge: 0.5, tauOp: 0.5, relative: false });
  t.is(re.nodes[0].length, 1, 'reattach keeps the best edge');
});

test('DARTS-compatible mode: exactly 2 inputs per node, one op each, never none; agrees with the DARTS parser on an unambiguous table (spec §10.19)', (t) => {
  const edges = DARTS_SPACE.edges.normal;
  const withNone = ['none', ...ops];
  const g = { origin: new Float64Array(edges.length), child: new Float64Array(edges.length * withNone.length) };
  // a table where ranking edges by γ_e and by the best non-none op weight agree
  edges.forEach((e, i) => {
    g.origin[i] = 1 + ((i * 7) % 5);
    withNone.forEach((op, k) => { g.child[i * withNone.length + k] = op === 'none' ? 100 : g.origin[i] * (k === 1 + (i % ops.length) ? 1 : 0.5); });
  });
  const cell = deriveCell(edges, withNone, 4, g, { mode: 'darts' });
  t.true(cell.nodes.every((n) => n.length === 2 && n.every((e) => e.op !== 'none')));
  // the DARTS parser: per node the 2 edges with the largest best-non-none weight, then that op
  for (let n = 0; n < 4; n++) {
    const cand = edges.map((e, i) => ({ e, i })).filter((c) => c.e.node === n).map((c) => {
      let best = 1;
      for (let k = 1; k < withNone.length; k++) if (g.child[c.i * withNone.length + k] > g.child[c.i * withNone.length + best]) best = k;
      return { src: c.e.source, w: g.child[c.i * withNone.length + best], op: withNone[best], i: c.i };
    }).sort((a, b) => b.w - a.w || a.i - b.i).slice(0, 2);
    t.deepEqual(cell.nodes[n], cand.map((c) => ({ op: c.op, input: c.src })));
  }
});

test('γ sizes are checked', (t) => {
  t.throws(() => deriveCell(DARTS_SPACE.edges.normal, ops, 4, { origin: [1], child: [1] }), { message: /do not match 14 edges × 7 ops/ });
});

test("'shrink' never leaves a cell without output: all-dead falls back to re-attaching", (t) => {
  const edges = DARTS_SPACE.edges.normal;
  const g = { origin: new Float64Array(edges.length), child: new Float64Array(edges.length * ops.length).fill(1) };
  const cell = deriveCell(edges, ops, 4, g, { onDead: 'shrink', tauEdge: 0.5, relative: false });
  t.deepEqual(cell.concat, [2, 3, 4, 5]);
  t.true(cell.nodes.every((n) => n.length === 1));
});
