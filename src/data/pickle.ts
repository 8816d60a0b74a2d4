// A tiny, restricted unpickler: just enough for the CIFAR-10 python batches (`cifar-10-batches-py/`).
//
// It interprets the pickle opcodes these files use (protocol 2 as written by Python 2's cPickle, and the
// protocol 2-4 streams Python 3 writes for the same dicts) as *data*: it never imports or calls anything.
// GLOBAL / STACK_GLOBAL may only name the four callables listed in ALLOWED_GLOBALS, and REDUCE / BUILD only
// rebuild from them: a numpy uint8 ndarray, a numpy dtype, or bytes (Python 3's `_codecs.encode(str, 'latin1')`).
// Any other opcode or global is an error that names the file and the byte offset.
//
// Values: None -> null; bool; int -> number (LONG1 only when it fits a safe integer); Python 2 str / bytes ->
// Uint8Array; unicode -> string; list -> array; tuple -> PyTuple; dict -> Map (bytes keys become latin1 strings);
// numpy uint8 array -> NdArray.

export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

export interface NdArray {
  kind: 'ndarray';
  shape: number[];
  dtype: string;
  fortranOrder: boolean;
  data: Uint8Array;
}

interface NdBuilder { kind: 'ndarray-builder'; shape: number[] | null; dtype: string | null; fortranOrder: boolean; data: Uint8Array | null }
interface DType { kind: 'dtype'; str: string }
interface Global { kind: 'global'; name: string }

const ALLOWED_GLOBALS = new Set([
  'numpy.core.multiarray._reconstruct',
  'numpy._core.multiarray._reconstruct',
  'numpy.ndarray',
  'numpy.dtype',
  '_codecs.encode',
]);

const MARK = Symbol('mark');

export function isNdArray(v: unknown): v is NdArray {
  return typeof v === 'object' && v !== null && (v as NdArray).kind === 'ndarray';
}

