"""unary (SQRT, RSQRT, INVERSE, POWER, EXP, LOG, ABS, THRESHOLD on scale*x + shift), clip,
and the iOS 13 one-input math layers (ceil, floor, round, sign, exp2, sin ... atanh)."""
from __future__ import annotations

import numpy as np

from coreml_reference import activations as act
from coreml_reference.neuralnetwork.layers.registry import register

SQRT, RSQRT, INVERSE, POWER, EXP, LOG, ABS, THRESHOLD = range(8)


@register("unary")
def unary(ctx, p, inputs):
    x = inputs[0]
    scale = np.float32(p.scale or 1.0)        # proto: unset / 0 means 1
    if scale != 1 or p.shift:
        x = scale * x + np.float32(p.shift)
    eps = np.float32(p.epsilon or 1e-6)       # RSQRT and INVERSE: unset means 1e-6
    alpha = np.float32(p.alpha)
    kind = p.type
    if kind == SQRT:
        return np.sqrt(x)
    if kind == RSQRT:
        return 1.0 / np.sqrt(x + eps)
    if kind == INVERSE:
        return 1.0 / (x + eps)
    if kind == POWER:
        return _power(x, alpha)
    if kind == EXP:
        return np.exp(x)
    if kind == LOG:
        # log(x + epsilon) with the stored epsilon (coremltools' builder writes 1e-45 by
        # default, onnx-coreml 1e-6); coremltools' own NN log tests expect it.
        return np.log(x + np.float32(p.epsilon))
    if kind == ABS:
        return np.abs(x)
    if kind == THRESHOLD:
        return np.maximum(x, alpha)
    raise ctx.unsupported("unary function {}".format(kind))


def _power(x, alpha):
    if alpha == 2:
        return x * x                          # exact, like the device's square
    return np.power(x, alpha)


@register("clip")
def clip(ctx, p, inputs):
    bounds = ctx.cache.get("bounds")
    if bounds is None:
        bounds = ctx.cache["bounds"] = (np.float32(p.minVal), np.float32(p.maxVal))
    return act.clip(inputs[0], *bounds)


def _round_half_away(x):
    # "nearest integer": C's round(), halves away from zero (numpy's rint rounds to even).
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


_FUNCTIONS = {
    "ceil": np.ceil, "floor": np.floor, "round": _round_half_away, "sign": np.sign,
    "exp2": np.exp2, "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin,
    "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh,
}


def _elementwise(function):
    def layer(ctx, p, inputs):
        return function(inputs[0])
    return layer


for _name, _function in _FUNCTIONS.items():
    register(_name)(_elementwise(_function))
