"""Layout layers: transpose, permute (rank 5), expandDims, squeeze, reshape (old, rank 5),
reshapeStatic / Like / Dynamic, rankPreservingReshape, flatten (old), flattenTo2D,
concat (old) / concatND, split (old) / splitND, tile, stack, reverse, reverseSeq,
sequenceRepeat, reorganizeData, broadcastTo*, copy."""
from __future__ import annotations

import numpy as np

from coreml_reference import kernels
from coreml_reference.neuralnetwork.layers.registry import (broadcast_shape, normalize_axis,
                                                            register, require_rank, shape_list)


@register("transpose")
def transpose(ctx, p, inputs):
    x = inputs[0]
    axes = [int(a) for a in p.axes]
    if sorted(axes) != list(range(x.ndim)):
        raise ctx.shape_error("axes {} are not a permutation for input shape {}".format(
            axes, shape_list(x.shape)))
    return np.transpose(x, axes)


@register("permute")
def permute(ctx, p, inputs):
    """Rank 5 [Seq, B, C, H, W]: permutes (Seq, C, H, W) and keeps B at axis 1."""
    x = inputs[0]
    if x.ndim != 5:
        raise ctx.shape_error("input must have rank 5 [Seq, B, C, H, W], got shape {}".format(
            shape_list(x.shape)))
    order = [int(a) for a in p.axis] or [0, 1, 2, 3]
    if sorted(order) != [0, 1, 2, 3]:
        raise ctx.shape_error("axis {} is not a permutation of [0, 1, 2, 3]".format(order))
    blob_axis = [0, 2, 3, 4]            # Seq, C, H, W positions in the blob
    picked = [blob_axis[a] for a in order]
    return np.transpose(x, [picked[0], 1] + picked[1:])


@register("expandDims")
def expand_dims(ctx, p, inputs):
    x = inputs[0]
    rank = x.ndim + len(p.axes)
    axes = sorted(normalize_axis(int(a), rank, ctx) for a in p.axes)
    if len(set(axes)) != len(axes):
        raise ctx.shape_error("repeated axes {}".format(list(p.axes)))
    return x.reshape(_insert_ones(x.shape, axes))


def _insert_ones(shape, axes):
    out, source = [], iter(shape)
    for position in range(len(shape) + len(axes)):
        out.append(1 if position in axes else next(source))
    return tuple(out)


@register("squeeze")
def squeeze(ctx, p, inputs):
    x = inputs[0]
    if p.squeezeAll:
        shape = tuple(d for d in x.shape if d != 1)
    else:
        axes = {normalize_axis(int(a), x.ndim, ctx) for a in p.axes}
        bad = [a for a in sorted(axes) if x.shape[a] != 1]
        if bad:
            raise ctx.shape_error("cannot squeeze axis {} of shape {}: size is not 1".format(
                bad[0], shape_list(x.shape)))
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    return x.reshape(shape or (1,))          # rank 1 stays rank 1


def _reshaped(x, shape, ctx):
    shape = [int(d) for d in shape]
    known = int(np.prod([d for d in shape if d != -1])) if shape else 1
    if shape.count(-1) > 1 or (-1 in shape and (known == 0 or x.size % known)) or \
            (-1 not in shape and known != x.size):
        raise ctx.shape_error("cannot reshape {} ({} values) to {}".format(
            shape_list(x.shape), x.size, shape))
    return x.reshape(shape)


@register("reshapeStatic")
def reshape_static(ctx, p, inputs):
    return _reshaped(inputs[0], p.targetShape, ctx)


@register("reshapeLike")
def reshape_like(ctx, p, inputs):
    return _reshaped(inputs[0], inputs[1].shape, ctx)


@register("reshapeDynamic")
def reshape_dynamic(ctx, p, inputs):
    return _reshaped(inputs[0], inputs[1].reshape(-1).astype(np.int64), ctx)


