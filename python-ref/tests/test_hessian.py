"""Switch Hessians (bayesnas_ref.hessian): exact HVPs against finite differences, the diagonal
recursion's rules against dense Jacobians, its exact cases, conventions and the CLI."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bayesnas_ref.hessian import (HessianTape, _Runner, compare, conv_rule,
                                  exact_switch_hessian, flatten_cells, full_softmax_seed,
                                  linear_rule, recursion_forward, recursion_switch_hessian,
                                  relu_rule, softmax_seed, spearman, switch_layout)
from bayesnas_ref.ops import ZeroPadMaxPool
from bayesnas_ref.spaces import get_space
from bayesnas_ref.supernet import Supernet
from bayesnas_ref.tsweights import export_params, write_batch

D = torch.float64
ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


def setup_net(preset, gate="output", seed=0, N=4):
    """C=4, 3 cells, batch N of 8x8 images, float64; switches and BN affine parameters moved
    away from 1/0 so that nothing is degenerate."""
    torch.manual_seed(seed)
    m = Supernet(get_space(preset, C=4, layers=3), gate=gate).to(D)
    with torch.no_grad():
        for c in m.cells:
            c.switch_origin.uniform_(0.5, 1.5)
            c.switch_child.uniform_(0.5, 1.5)
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d) and mod.affine:
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)
    x = torch.randn(N, 3, 8, 8, dtype=D)
    y = torch.randint(0, 10, (N,))
    return m, x, y


def switch_grad(m, x, y, flat):
    """dE/ds at switch values ``flat`` (training-mode BN; buffers restored)."""
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    params = m.switches()
    with torch.no_grad():
        i = 0
        for p in params:
            p.copy_(torch.as_tensor(flat[i:i + p.numel()]).view_as(p))
            i += p.numel()
    m.train()
    g = torch.autograd.grad(F.cross_entropy(m(x), y), params)
    m.load_state_dict(sd)
    return torch.cat([t.reshape(-1) for t in g]).numpy()


# ---------------------------------------------------------------------------------------------
# exact


@pytest.mark.parametrize("preset,gate", [("darts", "output"), ("bayesnas", "output"),
                                         ("bayesnas", "input")])
def test_exact_diagonal_matches_finite_differences(preset, gate):
    m, x, y = setup_net(preset, gate)
    s0 = np.concatenate([p.detach().reshape(-1).numpy() for p in m.switches()])
    layout = switch_layout(m)
    # origin and child switches in the first, a middle and the last cell
    pick = [0, 9, len(layout) // 2 + 3, len(layout) - 1]
    ex = flatten_cells(exact_switch_hessian(m, x, y, select=pick))
    assert np.isnan(ex[1])                     # not selected
    eps = 1e-5
    for i in pick:
        sp, sm = s0.copy(), s0.copy()
        sp[i] += eps
        sm[i] -= eps
        fd = (switch_grad(m, x, y, sp)[i] - switch_grad(m, x, y, sm)[i]) / (2 * eps)
        assert abs(ex[i] - fd) <= 1e-6 * max(1.0, abs(fd)), (layout[i], ex[i], fd)


def test_exact_batched_equals_loop_and_leaves_model_unchanged():
    m, x, y = setup_net("bayesnas")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.eval()
    pick = list(range(0, 12)) + [100, 150]
    a = flatten_cells(exact_switch_hessian(m, x, y, select=pick, method="batched", chunk=5))
    b = flatten_cells(exact_switch_hessian(m, x, y, select=pick, method="loop"))
    np.testing.assert_allclose(a[pick], b[pick], rtol=1e-10, atol=1e-14)
    assert not m.training
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


# ---------------------------------------------------------------------------------------------
# layer rules against dense Jacobians


def dense_diag(f, x, h):
    """diag(Jᵀ diag(h) J) of f at x."""
    J = torch.autograd.functional.jacobian(f, x).reshape(h.numel(), x.numel())
    return (J * J * h.reshape(-1, 1)).sum(0).reshape(x.shape)


def run_rule(module_fn, x, h):
    """H_x from the traversal's own rule for a module applied to x, seeded with h at its
    output."""
    tape = HessianTape()
    run = _Runner(tape, D)
    tape.produced.add(id(x))
    y = module_fn(run, x)
    return tape.backward(y, h)[id(x)]


@pytest.mark.parametrize("cfg", [
    dict(cin=3, cout=5, k=3, stride=2, padding=1, dilation=1, groups=1),     # even input, stride 2
    dict(cin=4, cout=4, k=3, stride=2, padding=2, dilation=2, groups=4),     # depthwise dilated
    dict(cin=4, cout=4, k=5, stride=1, padding=4, dilation=2, groups=1),     # full dilated
    dict(cin=4, cout=6, k=1, stride=2, padding=0, dilation=1, groups=1),     # 1x1 stride 2
])
def test_conv_rule(cfg):
    torch.manual_seed(1)
    conv = nn.Conv2d(cfg["cin"], cfg["cout"], cfg["k"], cfg["stride"], cfg["padding"],
                     cfg["dilation"], cfg["groups"], bias=False).to(D)
    x = torch.randn(2, cfg["cin"], 8, 8, dtype=D)
    h = torch.rand_like(conv(x))
    got = run_rule(lambda r, t: r.conv(conv, t), x, h.detach())
    torch.testing.assert_close(got, dense_diag(conv, x, h.detach()), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("pool", ["avg-exclude", "avg-include", "max-inf", "max-zero"])
def test_pool_rules(pool, stride):
    torch.manual_seed(2)
    x = torch.randn(2, 3, 8, 8, dtype=D)
    mod = {"avg-exclude": nn.AvgPool2d(3, stride, 1, count_include_pad=False),
           "avg-include": nn.AvgPool2d(3, stride, 1, count_include_pad=True),
           "max-inf": nn.MaxPool2d(3, stride, 1),
           "max-zero": ZeroPadMaxPool(stride)}[pool]
    h = torch.rand_like(mod(x))
    got = run_rule(lambda r, t: r.module(mod, t), x, h)
    torch.testing.assert_close(got, dense_diag(mod, x, h), rtol=1e-10, atol=1e-12)


def test_bn_relu_gap_linear_rules():
    torch.manual_seed(3)
    x = torch.randn(3, 4, 5, 5, dtype=D)
    bn = nn.BatchNorm2d(4).to(D)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    mu, var = x.mean((0, 2, 3), keepdim=True), x.var((0, 2, 3), unbiased=False, keepdim=True)

    def frozen(t):   # BN with the statistics frozen at the batch values
        return (t - mu) / torch.sqrt(var + bn.eps) * bn.weight.view(1, -1, 1, 1) \
            + bn.bias.view(1, -1, 1, 1)
    h = torch.rand_like(x)
    got = run_rule(lambda r, t: r.module(bn, t), x, h)
    torch.testing.assert_close(got, dense_diag(frozen, x, h).detach(), rtol=1e-10, atol=1e-12)
    got = run_rule(lambda r, t: r.relu(t), x, h)
    torch.testing.assert_close(got, dense_diag(F.relu, x, h), rtol=0, atol=0)
    W = torch.randn(6, 4, dtype=D)
    hu = torch.rand(3, 6, dtype=D)
    a = torch.randn(3, 4, dtype=D)
    torch.testing.assert_close(linear_rule(hu, W), dense_diag(lambda t: t @ W.t(), a, hu))


# ---------------------------------------------------------------------------------------------
# the network traversal


@pytest.mark.parametrize("preset", ["darts", "bayesnas"])
@pytest.mark.parametrize("gate", ["output", "input"])
def test_recursion_mirrors_forward_and_is_nonnegative(preset, gate):
    m, x, y = setup_net(preset, gate)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.train()
    with torch.no_grad():
        ref = m(x)
    m.load_state_dict(before)
    cells, logits = recursion_forward(m, x, y)
    torch.testing.assert_close(logits, ref, rtol=0, atol=1e-12)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    n = len(switch_layout(m))
    for mode in ("per-sample", "faithful"):
        for seed in ("diagonal", "target", "full"):
            h = flatten_cells(recursion_switch_hessian(m, x, y, mode=mode, seed=seed))
            assert h.shape == (n,) and np.all(np.isfinite(h)), (mode, seed)
            assert np.all(h >= 0), (mode, seed, h.min())
            assert np.count_nonzero(h) == n, (mode, seed)
    # the shapes follow the cells
    for c, cell in zip(cells, m.cells):
        assert c["origin"].shape == (len(cell.edge_list),)
        assert c["child"].shape == (len(cell.edge_list), len(m.space.ops))
        assert c["type"] == cell.cell_type


def test_scale_conventions():
    m, x, y = setup_net("darts", N=3)
    for mode in ("per-sample", "faithful"):
        mean = flatten_cells(recursion_switch_hessian(m, x, y, mode=mode))
        bsum = flatten_cells(recursion_switch_hessian(m, x, y, mode=mode, scale="batchSum"))
        data = flatten_cells(recursion_switch_hessian(m, x, y, mode=mode, scale="dataset",
                                                      dataset_size=1000))
        np.testing.assert_allclose(bsum, 3 * mean, rtol=1e-12)
        np.testing.assert_allclose(data, 1000 * mean, rtol=1e-12)
    with pytest.raises(ValueError, match="dataset_size"):
        recursion_switch_hessian(m, x, y, scale="dataset")


def test_faithful_equals_per_sample_on_identical_samples_for_single_layers():
    """Spec §10 item 3: identical samples (and, for a conv, H_y constant over positions per
    channel) make the batch-averaged rules equal to the per-sample ones."""
    torch.manual_seed(4)
    w = torch.randn(6, 3, 3, 3, dtype=D)
    Hy = torch.rand(1, 6, 1, 1, dtype=D).expand(4, 6, 4, 4).contiguous()
    shape = (4, 3, 8, 8)
    a = conv_rule(Hy, w, shape, stride=2, padding=1)
    b = conv_rule(Hy, w, shape, stride=2, padding=1, mode="faithful")
    torch.testing.assert_close(a, b, rtol=1e-13, atol=0)
    x = torch.randn(1, 3, 5, 5, dtype=D).expand(4, 3, 5, 5)
    Hr = torch.rand(1, 3, 5, 5, dtype=D).expand(4, 3, 5, 5)
    torch.testing.assert_close(relu_rule(Hr, x), relu_rule(Hr, x, "faithful"), rtol=1e-13, atol=0)
    W = torch.randn(5, 3, dtype=D)
    Hu = torch.rand(1, 5, dtype=D).expand(4, 5)
    torch.testing.assert_close(linear_rule(Hu, W), linear_rule(Hu, W, "faithful"))
    # and they do differ when H varies over positions (the faithful conv averages it)
    Hv = torch.rand(4, 6, 4, 4, dtype=D)
    assert not torch.allclose(conv_rule(Hv, w, shape, 2, 1), conv_rule(Hv, w, shape, 2, 1,
                                                                        mode="faithful"))


# ---------------------------------------------------------------------------------------------
# cases where the recursion is exact (spec §10 item 6)


def gated_linear_softmax(seed):
    """u = W (s ⊙ z) + b, E = mean CE; the recursion through the tape: per-feature gates, a
    concat, the linear layer."""
    torch.manual_seed(seed)
    N, Fe, K = 5, 4, 3
    z = torch.randn(N, Fe, dtype=D)
    s = torch.rand(Fe, dtype=D) + 0.5
    W = torch.randn(K, Fe, dtype=D)
    b = torch.randn(K, dtype=D)
    y = torch.randint(0, K, (N,))

    def E(sv):
        return F.cross_entropy((z * sv) @ W.t() + b, y)
    return z, s, W, b, y, E


def recursion_gated(z, s, W, b, y, seed):
    tape = HessianTape()
    run = _Runner(tape, D)
    a = run.concat([run.gate(i, z[:, i:i + 1], s[i]) for i in range(z.shape[1])])
    logits = F.linear(a, W, b)
    tape.record([a], logits, lambda Hu: [linear_rule(Hu, W)])
    if seed == "full":
        tape.backward(a, full_softmax_seed(logits, W))
    else:
        tape.backward(logits, softmax_seed(logits, y, seed))
    return np.array([float(tape.switch[i]) for i in range(z.shape[1])]), torch.softmax(logits, 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recursion_exact_for_gated_linear_softmax_with_full_seed(seed):
    z, s, W, b, y, E = gated_linear_softmax(seed)
    exact = torch.autograd.functional.hessian(E, s).diagonal().numpy()
    h, p = recursion_gated(z, s, W, b, y, "full")
    np.testing.assert_allclose(h, exact, rtol=1e-12, atol=1e-15)
    # the diagonal and target-only seeds give their closed forms (and differ from exact)
    N = z.shape[0]
    hd, _ = recursion_gated(z, s, W, b, y, "diagonal")
    want_d = ((z ** 2) * ((p * (1 - p)) @ (W ** 2))).sum(0).numpy() / N
    np.testing.assert_allclose(hd, want_d, rtol=1e-12)
    ht, _ = recursion_gated(z, s, W, b, y, "target")
    py = p[torch.arange(N), y]
    want_t = ((z ** 2) * (W[y] ** 2) * (py * (1 - py)).unsqueeze(1)).sum(0).numpy() / N
    np.testing.assert_allclose(ht, want_t, rtol=1e-12)


def test_spearman_and_compare():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1)
    assert spearman([1, 1, 2], [1, 1, 2]) == pytest.approx(1)
    rec = [{"type": "normal", "origin": np.array([1.0, 2.0]), "child": np.array([[1.0], [4.0]])}]
    ex = [{"type": "normal", "origin": np.array([2.0, 4.0]),
           "child": np.array([[1.0], [math.nan]])}]
    c = compare(rec, ex)
    assert c["origin/normal"]["median_rel_err"] == pytest.approx(0.5)
    assert c["origin/normal"]["spearman"] == pytest.approx(1)
    assert c["child/normal"]["n"] == 1


# ---------------------------------------------------------------------------------------------
# CLI


TINY_TS_SPACE = {   # a TypeScript-style space file (camelCase, gate, {node, source} edges)
    "name": "tiny", "flavour": "bayesnas", "ops": ["max_pool_3x3", "skip_connect", "sep_conv_3x3"],
    "nodes": 2, "edges": {"normal": [{"node": 0, "source": 0}, {"node": 0, "source": 1},
                                     {"node": 1, "source": 2}],
                          "reduce": [[0, 0], [0, 1], [1, 2]]},
    "layers": 3, "C": 4, "stemMultiplier": 2, "stem": "conv", "preprocess": "creduct",
    "head": "bn-relu-gap-linear", "gate": "input"}


def _tiny(tmp_path):
    from bayesnas_ref.hessian import _space_from_json
    f = tmp_path / "space.json"
    f.write_text(json.dumps(TINY_TS_SPACE))
    space, gate = _space_from_json(str(f), None, None)
    assert gate == "input" and space.stem_multiplier == 2
    torch.manual_seed(0)
    m = Supernet(space, num_classes=5, in_channels=2, gate=gate)
    x = torch.randn(3, 2, 8, 8)
    y = torch.tensor([0, 4, 2])
    export_params(m, tmp_path / "params.arrow")
    write_batch(tmp_path / "batch.arrow", x, y)
    return f, m, x, y


def test_cli_writes_table_and_timings(tmp_path):
    f, m, x, y = _tiny(tmp_path)
    out = tmp_path / "h.arrow"
    r = subprocess.run([sys.executable, "-m", "bayesnas_ref.hessian", "--space", str(f),
                        "--params", str(tmp_path / "params.arrow"),
                        "--batch", str(tmp_path / "batch.arrow"), "--exact", "--threads", "1",
                        "--out", str(out), "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["switches"] == 3 * 3 * 4 and res["recursion_seconds"] > 0
    assert res["exact_seconds"] > 0 and set(res["compare"]) == {
        "origin/normal", "child/normal", "origin/reduce", "child/reduce"}
    with pa.memory_map(str(out)) as src:
        t = pa.ipc.open_file(src).read_all()
    assert t.num_rows == 36
    assert t.column("op_index").to_pylist()[:4] == [-1, 0, 1, 2]
    assert t.column("op").to_pylist()[:4] == ["", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]
    md = m.to(D)
    rec = flatten_cells(recursion_switch_hessian(md, x.to(D), y))
    ex = flatten_cells(exact_switch_hessian(md, x.to(D), y))
    # the table's row order is per cell, per edge: origin then its ops; map to switch_layout
    layout = switch_layout(md)
    pos = {key: i for i, key in enumerate((c, e, o) for c, _, e, o in layout)}
    order = [pos[(c, e, o)] for c, e, o in zip(t.column("cell").to_pylist(),
                                               t.column("edge").to_pylist(),
                                               t.column("op_index").to_pylist())]
    np.testing.assert_allclose(t.column("recursion").to_numpy(), rec[order], rtol=1e-10)
    np.testing.assert_allclose(t.column("exact").to_numpy(), ex[order], rtol=1e-8, atol=1e-14)


def test_cli_serve(tmp_path):
    f, *_ = _tiny(tmp_path)
    r = subprocess.run([sys.executable, "-m", "bayesnas_ref.hessian", "--serve", "--space", str(f),
                        "--params", str(tmp_path / "params.arrow"),
                        "--batch", str(tmp_path / "batch.arrow"), "--threads", "1"],
                       input="hvp 5 2\nrecursion\nhvp x\nbogus\nhvp 1000\nquit\n",
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    ready = json.loads(r.stderr.strip().splitlines()[-1])
    assert ready["ready"] and ready["switches"] == 36 and ready["dtype"] == "float32"
    lines = [json.loads(s) for s in r.stdout.strip().splitlines()]
    assert len(lines) == 5
    assert lines[0]["switches"] == 5 and len(lines[0]["ms"]) == 2
    assert lines[1]["switches"] == 36 and len(lines[1]["ms"]) == 1
    assert "error" in lines[2] and "error" in lines[3]
    assert lines[4]["switches"] == 36
