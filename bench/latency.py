"""Latency baselines measured on this host: PyTorch eager, onnxruntime, reference evaluator."""
from __future__ import annotations

import os

from bench.stats import time_calls


def pytorch_cpu(module, inputs, repeat, warmup):
    import torch
    tensors = tuple(torch.from_numpy(a) for a in inputs.values())
    with torch.no_grad():
        block = time_calls(lambda: module(*tensors), repeat, warmup)
    block.update(runtime="torch {} eager".format(torch.__version__), threads=torch.get_num_threads())
    return block


def onnxruntime_cpu(onnx_path, inputs, repeat, warmup, golden=None):
    """Latency of the v3 route's ONNX file; with ``golden``, also its accuracy, which shows
    whether a v3 error comes from the export or from onnx-coreml."""
    import onnxruntime as ort
    if not os.path.isfile(onnx_path):
        raise FileNotFoundError("no {}".format(onnx_path))
    options = ort.SessionOptions()
    options.log_severity_level = 3   # unused-initializer warnings of old exports are noise
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    feed = {i.name: inputs[i.name] for i in session.get_inputs()}
    block = time_calls(lambda: session.run(None, feed), repeat, warmup)
    block.update(runtime="onnxruntime {} CPUExecutionProvider".format(ort.__version__))
    if golden is not None:
        from bench.accuracy import compare
        names = [o.name for o in session.get_outputs()]
        block["accuracy"] = compare(dict(zip(names, session.run(None, feed))), golden)
    return block


def reference_evaluator(model_path, inputs, repeat, warmup):
    import coreml_reference
    # Parse and decode weights once, as a runtime loads a model once: time the evaluation.
    loaded = coreml_reference.load(model_path)
    block = time_calls(lambda: coreml_reference.predict(loaded, inputs, precision="fp32"),
                       repeat, warmup)
    block.update(runtime="coreml_reference (numpy) fp32")
    return block
