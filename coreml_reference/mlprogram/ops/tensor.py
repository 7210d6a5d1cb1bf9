"""Shape and indexing ops: reshape, squeeze, expand_dims, transpose, tile, concat, split,
stack, slice_by_index, slice_by_size, gather*, pad, fill, shape, range_1d, and friends."""
from __future__ import annotations

import numpy as np

from coreml_reference import kernels
from coreml_reference.mlprogram.registry import axes_of, ints, register, scalar


@register("reshape", exact=True)
def reshape(ctx, x, shape):
    x = np.asarray(x)
    target = ints(shape)
    # A 0 copies the input dimension at the same place counted from the right (iOS17; the
    # same as iOS15's rule when len(shape) == rank).
    offset = x.ndim - len(target)
    for i, d in enumerate(target):
        if d == 0:
            j = i + offset
            target[i] = x.shape[j] if 0 <= j < x.ndim else 1
    try:
        return x.reshape(target)
    except ValueError:
        raise ctx.shape_error("cannot reshape {} ({} elements) to {}".format(
            list(x.shape), x.size, ints(shape)))


@register("reshape_like", lists=("ref_tensors", "begins", "ends", "end_masks"))
def reshape_like(ctx, x, ref_tensors, begins, ends, end_masks):
    """x reshaped to the concatenated pieces ref_tensors[i].shape[begins[i]:ends[i]]."""
    shape = []
    for ref, b, e, to_end in zip(ref_tensors, begins, ends, end_masks):
        dims = np.shape(ref)
        shape += dims[int(scalar(b)):None if bool(scalar(to_end)) else int(scalar(e))]
    if int(np.prod(shape)) != np.size(x):
        raise ctx.shape_error("cannot reshape {} into {}".format(list(np.shape(x)), shape))
    return np.reshape(x, shape)


@register("flatten2d", exact=True)
def flatten2d(ctx, x, axis=1):
    x = np.asarray(x)
    axis = int(scalar(axis))
    axis = axis + x.ndim if axis < 0 else axis
    return x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)


@register("squeeze", exact=True)
def squeeze(ctx, x, axes=None):
    x = np.asarray(x)
    if axes is None:
        return np.squeeze(x)
    axes = axes_of(axes, x.ndim)
    if any(x.shape[a] != 1 for a in axes):
        raise ctx.shape_error("cannot squeeze axes {} of shape {}".format(axes, list(x.shape)))
    return np.squeeze(x, axis=tuple(axes))


@register("expand_dims", exact=True)
def expand_dims(ctx, x, axes):
    x = np.asarray(x)
    out_rank = x.ndim + len(ints(axes))
    return np.expand_dims(x, tuple(axes_of(axes, out_rank)))


@register("transpose", exact=True)
def transpose(ctx, x, perm):
    return np.transpose(x, ints(perm))


@register("tile", exact=True)
def tile(ctx, x, reps):
    reps = ints(reps)
    if len(reps) != np.ndim(x):
        raise ctx.shape_error("reps {} for input of rank {}".format(reps, np.ndim(x)))
    return np.tile(x, reps)


@register("concat", lists=("values",), exact=True)
def concat(ctx, values, axis, interleave=False):
    values = [np.asarray(v) for v in values]
    if all(v.ndim == 0 for v in values):
        # Scalars concatenate into a vector: MIL's type inference counts a rank-0 value as
        # length 1 (coremltools' index_put lowering writes begin / end this way).
        values = [v.reshape(1) for v in values]
    axis = axes_of(axis, values[0].ndim)[0]
    shapes = [list(v.shape) for v in values]
    def others(s):
        return s[:axis] + s[axis + 1:]
    if any(len(s) != len(shapes[0]) or others(s) != others(shapes[0]) for s in shapes):
        raise ctx.shape_error("cannot concatenate shapes {} on axis {}".format(shapes, axis))
    if bool(scalar(interleave)):
        # Take one slice of each input in turn: stack after the axis, then merge.
        stacked = np.stack(values, axis=axis + 1)
        shape = list(values[0].shape)
        shape[axis] *= len(values)
        return stacked.reshape(shape)
    return np.concatenate(values, axis=axis)


@register("stack", lists=("values",), exact=True)
def stack(ctx, values, axis):
    rank = np.ndim(values[0]) + 1
    return np.stack(values, axis=axes_of(axis, rank)[0])


