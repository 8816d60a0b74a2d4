"""bayesnas_ref.notebooks on a small synthetic run folder: readers, γ matrices, every figure, and one
notebook executed headless."""
from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from bayesnas_ref import notebooks as nb

OPS = ["sep_conv_3x3", "max_pool_3x3", "skip_connect"]
EDGES = [(0, 1), (0, 0), (1, 1), (1, 2)]  # (node, source)
PNG = b"\x89PNG\r\n\x1a\n"


def _write(path, cols, meta):
    t = pa.table(cols).replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, t.schema) as w:
        w.write_table(t)


def _switch_rows(cells):
    rows = []
    for k, ctype in cells:
        for e, (node, src) in enumerate(EDGES):
            rows.append((ctype, k, e, node, src, "", "origin"))
            rows += [(ctype, k, e, node, src, op, "child") for op in OPS]
    return rows


@pytest.fixture()
def run(tmp_path):
    d = tmp_path / "pipeline"
    s = d / "search"
    (s / "state").mkdir(parents=True)
    (s / "config.json").write_text(json.dumps({"command": "search", "config": {}}))
    metrics = [{"type": "step", "epoch": 1, "phase": "warmup", "step": i, "loss": 2.3 - 0.1 * i} for i in range(3)]
    metrics += [{"type": "epoch", "epoch": 1, "phase": "warmup", "trainLoss": 2.2, "trainAcc": 0.2, "valLoss": 2.1, "valAcc": 0.25},
                {"type": "epoch", "epoch": 2, "phase": "switch", "trainLoss": 2.0, "trainAcc": 0.3, "valLoss": 1.9, "valAcc": 0.35}]
    (s / "metrics.jsonl").write_text("\n".join(json.dumps(m) for m in metrics) + "\n")
    rows = _switch_rows([(0, "normal"), (1, "reduce")])
    rng = np.random.default_rng(0)
    cols = {name: [r[i] for r in rows] for i, name in enumerate(["cell_type", "cell", "edge", "node", "source", "op", "kind"])}
    for c in ("switch", "hessian", "gamma", "omega", "C"):
        cols[c] = rng.uniform(0.1, 1, len(rows)).tolist()
    cols["gamma"][1] = 7.5  # cell 0, edge 0, sep_conv_3x3
    for r in (1, 2):
        _write(s / "state" / f"round-{r}.arrow", cols, {"kind": "search-state", "round": str(r)})
    cell = {"nodes": [[{"op": "sep_conv_3x3", "input": 1}, {"op": "skip_connect", "input": 0}],
                      [{"op": "max_pool_3x3", "input": 2}]], "concat": [2, 3]}
    (s / "genotype.json").write_text(json.dumps({"normal": cell, "reduce": cell, "name": "t"}))
    t = d / "train"
    t.mkdir()
    (t / "config.json").write_text(json.dumps({"command": "train"}))
    tm = [{"type": "step", "loss": 2.0}, {"type": "epoch", "epoch": 1, "trainLoss": 2.0, "trainAcc": 0.3, "testLoss": 1.8, "testAcc": 0.4},
          {"type": "epoch", "epoch": 2, "trainLoss": 1.5, "trainAcc": 0.5, "testLoss": 1.4, "testAcc": 0.55}]
    (t / "metrics.jsonl").write_text("\n".join(json.dumps(m) for m in tm))
    h = rng.uniform(1e-5, 1e-2, len(rows))
    pcols = {name: cols[name] for name in ["cell_type", "cell", "edge", "node", "source", "op", "kind"]}
    _write(d / "parity" / "hessian-parity.arrow",
           {**pcols, "typescript": h.tolist(), "pytorch": (h * (1 + 1e-7)).tolist(),
            "exact": (h * rng.uniform(0.3, 3, len(rows)) * np.where(np.arange(len(rows)) % 7 == 0, -1, 1)).tolist()},
           {"kind": "switch-hessian-parity"})
    _write(d / "parity" / "hessian-ref.arrow", {**pcols, "recursion": h.tolist(), "exact": [None] * 3 + (h[3:] * 2).tolist()},
           {"kind": "switch-hessian-ref"})
    return d


def _is_png(p):
    return p.is_file() and p.stat().st_size > 1000 and p.read_bytes()[:8] == PNG


def test_resolve_finds_search_train_and_tables(run):
    f = nb.resolve(run)
    assert f.search == run / "search" and f.train == run / "train"
    assert f.parity_table.name == "hessian-parity.arrow" and f.ref_table.name == "hessian-ref.arrow"
    assert nb.figures_expected(f) == ["gamma.png", "search-curves.png", "train-curves.png", "cell-normal.png",
                                      "cell-reduce.png", "hessian-parity.png", "hessian-ref.png"]
    # a search run folder on its own: its sibling train/ is found too
    assert nb.resolve(run / "search").train == run / "train"
    with pytest.raises(FileNotFoundError):
        nb.resolve(run / "nope")


