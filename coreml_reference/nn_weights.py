"""Decode a NeuralNetwork ``WeightParams`` into float32 values, whatever encoding it uses.

Encodings (NeuralNetwork.proto):
- ``floatValue``: float32; ``float16Value``: little-endian float16 bytes;
- ``rawValue`` + ``quantization``: 1- to 8-bit unsigned codes, packed most significant bit
  first (the first code fills the high bits of the first byte), then either
  ``linearQuantization`` (value = scale * code + bias; one scale / bias for the tensor or one
  per channel along the quantized axis) or ``lookupTableQuantization`` (value = table[code],
  2**bits entries);
- ``int8RawValue`` + ``linearQuantization``: signed 8-bit codes.

Kept outside the evaluator's packages (numpy only; Python 3.7 and numpy 1.19 import it) so
the route envs' tests can check it against their own coremltools' dequantization.
"""
from __future__ import annotations

import numpy as np


class WeightsError(ValueError):
    """The WeightParams cannot be decoded as stored; the message says why."""


def decode(params, shape=None, axis=0):
    """Float32 values of ``params`` (flat, row-major). ``shape`` is the layer's weight shape,
    needed for per-channel linear quantization along ``axis`` (0, or 1 for deconvolution)."""
    if len(params.floatValue):
        return np.asarray(params.floatValue, dtype=np.float32)
    if len(params.float16Value):
        return np.frombuffer(params.float16Value, dtype="<f2").astype(np.float32)
    if len(params.rawValue) or len(_int8(params)):
        return dequantize(params, shape, axis)
    return np.zeros(0, dtype=np.float32)


def dequantize(params, shape=None, axis=0):
    q = params.quantization
    kind = q.WhichOneof("QuantizationType")
    bits = int(q.numberOfBits)
    if kind is None:
        raise WeightsError("raw weight bytes without quantization parameters")
    if len(_int8(params)):
        if bits != 8 or kind != "linearQuantization":
            raise WeightsError("int8 weights need 8-bit linear quantization, found {}-bit {}".format(
                bits, kind))
        codes = np.frombuffer(params.int8RawValue, dtype=np.int8)
    else:
        if not 1 <= bits <= 8:
            raise WeightsError("{}-bit quantized weights (1 to 8 bits exist)".format(bits))
        codes = unpack_msb_first(np.frombuffer(params.rawValue, dtype=np.uint8), bits,
                                 _count(shape, len(params.rawValue), bits))
    if kind == "lookupTableQuantization":
        table = np.asarray(q.lookupTableQuantization.floatValue, dtype=np.float32)
        if table.size != 1 << bits:
            raise WeightsError("{}-bit look-up table holds {} entries, {} expected".format(
                bits, table.size, 1 << bits))
        return table[codes.astype(np.int64)]
    if kind != "linearQuantization":
        raise WeightsError("unknown quantization {!r}".format(kind))
    # float64 arithmetic, rounded once to float32, as coremltools dequantizes.
    scale = np.asarray(q.linearQuantization.scale, dtype=np.float64)
    bias = np.asarray(q.linearQuantization.bias, dtype=np.float64)
    values = codes.astype(np.float64) * _channelwise(scale, shape, axis, "scale")
    if bias.size:
        values = values + _channelwise(bias, shape, axis, "bias")
    return values.astype(np.float32)


def _int8(params):
    # int8RawValue came with spec version 5; older protos (coremltools 3.3) lack the field.
    return params.int8RawValue if "int8RawValue" in params.DESCRIPTOR.fields_by_name else b""


def _channelwise(params, shape, axis, what):
    """A scale or bias to apply to the flat values: one for the tensor, or one per channel
    along ``axis`` (expanded to every value of that channel)."""
    if params.size == 1:
        return params[0]
    if shape is None or len(shape) <= axis or int(shape[axis]) != params.size:
        raise WeightsError("{} {} values for weights of shape {} (one, or one per channel of "
                           "axis {}, expected)".format(params.size, what, list(shape or []), axis))
    shape = [int(d) for d in shape]
    along = [1] * len(shape)
    along[axis] = params.size
    return np.broadcast_to(params.reshape(along), shape).reshape(-1)


def _count(shape, nbytes, bits):
    if shape is not None:
        return int(np.prod([int(d) for d in shape])) if len(shape) else 1
    return nbytes * 8 // bits


def unpack_msb_first(packed, bits, count):
    """``count`` unsigned ``bits``-bit codes packed high bit first across bytes."""
    if bits == 8:
        codes = packed
    else:
        stream = np.unpackbits(packed)          # big bit order: most significant first
        if stream.size < count * bits:
            raise WeightsError("{} bytes hold fewer than {} codes of {} bits".format(
                packed.size, count, bits))
        groups = stream[:count * bits].reshape(count, bits).astype(np.uint16)
        codes = (groups << np.arange(bits - 1, -1, -1, dtype=np.uint16)).sum(axis=1)
    if codes.size < count:
        raise WeightsError("{} quantized codes stored, {} weights expected".format(codes.size, count))
    return codes[:count].astype(np.uint8)
