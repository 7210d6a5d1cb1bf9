"""Normalisation: batchnorm (+instance norm), mvn, layerNormalization, l2normalize, lrn,
softmax (axis -3) and softmaxND."""
from __future__ import annotations

import numpy as np

from coreml_reference.neuralnetwork.layers.registry import (normalize_axis, register,
                                                            require_rank, shape_list)


@register("batchnorm")
def batchnorm(ctx, p, inputs):
    """Per channel (axis -3): gamma * (x - mean) / sqrt(var + eps) + beta."""
    x = inputs[0]
    require_rank(x, 3, ctx)
    c = int(p.channels)
    if x.shape[-3] != c:
        raise ctx.shape_error("input has {} channels on axis -3, the layer has {}".format(
            x.shape[-3], c))
    eps = p.epsilon or 1e-5
    if not p.computeMeanVar:
        scale, shift = _folded(ctx, p, c, eps)
        if x.shape[-1] * x.shape[-2] < SHORT_PLANES and x.flags.c_contiguous:
            scale, shift = _spread(ctx, scale, shift, x.shape[-3:])
        out = x * scale
        out += shift
        return out
    gamma = ctx.weights(p.gamma, (c,), "gamma")
    beta = ctx.weights(p.beta, (c,), "beta")
    # instance norm: statistics over H, W of each instance; else over all but C.
    axes = (-2, -1) if p.instanceNormalization else tuple(
        a for a in range(x.ndim) if a != x.ndim - 3)
    mean = x.mean(axis=axes, keepdims=True)
    var = np.square(x - mean).mean(axis=axes, keepdims=True)
    return gamma[:, None, None] * (x - mean) / np.sqrt(var + eps) + beta[:, None, None]


SHORT_PLANES = 64   # H * W under which a [C, 1, 1] operand is spread over the whole plane


def _spread(ctx, scale, shift, shape):
    """scale and shift repeated over [C, H, W], once per input shape: numpy runs a [C, 1, 1]
    operand as one inner loop per channel, which for PANNs' 3 x 2 planes is 960 loops of 6
    values; over full-size operands it is one loop (2.6x faster, the same products)."""
    return ctx.prepared("spread", shape, lambda: (
        np.ascontiguousarray(np.broadcast_to(scale, shape)),
        np.ascontiguousarray(np.broadcast_to(shift, shape))))


def _folded(ctx, p, c, eps):
    """One scale and shift per channel (what Core ML's kernels do too), in float32, shaped
    [C, 1, 1]; made once per loaded model, as its weights are decoded once."""
    folded = ctx.cache.get("folded")
    if folded is None:
        gamma = ctx.weights(p.gamma, (c,), "gamma")
        beta = ctx.weights(p.beta, (c,), "beta")
        mean = ctx.weights(p.mean, (c,), "mean")
        var = ctx.weights(p.variance, (c,), "variance")
        scale = gamma / np.sqrt(var + np.float32(eps))
        shift = beta - mean * scale
        folded = ctx.cache["folded"] = (scale[:, None, None], shift[:, None, None])
    return folded


@register("mvn")
def mvn(ctx, p, inputs):
    x = inputs[0]
    require_rank(x, 3, ctx)
    axes = (-3, -2, -1) if p.acrossChannels else (-2, -1)
    out = x - x.mean(axis=axes, keepdims=True)
    if p.normalizeVariance:
        eps = p.epsilon or 1e-6
        out = out / np.sqrt(np.square(out).mean(axis=axes, keepdims=True) + eps)
    return out


@register("layerNormalization")
def layer_normalization(ctx, p, inputs):
    x = inputs[0]
    shape = tuple(int(d) for d in p.normalizedShape)
    if not shape or x.shape[-len(shape):] != shape:
        raise ctx.shape_error("normalizedShape {} does not match the end of input shape {}".format(
            list(shape), shape_list(x.shape)))
    axes = tuple(range(-len(shape), 0))
    mean = x.mean(axis=axes, keepdims=True)
    var = np.square(x - mean).mean(axis=axes, keepdims=True)
    gamma = ctx.weights(p.gamma, shape, "gamma")
    beta = ctx.weights(p.beta, shape, "beta")
    return (x - mean) / np.sqrt(var + p.eps) * gamma + beta


@register("l2normalize")
def l2normalize(ctx, p, inputs):
    x = inputs[0]
    require_rank(x, 3, ctx)
    eps = p.epsilon or 1e-6
    return x / np.sqrt(np.square(x).sum(axis=(-3, -2, -1), keepdims=True) + eps)


@register("lrn")
def lrn(ctx, p, inputs):
    """Across-channel LRN over a localSize window centred on each channel."""
    x = inputs[0]
    require_rank(x, 3, ctx)
    size = int(p.localSize)
    k = p.k or 1.0
    sq = np.square(x)
    before, after = (size - 1) // 2, size // 2
    widths = [(0, 0)] * (x.ndim - 3) + [(before, after), (0, 0), (0, 0)]
    padded = np.pad(sq, widths)
    c = x.shape[-3]
    window = sum(padded[..., i:i + c, :, :] for i in range(size))
    return x / np.power(k + p.alpha / size * window, p.beta)


def _softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


@register("softmax")
def softmax(ctx, p, inputs):
    require_rank(inputs[0], 3, ctx)
    return _softmax(inputs[0], -3)


@register("softmaxND")
def softmax_nd(ctx, p, inputs):
    x = inputs[0]
    return _softmax(x, normalize_axis(p.axis, x.ndim, ctx))
