"""MIL activation ops (iOS15 activation.py and later variants)."""
from __future__ import annotations

import numpy as np

from coreml_reference.mlprogram.ops.elementwise import erf
from coreml_reference.mlprogram.registry import register, scalar


def _sigmoid(x):
    # Split by sign so exp never overflows: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) otherwise.
    x = np.asarray(x, dtype=np.float32)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


def _per_channel(x, alpha):
    """alpha of shape [C] aligned with axis 1 of x (N, C, ...); scalars broadcast."""
    alpha = np.asarray(alpha, dtype=np.float32)
    if alpha.ndim == 0 or alpha.size == 1:
        return alpha.reshape(())
    return alpha.reshape((1, -1) + (1,) * (np.ndim(x) - 2))


@register("relu")
def relu(ctx, x):
    return np.maximum(x, 0)


@register("relu6")
def relu6(ctx, x):
    return np.minimum(np.maximum(x, 0), 6)


@register("leaky_relu")
def leaky_relu(ctx, x, alpha=0.01):
    return np.where(x >= 0, x, x * np.float32(scalar(alpha)))


@register("prelu")
def prelu(ctx, x, alpha):
    return np.where(x >= 0, x, x * _per_channel(x, alpha))


@register("elu")
def elu(ctx, x, alpha=1.0):
    return np.where(x > 0, x, np.float32(scalar(alpha)) * np.expm1(np.minimum(x, 0)))


@register("clamped_relu")
def clamped_relu(ctx, x, alpha, beta):
    return np.minimum(np.where(x >= 0, x, x * np.float32(scalar(alpha))), np.float32(scalar(beta)))


@register("thresholded_relu")
def thresholded_relu(ctx, x, alpha=1.0):
    return np.where(x >= np.float32(scalar(alpha)), x, 0).astype(np.asarray(x).dtype)


@register("sigmoid")
def sigmoid(ctx, x):
    return _sigmoid(x)


@register("sigmoid_hard")
def sigmoid_hard(ctx, x, alpha=0.2, beta=0.5):
    return np.clip(np.float32(scalar(alpha)) * x + np.float32(scalar(beta)), 0, 1)


@register("silu")
def silu(ctx, x):
    return x * _sigmoid(x)


@register("softplus")
def softplus(ctx, x):
    return np.logaddexp(np.float32(0), x)


@register("softplus_parametric")
def softplus_parametric(ctx, x, alpha, beta):
    return _per_channel(x, alpha) * np.logaddexp(np.float32(0), _per_channel(x, beta) * x)


@register("softsign")
def softsign(ctx, x):
    return x / (1 + np.abs(x))


@register("scaled_tanh")
def scaled_tanh(ctx, x, alpha=1.0, beta=1.0):
    return np.float32(scalar(alpha)) * np.tanh(np.float32(scalar(beta)) * x)


@register("linear_activation")
def linear_activation(ctx, x, alpha=1.0, beta=0.0):
    return np.float32(scalar(alpha)) * x + np.float32(scalar(beta))


@register("gelu")
def gelu(ctx, x, mode="EXACT"):
    mode = str(scalar(mode))
    x = np.asarray(x, dtype=np.float32)
    if mode == "EXACT":
        return 0.5 * x * (1 + erf(ctx, x / np.float32(np.sqrt(2))))
    if mode == "TANH_APPROXIMATION":
        inner = np.float32(np.sqrt(2 / np.pi)) * (x + np.float32(0.044715) * x ** 3)
        return 0.5 * x * (1 + np.tanh(inner))
    if mode == "SIGMOID_APPROXIMATION":
        return x * _sigmoid(np.float32(1.702) * x)
    raise ValueError("unknown gelu mode {!r}".format(mode))


@register("softmax")
def softmax(ctx, x, axis=-1):
    axis = int(scalar(axis))
    shifted = x - np.max(x, axis=axis, keepdims=True)   # the max is subtracted: no overflow
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)
