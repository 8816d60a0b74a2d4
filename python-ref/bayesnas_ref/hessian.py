"""Switch Hessians of a Supernet: exact (Hessian-vector products) and the layer-wise diagonal
recursion of spec §6, implemented independently of the TypeScript code so that the two can be
compared number by number.

Loss: E = cross-entropy of the logits, averaged over the batch (scale "mean"), with
training-mode BatchNorm (the batch statistics). Neither function changes the model: BN running
statistics, parameters and the train/eval flag are as before the call.

  exact_switch_hessian(model, x, y, select=None, method="batched", chunk=128)
      d²E/ds² for every switch scalar (or the flat indices in ``select``), by double backward:
      the gradient g = dE/ds is built with create_graph, then row i of the Hessian is the
      gradient of g_i; one switch parameter tensor at a time, its rows batched with
      ``is_grads_batched`` (a vmap over the backward graph; method "loop" does one backward per
      switch instead).

  recursion_switch_hessian(model, x, y, mode="per-sample", seed="diagonal", scale="mean")
      The diagonal recursion (spec §6.3, §6.4), by a manual traversal that mirrors
      Supernet.forward module by module, records each module's rule and sweeps back:
        conv        H_x = conv2d_input(H_y, W∘W)        (stride, padding, dilation, groups)
        max pool    H_x = scatter-add of H_y to each window's argmax (the pool's VJP)
        avg pool    H_x = Σ_p H_y[p] / div(p)²                     (VJP of H_y / div)
        BN          H_x = g² / (σ²_batch + eps) · H_y   (the forward's batch statistics)
        ReLU        H_x = 1[x>0] · H_y
        gate y=s·z  h_s += Σ z² H_y,  H_z = s² H_y                 (origin and child switches)
        sum, fan-out: H passes to every input / accumulates; concat: split by channels
        global average pool: H_x = H_a / P²;  linear u = W a + b: H_a = H_u (W∘W)   (W [K, F])
        seed at the logits: "diagonal" p(1−p), "target" p_y(1−p_y) at the label only, or "full"
        diag(Wᵀ(diag p − ppᵀ)W) at the classifier input; times 1/N ("mean"), 1 ("batchSum") or
        dataset_size/N ("dataset").
      mode "per-sample": every H keeps the batch dimension.
      mode "faithful" (the official code's batch averaging, spec §6.2): before the conv and
      linear rules H_y is averaged over the batch (convs: also over positions, per channel);
      ReLU uses mean_n H_y times the squared batch-mean mask; BN uses g²/running_var with no eps,
      where running_var is the value after this forward's momentum update (as the official code
      and the TypeScript tape read it). The code's wiring and scatter bugs are not reproduced.

Both return one dict per cell: {"cell", "type", "origin": (E,), "child": (E, O)} (numpy
float64), in the order of model.cells.

CLI:
  python -m bayesnas_ref.hessian --space darts|bayesnas|FILE.json [--C N] [--layers N]
      [--in-channels N] [--classes N] [--gate output|input] [--params TS_PARAMS.arrow]
      [--batch BATCH.arrow | --batch-size N --size S] [--seed K]
      [--mode per-sample|faithful] [--seed-kind diagonal|target|full]
      [--scale mean|batchSum|dataset] [--dataset-size N] [--exact] [--dtype float32|float64]
      [--threads N] --out OUT.arrow [--json]
    Writes one row per switch (cell_type, cell, edge, node, source, op, op_index (-1 for the
    origin switch), kind, recursion, exact (null without --exact)) and prints a JSON summary
    with the timings (recursion seconds, exact seconds and seconds per switch) and, with
    --exact, Spearman rank correlation and median relative error per switch group.

  python -m bayesnas_ref.hessian --serve [same model/batch options]
    stdin protocol (as bench_engine): "hvp N [R]" -> exact Hessian of the first N switches
    (flat order: per cell origin then child, row-major), R times (default 1), replies
    {"ms": [...], "switches": n}; "recursion [R]" -> {"ms": [...], "switches": total};
    "quit" exits. A readiness line (JSON) goes to stderr first.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.grad import conv2d_input

from .ops import (BayesDilConv, BayesSepConv, DartsDilConv, DartsSepConv, FactorizedReduce,
                  ZeroPadMaxPool, Zero, _Wrap)
from .serving import announce, count_arg, device_of, serve_lines, synchronize
from .serving import timed as timed_calls
from .spaces import PRESETS, Space, SpaceError, get_space, space_from_dict
from .supernet import GATES, CReduct, ReLUConvBN, Supernet

MODES = ("per-sample", "faithful")
SEEDS = ("diagonal", "target", "full")
SCALES = ("mean", "batchSum", "dataset")


# ---------------------------------------------------------------------------------------------
# helpers


@contextlib.contextmanager
def _preserved(model: nn.Module):
    """Training mode for the duration; buffers and the train/eval flag restored afterwards."""
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    was = model.training
    model.train()
    try:
        yield
    finally:
        with torch.no_grad():
            for b, v in saved:
                b.copy_(v)
        model.train(was)


def switch_layout(model: Supernet) -> list[tuple[int, str, int, int]]:
    """Flat switch order: (cell, kind, edge, op) with op = -1 for origin switches; per cell
    origin (E) then child (E x O) row-major, the order of model.switches()."""
    out = []
    for k, c in enumerate(model.cells):
        E, O = c.switch_child.shape
        out += [(k, "origin", e, -1) for e in range(E)]
        out += [(k, "child", e, o) for e in range(E) for o in range(O)]
    return out


def _cells_from_flat(model: Supernet, flat: np.ndarray) -> list[dict]:
    res, i = [], 0
    for k, c in enumerate(model.cells):
        E, O = c.switch_child.shape
        res.append({"cell": k, "type": c.cell_type, "origin": flat[i:i + E].copy(),
                    "child": flat[i + E:i + E + E * O].reshape(E, O).copy()})
        i += E + E * O
    return res


def flatten_cells(cells: list[dict]) -> np.ndarray:
    """Per-cell results -> one vector in switch_layout order."""
    return np.concatenate([np.concatenate([c["origin"].reshape(-1), c["child"].reshape(-1)])
                           for c in cells])


# ---------------------------------------------------------------------------------------------
# exact


def exact_switch_hessian(model: Supernet, x: torch.Tensor, y: torch.Tensor,
                         select: Sequence[int] | None = None, method: str = "batched",
                         chunk: int = 128) -> list[dict]:
    """Exact diagonal d²E/ds² (E = mean cross-entropy, training-mode BN) for every switch, by
    double backward. With ``select`` (flat indices in switch_layout order) only those are
    computed; the others are NaN. Values come back as numpy float64 (computed in the model's
    dtype)."""
    if method not in ("batched", "loop"):
        raise ValueError(f"method must be 'batched' or 'loop', got {method!r}")
    params = model.switches()
    sizes = [p.numel() for p in params]
    offsets = np.cumsum([0] + sizes)
    total = int(offsets[-1])
    want = np.arange(total) if select is None else np.asarray(sorted(set(int(i) for i in select)))
    if want.size and (want.min() < 0 or want.max() >= total):
        raise IndexError(f"switch index out of range 0..{total - 1}")
    out = np.full(total, np.nan)
    with _preserved(model):
        dtype = params[0].dtype
        loss = F.cross_entropy(model(x.to(dtype)), y)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        for pi, p in enumerate(params):
            lo, hi = offsets[pi], offsets[pi + 1]
            idx = want[(want >= lo) & (want < hi)] - lo
            if not idx.size:
                continue
            g = grads[pi].reshape(-1)
            if method == "batched":
                try:
                    for c0 in range(0, idx.size, chunk):
                        ii = torch.as_tensor(idx[c0:c0 + chunk])
                        V = torch.zeros(len(ii), g.numel(), dtype=g.dtype, device=g.device)
                        V[torch.arange(len(ii)), ii] = 1
                        (rows,) = torch.autograd.grad(g, [p], grad_outputs=V, retain_graph=True,
                                                      is_grads_batched=True)
                        vals = rows.reshape(len(ii), -1)[torch.arange(len(ii)), ii]
                        out[lo + idx[c0:c0 + chunk]] = vals.detach().double().cpu().numpy()
                    continue
                except RuntimeError:
                    pass  # an op without a batching rule: fall back to one backward per switch
            for j in idx:
                (row,) = torch.autograd.grad(g[int(j)], [p], retain_graph=True)
                out[lo + j] = float(row.reshape(-1)[int(j)])
    return _cells_from_flat(model, out)


# ---------------------------------------------------------------------------------------------
# layer rules (functions of H_y and the forward's data; exposed for tests)


def _avg(H: torch.Tensor, dims) -> torch.Tensor:
    return H.mean(dim=dims, keepdim=True).expand_as(H)


def conv_rule(Hy: torch.Tensor, weight: torch.Tensor, x_shape, stride=1, padding=0, dilation=1,
              groups=1, mode: str = "per-sample") -> torch.Tensor:
    """(h)/(i)/(j): the conv's input gradient of H_y with the squared kernel. Faithful: H_y
    averaged over batch and positions per channel first."""
    if mode == "faithful":
        Hy = _avg(Hy, (0, 2, 3))
    return conv2d_input(tuple(x_shape), weight * weight, Hy, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)


def linear_rule(Hu: torch.Tensor, weight: torch.Tensor, mode: str = "per-sample") -> torch.Tensor:
    """(b): H_a[n, f] = Σ_k W[k, f]² H_u[n, k] (PyTorch weight layout [K, F])."""
    if mode == "faithful":
        Hu = _avg(Hu, (0,))
    return Hu @ (weight * weight)


def relu_rule(Hy: torch.Tensor, x: torch.Tensor, mode: str = "per-sample") -> torch.Tensor:
    """(e): 1[x>0] H_y; faithful: mean_n H_y · (mean_n 1[x>0])²."""
    mask = (x > 0).to(Hy.dtype)
    if mode == "faithful":
        return _avg(Hy, (0,)) * _avg(mask, (0,)) ** 2
    return Hy * mask


def bn_rule(Hy: torch.Tensor, weight: torch.Tensor | None, variance: torch.Tensor,
            eps: float) -> torch.Tensor:
    """(f): g² / (σ² + eps) H_y per channel (statistics frozen)."""
    f = 1.0 / (variance + eps)
    if weight is not None:
        f = f * weight * weight
    return Hy * f.view(1, -1, 1, 1)


def max_pool_rule(Hy: torch.Tensor, indices: torch.Tensor, plane_shape) -> torch.Tensor:
    """(k): scatter-add H_y to the argmax of each window (indices into the H x W plane the pool
    read)."""
    N, C = Hy.shape[:2]
    H, W = plane_shape
    out = torch.zeros(N, C, H * W, dtype=Hy.dtype, device=Hy.device)
    out.scatter_add_(2, indices.reshape(N, C, -1), Hy.reshape(N, C, -1))
    return out.view(N, C, H, W)


def avg_pool_rule(Hy: torch.Tensor, x_shape, k: int, stride: int, padding: int,
                  count_include_pad: bool) -> torch.Tensor:
    """(l): Σ_p H_y[p] / div(p)² over the windows p that read each input."""
    N, C, H, W = x_shape
    if count_include_pad or padding == 0:
        div = torch.tensor(float(k * k), dtype=Hy.dtype, device=Hy.device)
    else:
        ones = torch.ones(1, 1, H, W, dtype=Hy.dtype, device=Hy.device)
        div = F.avg_pool2d(ones, k, stride, padding, count_include_pad=True) * (k * k)
    ker = torch.ones(C, 1, k, k, dtype=Hy.dtype, device=Hy.device)
    return conv2d_input(tuple(x_shape), ker, Hy / (div * div), stride=stride, padding=padding,
                        groups=C)


def gap_rule(Ha: torch.Tensor, x_shape) -> torch.Tensor:
    """(d): H_x = H_a / P² on every position."""
    N, C, H, W = x_shape
    P = H * W
    return (Ha / (P * P)).view(N, C, 1, 1).expand(N, C, H, W)


def _scale_factor(scale: str, N: int, dataset_size: int | None) -> float:
    if scale == "mean":
        return 1.0 / N
    if scale == "batchSum":
        return 1.0
    if scale == "dataset":
        if not dataset_size or dataset_size <= 0:
            raise ValueError('scale "dataset" needs dataset_size > 0')
        return dataset_size / N
    raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")


def softmax_seed(logits: torch.Tensor, y: torch.Tensor, seed: str = "diagonal",
                 scale: str = "mean", dataset_size: int | None = None) -> torch.Tensor:
    """(a): H at the logits, p(1−p) on every class or only at the target."""
    p = torch.softmax(logits, dim=1)
    h = p * (1 - p)
    if seed == "target":
        h = h * F.one_hot(y, logits.shape[1]).to(h.dtype)
    elif seed != "diagonal":
        raise ValueError(f"softmax_seed: seed must be 'diagonal' or 'target', got {seed!r}")
    return h * _scale_factor(scale, logits.shape[0], dataset_size)


def full_softmax_seed(logits: torch.Tensor, weight: torch.Tensor, scale: str = "mean",
                      dataset_size: int | None = None) -> torch.Tensor:
    """(a)+(b) with the full softmax Hessian: H_a[n] = diag(Wᵀ (diag p_n − p_n p_nᵀ) W) at the
    classifier input (W [K, F])."""
    p = torch.softmax(logits, dim=1)
    return ((p @ (weight * weight)) - (p @ weight) ** 2) * _scale_factor(scale, logits.shape[0],
                                                                        dataset_size)


# ---------------------------------------------------------------------------------------------
# tape


class HessianTape:
    """Records (inputs, output, rule) in forward order; ``backward`` sweeps them in reverse,
    accumulating H per tensor (fan-out, sums) and h_s per switch key."""

    def __init__(self, mode: str = "per-sample"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        self.mode = mode
        self.recs: list[tuple[list[torch.Tensor], torch.Tensor, Callable, bool]] = []
        self.produced: set[int] = set()
        self.switch: dict = {}

    def record(self, inputs: list[torch.Tensor], output: torch.Tensor, rule: Callable,
               always: bool = False) -> None:
        if any(t is output for t in inputs):
            return
        self.recs.append((inputs, output, rule, always))
        self.produced.add(id(output))

    def gate(self, key, z: torch.Tensor, s: torch.Tensor, y: torch.Tensor) -> None:
        def rule(Hy):
            self.switch[key] = self.switch.get(key, 0.0) + (z * z * Hy).sum()
            return [s * s * Hy]
        self.record([z], y, rule, always=True)

    def backward(self, output: torch.Tensor, Hout: torch.Tensor) -> dict[int, torch.Tensor]:
        H = {id(output): Hout}
        for inputs, out, rule, always in reversed(self.recs):
            Hy = H.pop(id(out), None)
            if Hy is None:
                continue
            if not always and not any(id(t) in self.produced for t in inputs):
                continue  # nothing upstream needs it (e.g. the image)
            for t, h in zip(inputs, rule(Hy)):
                if h is None:
                    continue
                if tuple(h.shape) != tuple(t.shape):
                    raise RuntimeError(f"rule returned shape {tuple(h.shape)} for an input of "
                                       f"shape {tuple(t.shape)}")
                prev = H.get(id(t))
                H[id(t)] = h if prev is None else prev + h
        return H


# ---------------------------------------------------------------------------------------------
# traversal mirroring Supernet.forward


class _Runner:
    def __init__(self, tape: HessianTape, dtype: torch.dtype):
        self.tape, self.dtype, self.mode = tape, dtype, tape.mode

    def p(self, t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.detach().to(self.dtype)

    # primitives
    def conv(self, m: nn.Conv2d, x):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise TypeError(f"conv with padding {m.padding!r}/{m.padding_mode} has no rule")
        w = self.p(m.weight)
        y = F.conv2d(x, w, self.p(m.bias), m.stride, m.padding, m.dilation, m.groups)
        shape, mode = x.shape, self.mode
        self.tape.record([x], y, lambda Hy: [conv_rule(Hy, w, shape, m.stride, m.padding,
                                                       m.dilation, m.groups, mode)])
        return y

    def bn(self, m: nn.BatchNorm2d, x):
        if m.momentum is None:
            raise TypeError("BN with cumulative averaging (momentum=None) is not supported")
        g, b = self.p(m.weight), self.p(m.bias)
        y = F.batch_norm(x, None, None, g, b, training=True, eps=m.eps)
        if self.mode == "faithful":
            n = x.numel() // x.shape[1]
            var_u = x.var(dim=(0, 2, 3), unbiased=False) * (n / max(1, n - 1))
            variance = (1 - m.momentum) * self.p(m.running_var) + m.momentum * var_u
            eps = 0.0
        else:
            variance = x.var(dim=(0, 2, 3), unbiased=False)
            eps = m.eps
        self.tape.record([x], y, lambda Hy: [bn_rule(Hy, g, variance, eps)])
        return y

    def relu(self, x):
        y = F.relu(x)
        mode = self.mode
        self.tape.record([x], y, lambda Hy: [relu_rule(Hy, x, mode)])
        return y

    def max_pool(self, x, k, stride, padding, pad_value):
        if pad_value == 0.0 and padding:
            xp = F.pad(x, [padding] * 4, value=0.0)
            y, idx = F.max_pool2d(xp, k, stride, 0, return_indices=True)
            Hp, Wp = xp.shape[2:]

            def rule(Hy):
                Hx = max_pool_rule(Hy, idx, (Hp, Wp))
                return [Hx[:, :, padding:Hp - padding, padding:Wp - padding]]
        else:  # PyTorch's own padding is -inf
            y, idx = F.max_pool2d(x, k, stride, padding, return_indices=True)
            plane = x.shape[2:]

            def rule(Hy):
                return [max_pool_rule(Hy, idx, plane)]
        self.tape.record([x], y, rule)
        return y

    def avg_pool(self, x, k, stride, padding, count_include_pad):
        y = F.avg_pool2d(x, k, stride, padding, count_include_pad=count_include_pad)
        shape = x.shape
        self.tape.record([x], y, lambda Hy: [avg_pool_rule(Hy, shape, k, stride, padding,
                                                           count_include_pad)])
        return y

    def concat(self, xs):
        if len(xs) == 1:
            return xs[0]
        y = torch.cat(xs, dim=1)
        sizes = [t.shape[1] for t in xs]
        self.tape.record(list(xs), y, lambda Hy: list(torch.split(Hy, sizes, dim=1)))
        return y

    def sum(self, xs):
        if len(xs) == 1:
            return xs[0]
        y = xs[0]
        for t in xs[1:]:
            y = y + t
        self.tape.record(list(xs), y, lambda Hy: [Hy] * len(xs))
        return y

    def gate(self, key, z, s):
        y = z * s
        self.tape.gate(key, z, s, y)
        return y

    def shift(self, x):
        """x[:, :, 1:, 1:] (FactorizedReduce's second branch); rule: pad H back."""
        y = x[:, :, 1:, 1:]
        self.tape.record([x], y, lambda Hy: [F.pad(Hy, [1, 0, 1, 0])])
        return y

    # modules
    def module(self, m: nn.Module, x):
        if isinstance(m, nn.Sequential):
            for c in m:
                x = self.module(c, x)
            return x
        if isinstance(m, nn.Conv2d):
            return self.conv(m, x)
        if isinstance(m, nn.BatchNorm2d):
            return self.bn(m, x)
        if isinstance(m, nn.ReLU):
            return self.relu(x)
        if isinstance(m, nn.Identity):
            return x
        if isinstance(m, nn.MaxPool2d):
            if m.dilation not in (1, (1, 1)) or m.ceil_mode or m.return_indices:
                raise TypeError(f"max pool {m} has no rule")
            return self.max_pool(x, m.kernel_size, m.stride, m.padding, -math.inf)
        if isinstance(m, ZeroPadMaxPool):
            return self.max_pool(x, 3, m.stride, 1, 0.0)
        if isinstance(m, nn.AvgPool2d):
            if m.ceil_mode or m.divisor_override is not None:
                raise TypeError(f"avg pool {m} has no rule")
            return self.avg_pool(x, m.kernel_size, m.stride, m.padding, m.count_include_pad)
        if isinstance(m, FactorizedReduce):
            r = self.relu(x)
            a = self.conv(m.conv_1, r)
            b = self.conv(m.conv_2, self.shift(r))
            return self.bn(m.bn, self.concat([a, b]))
        if isinstance(m, Zero):
            s = m.stride
            return torch.zeros_like(x if s == 1 else x[:, :, ::s, ::s])  # no curvature flows
        if isinstance(m, (DartsSepConv, DartsDilConv, BayesSepConv, BayesDilConv, _Wrap,
                          ReLUConvBN)):
            return self.module(m.op, x)
        if isinstance(m, CReduct):
            if m.size_reduct is not None:
                x = self.conv(m.size_reduct, x)
            return self.conv(m.conv, self.relu(self.bn(m.bn, x)))
        raise TypeError(f"the Hessian recursion has no rule for module {type(m).__name__}")

    def cell(self, k: int, c, s0, s1):
        states = [self.module(c.preprocess0, s0), self.module(c.preprocess1, s1)]
        so = self.p(c.switch_origin)
        sc = self.p(c.switch_child)
        for j in range(c.nodes):
            terms = []
            for e, (node, src) in enumerate(c.edge_list):
                if node != j:
                    continue
                x = states[src]
                if c.gate == "input":
                    x = self.gate((k, "origin", e, -1), x, so[e])
                zs = [self.gate((k, "child", e, o), self.module(op, x), sc[e, o])
                      for o, op in enumerate(c.edges[e].ops)]
                u = self.sum(zs)
                terms.append(self.gate((k, "origin", e, -1), u, so[e])
                             if c.gate == "output" else u)
            states.append(self.sum(terms))
        return self.concat(states[2:])

    def network(self, model: Supernet, x):
        s0 = s1 = self.module(model.stem, x)
        for k, c in enumerate(model.cells):
            s0, s1 = s1, self.cell(k, c, s0, s1)
        h = s1
        if model.head_bn is not None:
            h = self.relu(self.bn(model.head_bn, h))
        feats = h.mean(dim=(2, 3))
        shape = h.shape
        self.tape.record([h], feats, lambda Ha: [gap_rule(Ha, shape)])
        W, b = self.p(model.classifier.weight), self.p(model.classifier.bias)
        logits = F.linear(feats, W, b)
        mode = self.mode
        self.tape.record([feats], logits, lambda Hu: [linear_rule(Hu, W, mode)])
        return feats, logits, W


def recursion_forward(model: Supernet, x: torch.Tensor, y: torch.Tensor, mode: str = "per-sample",
                      seed: str = "diagonal", scale: str = "mean",
                      dataset_size: int | None = None, dtype: torch.dtype | None = None):
    """(per-cell results, logits of the mirrored forward). See recursion_switch_hessian."""
    if seed not in SEEDS:
        raise ValueError(f"seed must be one of {list(SEEDS)}, got {seed!r}")
    dtype = dtype or model.classifier.weight.dtype
    tape = HessianTape(mode)
    run = _Runner(tape, dtype)
    with torch.no_grad():
        feats, logits, W = run.network(model, x.to(dtype))
        if seed == "full":
            tape.backward(feats, full_softmax_seed(logits, W, scale, dataset_size))
        else:
            tape.backward(logits, softmax_seed(logits, y, seed, scale, dataset_size))
        # one transfer from the device for all switches
        keys = list(tape.switch)
        flat = torch.stack([torch.as_tensor(tape.switch[key], device=logits.device).reshape(()) for key in keys]).double().cpu().tolist() if keys else []
        values = dict(zip(keys, flat))
        cells = []
        for k, c in enumerate(model.cells):
            E, O = c.switch_child.shape
            origin, child = np.zeros(E), np.zeros((E, O))
            for e in range(E):
                origin[e] = values.get((k, "origin", e, -1), 0.0)
                for o in range(O):
                    child[e, o] = values.get((k, "child", e, o), 0.0)
            cells.append({"cell": k, "type": c.cell_type, "origin": origin, "child": child})
    return cells, logits


def recursion_switch_hessian(model: Supernet, x: torch.Tensor, y: torch.Tensor,
                             mode: str = "per-sample", seed: str = "diagonal",
                             scale: str = "mean", dataset_size: int | None = None,
                             dtype: torch.dtype | None = None) -> list[dict]:
    """The diagonal recursion of spec §6.3/§6.4 (see the module docstring). Training-mode BN
    (batch statistics); the model is not modified. ``dtype`` (default: the model's) is the
    precision of the traversal."""
    return recursion_forward(model, x, y, mode, seed, scale, dataset_size, dtype)[0]


# ---------------------------------------------------------------------------------------------
# comparison


def _ranks(a: np.ndarray) -> np.ndarray:
    order = np.argsort(a, kind="mergesort")
    r = np.empty(len(a))
    r[order] = np.arange(len(a), dtype=float)
    s = a[order]
    i = 0
    while i < len(s):  # average ranks of ties
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        if j > i:
            r[order[i:j + 1]] = (i + j) / 2
        i = j + 1
    return r


def spearman(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2:
        return float("nan")
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = math.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def compare(rec: list[dict], exact: list[dict]) -> dict:
    """Spearman rank correlation and relative error |rec − exact| / |exact| per switch group
    (origin/child x normal/reduce), over the switches whose exact value is known."""
    groups: dict[str, tuple[list, list]] = {}
    for r, e in zip(rec, exact):
        for kind in ("origin", "child"):
            g = groups.setdefault(f"{kind}/{r['type']}", ([], []))
            g[0].extend(np.asarray(r[kind]).reshape(-1))
            g[1].extend(np.asarray(e[kind]).reshape(-1))
    out = {}
    for name in sorted(groups):
        a, b = (np.asarray(v, float) for v in groups[name])
        ok = np.isfinite(b)
        a, b = a[ok], b[ok]
        if not len(a):
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(a - b) / np.abs(b)
        rel = rel[np.isfinite(rel)]
        out[name] = {"n": int(len(a)), "spearman": spearman(a, b),
                     "median_rel_err": float(np.median(rel)) if len(rel) else None,
                     "exact_negative": int((b < 0).sum())}
    return out


# ---------------------------------------------------------------------------------------------
# CLI


def _space_from_json(path: str, C, layers) -> tuple[Space, str | None]:
    """A Python space file, or a TypeScript one (camelCase stemMultiplier, gate, preset,
    {node, source} edges). Returns (space, gate or None)."""
    d = json.loads(Path(path).read_text())
    if not isinstance(d, dict):
        raise SpaceError(f"{path}: a space must be a JSON object")
    gate = d.pop("gate", None)
    if "preset" in d:
        name = d.pop("preset")
        if name not in PRESETS:
            raise SpaceError(f"{path}: unknown preset {name!r}")
        d = {**PRESETS[name]().to_dict(), **d}
    if "stemMultiplier" in d:
        d["stem_multiplier"] = d.pop("stemMultiplier")
    for key in ("concat", "reductions"):
        if key in d:
            v = d.pop(key)
            if v is not None:
                raise SpaceError(f"{path}: field {key!r} ({v}) is not supported by the "
                                 "PyTorch reference")
    d.setdefault("name", "custom")
    if isinstance(d.get("edges"), dict):
        d["edges"] = {t: [[e["node"], e["source"]] if isinstance(e, dict) else e for e in es]
                      for t, es in d["edges"].items()}
    s = space_from_dict(d)
    ov = {k: v for k, v in {"C": C, "layers": layers}.items() if v is not None}
    return (s.with_(**ov) if ov else s), gate


def _num(v):
    return v if v is not None and math.isfinite(v) else None


def _build(a) -> tuple[Supernet, torch.Tensor, torch.Tensor]:
    from .tsweights import load_ts_params, read_batch, read_tensor_file
    gate = a.gate
    if a.space in PRESETS:
        space = get_space(a.space, C=a.C, layers=a.layers)
    else:
        space, file_gate = _space_from_json(a.space, a.C, a.layers)
        gate = gate or file_gate
    gate = gate or "output"
    classes, in_ch = a.classes, a.in_channels
    if a.params:
        rows, _ = read_tensor_file(a.params)
        by = {r.name: r for r in rows}
        if classes is None and "classifier.bias" in by:
            classes = by["classifier.bias"].shape[0]
        if in_ch is None and "stem.0.weight" in by:
            in_ch = by["stem.0.weight"].shape[2]
    torch.manual_seed(a.seed)
    if a.batch:
        x, y = read_batch(a.batch)
        in_ch = in_ch or x.shape[1]
    model = Supernet(space, num_classes=classes or 10, in_channels=in_ch or 3, gate=gate)
    if a.params:
        load_ts_params(model, a.params, strict=True)
    if not a.batch:
        x = torch.randn(a.batch_size, in_ch or 3, a.size, a.size)
        y = torch.randint(0, classes or 10, (a.batch_size,))
    dtype = torch.float64 if a.dtype == "float64" else torch.float32
    return model.to(dtype), x.to(dtype), y


def _serve(model, x, y, a, fin=sys.stdin, fout=sys.stdout) -> None:
    """'hvp N [REPS]': the exact Hessian of the first N switches (by HVPs), REPS times;
    'recursion [REPS]': the fast recursion over all switches -> {"ms": [...], "switches": n}."""
    total = sum(p.numel() for p in model.switches())
    device = x.device

    def timed(f, reps):   # both end with a transfer to the host; the syncs keep earlier work out
        def g():
            synchronize(device)
            f()
            synchronize(device)
        return timed_calls(g, reps)

    def handle(parts: list[str]) -> dict:
        if parts[0] == "hvp" and 2 <= len(parts) <= 3:
            n = min(count_arg(parts, 1, 0, 0), total)
            return {"ms": timed(lambda: exact_switch_hessian(model, x, y, select=range(n)), count_arg(parts, 2, 1, 1)),
                    "switches": n}
        if parts[0] == "recursion" and len(parts) <= 2:
            ms = timed(lambda: recursion_switch_hessian(model, x, y, a.mode, a.seed_kind, a.scale, a.dataset_size),
                       count_arg(parts, 1, 1, 1))
            return {"ms": ms, "switches": total}
        raise ValueError(f"expected 'hvp N [REPS]', 'recursion [REPS]' or 'quit', got {' '.join(parts)!r}")
    serve_lines(handle, fin, fout)


def _rows(model: Supernet, rec: list[dict], exact: list[dict] | None) -> list[dict]:
    ops = list(model.space.ops)
    out = []
    for k, c in enumerate(model.cells):
        for e, (node, src) in enumerate(c.edge_list):
            base = {"cell_type": c.cell_type, "cell": k, "edge": e, "node": node, "source": src}
            ex = exact[k] if exact else None
            out.append({**base, "op": "", "op_index": -1, "kind": "origin",
                        "recursion": float(rec[k]["origin"][e]),
                        "exact": float(ex["origin"][e]) if ex else None})
            for o, name in enumerate(ops):
                out.append({**base, "op": name, "op_index": o, "kind": "child",
                            "recursion": float(rec[k]["child"][e, o]),
                            "exact": float(ex["child"][e, o]) if ex else None})
    return out


def _write_rows(path: str, rows: list[dict], meta: dict) -> None:
    import os

    import pyarrow as pa
    cols = {
        "cell_type": pa.array([r["cell_type"] for r in rows], pa.utf8()),
        "cell": pa.array([r["cell"] for r in rows], pa.int32()),
        "edge": pa.array([r["edge"] for r in rows], pa.int32()),
        "node": pa.array([r["node"] for r in rows], pa.int32()),
        "source": pa.array([r["source"] for r in rows], pa.int32()),
        "op": pa.array([r["op"] for r in rows], pa.utf8()),
        "op_index": pa.array([r["op_index"] for r in rows], pa.int32()),
        "kind": pa.array([r["kind"] for r in rows], pa.utf8()),
        "recursion": pa.array([r["recursion"] for r in rows], pa.float64()),
        "exact": pa.array([r["exact"] for r in rows], pa.float64()),
    }
    t = pa.table(cols).replace_schema_metadata({k: str(v) for k, v in meta.items()})
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f"{p.name}.tmp-{os.getpid()}")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, t.schema) as w:
        w.write_table(t)
    os.replace(tmp, p)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Switch Hessians of a supernet: the diagonal "
                                             "recursion (spec §6) and, optionally, exact HVPs.")
    ap.add_argument("--space", default="darts", help="darts | bayesnas | path to a JSON space")
    ap.add_argument("--C", type=int, default=None)
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--in-channels", type=int, default=None,
                    help="default: from the params or batch file, else 3")
    ap.add_argument("--classes", type=int, default=None,
                    help="default: from the params file, else 10")
    ap.add_argument("--gate", choices=GATES, default=None,
                    help="default: the space file's gate, else output")
    ap.add_argument("--params", default=None, help="TypeScript parameter file (Arrow)")
    ap.add_argument("--batch", default=None, help="batch file with tensors x (NHWC) and y")
    ap.add_argument("--batch-size", type=int, default=4, help="random batch (without --batch)")
    ap.add_argument("--size", type=int, default=8, help="random batch image size")
    ap.add_argument("--seed", type=int, default=0, help="RNG seed (weights, random batch)")
    ap.add_argument("--mode", choices=MODES, default="per-sample")
    ap.add_argument("--seed-kind", choices=SEEDS, default="diagonal")
    ap.add_argument("--scale", choices=SCALES, default="mean")
    ap.add_argument("--dataset-size", type=int, default=None)
    ap.add_argument("--exact", action="store_true", help="also the exact Hessian (HVPs)")
    ap.add_argument("--dtype", choices=("float32", "float64"), default=None,
                    help="default float64, float32 with --serve")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu", help="cpu | cuda (with --serve: timings synchronise the device)")
    ap.add_argument("--out", default=None, help="output Arrow table")
    ap.add_argument("--json", action="store_true", help="print only the JSON summary")
    ap.add_argument("--serve", action="store_true", help="timing mode on stdin")
    a = ap.parse_args(argv)
    if a.dtype is None:
        a.dtype = "float32" if a.serve else "float64"
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        model, x, y = _build(a)
    except (SpaceError, ValueError, OSError) as e:
        ap.error(str(e))
    dev = device_of(a.device)
    model, x, y = model.to(dev), x.to(dev), y.to(dev)
    total = sum(p.numel() for p in model.switches())
    info = {"framework": "pytorch", "torch": torch.__version__,
            "threads": torch.get_num_threads(), "space": model.space.name, "C": model.space.C,
            "layers": model.space.layers, "gate": model.gate, "batch": int(x.shape[0]),
            "size": int(x.shape[2]), "switches": total, "dtype": a.dtype, "mode": a.mode,
            "seed_kind": a.seed_kind, "scale": a.scale, "device": str(dev)}
    if a.serve:
        announce(info)
        _serve(model, x, y, a)
        return
    if not a.out:
        ap.error("--out is required (except with --serve)")
    t0 = time.perf_counter()
    rec = recursion_switch_hessian(model, x, y, a.mode, a.seed_kind, a.scale, a.dataset_size)
    t_rec = time.perf_counter() - t0
    exact, t_ex = None, None
    if a.exact:
        t0 = time.perf_counter()
        exact = exact_switch_hessian(model, x, y)
        t_ex = time.perf_counter() - t0
    _write_rows(a.out, _rows(model, rec, exact),
                {"kind": "switch-hessian-ref", **{k: v for k, v in info.items()},
                 "exact_loss": "mean cross-entropy, training-mode BN"})
    res = {**info, "file": str(a.out), "recursion_seconds": t_rec, "exact_seconds": t_ex,
           "exact_seconds_per_switch": t_ex / total if t_ex is not None else None,
           "speedup": t_ex / t_rec if t_ex is not None else None}
    if exact is not None:
        res["compare"] = compare(rec, exact)
        if a.mode != "per-sample" or a.seed_kind == "target" or a.scale != "mean":
            res["note"] = "exact is the Hessian of the batch-mean loss"
    if a.json:
        print(json.dumps(res))
    else:
        print(f"{info['space']} C={info['C']} layers={info['layers']} gate={info['gate']} "
              f"batch={info['batch']}x{info['size']}x{info['size']} switches={total} "
              f"mode={a.mode} seed={a.seed_kind} scale={a.scale} dtype={a.dtype}")
        print(f"recursion {t_rec:.3f} s" + (f", exact {t_ex:.3f} s "
                                            f"({t_ex / total * 1e3:.1f} ms/switch, "
                                            f"{t_ex / t_rec:.0f}x)" if t_ex else ""))
        for g, v in (res.get("compare") or {}).items():
            print(f"  {g:16s} n={v['n']:4d} spearman={v['spearman']:.3f} "
                  f"median rel err={v['median_rel_err']}")
        print(json.dumps(res))


if __name__ == "__main__":
    main()