def test_read_state_takes_the_last_round_and_gamma_matrices_are_per_cell(run):
    st = nb.read_state(run / "search")
    assert st["round"] == 2 and st["metadata"]["kind"] == "search-state"
    assert nb.read_state(run / "search", round=1)["round"] == 1
    mats = nb.gamma_matrices(st)
    assert [m["cell_type"] for m in mats] == ["normal", "reduce"]
    m = mats[0]
    assert m["ops"] == OPS and len(m["matrix"]) == len(EDGES) and all(len(r) == 1 + len(OPS) for r in m["matrix"])
    assert m["matrix"][0][1] == 7.5 and m["rows"][0] == "n0 <- c_{k-1}" and m["rows"][3] == "n1 <- n0"
    assert not any(math.isnan(v) for r in m["matrix"] for v in r)


def test_cell_edges_group_ops_per_input_node_pair():
    cell = {"nodes": [[{"op": "a", "input": 0}, {"op": "b", "input": 0}], [{"op": "c", "input": 2}]], "concat": [2, 3]}
    assert nb.cell_edges(cell) == [(0, 2, ["a", "b"]), (2, 3, ["c"])]
    assert [nb.source_name(i) for i in range(4)] == ["c_{k-2}", "c_{k-1}", "n0", "n1"]


def test_every_figure_is_a_png(run, tmp_path):
    out = tmp_path / "fig"
    f = nb.resolve(run)
    made = [
        nb.plot_gamma(nb.read_state(f.search), out / "gamma.png"),
        nb.plot_search_curves(nb.read_metrics(f.search), out / "search.png"),
        nb.plot_train_curves(nb.read_metrics(f.train), out / "train.png"),
        nb.plot_cell(json.loads((f.search / "genotype.json").read_text())["normal"], out / "cell.png"),
        nb.plot_hessian_parity(nb.read_table(f.parity_table)[0], out / "parity.png"),
        nb.plot_hessian_parity(nb.read_table(f.ref_table)[0], out / "ref.png"),
    ]
    for p in made:
        assert _is_png(p), p
    with pytest.raises(ValueError):
        nb.plot_hessian_parity({"kind": ["origin"], "value": [1.0]}, out / "bad.png")


