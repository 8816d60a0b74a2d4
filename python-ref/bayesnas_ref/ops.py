"""Candidate operations of a supernet edge, in two flavours (PyTorch, NCHW).

Every op is built as ``OPS[flavour][name](C, stride)``: C channels in and out, spatial size
divided by ``stride`` (1 or 2; inputs of stride-2 ops have even sizes). All convolutions are
bias-free; every BatchNorm uses PyTorch's defaults (eps 1e-5, momentum 0.1).

flavour "darts"  (DARTS search space, spec §2.1; ReLU-conv-BN, affine BN)
  sep_conv_k    op = [ReLU, dw k (stride s), 1x1, BN, ReLU, dw k, 1x1, BN]
  dil_conv_k    op = [ReLU, dw k dilation 2 (stride s), 1x1, BN]
  max_pool_3x3  [MaxPool 3 pad 1 (pads with -inf), BN(affine=False)]
  avg_pool_3x3  [AvgPool 3 pad 1 count_include_pad=False, BN(affine=False)]
  skip_connect  identity; stride 2: FactorizedReduce (ReLU, two 1x1 stride-2 convs on x and on
                x shifted by one pixel, concatenated, BN)
  none          zeros of the output shape (stride 2: x[:, :, ::2, ::2] * 0)

flavour "bayesnas" (the official search network, spec §2.2.1; pre-activation BN-ReLU-conv)
  sep_conv_k    op = [BN, ReLU, dw k (stride s), 1x1, BN, ReLU, dw k, 1x1]
  dil_conv_k    op = [BN, ReLU, FULL k x k conv C->C dilation 2 (stride s), 1x1]
  max_pool_3x3  zero-pad 1 (pad value 0, not -inf), then MaxPool 3 (stride s), no BN
  avg_pool_3x3  AvgPool 3 pad 1 count_include_pad=True (= zero-pad then divide by 9), no BN
  skip_connect  identity; stride 2: op = [BN, 1x1 conv stride 2] (no ReLU)
  none          not part of this flavour (raises)

The official code zero-pads with F.pad and then convolves without padding; here the zero
padding is the convolution's own ``padding`` argument, which is the same function.

Parameter names (state_dict keys below an op's prefix; TypeScript mirrors them):
  darts    sep_conv_k   op.1.weight (dw) op.2.weight (1x1) op.3.{weight,bias} (BN)
                        op.5.weight (dw) op.6.weight (1x1) op.7.{weight,bias} (BN)
           dil_conv_k   op.1.weight (dw) op.2.weight (1x1) op.3.{weight,bias} (BN)
           pools        1.* (BN affine=False: buffers only)
           skip s2      conv_1.weight conv_2.weight bn.{weight,bias}
  bayesnas sep_conv_k   op.0.{weight,bias} (BN) op.2.weight (dw) op.3.weight (1x1)
                        op.4.{weight,bias} (BN) op.6.weight (dw) op.7.weight (1x1)
           dil_conv_k   op.0.{weight,bias} (BN) op.2.weight (full dilated) op.3.weight (1x1)
           skip s2      op.0.{weight,bias} (BN) op.1.weight (1x1 stride 2)
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

FLAVOURS = ("darts", "bayesnas")

# The seven non-zero DARTS candidates, in the order used by the presets and the engine slice.
OP_NAMES = ["sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
            "max_pool_3x3", "avg_pool_3x3", "skip_connect"]
ALL_OP_NAMES = OP_NAMES + ["none"]


def bn(c: int, affine: bool = True) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1, affine=affine)


def conv(cin: int, cout: int, k: int, stride: int = 1, padding: int = 0, dilation: int = 1,
         groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation,
                     groups=groups, bias=False)


def _kernel(name: str) -> int:
    return int(name.rsplit("x", 1)[1])


# ---------------------------------------------------------------------------------------------
# darts flavour


class DartsSepConv(nn.Module):
    def __init__(self, C: int, k: int, stride: int):
        super().__init__()
        p = k // 2
        self.op = nn.Sequential(
            nn.ReLU(inplace=False), conv(C, C, k, stride, p, groups=C), conv(C, C, 1), bn(C),
            nn.ReLU(inplace=False), conv(C, C, k, 1, p, groups=C), conv(C, C, 1), bn(C))

    def forward(self, x):
        return self.op(x)


class DartsDilConv(nn.Module):
    def __init__(self, C: int, k: int, stride: int):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False), conv(C, C, k, stride, 2 * (k // 2), dilation=2, groups=C),
            conv(C, C, 1), bn(C))

    def forward(self, x):
        return self.op(x)


class FactorizedReduce(nn.Module):
    """ReLU, 1x1 stride-2 conv on x and on x shifted by one pixel (cout/2 each), concat, BN."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        if cout % 2:
            raise ValueError(f"FactorizedReduce needs an even output channel count, got {cout}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = conv(cin, cout // 2, 1, 2)
        self.conv_2 = conv(cin, cout // 2, 1, 2)
        self.bn = bn(cout)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class Zero(nn.Module):
    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


def _darts_skip(C: int, stride: int) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(C, C)


# ---------------------------------------------------------------------------------------------
# bayesnas flavour (official search/OneShot.py semantics)


class BayesSepConv(nn.Module):
    def __init__(self, C: int, k: int, stride: int):
        super().__init__()
        p = k // 2
        self.op = nn.Sequential(
            bn(C), nn.ReLU(inplace=False), conv(C, C, k, stride, p, groups=C), conv(C, C, 1),
            bn(C), nn.ReLU(inplace=False), conv(C, C, k, 1, p, groups=C), conv(C, C, 1))

    def forward(self, x):
        return self.op(x)


class BayesDilConv(nn.Module):
    def __init__(self, C: int, k: int, stride: int):
        super().__init__()
        self.op = nn.Sequential(
            bn(C), nn.ReLU(inplace=False), conv(C, C, k, stride, 2 * (k // 2), dilation=2),
            conv(C, C, 1))

    def forward(self, x):
        return self.op(x)


class ZeroPadMaxPool(nn.Module):
    """Zero padding of 1 (value 0, not -inf), then a 3x3 max pool."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return F.max_pool2d(F.pad(x, [1, 1, 1, 1], value=0.0), 3, self.stride)


def _bayes_skip(C: int, stride: int) -> nn.Module:
    if stride == 1:
        return nn.Identity()
    return _Wrap(nn.Sequential(bn(C), conv(C, C, 1, stride)))


class _Wrap(nn.Module):
    """A module whose only child is ``op`` (keeps the state_dict prefix ``op.``)."""

    def __init__(self, op: nn.Module):
        super().__init__()
        self.op = op

    def forward(self, x):
        return self.op(x)


def _bayes_none(C: int, stride: int) -> nn.Module:
    raise ValueError("op 'none' does not exist in the bayesnas flavour: the edge's origin switch "
                     "carries the zero decision (spec §2.2.1)")


Builder = Callable[[int, int], nn.Module]

OPS: dict[str, dict[str, Builder]] = {
    "darts": {
        "sep_conv_3x3": lambda C, s: DartsSepConv(C, 3, s),
        "sep_conv_5x5": lambda C, s: DartsSepConv(C, 5, s),
        "dil_conv_3x3": lambda C, s: DartsDilConv(C, 3, s),
        "dil_conv_5x5": lambda C, s: DartsDilConv(C, 5, s),
        "max_pool_3x3": lambda C, s: nn.Sequential(nn.MaxPool2d(3, s, padding=1), bn(C, False)),
        "avg_pool_3x3": lambda C, s: nn.Sequential(
            nn.AvgPool2d(3, s, padding=1, count_include_pad=False), bn(C, False)),
        "skip_connect": _darts_skip,
        "none": lambda C, s: Zero(s),
    },
    "bayesnas": {
        "sep_conv_3x3": lambda C, s: BayesSepConv(C, 3, s),
        "sep_conv_5x5": lambda C, s: BayesSepConv(C, 5, s),
        "dil_conv_3x3": lambda C, s: BayesDilConv(C, 3, s),
        "dil_conv_5x5": lambda C, s: BayesDilConv(C, 5, s),
        "max_pool_3x3": lambda C, s: ZeroPadMaxPool(s),
        "avg_pool_3x3": lambda C, s: nn.AvgPool2d(3, s, padding=1, count_include_pad=True),
        "skip_connect": _bayes_skip,
        "none": _bayes_none,
    },
}


def op_names(flavour: str) -> list[str]:
    """The op names a flavour accepts."""
    _check_flavour(flavour)
    return list(ALL_OP_NAMES) if flavour == "darts" else list(OP_NAMES)


def _check_flavour(flavour: str) -> None:
    if flavour not in OPS:
        raise ValueError(f"unknown op flavour {flavour!r}; expected one of {list(FLAVOURS)}")


def build_op(flavour: str, name: str, C: int, stride: int) -> nn.Module:
    _check_flavour(flavour)
    if name not in OPS[flavour]:
        raise ValueError(f"unknown op {name!r} for flavour {flavour!r}; "
                         f"expected one of {op_names(flavour)}")
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride}")
    return OPS[flavour][name](C, stride)


def op_param_count(flavour: str, name: str, C: int, stride: int) -> int:
    """Trainable parameters of OPS[flavour][name](C, stride), in closed form (BN = 2C)."""
    _check_flavour(flavour)
    if name not in op_names(flavour):
        raise ValueError(f"unknown op {name!r} for flavour {flavour!r}")
    if name in ("max_pool_3x3", "avg_pool_3x3", "none"):
        return 0
    if name == "skip_connect":
        # darts: FactorizedReduce(C, C) = 2 * C*(C/2) + BN(C); bayesnas: BN(C) + C*C
        return 0 if stride == 1 else C * C + 2 * C
    k = _kernel(name)
    if name.startswith("sep_conv"):
        return 2 * (C * k * k + C * C + 2 * C)  # both flavours: 2 x (dw, 1x1, BN)
    # dil_conv
    if flavour == "darts":
        return C * k * k + C * C + 2 * C       # dw, 1x1, BN
    return 2 * C + C * C * k * k + C * C       # BN, full k x k, 1x1
