"""Elementwise arithmetic.

Old layers average, max and min broadcast only a few [..., C, H, W] patterns; add and
multiply, like the iOS 13 *Broadcastable layers, follow numpy's rules (Core ML runs an add
of a [1] blob and a [1, 3, 1] blob; coremltools' layer tests check it). Any other shape pair
is rejected, as Core ML would reject it — never broadcast silently.
"""
from __future__ import annotations

from functools import reduce as fold

import numpy as np

from coreml_reference.neuralnetwork.layers.registry import (broadcast_shape, register,
                                                            require_rank, shape_list)

# (C, H, W) patterns an input may have against the output's (C, H, W); "C" means "equal".
_ADD_PATTERNS = {("1", "1", "1"), ("C", "1", "1"), ("1", "C", "C"), ("C", "C", "C")}
_MAXMIN_PATTERNS = {("C", "1", "1"), ("C", "C", "C")}


def legacy_broadcast(arrays, ctx, patterns):
    """Output shape for the old elementwise layers, or ShapeError naming the shapes."""
    shapes = [a.shape for a in arrays]
    rank = max(3, max(len(s) for s in shapes))
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    target = tuple(max(sizes) for sizes in zip(*padded))
    for shape in padded:
        lead_ok = shape[:-3] == target[:-3]
        tail = tuple("C" if d == t else ("1" if d == 1 else "x") for d, t in zip(shape[-3:], target[-3:]))
        if not lead_ok or tail not in patterns:
            raise ctx.shape_error(
                "cannot broadcast {} ({} broadcasts only {} against [..., C, H, W]; "
                "the *Broadcastable layers follow numpy)".format(
                    " and ".join(str(shape_list(s)) for s in shapes), ctx.type_name,
                    ", ".join(_pattern_text(q) for q in sorted(patterns) if q != ("C", "C", "C"))))
    return target


def _pattern_text(pattern):
    names = ("C", "H", "W")
    return "[..., " + ", ".join(n if q == "C" else "1" for n, q in zip(names, pattern)) + "]"


def _legacy_inputs(arrays, ctx, patterns):
    """The inputs, checked against the patterns (on a [C, H, W] view of them), at the rank
    of the highest-rank input: a rank-2 max of rank-2 blobs stays rank 2."""
    legacy_broadcast(arrays, ctx, patterns)
    rank = max(a.ndim for a in arrays)
    return [a.reshape((1,) * (rank - a.ndim) + a.shape) for a in arrays]


@register("add")
def add(ctx, p, inputs):
    if len(inputs) == 1:
        return inputs[0] + np.float32(p.alpha)
    broadcast_shape([a.shape for a in inputs], ctx)
    return fold(np.add, inputs)


@register("multiply")
def multiply(ctx, p, inputs):
    if len(inputs) == 1:
        return inputs[0] * np.float32(p.alpha)
    broadcast_shape([a.shape for a in inputs], ctx)
    return fold(np.multiply, inputs)


@register("average")
def average(ctx, p, inputs):
    arrays = _legacy_inputs(inputs, ctx, _ADD_PATTERNS)
    return fold(np.add, arrays) / np.float32(len(arrays))


@register("max")
def maximum(ctx, p, inputs):
    arrays = _legacy_inputs(inputs, ctx, _MAXMIN_PATTERNS)
    return fold(np.maximum, arrays)


@register("min")
def minimum(ctx, p, inputs):
    arrays = _legacy_inputs(inputs, ctx, _MAXMIN_PATTERNS)
    return fold(np.minimum, arrays)


@register("dot")
def dot(ctx, p, inputs):
    """[..., C, 1, 1] . [..., C, 1, 1] -> [..., 1, 1, 1] (cosine similarity if asked)."""
    a, b = inputs
    require_rank(a, 3, ctx)
    if a.shape != b.shape:
        raise ctx.shape_error("cannot take the dot product of {} and {}".format(
            shape_list(a.shape), shape_list(b.shape)))
    if p.cosineSimilarity:
        a = a / np.sqrt(np.square(a).sum(axis=(-3, -2, -1), keepdims=True))
        b = b / np.sqrt(np.square(b).sum(axis=(-3, -2, -1), keepdims=True))
    return (a * b).sum(axis=(-3, -2, -1), keepdims=True)


