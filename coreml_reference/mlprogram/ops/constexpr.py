"""Compressed weights: the ``constexpr_*`` ops that coremltools.optimize writes.

Each turns constant inputs into a dense constant (the loop computes it once per plan).
Same op names serve two opsets, told apart by their inputs:
- iOS16: ``constexpr_affine_dequantize``, ``constexpr_lut_to_dense`` (packed uint8 indices
  + ``shape``), ``constexpr_sparse_to_dense`` (packed uint8 bit mask + ``shape``),
  ``constexpr_cast``;
- iOS18: ``constexpr_blockwise_shift_scale``, ``constexpr_lut_to_dense`` (typed sub-byte
  indices, per-block and vector LUTs), ``constexpr_sparse_to_dense`` (a uint1 mask of the
  output's shape), ``constexpr_lut_to_sparse``, ``constexpr_sparse_blockwise_shift_scale``.
Packed iOS16 data is read from the lowest bit of each byte up (MIL's order); typed sub-byte
tensors (uint1 ... uint6, int4) arrive unpacked from ``values`` / ``blobs``.

Values are computed in float32 and take the op's declared output type afterwards.
"""
from __future__ import annotations

import numpy as np

from coreml_reference.mlprogram.blobs import unpack_subbyte
from coreml_reference.mlprogram.registry import register, scalar

# MIL dtype names of constexpr_cast's output_dtype -> numpy
CAST_DTYPES = {"fp32": np.float32, "fp16": np.float16}


def _shape_of(shape):
    return tuple(int(d) for d in np.asarray(shape).reshape(-1))


def _along_axis(param, rank, axis):
    """A scalar or a vector along ``axis``, shaped to broadcast against a rank-``rank`` tensor."""
    param = np.asarray(param)
    if param.size == 1:
        return param.reshape(())
    shape = [1] * rank
    shape[axis] = param.size
    return param.reshape(shape)


