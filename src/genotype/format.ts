// Genotype spellings (architecture.md "Genotypes"; spec §7.3):
//  * the DARTS Python repr, `Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5],
//    reduce=[...], reduce_concat=range(2, 6))`, flat with 2 entries per node as DARTS prints it, or
//    grouped, one list per node, `normal=[[('sep_conv_5x5', 1), ('max_pool_3x3', 0)], [...], ...]`,
//    for BayesNAS cells whose nodes have any number of entries;
//  * JSON, `{"normal": {"nodes": [[{"op": .., "input": ..}, ...], ...], "concat": [...]}, "reduce": ..., "name": ...}`.
// Readers report the 1-based line and column (repr) or the JSON path of the first problem.
import {
  CELL_KINDS, GenotypeError, genotypeIssues, stateName,
  type CellGenotype, type CellKind, type Genotype, type GenotypeEntry, type Issue, type IssuePath, type ValidateOptions,
  validateGenotype,
} from './types.js';

export interface ParseOptions extends ValidateOptions {
  /**
   * Nodes per cell for the flat form. Without it a flat list is read as DARTS pairs and must have
   * an even length; with it, the flat list is split into `steps` nodes of equal size.
   */
  steps?: number | Partial<Record<CellKind, number>>;
}

/** A reader error at a place in the text: `line` and `column` are 1-based. */
export class GenotypeParseError extends GenotypeError {
  constructor(readonly where: string, readonly reason: string, readonly offset: number, readonly line: number,
    readonly column: number, excerpt: string, path: IssuePath = {}) {
    super(`${where}: line ${line}, column ${column}: ${reason}${excerpt ? `\n${excerpt}` : ''}`, path);
    this.name = 'GenotypeParseError';
  }
}

/** A JSON reader error at a JSON path such as `$.normal.nodes[2][1].input`. */
export class GenotypeJsonError extends GenotypeError {
  constructor(readonly where: string, readonly jsonPath: string, readonly reason: string, path: IssuePath = {}) {
    super(`${where}: ${jsonPath}: ${reason}`, path);
    this.name = 'GenotypeJsonError';
  }
}

// ---------------------------------------------------------------------------------------------
// positions

function lineCol(text: string, offset: number): { line: number; column: number; lineStart: number } {
  let line = 1, lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) if (text[i] === '\n') { line++; lineStart = i + 1; }
  return { line, column: offset - lineStart + 1, lineStart };
}

/** The line holding `offset`, cut to a window around it, and a caret under the offset. */
function caretExcerpt(text: string, offset: number): string {
  const { lineStart } = lineCol(text, offset);
  let lineEnd = text.indexOf('\n', lineStart);
  if (lineEnd < 0) lineEnd = text.length;
  const line = text.slice(lineStart, lineEnd).replace(/\r$/, '').replace(/\t/g, ' ');
  const col = Math.min(offset - lineStart, line.length);
  const from = Math.max(0, col - 60), to = Math.min(line.length, col + 30);
  const head = from > 0 ? '…' : '', tail = to < line.length ? '…' : '';
  return `  ${head}${line.slice(from, to)}${tail}\n  ${' '.repeat(head.length + col - from)}^`;
}

function errorAt(text: string, where: string, offset: number, reason: string, path: IssuePath = {}): GenotypeParseError {
  const { line, column } = lineCol(text, offset);
  return new GenotypeParseError(where, reason, offset, line, column, caretExcerpt(text, offset), path);
}

// ---------------------------------------------------------------------------------------------
// tokens of the Python literal subset

type TokKind = '(' | ')' | '[' | ']' | ',' | '=' | '.' | 'name' | 'string' | 'int' | 'eof';
interface Token { kind: TokKind; start: number; end: number; value?: string | number; raw?: string }

const describeTok = (t: Token): string =>
  t.kind === 'eof' ? 'the end of the text'
    : t.kind === 'name' ? `'${t.value}'`
      : t.kind === 'string' ? `the string ${t.raw}`
        : t.kind === 'int' ? `the number ${t.value}`
          : `'${t.kind}'`;