def _chw_param(values, shape, x, ctx, what):
    """scale / bias parameters of shape [1], [C], [1, H, W] or [C, H, W], against [..., C, H, W]."""
    require_rank(x, 3, ctx)
    shape = [int(d) for d in shape] or [1]
    c, h, w = x.shape[-3:]
    if shape == [1]:
        return values.reshape(1, 1, 1)
    if shape == [c]:
        return values.reshape(c, 1, 1)
    if shape in ([1, h, w], [c, h, w]):
        return values.reshape(shape)
    raise ctx.shape_error("{} of shape {} does not fit input {}".format(what, shape, shape_list(x.shape)))


@register("scale")
def scale(ctx, p, inputs):
    x = inputs[0]
    shape = list(p.shapeScale) or [1]
    out = x * _chw_param(ctx.weights(p.scale, shape, "scale"), shape, x, ctx, "scale")
    if p.hasBias:
        bias_shape = list(p.shapeBias) or [1]
        out = out + _chw_param(ctx.weights(p.bias, bias_shape, "bias"), bias_shape, x, ctx, "bias")
    return out


@register("bias")
def bias(ctx, p, inputs):
    x = inputs[0]
    shape = list(p.shape) or [1]
    return x + _chw_param(ctx.weights(p.bias, shape, "bias"), shape, x, ctx, "bias")


# --- numpy-broadcasting binary layers ----------------------------------------------------

def _broadcasting(function):
    def layer(ctx, p, inputs):
        if len(inputs) != 2:
            raise ctx.shape_error("needs 2 inputs, got {}".format(len(inputs)))
        a, b = inputs
        if a.shape != b.shape:
            broadcast_shape([a.shape, b.shape], ctx)     # ShapeError where Core ML would fail
        return function(a, b)
    return layer


_BINARY = {
    "addBroadcastable": np.add,
    "subtractBroadcastable": np.subtract,
    "multiplyBroadcastable": np.multiply,
    "divideBroadcastable": np.divide,
    "powBroadcastable": np.power,
    "maxBroadcastable": np.maximum,
    "minBroadcastable": np.minimum,
    "modBroadcastable": np.mod,               # floor mod: sign of the divisor, like numpy
    "floorDivBroadcastable": np.floor_divide,
}
for _name, _function in _BINARY.items():
    register(_name)(_broadcasting(_function))


def _comparison(function):
    """Two inputs, or one input against the layer's alpha; output 1.0 / 0.0."""
    def layer(ctx, p, inputs):
        if len(inputs) == 1:
            return function(inputs[0], np.float32(p.alpha)).astype(np.float32)
        a, b = inputs
        broadcast_shape([a.shape, b.shape], ctx)
        return function(a, b).astype(np.float32)
    return layer


for _name, _function in {"equal": np.equal, "notEqual": np.not_equal, "lessThan": np.less,
                         "lessEqual": np.less_equal, "greaterThan": np.greater,
                         "greaterEqual": np.greater_equal}.items():
    register(_name)(_comparison(_function))


def _logical(function):
    def layer(ctx, p, inputs):
        if len(inputs) != 2:
            raise ctx.shape_error("needs 2 inputs, got {}".format(len(inputs)))
        broadcast_shape([inputs[0].shape, inputs[1].shape], ctx)
        return function(inputs[0] != 0, inputs[1] != 0).astype(np.float32)
    return layer


for _name, _function in {"logicalAnd": np.logical_and, "logicalOr": np.logical_or,
                         "logicalXor": np.logical_xor}.items():
    register(_name)(_logical(_function))


@register("logicalNot")
def logical_not(ctx, p, inputs):
    return (inputs[0] == 0).astype(np.float32)


@register("whereBroadcastable")
def where(ctx, p, inputs):
    condition, a, b = inputs
    broadcast_shape([condition.shape, a.shape, b.shape], ctx)
    return np.where(condition != 0, a, b)
