"""Where an et conversion departs from PyTorch: the first divergent Core ML partition, then
the op inside it. For ``coreml-routes diagnose --route et``; runs in the et env.

    report = compare_with_torch(module, {"x": array}, ["y"])
    report["first_divergent"]   # {"partition": 0, "op": {"node": "aten_relu_default", ...}}

How: the module is lowered as the route lowers it (same export, partitioner, compile specs
and hooks) and its Core ML partitions unpacked from the program's bytes as the route unpacks
them. The lowered graph is then run by torch, each delegate call by the partition's own
edge program (``LoweredBackendModule.original_module``) node by node, which gives PyTorch's
value of every partition input, output and intermediate. Each partition is then evaluated
alone by coreml_reference on PyTorch's inputs to it (so an error upstream cannot leak in),
its outputs held to ``coreml_reference.metrics``' tolerance for the precision the partition
is typed in. Inside the first partition that fails, every MIL value named after an FX node
(coremltools names ops after the nodes they convert; fp16 programs add ``_cast_fp16``) is
compared in graph order; the first outside tolerance is the divergent op. A value the MIL
program holds in another layout (same size, other shape) is listed as not compared.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections import OrderedDict

FP16_SUFFIX = "_cast_fp16"


def compare_with_torch(module, inputs, output_names, hooks=None, variant=None, precision="fp32"):
    """{"partitions": [{"partition", "precision", "outputs": [...], "within_tolerance",
    "ops": [...], "not_compared": [node names]}], "first_divergent": {"partition", "op"} or
    None}. ``precision``: how
    coreml_reference evaluates each partition (fp32 = as typed; fp16 = GPU / NE emulation)."""
    import coreml_reference
    from backends.base import Job, Untimed
    from backends.routes.et import BACKEND, partition_precision, save_partitions

    inputs = OrderedDict(inputs)
    with tempfile.TemporaryDirectory(prefix="et-diagnose-") as tmp, _restored_registry(hooks):
        job = Job(module, inputs, list(output_names), tmp, hooks)
        job.variant = variant
        edge = BACKEND.lower(job, Untimed())
        program = edge.exported_program()
        paths = [os.path.join(tmp, p) for p in save_partitions(edge.to_executorch().buffer, tmp)]
        calls = _torch_partition_values(program, job.torch_inputs())
        if len(calls) != len(paths):
            raise RuntimeError("{} delegate calls in the lowered graph, {} Core ML partitions "
                               "unpacked".format(len(calls), len(paths)))
        report = {"partitions": [], "first_divergent": None}
        for index, (call, path) in enumerate(zip(calls, paths)):
            typed = partition_precision(path)
            tolerance = "fp16" if "fp16" in (typed, precision) or typed == "mixed" else "fp32"
            entry = _compare_partition(coreml_reference, index, path, call, precision, tolerance)
            entry["precision"] = typed
            report["partitions"].append(entry)
            if report["first_divergent"] is None and not entry["within_tolerance"]:
                first = next((op for op in entry["ops"] if not op["within_tolerance"]), None)
                report["first_divergent"] = {"partition": index, "op": first}
        return report


def _compare_partition(coreml_reference, index, path, call, precision, tolerance):
    from coreml_reference import metrics
    model = coreml_reference.load(path)
    description = model.spec.description
    names_in = [f.name for f in description.input]
    feeds = dict((name, value) for name, value in zip(names_in, call["inputs"]))
    traced = {}
    outputs = coreml_reference.predict(model, feeds, precision=precision,
                                       trace=lambda name, kind, value, layer=None:
                                       traced.__setitem__(name, value))
    compared = []
    for name, expected in zip([f.name for f in description.output], call["outputs"]):
        compared.append(_figures(name, outputs[name], expected, tolerance, metrics))
    ops, unmatched = [], []
    for node_name, expected in call["intermediates"].items():
        value = traced.get(node_name + FP16_SUFFIX, traced.get(node_name))
        if value is None or expected.dtype.kind != "f":
            continue
        if not _same_layout(value, expected):      # the MIL op holds it in another layout
            unmatched.append(node_name)
            continue
        ops.append(_figures(node_name, value, expected, tolerance, metrics,
                            target=call["targets"][node_name]))
    return {"partition": index, "file": os.path.basename(path), "tolerance": tolerance,
            "outputs": compared, "ops": ops, "not_compared": unmatched,
            "within_tolerance": all(o["within_tolerance"] for o in compared)}


def _same_layout(actual, expected):
    """Same shape, or the same but for unit axes (Core ML may add or drop them)."""
    import numpy as np
    shape = tuple(np.shape(actual))
    return shape == expected.shape or tuple(d for d in shape if d != 1) == tuple(
        d for d in expected.shape if d != 1)


def _figures(name, actual, expected, tolerance, metrics, target=None):
    import numpy as np
    actual = np.asarray(actual, dtype=np.float64)
    if actual.shape != expected.shape and actual.size == expected.size:
        actual = actual.reshape(expected.shape)
    found = {"node": name, "shape": list(expected.shape),
             "snr_db": metrics.snr_db(actual, expected),
             "max_abs_error": metrics.max_abs_error(actual, expected),
             "within_tolerance": bool(metrics.within_tolerance(actual, expected, tolerance))}
    if target is not None:
        found["target"] = target
    return found


def _torch_partition_values(program, args):
    """Run the lowered graph by torch; for each delegate call in graph order:
    {"inputs": [arrays], "outputs": [arrays], "intermediates": {node: array}, "targets"}."""
    import torch
    import torch.fx

    calls = []

    class Lowered(torch.fx.Interpreter):
        def call_function(self, target, call_args, kwargs):
            if getattr(target, "__name__", "") == "executorch_call_delegate":
                lowered, partition_args = call_args[0], call_args[1:]
                values, outputs = _run_recording(lowered.original_module.module(), partition_args)
                calls.append({"inputs": [_numpy(a) for a in partition_args],
                              "outputs": [_numpy(o) for o in outputs],
                              "intermediates": OrderedDict((k, _numpy(v)) for k, v, _ in values),
                              "targets": dict((k, t) for k, _, t in values)})
                return tuple(outputs)
            return torch.fx.Interpreter.call_function(self, target, call_args, kwargs)

    graph_module = program.module()
    with torch.no_grad():
        Lowered(graph_module).run(*args)
    return calls


def _run_recording(graph_module, args):
    """Outputs of one partition's edge program and [(node name, value, target)] of every
    call_function node producing a tensor, in graph order."""
    import torch
    import torch.fx

    seen = []

    class Recording(torch.fx.Interpreter):
        def run_node(self, node):
            value = torch.fx.Interpreter.run_node(self, node)
            if node.op == "call_function" and isinstance(value, torch.Tensor):
                seen.append((node.name, value, getattr(node.target, "__name__", str(node.target))))
            return value

    with torch.no_grad():
        result = Recording(graph_module).run(*args)
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    return seen, outputs


def _numpy(value):
    import numpy as np
    import torch
    if isinstance(value, torch.Tensor):
        return value.detach().contiguous().numpy()
    return np.asarray(value)


@contextlib.contextmanager
def _restored_registry(hooks):
    """Hooks replace coremltools' converters process-wide: put the originals back after."""
    if not hooks:
        yield
        return
    from coremltools.converters.mil.frontend.torch.torch_op_registry import _TORCH_OPS_REGISTRY
    mapping = _TORCH_OPS_REGISTRY.name_to_func_mapping
    saved = dict((name, mapping.get(name)) for name in hooks)
    try:
        yield
    finally:
        for name, fn in saved.items():
            if fn is None:
                mapping.pop(name, None)
            else:
                mapping[name] = fn
