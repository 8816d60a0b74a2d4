"""Supernet with switches over a search space described as data (spec §1, §2.2).

Every edge e of every cell carries an origin switch s_e and one child switch s_{e,o} per
candidate op, all initialised to 1. Per cell they are two parameters:
  cells.{k}.switch_origin  shape (E,)
  cells.{k}.switch_child   shape (E, n_ops)
with E the number of edges of that cell type, rows in the space's edge order, columns in the
space's op order.

  gate="output" (default):  y_e = s_e * sum_o s_{e,o} op_o(x)     (s_e = 0 is an exact zero)
  gate="input"  (official): y_e = sum_o s_{e,o} op_o(s_e * x)     (BN-first ops ignore s_e > 0)

A node is the sum of its incoming edge outputs; a cell's output concatenates its intermediate
nodes. The network returns logits (the official net ends in log_softmax; cross_entropy on the
logits is the same loss).

Differences from DARTS's own search network (quark0/darts model_search.py), on purpose: BN is
affine everywhere (DARTS searches with affine=False), and there is no softmax over the ops: the
switches multiply the ops directly, as in BayesNAS.

state_dict layout (prefix per part; op keys are listed in ops.py):
  stem.0.weight                   conv 3x3, in_channels -> stem_multiplier*C
  stem.1.{weight,bias}            BN (stem "conv-bn" only)
  cells.{k}.preprocess0.*         for c_{k-2} (source 0)
  cells.{k}.preprocess1.*         for c_{k-1} (source 1)
      darts:   ReLU-conv-BN     op.1.weight (1x1), op.2.{weight,bias} (BN)
               FactorizedReduce conv_1.weight, conv_2.weight, bn.{weight,bias}
      creduct: size_reduct.weight (1x1 in->in stride 2, only when c_{k-2} has twice the
               resolution), bn.{weight,bias} (BN(in)), conv.weight (1x1 in->out)
  cells.{k}.edges.{e}.ops.{o}.*   op o (space op order) of edge e
  cells.{k}.switch_origin, cells.{k}.switch_child
  head_bn.{weight,bias}           BN(C_prev) (head "bn-relu-gap-linear" only)
  classifier.{weight,bias}        Linear(C_prev, num_classes)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .ops import FactorizedReduce, bn, build_op, conv
from .spaces import Space

GATES = ("output", "input")


class ReLUConvBN(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False), conv(cin, cout, 1), bn(cout))

    def forward(self, x):
        return self.op(x)


class CReduct(nn.Module):
    """[1x1 conv in->in stride 2], BN(in), ReLU, 1x1 conv in->out (official preprocessor)."""

    def __init__(self, cin: int, cout: int, size_reduct: bool = False):
        super().__init__()
        self.size_reduct = conv(cin, cin, 1, 2) if size_reduct else None
        self.bn = bn(cin)
        self.conv = conv(cin, cout, 1)

    def forward(self, x):
        if self.size_reduct is not None:
            x = self.size_reduct(x)
        return self.conv(F.relu(self.bn(x)))


def make_preprocess(kind: str, cin: int, cout: int, halve: bool) -> nn.Module:
    if kind == "darts":
        return FactorizedReduce(cin, cout) if halve else ReLUConvBN(cin, cout)
    if kind == "creduct":
        return CReduct(cin, cout, size_reduct=halve)
    raise ValueError(f"unknown preprocess {kind!r}")


class MixedEdge(nn.Module):
    """The candidate ops of one edge (switches live in the cell)."""

    def __init__(self, flavour: str, op_names, C: int, stride: int):
        super().__init__()
        self.stride = stride
        self.ops = nn.ModuleList(build_op(flavour, n, C, stride) for n in op_names)


class Cell(nn.Module):
    def __init__(self, space: Space, cell_type: str, C_pp: int, C_p: int, C: int,
                 reduction_prev: bool, gate: str):
        super().__init__()
        self.cell_type = cell_type
        self.reduction = cell_type == "reduce"
        self.gate = gate
        self.nodes = space.nodes
        self.edge_list = list(space.cell_edges(cell_type))
        self.preprocess0 = make_preprocess(space.preprocess, C_pp, C, halve=reduction_prev)
        self.preprocess1 = make_preprocess(space.preprocess, C_p, C, halve=False)
        self.edges = nn.ModuleList(
            MixedEdge(space.flavour, space.ops, C, Space.edge_stride(cell_type, src))
            for _, src in self.edge_list)
        E, n_ops = len(self.edge_list), len(space.ops)
        self.switch_origin = nn.Parameter(torch.ones(E))
        self.switch_child = nn.Parameter(torch.ones(E, n_ops))
        self._by_node = [[e for e, (n, _) in enumerate(self.edge_list) if n == j]
                         for j in range(self.nodes)]
        self.out_channels = self.nodes * C

    def edge_forward(self, e: int, x: torch.Tensor) -> torch.Tensor:
        so, sc = self.switch_origin[e], self.switch_child[e]
        if self.gate == "input":
            x = x * so
        y = None
        for o, op in enumerate(self.edges[e].ops):
            z = op(x) * sc[o]
            y = z if y is None else y + z
        return y * so if self.gate == "output" else y

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for j in range(self.nodes):
            acc = None
            for e in self._by_node[j]:
                y = self.edge_forward(e, states[self.edge_list[e][1]])
                acc = y if acc is None else acc + y
            states.append(acc)
        return torch.cat(states[2:], dim=1)


class Supernet(nn.Module):
    def __init__(self, space: Space, num_classes: int = 10, in_channels: int = 3,
                 gate: str = "output"):
        super().__init__()
        if gate not in GATES:
            raise ValueError(f"gate must be one of {list(GATES)}, got {gate!r}")
        self.space, self.gate = space, gate
        self.num_classes, self.in_channels = num_classes, in_channels
        C_stem = space.stem_multiplier * space.C
        stem = [conv(in_channels, C_stem, 3, 1, 1)]
        if space.stem == "conv-bn":
            stem.append(bn(C_stem))
        self.stem = nn.Sequential(*stem)

        C_pp, C_p, C = C_stem, C_stem, space.C
        reduction_prev = False
        cells = []
        for k in range(space.layers):
            t = space.cell_type(k)
            if t == "reduce":
                C *= 2
            cell = Cell(space, t, C_pp, C_p, C, reduction_prev, gate)
            cells.append(cell)
            reduction_prev = t == "reduce"
            C_pp, C_p = C_p, cell.out_channels
        self.cells = nn.ModuleList(cells)
        self.head_bn = bn(C_p) if space.head == "bn-relu-gap-linear" else None
        self.classifier = nn.Linear(C_p, num_classes)

    def forward_cells(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(list of every cell's output, logits)."""
        s0 = s1 = self.stem(x)
        outs = []
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
            outs.append(s1)
        h = s1
        if self.head_bn is not None:
            h = F.relu(self.head_bn(h))
        h = F.adaptive_avg_pool2d(h, 1).flatten(1)
        return outs, self.classifier(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_cells(x)[1]

    # -- parameter groups ------------------------------------------------------------------
    def switches(self) -> list[nn.Parameter]:
        """Switch parameters, per cell: switch_origin then switch_child."""
        return [p for c in self.cells for p in (c.switch_origin, c.switch_child)]

    def named_switches(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if ".switch_" in n]

    def weights(self) -> list[nn.Parameter]:
        """Every parameter that is not a switch."""
        ids = {id(p) for p in self.switches()}
        return [p for p in self.parameters() if id(p) not in ids]

    def param_count(self, switches: bool = True) -> int:
        """Trainable scalars (BN running statistics are buffers and do not count)."""
        ps = self.parameters() if switches else self.weights()
        return sum(p.numel() for p in ps if p.requires_grad)

    def edge_table(self) -> list[dict]:
        """One row per edge: cell, cell type, edge index, node, source, stride."""
        return [{"cell": k, "type": c.cell_type, "edge": e, "node": n, "source": s,
                 "stride": Space.edge_stride(c.cell_type, s)}
                for k, c in enumerate(self.cells) for e, (n, s) in enumerate(c.edge_list)]


def build_supernet(space: Space, num_classes: int = 10, in_channels: int = 3,
                   gate: str = "output") -> Supernet:
    return Supernet(space, num_classes, in_channels, gate)
