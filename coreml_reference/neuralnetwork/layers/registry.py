"""Layer type name -> function, and the shape rules several families share.

Both halves share one protocol, context first: a layer is ``fn(ctx, params, inputs)`` (the
layer's proto message, its input arrays in order), as an ML Program op is ``fn(ctx, **inputs)``
(mlprogram/registry.py); an activation kind is ``fn(ctx, params, x)``.
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence, Tuple

import numpy as np

REGISTRY: Dict[str, Callable] = {}


def register(*type_names: str):
    """``@register("convolution")``: the function evaluates that NeuralNetwork layer type."""
    def decorate(function):
        for name in type_names:
            if name in REGISTRY:
                raise ValueError("layer type {!r} registered twice".format(name))
            REGISTRY[name] = function
        return function
    return decorate


def shape_list(shape) -> list:
    return [int(d) for d in shape]


def require_rank(x: np.ndarray, minimum: int, ctx, what: str = "input") -> None:
    """Older layers address axes from the end ([..., C, H, W]); they need enough of them."""
    if x.ndim < minimum:
        raise ctx.shape_error("{} must have rank >= {}, got shape {}".format(
            what, minimum, shape_list(x.shape)))


def broadcast_shape(shapes: Sequence[Tuple[int, ...]], ctx) -> Tuple[int, ...]:
    """numpy broadcasting, which the iOS 13 *Broadcastable layers follow; anything else is
    an error Core ML would raise too."""
    rank = max(len(s) for s in shapes)
    result = []
    for axis in range(rank):
        sizes = {s[len(s) - rank + axis] for s in shapes if len(s) - rank + axis >= 0}
        sizes.discard(1)
        if len(sizes) > 1:
            raise ctx.shape_error("cannot broadcast " + " and ".join(
                str(shape_list(s)) for s in shapes))
        result.append(sizes.pop() if sizes else 1)
    return tuple(result)


def normalize_axis(axis: int, rank: int, ctx) -> int:
    if not -rank <= axis < rank:
        raise ctx.shape_error("axis {} is out of range for rank {}".format(axis, rank))
    return axis % rank


def pair(values, default: int) -> Tuple[int, int]:
    """A [H, W] parameter; the proto's default when unset."""
    values = list(values)
    if not values:
        return default, default
    if len(values) != 2:
        raise ValueError("expected 2 values [H, W], got {}".format(values))
    return int(values[0]), int(values[1])
