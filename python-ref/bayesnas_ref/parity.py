"""Parity computations for the TypeScript side: the same supernet, weights and batch in PyTorch.

Inputs and outputs are Arrow tensor files in the TypeScript layout (see tsweights.py), so the
TypeScript test can compare every number directly.
"""
from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F

from .spaces import space_from_dict
from .supernet import build_supernet
from .tsweights import TensorRow, load_ts_params, param_mappings, read_batch, write_tensor_file


def _model(space_json: str, params: str, gate: str, in_channels: int, num_classes: int):
    space = space_from_dict(json.loads(space_json))
    model = build_supernet(space, num_classes=num_classes, in_channels=in_channels, gate=gate)
    load_ts_params(model, params)
    return model.train()


def grad_rows(model, skip=("buffers",), prefix: str = "") -> list[TensorRow]:
    """The gradient of every parameter (zeros where it has none) with TypeScript names and layouts,
    named ``prefix + name``; parameter groups in ``skip`` are left out."""
    rows = []
    for m in param_mappings(model):
        if m.group in skip:
            continue
        g = m.tensor.grad
        g = torch.zeros_like(m.tensor) if g is None else g
        t = m.to_ts(g.detach()).contiguous()
        rows.append(TensorRow(f"{prefix}{m.ts_name}", tuple(t.shape), t.numpy().astype(np.float32).ravel(), m.group))
    return rows


def forward_backward(space_json: str, params: str, batch: str, out: str, gate: str = "output",
                     in_channels: int = 3, num_classes: int = 10) -> dict:
    """Logits, mean cross-entropy and the gradient of every weight and switch (training-mode BN),
    written to ``out`` with the TypeScript names and layouts (logits as 'logits', loss as 'loss')."""
    torch.manual_seed(0)
    model = _model(space_json, params, gate, in_channels, num_classes)
    x, y = read_batch(batch)
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    rows = [TensorRow("logits", tuple(logits.shape), logits.detach().numpy().astype(np.float32).ravel()),
            TensorRow("loss", (1,), np.array([loss.item()], dtype=np.float32))]
    rows += grad_rows(model)
    write_tensor_file(out, rows, {"kind": "parity-grads"})
    return {"loss": loss.item(), "tensors": len(rows)}


def switch_hessians(space_json: str, params: str, batch: str, gate: str = "output", in_channels: int = 3,
                    num_classes: int = 10, mode: str = "per-sample", seed: str = "diagonal", scale: str = "mean",
                    exact: bool = False) -> str:
    """The recursion (and, with ``exact``, the exact diagonal by double backward) on the same weights
    and batch as the TypeScript side; JSON with one entry per cell and the per-group comparison."""
    from .hessian import compare, exact_switch_hessian, recursion_switch_hessian
    model = _model(space_json, params, gate, in_channels, num_classes)
    x, y = read_batch(batch)
    rec = recursion_switch_hessian(model, x, y, mode=mode, seed=seed, scale=scale)
    out = {"recursion": [{"cell": r["cell"], "type": r["type"], "origin": r["origin"].tolist(), "child": r["child"].ravel().tolist()} for r in rec]}
    if exact:
        ex = exact_switch_hessian(model, x, y)
        out["exact"] = [{"cell": r["cell"], "type": r["type"], "origin": r["origin"].tolist(), "child": r["child"].ravel().tolist()} for r in ex]
        out["comparison"] = compare(rec, ex)
    return json.dumps(out, default=float)


def export_fresh(space_json: str, out: str, gate: str = "output", in_channels: int = 3, num_classes: int = 10,
                 seed: int = 0) -> None:
    """A freshly initialised PyTorch supernet (PyTorch's own initialisation), exported in the
    TypeScript names and layouts, for the TS side's ParamStore.load."""
    from .tsweights import export_params
    torch.manual_seed(seed)
    space = space_from_dict(json.loads(space_json))
    export_params(build_supernet(space, num_classes=num_classes, in_channels=in_channels, gate=gate), out)
