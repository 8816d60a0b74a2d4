"""Supernet slice for the engine benchmark (PyTorch, NCHW).

stem (conv3x3 + BN) -> mixed edge stride 1 (+ residual) -> mixed edge stride 2
-> global average pool -> Linear -> logits.

A mixed edge computes  y = sum_o s_o * op_o(x)  over the 7 DARTS candidate ops,
with one trainable scalar switch s_o per op (stored as one vector of length 7,
initialised to 1.0). At stride 1 the edge adds a residual: out = x + y. At
stride 2 the input and output shapes differ, so there is no residual: out = y.

Op conventions follow the DARTS operations: bias-free convolutions, BatchNorm
with PyTorch defaults (eps 1e-5, momentum 0.1), affine except after pooling.
"""
from __future__ import annotations

import json

import torch
from torch import nn


def _bn(c: int, affine: bool = True) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, affine=affine)


class SepConv(nn.Sequential):
    """Two stacked (ReLU, depthwise k x k, pointwise 1x1, BN); stride on the first."""

    def __init__(self, c: int, k: int, stride: int):
        p = k // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, k, stride=stride, padding=p, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            _bn(c),
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, k, stride=1, padding=p, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            _bn(c),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise k x k with dilation 2, pointwise 1x1, BN."""

    def __init__(self, c: int, k: int, stride: int):
        d = 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, k, stride=stride, padding=d * (k // 2), dilation=d,
                      groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            _bn(c),
        )


class FactorizedReduce(nn.Module):
    """ReLU, then two 1x1 stride-2 convs (on x and on x shifted by one pixel),
    concatenated along channels, then BN."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        assert c_out % 2 == 0
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = _bn(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def _skip(c: int, stride: int) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(c, c)


# name -> builder(C, stride). Order is the op order of a mixed edge.
OPS = {
    "sep_conv_3x3": lambda c, s: SepConv(c, 3, s),
    "sep_conv_5x5": lambda c, s: SepConv(c, 5, s),
    "dil_conv_3x3": lambda c, s: DilConv(c, 3, s),
    "dil_conv_5x5": lambda c, s: DilConv(c, 5, s),
    "max_pool_3x3": lambda c, s: nn.Sequential(
        nn.MaxPool2d(3, stride=s, padding=1), _bn(c, affine=False)),
    "avg_pool_3x3": lambda c, s: nn.Sequential(
        nn.AvgPool2d(3, stride=s, padding=1, count_include_pad=False), _bn(c, affine=False)),
    "skip_connect": _skip,
}
OP_NAMES = list(OPS)


class MixedEdge(nn.Module):
    def __init__(self, c: int, stride: int, op_names=OP_NAMES):
        super().__init__()
        self.stride = stride
        self.op_names = list(op_names)
        self.ops = nn.ModuleList(OPS[n](c, stride) for n in self.op_names)
        self.switches = nn.Parameter(torch.ones(len(self.op_names)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = sum(self.switches[i] * op(x) for i, op in enumerate(self.ops))
        return x + y if self.stride == 1 else y


class SliceNet(nn.Module):
    def __init__(self, C: int = 16, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C, 3, padding=1, bias=False), _bn(C))
        self.edge1 = MixedEdge(C, 1)
        self.edge2 = MixedEdge(C, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.edge1(x)
        x = self.edge2(x)
        return self.classifier(torch.flatten(self.pool(x), 1))


def build_slice(C: int = 16, num_classes: int = 10, in_channels: int = 3) -> SliceNet:
    return SliceNet(C, num_classes, in_channels)


def param_count(model: nn.Module) -> int:
    """Number of trainable scalars (BN running stats are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def param_shapes(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every parameter, in registration order (deterministic)."""
    return [(n, tuple(p.shape)) for n, p in model.named_parameters()]


if __name__ == "__main__":  # print the parameter list as JSON
    m = build_slice()
    rows = ",\n  ".join(json.dumps([n, list(s)]) for n, s in param_shapes(m))
    print('{"params": %d,\n "shapes": [\n  %s\n ]}' % (param_count(m), rows))
