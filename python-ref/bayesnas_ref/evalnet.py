"""Evaluation networks built from a genotype (spec §7.4, §7.5), in the structure of DARTS's
NetworkCIFAR and NetworkImageNet, for the general genotype of this project: node j sums all of
its (op, input) entries, so DARTS's two-entries-per-node cells and BayesNAS's cells (any number
of entries, several ops on one input) build the same way.

NetworkCIFAR(genotype, C, layers, num_classes, auxiliary, in_channels)
  stem      3x3 conv in -> 3C, BN
  cells     `layers` cells; reduction cells at layers//3 and 2*layers//3 double the channels
  aux head  on the output of cell 2*layers//3 (training only): ReLU, AvgPool(k, stride H-k,
            k = min(5, H-1); DARTS's AvgPool(5, 3) at 8x8), 1x1 conv -> 128, BN, ReLU,
            2x2 conv -> 768, BN, ReLU, Linear(768, classes)
  head      global average pool, Linear(C_prev, classes)

NetworkImageNet(...) (spec §7.5)
  stem0     3x3 s2 conv in -> C/2, BN, ReLU, 3x3 s2 conv C/2 -> C, BN
  stem1     ReLU, 3x3 s2 conv C -> C, BN; the first cell reads (stem0, stem1), so its c_{k-2}
            preprocessor is a FactorizedReduce
  aux head  as CIFAR without the BN after the 2x2 conv (AvgPool(5, 2) at 7x7)
  head      global average pool (the 7x7 pool at 224x224), Linear

Cell: preprocess0 = FactorizedReduce(C_pp, C) after a reduction cell, else ReLU-1x1 conv-BN;
preprocess1 = ReLU-1x1 conv-BN. In a reduction cell, ops reading state 0 or 1 have stride 2.
Ops (DARTS operations.py): sep/dil convs and FactorizedReduce as in ops.py's darts flavour;
pools WITHOUT the BN that the search network adds; skip_connect = identity (stride 1).
Drop-path: in training with drop_path_prob > 0, every op output except identities is
multiplied by a per-sample Bernoulli(1-p) mask / (1-p).

style="bayesnas" builds the official BayesNAS evaluation network instead (spec §7.4, §7.5; the
counts of the published cells are those of spec §7.2): stem conv without BN (ImageNet: stem1
without BN), CReduct preprocessors (supernet.py), the pre-activation "bayesnas" ops of ops.py,
dropout2d with drop_path_prob on every op output (identities included) instead of drop-path, and
head_bn before the global pool.

forward(x) returns (logits, logits_aux); logits_aux is None unless auxiliary and training.

state_dict names (the TypeScript side, src/evalnet/network.ts, uses the same ones):
  stem.0 / stem.1, or stem0.{0,1,3,4} and stem1.{1,2}
  cells.{i}.preprocess{0,1}.op.{1,2}.*  or  cells.{i}.preprocess0.{conv_1,conv_2,bn}.*
  cells.{i}.ops.{k}.*     k counts the cell's entries node by node; sep/dil convs: op.{1,2,3,...}
  auxiliary_head.features.{2,3,5,6}.*, auxiliary_head.classifier.*
  classifier.*
"""
from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .genotypes import Genotype, load_genotype, parse_repr
from .ops import DartsDilConv, DartsSepConv, FactorizedReduce, Zero, bn, build_op, conv
from .supernet import CReduct, ReLUConvBN

EVAL_OPS = {
    "none": lambda C, s: Zero(s),
    "max_pool_3x3": lambda C, s: nn.MaxPool2d(3, s, padding=1),
    "avg_pool_3x3": lambda C, s: nn.AvgPool2d(3, s, padding=1, count_include_pad=False),
    "skip_connect": lambda C, s: nn.Identity() if s == 1 else FactorizedReduce(C, C),
    "sep_conv_3x3": lambda C, s: DartsSepConv(C, 3, s),
    "sep_conv_5x5": lambda C, s: DartsSepConv(C, 5, s),
    "dil_conv_3x3": lambda C, s: DartsDilConv(C, 3, s),
    "dil_conv_5x5": lambda C, s: DartsDilConv(C, 5, s),
}

AUX_PREFIX = "auxiliary_head."


def cell_nodes(cell) -> list[list[tuple[str, int]]]:
    """A genotype cell as one list of (op, input) per node: a flat DARTS list is read as pairs."""
    cell = list(cell)
    if cell and not isinstance(cell[0][0], str):      # grouped: one list of pairs per node
        return [[(str(o), int(i)) for o, i in node] for node in cell]
    if len(cell) % 2:
        raise ValueError(f"a flat cell needs two entries per node, got {len(cell)} entries")
    return [[(str(o), int(i)) for o, i in cell[j:j + 2]] for j in range(0, len(cell), 2)]


