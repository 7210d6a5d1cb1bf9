"""Core ML's multi-array data types (FeatureTypes.proto ``ArrayFeatureType.ArrayDataType``)
as numpy dtypes: the one table, its numbers read from the protobuf enum."""
from __future__ import annotations

import numpy as np

from coreml_reference import proto

_ENUM = proto.module("FeatureTypes_pb2").ArrayFeatureType.ArrayDataType

# The types MLModel.predict converts inputs to and returns outputs in. INT8 (spec 9) is not
# among them: an array declared so is passed on as computed.
ARRAY_DTYPES = {_ENUM.Value(name): np.dtype(dtype) for name, dtype in (
    ("FLOAT32", np.float32), ("DOUBLE", np.float64), ("FLOAT16", np.float16),
    ("INT32", np.int32))}

# The enum's own names (FLOAT32, DOUBLE, ...), as a model's errors call the types.
ARRAY_TYPE_NAMES = {number: _ENUM.Name(number) for number in ARRAY_DTYPES}