/** Lexer: one token per call, so that a syntax error before a later bad token is reported first. */
function lexer(text: string, where: string): () => Token {
  let i = 0;
  const n = text.length;
  return () => {
    while (i < n) {
      const c = text[i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f') { i++; continue; }
      if (c === '\\' && (text[i + 1] === '\n' || (text[i + 1] === '\r' && text[i + 2] === '\n'))) { i += text[i + 1] === '\n' ? 2 : 3; continue; }
      if (c === '#') { while (i < n && text[i] !== '\n') i++; continue; }
      if ('()[],=.'.includes(c)) { i++; return { kind: c as TokKind, start: i - 1, end: i }; }
      if (c === "'" || c === '"') {
        const start = i;
        let value = '';
        i++;
        for (;;) {
          if (i >= n || text[i] === '\n' || text[i] === '\r') {
            throw errorAt(text, where, start, `unterminated string: no closing ${c} before the end of the line`);
          }
          const d = text[i];
          if (d === c) { i++; break; }
          if (d === '\\' && i + 1 < n) {
            const e = text[i + 1];
            const simple: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', n: '\n', t: '\t', r: '\r', '0': '\0' };
            if (e in simple) { value += simple[e]; i += 2; continue; }
            const hex = e === 'x' ? 2 : e === 'u' ? 4 : 0;
            if (hex && new RegExp(`^[0-9a-fA-F]{${hex}}$`).test(text.slice(i + 2, i + 2 + hex))) {
              value += String.fromCharCode(parseInt(text.slice(i + 2, i + 2 + hex), 16));
              i += 2 + hex;
              continue;
            }
            value += d;  // Python keeps unknown escapes as written
            i++;
            continue;
          }
          value += d;
          i++;
        }
        return { kind: 'string', start, end: i, value, raw: text.slice(start, i) };
      }
      if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(text[i + 1] ?? ''))) {
        const m = /^-?[0-9]+/.exec(text.slice(i))!;
        if (/^[A-Za-z_.]/.test(text[i + m[0].length] ?? '')) throw errorAt(text, where, i, `expected an integer, found '${/^[-\w.]+/.exec(text.slice(i))![0]}'`);
        i += m[0].length;
        return { kind: 'int', start: i - m[0].length, end: i, value: Number(m[0]), raw: m[0] };
      }
      if (/[A-Za-z_]/.test(c)) {
        const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))!;
        i += m[0].length;
        return { kind: 'name', start: i - m[0].length, end: i, value: m[0] };
      }
      throw errorAt(text, where, i, `unexpected character '${c}'`);
    }
    return { kind: 'eof', start: n, end: n };
  };
}

// ---------------------------------------------------------------------------------------------
// syntax tree of the Python literal subset: lists, tuples, strings, integers, dotted names, calls

type Expr =
  | { k: 'list'; items: Expr[]; start: number; end: number }
  | { k: 'tuple'; items: Expr[]; start: number; end: number }
  | { k: 'str'; value: string; start: number; end: number }
  | { k: 'int'; value: number; start: number; end: number }
  | { k: 'name'; value: string; start: number; end: number }
  | { k: 'call'; callee: string; args: Arg[]; start: number; open: number; end: number };
interface Arg { key?: string; keyStart: number; value: Expr }

class Parser {
  private pos = 0;
  private readonly toks: Token[] = [];
  private readonly lex: () => Token;
  constructor(private readonly text: string, private readonly where: string) { this.lex = lexer(text, where); }

