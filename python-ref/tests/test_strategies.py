import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from bayesnas_ref.spaces import darts_space
from bayesnas_ref.strategies import (arch_ops, arch_step, darts_weights, snas_weights,
                                     switch_overrides)
from bayesnas_ref.supernet import Supernet


pytestmark = pytest.mark.usefixtures("one_thread")


def _net():
    torch.manual_seed(0)
    return Supernet(darts_space(C=2, layers=3), num_classes=10, in_channels=1).train()


def test_arch_ops_adds_none_once():
    assert arch_ops(["a", "b"]) == ["a", "b", "none"]
    assert arch_ops(["a", "none"]) == ["a", "none"]


def test_overrides_with_unit_weights_reproduce_the_plain_supernet():
    net = _net()
    E = len(net.cells[0].edge_list)
    O = len(arch_ops(net.space.ops))
    ones = {t: torch.ones(E, O) for t in ("normal", "reduce")}
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        a = net(x)
        b = functional_call(net, switch_overrides(net, ones), (x,))
    torch.testing.assert_close(a, b)


def test_overrides_drop_the_none_column_and_share_alpha_per_cell_type():
    net = _net()
    E = len(net.cells[0].edge_list)
    w = darts_weights({t: torch.randn(E, len(arch_ops(net.space.ops))) for t in ("normal", "reduce")})
    o = switch_overrides(net, w)
    for k, cell in enumerate(net.cells):
        assert torch.equal(o[f"cells.{k}.switch_child"], w[cell.cell_type][:, :-1])
        assert torch.equal(o[f"cells.{k}.switch_origin"], torch.ones(E))


def test_gumbel_softmax_formula_and_temperature():
    alpha = {t: torch.tensor([[0.5, -0.2, 0.1]]) for t in ("normal", "reduce")}
    u = {t: torch.tensor([[0.3, 0.9, 0.5]]) for t in ("normal", "reduce")}
    w = snas_weights(alpha, u, 0.5)["normal"]
    g = -torch.log(-torch.log(u["normal"]))
    torch.testing.assert_close(w, F.softmax((alpha["normal"] + g) / 0.5, dim=-1))
    cold = snas_weights(alpha, u, 0.05)["normal"]
    assert cold.max() > w.max()


def test_arch_step_rejects_bad_requests(tmp_path):
    with pytest.raises(ValueError, match="darts or snas"):
        arch_step("enas", "{}", "p", "b", "a", str(tmp_path / "o"))
    with pytest.raises(ValueError, match="noise"):
        arch_step("snas", "{}", "p", "b", "a", str(tmp_path / "o"))