@register("rankPreservingReshape")
def rank_preserving_reshape(ctx, p, inputs):
    x = inputs[0]
    target = [int(d) for d in p.targetShape]
    if len(target) != x.ndim:
        raise ctx.shape_error("targetShape {} must have the input's rank {}".format(target, x.ndim))
    target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]   # 0 keeps the size
    return _reshaped(x, target, ctx)


@register("reshape")
def reshape(ctx, p, inputs):
    """Old rank-5 reshape; CHANNEL_LAST flattens and refills in [H, W, C] order."""
    x = inputs[0]
    if x.ndim != 5:
        raise ctx.shape_error("input must have rank 5, got shape {}".format(shape_list(x.shape)))
    target = [int(d) for d in p.targetShape]
    if len(target) == 3:
        target = [x.shape[0]] + target
    if len(target) != 4:
        raise ctx.shape_error("targetShape must have 3 or 4 values, got {}".format(list(p.targetShape)))
    seq, c, h, w = target
    if p.mode == 1:     # CHANNEL_LAST
        flat = np.transpose(x, (0, 1, 3, 4, 2)).reshape(-1)
        y = _reshaped(flat, [seq, 1, h, w, c], ctx)
        return np.transpose(y, (0, 1, 4, 2, 3))
    return _reshaped(x, [seq, 1, c, h, w], ctx)


@register("flatten")
def flatten(ctx, p, inputs):
    x = inputs[0]
    require_rank(x, 3, ctx)
    if p.mode == 1:     # CHANNEL_LAST: [..., H, W, C] order
        x = np.moveaxis(x, -3, -1)
    return x.reshape(x.shape[:-3] + (-1, 1, 1))


@register("flattenTo2D")
def flatten_to_2d(ctx, p, inputs):
    x = inputs[0]
    axis = p.axis + x.ndim if p.axis < 0 else p.axis
    if not 0 <= axis <= x.ndim:
        raise ctx.shape_error("axis {} out of range for rank {}".format(p.axis, x.ndim))
    return x.reshape(int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))


def _concat(arrays, axis, ctx):
    ranks = {a.ndim for a in arrays}
    if len(ranks) != 1:
        raise ctx.shape_error("inputs have different ranks: {}".format([shape_list(a.shape) for a in arrays]))
    axis = normalize_axis(axis, arrays[0].ndim, ctx)
    rest = {a.shape[:axis] + a.shape[axis + 1:] for a in arrays}
    if len(rest) != 1:
        raise ctx.shape_error("cannot concatenate {} on axis {}".format(
            [shape_list(a.shape) for a in arrays], axis))
    return np.concatenate(arrays, axis=axis)


@register("concat")
def concat(ctx, p, inputs):
    for x in inputs:
        require_rank(x, 5 if p.sequenceConcat else 3, ctx)
    return _concat(inputs, -5 if p.sequenceConcat else -3, ctx)


@register("concatND")
def concat_nd(ctx, p, inputs):
    if p.interleave:
        shapes = {x.shape for x in inputs}
        if len(shapes) != 1:
            raise ctx.shape_error("interleave needs equal shapes, got {}".format(
                [shape_list(x.shape) for x in inputs]))
        axis = normalize_axis(p.axis, inputs[0].ndim, ctx)
        stacked = np.stack(inputs, axis=axis + 1)
        shape = list(inputs[0].shape)
        shape[axis] *= len(inputs)
        return stacked.reshape(shape)
    return _concat(inputs, p.axis, ctx)


@register("split")
def split(ctx, p, inputs):
    x = inputs[0]
    require_rank(x, 3, ctx)
    n = ctx.n_outputs
    if x.shape[-3] % n:
        raise ctx.shape_error("cannot split {} channels into {} equal parts".format(x.shape[-3], n))
    return np.split(x, n, axis=-3)