  peek(ahead = 0): Token {
    while (this.toks.length <= this.pos + ahead && this.toks.at(-1)?.kind !== 'eof') this.toks.push(this.lex());
    return this.toks[Math.min(this.pos + ahead, this.toks.length - 1)];
  }
  next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.pos++;
    return t;
  }

  fail(t: Token, expected: string): never {
    let reason = `expected ${expected}, found ${describeTok(t)}`;
    const prev = this.toks[this.pos - 1];
    // `('sep_conv_3x3, 0), ('skip_connect', 1)`: a quote left out makes the next name look stray
    if (prev?.kind === 'string' && t.kind === 'name' && /[,()[\]]/.test(String(prev.value))) {
      const { line, column } = lineCol(this.text, prev.start);
      reason += ` (the string at line ${line}, column ${column} may be missing its closing quote)`;
    }
    throw errorAt(this.text, this.where, t.start, reason);
  }

  expect(kind: TokKind, expected = `'${kind}'`): Token {
    const t = this.peek();
    if (t.kind !== kind) this.fail(t, expected);
    return this.next();
  }

  expr(): Expr {
    const t = this.peek();
    switch (t.kind) {
      case 'string': this.next(); return { k: 'str', value: t.value as string, start: t.start, end: t.end };
      case 'int': this.next(); return { k: 'int', value: t.value as number, start: t.start, end: t.end };
      case '[': {
        this.next();
        const items = this.seq(']');
        return { k: 'list', items: items.items, start: t.start, end: items.end };
      }
      case '(': {
        this.next();
        const items = this.seq(')');
        if (items.items.length === 1 && !items.trailingComma) return items.items[0];
        return { k: 'tuple', items: items.items, start: t.start, end: items.end };
      }
      case 'name': {
        this.next();
        let name = t.value as string;
        while (this.peek().kind === '.') {
          this.next();
          name += `.${this.expect('name', 'a name after \'.\'').value as string}`;
        }
        if (this.peek().kind !== '(') return { k: 'name', value: name, start: t.start, end: this.toks[this.pos - 1].end };
        const open = this.next().start;
        const args: Arg[] = [];
        for (;;) {
          if (this.peek().kind === ')') break;
          const keyTok = this.peek();
          if (keyTok.kind === 'name' && this.peek(1).kind === '=') {
            this.next(); this.next();
            args.push({ key: keyTok.value as string, keyStart: keyTok.start, value: this.expr() });
          } else {
            args.push({ keyStart: keyTok.start, value: this.expr() });
          }
          const sep = this.peek();
          if (sep.kind === ',') { this.next(); continue; }
          if (sep.kind === ')') break;
          this.fail(sep, "')' or ','");
        }
        const close = this.next();
        return { k: 'call', callee: name, args, start: t.start, open, end: close.end };
      }
      default:
        return this.fail(t, 'a value (a list, a tuple, a string, a number or a call)');
    }
  }

  /** items up to the closing bracket, which it consumes */
  private seq(close: ')' | ']'): { items: Expr[]; end: number; trailingComma: boolean } {
    const items: Expr[] = [];
    let trailingComma = false;
    for (;;) {
      if (this.peek().kind === close) break;
      items.push(this.expr());
      trailingComma = false;
      const sep = this.peek();
      if (sep.kind === ',') { this.next(); trailingComma = true; continue; }
      if (sep.kind === close) break;
      this.fail(sep, `'${close}' or ','`);
    }
    return { items, end: this.next().end, trailingComma };
  }
}

// ---------------------------------------------------------------------------------------------
// DARTS repr reader

const FIELDS = ['normal', 'normal_concat', 'reduce', 'reduce_concat'] as const;
type Field = (typeof FIELDS)[number];

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  }
  return d[a.length][b.length];
}

interface CellPositions {
  cell: number;
  nodes: number[];
  entries: Array<Array<{ entry: number; op: number; input: number }>>;
  concatList: number;
  concat: number[];
}

/**
 * Reads a DARTS genotype repr: `[NAME =] [genotypes.]Genotype(normal=..., normal_concat=...,
 * reduce=..., reduce_concat=...)`, flat pairs or one list per node, concat as a list or `range(a, b)`.
 * Throws GenotypeParseError (line, column, caret) on malformed text or an invalid genotype.
 */
