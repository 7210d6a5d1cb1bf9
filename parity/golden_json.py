"""Golden arrays as JSON ``{"shape": [...], "data": [...]}``, row-major, the layout the
XCTest reads into an ``MLMultiArray``.

Values are written as the shortest decimal that reads back to the same float32 (numpy's
float32 repr), so the JSON round-trips exactly and stays about half the size of float64
text. JSON has no inf/NaN: such arrays are refused.
"""
from __future__ import annotations

import json

import numpy as np


class NotWritable(ValueError):
    pass


def dumps(array):
    values = np.asarray(array)
    if values.dtype.kind != "f":
        raise NotWritable("holds {} values; the generated test feeds and reads Float32".format(values.dtype))
    values = values.astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise NotWritable("holds inf/NaN, which JSON cannot carry")
    data = ",".join(str(v) for v in values.reshape(-1))   # np.float32's str: shortest round-trip
    return '{{"shape": {}, "data": [{}]}}\n'.format(json.dumps(list(values.shape)), data)


def loads(text):
    doc = json.loads(text)
    return np.asarray(doc["data"], dtype=np.float32).reshape(doc["shape"])
