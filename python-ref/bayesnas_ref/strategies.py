"""The DARTS and SNAS architecture steps on the reference supernet, for parity with the TypeScript
strategies (src/search/baselines.ts, src/search/arch.ts).

α has one row per edge of a cell type and one column per op of the space plus ``none``; every cell of
a type reads the same α. The supernet's switches are replaced for the forward through
``torch.func.functional_call``: origin switches = 1, child switches = the architecture weights'
columns of the space's ops (``none`` multiplies a zero output, so its column only takes mass).

* DARTS: w = softmax(α); one step = loss on a batch, gradient w.r.t. α, torch.optim.Adam step.
* SNAS: w = softmax((α + G)/τ) with G = −log(−log U) from given uniform noise U; the loss gradient
  reaches both α and the weights.
"""
from __future__ import annotations

import json

import torch
import torch.nn.functional as F
from torch.func import functional_call

from .parity import _model, grad_rows
from .tsweights import TensorRow, read_batch, read_tensor_file, write_tensor_file

CELL_TYPES = ("normal", "reduce")


def arch_ops(ops) -> list[str]:
    """The ops α ranges over: the space's ops plus ``none`` unless the space has it."""
    ops = list(ops)
    return ops if "none" in ops else ops + ["none"]


def darts_weights(alpha: dict) -> dict:
    return {t: F.softmax(alpha[t], dim=-1) for t in CELL_TYPES}


def snas_weights(alpha: dict, noise: dict, temperature: float) -> dict:
    return {t: F.softmax((alpha[t] - torch.log(-torch.log(noise[t]))) / temperature, dim=-1)
            for t in CELL_TYPES}


def switch_overrides(model, weights: dict) -> dict:
    """Parameter name -> tensor replacing every cell's switches with architecture weights."""
    ops = list(model.space.ops)
    cols = [arch_ops(ops).index(o) for o in ops]
    out = {}
    for k, cell in enumerate(model.cells):
        w = weights[cell.cell_type]
        out[f"cells.{k}.switch_origin"] = torch.ones(w.shape[0], dtype=w.dtype)
        out[f"cells.{k}.switch_child"] = w[:, cols]
    return out


def _read_rows(path: str) -> dict:
    rows, _ = read_tensor_file(path)
    return {r.name: torch.from_numpy(r.array().copy()) for r in rows}


def _row(name: str, t: torch.Tensor) -> TensorRow:
    a = t.detach().to(torch.float32).contiguous().numpy()
    return TensorRow(name, tuple(a.shape), a.ravel())


def arch_step(strategy: str, space_json: str, params: str, batch: str, alphas: str, out: str,
              noise: str | None = None, temperature: float = 1.0, lr: float = 3e-4, beta1: float = 0.5,
              beta2: float = 0.999, weight_decay: float = 1e-3, gate: str = "output",
              in_channels: int = 3, num_classes: int = 10) -> dict:
    """One DARTS architecture step or one SNAS sampling step on the TypeScript side's weights, α,
    batch (and, for SNAS, noise). Writes loss, logits, the architecture weights, the α gradients, α
    after one Adam step, and (SNAS) the gradient of every weight, with TypeScript names."""
    if strategy not in ("darts", "snas"):
        raise ValueError(f"strategy must be darts or snas, got {strategy!r}")
    if strategy == "snas" and noise is None:
        raise ValueError("snas needs the uniform noise file (noise=...)")
    torch.manual_seed(0)
    model = _model(space_json, params, gate, in_channels, num_classes)
    x, y = read_batch(batch)
    a = _read_rows(alphas)
    alpha = {t: torch.nn.Parameter(a[f"alpha_{t}"].clone()) for t in CELL_TYPES}
    E_O = {t: tuple(alpha[t].shape) for t in CELL_TYPES}
    n_ops = len(arch_ops(model.space.ops))
    for t in CELL_TYPES:
        if E_O[t][1] != n_ops:
            raise ValueError(f"alpha_{t} has {E_O[t][1]} columns, the space has {n_ops} ops with none")
    if strategy == "darts":
        w = darts_weights(alpha)
    else:
        u = _read_rows(noise)
        w = snas_weights(alpha, {t: u[f"noise_{t}"] for t in CELL_TYPES}, temperature)
    logits = functional_call(model, switch_overrides(model, w), (x,))
    loss = F.cross_entropy(logits, y)
    loss.backward()
    rows = [_row("loss", loss.reshape(1)), _row("logits", logits)]
    rows += [_row(f"weights_{t}", w[t]) for t in CELL_TYPES]
    rows += [_row(f"grad_alpha_{t}", alpha[t].grad) for t in CELL_TYPES]
    opt = torch.optim.Adam([alpha[t] for t in CELL_TYPES], lr=lr, betas=(beta1, beta2), eps=1e-8,
                           weight_decay=weight_decay)
    opt.step()
    rows += [_row(f"alpha_{t}", alpha[t]) for t in CELL_TYPES]
    if strategy == "snas":
        rows += grad_rows(model, skip=("buffers", "switches"), prefix="grad ")
    write_tensor_file(out, rows, {"kind": f"{strategy}-step", "space": json.loads(space_json).get("name", "")})
    return {"loss": loss.item(), "tensors": len(rows)}
