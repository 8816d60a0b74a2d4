"""Search spaces as data (spec §2, §2.2.4).

A space describes the cell DAG and the macro network; the supernet, the Hessian pass and the
derivation read it instead of assuming a wiring.

Fields (also the JSON keys of a user space file):
  name            str
  flavour         "darts" | "bayesnas"         (op registry flavour, see ops.py)
  ops             list of op names              (candidates on every edge, in switch order)
  nodes           int                           (intermediate nodes per cell)
  edges           {"normal": [[node, source], ...], "reduce": [[node, source], ...]}
                  source 0 = c_{k-2}, 1 = c_{k-1}, 2+i = intermediate node i (i < node).
                  The list order is the edge (switch row) order.
  layers          int                           (cells; reductions at layers//3, 2*layers//3)
  C               int                           (channels of the first cells; doubled at each
                                                 reduction cell)
  stem_multiplier int, default 3                (stem output = stem_multiplier * C channels)
  preprocess      "darts" | "creduct"           (default from flavour: darts / creduct)
  stem            "conv-bn" | "conv"            (default from flavour: conv-bn / conv)
  head            "gap-linear" | "bn-relu-gap-linear"
                                                (default from flavour: gap-linear /
                                                 bn-relu-gap-linear)

The cell output concatenates all intermediate nodes (nodes * C channels). In a reduction cell,
edges whose source is 0 or 1 have stride 2; all other edges have stride 1.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from .ops import FLAVOURS, OP_NAMES, op_names

PREPROCESS = ("darts", "creduct")
STEMS = ("conv-bn", "conv")
HEADS = ("gap-linear", "bn-relu-gap-linear")
CELL_TYPES = ("normal", "reduce")

FLAVOUR_DEFAULTS = {
    "darts": {"preprocess": "darts", "stem": "conv-bn", "head": "gap-linear"},
    "bayesnas": {"preprocess": "creduct", "stem": "conv", "head": "bn-relu-gap-linear"},
}

Edge = tuple[int, int]  # (node, source)


class SpaceError(ValueError):
    """A space description is invalid; the message names the offending field."""


@dataclass(frozen=True)
class Space:
    name: str
    flavour: str
    ops: tuple[str, ...]
    nodes: int
    edges: dict[str, tuple[Edge, ...]]
    layers: int
    C: int
    stem_multiplier: int = 3
    preprocess: str = "darts"
    stem: str = "conv-bn"
    head: str = "gap-linear"

    def __post_init__(self):
        # normalise lists (e.g. from JSON or a caller) to tuples, then validate
        if isinstance(self.ops, list):
            object.__setattr__(self, "ops", tuple(self.ops))
        if isinstance(self.edges, dict):
            object.__setattr__(self, "edges", {
                t: tuple(tuple(e) if isinstance(e, list) else e for e in es)
                if isinstance(es, (list, tuple)) else es
                for t, es in self.edges.items()})
        validate(self)

    # -- derived facts -------------------------------------------------------------------
    @property
    def reductions(self) -> tuple[int, ...]:
        return tuple(sorted({self.layers // 3, 2 * self.layers // 3}))

    def is_reduction(self, layer: int) -> bool:
        return layer in self.reductions

    def cell_type(self, layer: int) -> str:
        return "reduce" if self.is_reduction(layer) else "normal"

    def cell_edges(self, layer_or_type) -> tuple[Edge, ...]:
        t = layer_or_type if isinstance(layer_or_type, str) else self.cell_type(layer_or_type)
        return self.edges[t]

    @staticmethod
    def edge_stride(cell_type: str, source: int) -> int:
        return 2 if cell_type == "reduce" and source < 2 else 1

    def with_(self, **changes) -> "Space":
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ops"] = list(self.ops)
        d["edges"] = {t: [list(e) for e in self.edges[t]] for t in CELL_TYPES}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


def _fail(field_name: str, msg: str):
    raise SpaceError(f"space field {field_name!r}: {msg}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate(s: Space) -> None:
    if not isinstance(s.name, str) or not s.name:
        _fail("name", f"must be a non-empty string, got {s.name!r}")
    if s.flavour not in FLAVOURS:
        _fail("flavour", f"must be one of {list(FLAVOURS)}, got {s.flavour!r}")
    allowed = op_names(s.flavour)
    if not isinstance(s.ops, tuple) or not s.ops:
        _fail("ops", "must be a non-empty list of op names")
    for o in s.ops:
        if o not in allowed:
            _fail("ops", f"unknown op {o!r} for flavour {s.flavour!r}; allowed: {allowed}")
    if len(set(s.ops)) != len(s.ops):
        _fail("ops", f"duplicate op names in {list(s.ops)}")
    if not _is_int(s.nodes) or s.nodes < 1:
        _fail("nodes", f"must be an integer >= 1, got {s.nodes!r}")
    if not isinstance(s.edges, dict):
        _fail("edges", "must be an object with keys 'normal' and 'reduce'")
    for t in CELL_TYPES:
        if t not in s.edges:
            _fail(f"edges.{t}", "missing")
        es = s.edges[t]
        if not isinstance(es, tuple):
            _fail(f"edges.{t}", f"must be a list of [node, source] pairs, got {es!r}")
        if not es:
            _fail(f"edges.{t}", "must list at least one [node, source] pair")
        seen = set()
        for i, e in enumerate(es):
            where = f"edges.{t}[{i}]"
            if not (isinstance(e, tuple) and len(e) == 2 and all(_is_int(v) for v in e)):
                _fail(where, f"must be a pair of integers [node, source], got {e!r}")
            node, src = e
            if not 0 <= node < s.nodes:
                _fail(where, f"node {node} out of range 0..{s.nodes - 1}")
            if not 0 <= src < 2 + node:
                _fail(where, f"source {src} of node {node} must be in 0..{node + 1} "
                             "(0 = c_k-2, 1 = c_k-1, 2+i = node i < this node)")
            if e in seen:
                _fail(where, f"duplicate edge {list(e)}")
            seen.add(e)
        fed = {n for n, _ in es}
        missing = [n for n in range(s.nodes) if n not in fed]
        if missing:
            _fail(f"edges.{t}", f"node(s) {missing} have no incoming edge")
    extra_types = set(s.edges) - set(CELL_TYPES)
    if extra_types:
        _fail("edges", f"unknown cell type(s) {sorted(extra_types)}; expected 'normal', 'reduce'")
    if not _is_int(s.layers) or s.layers < 1:
        _fail("layers", f"must be an integer >= 1, got {s.layers!r}")
    if not _is_int(s.C) or s.C < 1:
        _fail("C", f"must be an integer >= 1, got {s.C!r}")
    if not _is_int(s.stem_multiplier) or s.stem_multiplier < 1:
        _fail("stem_multiplier", f"must be an integer >= 1, got {s.stem_multiplier!r}")
    if s.preprocess not in PREPROCESS:
        _fail("preprocess", f"must be one of {list(PREPROCESS)}, got {s.preprocess!r}")
    if s.stem not in STEMS:
        _fail("stem", f"must be one of {list(STEMS)}, got {s.stem!r}")
    if s.head not in HEADS:
        _fail("head", f"must be one of {list(HEADS)}, got {s.head!r}")
    needs_even = s.preprocess == "darts" or (s.flavour == "darts" and "skip_connect" in s.ops)
    if needs_even and s.C % 2:
        _fail("C", f"must be even with FactorizedReduce (darts preprocess or darts skip_connect), "
                   f"got {s.C}")


# ---------------------------------------------------------------------------------------------
# presets


def _dense_edges(nodes: int) -> tuple[Edge, ...]:
    return tuple((n, src) for n in range(nodes) for src in range(2 + n))


def darts_space(C: int = 16, layers: int = 8) -> Space:
    """DARTS: 14 edges per cell, the 7 non-none ops, ReLU-conv-BN flavour (spec §2.1, §2.2.4)."""
    e = _dense_edges(4)
    return Space(name="darts", flavour="darts", ops=tuple(OP_NAMES), nodes=4,
                 edges={"normal": e, "reduce": e}, layers=layers, C=C, stem_multiplier=3,
                 **FLAVOUR_DEFAULTS["darts"])


# Official search network (spec §2.2.2), as (node, source). Normal n3's `in1_3` reads c_{k-2}
# (source 0), the intended wiring; the official forward pass feeds it c_{k-1} by mistake.
BAYESNAS_NORMAL: tuple[Edge, ...] = ((0, 1), (0, 0), (1, 1), (1, 0), (2, 1), (2, 0), (3, 0), (3, 2))
BAYESNAS_REDUCE: tuple[Edge, ...] = ((0, 1), (0, 0), (1, 0), (1, 2), (2, 0), (2, 2), (3, 0), (3, 2))
# Official module names of those edges, same order (for mapping to the official code).
BAYESNAS_EDGE_NAMES = {
    "normal": ("in0_0", "in1_0", "in0_1", "in1_1", "in0_2", "in1_2", "in1_3", "sel_0_3"),
    "reduce": ("in0_0", "in1_0", "in1_1", "sel_0_1", "in1_2", "sel_0_2", "in1_3", "sel_0_3"),
}


def bayesnas_space(C: int = 36, layers: int = 8) -> Space:
    """The official BayesNAS search network: 8 edges per cell, 7 ops, BN-ReLU-conv flavour."""
    return Space(name="bayesnas", flavour="bayesnas", ops=tuple(OP_NAMES), nodes=4,
                 edges={"normal": BAYESNAS_NORMAL, "reduce": BAYESNAS_REDUCE}, layers=layers,
                 C=C, stem_multiplier=3, **FLAVOUR_DEFAULTS["bayesnas"])


PRESETS = {"darts": darts_space, "bayesnas": bayesnas_space}


# ---------------------------------------------------------------------------------------------
# loading

REQUIRED = ("name", "flavour", "ops", "nodes", "edges", "layers", "C")
OPTIONAL = ("stem_multiplier", "preprocess", "stem", "head")


def space_from_dict(d: dict) -> Space:
    """Build and validate a space from a plain dict (the JSON form)."""
    if not isinstance(d, dict):
        raise SpaceError(f"a space must be a JSON object, got {type(d).__name__}")
    for k in REQUIRED:
        if k not in d:
            _fail(k, "missing (required fields: " + ", ".join(REQUIRED) + ")")
    unknown = sorted(set(d) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        _fail(unknown[0], f"unknown field (known: {', '.join(REQUIRED + OPTIONAL)})")
    flavour = d["flavour"]
    if flavour not in FLAVOURS:
        _fail("flavour", f"must be one of {list(FLAVOURS)}, got {flavour!r}")
    ops = d["ops"]
    if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
        _fail("ops", f"must be a list of op names, got {ops!r}")
    edges = d["edges"]
    if not isinstance(edges, dict):
        _fail("edges", f"must be an object {{'normal': [...], 'reduce': [...]}}, got {edges!r}")
    kw = {**FLAVOUR_DEFAULTS[flavour], "stem_multiplier": 3}
    kw.update({k: d[k] for k in OPTIONAL if k in d})
    return Space(name=d["name"], flavour=flavour, ops=tuple(ops), nodes=d["nodes"],
                 edges=edges, layers=d["layers"], C=d["C"], **kw)


def load_space(path: str | Path) -> Space:
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SpaceError(f"{path}: not valid JSON ({e})") from e
    try:
        return space_from_dict(d)
    except SpaceError as e:
        raise SpaceError(f"{path}: {e}") from e


def get_space(name_or_path: str, **overrides) -> Space:
    """A preset by name ('darts', 'bayesnas') or a JSON file; overrides (e.g. C, layers)
    replace fields of the result."""
    if name_or_path in PRESETS:
        s = PRESETS[name_or_path]()
    elif name_or_path.endswith(".json") or Path(name_or_path).is_file():
        s = load_space(name_or_path)
    else:
        raise SpaceError(f"unknown space {name_or_path!r}: expected one of {list(PRESETS)} "
                         "or a path to a JSON space file")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return s.with_(**overrides) if overrides else s
