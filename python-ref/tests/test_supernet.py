import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from bayesnas_ref import slice_net
from bayesnas_ref.bench_supernet import Trainer
from bayesnas_ref.ops import OP_NAMES, OPS, build_op, op_names, op_param_count
from bayesnas_ref.spaces import (BAYESNAS_NORMAL, BAYESNAS_REDUCE, Space, SpaceError,
                                 bayesnas_space, darts_space, get_space, load_space,
                                 space_from_dict)
from bayesnas_ref.supernet import Supernet


pytestmark = pytest.mark.usefixtures("one_thread")


def n_params(m):
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------------------------
# ops


@pytest.mark.parametrize("flavour", ["darts", "bayesnas"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("C", [4, 6, 16])
def test_op_shapes_and_param_formula(flavour, stride, C):
    x = torch.randn(2, C, 8, 8)
    for name in op_names(flavour):
        op = build_op(flavour, name, C, stride)
        assert op(x).shape == (2, C, 8 // stride, 8 // stride), name
        assert n_params(op) == op_param_count(flavour, name, C, stride), (name, stride)


def test_op_param_formula_odd_C_bayesnas():
    for name in OP_NAMES:
        for s in (1, 2):
            assert n_params(OPS["bayesnas"][name](5, s)) == op_param_count("bayesnas", name, 5, s)


def test_bayesnas_has_no_none():
    assert "none" not in op_names("bayesnas")
    with pytest.raises(ValueError, match="none"):
        build_op("bayesnas", "none", 4, 1)
    with pytest.raises(ValueError, match="none"):
        OPS["bayesnas"]["none"](4, 1)


def test_darts_flavour_matches_slice_net_ops():
    """The darts flavour is the same function as the engine slice's op table."""
    x = torch.randn(3, 8, 8, 8)
    for name in OP_NAMES:
        for s in (1, 2):
            a, b = build_op("darts", name, 8, s), slice_net.OPS[name](8, s)
            for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
                with torch.no_grad():
                    pb.copy_(torch.randn_like(pb))
                    pa.copy_(pb)
            torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_darts_none():
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(build_op("darts", "none", 4, 1)(x), torch.zeros(2, 4, 8, 8))
    assert torch.equal(build_op("darts", "none", 4, 2)(x), torch.zeros(2, 4, 4, 4))


def test_pool_padding_semantics():
    neg = -torch.rand(1, 2, 4, 4) - 1.0  # all values in [-2, -1)
    ones = torch.ones(1, 2, 4, 4)
    # bayesnas max pool pads with 0: every window touching the border sees a 0
    y = build_op("bayesnas", "max_pool_3x3", 2, 1)(neg)
    assert torch.all(y[..., 0, :] == 0) and torch.all(y[..., 1:3, 1:3] < 0)
    # darts max pool pads with -inf (checked before its BN)
    yd = build_op("darts", "max_pool_3x3", 2, 1)[0](neg)
    assert torch.all(yd < 0)
    # bayesnas avg pool divides by 9 everywhere (corner of ones = 4/9); darts excludes pads
    ya = build_op("bayesnas", "avg_pool_3x3", 2, 1)(ones)
    assert torch.allclose(ya[0, 0, 0, 0], torch.tensor(4 / 9))
    assert torch.allclose(ya[0, 0, 1, 1], torch.tensor(1.0))
    yda = build_op("darts", "avg_pool_3x3", 2, 1)[0](ones)
    assert torch.allclose(yda, torch.ones_like(yda))


def _ref_bayes(name, op, x, stride):
    """Functional reference for the BN-first bayesnas ops, with explicit F.pad (spec table)."""
    def bnf(m, t):
        return F.batch_norm(t, None, None, m.weight, m.bias, True, 0.0, m.eps)
    q = op.op
    if name.startswith("sep_conv"):
        k = int(name[-1]); p = k // 2
        h = F.pad(F.relu(bnf(q[0], x)), [p] * 4)
        h = F.conv2d(F.conv2d(h, q[2].weight, stride=stride, groups=x.shape[1]), q[3].weight)
        h = F.pad(F.relu(bnf(q[4], h)), [p] * 4)
        return F.conv2d(F.conv2d(h, q[6].weight, groups=x.shape[1]), q[7].weight)
    if name.startswith("dil_conv"):
        k = int(name[-1]); p = 2 * (k // 2)
        h = F.pad(F.relu(bnf(q[0], x)), [p] * 4)
        return F.conv2d(F.conv2d(h, q[2].weight, stride=stride, dilation=2), q[3].weight)
    assert name == "skip_connect" and stride == 2
    return F.conv2d(bnf(q[0], x), q[1].weight, stride=2)


@pytest.mark.parametrize("stride", [1, 2])
def test_bayesnas_ops_match_functional_reference(stride):
    torch.manual_seed(0)
    x = torch.randn(2, 6, 8, 8)
    names = ["sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
    if stride == 2:
        names.append("skip_connect")
    for name in names:
        op = build_op("bayesnas", name, 6, stride)
        with torch.no_grad():
            for p in op.parameters():
                p.copy_(torch.randn_like(p))
        torch.testing.assert_close(op(x), _ref_bayes(name, op, x, stride), rtol=1e-5, atol=1e-5)
    # dilated convs are full convs (C*C*k*k), not depthwise
    assert build_op("bayesnas", "dil_conv_3x3", 6, 1).op[2].weight.shape == (6, 6, 3, 3)
    assert torch.equal(build_op("bayesnas", "skip_connect", 6, 1)(x), x)


# ---------------------------------------------------------------------------------------------
# spaces


def test_presets():
    d = darts_space()
    assert (d.flavour, d.C, d.layers, d.nodes, d.stem_multiplier) == ("darts", 16, 8, 4, 3)
    assert list(d.ops) == OP_NAMES
    assert list(d.edges["normal"]) == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1),
                                       (2, 2), (2, 3), (3, 0), (3, 1), (3, 2), (3, 3), (3, 4)]
    assert d.edges["reduce"] == d.edges["normal"]
    assert (d.preprocess, d.stem, d.head) == ("darts", "conv-bn", "gap-linear")
    b = bayesnas_space()
    assert (b.flavour, b.C, b.layers) == ("bayesnas", 36, 8)
    assert b.edges["normal"] == BAYESNAS_NORMAL and b.edges["reduce"] == BAYESNAS_REDUCE
    assert (3, 0) in b.edges["normal"]  # in1_3 reads c_{k-2} (intended wiring)
    assert (b.preprocess, b.stem, b.head) == ("creduct", "conv", "bn-relu-gap-linear")
    assert d.reductions == b.reductions == (2, 5)


def test_edge_strides():
    net = Supernet(darts_space(C=4, layers=3))
    for row in net.edge_table():
        want = 2 if row["type"] == "reduce" and row["source"] < 2 else 1
        assert row["stride"] == want
        edge = net.cells[row["cell"]].edges[row["edge"]]
        assert edge.stride == want


def test_json_round_trip(tmp_path):
    for s in (darts_space(), bayesnas_space()):
        p = tmp_path / f"{s.name}.json"
        p.write_text(s.to_json())
        assert load_space(p) == s
        assert get_space(str(p)) == s


def test_json_defaults_from_flavour():
    d = bayesnas_space().to_dict()
    for k in ("stem_multiplier", "preprocess", "stem", "head"):
        del d[k]
    assert space_from_dict(d) == bayesnas_space()


def _bad(tmp_path, d):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(SpaceError) as e:
        load_space(p)
    return str(e.value)


@pytest.mark.parametrize("field", ["name", "flavour", "ops", "nodes", "edges", "layers", "C"])
def test_json_missing_field(tmp_path, field):
    d = darts_space().to_dict()
    del d[field]
    msg = _bad(tmp_path, d)
    assert f"'{field}'" in msg and "missing" in msg and "bad.json" in msg


@pytest.mark.parametrize("change, field", [
    ({"flavour": "enas"}, "'flavour'"),
    ({"ops": ["sep_conv_3x3", "conv_7x7"]}, "'ops'"),
    ({"ops": []}, "'ops'"),
    ({"nodes": 0}, "'nodes'"),
    ({"layers": "8"}, "'layers'"),
    ({"C": -1}, "'C'"),
    ({"C": 15}, "'C'"),
    ({"head": "mlp"}, "'head'"),
    ({"stem": "conv-gn"}, "'stem'"),
    ({"preprocess": "x"}, "'preprocess'"),
    ({"colour": "red"}, "'colour'"),
    ({"edges": {"normal": [[0, 0]]}}, "'edges.reduce'"),
    ({"edges": {"normal": [[0, 2]], "reduce": [[0, 0]]}}, "'edges.normal[0]'"),
    ({"edges": {"normal": [[0, 0]], "reduce": [[0, 0], [5, 0]]}}, "'edges.reduce[1]'"),
    ({"edges": {"normal": [[0, 0], [0, 0]], "reduce": [[0, 0]]}}, "'edges.normal[1]'"),
    ({"edges": {"normal": [[0, 0, 1]], "reduce": [[0, 0]]}}, "'edges.normal[0]'"),
])
def test_json_invalid_field(tmp_path, change, field):
    d = {**darts_space().to_dict(), "nodes": 1, "edges": {"normal": [[0, 0]], "reduce": [[0, 1]]}}
    d.update(change)
    assert field in _bad(tmp_path, d)


def test_json_node_without_input_and_bayesnas_none(tmp_path):
    d = darts_space().to_dict()
    d["edges"]["normal"] = [[0, 0], [1, 0], [3, 0]]
    assert "edges.normal" in _bad(tmp_path, d) and "[2]" in _bad(tmp_path, d)
    d = bayesnas_space().to_dict()
    d["ops"] = ["none", "skip_connect"]
    assert "'ops'" in _bad(tmp_path, d)
    p = tmp_path / "broken.json"
    p.write_text("{not json")
    with pytest.raises(SpaceError, match="not valid JSON"):
        load_space(p)


def test_custom_space_builds_and_runs():
    s = space_from_dict({"name": "tiny", "flavour": "bayesnas", "ops": ["avg_pool_3x3",
                         "skip_connect"], "nodes": 2,
                         "edges": {"normal": [[0, 1], [1, 2]], "reduce": [[0, 0], [1, 0], [1, 2]]},
                         "layers": 3, "C": 3})
    net = Supernet(s)
    outs, logits = net.forward_cells(torch.randn(2, 3, 8, 8))
    assert [tuple(o.shape) for o in outs] == [(2, 6, 8, 8), (2, 12, 4, 4), (2, 24, 2, 2)]
    assert net.cells[1].switch_child.shape == (3, 2) and net.cells[0].switch_origin.shape == (2,)
    assert logits.shape == (2, 10)


# ---------------------------------------------------------------------------------------------
# supernet: counts and shapes


def preprocess_params(kind, cin, cout, halve):
    if kind == "darts":
        return 2 * cin * (cout // 2) + 2 * cout if halve else cin * cout + 2 * cout
    return (cin * cin if halve else 0) + 2 * cin + cin * cout


def expected_count(s: Space, num_classes=10, in_channels=3):
    """Independent count: stem + per cell (preprocess + ops + switches) + head."""
    c_stem = s.stem_multiplier * s.C
    total = in_channels * c_stem * 9 + (2 * c_stem if s.stem == "conv-bn" else 0)
    c_pp, c_p, C, red_prev = c_stem, c_stem, s.C, False
    for k in range(s.layers):
        red = k in (s.layers // 3, 2 * s.layers // 3)
        C = 2 * C if red else C
        t = "reduce" if red else "normal"
        total += preprocess_params(s.preprocess, c_pp, C, red_prev)
        total += preprocess_params(s.preprocess, c_p, C, False)
        for _, src in s.edges[t]:
            stride = 2 if red and src < 2 else 1
            total += sum(op_param_count(s.flavour, o, C, stride) for o in s.ops)
            total += 1 + len(s.ops)  # origin + child switches
        c_pp, c_p, red_prev = c_p, s.nodes * C, red
    if s.head == "bn-relu-gap-linear":
        total += 2 * c_p
    return total + c_p * num_classes + num_classes


def test_bayesnas_official_param_count():
    """Spec §2.2.3 / §10 item 20: the official search net has 26,911,350 trainable parameters,
    512 of them switches (8 edges x 8 switches x 8 cells)."""
    net = Supernet(bayesnas_space(), num_classes=10, in_channels=3)
    assert net.param_count() == 26_911_350
    assert sum(p.numel() for p in net.switches()) == 512
    assert expected_count(bayesnas_space()) == 26_911_350


def test_darts_preset_param_count():
    s = darts_space()
    net = Supernet(s, num_classes=10, in_channels=3)
    assert net.param_count() == expected_count(s) == 1_988_090
    assert sum(p.numel() for p in net.switches()) == 8 * 14 * 8
    for C, L, K, cin in [(4, 5, 7, 1), (8, 3, 10, 3)]:
        s = darts_space(C=C, layers=L)
        assert Supernet(s, K, cin).param_count() == expected_count(s, K, cin)
        s = bayesnas_space(C=C + 1, layers=L)
        assert Supernet(s, K, cin).param_count() == expected_count(s, K, cin)


def test_param_groups_partition():
    net = Supernet(darts_space(C=4, layers=3))
    w, s = net.weights(), net.switches()
    assert len(w) + len(s) == len(list(net.parameters()))
    assert {id(p) for p in w}.isdisjoint({id(p) for p in s})
    assert net.param_count(switches=False) == sum(p.numel() for p in w)
    names = [n for n, _ in net.named_switches()]
    assert names[:2] == ["cells.0.switch_origin", "cells.0.switch_child"]
    assert all(torch.equal(p, torch.ones_like(p)) for p in s)


def _cell_shapes(net, size, batch=2):
    outs, logits = net.forward_cells(torch.randn(batch, 3, size, size))
    return [tuple(o.shape) for o in outs], tuple(logits.shape)


def test_cell_shapes_darts():
    shapes, logits = _cell_shapes(Supernet(darts_space(C=4)), 8)
    assert shapes == [(2, 16, 8, 8)] * 2 + [(2, 32, 4, 4)] * 3 + [(2, 64, 2, 2)] * 3
    assert logits == (2, 10)


def test_cell_shapes_bayesnas():
    net = Supernet(bayesnas_space(C=3))
    shapes, logits = _cell_shapes(net, 8)
    assert shapes == [(2, 12, 8, 8)] * 2 + [(2, 24, 4, 4)] * 3 + [(2, 48, 2, 2)] * 3
    assert logits == (2, 10)
    # preprocessor channels follow spec §2.2.3 (C = 3 instead of 36: divide the table by 12)
    pre = [(c.preprocess1.conv.in_channels, c.preprocess0.conv.in_channels,
            c.preprocess1.conv.out_channels, c.preprocess0.size_reduct is not None)
           for c in net.cells]
    assert pre == [(9, 9, 3, False), (12, 9, 3, False), (12, 12, 6, False), (24, 12, 6, True),
                   (24, 24, 6, False), (24, 24, 12, False), (48, 24, 12, True),
                   (48, 48, 12, False)]


# ---------------------------------------------------------------------------------------------
# gates and switches


def test_gate_output_zero_origin_is_exact_zero():
    torch.manual_seed(0)
    for space in (darts_space(C=4, layers=3), bayesnas_space(C=4, layers=3)):
        net = Supernet(space, gate="output")
        cell = net.cells[0]
        x = torch.randn(2, 4, 8, 8)
        with torch.no_grad():
            cell.switch_origin[1] = 0.0
        y = cell.edge_forward(1, x)
        assert torch.equal(y, torch.zeros_like(y))
        assert cell.edge_forward(0, x).abs().sum() > 0


def test_gate_output_scales_edge_linearly():
    torch.manual_seed(0)
    cell = Supernet(bayesnas_space(C=4, layers=3), gate="output").cells[0]
    x = torch.randn(2, 4, 8, 8)
    y1 = cell.edge_forward(0, x)
    with torch.no_grad():
        cell.switch_origin[0] = 2.5
    torch.testing.assert_close(cell.edge_forward(0, x), 2.5 * y1)


def test_gate_input_bn_first_ops_ignore_origin():
    """Spec §10 item 21: with gate "input" and training-mode BN, a BN-first op's output does not
    change when s_e > 0 changes (up to eps); the parameter-free ops do change."""
    torch.manual_seed(0)
    net = Supernet(bayesnas_space(C=4, layers=3), gate="input")
    cell = net.cells[1]  # reduction cell (C = 8): its skip_connect is BN-first too
    assert cell.reduction
    x = 3.0 * torch.randn(4, 8, 8, 8)  # C doubled in the reduction cell; s^2 sigma^2 >> eps
    ops = list(net.space.ops)

    def only(o, s):
        with torch.no_grad():
            cell.switch_origin[0] = s
            cell.switch_child[0].zero_()
            cell.switch_child[0, ops.index(o)] = 1.0
        return cell.edge_forward(0, x)

    for o in ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "skip_connect"):
        torch.testing.assert_close(only(o, 1.0), only(o, 0.5), rtol=1e-3, atol=1e-4)
        torch.testing.assert_close(only(o, 1.0), only(o, 4.0), rtol=1e-3, atol=1e-4)
    for o in ("max_pool_3x3", "avg_pool_3x3"):
        torch.testing.assert_close(only(o, 2.0), 2.0 * only(o, 1.0))
    # and s_e = 0 does not zero a BN-first op: its output becomes op(beta), a constant
    # (zero only while beta is 0, as at initialisation)
    with torch.no_grad():
        cell.edges[0].ops[ops.index("sep_conv_3x3")].op[0].bias.fill_(0.5)
    y0 = only("sep_conv_3x3", 0.0)
    assert y0.abs().sum() > 0
    torch.testing.assert_close(y0, y0[:1].expand_as(y0))  # the same for every input


def test_switches_get_gradients():
    torch.manual_seed(0)
    for space in (darts_space(C=4, layers=3), bayesnas_space(C=4, layers=3)):
        for gate in ("output", "input"):
            net = Supernet(space, gate=gate)
            x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
            F.cross_entropy(net(x), y).backward()
            for name, p in net.named_switches():
                assert p.grad is not None and p.grad.shape == p.shape, name
                assert torch.isfinite(p.grad).all(), name
                if "child" in name or gate == "output":
                    assert torch.all(p.grad != 0), (space.name, gate, name, p.grad)
                else:
                    assert p.grad.abs().sum() > 0, (space.name, gate, name)


def test_bad_gate():
    with pytest.raises(ValueError, match="gate"):
        Supernet(darts_space(C=4, layers=3), gate="both")


# ---------------------------------------------------------------------------------------------
# benchmark


def test_trainer_loss_decreases():
    tr = Trainer(darts_space(C=4, layers=3), batch=4, size=8, seed=0)
    losses = [tr.step()[1] for _ in range(6)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]


BENCH = [sys.executable, "-m", "bayesnas_ref.bench_supernet", "--C", "4", "--layers", "3",
         "--batch", "2", "--size", "8", "--threads", "1"]


def test_bench_json_mode():
    out = subprocess.run(BENCH + ["--json", "--steps", "3", "--warmup", "1"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    r = json.loads(out)
    assert r["space"] == "darts" and r["C"] == 4 and r["layers"] == 3 and len(r["steps"]) == 3
    assert r["params"] == expected_count(darts_space(C=4, layers=3))
    assert math.isclose(r["images_per_second"], 2 / (r["median_ms"] / 1e3))
    assert math.isfinite(r["loss_first"]) and math.isfinite(r["loss_last"])


def test_bench_bad_space():
    p = subprocess.run(BENCH + ["--space", "nope"], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "unknown space" in p.stderr


def test_serve_round_trip():
    p = subprocess.Popen(BENCH + ["--serve", "--space", "bayesnas"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        p.stdin.write("step 2\n"); p.stdin.flush()
        r1 = json.loads(p.stdout.readline())
        p.stdin.write("step 1\n"); p.stdin.flush()
        r2 = json.loads(p.stdout.readline())
        p.stdin.write("bogus\n"); p.stdin.flush()
        r3 = json.loads(p.stdout.readline())
        p.stdin.write("quit\n"); p.stdin.flush()
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
    assert len(r1["ms"]) == 2 and len(r2["ms"]) == 1
    assert all(t > 0 for t in r1["ms"] + r2["ms"])
    assert math.isfinite(r2["loss"])
    assert "error" in r3
    ready = json.loads(p.stderr.read().splitlines()[0])
    assert ready["ready"] and ready["framework"] == "pytorch" and ready["space"] == "bayesnas"
    assert ready["params"] == expected_count(bayesnas_space(C=4, layers=3))
