"""Static facts of a converted model (from its spec) and of the PyTorch module it came from."""
from __future__ import annotations

import numpy as np

MACS_SOURCE = "PyTorch-side: forward hooks on Conv1d/Conv2d/Linear plus torch.matmul calls"


# --- from the Core ML spec -------------------------------------------------------------

def spec_facts(model_path):
    """-> {"parameters": {"count", "source"}, "weight_precision": "fp32" | "fp16" | ...}."""
    from coreml_reference import load
    spec = load(model_path).spec
    kind = spec.WhichOneof("Type")
    if kind == "mlProgram":
        counts = _program_consts(spec.mlProgram)
        source = "ML Program weights (float const and constexpr_* tensors)"
    else:
        counts = {}
        _weight_params(getattr(spec, kind), counts)
        source = "NeuralNetwork layer weights (WeightParams)"
    return {"parameters": {"count": int(sum(counts.values())), "source": source},
            "weight_precision": _precision(counts)}


def _precision(counts):
    kinds = sorted(k for k, n in counts.items() if n)
    return "+".join(kinds) if kinds else "no weights"


def _weight_params(message, counts):
    """Walk any protobuf message; count the elements of every WeightParams in it."""
    if type(message).__name__ == "WeightParams":
        if len(message.floatValue):
            counts["fp32"] = counts.get("fp32", 0) + len(message.floatValue)
        if len(message.float16Value):
            counts["fp16"] = counts.get("fp16", 0) + len(message.float16Value) // 2
        raw = len(message.rawValue) + len(message.int8RawValue)
        if raw:   # quantized weights: count bytes as 8-bit values
            counts["quantized"] = counts.get("quantized", 0) + raw
        return
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        for item in (value,) if hasattr(value, "ListFields") else value:   # one or repeated
            _weight_params(item, counts)


def _program_consts(program):
    from coreml_reference.proto import module
    from coreml_reference.mlprogram.program import function_block
    MIL_pb2 = module("MIL_pb2")
    names = {MIL_pb2.FLOAT32: "fp32", MIL_pb2.FLOAT16: "fp16", MIL_pb2.BFLOAT16: "bf16"}
    counts = {}
    for function in program.functions.values():
        block = function_block(function, "model")
        for op in block.operations:
            if op.type.startswith("constexpr_") and op.type != "constexpr_cast":
                # compressed weights (coremltools.optimize): counted under their encoding;
                # joint forms chain two ops, the last one (sparse_to_dense) holds the weight
                tensor = op.outputs[-1].type.tensorType
                n = int(np.prod([d.constant.size for d in tensor.dimensions])) if tensor.rank else 1
                key = op.type[len("constexpr_"):]
                counts[key] = counts.get(key, 0) + n
                continue
            if op.type != "const":
                continue
            tensor = op.outputs[0].type.tensorType
            if tensor.dataType not in names:
                continue   # int shapes, axes, pads: not weights
            n = int(np.prod([d.constant.size for d in tensor.dimensions])) if tensor.rank else 1
            key = names[tensor.dataType]
            counts[key] = counts.get(key, 0) + n
    return counts


# --- from a route's own artifact (ExecuTorch program, Core AI asset) ---------------------

CORE_AI_FLOATS = {"Float32": "fp32", "Float16": "fp16", "BFloat16": "bf16"}


def artifact_facts(model_path, record):
    """``spec_facts`` for any artifact: a Core ML model's spec; an ExecuTorch program's Core
    ML partitions (unpacked beside the .pte); a Core AI asset's stored float elements, as
    coreai-core summarized them in the conversion record (``storage_types``)."""
    import os
    kind = (record or {}).get("spec_type")
    if kind == "executorch":
        from backends.builds import partition_paths
        parts = partition_paths(os.path.dirname(os.path.abspath(model_path)))
        if not parts:
            raise FileNotFoundError("no unpacked Core ML partitions beside {}".format(model_path))
        facts = [spec_facts(p) for p in parts]
        outside = sum(((record.get("executorch") or {}).get("not_delegated") or {}).values())
        source = "ML Program weights of the {} Core ML partition(s)".format(len(parts))
        if outside:
            source += "; weights of the {} op(s) outside Core ML are not counted".format(outside)
        kinds = sorted(set(k for f in facts for k in f["weight_precision"].split("+")
                           if k != "no weights"))
        return {"parameters": {"count": int(sum(f["parameters"]["count"] for f in facts)),
                               "source": source},
                "weight_precision": "+".join(kinds) if kinds else "no weights"}
    if kind == "coreai":
        storage = record.get("storage_types")
        if not storage:
            raise KeyError("the conversion record has no storage_types (convert again)")
        counts = dict((CORE_AI_FLOATS[t], int(n)) for t, n in storage.items() if t in CORE_AI_FLOATS)
        return {"parameters": {"count": int(sum(counts.values())),
                               "source": "Core AI asset: stored float elements (coreai-core's "
                                         "storage summary, in the conversion record)"},
                "weight_precision": _precision(counts)}
    return spec_facts(model_path)


# --- from the PyTorch module ------------------------------------------------------------

def pytorch_facts(module, inputs):
    """-> parameter count (parameters + buffers, as the spec stores both) and MACs of one
    forward pass on ``inputs`` (a tuple of tensors)."""
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers() if b.is_floating_point())
    return {"parameters": {"count": int(params), "source": "PyTorch module parameters"},
            "parameters_and_buffers": {"count": int(params + buffers),
                                       "source": "PyTorch parameters + float buffers (BN statistics, "
                                                 "STFT/mel matrices)"},
            "macs": {"count": int(count_macs(module, inputs)), "source": MACS_SOURCE}}


def count_macs(module, inputs):
    import torch
    from torch import nn
    from torch.overrides import TorchFunctionMode

    total = [0]

    def conv_hook(layer, args, output):
        per_output = (layer.in_channels // layer.groups) * int(np.prod(layer.kernel_size))
        total[0] += output.numel() * per_output

    def linear_hook(layer, args, output):
        total[0] += output.numel() * layer.in_features

    matmuls = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm, torch.mm}

    class MatmulCounter(TorchFunctionMode):
        # matmul is a function, not a module: no hook can see it, a function mode can.
        def __torch_function__(self, func, types, args=(), kwargs=None):
            result = func(*args, **(kwargs or {}))
            if func in matmuls:
                total[0] += result.numel() * args[0].shape[-1]
            return result

    handles = []
    for layer in module.modules():
        if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
            handles.append(layer.register_forward_hook(conv_hook))
        elif isinstance(layer, nn.Linear):
            handles.append(layer.register_forward_hook(linear_hook))
    try:
        with torch.no_grad(), MatmulCounter():
            module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total[0]
