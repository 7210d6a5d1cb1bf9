"""innerProduct, batchedMatmul, embedding, embeddingND."""
from __future__ import annotations

import numpy as np

from coreml_reference import blas
from coreml_reference.neuralnetwork.layers.registry import broadcast_shape, register, shape_list


@register("innerProduct")
def inner_product(ctx, p, inputs):
    """W [C_out, C_in]; how each input rank folds into a matrix follows the proto's table."""
    x = inputs[0]
    c_in, c_out = int(p.inputChannels), int(p.outputChannels)
    shape = x.shape
    if x.ndim in (1, 2, 3):
        rows, features, out_shape = x.reshape(-1, shape[-1]), shape[-1], shape[:-1] + (c_out,)
    elif x.ndim == 4:
        rows, features, out_shape = x.reshape(shape[0], -1), int(np.prod(shape[1:])), (shape[0], c_out, 1, 1)
    elif x.ndim == 5:
        rows = x.reshape(shape[0] * shape[1], -1)
        features, out_shape = int(np.prod(shape[2:])), (shape[0], shape[1], c_out, 1, 1)
    else:
        raise ctx.shape_error("input must have rank 1 to 5, got shape {}".format(shape_list(shape)))
    if features != c_in:
        raise ctx.shape_error("input shape {} gives {} features, inputChannels is {}".format(
            shape_list(shape), features, c_in))
    if p.int8DynamicQuantize:
        rows = dynamic_int8(rows)
    weights = ctx.weights(p.weights, (c_out, c_in))
    out = blas.matmul(rows, weights.T)
    if p.hasBias:
        out = out + ctx.weights(p.bias, (c_out,), "bias")
    return out.reshape(out_shape)


@register("batchedMatmul")
def batched_matmul(ctx, p, inputs):
    if len(inputs) == 1:
        return _matmul_weights(p, inputs[0], ctx)
    a, b = inputs
    if p.transposeA and a.ndim >= 2:
        a = np.swapaxes(a, -1, -2)
    if p.transposeB and b.ndim >= 2:
        b = np.swapaxes(b, -1, -2)
    a = a.reshape(1, -1) if a.ndim == 1 else a        # (D) -> (1, D)
    b = b.reshape(-1, 1) if b.ndim == 1 else b        # (D) -> (D, 1)
    if a.shape[-1] != b.shape[-2]:
        raise ctx.shape_error("cannot multiply matrices {} and {}".format(
            shape_list(a.shape), shape_list(b.shape)))
    broadcast_shape([a.shape[:-2], b.shape[:-2]], ctx)
    return blas.matmul(a, b)


def _matmul_weights(p, x, ctx):
    """One input: x [..., X1] times the layer's [X1, X2] matrix (stored column-major)."""
    x1, x2 = int(p.weightMatrixFirstDimension), int(p.weightMatrixSecondDimension)
    if x.shape[-1] != x1:
        raise ctx.shape_error("input's last dimension is {}, the weight matrix is {}x{}".format(
            x.shape[-1], x1, x2))
    if p.int8DynamicQuantize:
        x = dynamic_int8(x)
    weights = ctx.weights(p.weights, (x2, x1)).T     # column-major [X1, X2] == row-major [X2, X1]
    out = blas.matmul(x.reshape(-1, x1), weights)
    if p.hasBias:
        out = out + ctx.weights(p.bias, (x2,), "bias")
    return out.reshape(x.shape[:-1] + (x2,))


def dynamic_int8(x):
    """``int8DynamicQuantize``: the input is quantized at run time to int8 codes, so that the
    product runs on the layer's int8 weights. Assumed here: one symmetric scale for the whole
    tensor, max |x| / 127 (the proto names the scheme, not the granularity). Returned
    dequantized: the product of the codes times both scales equals this float product."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return x
    scale = peak / 127.0
    return (np.clip(np.round(x / scale), -127, 127) * scale).astype(x.dtype)


@register("embedding")
def embedding(ctx, p, inputs):
    """Indices [..., 1, 1, 1] -> vectors [..., C_out, 1, 1]; W [C_out, inputDim]."""
    x = inputs[0]
    if x.ndim not in (4, 5) or x.shape[-3:] != (1, 1, 1):
        raise ctx.shape_error("input must be [x1, 1, 1, 1] or [x1, x2, 1, 1, 1], got {}".format(
            shape_list(x.shape)))
    weights = ctx.weights(p.weights, (int(p.outputChannels), int(p.inputDim)))
    out = weights.T[_indices(x.reshape(-1), int(p.inputDim), ctx)]
    if p.hasBias:
        out = out + ctx.weights(p.bias, (int(p.outputChannels),), "bias")
    return out.reshape(x.shape[:-3] + (int(p.outputChannels), 1, 1))


@register("embeddingND")
def embedding_nd(ctx, p, inputs):
    """Indices [..., 1] -> [..., embeddingSize]; W [embeddingSize, vocabSize]."""
    x = inputs[0]
    if x.ndim < 2 or x.shape[-1] != 1:
        raise ctx.shape_error("input's last dimension must be 1, got shape {}".format(shape_list(x.shape)))
    size, vocab = int(p.embeddingSize), int(p.vocabSize)
    weights = ctx.weights(p.weights, (size, vocab))
    out = weights.T[_indices(x.reshape(-1), vocab, ctx)]
    if p.hasBias:
        out = out + ctx.weights(p.bias, (size,), "bias")
    return out.reshape(x.shape[:-1] + (size,))


def _indices(values, limit, ctx):
    idx = values.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= limit):
        raise ctx.shape_error("index out of range [0, {})".format(limit))
    return idx
