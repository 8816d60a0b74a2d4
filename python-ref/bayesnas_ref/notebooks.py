"""Figures of a run folder, and headless execution of the analysis notebooks in ``notebooks/``.

A *run folder* is one of
  * a ``bayesnas search`` run (config.json with "command": "search", metrics.jsonl,
    state/round-<r>.arrow, genotype.json), or
  * a pipeline folder written by scripts/pipeline-quick.mjs / protocol-cifar10.mjs /
    parity-run.mjs, holding ``search/``, ``train/`` (a ``bayesnas train`` run),
    ``parity/hessian-parity.arrow`` (``bayesnas parity --hessian [--exact] --table``) and/or
    ``parity/hessian-ref.arrow`` (``python -m bayesnas_ref.hessian --exact --out``), or
  * a ``bayesnas compress`` run, or a folder of them (directly or under ``compress/``).

Plotting functions (each writes one PNG and returns its path; no network, no display needed):
  plot_gamma(state, out)              γ per operation (origin switch + child ops) and edge, one panel per cell
  plot_search_curves(metrics, out)    search: step loss, per-epoch train/validation loss and accuracy
  plot_train_curves(metrics, out)     retraining: per-epoch train/test loss and accuracy
  plot_cell(genotype_cell, out, title) a derived cell as a graph (inputs, nodes, output; ops on edges)
  plot_hessian_parity(table, out)     TypeScript recursion vs python-ref recursion and vs PyTorch exact
                                      (or python-ref recursion vs exact, for a hessian.py table)
  plot_compress_path(runs, out)       compression: test error against weights kept, round by round,
                                      one panel per model and dataset, with the published anchors
  plot_compress_seeds(runs, out)      compression seed studies: means ± sd and the error-at-size line
                                      of each family of runs (family_fits)

Notebooks read the folder from the environment (BAYESNAS_RUN, BAYESNAS_FIGURES) or from the cell
that ``execute_notebook`` injects after the cell tagged "parameters".

CLI:
  python -m bayesnas_ref.notebooks RUN_DIR [--only NAME,...] [--figures DIR] [--timeout S] [--json]
    executes every notebook of NOTEBOOKS (or --only) on RUN_DIR with nbclient; figures go to
    RUN_DIR/figures (or --figures), the executed notebooks to RUN_DIR/notebooks/. Exit status 1
    when a notebook fails.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = Path(os.environ.get("BAYESNAS_NOTEBOOKS", ROOT / "notebooks"))
# notebook -> the figures it writes (the ones whose input exists; see figures_expected)
NOTEBOOKS = {
    "search-gamma.ipynb": ["gamma.png"],
    "curves.ipynb": ["search-curves.png", "train-curves.png"],
    "derived-cells.ipynb": ["cell-normal.png", "cell-reduce.png"],
    "hessian-parity.ipynb": ["hessian-parity.png", "hessian-ref.png"],
    "compress-path.ipynb": ["compress-path.png"],
}


# ---------------------------------------------------------------------------------------------
# run folders


@dataclass
class RunFolders:
    root: Path
    search: Path | None
    train: Path | None
    parity_table: Path | None  # `bayesnas parity --hessian --table` (TypeScript vs PyTorch)
    ref_table: Path | None     # python -m bayesnas_ref.hessian --exact --out (python-ref recursion vs exact)
    figures: Path
    compress: list[Path] = None  # `bayesnas compress` runs (the folder itself, or its runs)


def _command(d: Path) -> str | None:
    f = d / "config.json"
    if not f.is_file():
        return None
    try:
        c = json.loads(f.read_text())
    except ValueError:
        return None
    if not isinstance(c, dict):
        return None
    # compression runs written before config.json had "command" hold config.grouping
    return c.get("command") or ("compress" if isinstance(c.get("config"), dict) and "grouping" in c["config"] else None)


def compress_runs(root: Path) -> list[Path]:
    """`bayesnas compress` runs with metrics: the folder itself, or its (or its compress/) subfolders."""
    def ok(d: Path) -> bool:
        return _command(d) == "compress" and (d / "metrics.arrow").is_file()
    if ok(root):
        return [root]
    for base in (root / "compress", root):
        if base.is_dir():
            runs = sorted(d for d in base.iterdir() if d.is_dir() and ok(d))
            if runs:
                return runs
    return []


def resolve(run: str | os.PathLike, figures: str | os.PathLike | None = None) -> RunFolders:
    """The search run, retraining run and Hessian parity table of a run or pipeline folder."""
    root = Path(run).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"run folder {root} does not exist")
    search = train = None
    cmd = _command(root)
    if cmd == "search":
        search = root
    elif cmd == "train":
        train = root
    if search is None and _command(root / "search") == "search":
        search = root / "search"
    if train is None:
        for cand in (root / "train", root.parent / "train" if search == root else None):
            if cand is not None and _command(cand) == "train":
                train = cand
                break
    def find(name):
        for base in [root] + ([search] if search else []):
            for cand in (base / "parity" / name, base / name):
                if cand.is_file():
                    return cand
        return None
    return RunFolders(root, search, train, find("hessian-parity.arrow"), find("hessian-ref.arrow"),
                      Path(figures).resolve() if figures else root / "figures", compress_runs(root))


def latest_run(runs: str | os.PathLike = ROOT / "runs") -> Path:
    """The newest folder under runs/ that holds a search run (directly or as search/)."""
    cands = [p for p in Path(runs).iterdir() if p.is_dir()
             and (_command(p) == "search" or _command(p / "search") == "search")]
    if not cands:
        raise FileNotFoundError(f"no search run under {runs}; set BAYESNAS_RUN")
    return max(cands, key=lambda p: p.stat().st_mtime)


def figures_expected(f: RunFolders) -> list[str]:
    """The figures the notebooks write for this folder (those whose inputs exist)."""
    out = []
    if f.search and state_files(f.search):
        out.append("gamma.png")
    if f.search and (f.search / "metrics.jsonl").is_file():
        out.append("search-curves.png")
    if f.train and (f.train / "metrics.jsonl").is_file():
        out.append("train-curves.png")
    if f.search and (f.search / "genotype.json").is_file():
        out += ["cell-normal.png", "cell-reduce.png"]
    if f.parity_table:
        out.append("hessian-parity.png")
    if f.ref_table:
        out.append("hessian-ref.png")
    if f.compress:
        out.append("compress-path.png")
        if seed_groups([read_compress_run(d) for d in f.compress]):
            out.append("compress-seeds.png")
    return out


# ---------------------------------------------------------------------------------------------
# readers


def read_metrics(path: str | os.PathLike) -> list[dict]:
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def read_table(path: str | os.PathLike) -> tuple[dict[str, list], dict[str, str]]:
    """An Arrow IPC file as {column: python list} and its schema metadata (str -> str)."""
    import pyarrow as pa
    with pa.OSFile(str(path), "rb") as src:
        t = pa.ipc.open_file(src).read_all()
    meta = {k.decode(): v.decode() for k, v in (t.schema.metadata or {}).items()}
    return {name: t.column(name).to_pylist() for name in t.column_names}, meta


def read_compress_run(run: str | os.PathLike) -> dict:
    """A compression run: {"name", "model", "grouping", "lambda", "seed", "rounds": [metrics.arrow rows
    as dicts of floats, architecture and layerWeights as text], "final_error": the reloaded model's test error when
    summary.json has it, "val_errors": the validation error per row (NaN where a row has none) for a
    run with a held-out validation split (--val), else None}."""
    d = Path(run)
    conf = json.loads((d / "config.json").read_text())
    c = conf.get("config", {})
    cols, _ = read_table(d / "metrics.arrow")
    n = len(next(iter(cols.values()), []))
    # text columns (architecture "20-50-800-500", layerWeights "87+619+1726+185") stay text, as the file types them
    rows = [{k: (v[i] if isinstance(v[i], str) else float(v[i])) for k, v in cols.items()} for i in range(n)]
    if not rows:
        raise ValueError(f"{d / 'metrics.arrow'}: no rounds")
    final = None
    if (d / "summary.json").is_file():
        final = (json.loads((d / "summary.json").read_text()).get("exported") or {}).get("testErrorReloaded")
    val = [row.get("valError", math.nan) for row in rows]
    # what the run was asked to do apart from its seed: runs that differ only in seed share it
    settings = {k: v for k, v in c.items() if k != "seed"}
    if "train" in conf:
        settings["train"] = conf["train"]
    model, dataset = (c.get("model") or {}).get("name", "?"), c.get("dataset", "?")
    return {"name": d.name, "model": model, "dataset": dataset, "grouping": c.get("grouping"),
            "family": compress_family(model, dataset, c.get("grouping"), conf.get("train"), c.get("val"), conf.get("test")),
            "lambda": c.get("lambda"), "seed": c.get("seed"), "rounds": rows, "final_error": final,
            "val_errors": val if any(not math.isnan(v) for v in val) else None, "settings": settings}


# Training and test images of the full datasets: a run on fewer is a different experiment.
FULL_SIZES = {"mnist": (60000, 10000), "fashion-mnist": (60000, 10000), "cifar10": (50000, 10000)}


def compress_family(model, dataset, grouping, train=None, val=None, test=None) -> str:
    """The runs one error-at-size line pools, named as `bayesnas compress --table --at-weights` names
    them: model, dataset and kind of group, plus --train-size/--test-size when a run used a subset
    (train = the training images used, val = the held-out ones taken from the same first images)."""
    fam = f"--model {model} --dataset {dataset} --group {grouping}"
    full = FULL_SIZES.get(dataset)
    if full and train is not None and train + (val or 0) < full[0]:
        fam += f" --train-size {train + (val or 0)}"
    if full and test is not None and test < full[1]:
        fam += f" --test-size {test}"
    return fam


def seed_groups(runs: list[dict]) -> list[dict]:
    """Runs (read_compress_run) with the same settings and different seeds, two or more per group (a
    seed seen twice counts once, the first): {"model", "label", "runs", "weights": (mean, sd),
    "error": (mean, sd)}, where error is each run's final test error and sd the sample standard
    deviation. The label names the settings in which a model's groups differ (empty for one group)."""
    by: dict[str, list[dict]] = {}
    for r in runs:
        g = by.setdefault(json.dumps(r.get("settings", {}), sort_keys=True), [])
        if all(x["seed"] != r["seed"] for x in g):
            g.append(r)
    groups = [g for g in by.values() if len(g) > 1]

    def ms(v):
        return statistics.mean(v), statistics.stdev(v)

    out = []
    for g in groups:
        model, panel = g[0]["model"], _panel(g[0])
        others = [h[0]["settings"] for h in groups if _panel(h[0]) == panel]
        keys = sorted({k for o in others for k in o} - {"model", "dataset"})
        differ = [k for k in keys if len({json.dumps(o.get(k), sort_keys=True) for o in others}) > 1]
        st = g[0]["settings"]
        out.append({"model": model, "dataset": g[0]["dataset"], "label": ", ".join(f"{k} {st.get(k, '–')}" for k in differ), "runs": g,
                    "weights": ms([r["rounds"][-1]["weights"] for r in g]), "error": ms([final_error(r) for r in g])})
    return out


