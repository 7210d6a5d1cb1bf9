"""Static facts about a converted model, read from its spec with the env's own coremltools.

Works with coremltools 3.3 (Python 3.7) to 9: only the protobuf fields every version has.
"""
from __future__ import annotations

import os
from collections import Counter


def summarize(path):
    import coremltools
    spec = coremltools.utils.load_spec(path)
    kind = spec.WhichOneof("Type")
    facts = {
        "spec_type": kind,
        "spec_version": spec.specificationVersion,
        "file_bytes": path_bytes(path),
        "inputs": [feature(f) for f in spec.description.input],
        "outputs": [feature(f) for f in spec.description.output],
    }
    if kind == "mlProgram":
        ops = program_ops(spec.mlProgram)
        facts["op_types"] = dict(Counter(ops))
        facts["op_count"] = len(ops)
    else:
        layers = network_layers(spec)
        facts["layer_types"] = dict(Counter(layers))
        facts["layer_count"] = len(layers)
    return facts


def path_bytes(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(root, name))
                   for root, _, names in os.walk(path) for name in names)
    return os.path.getsize(path)


def feature(f):
    """name, type and shape of an input/output description."""
    kind = f.type.WhichOneof("Type")
    out = {"name": f.name, "type": kind}
    if kind == "multiArrayType":
        out["shape"] = [int(d) for d in f.type.multiArrayType.shape]
    return out


def network_layers(spec):
    kind = spec.WhichOneof("Type")
    network = getattr(spec, kind)
    return [layer.WhichOneof("layer") for layer in network.layers]


def program_ops(program):
    ops = []
    for function in program.functions.values():
        for block in function.block_specializations.values():
            ops.extend(_block_ops(block))
    return ops


def _block_ops(block):
    for op in block.operations:
        yield op.type
        for inner in op.blocks:
            for name in _block_ops(inner):
                yield name