export function parseDartsRepr(text: string, where = 'genotype repr', opts: ParseOptions = {}): Genotype {
  const p = new Parser(text, where);
  const fail = (offset: number, reason: string, path: IssuePath = {}): never => { throw errorAt(text, where, offset, reason, path); };

  let name: string | undefined;
  if (p.peek().kind === 'name' && p.peek(1).kind === '=') {
    name = p.next().value as string;
    p.next();
  }
  const call = p.expr();
  const after = p.peek();
  if (after.kind !== 'eof') fail(after.start, `unexpected text after the end of the genotype: ${describeTok(after)}`);
  if (call.k !== 'call' || !/^(?:[A-Za-z_][A-Za-z0-9_]*\.)*Genotype$/.test(call.callee)) {
    fail(call.start, 'expected Genotype(normal=..., normal_concat=..., reduce=..., reduce_concat=...)');
  }
  const c = call as Extract<Expr, { k: 'call' }>;

  const fields = new Map<Field, Arg>();
  let sawKeyword = false;
  c.args.forEach((a, i) => {
    let field: Field;
    if (a.key === undefined) {
      if (sawKeyword) fail(a.value.start, 'positional argument after keyword arguments');
      if (i >= FIELDS.length) fail(a.value.start, `too many arguments: Genotype has ${FIELDS.length} fields (${FIELDS.join(', ')})`);
      field = FIELDS[i];
    } else {
      sawKeyword = true;
      if (!(FIELDS as readonly string[]).includes(a.key)) {
        const near = FIELDS.filter((f) => editDistance(f, a.key!) <= 2);
        fail(a.keyStart, `unknown field '${a.key}'${near.length ? ` (did you mean '${near[0]}'?)` : ''}; the fields are ${FIELDS.join(', ')}`);
      }
      field = a.key as Field;
    }
    if (fields.has(field)) fail(a.keyStart, `field '${field}' given twice`);
    fields.set(field, a);
  });
  for (const f of FIELDS) if (!fields.has(f)) fail(c.end - 1, `missing field '${f}'`);

  const pos = {} as Record<CellKind, CellPositions>;
  const stepsFor = (kind: CellKind) => (typeof opts.steps === 'number' ? opts.steps : opts.steps?.[kind]);

  const readEntry = (e: Expr): [GenotypeEntry, { entry: number; op: number; input: number }] => {
    if (e.k !== 'tuple') fail(e.start, "expected an (op, input) pair like ('sep_conv_3x3', 0)");
    const t = e as Extract<Expr, { k: 'tuple' }>;
    if (t.items.length !== 2) fail(t.start, `expected an (op, input) pair, found a tuple of ${t.items.length} item${t.items.length === 1 ? '' : 's'}`);
    const [op, input] = t.items;
    if (op.k !== 'str') fail(op.start, "expected the op name as a quoted string, like 'sep_conv_3x3'");
    if (input.k !== 'int') fail(input.start, 'expected the input state as an integer (0 = c_{k-2}, 1 = c_{k-1}, 2+j = node j)');
    return [{ op: (op as { value: string }).value, input: (input as { value: number }).value }, { entry: t.start, op: op.start, input: input.start }];
  };

  const readCell = (kind: CellKind): CellGenotype => {
    const v = fields.get(kind)!.value;
    if (v.k !== 'list') fail(v.start, `expected a list for '${kind}': flat (op, input) pairs or one list per node`);
    const list = v as Extract<Expr, { k: 'list' }>;
    const cp: CellPositions = { cell: list.start, nodes: [], entries: [], concatList: 0, concat: [] };
    pos[kind] = cp;
    const nodes: GenotypeEntry[][] = [];
    const grouped = list.items.length > 0 && list.items[0].k === 'list';
    const steps = stepsFor(kind);
    if (grouped) {
      for (const item of list.items) {
        if (item.k !== 'list') fail(item.start, 'expected a list of (op, input) pairs for this node, as for the nodes before it');
        const node: GenotypeEntry[] = [];
        const at: CellPositions['entries'][number] = [];
        for (const e of (item as Extract<Expr, { k: 'list' }>).items) {
          const [entry, epos] = readEntry(e);
          node.push(entry);
          at.push(epos);
        }
        nodes.push(node);
        cp.nodes.push(item.start);
        cp.entries.push(at);
      }
      if (steps !== undefined && nodes.length !== steps) fail(list.start, `expected ${steps} nodes in '${kind}' (steps), found ${nodes.length}`);
    } else {
      const flat = list.items.map((e) => {
        if (e.k === 'list') fail(e.start, 'expected an (op, input) pair, as for the entries before it (do not mix flat pairs and per-node lists)');
        return readEntry(e);
      });
      let perNode = 2;
      if (steps !== undefined) {
        if (!Number.isInteger(steps) || steps < 1 || flat.length % steps !== 0) {
          fail(list.start, `the flat list of '${kind}' has ${flat.length} entries, which cannot be split into ${steps} equal nodes (steps)`);
        }
        perNode = flat.length / steps;
      } else if (flat.length % 2 !== 0) {
        fail(list.start, `the flat list of '${kind}' has ${flat.length} entries, an odd number, so it cannot be split into DARTS pairs (2 per node); write one list per node ([[...], [...]]) or give the number of nodes (steps)`);
      }
      for (let i = 0; i < flat.length; i += perNode) {
        const chunk = flat.slice(i, i + perNode);
        nodes.push(chunk.map(([e]) => e));
        cp.nodes.push(chunk[0][1].entry);
        cp.entries.push(chunk.map(([, at]) => at));
      }
    }
    return { nodes, concat: readConcat(kind, `${kind}_concat`) };
  };

  const readConcat = (kind: CellKind, field: Field): number[] => {
    const v = fields.get(field)!.value;
    const cp = pos[kind];
    cp.concatList = v.start;
    const ints = (items: Expr[]) => items.map((e) => {
      if (e.k !== 'int') fail(e.start, `expected an integer state index in '${field}'`);
      return (e as { value: number }).value;
    });
    let expr = v;
    if (expr.k === 'call' && expr.callee === 'list' && expr.args.length === 1 && expr.args[0].key === undefined) expr = expr.args[0].value;
    if (expr.k === 'list' || expr.k === 'tuple') {
      cp.concat = expr.items.map((e) => e.start);
      return ints(expr.items);
    }
    if (expr.k === 'call' && expr.callee === 'range') {
      if (expr.args.length < 1 || expr.args.length > 3 || expr.args.some((a) => a.key !== undefined)) {
        fail(expr.start, 'expected range(stop), range(start, stop) or range(start, stop, step)');
      }
      const a = ints(expr.args.map((x) => x.value));
      const [start, stop, step] = a.length === 1 ? [0, a[0], 1] : [a[0], a[1], a[2] ?? 1];
      if (step === 0) fail(expr.args[2].value.start, 'range() step must not be zero');
      const out: number[] = [];
      for (let s = start; step > 0 ? s < stop : s > stop; s += step) out.push(s);
      cp.concat = out.map(() => expr.start);
      return out;
    }
    return fail(v.start, `expected a list of states or range(a, b) for '${field}'`);
  };

  const g: Genotype = { normal: readCell('normal'), reduce: readCell('reduce') };
  if (name !== undefined) g.name = name;

  const [issue] = genotypeIssues(g, opts);
  if (issue) {
    const cp = issue.path.cell ? pos[issue.path.cell] : undefined;
    const { node, entry, field, concat } = issue.path;
    let offset = c.start;
    if (cp) {
      offset = cp.cell;
      if (concat !== undefined) offset = cp.concat[concat] ?? cp.concatList;
      else if (node !== undefined && entry !== undefined) offset = cp.entries[node][entry][field ?? 'entry'];
      else if (node !== undefined) offset = cp.nodes[node];
      else if (/concat/.test(issue.message)) offset = cp.concatList;
    }
    fail(offset, `${issue.path.cell ? `${issue.path.cell} cell: ` : ''}${issue.message}`, issue.path);
  }
  return g;
}

