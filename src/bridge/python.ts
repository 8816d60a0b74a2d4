// Where the PyTorch reference's interpreter lives, and a quick probe of its environment.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The reference interpreter: BAYESNAS_REF_PYTHON, else python-ref/.venv (built by `npm install`). */
export function refPython(): string {
  return process.env.BAYESNAS_REF_PYTHON || path.join(PROJECT_ROOT, 'python-ref', '.venv', 'bin', 'python');
}

export interface PythonInfo {
  ok: boolean;
  interpreter: string;
  python: string | null;
  torch: string | null;
  pyarrow: string | null;
  numpy: string | null;
  cuda: boolean;
  error: string | null;
}

export async function probePython(): Promise<PythonInfo> {
  const interpreter = refPython();
  const base: PythonInfo = { ok: false, interpreter, python: null, torch: null, pyarrow: null, numpy: null, cuda: false, error: null };
  if (!fs.existsSync(interpreter)) return { ...base, error: `${interpreter} does not exist (run \`npm run setup\`)` };
  const code = 'import json,sys\nr={"python":sys.version.split()[0]}\n'
    + 'for m in ("torch","pyarrow","numpy"):\n  try:\n    r[m]=__import__(m).__version__\n  except Exception as e:\n    r[m]=None; r.setdefault("missing",[]).append(m)\n'
    + 'try:\n  import torch; r["cuda"]=bool(torch.cuda.is_available())\nexcept Exception:\n  r["cuda"]=False\n'
    + 'import bayesnas_ref\nprint(json.dumps(r))';
  const r = await execa(interpreter, ['-c', code], { reject: false, timeout: 60_000 });
  if (r.exitCode !== 0) return { ...base, error: `${interpreter} failed: ${String(r.stderr).trim().split('\n').pop()}` };
  const j = JSON.parse(String(r.stdout)) as Record<string, unknown>;
  const missing = (j.missing as string[] | undefined) ?? [];
  return {
    ok: missing.length === 0, interpreter, python: j.python as string, torch: j.torch as string | null,
    pyarrow: j.pyarrow as string | null, numpy: j.numpy as string | null, cuda: !!j.cuda,
    error: missing.length ? `missing Python packages: ${missing.join(', ')} (run \`npm run setup -- --only=python --force\`)` : null,
  };
}
