"""Genotypes in the DARTS format, and the published ones as data.

``Genotype`` is DARTS's namedtuple. A cell lists (op, input) pairs: flat, two per node, as DARTS
writes it, or one list per node (BayesNAS cells keep every surviving op and edge, so a node may
have one input or several ops on the same input). Inputs: 0 = c_{k-2}, 1 = c_{k-1}, 2+j = node j.
The data below is written from the TypeScript side's src/genotype/published.ts (same cells, same
sources), so both sides hold identical genotypes.
"""
from __future__ import annotations

import importlib
from collections import namedtuple

Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")

# DARTS, Liu et al. ICLR 2019: quark0/darts cnn/genotypes.py, DARTS_V1 (first order)
DARTS_V1 = Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])

# DARTS, Liu et al. ICLR 2019: quark0/darts cnn/genotypes.py, DARTS_V2 (second order)
DARTS_V2 = Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])

# SNAS, Xie et al. ICLR 2019, mild constraint: SNAS-Series/SNAS-Series SNAS/genotypes.py SNAS_mild
SNAS_MILD = Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), ('sep_conv_3x3', 1)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('dil_conv_5x5', 2)], reduce_concat=[2, 3, 4, 5])

# BayesNAS, Zhou et al. ICML 2019, λ=0.01: BayesNAS/BayesNAS CNN/pre_trained/0.01/OneShot.py (spec §7.2)
BAYESNAS_LAMBDA_0_01 = Genotype(normal=[[('sep_conv_5x5', 1), ('sep_conv_5x5', 0), ('max_pool_3x3', 0), ('avg_pool_3x3', 0), ('skip_connect', 0)], [('max_pool_3x3', 1), ('skip_connect', 1)], [('skip_connect', 1), ('max_pool_3x3', 0)], [('avg_pool_3x3', 2)]], normal_concat=[2, 3, 4, 5], reduce=[[('skip_connect', 1), ('sep_conv_3x3', 0), ('avg_pool_3x3', 0), ('max_pool_3x3', 0), ('sep_conv_5x5', 0)], [('max_pool_3x3', 0), ('avg_pool_3x3', 0)], [('sep_conv_3x3', 0), ('avg_pool_3x3', 0)], [('sep_conv_5x5', 2)]], reduce_concat=[2, 3, 4, 5])

# BayesNAS, Zhou et al. ICML 2019, λ=0.007: BayesNAS/BayesNAS CNN/pre_trained/0.007/OneShot.py (spec §7.2)
BAYESNAS_LAMBDA_0_007 = Genotype(normal=[[('sep_conv_3x3', 0), ('skip_connect', 0)], [('sep_conv_3x3', 1), ('skip_connect', 1)], [('skip_connect', 1), ('sep_conv_3x3', 0)], [('sep_conv_5x5', 0), ('max_pool_3x3', 0), ('avg_pool_3x3', 0), ('skip_connect', 2)]], normal_concat=[2, 3, 4, 5], reduce=[[('sep_conv_5x5', 1), ('avg_pool_3x3', 1), ('avg_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 0), ('sep_conv_5x5', 0)], [('avg_pool_3x3', 0), ('skip_connect', 2)], [('avg_pool_3x3', 0), ('sep_conv_5x5', 2), ('skip_connect', 2)], [('avg_pool_3x3', 2), ('max_pool_3x3', 2)]], reduce_concat=[2, 3, 4, 5])

# BayesNAS, Zhou et al. ICML 2019, λ=0.005: BayesNAS/BayesNAS CNN/pre_trained/0.005/OneShot.py (spec §7.2)
BAYESNAS_LAMBDA_0_005 = Genotype(normal=[[('max_pool_3x3', 0), ('avg_pool_3x3', 0), ('skip_connect', 0)], [('skip_connect', 1), ('sep_conv_5x5', 0)], [('avg_pool_3x3', 1), ('skip_connect', 0), ('max_pool_3x3', 0)], [('sep_conv_5x5', 0), ('max_pool_3x3', 2)]], normal_concat=[2, 3, 4, 5], reduce=[[('sep_conv_3x3', 1), ('sep_conv_5x5', 1), ('max_pool_3x3', 1), ('avg_pool_3x3', 0), ('max_pool_3x3', 0)], [('max_pool_3x3', 2), ('avg_pool_3x3', 2), ('skip_connect', 2)], [('skip_connect', 0), ('max_pool_3x3', 0)], [('sep_conv_3x3', 0), ('max_pool_3x3', 0), ('max_pool_3x3', 2)]], reduce_concat=[2, 3, 4, 5])


PUBLISHED = {name: g for name, g in globals().items() if isinstance(g, Genotype)}


def load_genotype(spec: str):
    """A genotype by ``module:NAME`` from any importable module (e.g. another code base's
    genotypes.py on sys.path), or by the name of a published one here."""
    if ":" in spec:
        module, name = spec.split(":", 1)
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            raise ValueError(f"cannot import module {module!r} for genotype {spec!r}: {e}") from e
        if not hasattr(mod, name):
            raise ValueError(f"module {module!r} has no attribute {name!r}")
        return getattr(mod, name)
    if spec not in PUBLISHED:
        raise ValueError(f"unknown genotype {spec!r}; published: {', '.join(PUBLISHED)}")
    return PUBLISHED[spec]


def genotype_repr(spec: str) -> str:
    """The DARTS repr of a genotype given as ``module:NAME`` or a published name."""
    return repr(load_genotype(spec))


def parse_repr(text: str) -> Genotype:
    """Reads a DARTS repr (optionally ``NAME = Genotype(...)``) without evaluating code: only
    literals and ``range(a, b)`` are accepted."""
    import ast
    src = text.strip()
    if "=" in src.split("Genotype(", 1)[0]:
        src = src[src.index("Genotype("):]
    node = ast.parse(src, mode="eval").body
    if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Genotype"):
        raise ValueError("expected Genotype(...)")

    def value(v):
        if isinstance(v, ast.Call) and getattr(v.func, "id", None) == "range":
            return list(range(*[ast.literal_eval(a) for a in v.args]))
        return ast.literal_eval(v)

    fields = {k.arg: value(k.value) for k in node.keywords}
    return Genotype(**fields)


def roundtrip(text: str) -> str:
    """Parses a repr into the namedtuple and prints it again (for the bridge's round-trip test)."""
    return repr(parse_repr(text))
