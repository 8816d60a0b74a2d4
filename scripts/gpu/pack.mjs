#!/usr/bin/env node
// Packs what a GPU machine without Node, without npm packages and without network needs to run the
// project's GPU benchmarks (scripts/gpu/run.sh), into gpu-pack/ (ignored by git; about 40 MB):
//
//   gpu-pack/node.xz                              this Node binary, compressed
//   gpu-pack/dist/bayesnas.mjs                    the `bayesnas` command line, bundled (esbuild)
//   gpu-pack/dist/webgpu-parity.mjs               the webgpu-vs-cpu parity check of test/webgpu.test.ts, bundled
//   gpu-pack/node_modules/webgpu/                 Dawn's Node binding (index.js, package.json, dist/linux-x64, .node compressed)
//   gpu-pack/debs/*.deb                           the Vulkan loader and glvnd libraries (Debian 12), unpacked there without root
//   gpu-pack/manifest.json                        what went in, with sizes and versions
//
// The bundles sit two folders below the repository root, so that the project's paths (python-ref/,
// vendor/) resolve as they do from src/.
//
// Usage: node scripts/gpu/pack.mjs [--no-debs] [--bundles-only] [--out DIR]   (DIR default gpu-pack)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const argv = process.argv.slice(2);
const args = new Set(argv);
const PACK = path.resolve(argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : path.join(ROOT, 'gpu-pack'));
const log = (m) => process.stderr.write(`[gpu-pack] ${m}\n`);

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed: ${(r.stderr || String(r.error ?? '')).trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout;
}
const xz = (src, dst) => fs.writeFileSync(dst, spawnSync('xz', ['-6', '-T2', '-c', src], { maxBuffer: 1 << 30 }).stdout);
const size = (f) => fs.statSync(f).size;
const MB = (n) => `${(n / 2 ** 20).toFixed(1)} MB`;

const bundlesOnly = args.has('--bundles-only');
if (!bundlesOnly && !spawnSync('xz', ['--version']).stdout) throw new Error('no `xz` on PATH (Debian: apt-get install xz-utils)');
const webgpuDir = path.join(ROOT, 'node_modules', 'webgpu');
if (!bundlesOnly && !fs.existsSync(path.join(webgpuDir, 'dist', 'linux-x64', 'dawn.node'))) throw new Error('node_modules/webgpu (an optional dependency) is not installed: run npm install');

fs.rmSync(PACK, { recursive: true, force: true });
fs.mkdirSync(path.join(PACK, 'dist'), { recursive: true });
const git = (...a) => spawnSync('git', a, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() || null;
const manifest = { created: new Date().toISOString(), commit: git('rev-parse', 'HEAD'), dirty: !!git('status', '--porcelain', '--untracked-files=no'), node: process.version, files: {} };

// 1. bundles: everything but the native Dawn module, which is carried beside them
const esbuild = path.join(ROOT, 'node_modules', '.bin', 'esbuild');
const banner = "import { createRequire as __bnasCreateRequire } from 'node:module'; const require = __bnasCreateRequire(import.meta.url);";
for (const [entry, out] of [['scripts/gpu/entry.ts', 'bayesnas.mjs'], ['test/helpers/webgpu-parity.ts', 'webgpu-parity.mjs']]) {
  log(`bundling ${entry}`);
  run(esbuild, [path.join(ROOT, entry), '--bundle', '--platform=node', '--format=esm', '--target=node20', '--external:webgpu', '--ignore-annotations',
    `--banner:js=${banner}`, '--log-level=error', `--outfile=${path.join(PACK, 'dist', out)}`]);
}

if (bundlesOnly) {
  log(`bundles written to ${PACK}/dist`);
  process.exit(0);
}

// 2. Node itself
log(`compressing ${process.execPath}`);
xz(process.execPath, path.join(PACK, 'node.xz'));

// 3. the webgpu package: only what Linux x64 loads
const wg = path.join(PACK, 'node_modules', 'webgpu');
fs.mkdirSync(path.join(wg, 'dist', 'linux-x64'), { recursive: true });
for (const f of ['index.js', 'package.json']) fs.copyFileSync(path.join(webgpuDir, f), path.join(wg, f));
for (const f of fs.readdirSync(path.join(webgpuDir, 'dist', 'linux-x64'))) {
  const src = path.join(webgpuDir, 'dist', 'linux-x64', f);
  if (f.endsWith('.node')) xz(src, path.join(wg, 'dist', 'linux-x64', `${f}.xz`));
  else fs.copyFileSync(src, path.join(wg, 'dist', 'linux-x64', f));
}
manifest.webgpu = JSON.parse(fs.readFileSync(path.join(webgpuDir, 'package.json'), 'utf8')).version;

// 4. the Vulkan loader and glvnd (the NVIDIA driver's Vulkan ICD needs both)
if (!args.has('--no-debs')) {
  const debs = path.join(PACK, 'debs');
  fs.mkdirSync(debs);
  log('apt-get download libvulkan1 and the glvnd libraries');
  run('apt-get', ['download', 'libvulkan1', 'libegl1', 'libglvnd0', 'libopengl0', 'libgl1', 'libglx0', 'libgles2'], { cwd: debs });
}

let total = 0;
const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).forEach((e) => {
  const p = path.join(d, e.name);
  if (e.isDirectory()) return walk(p);
  total += size(p);
  manifest.files[path.relative(PACK, p)] = size(p);
});
walk(PACK);
fs.writeFileSync(path.join(PACK, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
log(`done: ${Object.keys(manifest.files).length} files, ${MB(total)} in ${path.relative(ROOT, PACK)}/`);