def frontier_fit(weights: list[float], errors: list[float]):
    """Least-squares line error = a + b·ln(weights) (the fit of `bayesnas compress --table --at-weights`):
    returns (a, b, s, at) with s the residual sd on n−2 degrees of freedom and at(w) -> (error, standard
    error of the line at w), or None with fewer than 3 points or a single size."""
    import numpy as np
    x, y = np.log(np.asarray(weights, float)), np.asarray(errors, float)
    if len(x) < 3 or np.ptp(x) == 0:
        return None
    X = np.c_[np.ones_like(x), x]
    inv = np.linalg.inv(X.T @ X)
    a, b = inv @ X.T @ y
    s = float(np.sqrt(np.sum((y - a - b * x) ** 2) / (len(x) - 2)))

    def at(w):
        v = np.array([1.0, math.log(w)])
        return float(v @ [a, b]), float(s * math.sqrt(v @ inv @ v))
    return float(a), float(b), s, at


def final_error(run: dict) -> float:
    """A run's final test error: the reloaded exported model's, else its last metrics row's."""
    return run["final_error"] if run["final_error"] is not None else run["rounds"][-1]["testError"]


# Published anchors (as usually quoted): weights kept, test error. Bayesian Compression (Louizos et
# al. 2017; BC-GNJ and BC-GHS, weights from their unit counts) and Sparse Variational Dropout
# (Molchanov et al. 2017).
COMPRESS_ANCHORS = {
    "lenet-300-100": [("BC-GNJ 278-98-13", 28648, 0.018), ("Sparse VD 68x", 266200 / 68, 0.0192)],
    "lenet-5": [("BC-GNJ 8-13-88-13", 4074, 0.010), ("BC-GHS 5-10-76-16", 2751, 0.010), ("Sparse VD 280x", 430500 / 280, 0.0075)],
}


