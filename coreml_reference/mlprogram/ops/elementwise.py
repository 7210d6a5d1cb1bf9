"""Elementwise MIL ops: binary with numpy-style broadcasting (checked), unary math, clip,
select, cast, const, identity."""
from __future__ import annotations

import numpy as np

from coreml_reference import activations as act
from coreml_reference.mlprogram.registry import broadcast_shape, register, scalar


def _binary(fn):
    def op(ctx, x, y):
        broadcast_shape(ctx, x, y)          # MIL broadcasts like numpy, and no further
        return fn(np.asarray(x), np.asarray(y))
    return op


def _true_div(x, y):
    return np.true_divide(x, y)


def _floor_div(x, y):
    if np.asarray(x).dtype.kind in "iu" and np.asarray(y).dtype.kind in "iu":
        return np.floor_divide(x, y)
    return np.floor(np.true_divide(x, y))


BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": _true_div,
    "floor_div": _floor_div, "pow": np.power, "maximum": np.maximum, "minimum": np.minimum,
    "mod": np.mod, "equal": np.equal, "not_equal": np.not_equal, "less": np.less,
    "less_equal": np.less_equal, "greater": np.greater, "greater_equal": np.greater_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor,
}
for _name, _fn in BINARY.items():
    register(_name)(_binary(_fn))


UNARY = {
    "abs": np.abs, "acos": np.arccos, "asin": np.arcsin, "atan": np.arctan, "atanh": np.arctanh,
    "ceil": np.ceil, "cos": np.cos, "cosh": np.cosh, "exp": np.exp, "exp2": np.exp2,
    "floor": np.floor, "logical_not": np.logical_not,
    # MIL round: to the nearest integer, halves to even (0.5 -> 0), as numpy.
    "round": np.round, "sign": np.sign, "sin": np.sin, "sinh": np.sinh, "sqrt": np.sqrt,
    "square": np.square, "tan": np.tan, "tanh": np.tanh,
}
for _name, _fn in UNARY.items():
    register(_name)((lambda f: lambda ctx, x: f(np.asarray(x)))(_fn))


@register("erf")
def erf(ctx, x):
    return act.erf(x)


@register("log")
def log(ctx, x, epsilon=1e-45):
    # MIL: log(x + epsilon); the default epsilon is below float32's range, i.e. 0 in practice.
    return np.log(np.asarray(x) + np.float32(scalar(epsilon)))


@register("rsqrt")
def rsqrt(ctx, x, epsilon=1e-12):
    return 1.0 / np.sqrt(np.asarray(x) + np.float32(scalar(epsilon)))


@register("inverse")
def inverse(ctx, x, epsilon=1e-4):
    return 1.0 / (np.asarray(x) + np.float32(scalar(epsilon)))


@register("threshold")
def threshold(ctx, x, alpha):
    return np.maximum(x, np.float32(scalar(alpha)))


@register("clip", exact=True)
def clip(ctx, x, alpha, beta):
    # min(max(x, alpha), beta): beta wins if alpha > beta.
    return act.clip(x, scalar(alpha), scalar(beta))


@register("select")
def select(ctx, cond, a, b):
    broadcast_shape(ctx, cond, a, b)
    return np.where(np.asarray(cond).astype(bool), a, b)


CAST_DTYPES = {"fp16": np.float16, "fp32": np.float32, "fp64": np.float64, "int32": np.int32,
               "int64": np.int64, "int16": np.int16, "int8": np.int8, "uint8": np.uint8,
               "uint16": np.uint16, "bool": bool}


@register("cast")
def cast(ctx, x, dtype):
    name = str(scalar(dtype))
    if name not in CAST_DTYPES:
        raise ValueError("cast to unknown dtype {!r}".format(name))
    target = np.dtype(CAST_DTYPES[name])
    x = np.asarray(x)
    if target.kind in "iu" and x.dtype.kind == "f":
        x = np.trunc(x)                  # float -> int truncates toward zero
    with np.errstate(over="ignore", invalid="ignore"):
        return x.astype(target)


@register("const")
def const(ctx, val):
    return val


@register("identity", exact=True)
def identity(ctx, x):
    return np.array(x, copy=True)
