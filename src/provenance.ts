// Which code produced a run: the package version and, in a git checkout, the commit and whether the
// working tree had uncommitted changes. Recorded in every run folder's config.json as `code`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from './data/datasets.js';

export interface CodeVersion { version: string | null; commit: string | null; dirty: boolean | null }

let cached: CodeVersion | null = null;

export function codeVersion(): CodeVersion {
  if (cached) return cached;
  const root = projectRoot();
  let version: string | null = null;
  try { version = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version?: string }).version ?? null; } catch { /* no package.json */ }
  const git = (...args: string[]) => {
    const r = spawnSync('git', args, { cwd: root, encoding: 'utf8', timeout: 10_000 });
    return r.status === 0 ? r.stdout.trim() : null;
  };
  // a copy without .git (scripts/gpu/run.sh on a GPU machine) names its commit in BAYESNAS_CODE_COMMIT
  const commit = git('rev-parse', 'HEAD') ?? process.env.BAYESNAS_CODE_COMMIT ?? null;
  // tracked files only: run folders and downloaded data are ignored or untracked
  const status = commit && !process.env.BAYESNAS_CODE_COMMIT ? git('status', '--porcelain', '--untracked-files=no') : null;
  cached = { version, commit, dirty: status === null ? null : status.length > 0 };
  return cached;
}
