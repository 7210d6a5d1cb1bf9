"""MIL activation ops (iOS15 activation.py and later variants)."""
from __future__ import annotations

import numpy as np

from coreml_reference import activations as act
from coreml_reference.mlprogram.registry import register, scalar


def _per_channel(x, alpha):
    """alpha of shape [C] aligned with axis 1 of x (N, C, ...); scalars broadcast."""
    alpha = np.asarray(alpha, dtype=np.float32)
    if alpha.ndim == 0 or alpha.size == 1:
        return alpha.reshape(())
    return alpha.reshape((1, -1) + (1,) * (np.ndim(x) - 2))


@register("relu", exact=True)
def relu(ctx, x):
    return act.relu(x)


@register("relu6", exact=True)
def relu6(ctx, x):
    return act.clip(x, 0, 6)


@register("leaky_relu")
def leaky_relu(ctx, x, alpha=0.01):
    return act.leaky_relu(x, scalar(alpha))


@register("prelu")
def prelu(ctx, x, alpha):
    return np.where(x >= 0, x, x * _per_channel(x, alpha))


@register("elu")
def elu(ctx, x, alpha=1.0):
    return act.elu(x, scalar(alpha))


@register("clamped_relu")
def clamped_relu(ctx, x, alpha, beta):
    return act.clamped_relu(x, scalar(alpha), scalar(beta))


@register("thresholded_relu")
def thresholded_relu(ctx, x, alpha=1.0):
    return act.thresholded_relu(x, scalar(alpha))


@register("sigmoid")
def sigmoid(ctx, x):
    return act.sigmoid(x)


@register("sigmoid_hard")
def sigmoid_hard(ctx, x, alpha=0.2, beta=0.5):
    return act.hard_sigmoid(x, scalar(alpha), scalar(beta))


@register("silu")
def silu(ctx, x):
    return x * act.sigmoid(x)


@register("softplus")
def softplus(ctx, x):
    return act.softplus(x)


@register("softplus_parametric")
def softplus_parametric(ctx, x, alpha, beta):
    return _per_channel(x, alpha) * act.softplus(_per_channel(x, beta) * x)


@register("softsign")
def softsign(ctx, x):
    return act.softsign(x)


@register("scaled_tanh")
def scaled_tanh(ctx, x, alpha=1.0, beta=1.0):
    return act.scaled_tanh(x, scalar(alpha), scalar(beta))


@register("linear_activation")
def linear_activation(ctx, x, alpha=1.0, beta=0.0):
    return act.linear(x, scalar(alpha), scalar(beta))


@register("gelu")
def gelu(ctx, x, mode="EXACT"):
    return act.gelu(x, str(scalar(mode)))


@register("softmax")
def softmax(ctx, x, axis=-1):
    axis = int(scalar(axis))
    shifted = x - np.max(x, axis=axis, keepdims=True)   # the max is subtracted: no overflow
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)
