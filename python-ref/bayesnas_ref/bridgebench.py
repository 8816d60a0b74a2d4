"""Python half of the bridge benchmark: receive and send tensors as Arrow files or plain lists."""
from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc


def ping(x):
    return x


def read_arrow(path: str) -> dict:
    """Reads a TypeScript tensor file; returns the element count, sum and read time."""
    t0 = time.perf_counter()
    table = ipc.open_file(pa.memory_map(path)).read_all()
    data = table.column("data").combine_chunks()
    values = data.values.to_numpy(zero_copy_only=False)
    ms = (time.perf_counter() - t0) * 1e3
    return {"n": int(values.size), "sum": float(values.sum(dtype=np.float64)), "ms": ms}


def write_arrow(path: str, n: int, seed: int = 0) -> dict:
    """Writes n float32 values (one row, TypeScript tensor-file layout); returns their sum."""
    t0 = time.perf_counter()
    values = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
    data = pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), pa.array(values))
    table = pa.table({"name": ["t"], "group": [""], "shape": pa.array([[n]], pa.list_(pa.int32())), "data": data})
    table = table.replace_schema_metadata({"layout": "NHWC"})
    with ipc.new_file(path, table.schema) as w:
        w.write_table(table)
    return {"n": n, "sum": float(values.sum(dtype=np.float64)), "ms": (time.perf_counter() - t0) * 1e3}


def sum_list(xs) -> float:
    return float(np.asarray(xs, dtype=np.float64).sum())


def make_list(n: int, seed: int = 0) -> list:
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32).tolist()
