// Drawing a cell as SVG, without graphviz. Columns by depth: the inputs c_{k-2}, c_{k-1} at depth 0,
// intermediate node j at 1 + the largest depth of its inputs (the longest path from the inputs),
// the output c_{k} one column right of the deepest node. Every (op, input) entry is its own arrow,
// labelled with the op; several ops on the same input fan out as curves side by side. Dashed arrows
// carry the concatenated states into the output. Pure string building: the same cell and title
// give the same bytes.
import { CELL_INPUTS, validateCell, type CellGenotype, type Genotype } from './types.js';

const NODE_W = 84, NODE_H = 34;
const COL_W = 240, ROW_H = 125;
const MARGIN = 20, TITLE_H = 34;
const FAN = 20;         // sideways distance between parallel arrows at their middle
const BOW = 0.45;       // sideways bow, in rows per skipped column, of arrows that skip columns
const CHAR_W = 6.6, LABEL_H = 14;   // label box estimate at font-size 12
const FONT = 'Helvetica, Arial, sans-serif';
const CONCAT_COLOUR = '#444444';

const COLOURS: Array<[RegExp, string]> = [
  [/^sep_conv/, '#1f5fa8'],
  [/^dil_conv/, '#7b3fa0'],
  [/^max_pool/, '#1d7a43'],
  [/^avg_pool/, '#4f9a2f'],
  [/^(skip_connect|identity|ident)$/, '#555555'],
  [/^none$/, '#aaaaaa'],
];
const opColour = (op: string) => COLOURS.find(([re]) => re.test(op))?.[1] ?? '#a0522d';

/** XML text and attribute escaping; characters XML 1.0 forbids become U+FFFD. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!)
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '\ufffd');
}

/** A coordinate with at most one decimal, never "-0". */
const f = (n: number) => {
  const r = Math.round(n * 10) / 10;
  return String(Object.is(r, -0) ? 0 : r);
};

/** Depth of every state: the inputs 0, node j 1 + the largest depth of its inputs (a dead node: 1). */
export function stateDepths(cell: CellGenotype): number[] {
  const depth = [0, 0];
  for (const node of cell.nodes) depth.push(1 + Math.max(0, ...node.map((e) => depth[e.input])));
  return depth;
}

interface Point { x: number; y: number }
interface Box { x0: number; y0: number; x1: number; y1: number }

const overlap = (a: Box, b: Box) =>
  Math.max(0, Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0)) * Math.max(0, Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0));

