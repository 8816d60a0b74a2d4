#!/usr/bin/env node
// `npm test`: the ava suite (TypeScript, real TensorFlow and a real Python) and the PyTorch
// reference's pytest suite, with one closing line for both: `N passed, N failed[, N skipped]`.
// Extra arguments go to ava (e.g. `npm test -- test/engine.test.ts`); BAYESNAS_TEST_ONLY=ava|pytest
// runs one suite.
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const only = process.env.BAYESNAS_TEST_ONLY;
const totals = { passed: 0, failed: 0, skipped: 0 };

function runLines(cmd, args, onLine, env = {}) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    readline.createInterface({ input: p.stdout }).on('line', (l) => { process.stdout.write(`${l}\n`); onLine(l); });
    p.stderr.pipe(process.stderr);
    p.on('close', (code) => resolve(code ?? 1));
    p.on('error', (e) => { process.stderr.write(`${cmd}: ${e.message}\n`); resolve(127); });
  });
}

if (only !== 'pytest') {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  const code = await runLines(process.execPath, [path.join(ROOT, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'), '--tap', ...process.argv.slice(2)], (l) => {
    if (/^not ok \d+/.test(l)) counts.failed++;
    else if (/^ok \d+.*# (SKIP|TODO)/i.test(l)) counts.skipped++;
    else if (/^ok \d+/.test(l)) counts.passed++;
  });
  if (code !== 0 && counts.failed === 0) counts.failed = 1;   // ava itself failed (crash, timeout, no tests)
  console.log(`ava: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  for (const k of Object.keys(totals)) totals[k] += counts[k];
}

if (only !== 'ava' && process.argv.length <= 2) {
  const py = process.env.BAYESNAS_REF_PYTHON || path.join(ROOT, 'python-ref', '.venv', 'bin', 'python');
  let summary = '';
  const code = await runLines(py, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'python-ref/tests'], (l) => {
    if (/\d+ (passed|failed|error)/.test(l)) summary = l;
  });
  const num = (re) => Number(summary.match(re)?.[1] ?? 0);
  const counts = { passed: num(/(\d+) passed/), failed: num(/(\d+) failed/) + num(/(\d+) errors?/), skipped: num(/(\d+) skipped/) };
  if (code !== 0 && counts.failed === 0) counts.failed = 1;   // no interpreter, collection error, no tests
  console.log(`pytest: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  for (const k of Object.keys(totals)) totals[k] += counts[k];
}

console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed ? 1 : 0);