@register("splitND")
def split_nd(ctx, p, inputs):
    x = inputs[0]
    axis = normalize_axis(p.axis, x.ndim, ctx)
    if len(p.splitSizes):
        sizes = [int(s) for s in p.splitSizes]
        if sum(sizes) != x.shape[axis]:
            raise ctx.shape_error("splitSizes {} do not sum to {}".format(sizes, x.shape[axis]))
        return np.split(x, np.cumsum(sizes)[:-1], axis=axis)
    n = int(p.numSplits) or ctx.n_outputs
    if n > x.shape[axis]:
        raise ctx.shape_error("cannot split size {} into {} parts".format(x.shape[axis], n))
    # Not divisible: the first (size % n) parts are one longer (numpy's array_split).
    return np.array_split(x, n, axis=axis)


@register("tile")
def tile(ctx, p, inputs):
    x = inputs[0]
    reps = ([int(r) for r in inputs[1].reshape(-1)] if len(inputs) > 1 else [int(r) for r in p.reps])
    if not 1 <= len(reps) <= x.ndim:
        raise ctx.shape_error("reps {} must have 1 to {} values".format(reps, x.ndim))
    return np.tile(x, [1] * (x.ndim - len(reps)) + reps)


@register("stack")
def stack(ctx, p, inputs):
    if len({x.shape for x in inputs}) != 1:
        raise ctx.shape_error("cannot stack {}".format([shape_list(x.shape) for x in inputs]))
    return np.stack(inputs, axis=normalize_axis(p.axis, inputs[0].ndim + 1, ctx))


@register("reverse")
def reverse(ctx, p, inputs):
    x = inputs[0]
    flags = list(p.reverseDim)
    if len(flags) != x.ndim:
        raise ctx.shape_error("reverseDim has {} entries for rank {}".format(len(flags), x.ndim))
    axes = tuple(i for i, f in enumerate(flags) if f)
    return np.flip(x, axis=axes) if axes else x


@register("reverseSeq")
def reverse_seq(ctx, p, inputs):
    x, lengths = inputs
    try:
        return kernels.reverse_sequence(x, lengths, normalize_axis(p.sequenceAxis, x.ndim, ctx),
                                        normalize_axis(p.batchAxis, x.ndim, ctx))
    except ValueError as e:
        raise ctx.shape_error(str(e)) from None


@register("sequenceRepeat")
def sequence_repeat(ctx, p, inputs):
    x = inputs[0]
    require_rank(x, 5, ctx)
    return np.concatenate([x] * int(p.nRepetitions or 1), axis=-5)


@register("reorganizeData")
def reorganize_data(ctx, p, inputs):
    x = inputs[0]
    require_rank(x, 3, ctx)
    b = int(p.blockSize)
    lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
    n = int(np.prod(lead)) if lead else 1
    if p.mode == 0:        # SPACE_TO_DEPTH
        if h % b or w % b:
            raise ctx.shape_error("blockSize {} must divide H and W of {}".format(b, shape_list(x.shape)))
        y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
        return y.reshape(lead + (c * b * b, h // b, w // b))
    if c % (b * b):
        raise ctx.shape_error("blockSize^2 {} must divide C {}".format(b * b, c))
    if p.mode == 1:        # DEPTH_TO_SPACE: channel index = (bh * b + bw) * C_out + c
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:                  # PIXEL_SHUFFLE: channel index = c * b * b + bh * b + bw
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(lead + (c // (b * b), h * b, w * b))


def _broadcast_to(x, shape, ctx):
    shape = tuple(int(d) for d in shape)
    if broadcast_shape([x.shape, shape], ctx) != shape:
        raise ctx.shape_error("cannot broadcast {} to {}".format(shape_list(x.shape), list(shape)))
    return np.broadcast_to(x, shape).copy()


@register("broadcastToStatic")
def broadcast_to_static(ctx, p, inputs):
    return _broadcast_to(inputs[0], p.targetShape, ctx)


@register("broadcastToLike")
def broadcast_to_like(ctx, p, inputs):
    return _broadcast_to(inputs[0], inputs[1].shape, ctx)


@register("broadcastToDynamic")
def broadcast_to_dynamic(ctx, p, inputs):
    return _broadcast_to(inputs[0], inputs[1].reshape(-1).astype(np.int64), ctx)


@register("copy")
def copy(ctx, p, inputs):
    return inputs[0].copy()