def drop_path(x: torch.Tensor, p: float) -> torch.Tensor:
    keep = 1.0 - p
    mask = torch.empty(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask / keep


class EvalCell(nn.Module):
    def __init__(self, nodes, concat, C_pp: int, C_p: int, C: int, reduction: bool,
                 reduction_prev: bool, style: str = "darts"):
        super().__init__()
        self.reduction = reduction
        self.channel_dropout = style == "bayesnas"
        if style == "bayesnas":
            self.preprocess0 = CReduct(C_pp, C, size_reduct=reduction_prev)
            self.preprocess1 = CReduct(C_p, C)
        else:
            self.preprocess0 = FactorizedReduce(C_pp, C) if reduction_prev else ReLUConvBN(C_pp, C)
            self.preprocess1 = ReLUConvBN(C_p, C)
        self.entries: list[list[tuple[int, int, bool]]] = []   # (op index, input, is identity)
        ops = []
        for node in nodes:
            row = []
            for name, inp in node:
                if name not in EVAL_OPS:
                    raise ValueError(f"unknown op {name!r}; expected one of {sorted(EVAL_OPS)}")
                stride = 2 if reduction and inp < 2 else 1
                op = build_op("bayesnas", name, C, stride) if style == "bayesnas" else EVAL_OPS[name](C, stride)
                row.append((len(ops), inp, isinstance(op, nn.Identity)))
                ops.append(op)
            self.entries.append(row)
        self.ops = nn.ModuleList(ops)
        self.concat = list(concat)
        self.out_channels = len(self.concat) * C

    def forward(self, s0, s1, drop_prob: float = 0.0):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for row in self.entries:
            acc = None
            for k, inp, ident in row:
                h = self.ops[k](states[inp])
                if self.training and drop_prob > 0 and self.channel_dropout:
                    h = F.dropout2d(h, drop_prob, training=True)
                elif self.training and drop_prob > 0 and not ident:
                    h = drop_path(h, drop_prob)
                acc = h if acc is None else acc + h
            states.append(acc)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxPool(nn.Module):
    """Average pool to a 2x2 map: kernel min(5, H-1), stride H - kernel, no padding."""

    def forward(self, x):
        H = x.shape[-1]
        if H < 2:
            raise ValueError(f"auxiliary head needs at least a 2x2 map, got {H}x{H}")
        k = min(5, H - 1)
        return F.avg_pool2d(x, k, stride=H - k, padding=0, count_include_pad=False)


class AuxiliaryHead(nn.Module):
    def __init__(self, C: int, num_classes: int, final_bn: bool):
        super().__init__()
        layers = [nn.ReLU(inplace=False), AuxPool(), conv(C, 128, 1), bn(128),
                  nn.ReLU(inplace=False), conv(128, 768, 2)]
        if final_bn:
            layers.append(bn(768))
        layers.append(nn.ReLU(inplace=False))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def _genotype(g) -> Genotype:
    if isinstance(g, Genotype) or (hasattr(g, "normal") and hasattr(g, "reduce")):
        return g
    if isinstance(g, str):
        return parse_repr(g) if "Genotype(" in g else load_genotype(g)
    raise TypeError(f"not a genotype: {g!r}")


class _EvalNetwork(nn.Module):
    kind = "cifar"

    def _build_cells(self, genotype, C, layers, C_pp, C_p, reduction_prev, style="darts"):
        if style not in ("darts", "bayesnas"):
            raise ValueError(f"style must be darts or bayesnas, got {style!r}")
        self.style = style
        g = _genotype(genotype)
        self.genotype = g
        self.layers = layers
        self.reductions = [layers // 3, 2 * layers // 3]
        self.aux_at = 2 * layers // 3
        self.drop_path_prob = 0.0
        cells, C_cur, C_aux = [], C, None
        for i in range(layers):
            reduction = i in self.reductions
            if reduction:
                C_cur *= 2
            nodes = cell_nodes(g.reduce if reduction else g.normal)
            concat = list(g.reduce_concat if reduction else g.normal_concat)
            cell = EvalCell(nodes, concat, C_pp, C_p, C_cur, reduction, reduction_prev, style)
            cells.append(cell)
            reduction_prev = reduction
            C_pp, C_p = C_p, cell.out_channels
            if i == self.aux_at:
                C_aux = C_p
        self.cells = nn.ModuleList(cells)
        return C_p, C_aux

    def _run(self, s0, s1):
        logits_aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_at and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        if self.head_bn is not None:
            s1 = self.head_bn(s1)
        out = F.adaptive_avg_pool2d(s1, 1).flatten(1)
        return self.classifier(out), logits_aux

    def param_count(self, auxiliary: bool = False) -> int:
        """Trainable scalars; the auxiliary head counts only with ``auxiliary`` (DARTS's count)."""
        return sum(p.numel() for n, p in self.named_parameters()
                   if p.requires_grad and (auxiliary or not n.startswith(AUX_PREFIX)))


class NetworkCIFAR(_EvalNetwork):
    kind = "cifar"

    def __init__(self, genotype, C: int = 36, layers: int = 20, num_classes: int = 10,
                 auxiliary: bool = False, in_channels: int = 3, style: str = "darts"):
        super().__init__()
        C_stem = 3 * C
        stem = [conv(in_channels, C_stem, 3, 1, 1)] + ([] if style == "bayesnas" else [bn(C_stem)])
        self.stem = nn.Sequential(*stem)
        C_p, C_aux = self._build_cells(genotype, C, layers, C_stem, C_stem, False, style)
        self.auxiliary_head = AuxiliaryHead(C_aux, num_classes, True) if auxiliary else None
        self.head_bn = bn(C_p) if style == "bayesnas" else None
        self.classifier = nn.Linear(C_p, num_classes)

    def forward(self, x):
        s = self.stem(x)
        return self._run(s, s)


class NetworkImageNet(_EvalNetwork):
    kind = "imagenet"

    def __init__(self, genotype, C: int = 48, layers: int = 14, num_classes: int = 1000,
                 auxiliary: bool = False, in_channels: int = 3, style: str = "darts"):
        super().__init__()
        if C % 2:
            raise ValueError(f"C must be even, got {C}")
        self.stem0 = nn.Sequential(
            conv(in_channels, C // 2, 3, 2, 1), bn(C // 2), nn.ReLU(inplace=False),
            conv(C // 2, C, 3, 2, 1), bn(C))
        stem1 = [nn.ReLU(inplace=False), conv(C, C, 3, 2, 1)] + ([] if style == "bayesnas" else [bn(C)])
        self.stem1 = nn.Sequential(*stem1)
        C_p, C_aux = self._build_cells(genotype, C, layers, C, C, True, style)
        self.auxiliary_head = AuxiliaryHead(C_aux, num_classes, False) if auxiliary else None
        self.head_bn = bn(C_p) if style == "bayesnas" else None
        self.classifier = nn.Linear(C_p, num_classes)

    def forward(self, x):
        s0 = self.stem0(x)
        return self._run(s0, self.stem1(s0))


def build_evalnet(genotype, C: int, layers: int, kind: str = "cifar", num_classes: int | None = None,
                  auxiliary: bool = False, in_channels: int = 3, style: str = "darts") -> _EvalNetwork:
    if kind == "cifar":
        return NetworkCIFAR(genotype, C, layers, num_classes or 10, auxiliary, in_channels, style)
    if kind == "imagenet":
        return NetworkImageNet(genotype, C, layers, num_classes or 1000, auxiliary, in_channels, style)
    raise ValueError(f"kind must be cifar or imagenet, got {kind!r}")


# ---------------------------------------------------------------------------------------------
# entry points for the TypeScript side (genotypes cross as DARTS reprs, tensors as Arrow files)


def count_params(genotype: str, C: int, layers: int, kind: str = "cifar",
                 num_classes: int | None = None, in_channels: int = 3, style: str = "darts") -> str:
    """JSON {params, params_auxiliary}: without and with the auxiliary head."""
    net = build_evalnet(genotype, C, layers, kind, num_classes, True, in_channels, style)
    return json.dumps({"params": net.param_count(False), "params_auxiliary": net.param_count(True)})


def export_fresh(genotype: str, out: str, C: int, layers: int, kind: str = "cifar",
                 num_classes: int | None = None, auxiliary: bool = False, in_channels: int = 3,
                 seed: int = 0, style: str = "darts") -> None:
    """A network with PyTorch's own initialisation, in the TypeScript names and layouts."""
    from .tsweights import export_params
    torch.manual_seed(seed)
    export_params(build_evalnet(genotype, C, layers, kind, num_classes, auxiliary, in_channels, style), out,
                  {"kind": "evalnet-params"})


def forward_backward(genotype: str, params: str, batch: str, out: str, C: int, layers: int,
                     kind: str = "cifar", num_classes: int | None = None, auxiliary: bool = False,
                     in_channels: int = 3, auxiliary_weight: float = 0.4, style: str = "darts") -> dict:
    """Training-mode logits (and auxiliary logits), loss CE + w·CE_aux, and every gradient, on
    the TypeScript side's weights and batch; written to ``out`` in TypeScript names and layouts."""
    from .tsweights import TensorRow, load_ts_params, param_mappings, read_batch, write_tensor_file
    net = build_evalnet(genotype, C, layers, kind, num_classes, auxiliary, in_channels, style)
    load_ts_params(net, params)
    net.train()
    x, y = read_batch(batch)
    logits, aux = net(x)
    loss = F.cross_entropy(logits, y)
    if aux is not None:
        loss = loss + auxiliary_weight * F.cross_entropy(aux, y)
    loss.backward()
    f32 = lambda t: t.detach().numpy().astype(np.float32).ravel()  # noqa: E731
    rows = [TensorRow("logits", tuple(logits.shape), f32(logits)),
            TensorRow("loss", (1,), np.array([loss.item()], dtype=np.float32))]
    if aux is not None:
        rows.append(TensorRow("logits_aux", tuple(aux.shape), f32(aux)))
    for m in param_mappings(net):
        if m.group == "buffers":
            continue
        g = m.tensor.grad if m.tensor.grad is not None else torch.zeros_like(m.tensor)
        t = m.to_ts(g.detach()).contiguous()
        rows.append(TensorRow(m.ts_name, tuple(t.shape), f32(t), m.group))
    write_tensor_file(out, rows, {"kind": "evalnet-parity"})
    return {"loss": loss.item(), "tensors": len(rows)}
