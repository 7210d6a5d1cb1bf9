"""An ONNX file's inputs and golden outputs, from onnxruntime (there is no PyTorch model to
ask): the file's own runtime stands in for PyTorch as the reference."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from coreml_routes.errors import UserError

_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16",
              "tensor(int32)": "int32", "tensor(int64)": "int64"}


def _session(path):
    try:
        import onnxruntime
        return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 — corrupt file, unknown op, opset ...
        raise UserError("cannot read ONNX file {}: {}".format(path, str(e).strip().splitlines()[-1]))


def declared_specs(path):
    """[(name, shape, dtype)] of the file's inputs, which must have fixed shapes."""
    specs = []
    for i in _session(path).get_inputs():
        if not all(isinstance(d, int) and d > 0 for d in i.shape):
            raise UserError("ONNX input {!r} has no fixed shape ({}): give --input {}:SHAPE".format(
                i.name, i.shape, i.name))
        specs.append((i.name, tuple(i.shape), _ORT_TYPES.get(i.type, "float32")))
    return specs


def golden(path, arrays):
    """(inputs, outputs) as OrderedDicts in the graph's order: onnxruntime on ``arrays``."""
    session = _session(path)
    declared = session.get_inputs()
    names = [i.name for i in declared]
    if sorted(arrays) != sorted(names):
        raise UserError("the ONNX file's inputs are {}; the inputs given are {}".format(
            ", ".join(names), ", ".join(arrays)))
    inputs = OrderedDict((n, arrays[n]) for n in names)
    try:
        values = session.run(None, dict(inputs))
    except Exception as e:  # noqa: BLE001 — wrong shape or dtype for this graph
        raise UserError("onnxruntime cannot run {} on these inputs: {}".format(
            path, str(e).strip().splitlines()[-1]))
    outputs = OrderedDict((o.name, np.asarray(v)) for o, v in zip(session.get_outputs(), values))
    return inputs, outputs