def state_files(search_dir: str | os.PathLike) -> list[Path]:
    """state/round-<r>.arrow files of a search run, by round."""
    d = Path(search_dir) / "state"
    files = [p for p in d.glob("round-*.arrow") if re.fullmatch(r"round-\d+\.arrow", p.name)] if d.is_dir() else []
    return sorted(files, key=lambda p: int(p.stem.split("-")[1]))


def read_state(search_dir: str | os.PathLike, round: int | None = None) -> dict:
    """One round's switch table (the last round by default): columns plus "round"."""
    files = state_files(search_dir)
    if not files:
        raise FileNotFoundError(f"{search_dir}: no state/round-<r>.arrow (the search has no completed round)")
    f = files[-1] if round is None else Path(search_dir) / "state" / f"round-{round}.arrow"
    cols, meta = read_table(f)
    if meta.get("kind") == "search-arch":
        cols = arch_as_switch_table(cols)
    return {**cols, "round": int(f.stem.split("-")[1]), "metadata": meta,
            "value_label": "softmax(α)" if meta.get("kind") == "search-arch" else "γ"}


def arch_as_switch_table(cols: dict) -> dict:
    """A DARTS/SNAS round table (softmax(α) per cell type, edge and op, with none) in the layout of
    a BayesNAS switch table: one "cell" per cell type (0 normal, 1 reduce), an "origin" row per edge
    holding its largest non-none weight, and the ops' weights in the "gamma" column."""
    out = {k: [] for k in ("cell_type", "cell", "edge", "node", "source", "op", "kind", "gamma")}

    def push(i, kind, op, v):
        for k in ("cell_type", "edge", "node", "source"):
            out[k].append(cols[k][i])
        out["cell"].append(0 if cols["cell_type"][i] == "normal" else 1)
        out["kind"].append(kind)
        out["op"].append(op)
        out["gamma"].append(v)

    best: dict = {}   # (cell type, edge) -> (largest non-none weight, a row of that edge)
    for i in range(len(cols["op"])):
        key, w = (cols["cell_type"][i], int(cols["edge"][i])), float(cols["weight"][i])
        if cols["op"][i] != "none" and (key not in best or w > best[key][0]):
            best[key] = (w, i)
    for v, i in best.values():
        push(i, "origin", "", v)
    for i in range(len(cols["op"])):
        push(i, "child", cols["op"][i], float(cols["weight"][i]))
    return out


