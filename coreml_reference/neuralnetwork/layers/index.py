"""Indexing: gather, gatherAlongAxis, gatherND, scatter, scatterAlongAxis, scatterND, slice
(old), sliceStatic, sliceDynamic, sliceBySize, argMax, argMin, topK, oneHot, slidingWindows, and the
triangular / band parts. Indices arrive as float blobs."""
from __future__ import annotations

import numpy as np

from coreml_reference import kernels
from coreml_reference.neuralnetwork.layers.registry import (normalize_axis, register,
                                                            require_rank, shape_list)


def _indices(values, size, ctx):
    idx = np.asarray(values).astype(np.int64)
    if idx.size and (idx.min() < -size or idx.max() >= size):
        raise ctx.shape_error("index out of range for a dimension of size {}".format(size))
    return np.where(idx < 0, idx + size, idx)


@register("gather")
def gather(ctx, p, inputs):
    data, indices = inputs
    axis = normalize_axis(p.axis, data.ndim, ctx)
    return np.take(data, _indices(indices, data.shape[axis], ctx), axis=axis)


@register("gatherAlongAxis")
def gather_along_axis(ctx, p, inputs):
    data, indices = inputs
    axis = normalize_axis(p.axis, data.ndim, ctx)
    if indices.ndim != data.ndim:
        raise ctx.shape_error("indices {} must have the rank of data {}".format(
            shape_list(indices.shape), shape_list(data.shape)))
    return np.take_along_axis(data, _indices(indices, data.shape[axis], ctx), axis=axis)


@register("gatherND")
def gather_nd(ctx, p, inputs):
    data, indices = inputs
    k = indices.shape[-1]
    if k > data.ndim:
        raise ctx.shape_error("index depth {} exceeds data rank {}".format(k, data.ndim))
    idx = indices.astype(np.int64).reshape(-1, k)
    picked = data[tuple(np.where(idx[:, i] < 0, idx[:, i] + data.shape[i], idx[:, i]) for i in range(k))]
    return picked.reshape(indices.shape[:-1] + data.shape[k:])


@register("slice")
def slice_old(ctx, p, inputs):
    x = inputs[0]
    axis = {0: -3, 1: -2, 2: -1}[p.axis]
    require_rank(x, -axis, ctx)
    end = p.endIndex if p.endIndex != 0 else None      # builder writes -1 / size for "to end"
    selector = [slice(None)] * x.ndim
    selector[axis] = slice(p.startIndex, end, int(p.stride or 1))
    return x[tuple(selector)]


def _strided_slice(x, begin, end, strides, begin_mask, end_mask, squeeze_mask, ctx):
    # Extra trailing values are ignored: the builder fills unset parameters with 5 defaults
    # whatever the rank, and Core ML runs such layers.
    for name, values in (("beginIds", begin), ("endIds", end), ("strides", strides)):
        if len(values) < x.ndim:
            raise ctx.shape_error("{} has {} values for input rank {}".format(name, len(values), x.ndim))
    selector = []
    for i in range(x.ndim):
        if i < len(squeeze_mask) and squeeze_mask[i]:
            selector.append(int(begin[i]))
            continue
        step = int(strides[i]) or 1
        start = None if i < len(begin_mask) and begin_mask[i] else int(begin[i])
        stop = None if i < len(end_mask) and end_mask[i] else int(end[i])
        selector.append(slice(start, stop, step))
    out = x[tuple(selector)]
    return out if out.ndim else out.reshape(1)


@register("sliceStatic")
def slice_static(ctx, p, inputs):
    return _strided_slice(inputs[0], list(p.beginIds), list(p.endIds), list(p.strides),
                          list(p.beginMasks), list(p.endMasks), list(p.squeezeMasks), ctx)


@register("sliceDynamic")
def slice_dynamic(ctx, p, inputs):
    """Inputs 2..7 override beginIds, endIds, strides, beginMasks, endMasks, squeezeMasks."""
    x = inputs[0]
    dynamic = [[int(v) for v in t.reshape(-1)] for t in inputs[1:]]
    static = [None, list(p.endIds), list(p.strides), list(p.beginMasks), list(p.endMasks),
              list(p.squeezeMasks)]
    values = [dynamic[i] if i < len(dynamic) else static[i] for i in range(6)]
    begin, end, strides, begin_mask, end_mask, squeeze_mask = values
    return _strided_slice(x, begin, end, strides or [1] * x.ndim, begin_mask, end_mask,
                          squeeze_mask, ctx)


@register("sliceBySize")
def slice_by_size(ctx, p, inputs):
    x, begin = inputs
    axis = normalize_axis(p.axis, x.ndim, ctx)
    start = int(begin.reshape(-1)[0])
    selector = [slice(None)] * x.ndim
    selector[axis] = slice(start, start + int(p.size))
    return x[tuple(selector)]