/** The SVG drawing of one cell. */
export function cellToSvg(cell: CellGenotype, title: string): string {
  validateCell(cell, 'cellToSvg');
  const depth = stateDepths(cell);
  const outCol = Math.max(...depth) + 1;
  const columns: number[][] = Array.from({ length: outCol + 1 }, () => []);
  depth.forEach((d, s) => columns[d].push(s));

  // node centres: column by depth, rows centred on y = 0, in state order
  const at: Point[] = [];
  columns.forEach((col, c) => col.forEach((s, i) => { at[s] = { x: c * COL_W, y: (i - (col.length - 1) / 2) * ROW_H }; }));
  const out: Point = { x: outCol * COL_W, y: 0 };

  const bounds: Box = { x0: -NODE_W / 2, y0: -NODE_H / 2, x1: out.x + NODE_W / 2, y1: NODE_H / 2 };
  const grow = (b: Box) => {
    bounds.x0 = Math.min(bounds.x0, b.x0); bounds.y0 = Math.min(bounds.y0, b.y0);
    bounds.x1 = Math.max(bounds.x1, b.x1); bounds.y1 = Math.max(bounds.y1, b.y1);
  };

  /**
   * A quadratic curve from the right side of `a` to the left side of `b`, moved sideways by `bend`
   * px at its middle. Arrows that skip columns also bow away from the middle row, around the nodes
   * in between.
   */
  const curve = (a: Point, b: Point, bend: number) => {
    const p0 = { x: a.x + NODE_W / 2, y: a.y }, p2 = { x: b.x - NODE_W / 2 - 2, y: b.y };
    const dx = p2.x - p0.x, dy = p2.y - p0.y, len = Math.hypot(dx, dy) || 1;
    const nx = -dy / len, ny = dx / len;   // dx > 0, so ny > 0: a positive offset goes down
    const mid = { x: (p0.x + p2.x) / 2, y: (p0.y + p2.y) / 2 };
    const span = Math.round((b.x - a.x) / COL_W);
    const bow = span > 1 ? (mid.y > 0.5 ? 1 : -1) * (span - 1) * ROW_H * BOW : 0;
    const k = 2 * (bend + bow);
    const p1 = { x: mid.x + k * nx, y: mid.y + k * ny };
    const point = (t: number): Point => ({
      x: (1 - t) ** 2 * p0.x + 2 * t * (1 - t) * p1.x + t ** 2 * p2.x,
      y: (1 - t) ** 2 * p0.y + 2 * t * (1 - t) * p1.y + t ** 2 * p2.y,
    });
    for (let i = 0; i <= 10; i++) { const p = point(i / 10); grow({ x0: p.x, y0: p.y - 4, x1: p.x, y1: p.y + 4 }); }
    return { d: `M${f(p0.x)},${f(p0.y)} Q${f(p1.x)},${f(p1.y)} ${f(p2.x)},${f(p2.y)}`, point };
  };

  // labels: the first spot along the arrow, from its middle outwards, whose box hits no node and
  // no label placed before (else the spot with the least overlap)
  const taken: Box[] = [...at, out].map((p) => ({ x0: p.x - NODE_W / 2 - 2, y0: p.y - NODE_H / 2 - 2, x1: p.x + NODE_W / 2 + 2, y1: p.y + NODE_H / 2 + 2 }));
  const placeLabel = (text: string, point: (t: number) => Point): Point => {
    const w = text.length * CHAR_W + 6;
    let best: { p: Point; cost: number; box: Box } | undefined;
    for (const t of [0.5, 0.42, 0.58, 0.34, 0.66, 0.27, 0.73, 0.2, 0.8]) {
      const p = point(t);
      const box = { x0: p.x - w / 2, y0: p.y - LABEL_H / 2, x1: p.x + w / 2, y1: p.y + LABEL_H / 2 };
      const cost = taken.reduce((c, b) => c + overlap(box, b), 0);
      if (!best || cost < best.cost) best = { p, cost, box };
      if (cost === 0) break;
    }
    taken.push(best!.box);
    grow(best!.box);
    return best!.p;
  };

  const id = title.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '') || 'cell';
  const marker = (c: string) => `url(#${id}-arrow-${c.slice(1)})`;
  const colours = [...new Set([CONCAT_COLOUR, ...cell.nodes.flat().map((e) => opColour(e.op))])].sort();

  const concatEdges = cell.concat.map((s) =>
    `<path class="concat" data-from="${s}" d="${curve(at[s], out, 0).d}" fill="none" stroke="${CONCAT_COLOUR}" stroke-width="1.2" stroke-dasharray="5 4" marker-end="${marker(CONCAT_COLOUR)}"/>`);

  // op edges, one per entry; the entries of a node that share an input fan out around the chord
  const edges: string[] = [], labels: string[] = [];
  cell.nodes.forEach((node, j) => {
    const target = j + CELL_INPUTS;
    const byInput = new Map<number, string[]>();
    for (const e of node) byInput.set(e.input, [...(byInput.get(e.input) ?? []), e.op]);
    for (const [input, ops] of [...byInput].sort((a, b) => a[0] - b[0])) {
      ops.forEach((op, m) => {
        const { d, point } = curve(at[input], at[target], (m - (ops.length - 1) / 2) * FAN);
        const p = placeLabel(op, point);
        const c = opColour(op);
        const attrs = `data-op="${escapeXml(op)}" data-from="${input}" data-to="${target}"`;
        edges.push(`<path class="edge" ${attrs} d="${d}" fill="none" stroke="${c}" stroke-width="1.5" marker-end="${marker(c)}"/>`);
        labels.push(`<text class="edge-label" ${attrs} x="${f(p.x)}" y="${f(p.y)}" text-anchor="middle" dominant-baseline="central" fill="${c}" stroke="#ffffff" stroke-width="3" paint-order="stroke">${escapeXml(op)}</text>`);
      });
    }
  });

  const box = (cls: string, state: string, d: number, p: Point, label: string, fill: string, tip: string, dashed = false) =>
    `<g class="node ${cls}" data-state="${state}" data-depth="${d}"><title>${escapeXml(tip)}</title>`
    + `<rect x="${f(p.x - NODE_W / 2)}" y="${f(p.y - NODE_H / 2)}" width="${NODE_W}" height="${NODE_H}" rx="6" fill="${fill}" stroke="#333333"${dashed ? ' stroke-dasharray="4 3"' : ''}/>`
    + `<text x="${f(p.x)}" y="${f(p.y)}" text-anchor="middle" dominant-baseline="central">${escapeXml(label)}</text></g>`;
  const nodes = [
    box('input', '0', 0, at[0], 'c_{k-2}', '#c1ffc1', 'input c_{k-2} (state 0)'),
    box('input', '1', 0, at[1], 'c_{k-1}', '#c1ffc1', 'input c_{k-1} (state 1)'),
    ...cell.nodes.map((node, j) => {
      const s = j + CELL_INPUTS, dead = node.length === 0;
      return box(dead ? 'intermediate dead' : 'intermediate', String(s), depth[s], at[s], `n${j}`, dead ? '#eeeeee' : '#add8e6',
        `node ${j} (state ${s})${dead ? ', no inputs' : ''}`, dead);
    }),
    box('output', 'out', outCol, out, 'c_{k}', '#eee8aa', `output c_{k} = concat(${cell.concat.join(', ')})`),
  ];

  // frame: everything drawn, a margin, and the title above
  const x0 = bounds.x0 - MARGIN, y0 = bounds.y0 - MARGIN - TITLE_H;
  const width = bounds.x1 - bounds.x0 + 2 * MARGIN, height = bounds.y1 - bounds.y0 + 2 * MARGIN + TITLE_H;
  const vb = `${f(x0)} ${f(y0)} ${f(width)} ${f(height)}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${f(width)}" height="${f(height)}" viewBox="${vb}" font-family="${FONT}" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    '<defs>',
    ...colours.map((c) => `<marker id="${id}-arrow-${c.slice(1)}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="${c}"/></marker>`),
    '</defs>',
    `<rect x="${f(x0)}" y="${f(y0)}" width="${f(width)}" height="${f(height)}" fill="#ffffff"/>`,
    `<text class="title" x="${f(x0 + width / 2)}" y="${f(y0 + MARGIN / 2 + TITLE_H / 2)}" text-anchor="middle" dominant-baseline="central" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    '<g class="concat-edges">', ...concatEdges, '</g>',
    '<g class="edges">', ...edges, '</g>',
    '<g class="nodes">', ...nodes, '</g>',
    '<g class="edge-labels">', ...labels, '</g>',
    '</svg>',
    '',
  ].join('\n');
}

/** Both cells of a genotype, titled with its name. */
export function genotypeToSvgs(g: Genotype): { normal: string; reduce: string } {
  const name = g.name ?? 'genotype';
  return { normal: cellToSvg(g.normal, `${name}: normal cell`), reduce: cellToSvg(g.reduce, `${name}: reduction cell`) };
}
