// One managed pythonia session per process, started lazily with the PyTorch reference's interpreter
// (python-ref/.venv) and closed on exit, so no test or command hangs on a live Python child.
// Python exceptions surface as JavaScript errors carrying the Python traceback. Bulk tensors never
// cross as lists: they go through Arrow IPC files (src/bridge/arrow.ts), only paths and small
// values cross pythonia.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { refPython } from './python.js';

type PythonFn = ((module: string) => Promise<any>) & { exit(): void }; // eslint-disable-line @typescript-eslint/no-explicit-any

let starting: Promise<PythonFn> | null = null;
let live: PythonFn | null = null;

/** Seconds a single Python call may take before it fails (REQ_TIMEOUT of pythonia); default 600. */
const CALL_TIMEOUT_MS = Number(process.env.BAYESNAS_PY_TIMEOUT_MS ?? 600_000);

export function pythonSession(): Promise<PythonFn> {
  if (starting) return starting;
  starting = (async () => {
    const bin = refPython();
    if (!fs.existsSync(bin)) throw new Error(`the Python reference is not installed: ${bin} does not exist (run \`npm run setup\`)`);
    process.env.PYTHON_BIN = bin;   // pythonia reads these at import time
    process.env.REQ_TIMEOUT ??= String(CALL_TIMEOUT_MS);
    const mod = await import('pythonia');
    const python = ((mod as unknown as { python?: PythonFn }).python ?? (mod as unknown as { default: { python: PythonFn } }).default.python) as PythonFn;
    live = python;
    process.once('exit', () => closePython());
    return python;
  })();
  return starting;
}

/** Imports a module of the reference environment, e.g. `bayesnas_ref.tsweights`. */
export async function pyModule(name: string): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const python = await pythonSession();
  try {
    return await python(name);
  } catch (e) {
    throw new Error(`Python: cannot import ${name}: ${(e as Error).message}`);
  }
}

export function closePython(): void {
  if (live) {
    try { live.exit(); } catch { /* already gone */ }
    live = null;
    starting = null;
  }
}

/** A fresh temporary folder for Arrow files exchanged in one call; removed by the returned cleanup. */
export function exchangeDir(): { dir: string; file(name: string): string; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bayesnas-bridge-'));
  return { dir, file: (n) => path.join(dir, n), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Runs a Python call and rethrows a PythonException as an Error whose message holds the Python error
 * and traceback (pythonia puts them in `stack`, with an empty `message`).
 */
export async function pyCall<T>(label: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const err = e as Error;
    if (err.constructor?.name !== 'PythonException' && err.message) throw new Error(`${label}: ${err.message}`);
    const text = (err.stack ?? String(err)).replace(/\u001b\[[0-9;]*m/g, '');
    const i = text.indexOf('... across the bridge ...');
    const py = (i >= 0 ? text.slice(i + 25) : text).split('\n').map((l) => l.replace(/^\*\*\* (JS|PY) \*\*\*\s*/, '')).filter((l) => l.trim()).join('\n');
    const out = new Error(`${label}: Python raised\n${py}`);
    throw out;
  }
}
