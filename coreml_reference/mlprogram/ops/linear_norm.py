"""linear, matmul, einsum, and the normalisation ops."""
from __future__ import annotations

import numpy as np

from coreml_reference import blas
from coreml_reference.mlprogram.registry import axes_of, register, scalar


@register("linear")
def linear(ctx, x, weight, bias=None):
    # y = x W^T + b over the last axis; weight is (out, in).
    x = np.asarray(x)
    if np.ndim(weight) != 2 or np.shape(weight)[1] != x.shape[-1]:
        raise ctx.shape_error("weight {} does not fit input {}".format(
            list(np.shape(weight)), list(x.shape)))
    y = blas.matmul(x, np.asarray(weight).T)
    if bias is not None:
        y = y + bias
    return y


@register("matmul")
def matmul(ctx, x, y, transpose_x=False, transpose_y=False):
    x, y = np.asarray(x), np.asarray(y)
    if bool(scalar(transpose_x)) and x.ndim >= 2:
        x = np.swapaxes(x, -1, -2)
    if bool(scalar(transpose_y)) and y.ndim >= 2:
        y = np.swapaxes(y, -1, -2)
    try:
        return blas.matmul(x, y)
    except ValueError:
        raise ctx.shape_error("shapes {} and {} (after transposes) do not multiply".format(
            list(x.shape), list(y.shape)))


@register("einsum", lists=("values",))
def einsum(ctx, values, equation):
    return np.einsum(str(scalar(equation)), *values)


def _channel(v, ndim):
    """A per-channel vector [C] shaped to broadcast along axis 1 of an (N, C, ...) tensor."""
    return np.asarray(v, dtype=np.float32).reshape((1, -1) + (1,) * (ndim - 2))


@register("batch_norm")
def batch_norm(ctx, x, mean, variance, gamma=None, beta=None, epsilon=1e-5):
    nd = np.ndim(x)
    if nd < 3 or np.size(mean) != np.shape(x)[1]:
        raise ctx.shape_error("mean of {} values for input {}".format(
            np.size(mean), list(np.shape(x))))
    # Fold into one scale and shift per channel, as inference runtimes do.
    scale = 1.0 / np.sqrt(np.asarray(variance, np.float32) + np.float32(scalar(epsilon)))
    if gamma is not None:
        scale = scale * np.asarray(gamma, np.float32)
    shift = -np.asarray(mean, np.float32) * scale
    if beta is not None:
        shift = shift + np.asarray(beta, np.float32)
    return x * _channel(scale, nd) + _channel(shift, nd)


def _normalize(x, axes, epsilon):
    mean = np.mean(x, axis=tuple(axes), keepdims=True)
    centered = x - mean
    var = np.mean(centered * centered, axis=tuple(axes), keepdims=True)
    return centered / np.sqrt(var + np.float32(epsilon))


@register("instance_norm")
def instance_norm(ctx, x, gamma=None, beta=None, epsilon=1e-5):
    nd = np.ndim(x)
    y = _normalize(np.asarray(x), range(2, nd), scalar(epsilon))
    if gamma is not None:
        y = y * _channel(gamma, nd)
    if beta is not None:
        y = y + _channel(beta, nd)
    return y


@register("layer_norm")
def layer_norm(ctx, x, axes=None, gamma=None, beta=None, epsilon=1e-5):
    x = np.asarray(x)
    axes = sorted(axes_of(axes, x.ndim)) if axes is not None else list(range(x.ndim))
    y = _normalize(x, axes, scalar(epsilon))
    # gamma / beta have shape x.shape[axes]: place them on those axes.
    shape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
    if gamma is not None:
        y = y * np.asarray(gamma, np.float32).reshape(shape)
    if beta is not None:
        y = y + np.asarray(beta, np.float32).reshape(shape)
    return y


@register("l2_norm")
def l2_norm(ctx, x, epsilon=1e-6):
    # Over the last three dimensions (or all, for rank 3).
    x = np.asarray(x)
    axes = tuple(range(max(x.ndim - 3, 0), x.ndim))
    norm = np.sqrt(np.sum(x * x, axis=axes, keepdims=True) + np.float32(scalar(epsilon)))
    return x / norm


@register("local_response_norm")
def local_response_norm(ctx, x, size, alpha=1e-4, beta=0.75, k=1.0):
    # x / (k + alpha/size * sum of squares over `size` neighbouring channels) ** beta
    x = np.asarray(x)
    size = int(scalar(size))
    sq = x * x
    pad = [(0, 0)] * x.ndim
    pad[1] = ((size - 1) // 2, size - 1 - (size - 1) // 2)
    sq = np.pad(sq, pad)
    c = x.shape[1]
    window = sum(sq[:, i:i + c] for i in range(size))
    return x / (np.float32(scalar(k)) + np.float32(scalar(alpha)) / size * window) ** \
        np.float32(scalar(beta))
