"""Activation math shared by both evaluator halves (NeuralNetwork ``activation`` kinds, MIL
activation ops, the LSTM's gates), so that one function is computed one way everywhere.

``x`` is a float32 array; parameters are Python or numpy scalars, taken as float32 so that a
Python float never widens the result.
"""
from __future__ import annotations

import math

import numpy as np

try:
    from scipy.special import erf as _erf
except ImportError:  # scipy is a dependency, but erf is all we need from it
    _erf = np.vectorize(math.erf, otypes=[np.float64])


def relu(x):
    # max against an array of zeros: numpy 2.4's maximum with a scalar operand (0, 0.0 or
    # float32(0) alike) runs 2.5-3x slower on float32 tensors, for the same bits (NaN, -0.0).
    x = np.asarray(x)
    if x.size < 4096:
        return np.maximum(x, 0)
    out = np.zeros_like(x)
    return np.maximum(x, out, out=out)


def clip(x, low, high):
    """min(max(x, low), high), bit for bit: NaN stays NaN, a tie gives the bound's zero.

    When low is +0 below high (ReLU6 and the clips converters write for it), numpy's clip
    ufunc plus 0.0 (which turns the -0.0 clip keeps into the +0.0 max gives) is the same bits
    in one pass: numpy runs maximum and minimum against a scalar slowly (PANNs V2's
    [1, 96, 50, 32] ReLU6: 93 -> 20 us). The ufunc itself, not np.clip, whose Python wrapper
    costs 2 us a call (on [1, 960, 3, 2], 4.7 us as two ufuncs -> 2.0). Other bounds take the
    two ufuncs."""
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    if x.dtype.kind == "f" and _positive_zero(low) and _above_zero(high):
        out = _CLIP(x, low, high)
        out += 0.0
        return out
    return np.minimum(np.maximum(x, low), high)


def _positive_zero(value):
    # on Python floats: numpy's scalar operations cost microseconds each in a model's run
    return isinstance(value, _SCALARS) and math.copysign(1.0, float(value)) > 0 \
        and float(value) == 0.0


def _above_zero(value):
    return isinstance(value, _SCALARS) and float(value) > 0.0


_SCALARS = (int, float, np.integer, np.floating)
# numpy >= 2 keeps its ufuncs in np._core; 1.x in np.core
_CLIP = getattr(getattr(np, "_core", None) or np.core, "umath").clip


def leaky_relu(x, alpha):
    return np.where(x >= 0, x, np.float32(alpha) * x)


def thresholded_relu(x, alpha):
    return np.where(x >= np.float32(alpha), x, 0).astype(np.asarray(x).dtype)


def clamped_relu(x, alpha, beta):
    return np.minimum(leaky_relu(x, alpha), np.float32(beta))


def elu(x, alpha):
    return np.where(x > 0, x, np.float32(alpha) * np.expm1(np.minimum(x, 0)))


def sigmoid(x):
    # Split by sign so exp never overflows: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) otherwise;
    # unlike 0.5*(1+tanh(x/2)), small results keep their relative precision.
    # One division of the chosen numerator: the same quotients, three passes fewer.
    x = np.asarray(x, dtype=np.float32)
    e = np.exp(-np.abs(x))
    numerator = np.where(x >= 0, np.float32(1.0), e)
    e += np.float32(1.0)
    return np.divide(numerator, e, out=numerator)


def hard_sigmoid(x, alpha=0.2, beta=0.5):
    return np.clip(np.float32(alpha) * x + np.float32(beta), 0, 1)


def linear(x, alpha=1.0, beta=0.0):
    return np.float32(alpha) * x + np.float32(beta)


def scaled_tanh(x, alpha, beta):
    return np.float32(alpha) * np.tanh(np.float32(beta) * x)


def softsign(x):
    return x / (1 + np.abs(x))


def softplus(x):
    return np.logaddexp(np.float32(0), x)   # log(1 + e^x) without overflow


def erf(x):
    return _erf(np.asarray(x, dtype=np.float32)).astype(np.float32)


GELU_MODES = ("EXACT", "TANH_APPROXIMATION", "SIGMOID_APPROXIMATION")


def gelu(x, mode):
    x = np.asarray(x, dtype=np.float32)
    if mode == "EXACT":
        return 0.5 * x * (1 + erf(x / np.float32(np.sqrt(2))))
    if mode == "TANH_APPROXIMATION":
        inner = np.float32(np.sqrt(2 / np.pi)) * (x + np.float32(0.044715) * x ** 3)
        return 0.5 * x * (1 + np.tanh(inner))
    if mode == "SIGMOID_APPROXIMATION":
        return x * sigmoid(np.float32(1.702) * x)
    raise ValueError("unknown gelu mode {!r}".format(mode))
