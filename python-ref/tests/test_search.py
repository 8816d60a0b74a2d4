import io
import json

import numpy as np
import pytest

from bayesnas_ref.search import _serve, build, derive_cell
from bayesnas_ref.tsweights import write_tensor_file

OPS = ["none", "max_pool_3x3", "sep_conv_3x3", "skip_connect"]
# 2 nodes: node 0 <- {0, 1}, node 1 <- {0, 1, 2}
EDGES = [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]


def test_derive_keeps_ops_over_threshold_and_never_none():
    origin = np.array([1.0, 0.05, 0.9, 0.02, 0.8])
    child = np.array([[9, 1, 0.5, 0.01], [1, 1, 1, 1], [0, 0.02, 0.6, 0.7], [1, 1, 1, 1], [0, 0.9, 0, 0]], float)
    cell = derive_cell(EDGES, OPS, 2, origin, child, tau_edge=0.1, tau_op=0.1, relative=False)
    # edge 1 and 3 fall under τ_edge with all their ops (zero-op priority); 'none' is never kept
    assert cell["nodes"][0] == [("max_pool_3x3", 0), ("sep_conv_3x3", 0)]
    assert cell["nodes"][1] == [("sep_conv_3x3", 0), ("skip_connect", 0), ("max_pool_3x3", 2)]
    assert cell["concat"] == [2, 3]


def test_derive_dead_node_reattach_and_shrink():
    origin = np.array([0.01, 0.02, 1.0, 0.5, 0.9])
    child = np.ones((5, 4))
    child[4] = [0, 0, 0.05, 0.02]  # node 1's edge from node 0 (state 2) is weak, but state 2 is dead anyway
    shrink = derive_cell(EDGES, OPS, 2, origin, child, tau_edge=0.1, tau_op=0.1, relative=False, on_dead="shrink")
    assert shrink["nodes"][0] == [] and 2 not in shrink["concat"]
    assert all(inp != 2 for _, inp in shrink["nodes"][1])  # nothing reads a dead node
    re = derive_cell(EDGES, OPS, 2, origin, child, tau_edge=0.1, tau_op=0.1, relative=False)
    # node 0 gets its best edge (edge 1, γ 0.02 > 0.01) back with its best usable op
    assert re["nodes"][0] == [("max_pool_3x3", 1)] and re["concat"] == [2, 3]


def test_derive_darts_mode_top2_top1():
    origin = np.array([0.3, 0.7, 0.1, 0.9, 0.5])
    child = np.array([[5, 1, 2, 3], [5, 4, 2, 3], [0, 1, 2, 3], [0, 3, 2, 1], [0, 1, 9, 3]], float)
    cell = derive_cell(EDGES, OPS, 2, origin, child, mode="darts")
    assert cell["nodes"][0] == [("max_pool_3x3", 1), ("skip_connect", 0)]
    assert cell["nodes"][1] == [("max_pool_3x3", 1), ("sep_conv_3x3", 2)]


CFG = {"seed": 0, "batch": 8, "lr": 0.05, "lrSchedule": "cosine", "lrMin": 0.001, "momentum": 0.9,
       "weightDecay": 3e-4, "switchLr": 0.1, "switchMomentum": 0.9, "lambdaOrigin": 0.01,
       "lambdaChild": 0.01, "gradClip": 5, "warmupEpochs": 1, "rounds": 2, "updateMode": "clean",
       "hessian": {"batches": 2, "batch": 8, "mode": "per-sample", "seed": "diagonal", "scale": "dataset"},
       "prune": 0.0, "derive": {"mode": "bayesnas", "tauEdge": 0.1, "tauOp": 0.1, "relative": True,
                                "onDead": "reattach"}}


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for name, n in (("train", 16), ("switch", 24), ("val", 10)):
        rows.append({"name": f"{name}.x", "data": rng.standard_normal((n, 8, 8, 1)).astype(np.float32)})
        rows.append({"name": f"{name}.y", "data": (np.arange(n) % 3).astype(np.float32)})
    write_tensor_file(tmp_path / "data.arrow", rows)
    space = {"preset": "bayesnas", "C": 2, "layers": 3, "gate": "output"}
    (tmp_path / "space.json").write_text(json.dumps(space))

    def cfg(**over):
        p = tmp_path / "config.json"
        p.write_text(json.dumps({**CFG, **over}))
        return str(tmp_path / "space.json"), str(p), str(tmp_path / "data.arrow")
    return cfg


def test_whole_schedule_runs_and_updates_gamma(files):
    run = build(*files())
    assert run.model.cells[0].switch_child.shape[1] == len(run.space.ops)
    phases = run.run_all()
    assert [p["phase"] for p in phases] == ["warmup", "switch", "hessian", "update", "switch", "hessian", "update", "derive"]
    assert all(p["seconds"] > 0 for p in phases)
    for p in phases:
        if p["phase"] in ("warmup", "switch"):
            assert 0 <= p["val_acc"] <= 1 and np.isfinite(p["train_loss"])
    st = run.state["normal"]
    assert st["gamma_origin"].shape == (len(run.space.cell_edges("normal")), len(run.cells["normal"]))
    assert not np.allclose(st["gamma_origin"], 1.0)  # the update moved γ away from its initial value
    assert np.all(st["omega_origin"] > 0)
    g = phases[-1]["genotype"]
    assert set(g) == {"normal", "reduce"} and g["normal"]["concat"]


def test_pruning_fixes_switches_at_zero(files):
    run = build(*files(prune=1e9, rounds=1))  # every γ is under the threshold: everything pruned
    run.run_all()
    for c in run.model.cells:
        assert float(c.switch_origin.detach().abs().sum()) == 0 and float(c.switch_child.detach().abs().sum()) == 0


def test_serve_reports_errors_and_keeps_going(files):
    run = build(*files())
    out = io.StringIO()
    _serve(run, io.StringIO("phase update 1\nphase bogus\nphase warmup 0\nquit\n"), out)
    replies = [json.loads(l) for l in out.getvalue().splitlines()]
    assert "update before any Hessian" in replies[0]["error"]
    assert "unknown phase" in replies[1]["error"]
    assert replies[2]["phase"] == "warmup" and replies[2]["seconds"] > 0


def test_missing_settings_are_named(files, tmp_path):
    space, cfg, data = files()
    (tmp_path / "bad.json").write_text(json.dumps({"seed": 0}))
    with pytest.raises(ValueError, match="missing setting.*batch"):
        build(space, str(tmp_path / "bad.json"), data)


def test_one_channel_images_get_standard_strides(files):
    """A permuted 1-channel NHWC tensor keeps channels-last strides, on which some torch CPU
    kernels corrupt the heap in the supernet's backward pass; the readers give standard strides."""
    from bayesnas_ref.search import read_splits
    from bayesnas_ref.tsweights import nhwc_to_nchw
    x, _ = read_splits(files()[2])["train"]
    assert x.shape == (16, 1, 8, 8) and x.stride() == (64, 64, 8, 1)
    a = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    t = nhwc_to_nchw(a)
    assert t.stride() == (60, 12, 4, 1) and np.array_equal(t.numpy(), a.transpose(0, 3, 1, 2))