_SRC = {0: "c_{k-2}", 1: "c_{k-1}"}


def source_name(i: int) -> str:
    """Input index of a genotype / switch table: 0 = c_{k-2}, 1 = c_{k-1}, 2+j = node j."""
    return _SRC.get(int(i), f"n{int(i) - 2}")


def gamma_matrices(state: dict, value: str = "gamma") -> list[dict]:
    """Per cell: rows = edges ("node <- source"), columns = "origin" then the ops, values of one
    column of the switch table (γ by default)."""
    ops: list[str] = []
    for k, o in zip(state["kind"], state["op"]):
        if k == "child" and o not in ops:
            ops.append(o)
    cells: dict[int, dict] = {}
    for i in range(len(state["cell"])):
        c = int(state["cell"][i])
        cell = cells.setdefault(c, {"cell": c, "cell_type": state["cell_type"][i], "edges": {}, "ops": ops})
        e = int(state["edge"][i])
        row = cell["edges"].setdefault(e, {"label": f"n{state['node'][i]} <- {source_name(state['source'][i])}",
                                           "values": [math.nan] * (1 + len(ops))})
        j = 0 if state["kind"][i] == "origin" else 1 + ops.index(state["op"][i])
        row["values"][j] = float(state[value][i])
    out = []
    for c in sorted(cells):
        cell = cells[c]
        es = sorted(cell["edges"])
        out.append({"cell": c, "cell_type": cell["cell_type"], "ops": ops,
                    "rows": [cell["edges"][e]["label"] for e in es],
                    "matrix": [cell["edges"][e]["values"] for e in es]})
    return out


# ---------------------------------------------------------------------------------------------
# figures


def _plt():
    import matplotlib
    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, out) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    return out


