"""The figure of scripts/compare.mjs: test accuracy per method (every seed, mean ± std) beside
search wall time and the collapse guard, from the per-run Arrow table it writes.

    python -m bayesnas_ref.compare_plot runs.arrow compare.png
"""
from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa


def plot(arrow_file: str, png: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with pa.memory_map(arrow_file, "r") as src:
        t = pa.ipc.open_file(src).read_all()
    meta = {k.decode(): v.decode() for k, v in (t.schema.metadata or {}).items()}
    d = t.to_pydict()
    methods = list(dict.fromkeys(d["method"]))
    if not methods:
        raise ValueError(f"{arrow_file}: no runs")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    x = np.arange(len(methods))
    for i, m in enumerate(methods):
        idx = [k for k, v in enumerate(d["method"]) if v == m]
        acc = np.array([100 * d["testAcc"][k] for k in idx])
        color = "C0" if d["source"][idx[0]] == "searched" else "C7"
        axes[0].scatter(np.full(len(acc), i), acc, color=color, alpha=0.6, s=18)
        axes[0].errorbar(i, acc.mean(), yerr=acc.std(ddof=1) if len(acc) > 1 else 0, fmt="_", color="k", capsize=6, ms=18)
        secs = np.array([d["searchSeconds"][k] for k in idx], dtype=float)
        if np.isfinite(secs).all():
            axes[1].bar(i, secs.mean(), color=color, yerr=secs.std(ddof=1) if len(secs) > 1 else 0, capsize=4)
            arch = np.array([d["archSeconds"][k] for k in idx], dtype=float)
            axes[1].bar(i, arch.mean(), color="C3", alpha=0.7, label="architecture steps" if i == 0 else None)
        skip = np.array([d["skipNormal"][k] + d["skipReduce"][k] for k in idx], dtype=float)
        free = np.array([d["paramFreeNormal"][k] + d["paramFreeReduce"][k] for k in idx], dtype=float)
        ops = np.array([d["opsNormal"][k] + d["opsReduce"][k] for k in idx], dtype=float)
        axes[2].bar(i - 0.2, (free / ops).mean(), width=0.4, color="C1", label="parameter-free" if i == 0 else None)
        axes[2].bar(i + 0.2, (skip / ops).mean(), width=0.4, color="C2", label="skip_connect" if i == 0 else None)
    for ax, title in zip(axes, ["test accuracy (%) per seed, mean ± std", "search wall time (s)", "share of ops in the derived cells"]):
        ax.set_xticks(x, methods, rotation=20)
        ax.set_title(title, fontsize=10)
    axes[1].legend(fontsize=8)
    axes[2].legend(fontsize=8)
    axes[2].set_ylim(0, 1)
    fig.suptitle(f"{meta.get('setting', '')} comparison on {meta.get('dataset', '')}, {meta.get('seeds', '?')} seed(s)", fontsize=11)
    fig.tight_layout()
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return png


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        sys.exit(2)
    print(plot(sys.argv[1], sys.argv[2]))
