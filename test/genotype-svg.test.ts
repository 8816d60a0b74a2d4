import test from 'ava';
import { execa } from 'execa';
import { PUBLISHED } from '../src/genotype/published.js';
import { cellToSvg, escapeXml, genotypeToSvgs, stateDepths } from '../src/genotype/svg.js';
import { entryCount, type CellGenotype } from '../src/genotype/types.js';

// ---------------------------------------------------------------------------------------------
// a tiny XML reader: enough to check well-formedness (balanced tags, quoted attributes, known
// entities, one root) and to query the result

interface El { name: string; attrs: Record<string, string>; children: El[]; text: string }

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
function decode(s: string, where: number): string {
  return s.replace(/&([^;&]*);?/g, (m, name: string) => {
    if (!m.endsWith(';')) throw new Error(`bare '&' at ${where}`);
    if (name in ENTITIES) return ENTITIES[name];
    const num = /^#(x[0-9a-fA-F]+|[0-9]+)$/.exec(name);
    if (num) return String.fromCodePoint(num[1][0] === 'x' ? parseInt(num[1].slice(1), 16) : Number(num[1]));
    throw new Error(`unknown entity &${name}; at ${where}`);
  });
}

function parseXml(src: string): El {
  const NAME = /^[A-Za-z_][\w.-]*/;
  const stack: El[] = [];
  let root: El | undefined;
  let i = 0;
  while (i < src.length) {
    const lt = src.indexOf('<', i);
    const text = src.slice(i, lt < 0 ? src.length : lt);
    if (text.includes('>')) throw new Error(`raw '>' in text at ${i}`);
    if (text.trim()) {
      if (!stack.length) throw new Error(`text outside the root at ${i}`);
      stack.at(-1)!.text += decode(text, i);
    }
    if (lt < 0) break;
    if (src.startsWith('<!--', lt)) { const e = src.indexOf('-->', lt); if (e < 0) throw new Error('open comment'); i = e + 3; continue; }
    if (src.startsWith('<?', lt)) { const e = src.indexOf('?>', lt); if (e < 0) throw new Error('open declaration'); i = e + 2; continue; }
    const gt = src.indexOf('>', lt);
    if (gt < 0) throw new Error(`unclosed tag at ${lt}`);
    const tag = src.slice(lt + 1, gt);
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (!open || open.name !== name) throw new Error(`</${name}> at ${lt} closes <${open?.name ?? 'nothing'}>`);
      i = gt + 1;
      continue;
    }
    const selfClosing = tag.endsWith('/');
    let body = selfClosing ? tag.slice(0, -1) : tag;
    const name = NAME.exec(body)?.[0];
    if (!name) throw new Error(`bad tag name at ${lt}`);
    body = body.slice(name.length);
    const attrs: Record<string, string> = {};
    for (;;) {
      const m = /^\s+([A-Za-z_:][\w.:-]*)="([^"<]*)"/.exec(body);
      if (!m) break;
      if (m[1] in attrs) throw new Error(`attribute ${m[1]} twice at ${lt}`);
      attrs[m[1]] = decode(m[2], lt);
      body = body.slice(m[0].length);
    }
    if (body.trim()) throw new Error(`malformed attributes at ${lt}: '${body.trim()}'`);
    const el: El = { name, attrs, children: [], text: '' };
    if (stack.length) stack.at(-1)!.children.push(el);
    else if (root) throw new Error(`second root element at ${lt}`);
    else root = el;
    if (!selfClosing) stack.push(el);
    i = gt + 1;
  }
  if (stack.length) throw new Error(`unclosed <${stack.at(-1)!.name}>`);
  if (!root) throw new Error('no root element');
  return root;
}

const all = (el: El): El[] => [el, ...el.children.flatMap(all)];
const byClass = (root: El, cls: string) => all(root).filter((e) => (e.attrs.class ?? '').split(' ').includes(cls));
const sorted = (xs: string[]) => [...xs].sort();

/** Python's XML parser as a second opinion, where a python3 is on the PATH. */
async function pythonAccepts(svg: string): Promise<boolean | undefined> {
  try {
    const r = await execa('python3', ['-c', 'import sys, xml.etree.ElementTree as E; E.fromstring(sys.stdin.buffer.read())'], { input: svg, reject: false });
    return r.exitCode === 0;
  } catch {
    return undefined;
  }
}

test('the XML checkers reject what they must', async (t) => {
  t.notThrows(() => parseXml('<a x="1"><b/>t &amp; &#x3c;</a>'));
  for (const bad of ['<a><b></a></b>', '<a>', '<a x=1/>', '<a x="1" x="2"/>', '<a>&nbsp;</a>', '<a>x & y</a>', '<a/><b/>', '<a>></a>', '<a x="<"/>']) {
    t.throws(() => parseXml(bad), undefined, bad);
  }
  const py = await pythonAccepts('<a><b></a></b>');
  if (py !== undefined) t.false(py, 'python3 refuses crossed tags');
  else t.log('python3 not found: the tiny checker alone');
});