def plot_gamma(state: dict, out, value: str = "gamma"):
    """Heat maps of γ (or another switch-table column) per cell: edges by (origin, ops)."""
    import numpy as np
    plt = _plt()
    mats = gamma_matrices(state, value)
    n = len(mats)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 0.32 * max(len(m["rows"]) for m in mats) * rows + 1.8),
                             squeeze=False)
    fig.subplots_adjust(wspace=0.75, hspace=0.9)
    vals = np.array([v for m in mats for r in m["matrix"] for v in r], dtype=float)
    vmin, vmax = np.nanmin(vals), np.nanmax(vals)
    im = None
    for ax, m in zip(axes.ravel(), mats):
        im = ax.imshow(np.array(m["matrix"], dtype=float), cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_title(f"cell {m['cell']} ({m['cell_type']})", fontsize=9)
        ax.set_xticks(range(1 + len(m["ops"])))
        ax.set_xticklabels(["origin"] + m["ops"], rotation=90, fontsize=7)
        ax.set_yticks(range(len(m["rows"])))
        ax.set_yticklabels(m["rows"], fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    label = state.get("value_label", value) if value == "gamma" else value
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.7, label=label)
    fig.suptitle(f"{label} per operation and edge, round {state.get('round', '?')}", fontsize=10)
    p = _save(fig, out)
    plt.close(fig)
    return p


def plot_search_curves(metrics: list[dict], out):
    """Search run: the logged step losses, and per-epoch loss and accuracy (train, validation)
    with the phase (warm-up / switch) of each epoch."""
    plt = _plt()
    steps = [r for r in metrics if r.get("type") == "step"]
    epochs = [r for r in metrics if r.get("type") == "epoch"]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    ax[0].plot(range(1, len(steps) + 1), [s["loss"] for s in steps], ".-")
    ax[0].set(title="training loss (logged steps)", xlabel="log point", ylabel="loss (with penalty in switch epochs)")
    x = [e["epoch"] for e in epochs]
    ax[1].plot(x, [e["trainLoss"] for e in epochs], "s--", label="train")
    ax[1].plot(x, [e["valLoss"] for e in epochs], "o-", label="validation")
    ax[1].set(title="loss per epoch", xlabel="epoch")
    ax[2].plot(x, [e["trainAcc"] for e in epochs], "s--", label="train")
    ax[2].plot(x, [e["valAcc"] for e in epochs], "o-", label="validation")
    ax[2].set(title="accuracy per epoch", xlabel="epoch", ylim=(0, 1))
    for a in ax[1:]:
        for e in epochs:
            a.annotate(e.get("phase", ""), (e["epoch"], 0), xycoords=("data", "axes fraction"), fontsize=6,
                       ha="center", va="bottom", color="gray")
        a.legend(fontsize=8)
    p = _save(fig, out)
    plt.close(fig)
    return p


def plot_train_curves(metrics: list[dict], out):
    """Retraining run (`bayesnas train`): per-epoch train/test loss and accuracy, and the step losses."""
    plt = _plt()
    steps = [r for r in metrics if r.get("type") == "step"]
    epochs = [r for r in metrics if r.get("type") == "epoch"]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    ax[0].plot(range(1, len(steps) + 1), [s.get("loss", math.nan) for s in steps], ".-")
    ax[0].set(title="training loss (logged steps)", xlabel="log point")
    x = [e["epoch"] for e in epochs]
    ax[1].plot(x, [e.get("trainLoss", math.nan) for e in epochs], "s--", label="train")
    ax[1].plot(x, [e.get("testLoss", math.nan) for e in epochs], "o-", label="test")
    ax[1].set(title="loss per epoch", xlabel="epoch")
    ax[2].plot(x, [e.get("trainAcc", math.nan) for e in epochs], "s--", label="train")
    ax[2].plot(x, [e.get("testAcc", math.nan) for e in epochs], "o-", label="test")
    ax[2].set(title="accuracy per epoch", xlabel="epoch", ylim=(0, 1))
    for a in ax[1:]:
        a.legend(fontsize=8)
    p = _save(fig, out)
    plt.close(fig)
    return p


def cell_edges(cell: dict) -> list[tuple[int, int, list[str]]]:
    """(input index, target node index (2+j), ops) per connected pair of a genotype cell
    ({"nodes": [[{"op", "input"}, ...], ...], "concat": [...]})."""
    pairs: dict[tuple[int, int], list[str]] = {}
    for j, entries in enumerate(cell["nodes"]):
        for e in entries:
            pairs.setdefault((int(e["input"]), 2 + j), []).append(e["op"])
    return [(a, b, ops) for (a, b), ops in pairs.items()]


def plot_cell(cell: dict, out, title: str = "cell"):
    """A derived cell as a graph: c_{k-2}, c_{k-1} on the left, the nodes in order, c_{k} on the
    right (fed by the concat); each input→node pair carries the list of its ops."""
    plt = _plt()
    n = len(cell["nodes"])
    concat = [int(c) for c in cell.get("concat", range(2, 2 + n))]
    pos = {0: (0.0, 1.0), 1: (0.0, -1.0)}
    for j in range(n):
        pos[2 + j] = (1.0 + j, 0.9 if j % 2 == 0 else -0.9)
    out_id = 2 + n
    pos[out_id] = (n + 1.2, 0.0)
    edges = cell_edges(cell)
    fig, ax = plt.subplots(figsize=(2.3 * (n + 2), 4.2))
    for a, b, ops in edges:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        rad = 0.25 if b - a > 1 else 0.08
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color="tab:blue", lw=1, shrinkA=14, shrinkB=14,
                                    connectionstyle=f"arc3,rad={rad}"))
        label = "\n".join(ops) if len(ops) <= 4 else "\n".join(ops[:3] + [f"+{len(ops) - 3} more"])
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + rad * 0.6, label, fontsize=6, ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    for c in concat:
        (x0, y0), (x1, y1) = pos[c], pos[out_id]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color="gray", lw=0.8, ls="--", shrinkA=14, shrinkB=16))
    used = {a for a, _, _ in edges} | {b for _, b, _ in edges} | set(concat)
    for k, (x, y) in pos.items():
        name = source_name(k) if k < out_id else "c_{k}"
        face = "#f4d6a0" if k < 2 else ("#a8d5a2" if k == out_id else ("#bcd4f0" if k in used else "#eeeeee"))
        ax.text(x, y, f"${name}$" if "_" in name else name, ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="circle,pad=0.35" if 2 <= k < out_id else "round,pad=0.4", fc=face, ec="black"))
    ax.set_xlim(-0.6, n + 1.8)
    ax.set_ylim(-1.8, 1.8)
    ax.axis("off")
    ax.set_title(f"{title}: {sum(len(o) for _, _, o in edges)} ops on {len(edges)} input-node pairs, "
                 f"concat {concat}", fontsize=9)
    p = _save(fig, out)
    plt.close(fig)
    return p


