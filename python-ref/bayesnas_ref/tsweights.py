"""Exchange of supernet parameters and batches with the TypeScript side through Arrow IPC files.

File format (the TypeScript writer is src/bridge/arrow.ts): one row per tensor, columns
  name   utf8              dotted parameter name (TypeScript naming, below)
  group  utf8              weights | switches | buffers (other values are carried, not checked)
  shape  list<int32>
  data   list<float32>     row-major values
and table metadata ``layout`` = ``NHWC`` (plus anything a writer adds).

Layouts on the TypeScript side, converted here:
  conv weight       TS [k, k, cin, cout]   PyTorch [cout, cin, k, k]
  depthwise weight  TS [k, k, C, 1]        PyTorch [C, 1, k, k]
  classifier weight TS [F, K]              PyTorch Linear [K, F]
  everything else (BN weight/bias/running_mean/running_var [C], switches [E], [E, O], biases)
                    identical
PyTorch's BN ``num_batches_tracked`` has no TypeScript counterpart and is not exchanged (the
networks use momentum 0.1, so it never enters a computation).

Names: the TypeScript name of a PyTorch state_dict key (see supernet.py and ops.py for the
PyTorch side) differs in three places only:
  cells.{i}.edges.{e}.ops.{o}.op.REST   ->  cells.{i}.edges.{e}.ops.{o}.REST
      (the PyTorch op modules wrap their layer sequence in a child ``op``; TypeScript names the
       layers of the sequence directly; darts pools and FactorizedReduce have no wrapper)
  cells.{i}.preprocess{0,1}.size_reduct.weight  ->  cells.{i}.preprocess{0,1}.reduce.weight
  head_bn.*                             ->  head.bn.*
Everything else (stem.*, darts preprocess op.1/op.2 and FactorizedReduce conv_1/conv_2/bn,
creduct bn/conv, switches, classifier.*) has the same name on both sides.

  rows, meta = read_tensor_file(path)             rows: list of TensorRow
  write_tensor_file(path, rows, metadata)
  export_params(model, path)                      PyTorch supernet -> TS names and layouts
  load_ts_params(model, path, strict=True)        TS file -> PyTorch parameters and BN buffers
  x, y = read_batch(path)                         tensors x (NHWC) and y -> NCHW float, long
  write_batch(path, x, y)                         the reverse (x NCHW in, NHWC in the file)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pyarrow as pa
import torch
from torch import nn

LAYOUT = "NHWC"
GROUPS = ("weights", "switches", "buffers")


class TensorFileError(ValueError):
    """A tensor file cannot be read, or does not fit the network; the message names the tensor."""


@dataclass
class TensorRow:
    name: str
    shape: tuple[int, ...]
    data: np.ndarray            # flat float32, row-major
    group: str = ""

    def array(self) -> np.ndarray:
        return self.data.reshape(self.shape)


# ---------------------------------------------------------------------------------------------
# raw files

_INT_LIST = pa.list_(pa.field("item", pa.int32(), nullable=False))
_F32_LIST = pa.list_(pa.field("item", pa.float32(), nullable=False))


def _list_column(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, flat values) of a list column."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if isinstance(arr, pa.ChunkedArray):  # zero chunks
        return np.zeros(1, np.int64), np.zeros(0)
    if not pa.types.is_list(arr.type) and not pa.types.is_large_list(arr.type):
        raise TensorFileError(f"column of type {arr.type} is not a list column")
    offsets = np.asarray(arr.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    values = arr.values.to_numpy(zero_copy_only=False)
    # offsets are relative to the values buffer only when the array is unsliced; be safe
    return offsets - offsets[0], values[offsets[0]:offsets[-1]] if len(offsets) else values


def read_tensor_file(path: str | os.PathLike) -> tuple[list[TensorRow], dict[str, str]]:
    """Rows and table metadata of a tensor file. Data come back as float32 (integer list
    columns, e.g. labels written by another tool, are converted)."""
    path = Path(path)
    try:
        with pa.memory_map(str(path), "r") as src:
            table = pa.ipc.open_file(src).read_all()
    except FileNotFoundError:
        raise TensorFileError(f"{path}: no such file") from None
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as e:
        raise TensorFileError(f"{path}: not a readable Arrow IPC file ({e})") from None
    for col in ("name", "shape", "data"):
        if col not in table.column_names:
            raise TensorFileError(f"{path}: Arrow table has no {col!r} column "
                                  f"(columns: {table.column_names})")
    names = table.column("name").to_pylist()
    groups = (table.column("group").to_pylist() if "group" in table.column_names
              else [""] * len(names))
    s_off, s_val = _list_column(table.column("shape"))
    d_off, d_val = _list_column(table.column("data"))
    d_val = np.asarray(d_val, dtype=np.float32)
    rows = []
    for i, name in enumerate(names):
        shape = tuple(int(v) for v in s_val[s_off[i]:s_off[i + 1]])
        data = d_val[d_off[i]:d_off[i + 1]]
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if n != data.size:
            raise TensorFileError(f"{path}: row {i} ({name}) has shape {list(shape)} "
                                  f"but {data.size} values")
        rows.append(TensorRow(str(name), shape, data, groups[i] or ""))
    meta = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in (table.schema.metadata or {}).items()}
    return rows, meta


def write_tensor_file(path: str | os.PathLike, rows: Iterable[TensorRow | dict],
                      metadata: dict[str, str] | None = None) -> None:
    """Writes rows (TensorRow or dicts with name, data, optional shape and group) as the TS side
    does: layout NHWC unless the metadata says otherwise; atomic (temp file + rename)."""
    names, groups, shapes, datas = [], [], [], []
    for r in rows:
        if isinstance(r, dict):
            data = np.asarray(r["data"], dtype=np.float32)
            shape = tuple(r.get("shape", data.shape))
            r = TensorRow(r["name"], shape, data.reshape(-1), r.get("group", ""))
        data = np.ascontiguousarray(np.asarray(r.data, dtype=np.float32).reshape(-1))
        n = int(np.prod(r.shape, dtype=np.int64)) if r.shape else 1
        if n != data.size:
            raise TensorFileError(f"tensor {r.name}: shape {list(r.shape)} has {n} elements "
                                  f"but data has {data.size}")
        names.append(r.name)
        groups.append(r.group or "")
        shapes.append([int(v) for v in r.shape])
        datas.append(data)
    offsets = np.zeros(len(datas) + 1, dtype=np.int32)
    np.cumsum([d.size for d in datas], out=offsets[1:])
    flat = np.concatenate(datas) if datas else np.zeros(0, np.float32)
    data_col = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()),
                                        pa.array(flat, pa.float32()), type=_F32_LIST)
    table = pa.table({
        "name": pa.array(names, pa.utf8()),
        "group": pa.array(groups, pa.utf8()),
        "shape": pa.array(shapes, _INT_LIST),
        "data": data_col,
    })
    meta = {"layout": LAYOUT, **(metadata or {})}
    table = table.replace_schema_metadata({str(k): str(v) for k, v in meta.items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with pa.OSFile(str(tmp), "wb") as sink:
        with pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# name and layout mapping


@dataclass
class Mapping:
    ts_name: str
    torch_name: str
    group: str
    tensor: torch.Tensor                       # the PyTorch parameter or buffer (live)
    to_ts: Callable[[torch.Tensor], torch.Tensor]
    to_torch: Callable[[torch.Tensor], torch.Tensor]

    @property
    def ts_shape(self) -> tuple[int, ...]:
        return tuple(self.to_ts(torch.empty(self.tensor.shape, device="meta")).shape)


def _same(t):
    return t


def _conv_to_ts(t):            # [cout, cin, k, k] -> [k, k, cin, cout]
    return t.permute(2, 3, 1, 0)


def _conv_to_torch(t):         # [k, k, cin, cout] -> [cout, cin, k, k]
    return t.permute(3, 2, 0, 1)


def _dw_to_ts(t):              # [C, 1, k, k] -> [k, k, C, 1]
    return t.permute(2, 3, 0, 1)


def _dw_to_torch(t):           # [k, k, C, 1] -> [C, 1, k, k]
    return t.permute(2, 3, 0, 1)


def _t(t):                     # Linear [K, F] <-> [F, K]
    return t.t()


def ts_name(torch_name: str) -> str:
    """The TypeScript name of a PyTorch state_dict key of a Supernet."""
    parts = torch_name.split(".")
    # cells.{i}.edges.{e}.ops.{o}.op.REST -> drop the wrapper "op"
    if (len(parts) > 7 and parts[0] == "cells" and parts[2] == "edges" and parts[4] == "ops"
            and parts[6] == "op"):
        parts = parts[:6] + parts[7:]
    if len(parts) > 3 and parts[0] == "cells" and parts[2].startswith("preprocess") \
            and parts[3] == "size_reduct":
        parts[3] = "reduce"
    if parts[0] == "head_bn":
        parts = ["head", "bn"] + parts[1:]
    return ".".join(parts)


def param_mappings(model: nn.Module) -> list[Mapping]:
    """One entry per exchanged tensor of the model: parameters and BN running statistics, in
    module order, with the TS name and the layout conversions."""
    out: list[Mapping] = []
    for mname, mod in model.named_modules():
        prefix = f"{mname}." if mname else ""
        for pname, p in mod.named_parameters(recurse=False):
            full = prefix + pname
            to_ts, to_torch = _same, _same
            if isinstance(mod, nn.Conv2d) and pname == "weight":
                if mod.groups == 1:
                    to_ts, to_torch = _conv_to_ts, _conv_to_torch
                elif mod.groups == mod.in_channels == mod.out_channels:
                    to_ts, to_torch = _dw_to_ts, _dw_to_torch
                else:
                    raise TensorFileError(f"{full}: grouped conv with groups={mod.groups} has no "
                                          "TypeScript layout (only groups 1 and depthwise)")
            elif isinstance(mod, nn.Conv2d) and pname == "bias":
                pass
            elif isinstance(mod, nn.Linear) and pname == "weight":
                to_ts, to_torch = _t, _t
            group = "switches" if pname.startswith("switch_") else "weights"
            out.append(Mapping(ts_name(full), full, group, p, to_ts, to_torch))
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            for bname in ("running_mean", "running_var"):
                b = getattr(mod, bname)
                if b is None:
                    continue
                full = prefix + bname
                out.append(Mapping(ts_name(full), full, "buffers", b, _same, _same))
    names = [m.ts_name for m in out]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise TensorFileError(f"two PyTorch tensors map to the same TypeScript name: {dup}")
    return out


def _shape(s) -> str:
    return "[" + ", ".join(str(int(v)) for v in s) + "]"


# ---------------------------------------------------------------------------------------------
# parameters


def export_rows(model: nn.Module) -> list[TensorRow]:
    rows = []
    for m in param_mappings(model):
        a = m.to_ts(m.tensor.detach()).to(torch.float32).cpu().contiguous().numpy()
        rows.append(TensorRow(m.ts_name, tuple(a.shape), a.reshape(-1), m.group))
    return rows


def export_params(model: nn.Module, path: str | os.PathLike,
                  metadata: dict[str, str] | None = None) -> None:
    """Writes every parameter and BN running statistic of ``model`` under its TypeScript name
    and layout (the TS side's ParamStore.load reads it)."""
    write_tensor_file(path, export_rows(model),
                      {"kind": "supernet-params", "writer": "bayesnas_ref", **(metadata or {})})


def load_ts_params(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> dict:
    """Copies the tensors of a TypeScript parameter file into ``model`` (parameters and BN
    running statistics), converting layouts. Every tensor's shape is checked; a mismatch raises
    TensorFileError naming the tensor and both shapes (file and network, TS layout). With
    ``strict`` (default), a network tensor missing from the file, or a file tensor the network
    does not have, is an error as well; without it, they are skipped and reported.

    Returns {"loaded": [ts names], "missing": [...], "unexpected": [...]}.
    """
    rows, meta = read_tensor_file(path)
    layout = meta.get("layout", LAYOUT)
    if layout != LAYOUT:
        raise TensorFileError(f"{path}: layout {layout!r}; only {LAYOUT} files are read")
    by_name: dict[str, TensorRow] = {}
    for r in rows:
        if r.name in by_name:
            raise TensorFileError(f"{path}: tensor {r.name} appears twice")
        by_name[r.name] = r
    maps = param_mappings(model)
    known = {m.ts_name for m in maps}
    missing = [m for m in maps if m.ts_name not in by_name]
    unexpected = [n for n in by_name if n not in known]
    if strict and missing:
        m = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise TensorFileError(f"{path}: no tensor named {m.ts_name} (PyTorch {m.torch_name}); "
                              f"the network expects shape {_shape(m.ts_shape)}{more}")
    if strict and unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        r = by_name[unexpected[0]]
        raise TensorFileError(f"{path}: tensor {r.name} with shape {_shape(r.shape)} is not a "
                              f"tensor of this network (expected shape: none){more}")
    # check every shape before touching the model
    todo = []
    for m in maps:
        r = by_name.get(m.ts_name)
        if r is None:
            continue
        if tuple(r.shape) != m.ts_shape:
            raise TensorFileError(f"{path}: tensor {m.ts_name} has shape {_shape(r.shape)} in the "
                                  f"file but the network expects {_shape(m.ts_shape)} "
                                  f"(PyTorch {m.torch_name} {_shape(m.tensor.shape)})")
        todo.append((m, r))
    with torch.no_grad():
        for m, r in todo:
            t = m.to_torch(torch.from_numpy(r.array().copy()))
            m.tensor.copy_(t.to(dtype=m.tensor.dtype, device=m.tensor.device))
    return {"loaded": [m.ts_name for m, _ in todo], "missing": [m.ts_name for m in missing],
            "unexpected": unexpected}


# ---------------------------------------------------------------------------------------------
# batches


def nhwc_to_nchw(a: np.ndarray) -> torch.Tensor:
    """[N, H, W, C] array -> a fresh float32 [N, C, H, W] tensor with standard strides.
    (torch's permute(...).contiguous() keeps channels-last strides when C == 1, which some CPU
    kernels then mis-handle: heap corruption in the backward pass of the supernet.)"""
    t = torch.from_numpy(np.array(a, dtype=np.float32))
    return t.permute(0, 3, 1, 2).clone(memory_format=torch.contiguous_format)


def read_batch(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch file with tensors ``x`` ([N, H, W, C] float32) and ``y`` ([N] labels, float32 or
    integer values) -> (x as [N, C, H, W] float32, y as int64)."""
    rows, meta = read_tensor_file(path)
    by = {r.name: r for r in rows}
    for k in ("x", "y"):
        if k not in by:
            raise TensorFileError(f"{path}: a batch file needs tensors 'x' and 'y'; "
                                  f"no tensor named {k!r} (found: {sorted(by)})")
    x, y = by["x"], by["y"]
    if len(x.shape) != 4:
        raise TensorFileError(f"{path}: tensor x has shape {_shape(x.shape)}; expected "
                              "[N, H, W, C]")
    layout = meta.get("layout", LAYOUT)
    if layout == "NHWC":
        xt = nhwc_to_nchw(x.array())
    elif layout == "NCHW":
        xt = torch.from_numpy(x.array().copy())
    else:
        raise TensorFileError(f"{path}: unknown layout {layout!r}")
    yv = y.array().reshape(-1)
    if len(yv) != xt.shape[0]:
        raise TensorFileError(f"{path}: tensor y has {len(yv)} labels for {xt.shape[0]} samples")
    if not np.all(np.isfinite(yv)) or not np.all(yv == np.round(yv)) or np.any(yv < 0):
        raise TensorFileError(f"{path}: tensor y must hold non-negative integer labels")
    return xt, torch.from_numpy(np.round(yv).astype(np.int64))


def write_batch(path: str | os.PathLike, x: torch.Tensor, y: torch.Tensor,
                metadata: dict[str, str] | None = None) -> None:
    """x: [N, C, H, W] (written as NHWC), y: [N] labels (written as float32)."""
    xn = x.detach().permute(0, 2, 3, 1).to(torch.float32).cpu().contiguous().numpy()
    yn = y.detach().to(torch.float32).cpu().numpy()
    write_tensor_file(path, [TensorRow("x", tuple(xn.shape), xn.reshape(-1), "batch"),
                             TensorRow("y", tuple(yn.shape), yn.reshape(-1), "batch")],
                      {"kind": "batch", **(metadata or {})})
