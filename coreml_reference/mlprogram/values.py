"""Decode MIL.proto types and values (immediate or in weight.bin) into numpy."""
from __future__ import annotations

import os

import numpy as np

from coreml_reference.errors import ModelFileError, UnsupportedError
from coreml_reference.mlprogram.blobs import BlobFile, unpack_subbyte

# MIL DataType enum value -> numpy dtype (numbers from MIL.proto).
NUMPY_DTYPES = {
    1: np.dtype(bool), 2: np.dtype(object),
    10: np.dtype(np.float16), 11: np.dtype(np.float32), 12: np.dtype(np.float64),
    21: np.dtype(np.int8), 22: np.dtype(np.int16), 23: np.dtype(np.int32), 24: np.dtype(np.int64),
    25: np.dtype(np.int8),      # int4, held unpacked
    31: np.dtype(np.uint8), 32: np.dtype(np.uint16), 33: np.dtype(np.uint32),
    34: np.dtype(np.uint64),
    35: np.dtype(np.uint8), 36: np.dtype(np.uint8), 37: np.dtype(np.uint8), 38: np.dtype(np.uint8),
    39: np.dtype(np.uint8),     # uint4/2/1/6/3, held unpacked
}
DTYPE_NAMES = {1: "bool", 2: "string", 10: "fp16", 11: "fp32", 12: "fp64", 13: "bf16",
               21: "int8", 22: "int16", 23: "int32", 24: "int64", 25: "int4", 31: "uint8",
               32: "uint16", 33: "uint32", 34: "uint64", 35: "uint4", 36: "uint2", 37: "uint1",
               38: "uint6", 39: "uint3", 40: "fp8e4m3fn", 41: "fp8e5m2"}
SUBBYTE_BITS = {25: (4, True), 35: (4, False), 36: (2, False), 37: (1, False), 38: (6, False),
                39: (3, False)}


def numpy_dtype(data_type, what="value"):
    if data_type not in NUMPY_DTYPES:
        raise UnsupportedError("data", DTYPE_NAMES.get(data_type, str(data_type)), what)
    return NUMPY_DTYPES[data_type]


def tensor_shape(value_type):
    """Declared shape of a tensor ValueType: ints, or None for unknown dimensions.

    Returns None when the type is not a tensor or its rank is unknown."""
    if value_type.WhichOneof("type") != "tensorType":
        return None
    t = value_type.tensorType
    if t.rank < 0:
        return None
    shape = []
    for dim in t.dimensions:
        if dim.WhichOneof("dimension") == "unknown" and dim.unknown.variadic:
            return None                           # any number of dimensions
        shape.append(dim.constant.size if dim.WhichOneof("dimension") == "constant" else None)
    return tuple(shape)


def tensor_dtype(value_type):
    """numpy dtype of a tensor ValueType, or None for lists / tuples / dicts / states."""
    if value_type.WhichOneof("type") != "tensorType":
        return None
    return numpy_dtype(value_type.tensorType.dataType)


class ValueDecoder:
    """Turns Value messages into numpy arrays; owns the weight files it opens."""

    def __init__(self, weights_dir, model_path):
        self.weights_dir = weights_dir
        self.model_path = model_path
        self.files = {}

    def decode(self, value, what="value"):
        kind = value.WhichOneof("value")
        if kind == "immediateValue":
            return self._immediate(value.immediateValue, value.type, what)
        if kind == "blobFileValue":
            return self._blob(value.blobFileValue, value.type, what)
        raise ModelFileError("{}: {} has no value".format(self.model_path or "model", what))

    def _immediate(self, imm, value_type, what):
        kind = imm.WhichOneof("value")
        if kind == "tensor":
            return decode_tensor(imm.tensor, value_type.tensorType, what)
        if kind in ("list", "tuple"):
            items = imm.tuple.values if kind == "tuple" else imm.list.values
            return [self.decode(v, what) for v in items]
        if kind == "dictionary":
            return {self.decode(e.key, what).item(): self.decode(e.value, what)
                    for e in imm.dictionary.values}
        raise ModelFileError("{}: {} is an empty immediate value".format(
            self.model_path or "model", what))

    def _blob(self, blob, value_type, what):
        path = self._blob_path(blob.fileName, what)
        if path not in self.files:
            self.files[path] = BlobFile(path)
        flat = self.files[path].read(blob.offset)
        shape = tensor_shape(value_type)
        data_type = value_type.tensorType.dataType
        if shape is None or None in shape:
            raise ModelFileError("{}: {} stored in {} has no fixed shape".format(
                self.model_path, what, path))
        count = int(np.prod(shape, dtype=np.int64))
        if isinstance(flat, tuple):          # packed sub-byte data
            _, (bits, signed), packed = flat
            flat = unpack_subbyte(packed, bits, signed, count)
        dtype = numpy_dtype(data_type, what)
        if flat.dtype.itemsize != dtype.itemsize:
            raise ModelFileError("{}: {} is declared {} but its blob in {} holds {}".format(
                self.model_path, what, DTYPE_NAMES.get(data_type), path, flat.dtype))
        if flat.size != count:
            raise ModelFileError("{}: {} needs {} values of shape {}, its blob at offset {} in "
                                 "{} holds {} (corrupt weights?)".format(
                                     self.model_path, what, count, list(shape), blob.offset,
                                     path, flat.size))
        return flat.view(dtype).reshape(shape)

    def _blob_path(self, file_name, what):
        prefix = "@model_path/"
        if self.weights_dir is None:
            raise ModelFileError("{} refers to {} but the model has no weights folder (pass "
                                 "the .mlpackage path, not a bare spec)".format(what, file_name))
        root = os.path.dirname(os.path.normpath(self.weights_dir))
        rel = file_name[len(prefix):] if file_name.startswith(prefix) else file_name
        path = os.path.join(root, rel)
        if not os.path.exists(path):
            raise ModelFileError("{}: weight file {} (for {}) is missing".format(
                self.model_path, path, what))
        return path


def decode_tensor(tensor, tensor_type, what="value"):
    """An immediate TensorValue as a numpy array of its declared dtype and shape."""
    data_type = tensor_type.dataType
    shape = tuple(d.constant.size for d in tensor_type.dimensions)
    kind = tensor.WhichOneof("value")
    if data_type == 2:                                  # strings
        flat = np.array([s for s in tensor.strings.values], dtype=object)
    elif kind == "bytes":
        # fp16 and 8-bit (and packed sub-byte) immediates are serialised as raw bytes.
        raw = tensor.bytes.values
        if data_type in SUBBYTE_BITS:
            bits, signed = SUBBYTE_BITS[data_type]
            flat = unpack_subbyte(np.frombuffer(raw, np.uint8), bits, signed,
                                  int(np.prod(shape, dtype=np.int64)))
        else:
            flat = np.frombuffer(raw, dtype=numpy_dtype(data_type, what).newbyteorder("<"))
    elif kind is None:
        flat = np.zeros(0)
    else:
        flat = np.asarray(list(getattr(tensor, kind).values))
    flat = flat.astype(numpy_dtype(data_type, what)) if data_type != 2 else flat
    count = int(np.prod(shape, dtype=np.int64))
    if flat.size != count:
        if flat.size == 1:                              # a splat: one value for all
            return np.full(shape, flat[0], dtype=flat.dtype)
        raise ModelFileError("{} holds {} values for shape {}".format(what, flat.size, list(shape)))
    if data_type == 2:
        flat = np.array([s for s in flat], dtype=object)
    return flat.reshape(shape)