def plot_hessian_parity(table: dict, out):
    """Per switch, log axes on h > 0. A `bayesnas parity --table` file (columns typescript, pytorch,
    exact): TypeScript recursion vs python-ref's recursion (should lie on y = x) and vs the exact
    diagonal from PyTorch autograd (an approximation: spread is expected). A python-ref
    hessian.py table (recursion, exact): python-ref's recursion vs exact. The panel titles give
    the median relative difference and count the switches left out (h <= 0 or missing)."""
    import numpy as np
    plt = _plt()

    def col(name):
        return np.asarray([math.nan if v is None else v for v in table.get(name, [])], dtype=float)

    if "typescript" in table:
        y, ylabel = col("typescript"), "TypeScript recursion"
        panels = [("python-ref recursion (PyTorch)", col("pytorch")), ("exact diagonal (PyTorch autograd)", col("exact"))]
    elif "recursion" in table:
        y, ylabel = col("recursion"), "python-ref recursion"
        panels = [("exact diagonal (PyTorch autograd)", col("exact"))]
    else:
        raise ValueError("not a Hessian parity table: needs the columns typescript/pytorch or recursion/exact")
    panels = [(n, v) for n, v in panels if v.size == y.size and np.isfinite(v).any()]
    if not panels:
        raise ValueError("the table has no comparison values (all missing)")
    kind = np.asarray(table["kind"])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.8), squeeze=False)
    for ax, (name, x) in zip(axes.ravel(), panels):
        ok = np.isfinite(x) & np.isfinite(y) & (y > 0) & (x > 0)
        for k, m, c in (("origin", "o", "tab:red"), ("child", ".", "tab:blue")):
            sel = ok & (kind == k)
            ax.scatter(x[sel], y[sel], s=16 if k == "origin" else 9, marker=m, c=c, alpha=0.7, label=f"{k} ({int(sel.sum())})")
        if ok.any():
            lo, hi = min(x[ok].min(), y[ok].min()), max(x[ok].max(), y[ok].max())
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x")
            ax.set_xscale("log")
            ax.set_yscale("log")
        rel = np.abs(y[ok] - x[ok]) / np.abs(x[ok])
        med = float(np.median(rel)) if rel.size else math.nan
        ax.set_xlabel(name)
        ax.set_ylabel(ylabel)
        ax.set_title(f"median rel. diff {med:.2e}; {int((~ok).sum())} left out (h <= 0 or missing)", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle(f"switch Hessian h_s: {ylabel} vs PyTorch", fontsize=10)
    p = _save(fig, out)
    plt.close(fig)
    return p


def _panel(r: dict) -> tuple[str, str]:
    """The panel a compression run (or seed group) is drawn in: its model and dataset."""
    return r["model"], r.get("dataset", "?")


def _weights_axis(ax, panel: tuple[str, str]):
    """A compression panel's common parts: weights kept on a log axis with plain tick labels, the
    published anchors of COMPRESS_ANCHORS for the panel's model as black stars (MNIST panels only:
    the anchors are MNIST results), a grid."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    model, dataset = panel
    for i, (name, w, e) in enumerate(COMPRESS_ANCHORS.get(model, []) if dataset == "mnist" else []):
        ax.scatter([w], [100 * e], marker="*", s=140, c="black", zorder=5)
        # labels alternate above and below their star: anchors at one error lie side by side
        ax.annotate(name, (w, 100 * e), textcoords="offset points", xytext=(6, 4 if i % 2 == 0 else -11), fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="weights kept (non-zero, without biases)")
    ax.grid(alpha=0.3, which="both")


def plot_compress_path(runs: list[dict], out):
    """Compression runs (read_compress_run): test error (%) against weights kept (log axis), one
    point per round joined in order, the last row (final epochs) ringed, the validation error (runs
    with --val) as a dotted line of the same colour; one panel per model and dataset, with the
    published anchors of COMPRESS_ANCHORS as black stars."""
    plt = _plt()
    if not runs:
        raise ValueError("no compression runs to plot")
    panels = sorted({_panel(r) for r in runs})
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False)
    for ax, panel in zip(axes.ravel(), panels):
        mine = [r for r in runs if _panel(r) == panel]
        for r in mine:
            w = [row["weights"] for row in r["rounds"]]
            e = [100 * row["testError"] for row in r["rounds"]]
            label = f"{r['name']} ({r['grouping']}, λ {r['lambda']}, seed {r['seed']})"
            line, = ax.plot(w, e, ".-", lw=0.8, alpha=0.8, label=label if len(mine) <= 12 else None)
            ax.scatter(w[-1:], e[-1:], s=60, facecolors="none", edgecolors=line.get_color())
            if r.get("val_errors"):
                ax.plot(w, [100 * v for v in r["val_errors"]], "x:", lw=0.8, ms=4, color=line.get_color())
        _weights_axis(ax, panel)
        ax.set(ylabel="test error (%); validation dotted",
               title=f"{panel[0]} on {panel[1]}: {len(mine)} run(s), rounds in order, final ringed")
        if len(mine) <= 12:
            ax.legend(fontsize=6)
    p = _save(fig, out)
    plt.close(fig)
    return p


def family_fits(runs: list[dict]) -> dict:
    """The error-at-size lines of `bayesnas compress --table --at-weights`: runs (read_compress_run)
    pooled by family (model, dataset, kind of group, data subset), whatever their λ, rounds or seed;
    {family: (runs, frontier_fit of their final weights and final test errors or None)}."""
    by: dict[str, list[dict]] = {}
    for r in runs:
        by.setdefault(r["family"], []).append(r)
    return {f: (rs, frontier_fit([r["rounds"][-1]["weights"] for r in rs], [final_error(r) for r in rs]))
            for f, rs in by.items()}


def plot_compress_seeds(runs: list[dict], out):
    """Seed studies of compression runs (seed_groups): each run's final test error against its weights
    kept (log axis) as a small dot, each group's mean with ± one sd in both directions as a cross in
    the same colour, one panel per model and dataset, the line ± its standard error through the seed
    groups' runs of each family (family_fits: one line per kind of group and data subset), the
    published anchors of COMPRESS_ANCHORS as black stars."""
    import numpy as np
    plt = _plt()
    groups = seed_groups(runs)
    if not groups:
        raise ValueError("no settings were run with two or more seeds")
    panels = sorted({_panel(g) for g in groups})
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False)
    for ax, panel in zip(axes.ravel(), panels):
        mine = [g for g in groups if _panel(g) == panel]
        for g in mine:
            w = [r["rounds"][-1]["weights"] for r in g["runs"]]
            e = [100 * final_error(r) for r in g["runs"]]
            (wm, ws), (em, es) = g["weights"], g["error"]
            label = f"{g['label'] or panel[0]}: {len(g['runs'])} seeds, {wm:,.0f} weights, {100 * em:.2f}% ± {100 * es:.2f}"
            bar = ax.errorbar([wm], [100 * em], xerr=[ws], yerr=[100 * es], fmt="o", ms=6, capsize=3, label=label)
            ax.scatter(w, e, s=12, alpha=0.6, color=bar[0].get_color())
        fits = family_fits([r for g in mine for r in g["runs"]])
        for k, (family, (rs, fit)) in enumerate(sorted(fits.items())):
            if not fit:
                continue
            sizes = [r["rounds"][-1]["weights"] for r in rs]
            ws_ = np.geomspace(min(sizes), max(sizes), 50)
            pts = [fit[3](w) for w in ws_]
            # what tells the panel's lines apart: the family past the panel's model and dataset
            rest = family.replace(f"--model {panel[0]} --dataset {panel[1]} ", "")
            ax.plot(ws_, [100 * e for e, _ in pts], ("-", "--", ":", "-.")[k % 4], color="grey", lw=1,
                    label=f"line through the {len(rs)} runs of {rest}: {100 * fit[1] * math.log(2):+.2f} points per doubling")
            ax.fill_between(ws_, [100 * (e - se) for e, se in pts], [100 * (e + se) for e, se in pts], color="grey", alpha=0.2)
        _weights_axis(ax, panel)
        ax.set(ylabel="final test error (%)",
               title=f"{panel[0]} on {panel[1]}: seed means ± sd, runs as dots, lines ± se")
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    p = _save(fig, out)
    plt.close(fig)
    return p


# ---------------------------------------------------------------------------------------------
# headless execution


def execute_notebook(nb_path: str | os.PathLike, run: str | os.PathLike, figures: str | os.PathLike | None = None,
                     out_path: str | os.PathLike | None = None, timeout: int = 600) -> Path:
    """Executes one notebook with nbclient on the venv's ipykernel, with RUN and FIGURES set in a
    cell injected after the cell tagged "parameters" (and in the kernel's environment). Writes the
    executed notebook to out_path (default RUN/notebooks/<name>) and returns that path."""
    import nbformat
    from nbclient import NotebookClient
    f = resolve(run, figures)
    nb = nbformat.read(str(nb_path), as_version=4)
    inject = nbformat.v4.new_code_cell(f"RUN = {str(f.root)!r}\nFIGURES = {str(f.figures)!r}",
                                       metadata={"tags": ["injected-parameters"]})
    at = next((i + 1 for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), 0)
    nb.cells.insert(at, inject)
    env_before = {k: os.environ.get(k) for k in ("BAYESNAS_RUN", "BAYESNAS_FIGURES", "MPLBACKEND")}
    os.environ.update(BAYESNAS_RUN=str(f.root), BAYESNAS_FIGURES=str(f.figures), MPLBACKEND="Agg")
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(Path(nb_path).resolve().parent)}})
        client.execute()
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out = Path(out_path) if out_path else f.root / "notebooks" / Path(nb_path).name
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out))
    return out


def run_notebooks(run: str | os.PathLike, only: list[str] | None = None, figures: str | os.PathLike | None = None,
                  timeout: int = 600) -> dict:
    """Executes the notebooks (those of NOTEBOOKS whose inputs the folder holds, or ``only``) on a run folder. Returns
    {"run", "figures_dir", "notebooks": [{"name", "ok", "seconds", "output", "error"}],
    "figures": [png names], "expected": [...], "missing": [...]}."""
    f = resolve(run, figures)
    expected = figures_expected(f)  # reads every compression run once
    # without --only: the notebooks with something to show for this folder
    names = only or [n for n, figs in NOTEBOOKS.items() if set(figs) & set(expected)]
    res = []
    for name in names:
        nb = NOTEBOOK_DIR / name
        t0 = time.perf_counter()
        try:
            out = execute_notebook(nb, f.root, f.figures, timeout=timeout)
            res.append({"name": name, "ok": True, "seconds": time.perf_counter() - t0, "output": str(out), "error": None})
        except Exception as e:  # noqa: BLE001 - reported per notebook
            msg = str(e).strip().splitlines()
            res.append({"name": name, "ok": False, "seconds": time.perf_counter() - t0, "output": None,
                        "error": f"{type(e).__name__}: {msg[-1] if msg else ''}"})
    made = sorted(p.name for p in f.figures.glob("*.png")) if f.figures.is_dir() else []
    wanted = [p for p in expected if not only or any(p in NOTEBOOKS.get(n, []) for n in names)]
    return {"run": str(f.root), "figures_dir": str(f.figures), "notebooks": res, "figures": made,
            "expected": wanted, "missing": [p for p in wanted if p not in made]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bayesnas_ref.notebooks",
                                 description="Execute the analysis notebooks headless on a run folder.")
    ap.add_argument("run", help="a search run folder, a pipeline folder with search/, train/, parity/, "
                                "or a compress run (or a folder of them)")
    ap.add_argument("--only", default=None, help=f"comma-separated notebook names ({', '.join(NOTEBOOKS)})")
    ap.add_argument("--figures", default=None, help="where the PNGs go   [RUN/figures]")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    a = ap.parse_args(argv)
    only = [s if s.endswith(".ipynb") else f"{s}.ipynb" for s in a.only.split(",")] if a.only else None
    for n in only or []:
        if n not in NOTEBOOKS and not (NOTEBOOK_DIR / n).is_file():
            ap.error(f"unknown notebook {n} (known: {', '.join(NOTEBOOKS)})")
    try:
        r = run_notebooks(a.run, only, a.figures, a.timeout)
    except FileNotFoundError as e:
        ap.error(str(e))
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        for n in r["notebooks"]:
            print(f"{n['name']:24s} {'ok' if n['ok'] else 'FAILED'} {n['seconds']:.1f} s"
                  + (f"  {n['error']}" if n["error"] else ""))
        print(f"figures in {r['figures_dir']}: {', '.join(r['figures']) or 'none'}")
        if r["missing"]:
            print(f"missing: {', '.join(r['missing'])}")
    return 0 if all(n["ok"] for n in r["notebooks"]) and not r["missing"] else 1


if __name__ == "__main__":
    sys.exit(main())