// ---------------------------------------------------------------------------------------------
// DARTS repr writer

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A Python string literal, as Python's repr spells it. */
export function pyString(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = q;
  for (const ch of s) {
    if (ch === '\\') out += '\\\\';
    else if (ch === q) out += `\\${q}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f) out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + q;
}

const pair = (e: GenotypeEntry) => `(${pyString(e.op)}, ${e.input})`;

/** Flat DARTS pairs when every node of the cell has exactly 2 entries, else one list per node. */
export function cellToRepr(cell: CellGenotype): string {
  const flat = cell.nodes.every((n) => n.length === 2);
  return flat
    ? `[${cell.nodes.flat().map(pair).join(', ')}]`
    : `[${cell.nodes.map((n) => `[${n.map(pair).join(', ')}]`).join(', ')}]`;
}

export interface ReprOptions {
  /** prefix `NAME = ` when the genotype has a name that is a Python identifier (default true) */
  assign?: boolean;
}

/**
 * The DARTS repr: `Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])`.
 * Each cell is flat (pairs) when all its nodes have 2 entries, so DARTS genotypes come out exactly
 * as DARTS prints them (with concat as a list), and grouped otherwise.
 */
export function toDartsRepr(g: Genotype, opts: ReprOptions = {}): string {
  validateGenotype(g, 'toDartsRepr');
  const body = `Genotype(normal=${cellToRepr(g.normal)}, normal_concat=[${g.normal.concat.join(', ')}], `
    + `reduce=${cellToRepr(g.reduce)}, reduce_concat=[${g.reduce.concat.join(', ')}])`;
  return (opts.assign ?? true) && g.name !== undefined && IDENT.test(g.name) ? `${g.name} = ${body}` : body;
}

// ---------------------------------------------------------------------------------------------
// JSON

const CELL_KEYS = ['nodes', 'concat'];
const ROOT_KEYS = ['normal', 'reduce', 'name'];
const ENTRY_KEYS = ['op', 'input'];

/**
 * The JSON form, one node per line (no trailing newline, like JSON.stringify):
 * `{"normal": {"nodes": [[{"op": "sep_conv_3x3", "input": 0}, ...], ...], "concat": [2, 3, 4, 5]}, "reduce": {...}, "name": "..."}`.
 */
export function toJSON(g: Genotype): string {
  validateGenotype(g, 'toJSON');
  const cell = (c: CellGenotype) => [
    '{',
    '    "nodes": [',
    c.nodes.map((n) => `      [${n.map((e) => `{"op": ${JSON.stringify(e.op)}, "input": ${e.input}}`).join(', ')}]`).join(',\n'),
    '    ],',
    `    "concat": [${c.concat.join(', ')}]`,
    '  }',
  ].join('\n');
  const parts = [`  "normal": ${cell(g.normal)}`, `  "reduce": ${cell(g.reduce)}`];
  if (g.name !== undefined) parts.push(`  "name": ${JSON.stringify(g.name)}`);
  return `{\n${parts.join(',\n')}\n}`;
}

const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`);

