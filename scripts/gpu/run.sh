#!/usr/bin/env bash
# Runs on a GPU machine that has the NVIDIA driver and PyTorch (CUDA) but no Node, no npm packages
# and no network, from the repository root, with gpu-pack/ (node scripts/gpu/pack.mjs) beside it:
#
#   OUT=/some/dir bash scripts/gpu/run.sh [suite options...]
#
# It unpacks Node and Dawn, makes the Vulkan loader and glvnd available without root, points Vulkan
# at the NVIDIA driver's ICD, then writes into $OUT:
#   environment.txt     GPU, driver, Vulkan ICD, Python/torch, what was found where
#   doctor.json         the engine as `bayesnas doctor` sees it (backend webgpu, adapter)
#   parity.json         supernet loss, gradients and switch Hessians on webgpu against the cpu backend
#   suite/summary.md    `bayesnas bench suite`: webgpu against PyTorch CUDA, side by side, with a
#                       per-kernel profile of one supernet step (and summary.json)
#   supernet-5-cells.json  the supernet benchmark on 5 cells, in a process of its own
#   supernet-5-cells-composed.json  the same with none of our webgpu programs (BAYESNAS_WEBGPU_FUSED_BN,
#                       _FUSED_EDGES, _FUSED_SGD and _FILTER_GRAD all 0): tfjs's kernels alone
#   log.txt             everything the steps printed
# BAYESNAS_TFJS_FLAGS (e.g. WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=64) passes TensorFlow.js flags to every step.
# Each step has its own time limit (45 + 90 + 270 + 90 + 90 s: the whole script fits in ten minutes); a
# failing step is logged and the next one still runs.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/gpu-$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$OUT"
P=gpu-pack
LOG="$OUT/log.txt"
say() { echo "[gpu] $*" | tee -a "$LOG" >&2; }
[ -f "$P/node.xz" ] || { say "no $P/node.xz: run node scripts/gpu/pack.mjs on a machine with Node first"; exit 2; }

T=$(mktemp -d)
xz -dc "$P/node.xz" > "$T/node" && chmod +x "$T/node"
for f in "$P"/node_modules/webgpu/dist/linux-x64/*.xz; do [ -e "$f" ] && xz -dc "$f" > "${f%.xz}"; done

# Vulkan loader + glvnd: unpacked into a private root, found through LD_LIBRARY_PATH
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 ' || ! ldconfig -p 2>/dev/null | grep -q 'libGLdispatch.so.0 '; then
  for d in "$P"/debs/*.deb; do [ -e "$d" ] && dpkg -x "$d" "$T/root"; done
  export LD_LIBRARY_PATH="$T/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
find_one() {   # the usual places first, then the whole root file system (the driver may sit in its own folder)
  for d in /usr/share /etc /usr/local /opt /usr/lib; do f=$(find "$d" -name "$1" -print -quit 2>/dev/null); [ -n "$f" ] && { echo "$f"; return; }; done
  timeout 20 find / -xdev \( -path /proc -o -path /sys \) -prune -o -name "$1" -print -quit 2>/dev/null
}
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  icd=$(find_one nvidia_icd.json)
  [ -n "$icd" ] && export VK_DRIVER_FILES="$icd"
fi
if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ]; then
  egl=$(find_one 10_nvidia.json)
  [ -n "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES="$egl"
fi
export BAYESNAS_REF_PYTHON=${BAYESNAS_REF_PYTHON:-$(command -v python3)}
export PYTHONPATH="$PWD/python-ref${PYTHONPATH:+:$PYTHONPATH}"
export BAYESNAS_BACKEND=webgpu BAYESNAS_LD_SET=1
commit=$(sed -n 's/^ *"commit": "\([0-9a-f]*\)".*/\1/p' "$P/manifest.json")
[ -n "$commit" ] && export BAYESNAS_CODE_COMMIT=$commit

{
  echo "date: $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || echo "nvidia-smi: not available"
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"
  echo "__EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-}"
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  echo "node: $("$T/node" --version)"
  echo "python: $BAYESNAS_REF_PYTHON"
  "$BAYESNAS_REF_PYTHON" -c 'import torch, numpy; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-", "numpy", numpy.__version__)' 2>&1
  cat "$P/manifest.json"
} > "$OUT/environment.txt" 2>&1
say "environment: $(head -2 "$OUT/environment.txt" | tail -1)"

step() {   # step NAME SECONDS OUTFILE command...
  local name=$1 limit=$2 out=$3; shift 3
  say "── $name (limit ${limit} s)"
  local t0=$SECONDS
  timeout "$limit" "$@" > "$out" 2>> "$LOG"
  local rc=$?
  say "   $name: exit $rc after $((SECONDS - t0)) s"
  return 0
}
TORCH_DEVICE=cuda
"$BAYESNAS_REF_PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null || TORCH_DEVICE=cpu
step doctor 45 "$OUT/doctor.json" "$T/node" "$P/dist/bayesnas.mjs" doctor --json
step parity 90 "$OUT/parity.json" "$T/node" "$P/dist/webgpu-parity.mjs"
step suite "${SUITE_LIMIT:-270}" "$OUT/suite.txt" "$T/node" "$P/dist/bayesnas.mjs" bench suite --steps 3 --torch-device "$TORCH_DEVICE" --out "$OUT/suite" "$@"
# a second, independent process on a 5-cell supernet: on Mesa's software driver, 8-cell supernets with
# the composed batch norm crashed inside the driver's descriptor-pool allocation; should a GPU driver
# fail on 8 cells, this figure remains
step supernet-5-cells 90 "$OUT/supernet-5-cells.json" "$T/node" "$P/dist/bayesnas.mjs" bench supernet --layers 5 --steps 3 --warmup 1 --profile --torch-device "$TORCH_DEVICE" --json
step supernet-5-cells-composed 90 "$OUT/supernet-5-cells-composed.json" \
  env BAYESNAS_WEBGPU_FUSED_BN=0 BAYESNAS_WEBGPU_FUSED_EDGES=0 BAYESNAS_WEBGPU_FUSED_SGD=0 BAYESNAS_WEBGPU_FILTER_GRAD=0 \
  "$T/node" "$P/dist/bayesnas.mjs" bench supernet --layers 5 --steps 3 --warmup 1 --profile --no-pytorch --json
cat "$OUT/suite/summary.md" 2>/dev/null || say "no suite summary (see $LOG)"
rm -rf "$T"