def _per_block(param, shape):
    """Repeat a per-block parameter (same rank as the data) up to the data's ``shape``."""
    param = np.asarray(param)
    if param.ndim != len(shape):
        raise ValueError("scale / offset rank {} differs from the data's rank {}".format(
            param.ndim, len(shape)))
    for axis, (size, blocks) in enumerate(zip(shape, param.shape)):
        if size % blocks:
            raise ValueError("{} blocks do not divide axis {} of size {}".format(blocks, axis, size))
        if blocks != size:
            param = np.repeat(param, size // blocks, axis=axis)
    return param


# --- iOS16 -------------------------------------------------------------------------------------

@register("constexpr_affine_dequantize")
def affine_dequantize(ctx, quantized_data, zero_point, scale, axis):
    q = np.asarray(quantized_data)
    axis = int(scalar(axis)) % max(q.ndim, 1)
    zero = _along_axis(zero_point, q.ndim, axis).astype(np.float32)
    return _along_axis(scale, q.ndim, axis).astype(np.float32) * (q.astype(np.float32) - zero)


@register("constexpr_cast")
def constexpr_cast(ctx, source_val, output_dtype):
    name = str(scalar(output_dtype))
    if name not in CAST_DTYPES:
        raise ValueError("output_dtype {!r} (fp16 or fp32 expected)".format(name))
    return np.asarray(source_val).astype(CAST_DTYPES[name])


# --- both opsets, told apart by their inputs ---------------------------------------------------

@register("constexpr_lut_to_dense")
def lut_to_dense(ctx, indices, lut, shape=None, vector_axis=None):
    if shape is not None:                       # iOS16: one LUT, indices packed in bytes
        lut = np.asarray(lut).reshape(-1)
        bits = int(np.log2(lut.size))
        if lut.size != 1 << bits:
            raise ValueError("LUT of {} entries (a power of two expected)".format(lut.size))
        out_shape = _shape_of(shape)
        count = int(np.prod(out_shape, dtype=np.int64))
        codes = unpack_subbyte(np.asarray(indices, dtype=np.uint8), bits, False, count)
        return lut[codes.astype(np.int64)].reshape(out_shape)
    return _lut_blocks(np.asarray(indices), np.asarray(lut), vector_axis)


def _lut_blocks(indices, lut, vector_axis):
    """iOS18: LUT of shape [blocks per axis..., palette, vector]; each index picks a vector
    from its block's palette, laid out along ``vector_axis``."""
    rank = indices.ndim
    if lut.ndim != rank + 2:
        raise ValueError("LUT rank {} for indices of rank {} (rank + 2 expected)".format(
            lut.ndim, rank))
    picks = []
    for axis, (size, blocks) in enumerate(zip(indices.shape, lut.shape[:rank])):
        if size % blocks:
            raise ValueError("{} LUTs do not divide axis {} of size {}".format(blocks, axis, size))
        along = [1] * rank
        along[axis] = size
        picks.append((np.arange(size) // (size // blocks)).reshape(along))
    vectors = lut[tuple(picks) + (indices.astype(np.int64),)]     # indices.shape + [vector]
    size = lut.shape[-1]
    if size == 1:
        return vectors[..., 0]
    if vector_axis is None:
        raise ValueError("LUT vectors of {} values need vector_axis".format(size))
    axis = int(scalar(vector_axis)) % rank
    out_shape = list(indices.shape)
    out_shape[axis] *= size
    return np.moveaxis(vectors, -1, axis + 1).reshape(out_shape)


@register("constexpr_sparse_to_dense")
def sparse_to_dense(ctx, nonzero_data, mask, shape=None):
    if shape is not None:                       # iOS16: mask bits packed in bytes
        out_shape = _shape_of(shape)
        count = int(np.prod(out_shape, dtype=np.int64))
        mask = unpack_subbyte(np.asarray(mask, dtype=np.uint8), 1, False, count).reshape(out_shape)
    return _scatter(np.asarray(nonzero_data), np.asarray(mask))


def _scatter(nonzero_data, mask):
    where = mask != 0
    if int(where.sum()) != nonzero_data.size:
        raise ValueError("mask has {} set bits for {} non-zero values".format(
            int(where.sum()), nonzero_data.size))
    dense = np.zeros(mask.shape, dtype=nonzero_data.dtype)
    dense[where] = nonzero_data.reshape(-1)
    return dense


# --- iOS18 -------------------------------------------------------------------------------------

@register("constexpr_blockwise_shift_scale")
def blockwise_shift_scale(ctx, data, scale, offset=None):
    data = np.asarray(data).astype(np.float32)
    if offset is not None:
        data = data - _per_block(offset, data.shape).astype(np.float32)
    return _per_block(scale, data.shape).astype(np.float32) * data


@register("constexpr_lut_to_sparse")
def lut_to_sparse(ctx, indices_mask, indices_nonzero_data, lut, vector_axis=None):
    """-> (mask, non-zero values): the sparse layout of a palettized sparse tensor."""
    mask = np.asarray(indices_mask)
    dense = _lut_blocks(_scatter(np.asarray(indices_nonzero_data), mask), np.asarray(lut),
                        vector_axis)
    if dense.shape != mask.shape:              # vectors widen the mask along vector_axis
        axis = int(scalar(vector_axis)) % mask.ndim
        mask = np.repeat(mask, dense.shape[axis] // mask.shape[axis], axis=axis)
    return mask, dense[mask != 0]


@register("constexpr_sparse_blockwise_shift_scale")
def sparse_blockwise_shift_scale(ctx, data_mask, nonzero_data, scale, offset=None):
    """-> (mask, non-zero values) of a sparse tensor whose non-zeros are quantized."""
    mask = np.asarray(data_mask)
    dense = blockwise_shift_scale(ctx, _scatter(np.asarray(nonzero_data), mask), scale, offset)
    return mask, dense[mask != 0]