def test_a_notebook_runs_headless_on_the_folder(run):
    r = nb.run_notebooks(run, only=["derived-cells.ipynb"])
    assert [n["ok"] for n in r["notebooks"]] == [True], r["notebooks"]
    assert r["expected"] == ["cell-normal.png", "cell-reduce.png"] and r["missing"] == []
    for name in r["expected"]:
        assert _is_png(run / "figures" / name)
    executed = json.loads((run / "notebooks" / "derived-cells.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])
    with pytest.raises(SystemExit):
        nb.main([str(run), "--only", "nope"])


def test_a_darts_or_snas_round_table_reads_as_a_switch_table(tmp_path):
    """Baseline runs store softmax(α) per cell type, edge and op (with none); the γ figure shows it
    with each edge's largest non-none weight in the origin column."""
    ops = ["sep_conv_3x3", "skip_connect", "none"]
    rows = {"cell_type": [], "edge": [], "node": [], "source": [], "op": [], "alpha": [], "weight": []}
    w = {("normal", 0): [0.2, 0.1, 0.7], ("normal", 1): [0.5, 0.3, 0.2], ("reduce", 0): [0.1, 0.6, 0.3]}
    for (ct, e), ws in w.items():
        for op, v in zip(ops, ws):
            for k, x in zip(("cell_type", "edge", "node", "source", "op", "alpha", "weight"), (ct, e, 0, e, op, math.log(v), v)):
                rows[k].append(x)
    t = pa.table({k: pa.array(v, pa.int32() if k in ("edge", "node", "source") else None) for k, v in rows.items()})
    t = t.replace_schema_metadata({"kind": "search-arch", "strategy": "darts", "round": "2"})
    (tmp_path / "state").mkdir()
    with pa.OSFile(str(tmp_path / "state" / "round-2.arrow"), "wb") as f, pa.ipc.new_file(f, t.schema) as wr:
        wr.write_table(t)
    state = nb.read_state(tmp_path)
    assert state["value_label"] == "softmax(α)"
    mats = {m["cell_type"]: m for m in nb.gamma_matrices(state)}
    assert mats["normal"]["ops"] == ops
    assert mats["normal"]["matrix"][0] == pytest.approx([0.2, 0.2, 0.1, 0.7])   # origin = best non-none
    assert mats["normal"]["matrix"][1] == pytest.approx([0.5, 0.5, 0.3, 0.2])
    assert mats["reduce"]["matrix"][0] == pytest.approx([0.6, 0.1, 0.6, 0.3])
    p = nb.plot_gamma(state, tmp_path / "gamma.png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _metrics(d, cols):
    """metrics.arrow as `bayesnas compress` writes it: architecture as text, every other column float64."""
    import pyarrow as pa
    t = pa.table({k: pa.array(v, type=pa.string() if k in ("architecture", "layerWeights") else pa.float64()) for k, v in cols.items()})
    with pa.OSFile(str(d / "metrics.arrow"), "wb") as sink, pa.ipc.new_file(sink, t.schema) as wr:
        wr.write_table(t)


def _compress_run(d, model, weights, errors, command=True, seed=0, lam=0.01, dataset="mnist", group="neuron", train=None):
    d.mkdir(parents=True)
    conf = {"config": {"model": {"name": model}, "dataset": dataset, "grouping": group, "lambda": lam, "seed": seed}}
    if command:
        conf["command"] = "compress"
    if train is not None:
        conf["train"], conf["test"] = train, 10000
    (d / "config.json").write_text(json.dumps(conf))
    _metrics(d, {"round": [i + 1 for i in range(len(weights))], "architecture": [f"a-{i}" for i in range(len(weights))],
                 "weights": weights, "testError": errors})
    (d / "summary.json").write_text(json.dumps({"exported": {"testErrorReloaded": errors[-1] + 0.001}}))
    return d


def test_compress_runs_are_found_read_and_plotted(tmp_path):
    a = _compress_run(tmp_path / "runs" / "a", "lenet-5", [20000, 5000, 3000], [0.015, 0.02, 0.011])
    b = _compress_run(tmp_path / "runs" / "b", "lenet-300-100", [60000, 30000], [0.02, 0.018], command=False)  # older config.json
    (tmp_path / "runs" / "notes").mkdir()
    f = nb.resolve(tmp_path / "runs")
    assert f.compress == [a, b] and nb.figures_expected(f) == ["compress-path.png"]
    assert nb.resolve(a).compress == [a]
    r = nb.read_compress_run(a)
    assert r["model"] == "lenet-5" and [row["weights"] for row in r["rounds"]] == [20000, 5000, 3000]
    assert r["rounds"][2]["architecture"] == "a-2" and r["final_error"] == pytest.approx(0.012)
    assert r["val_errors"] is None
    # a run with a validation split (--val): its error per row, NaN in rows without one
    v = _compress_run(tmp_path / "val", "lenet-5", [20000, 5000], [0.015, 0.011])
    _metrics(v, {"round": [1, 2], "architecture": ["a", "b"], "weights": [20000, 5000], "testError": [0.015, 0.011],
                 "valError": [0.014, math.nan], "layerWeights": ["15000+5000", "4000+1000"]})
    rv = nb.read_compress_run(v)
    assert [row["layerWeights"] for row in rv["rounds"]] == ["15000+5000", "4000+1000"]
    assert rv["val_errors"][0] == pytest.approx(0.014) and math.isnan(rv["val_errors"][1])
    p = nb.plot_compress_path([r, nb.read_compress_run(b), rv], tmp_path / "fig" / "compress-path.png")
    assert _is_png(p)
    with pytest.raises(ValueError):
        nb.plot_compress_path([], tmp_path / "fig" / "none.png")
    _metrics(a, {"round": [], "architecture": [], "weights": [], "testError": []})
    with pytest.raises(ValueError, match="metrics.arrow: no rounds"):
        nb.read_compress_run(a)
    # a search pipeline folder has no compression runs, and only its notebooks run
    assert nb.resolve(tmp_path / "runs" / "notes").compress == []


def test_compress_seed_groups_and_their_plot(tmp_path):
    runs = [nb.read_compress_run(_compress_run(tmp_path / n, "lenet-5", [20000, w], [0.02, e], seed=sd, lam=lam))
            for n, w, e, sd, lam in [("a0", 3000, 0.010, 0, 0.03), ("a1", 5000, 0.012, 1, 0.03), ("a1-again", 9000, 0.05, 1, 0.03),
                                     ("b0", 2000, 0.011, 0, 0.04), ("b1", 2400, 0.013, 1, 0.04), ("c0", 1000, 0.02, 0, 0.05)]]
    groups = nb.seed_groups(runs)
    assert [g["label"] for g in groups] == ["lambda 0.03", "lambda 0.04"]   # c has one seed: no group
    a = groups[0]
    assert [r["name"] for r in a["runs"]] == ["a0", "a1"]                    # a seed seen twice counts once
    assert a["weights"] == pytest.approx((4000, math.sqrt(2e6)))
    # the final error is the reloaded model's (the fixture writes the last row's + 0.001)
    assert a["error"] == pytest.approx((0.012, math.sqrt(2e-6)))
    assert nb.seed_groups(runs[:1]) == []
    d = tmp_path / "folder"
    d.mkdir()
    for r in ("a0", "a1"):
        (tmp_path / r).rename(d / r)
    assert nb.figures_expected(nb.resolve(d)) == ["compress-path.png", "compress-seeds.png"]
    assert _is_png(nb.plot_compress_seeds(runs, tmp_path / "fig" / "compress-seeds.png"))
    with pytest.raises(ValueError, match="two or more seeds"):
        nb.plot_compress_seeds(runs[-1:], tmp_path / "fig" / "none.png")


def test_compress_families_split_by_dataset_group_and_subset(tmp_path):
    # the seeds of three settings of one model: channel groups on MNIST (two λ), weight groups on
    # MNIST, channel groups on a 10,000-image subset, and channel groups on Fashion-MNIST
    specs = [("c3", 0.03, "mnist", "channel", 60000), ("c4", 0.04, "mnist", "channel", 60000),
             ("w", 0.01, "mnist", "weight", 60000), ("sub", 0.03, "mnist", "channel", 10000),
             ("f", 0.03, "fashion-mnist", "channel", 60000)]
    runs = []
    for name, lam, ds, grp, train in specs:
        for sd, (w, e) in enumerate([(3000, 0.010), (4000, 0.009), (5000, 0.008)]):
            runs.append(nb.read_compress_run(_compress_run(tmp_path / f"{name}{sd}", "lenet-5", [20000, w * (2 if lam == 0.04 else 1)],
                                                           [0.02, e], seed=sd, lam=lam, dataset=ds, group=grp, train=train)))
    assert runs[0]["family"] == "--model lenet-5 --dataset mnist --group channel"
    assert runs[9]["family"] == "--model lenet-5 --dataset mnist --group channel --train-size 10000"
    fits = nb.family_fits(runs)
    assert sorted(fits) == ["--model lenet-5 --dataset fashion-mnist --group channel",
                            "--model lenet-5 --dataset mnist --group channel",
                            "--model lenet-5 --dataset mnist --group channel --train-size 10000",
                            "--model lenet-5 --dataset mnist --group weight"]
    pooled, fit = fits["--model lenet-5 --dataset mnist --group channel"]
    assert [r["name"] for r in pooled] == ["c30", "c31", "c32", "c40", "c41", "c42"]   # both λ on one line
    a, b, _, _ = fit
    assert b == pytest.approx(np.polyfit(np.log([r["rounds"][-1]["weights"] for r in pooled]),
                                         [r["final_error"] for r in pooled], 1)[0])
    # the labels name what differs between the seed groups of one panel (model and dataset)
    labels = {(g["dataset"], g["label"]) for g in nb.seed_groups(runs)}
    assert ("fashion-mnist", "") in labels and ("mnist", "grouping weight, lambda 0.01, train 60000") in labels
    assert _is_png(nb.plot_compress_seeds(runs, tmp_path / "fig" / "compress-seeds.png"))
    assert _is_png(nb.plot_compress_path(runs, tmp_path / "fig" / "compress-path.png"))


def test_frontier_fit_against_polyfit_and_the_textbook_standard_error():
    import numpy as np
    ws = [2314, 2548, 2700, 2729, 3158, 3255, 3498, 4187, 4680, 4930]
    es = [e / 100 for e in [1.02, 1.06, 1.13, 0.91, 0.96, 1.03, 1.06, 0.84, 0.82, 1.01]]
    a, b, s, at = nb.frontier_fit(ws, es)
    slope, icpt = np.polyfit(np.log(ws), es, 1)
    assert (a, b) == pytest.approx((icpt, slope), rel=1e-10)
    x = np.log(ws)
    sxx = np.sum((x - x.mean()) ** 2)
    assert s == pytest.approx(math.sqrt(np.sum((np.asarray(es) - icpt - slope * x) ** 2) / (len(ws) - 2)))
    for w in (4074, 1500):
        e, se = at(w)
        assert e == pytest.approx(icpt + slope * math.log(w))
        assert se == pytest.approx(s * math.sqrt(1 / len(ws) + (math.log(w) - x.mean()) ** 2 / sxx))
    assert nb.frontier_fit([1000, 1000, 1000], [0.01, 0.02, 0.03]) is None
    assert nb.frontier_fit([1000, 2000], [0.01, 0.02]) is None