@register("split", exact=True)
def split(ctx, x, axis, num_splits=None, split_sizes=None):
    x = np.asarray(x)
    axis = axes_of(axis, x.ndim)[0]
    if split_sizes is not None:
        sizes = ints(split_sizes)
    else:
        n = int(scalar(num_splits))
        if x.shape[axis] % n:
            # MIL: the last piece is smaller when the axis does not divide evenly.
            step = -(-x.shape[axis] // n)
            sizes = [step] * (n - 1) + [x.shape[axis] - step * (n - 1)]
        else:
            sizes = [x.shape[axis] // n] * n
    if sum(sizes) != x.shape[axis]:
        raise ctx.shape_error("split sizes {} do not add up to {}".format(sizes,
                                                                              x.shape[axis]))
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


@register("slice_by_index", exact=True)
def slice_by_index(ctx, x, begin, end, stride=None, begin_mask=None, end_mask=None,
                   squeeze_mask=None):
    x = np.asarray(x)
    return x[_slice_index(x.ndim, begin, end, stride, begin_mask, end_mask, squeeze_mask)]


@register("slice_update")
def slice_update(ctx, x, update, begin, end, stride=None, begin_mask=None, end_mask=None,
                 squeeze_mask=None):
    """x with the slice slice_by_index would read replaced by ``update``."""
    out = np.array(x, copy=True)
    index = _slice_index(out.ndim, begin, end, stride, begin_mask, end_mask, squeeze_mask)
    if out[index].shape != np.shape(update):
        raise ctx.shape_error("update has shape {}, the slice {}".format(
            list(np.shape(update)), list(out[index].shape)))
    out[index] = update
    return out


def _slice_index(n, begin, end, stride, begin_mask, end_mask, squeeze_mask):
    begin, end = ints(begin), ints(end)
    stride = ints(stride) or [1] * n
    begin_mask = _mask(begin_mask, n)
    end_mask = _mask(end_mask, n)
    squeeze_mask = _mask(squeeze_mask, n)
    index = []
    for i in range(n):
        if squeeze_mask[i]:
            index.append(begin[i])           # a single element; the axis disappears
            continue
        b = None if begin_mask[i] else begin[i]
        e = None if end_mask[i] else end[i]
        index.append(slice(b, e, stride[i]))
    return tuple(index)


def _mask(mask, n):
    return [bool(v) for v in np.asarray(mask).reshape(-1)] if mask is not None else [False] * n


@register("slice_by_size", exact=True)
def slice_by_size(ctx, x, begin, size):
    x = np.asarray(x)
    index = []
    for dim, b, s in zip(x.shape, ints(begin), ints(size)):
        b = b % dim if dim else 0
        e = dim if s == -1 else b + s
        if e > dim:
            raise ctx.shape_error("slice {}:{} out of range for dimension {}".format(b, e, dim))
        index.append(slice(b, e))
    return x[tuple(index)]


@register("gather", exact=True)
def gather(ctx, x, indices, axis=0, batch_dims=0, validate_indices=False):
    x = np.asarray(x)
    indices = np.asarray(indices).astype(np.int64)
    axis = axes_of(axis, x.ndim)[0]
    batch_dims = int(scalar(batch_dims))
    _check_indices(ctx, indices, x.shape[axis])
    if batch_dims == 0:
        return np.take(x, indices, axis=axis)
    # Each batch entry gathers from its own slice: loop over the (few) batch entries.
    lead = x.shape[:batch_dims]
    xs = x.reshape((-1,) + x.shape[batch_dims:])
    ids = indices.reshape((-1,) + indices.shape[batch_dims:])
    parts = [np.take(xs[b], ids[b], axis=axis - batch_dims) for b in range(xs.shape[0])]
    return np.stack(parts).reshape(lead + parts[0].shape)


def _check_indices(ctx, indices, size):
    if indices.size and (indices.min() < -size or indices.max() >= size):
        raise IndexError("indices in [{}, {}] out of range for a dimension of {}".format(
            indices.min(), indices.max(), size))


@register("gather_along_axis", exact=True)
def gather_along_axis(ctx, x, indices, axis=0, validate_indices=False):
    x = np.asarray(x)
    axis = axes_of(axis, x.ndim)[0]
    indices = np.asarray(indices).astype(np.int64)
    _check_indices(ctx, indices, x.shape[axis])
    return np.take_along_axis(x, np.where(indices < 0, indices + x.shape[axis], indices), axis)


@register("gather_nd")
def gather_nd(ctx, x, indices, batch_dims=0, validate_indices=False):
    x = np.asarray(x)
    indices = np.asarray(indices).astype(np.int64)
    batch_dims = int(scalar(batch_dims))
    if batch_dims:
        lead = x.shape[:batch_dims]
        xs = x.reshape((-1,) + x.shape[batch_dims:])
        ids = indices.reshape((-1,) + indices.shape[batch_dims:])
        parts = [xs[b][tuple(np.moveaxis(ids[b], -1, 0))] for b in range(xs.shape[0])]
        return np.stack(parts).reshape(lead + parts[0].shape)
    return x[tuple(np.moveaxis(indices, -1, 0))]


@register("pad", exact=True)
def pad(ctx, x, pad, mode="constant", constant_val=0.0):
    x = np.asarray(x)
    values = ints(pad)
    k = len(values) // 2
    if len(values) % 2 or k > x.ndim:
        raise ctx.shape_error("pad {} for input of rank {}".format(values, x.ndim))
    widths = [(0, 0)] * (x.ndim - k) + [(values[2 * i], values[2 * i + 1]) for i in range(k)]
    mode = str(scalar(mode))
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=scalar(constant_val))
    numpy_mode = {"reflect": "reflect", "replicate": "edge", "symmetric": "symmetric"}.get(mode)
    if numpy_mode is None:
        raise ValueError("unknown pad mode {!r}".format(mode))
    return np.pad(x, widths, mode=numpy_mode)


@register("fill")
def fill(ctx, shape, value=0.0):
    return np.full(ints(shape), scalar(value))


@register("fill_like")
def fill_like(ctx, ref_tensor, value=0.0):
    return np.full(np.shape(ref_tensor), scalar(value))


@register("shape")
def shape(ctx, x):
    return np.array(np.shape(x), dtype=np.int32)


@register("range_1d")
def range_1d(ctx, end, start, step):
    return np.arange(scalar(start), scalar(end), scalar(step))


@register("reverse", exact=True)
def reverse(ctx, x, axes=None):
    x = np.asarray(x)
    axes = tuple(axes_of(axes, x.ndim)) if axes is not None else None
    return np.flip(x, axis=axes)


@register("band_part")
def band_part(ctx, x, lower=-1, upper=-1):
    return kernels.band_part(x, int(scalar(lower)), int(scalar(upper)))


@register("cumsum")
def cumsum(ctx, x, axis=0, exclusive=False, reverse=False):
    x = np.asarray(x)
    return kernels.cumsum(x, axes_of(axis, x.ndim)[0], bool(scalar(exclusive)),
                          bool(scalar(reverse)))


@register("one_hot")
def one_hot(ctx, indices, one_hot_vector_size, axis=-1, on_value=1, off_value=0):
    indices = np.asarray(indices)
    on, off = scalar(on_value), scalar(off_value)
    return kernels.one_hot(indices, int(scalar(one_hot_vector_size)),
                           axes_of(axis, indices.ndim + 1)[0], on, off, np.result_type(on, off))


@register("non_zero")
def non_zero(ctx, x):
    return np.argwhere(np.asarray(x)).astype(np.int32)


@register("reverse_sequence")
def reverse_sequence(ctx, x, lengths, seq_axis=0, batch_axis=0):
    x = np.asarray(x)
    try:
        return kernels.reverse_sequence(x, lengths, axes_of(seq_axis, x.ndim)[0],
                                        axes_of(batch_axis, x.ndim)[0])
    except ValueError as e:
        raise ctx.shape_error(str(e)) from None


@register("space_to_batch")
def space_to_batch(ctx, x, block_shape, paddings):
    return kernels.space_to_batch(x, ints(block_shape), np.asarray(paddings).reshape(-1, 2))


@register("batch_to_space")
def batch_to_space(ctx, x, block_shape, crops):
    return kernels.batch_to_space(x, ints(block_shape), np.asarray(crops).reshape(-1, 2))


@register("argsort")
def argsort(ctx, x, axis=-1, ascending=False):
    x = np.asarray(x)
    axis = axes_of(axis, x.ndim)[0]
    keys = x if bool(scalar(ascending)) else -x
    return np.argsort(keys, axis=axis, kind="stable").astype(np.int32)


@register("topk")
def topk(ctx, x, k=1, axis=-1, ascending=False, sort=True, return_indices=True,
         output_indices_dtype="int32"):
    x = np.asarray(x)
    axis = axes_of(axis, x.ndim)[0]
    k = int(scalar(k))
    if k < 0:
        k = x.shape[axis]
    keys = x if bool(scalar(ascending)) else -x
    order = np.take(np.argsort(keys, axis=axis, kind="stable"), np.arange(k), axis=axis)
    values = np.take_along_axis(x, order, axis)
    if not bool(scalar(return_indices)):
        return values
    return values, order.astype(np.int32)


@register("space_to_depth", exact=True)
def space_to_depth(ctx, x, block_size):
    n, c, h, w = np.shape(x)
    b = int(scalar(block_size))
    y = np.asarray(x).reshape(n, c, h // b, b, w // b, b)
    return y.transpose(0, 3, 5, 1, 2, 4).reshape(n, c * b * b, h // b, w // b)


@register("depth_to_space", exact=True)
def depth_to_space(ctx, x, block_size):
    # DCR order (TF / ONNX default): channel = (bh * b + bw) * c_out + c.
    n, c, h, w = np.shape(x)
    b = int(scalar(block_size))
    y = np.asarray(x).reshape(n, b, b, c // (b * b), h, w)
    return y.transpose(0, 3, 4, 1, 5, 2).reshape(n, c // (b * b), h * b, w * b)


@register("pixel_shuffle", exact=True)
def pixel_shuffle(ctx, x, upscale_factor):
    # CRD order (PyTorch): channel = c * b * b + bh * b + bw.
    n, c, h, w = np.shape(x)
    b = int(scalar(upscale_factor))
    y = np.asarray(x).reshape(n, c // (b * b), b, b, h, w)
    return y.transpose(0, 1, 4, 2, 5, 3).reshape(n, c // (b * b), h * b, w * b)


@register("pixel_unshuffle")
def pixel_unshuffle(ctx, x, downscale_factor):
    # The inverse of pixel_shuffle: channel = c * b * b + bh * b + bw.
    n, c, h, w = np.shape(x)
    b = int(scalar(downscale_factor))
    y = np.asarray(x).reshape(n, c, h // b, b, w // b, b)
    return y.transpose(0, 1, 3, 5, 2, 4).reshape(n, c * b * b, h // b, w // b)


@register("sliding_windows")
def sliding_windows(ctx, x, axis, size, stride=1):
    x = np.asarray(x)
    axis = axes_of(axis, x.ndim)[0]
    size, stride = int(scalar(size)), int(scalar(stride))
    windows = np.lib.stride_tricks.sliding_window_view(x, size, axis=axis)
    windows = np.take(windows, np.arange(0, windows.shape[axis], stride), axis=axis)
    return np.moveaxis(windows, -1, axis + 1)


def _scatter(ctx, kernel, validate_indices, *args):
    """iOS15 scatter (no ``validate_indices``): negative indices count from the end. iOS17:
    indices must lie in [0, size); validate_indices=True makes a miss fail the prediction,
    False leaves it undefined: the evaluator drops that update."""
    if validate_indices is None:
        return kernel(*args)
    validate = bool(scalar(validate_indices))
    try:
        return kernel(*args, negative_wraps=False, skip_invalid=not validate)
    except kernels.IndexOutOfRange as e:
        raise ctx.runtime_check_failed("{} (validate_indices=True)".format(e)) from None


@register("scatter_along_axis")
def scatter_along_axis(ctx, data, indices, updates, axis=0, mode="add", validate_indices=None):
    axis = axes_of(axis, np.ndim(data))[0]
    return _scatter(ctx, kernels.scatter_along_axis, validate_indices, data, indices, updates,
                    axis, str(scalar(mode)))


@register("scatter")
def scatter(ctx, data, indices, updates, axis=0, mode="add", validate_indices=None):
    axis = axes_of(axis, np.ndim(data))[0]
    return _scatter(ctx, kernels.scatter, validate_indices, data, indices, updates, axis,
                    str(scalar(mode)))


@register("scatter_nd")
def scatter_nd(ctx, data, indices, updates, mode="add", validate_indices=None):
    return _scatter(ctx, kernels.scatter_nd, validate_indices, data, indices, updates,
                    str(scalar(mode)))
