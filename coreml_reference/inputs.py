"""Input arrays as ``MLModel.predict`` takes them, for both halves of the evaluator.

``MLModel.predict`` hands any real-valued numpy array (bool, int, uint, float of any width) to
Core ML as a multi-array, and Core ML converts it to the type the model declares: float
values given for an int32 input are truncated toward zero, int64 token ids given for an
int32 input are narrowed. Only what it cannot turn into numbers (strings, objects, complex)
is refused.
"""
from __future__ import annotations

import numpy as np

from coreml_reference.errors import InputError

NUMERIC_KINDS = "biuf"


def as_declared(model_name, input_name, value, want, want_name=None):
    """``value`` as a numpy array of dtype ``want``; InputError naming the input if the
    array is not numeric (``want_name`` is the model's own name for the type)."""
    try:
        array = np.asarray(value)
    except Exception as e:
        raise InputError("{}: input {!r} is not an array: {}".format(model_name, input_name, e))
    want = np.dtype(want)
    if want.kind in NUMERIC_KINDS and array.dtype.kind not in NUMERIC_KINDS:
        raise InputError("{}: input {!r} has dtype {}, the model takes {} (pass a numeric "
                         "array)".format(model_name, input_name, array.dtype,
                                         want_name or want.name))
    if want.kind not in NUMERIC_KINDS and array.dtype.kind not in "OUS":
        raise InputError("{}: input {!r} has dtype {}, the model takes {}".format(
            model_name, input_name, array.dtype, want_name or want.name))
    if array.dtype == want:
        return array
    with np.errstate(invalid="ignore", over="ignore"):
        return array.astype(want)
