"""The op registry: one small function per MIL op type, found by name.

An op function takes the evaluation context and the op's inputs as keyword arguments, named
as in MIL (``x``, ``weight``, ``pad_type`` ...). Float16 tensors arrive as float32 (we compute
in float32); the caller rounds the result to the declared output type. Inputs the program
leaves out take the function's Python defaults, which are MIL's defaults.

    @register("relu")
    def relu(ctx, x):
        return np.maximum(x, 0)

Both halves share this protocol, context first: an ML Program op is ``fn(ctx, **inputs)``,
a NeuralNetwork layer ``fn(ctx, params, inputs)`` (neuralnetwork/layers/registry.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

OPS = {}


@dataclass
class OpDef:
    fn: object
    lists: frozenset = field(default_factory=frozenset)   # variadic inputs, passed as lists
    exact: bool = False     # every result value is one of its input values (see register)


def register(*names, lists=(), exact=False):
    """Register ``fn`` for each MIL op type in ``names``; ``lists`` names variadic inputs.

    ``exact``: the op only selects, moves or compares values (relu, max_pool, reshape, pad
    ...), so each result value is one of its inputs' values. Given float16 values it returns
    float16 values, and the runner skips rounding them to float16 again: the same numbers,
    one pass less per op."""
    def wrap(fn):
        for name in names:
            if name in OPS:
                raise ValueError("MIL op type {!r} registered twice".format(name))
            OPS[name] = OpDef(fn, frozenset(lists), exact)
        return fn
    return wrap


# --- helpers for op functions: MIL parameters arrive as numpy arrays -------------------------

def scalar(value):
    """A Python scalar from a 0-d or one-element array (strings stay str)."""
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError("expected a scalar, got shape {}".format(list(arr.shape)))
    item = arr.reshape(-1)[0]
    return item.item() if hasattr(item, "item") else item


def ints(value):
    """A list of Python ints from an int tensor (or None)."""
    if value is None:
        return None
    return [int(v) for v in np.asarray(value).reshape(-1)]


def axes_of(value, rank):
    """Axes as non-negative ints, checked against ``rank``."""
    axes = []
    for a in ints(value):
        if not -rank <= a < max(rank, 1):
            raise ValueError("axis {} out of range for rank {}".format(a, rank))
        axes.append(a % rank if rank else 0)
    return axes


def broadcast_shape(ctx, *arrays):
    """numpy-style broadcast shape, as MIL allows; ShapeError naming shapes and op if not."""
    shapes = [np.shape(a) for a in arrays]
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ctx.shape_error("shapes {} cannot be broadcast together".format(
            " and ".join(str(list(s)) for s in shapes)))