def _arg(function, p, x, ctx):
    axis = normalize_axis(p.axis, x.ndim, ctx)
    out = function(x, axis=axis)
    if not p.removeDim or x.ndim == 1:
        out = np.expand_dims(out, axis)
    return out.astype(np.float32)


@register("argMax")
def arg_max(ctx, p, inputs):
    return _arg(np.argmax, p, inputs[0], ctx)


@register("argMin")
def arg_min(ctx, p, inputs):
    return _arg(np.argmin, p, inputs[0], ctx)


@register("topK")
def top_k(ctx, p, inputs):
    x = inputs[0]
    axis = normalize_axis(p.axis, x.ndim, ctx)
    k = int(inputs[1].reshape(-1)[0]) if len(inputs) > 1 else int(p.K)
    if not 0 < k <= x.shape[axis]:
        raise ctx.shape_error("K={} for a dimension of size {}".format(k, x.shape[axis]))
    keys = x if p.useBottomK else -x
    order = np.take(np.argsort(keys, axis=axis, kind="stable"), np.arange(k), axis=axis)
    return [np.take_along_axis(x, order, axis=axis), order.astype(np.float32)]


@register("oneHot")
def one_hot(ctx, p, inputs):
    indices = inputs[0]
    # A second input, when given, holds the vector size.
    depth = int(np.asarray(inputs[1]).reshape(-1)[0]) if len(inputs) > 1 else int(p.oneHotVectorSize)
    axis = normalize_axis(p.axis, indices.ndim + 1, ctx)
    return kernels.one_hot(indices, depth, axis, p.onValue, p.offValue, np.float32)


@register("slidingWindows")
def sliding_windows(ctx, p, inputs):
    x = inputs[0]
    axis = normalize_axis(p.axis, x.ndim, ctx)
    size, step = int(p.windowSize), int(p.step or 1)
    if size > x.shape[axis]:
        raise ctx.shape_error("window {} longer than axis of size {}".format(size, x.shape[axis]))
    view = np.lib.stride_tricks.sliding_window_view(x, size, axis=axis)   # window axis last
    view = np.take(view, np.arange(0, x.shape[axis] - size + 1, step), axis=axis)
    return np.moveaxis(view, -1, axis + 1)


# --- scatter and band parts: the shared kernels', with the proto's mode enum -----------------

SCATTER_MODES = {0: "update", 1: "add", 2: "sub", 3: "mul", 4: "div", 5: "max", 6: "min"}


def _scatter_mode(p, ctx):
    mode = SCATTER_MODES.get(p.mode)
    if mode is None:
        raise ctx.unsupported("scatter mode {}".format(p.mode))
    return mode


@register("scatter")
def scatter(ctx, p, inputs):
    data, indices, updates = inputs
    axis = normalize_axis(p.axis, data.ndim, ctx)
    return kernels.scatter(data, indices, updates, axis, _scatter_mode(p, ctx))


@register("scatterAlongAxis")
def scatter_along_axis(ctx, p, inputs):
    data, indices, updates = inputs
    axis = normalize_axis(p.axis, data.ndim, ctx)
    if indices.shape != updates.shape or indices.ndim != data.ndim:
        raise ctx.shape_error("indices {} and updates {} must share a shape of data's rank {}".format(
            shape_list(indices.shape), shape_list(updates.shape), data.ndim))
    return kernels.scatter_along_axis(data, indices, updates, axis, _scatter_mode(p, ctx))


@register("scatterND")
def scatter_nd(ctx, p, inputs):
    data, indices, updates = inputs
    return kernels.scatter_nd(data, indices, updates, _scatter_mode(p, ctx))


@register("lowerTriangular")
def lower_triangular(ctx, p, inputs):
    """Keep j - i <= k (k > 0: diagonals above the main one too)."""
    require_rank(inputs[0], 2, ctx)
    return np.tril(inputs[0], int(p.k))


@register("upperTriangular")
def upper_triangular(ctx, p, inputs):
    require_rank(inputs[0], 2, ctx)
    return np.triu(inputs[0], int(p.k))


@register("matrixBandPart")
def matrix_band_part(ctx, p, inputs):
    require_rank(inputs[0], 2, ctx)
    return kernels.band_part(inputs[0], int(p.numLower), int(p.numUpper))


@register("argSort")
def arg_sort(ctx, p, inputs):
    x = inputs[0]
    axis = normalize_axis(p.axis, x.ndim, ctx)
    return np.argsort(-x if p.descending else x, axis=axis, kind="stable").astype(np.float32)


@register("whereNonZero")
def where_non_zero(ctx, p, inputs):
    """[N, rank]: the coordinates of the N non-zero elements, in row-major order."""
    return np.argwhere(inputs[0] != 0).astype(np.float32)
