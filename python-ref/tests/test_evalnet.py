"""Evaluation networks (bayesnas_ref.evalnet): structure, parameter counts, auxiliary head,
drop-path, and the Arrow exchange with the TypeScript side."""
import json

import pytest
import torch

from bayesnas_ref.evalnet import (EVAL_OPS, NetworkCIFAR, NetworkImageNet, build_evalnet, cell_nodes,
                                  count_params, drop_path, export_fresh, forward_backward)
from bayesnas_ref.genotypes import PUBLISHED, Genotype
from bayesnas_ref.tsweights import load_ts_params, read_tensor_file, write_batch


def test_darts_v2_counts_match_the_darts_paper_figures():
    # DARTS reports 3.3M (CIFAR-10, 20 cells, 36 channels) and 4.7M (ImageNet, 14 cells, 48 channels)
    assert NetworkCIFAR(PUBLISHED["DARTS_V2"], 36, 20, 10, auxiliary=True).param_count() == 3_349_342
    assert NetworkImageNet(PUBLISHED["DARTS_V2"], 48, 14, 1000, auxiliary=True).param_count() == 4_718_752


def _closed_form_cifar(g, C, layers, classes=10, in_ch=3):
    """Sum of the parts, written out independently of the module tree."""
    def op(name, Ck, stride):
        if name in ("none", "max_pool_3x3", "avg_pool_3x3"):
            return 0
        if name == "skip_connect":
            return 0 if stride == 1 else Ck * Ck + 2 * Ck
        k = int(name[-1])
        if name.startswith("sep"):
            return 2 * (k * k * Ck + Ck * Ck + 2 * Ck)
        return k * k * Ck + Ck * Ck + 2 * Ck
    total = in_ch * 3 * C * 9 + 2 * 3 * C
    Cpp, Cp, Ck, red_prev = 3 * C, 3 * C, C, False
    for i in range(layers):
        red = i in (layers // 3, 2 * layers // 3)
        Ck = Ck * 2 if red else Ck
        total += Cpp * Ck + 2 * Ck     # ReLU-conv-BN, or FactorizedReduce: 2 x Cpp*Ck/2 + BN
        total += Cp * Ck + 2 * Ck
        nodes = cell_nodes(g.reduce if red else g.normal)
        total += sum(op(o, Ck, 2 if red and j < 2 else 1) for node in nodes for o, j in node)
        concat = g.reduce_concat if red else g.normal_concat
        Cpp, Cp, red_prev = Cp, len(concat) * Ck, red
    return total + Cp * classes + classes


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_counts_equal_the_closed_form_for_every_published_genotype(name):
    g = PUBLISHED[name]
    assert NetworkCIFAR(g, 36, 20).param_count() == _closed_form_cifar(g, 36, 20)
    assert NetworkCIFAR(g, 16, 8, in_channels=1).param_count() == _closed_form_cifar(g, 16, 8, in_ch=1)


def test_auxiliary_head_is_counted_apart_and_only_runs_in_training():
    net = NetworkCIFAR(PUBLISHED["DARTS_V2"], 36, 20, 10, auxiliary=True)
    head = 576 * 128 + 2 * 128 + 128 * 768 * 4 + 2 * 768 + 768 * 10 + 10
    assert net.param_count(auxiliary=True) - net.param_count() == head
    small = NetworkCIFAR(PUBLISHED["DARTS_V2"], 4, 5, 10, auxiliary=True, in_channels=1)
    x = torch.randn(3, 1, 28, 28)
    logits, aux = small.train()(x)
    assert logits.shape == (3, 10) and aux.shape == (3, 10)
    logits, aux = small.eval()(x)
    assert aux is None


@pytest.mark.parametrize("size", [8, 16, 28, 32])
def test_auxiliary_head_fits_any_input_size(size):
    net = NetworkCIFAR(PUBLISHED["DARTS_V1"], 4, 3, 7, auxiliary=True).train()
    logits, aux = net(torch.randn(2, 3, size, size))
    assert logits.shape == aux.shape == (2, 7)


def test_reductions_and_channels():
    net = NetworkCIFAR(PUBLISHED["DARTS_V2"], 8, 8)
    assert [c.reduction for c in net.cells] == [i in (2, 5) for i in range(8)]
    assert [c.out_channels for c in net.cells] == [32, 32, 64, 64, 64, 128, 128, 128]
    assert net.classifier.in_features == 128


def test_imagenet_first_cell_reduces_the_stem0_output():
    net = NetworkImageNet(PUBLISHED["DARTS_V2"], 8, 5, 10, auxiliary=True).train()
    from bayesnas_ref.ops import FactorizedReduce
    assert isinstance(net.cells[0].preprocess0, FactorizedReduce)
    logits, aux = net(torch.randn(2, 3, 64, 64))
    assert logits.shape == aux.shape == (2, 10)
    # no BN after the auxiliary head's 2x2 conv on ImageNet (as DARTS)
    assert not isinstance(net.auxiliary_head.features[6], torch.nn.BatchNorm2d)


def test_general_cells_sum_every_entry_and_flat_equals_grouped():
    g = PUBLISHED["DARTS_V2"]
    grouped = Genotype(normal=cell_nodes(g.normal), normal_concat=g.normal_concat,
                       reduce=cell_nodes(g.reduce), reduce_concat=g.reduce_concat)
    torch.manual_seed(0)
    a = NetworkCIFAR(g, 4, 3)
    torch.manual_seed(0)
    b = NetworkCIFAR(grouped, 4, 3)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(a.eval()(x)[0], b.eval()(x)[0])
    bn = PUBLISHED["BAYESNAS_LAMBDA_0_01"]
    net = NetworkCIFAR(bn, 4, 3)
    assert [len(r) for r in net.cells[0].entries] == [5, 2, 2, 1]
    assert len(net.cells[0].ops) == 10


def test_pools_have_no_bn_and_reduction_ops_have_stride_2():
    net = NetworkCIFAR(PUBLISHED["DARTS_V2"], 4, 3)
    red = net.cells[1]
    assert red.reduction
    assert isinstance(red.ops[0], torch.nn.MaxPool2d) and red.ops[0].stride == 2
    # node 1 of the reduce cell: skip_connect from node 0 (stride 1: identity)
    assert isinstance(red.ops[2], torch.nn.Identity)


def test_drop_path_masks_whole_samples_and_spares_identities():
    torch.manual_seed(1)
    x = torch.ones(200, 2, 3, 3)
    y = drop_path(x, 0.25)
    per = y.flatten(1)
    assert torch.all((per == 0).all(1) | (per == 1 / 0.75).all(1))
    assert 0.6 < (per[:, 0] > 0).float().mean().item() < 0.9
    net = NetworkCIFAR(PUBLISHED["DARTS_V2"], 4, 3).train()
    net.drop_path_prob = 0.5
    x = torch.randn(4, 3, 8, 8)
    torch.manual_seed(3)
    a = net(x)[0]
    net.drop_path_prob = 0.0
    b = net(x)[0]
    assert not torch.allclose(a, b)


def test_unknown_op_is_an_error():
    g = Genotype(normal=[("conv_7x7", 0), ("skip_connect", 1)], normal_concat=[2],
                 reduce=[("max_pool_3x3", 0), ("skip_connect", 1)], reduce_concat=[2])
    with pytest.raises(ValueError, match="conv_7x7"):
        NetworkCIFAR(g, 4, 3)
    assert set(EVAL_OPS) >= {"sep_conv_3x3", "dil_conv_5x5", "none"}


def test_count_params_entry_point_reads_a_repr():
    j = json.loads(count_params(repr(PUBLISHED["SNAS_MILD"]), 36, 20))
    net = NetworkCIFAR(PUBLISHED["SNAS_MILD"], 36, 20, auxiliary=True)
    assert j == {"params": net.param_count(), "params_auxiliary": net.param_count(True)}


def test_export_load_and_forward_backward_through_arrow_files(tmp_path):
    g = repr(PUBLISHED["BAYESNAS_LAMBDA_0_007"])
    export_fresh(g, str(tmp_path / "p.arrow"), 4, 3, auxiliary=True, in_channels=1, seed=5)
    rows, meta = read_tensor_file(tmp_path / "p.arrow")
    names = {r.name for r in rows}
    assert "cells.0.ops.0.op.1.weight" in names and "auxiliary_head.classifier.weight" in names
    net = build_evalnet(g, 4, 3, auxiliary=True, in_channels=1)
    info = load_ts_params(net, tmp_path / "p.arrow")
    assert not info["missing"] and not info["unexpected"]
    torch.manual_seed(5)
    ref = build_evalnet(g, 4, 3, auxiliary=True, in_channels=1)
    for (n, p), (_, q) in zip(net.state_dict().items(), ref.state_dict().items()):
        assert torch.equal(p, q), n
    write_batch(tmp_path / "b.arrow", torch.randn(3, 1, 16, 16), torch.tensor([0, 1, 2]))
    r = forward_backward(g, str(tmp_path / "p.arrow"), str(tmp_path / "b.arrow"), str(tmp_path / "o.arrow"),
                         4, 3, auxiliary=True, in_channels=1)
    out = {row.name: row for row in read_tensor_file(tmp_path / "o.arrow")[0]}
    assert out["logits"].shape == (3, 10) and out["logits_aux"].shape == (3, 10)
    assert abs(float(out["loss"].data[0]) - r["loss"]) < 1e-5
    assert out["cells.0.ops.0.op.1.weight"].shape == (3, 3, 4, 1)   # TS depthwise layout


@pytest.mark.parametrize("name,cifar,imagenet", [("BAYESNAS_LAMBDA_0_01", 2_575_702, 4_008_928),
                                                ("BAYESNAS_LAMBDA_0_007", 3_197_350, 4_709_920),
                                                ("BAYESNAS_LAMBDA_0_005", 2_512_198, 3_901_216)])
def test_official_style_counts_are_the_spec_figures(name, cifar, imagenet):
    g = PUBLISHED[name]
    assert NetworkCIFAR(g, 36, 20, style="bayesnas").param_count() == cifar
    assert NetworkImageNet(g, 48, 14, 1000, style="bayesnas").param_count() == imagenet


def test_official_style_uses_channel_dropout_on_every_op_and_a_head_bn():
    net = NetworkCIFAR(PUBLISHED["BAYESNAS_LAMBDA_0_01"], 4, 3, style="bayesnas")
    assert net.head_bn is not None and len(net.stem) == 1
    assert all(c.channel_dropout for c in net.cells)
    with pytest.raises(ValueError, match="none"):
        NetworkCIFAR(Genotype(normal=[("none", 0), ("skip_connect", 1)], normal_concat=[2],
                              reduce=[("max_pool_3x3", 0), ("skip_connect", 1)], reduce_concat=[2]),
                     4, 3, style="bayesnas")