/** Unpickles `buf` with the restrictions above. Errors name `file` and the opcode's byte offset. */
export function restrictedUnpickle(buf: Uint8Array, file: string): unknown {
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  let op = 0;
  let opAt = 0;
  const fail = (msg: string, hint = ''): never => {
    throw new Error(`${file}: ${msg} at byte ${opAt} (pickle opcode 0x${op.toString(16).padStart(2, '0')}): not a CIFAR-10 python batch this reader accepts${hint}`);
  };
  const need = (n: number): number => {
    if (n < 0 || pos + n > buf.length) {
      throw new Error(`${file}: truncated at byte ${buf.length}: pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${opAt} needs ${n} more bytes from byte ${pos}`);
    }
    const p = pos;
    pos += n;
    return p;
  };
  const u8 = (): number => buf[need(1)]!;
  const u32 = (): number => dv.getUint32(need(4), true);
  const bytes = (n: number): Uint8Array => {
    const p = need(n);
    return buf.subarray(p, p + n);
  };
  const utf8 = (n: number): string => new TextDecoder('utf-8', { fatal: true }).decode(bytes(n));
  const line = (): string => {
    const start = pos;
    while (pos < buf.length && buf[pos] !== 0x0a) pos++;
    if (pos >= buf.length) fail('unterminated GLOBAL name');
    const s = new TextDecoder('latin1').decode(buf.subarray(start, pos));
    pos++;
    return s;
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail('stack underflow');
    const v = stack.pop();
    if (v === MARK) fail('unexpected MARK');
    return v;
  };
  const top = (): unknown => {
    if (stack.length === 0 || stack[stack.length - 1] === MARK) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const k = stack.lastIndexOf(MARK);
    if (k < 0) fail('no MARK on the stack');
    const items = stack.splice(k);
    items.shift();
    return items;
  };
  const key = (k: unknown): string => {
    if (typeof k === 'string') return k;
    if (k instanceof Uint8Array) return latin1(k);
    if (typeof k === 'number') return String(k);
    return fail('unsupported dict key type');
  };
  const global = (module: string, name: string): Global => {
    const full = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.has(full)) fail(`refused global ${full}`, ` (the only globals allowed are ${[...ALLOWED_GLOBALS].join(', ')})`);
    return { kind: 'global', name: full };
  };
  const reduce = (fn: unknown, args: unknown): unknown => {
    if (!(typeof fn === 'object' && fn !== null && (fn as Global).kind === 'global')) return fail('REDUCE of something that is not an allowed global');
    if (!(args instanceof PyTuple)) return fail('REDUCE arguments are not a tuple');
    const a = args.items;
    const name = (fn as Global).name;
    if (name === '_codecs.encode') {
      if (typeof a[0] !== 'string' || (a[1] !== 'latin1' && a[1] !== 'latin-1')) return fail('_codecs.encode only with (str, "latin1")');
      const s = a[0];
      const out = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c > 255) fail('_codecs.encode: character beyond latin1');
        out[i] = c;
      }
      return out;
    }
    if (name.endsWith('._reconstruct')) {
      const cls = a[0] as Global | undefined;
      if (cls?.kind !== 'global' || cls.name !== 'numpy.ndarray') return fail('_reconstruct of something other than numpy.ndarray');
      const nd: NdBuilder = { kind: 'ndarray-builder', shape: null, dtype: null, fortranOrder: false, data: null };
      return nd;
    }
    if (name === 'numpy.dtype') {
      const s = a[0] instanceof Uint8Array ? latin1(a[0]) : a[0];
      if (typeof s !== 'string') return fail('numpy.dtype with a non-string type');
      const d: DType = { kind: 'dtype', str: s };
      return d;
    }
    return fail(`REDUCE of ${name}`);
  };
  const build = (obj: unknown, state: unknown): unknown => {
    if (typeof obj === 'object' && obj !== null && (obj as DType).kind === 'dtype') {
      // state = (version, byteorder, subarray, names, fields, elsize, alignment, flags): nothing to keep for u1
      if (!(state instanceof PyTuple)) fail('dtype state is not a tuple');
      return obj;
    }
    if (typeof obj === 'object' && obj !== null && (obj as NdBuilder).kind === 'ndarray-builder') {
      if (!(state instanceof PyTuple) || state.items.length !== 5) return fail('ndarray state is not a 5-tuple (version, shape, dtype, fortran, data)');
      const [, shape, dtype, fortran, data] = state.items;
      if (!(shape instanceof PyTuple) || !shape.items.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)) return fail('ndarray shape is not a tuple of sizes');
      if (!(typeof dtype === 'object' && dtype !== null && (dtype as DType).kind === 'dtype')) return fail('ndarray dtype missing');
      const ds = (dtype as DType).str;
      if (ds !== 'u1' && ds !== '|u1' && ds !== 'uint8') return fail(`ndarray dtype ${ds}: only uint8 (u1) is supported`);
      const raw = data instanceof Uint8Array ? data : typeof data === 'string' ? latin1Bytes(data) : null;
      if (!raw) return fail('ndarray data is not a byte string');
      const dims = shape.items as number[];
      const count = dims.reduce((x, y) => x * y, 1);
      if (raw.length !== count) return fail(`ndarray data has ${raw.length} bytes, shape ${dims.join('x')} needs ${count}`);
      const nd: NdArray = { kind: 'ndarray', shape: dims, dtype: 'uint8', fortranOrder: fortran === true || fortran === 1, data: raw };
      return nd;
    }
    return fail('BUILD of an object this reader does not support');
  };

  for (;;) {
    opAt = pos;
    if (pos >= buf.length) throw new Error(`${file}: truncated at byte ${buf.length}: the pickle ends without a STOP opcode`);
    op = buf[pos++]!;
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v < 2 || v > 4) fail(`pickle protocol ${v}: only 2..4 are supported`);
        break;
      }
      case 0x95: need(8); break; // FRAME (length only; frames are a read-ahead hint)
      case 0x7d: stack.push(new Map()); break; // } EMPTY_DICT
      case 0x5d: stack.push([]); break; // ] EMPTY_LIST
      case 0x29: stack.push(new PyTuple([])); break; // ) EMPTY_TUPLE
      case 0x28: stack.push(MARK); break; // ( MARK
      case 0x71: memo.set(u8(), top()); break; // q BINPUT
      case 0x72: memo.set(u32(), top()); break; // r LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // h BINGET, j LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`memo key ${k} not defined`);
        stack.push(memo.get(k));
        break;
      }
      case 0x4b: stack.push(u8()); break; // K BININT1
      case 0x4d: stack.push(dv.getUint16(need(2), true)); break; // M BININT2
      case 0x4a: stack.push(dv.getInt32(need(4), true)); break; // J BININT
      case 0x8a: { // LONG1
        const n = u8();
        const b = bytes(n);
        if (n > 7) fail('LONG1 integer too large');
        let v = 0;
        for (let i = n - 1; i >= 0; i--) v = v * 256 + b[i]!;
        if (n > 0 && b[n - 1]! >= 0x80) v -= 2 ** (8 * n);
        stack.push(v);
        break;
      }
      case 0x4e: stack.push(null); break; // N NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x55: case 0x43: stack.push(bytes(u8())); break; // U SHORT_BINSTRING, C SHORT_BINBYTES
      case 0x54: { // T BINSTRING (signed length)
        const n = dv.getInt32(need(4), true);
        if (n < 0) fail('negative BINSTRING length');
        stack.push(bytes(n));
        break;
      }
      case 0x42: stack.push(bytes(u32())); break; // B BINBYTES
      case 0x58: stack.push(utf8(u32())); break; // X BINUNICODE
      case 0x8c: stack.push(utf8(u8())); break; // SHORT_BINUNICODE
      case 0x63: { // c GLOBAL
        const module = line();
        const name = line();
        stack.push(global(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x85: stack.push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(new PyTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PyTuple([a, b, c])); break; } // TUPLE3
      case 0x74: stack.push(new PyTuple(popMark())); break; // t TUPLE
      case 0x52: { const args = pop(); const fn = pop(); stack.push(reduce(fn, args)); break; } // R REDUCE
      case 0x62: { const state = pop(); const obj = pop(); stack.push(build(obj, state)); break; } // b BUILD
      case 0x61: { // a APPEND
        const v = pop();
        const l = top();
        if (!Array.isArray(l)) fail('APPEND to a non-list');
        (l as unknown[]).push(v);
        break;
      }
      case 0x65: { // e APPENDS
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) fail('APPENDS to a non-list');
        for (const v of items) (l as unknown[]).push(v);
        break;
      }
      case 0x73: { // s SETITEM
        const v = pop();
        const k = pop();
        const d = top();
        if (!(d instanceof Map)) fail('SETITEM on a non-dict');
        (d as Map<string, unknown>).set(key(k), v);
        break;
      }
      case 0x75: { // u SETITEMS
        const items = popMark();
        const d = top();
        if (!(d instanceof Map)) fail('SETITEMS on a non-dict');
        if (items.length % 2) fail('SETITEMS with an odd number of items');
        for (let i = 0; i < items.length; i += 2) (d as Map<string, unknown>).set(key(items[i]), items[i + 1]);
        break;
      }
      case 0x2e: { // . STOP
        const v = pop();
        if (stack.length) fail('values left on the stack at STOP');
        if (pos !== buf.length) throw new Error(`${file}: unexpected extra data at byte ${pos}: the pickle stops there but the file has ${buf.length} bytes`);
        return v;
      }
      default:
        fail('unsupported pickle opcode');
    }
  }
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

function latin1Bytes(s: string): Uint8Array | null {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255) return null;
    out[i] = c;
  }
  return out;
}
