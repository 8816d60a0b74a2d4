import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from bayesnas_ref.bench_engine import Trainer
from bayesnas_ref.slice_net import OP_NAMES, OPS, build_slice, param_count, param_shapes


def expected_params(C=16, num_classes=10, in_channels=3):
    bn = 2 * C  # affine BN: gamma + beta
    per_op = {
        "sep_conv_3x3": 2 * (C * 9 + C * C + bn),
        "sep_conv_5x5": 2 * (C * 25 + C * C + bn),
        "dil_conv_3x3": C * 9 + C * C + bn,
        "dil_conv_5x5": C * 25 + C * C + bn,
        "max_pool_3x3": 0,  # BN affine=False
        "avg_pool_3x3": 0,
    }
    skip_s1 = 0
    skip_s2 = 2 * (C * (C // 2)) + bn  # FactorizedReduce
    switches = len(per_op) + 1
    edge1 = sum(per_op.values()) + skip_s1 + switches
    edge2 = sum(per_op.values()) + skip_s2 + switches
    stem = in_channels * C * 9 + bn
    head = C * num_classes + num_classes
    return stem + edge1 + edge2 + head


def test_param_count_matches_formula():
    m = build_slice()
    assert param_count(m) == expected_params() == 7656
    assert param_count(build_slice(C=8, num_classes=5)) == expected_params(8, 5)
    shapes = param_shapes(m)
    assert shapes == param_shapes(build_slice())  # deterministic order
    assert sum(math.prod(s) for _, s in shapes) == 7656
    assert shapes[0] == ("stem.0.weight", (16, 3, 3, 3))
    assert ("edge1.switches", (7,)) in shapes and ("edge2.switches", (7,)) in shapes


def test_registry_order():
    assert OP_NAMES == ["sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
                        "max_pool_3x3", "avg_pool_3x3", "skip_connect"]


@pytest.mark.parametrize("name", OP_NAMES)
@pytest.mark.parametrize("stride", [1, 2])
def test_op_shapes(name, stride):
    op = OPS[name](16, stride)
    x = torch.randn(2, 16, 32, 32)
    assert op(x).shape == (2, 16, 32 // stride, 32 // stride)


def test_edge_and_output_shapes():
    m = build_slice()
    x = torch.randn(4, 3, 32, 32)
    h = m.stem(x)
    h1 = m.edge1(h)
    h2 = m.edge2(h1)
    assert h1.shape == (4, 16, 32, 32)
    assert h2.shape == (4, 16, 16, 16)
    assert m(x).shape == (4, 10)
    assert build_slice()(torch.randn(3, 3, 8, 8)).shape == (3, 10)


def test_switch_gradients_nonzero():
    torch.manual_seed(0)
    m = build_slice()
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    F.cross_entropy(m(x), y).backward()
    for edge in (m.edge1, m.edge2):
        g = edge.switches.grad
        assert g is not None and g.shape == (7,)
        assert torch.all(g != 0), g


def test_loss_finite_and_decreasing():
    tr = Trainer(batch=4, size=8, seed=0)
    losses = [tr.step()[1] for _ in range(8)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]


def test_serve_round_trip():
    cmd = [sys.executable, "-m", "bayesnas_ref.bench_engine", "--serve",
           "--batch", "4", "--size", "8", "--threads", "1"]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        # interleaved, as a driver would: one reply line per command
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
    assert ready["ready"] and ready["framework"] == "pytorch" and ready["params"] == 7656