export function jsonPathOf(p: IssuePath): string {
  let s = '$';
  if (p.cell) s += `.${p.cell}`;
  if (p.concat !== undefined) return `${s}.concat[${p.concat}]`;
  if (p.node !== undefined) s += `.nodes[${p.node}]`;
  if (p.entry !== undefined) s += `[${p.entry}]`;
  if (p.field) s += `.${p.field}`;
  return s;
}

/** Reads the JSON form; errors name the JSON path (`$.normal.nodes[2][1].input`). */
export function fromJSON(text: string, where = 'genotype.json', opts: ValidateOptions = {}): Genotype {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const m = /position (\d+)/.exec(msg);
    if (m) throw errorAt(text, where, Number(m[1]), `invalid JSON: ${msg.replace(/\s*\(line \d+ column \d+\)/, '')}`);
    throw new GenotypeError(`${where}: invalid JSON: ${msg}`);
  }
  const bad = (path: string, reason: string): never => { throw new GenotypeJsonError(where, path, reason); };
  const obj = (v: unknown, path: string, keys: string[], required: string[]): Record<string, unknown> => {
    if (!v || typeof v !== 'object' || Array.isArray(v)) bad(path, `expected an object, found ${kindOf(v)}`);
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!keys.includes(k)) bad(`${path}.${k}`, `unknown key '${k}' (expected ${keys.join(', ')})`);
    for (const k of required) if (!(k in o)) bad(path, `missing key '${k}'`);
    return o;
  };
  const arr = (v: unknown, path: string, what: string): unknown[] => {
    if (!Array.isArray(v)) bad(path, `expected ${what}, found ${kindOf(v)}`);
    return v as unknown[];
  };
  const int = (v: unknown, path: string): number => {
    if (typeof v !== 'number' || !Number.isInteger(v)) bad(path, `expected an integer state index, found ${kindOf(v)}`);
    return v as number;
  };

  const root = obj(raw, '$', ROOT_KEYS, ['normal', 'reduce']);
  const cell = (kind: CellKind): CellGenotype => {
    const path = `$.${kind}`;
    const c = obj(root[kind], path, CELL_KEYS, CELL_KEYS);
    const nodes = arr(c.nodes, `${path}.nodes`, 'an array of nodes').map((n, i) =>
      arr(n, `${path}.nodes[${i}]`, 'an array of {"op", "input"} entries').map((e, j) => {
        const ep = `${path}.nodes[${i}][${j}]`;
        const o = obj(e, ep, ENTRY_KEYS, ENTRY_KEYS);
        if (typeof o.op !== 'string') bad(`${ep}.op`, `expected an op name string, found ${kindOf(o.op)}`);
        return { op: o.op as string, input: int(o.input, `${ep}.input`) };
      }));
    const concat = arr(c.concat, `${path}.concat`, 'an array of states').map((s, k) => int(s, `${path}.concat[${k}]`));
    return { nodes, concat };
  };
  const g: Genotype = { normal: cell('normal'), reduce: cell('reduce') };
  if (root.name !== undefined) {
    if (typeof root.name !== 'string') bad('$.name', `expected a string, found ${kindOf(root.name)}`);
    g.name = root.name as string;
  }
  const [issue] = genotypeIssues(g, opts);
  if (issue) throw jsonIssue(where, issue);
  return g;
}

function jsonIssue(where: string, issue: Issue): GenotypeJsonError {
  let path = jsonPathOf(issue.path);
  if (issue.path.cell && issue.path.node === undefined && issue.path.concat === undefined) {
    path += /concat/.test(issue.message) ? '.concat' : '.nodes';
  }
  return new GenotypeJsonError(where, path, issue.message, issue.path);
}

/** Reads either spelling: JSON when the text starts with '{', the DARTS repr otherwise. */
export function readGenotype(text: string, where = 'genotype', opts: ParseOptions = {}): Genotype {
  return text.trimStart().startsWith('{') ? fromJSON(text, where, opts) : parseDartsRepr(text, where, opts);
}

/** Short one-line summary per cell, e.g. for logs: `normal: n0 = sep_conv_3x3(c_{k-2}) + ...`. */
export function describeGenotype(g: Genotype): string {
  return CELL_KINDS.map((kind) => `${kind}: ${g[kind].nodes.map((n, i) =>
    `n${i} = ${n.length ? n.map((e) => `${e.op}(${e.input < 2 ? stateName(e.input) : `n${e.input - 2}`})`).join(' + ') : '∅'}`).join('; ')}; out = concat(${g[kind].concat.join(', ')})`).join('\n');
}