const CELLS = Object.entries(PUBLISHED).flatMap(([name, { genotype }]) =>
  (['normal', 'reduce'] as const).map((kind) => ({ label: `${name} ${kind}`, cell: genotype[kind], name, kind })));

for (const { label, cell, name, kind } of CELLS) {
  test(`${label}: well-formed, one labelled arrow per entry, one node per state, dashed concat`, async (t) => {
    const svg = genotypeToSvgs(PUBLISHED[name].genotype)[kind];
    const root = parseXml(svg);
    t.is(root.name, 'svg');
    t.is(root.attrs.xmlns, 'http://www.w3.org/2000/svg');
    const py = await pythonAccepts(svg);
    if (py !== undefined) t.true(py, 'python3 xml.etree parses it');

    const want = cell.nodes.flatMap((n, j) => n.map((e) => `${e.op} ${e.input}->${j + 2}`));
    const edges = byClass(root, 'edge');
    t.is(edges.length, entryCount(cell));
    t.deepEqual(sorted(edges.map((e) => `${e.attrs['data-op']} ${e.attrs['data-from']}->${e.attrs['data-to']}`)), sorted(want));
    t.true(edges.every((e) => e.name === 'path' && /^M[-\d.]+,[-\d.]+ Q[-\d.]+,[-\d.]+ [-\d.]+,[-\d.]+$/.test(e.attrs.d) && e.attrs['marker-end']?.startsWith('url(#')));
    const labels = byClass(root, 'edge-label');
    t.deepEqual(sorted(labels.map((e) => `${e.text} ${e.attrs['data-from']}->${e.attrs['data-to']}`)), sorted(want));

    const nodes = byClass(root, 'node');
    t.deepEqual(nodes.map((e) => e.attrs['data-state']), ['0', '1', ...cell.nodes.map((_, j) => String(j + 2)), 'out']);
    t.deepEqual(nodes.map((e) => e.children.find((c) => c.name === 'text')!.text),
      ['c_{k-2}', 'c_{k-1}', ...cell.nodes.map((_, j) => `n${j}`), 'c_{k}']);

    const concat = byClass(root, 'concat');
    t.deepEqual(concat.map((e) => Number(e.attrs['data-from'])), cell.concat);
    t.true(concat.every((e) => e.attrs['stroke-dasharray'] !== undefined));
    t.true(edges.every((e) => e.attrs['stroke-dasharray'] === undefined));

    // every marker an arrow refers to exists
    const ids = new Set(all(root).map((e) => e.attrs.id).filter(Boolean));
    for (const e of [...edges, ...concat]) t.true(ids.has(/^url\(#(.*)\)$/.exec(e.attrs['marker-end'])![1]));
  });

  test(`${label}: layout — columns by depth, no overlapping nodes, everything inside the view box`, (t) => {
    const root = parseXml(cellToSvg(cell, label));
    const depth = stateDepths(cell);
    const nodes = byClass(root, 'node');
    const rect = (e: El) => { const r = e.children.find((c) => c.name === 'rect')!.attrs; return { x: +r.x, y: +r.y, w: +r.width, h: +r.height }; };
    const box = new Map(nodes.map((e) => [e.attrs['data-state'], rect(e)]));
    // depth = longest path from the inputs; x grows with depth; the output is rightmost
    t.deepEqual(nodes.slice(0, -1).map((e) => Number(e.attrs['data-depth'])), depth);
    for (const [j, node] of cell.nodes.entries()) {
      if (node.length) t.is(depth[j + 2], 1 + Math.max(...node.map((e) => depth[e.input])));
      for (const e of node) t.true(box.get(String(e.input))!.x < box.get(String(j + 2))!.x);
    }
    t.true([...box.values()].every((b) => b.x <= box.get('out')!.x));
    t.is(box.get('0')!.x, box.get('1')!.x);
    t.true(box.get('0')!.y < box.get('1')!.y, 'c_{k-2} above c_{k-1}');
    const bs = [...box.values()];
    for (let a = 0; a < bs.length; a++) {
      for (let b = a + 1; b < bs.length; b++) {
        const ov = bs[a].x < bs[b].x + bs[b].w && bs[b].x < bs[a].x + bs[a].w && bs[a].y < bs[b].y + bs[b].h && bs[b].y < bs[a].y + bs[a].h;
        t.false(ov, `nodes ${a} and ${b} overlap`);
      }
    }
    const [vx, vy, vw, vh] = root.attrs.viewBox.split(' ').map(Number);
    for (const b of bs) t.true(b.x >= vx && b.y >= vy && b.x + b.w <= vx + vw && b.y + b.h <= vy + vh);
    for (const l of byClass(root, 'edge-label')) t.true(+l.attrs.x > vx && +l.attrs.x < vx + vw && +l.attrs.y > vy && +l.attrs.y < vy + vh);
  });
}

test('deterministic: the same cell gives the same bytes; a different cell does not', (t) => {
  const g = PUBLISHED.BAYESNAS_LAMBDA_0_007.genotype;
  const a = genotypeToSvgs(g), b = genotypeToSvgs(structuredClone(g));
  t.is(a.normal, b.normal);
  t.is(a.reduce, b.reduce);
  t.not(a.normal, a.reduce);
  t.not(cellToSvg(g.normal, 'x'), cellToSvg(PUBLISHED.BAYESNAS_LAMBDA_0_005.genotype.normal, 'x'));
  t.notRegex(a.normal, /NaN|undefined|Infinity|-0[ ,"]/);
});

test('text is escaped: a title and op names with XML specials survive', (t) => {
  const title = 'λ<0.01> & "quotes" \'too\'';
  const cell: CellGenotype = { nodes: [[{ op: 'a<b>&c', input: 0 }, { op: "it's \"x\"", input: 1 }]], concat: [2] };
  const svg = cellToSvg(cell, title);
  const root = parseXml(svg);
  t.is(root.children.find((c) => c.name === 'title')!.text, title);
  t.is(byClass(root, 'title')[0].text, title);
  t.deepEqual(byClass(root, 'edge-label').map((e) => e.text), ['a<b>&c', "it's \"x\""]);
  t.deepEqual(byClass(root, 'edge').map((e) => e.attrs['data-op']), ['a<b>&c', "it's \"x\""]);
  t.is(escapeXml('<&>"\'\u0001'), '&lt;&amp;&gt;&quot;&apos;\ufffd');
});

test('several ops on one input are separate curves, fanned apart', (t) => {
  const cell = PUBLISHED.BAYESNAS_LAMBDA_0_007.genotype.reduce;  // node 0: four ops on c_{k-2}, two on c_{k-1}
  const root = parseXml(cellToSvg(cell, 't'));
  const fromK2 = byClass(root, 'edge').filter((e) => e.attrs['data-from'] === '0' && e.attrs['data-to'] === '2');
  t.is(fromK2.length, 4);
  t.is(new Set(fromK2.map((e) => e.attrs.d)).size, 4, 'distinct paths');
  const labels = byClass(root, 'edge-label').filter((e) => e.attrs['data-from'] === '0' && e.attrs['data-to'] === '2');
  t.is(new Set(labels.map((e) => `${e.attrs.x},${e.attrs.y}`)).size, 4, 'distinct label spots');
});

test('a dead node is drawn dashed and unconnected; an invalid cell is refused', (t) => {
  const cell: CellGenotype = { nodes: [[{ op: 'skip_connect', input: 1 }], [], [{ op: 'max_pool_3x3', input: 2 }]], concat: [2, 4] };
  const root = parseXml(cellToSvg(cell, 'dead'));
  const dead = byClass(root, 'dead');
  t.is(dead.length, 1);
  t.is(dead[0].attrs['data-state'], '3');
  t.false(byClass(root, 'edge').some((e) => e.attrs['data-from'] === '3' || e.attrs['data-to'] === '3'));
  t.throws(() => cellToSvg({ nodes: [[{ op: 'x', input: 2 }]], concat: [2] }, 'bad'), { message: /cellToSvg: node 0 \(state 2\), entry 0 input: input 2 of node 0 is not an earlier state \(0\.\.1\)/ });
});

test('random cells: always well-formed, counts right (200 cells)', async (t) => {
  let a = 12345;
  const r = () => ((a = (Math.imul(a, 1103515245) + 12345) >>> 0) / 4294967296);
  const ops = ['sep_conv_3x3', 'max_pool_3x3', 'skip_connect', 'x&y'];
  let checkedByPython = 0;
  for (let k = 0; k < 200; k++) {
    const n = 1 + Math.floor(r() * 7);
    const nodes = Array.from({ length: n }, (_, i) => Array.from({ length: 1 + Math.floor(r() * 4) }, () => ({ op: ops[Math.floor(r() * ops.length)], input: Math.floor(r() * (i + 2)) })));
    const cell: CellGenotype = { nodes, concat: nodes.map((_, i) => i + 2).filter(() => r() < 0.6) };
    if (!cell.concat.length) cell.concat.push(n + 1);
    const svg = cellToSvg(cell, `random ${k}`);
    const root = parseXml(svg);
    t.is(byClass(root, 'edge').length, entryCount(cell));
    t.is(byClass(root, 'edge-label').length, entryCount(cell));
    t.is(byClass(root, 'node').length, n + 3);
    t.is(byClass(root, 'concat').length, cell.concat.length);
    if (k % 50 === 0) {
      const py = await pythonAccepts(svg);
      if (py !== undefined) { t.true(py); checkedByPython++; }
    }
  }
  t.log(`python3 xml.etree also checked ${checkedByPython} of them`);
});
