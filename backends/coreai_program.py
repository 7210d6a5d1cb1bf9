"""Core AI assets (``.aimodel``) in the coreai route's env: static facts, and Apple's Linux
interpreter run on them.

An ``.aimodel`` is a folder: ``main.mlirb`` (the program, MLIR bytecode in the ``coreai``
dialect), ``main.hash``, ``metadata.json``. Facts come from two readers, both Apple's:
the asset summary of coreai-core (its function signatures; the types it stores and, after
its own expansion of decomposable ops, computes in) and the MLIR program itself (its ops as
written, e.g. ``conv2d``, ``decomposable.broadcasting_add``, and the float types they
compute: ``compute_precision``). The summary's own op distribution also counts the ops
that decomposable ops expand into: recorded apart as ``runtime_op_types``.

Running: off macOS, ``AIModelAsset.executable(specialization_options=None)`` lowers the
program for coreai-core's interpreter and runs it as typed (fp32 ops in fp32, fp16 ops in
fp16). Specialization for CPU / GPU / Neural Engine exists only on macOS 27+.
Everything here imports coreai lazily: the module is imported by the route's metadata.
"""
from __future__ import annotations

import os
import re
from collections import Counter, OrderedDict

def summary(path):
    """coreai-core's AIModelAssetSummary of the asset at ``path`` (with statistics)."""
    from coreai.authoring import AIModelAsset
    return AIModelAsset.load(str(path)).summary(include_statistics=True)


def program_ops(path):
    """(op names, float types computed) of the program's graphs as written: names with the
    ``coreai.`` prefix dropped, walking nested regions (the ``coreai.output`` terminator is
    not an op of the model); float element types of every non-constant op's results, e.g.
    {"f16", "f32"} for an fp16 program whose batch norms coreai-torch keeps in fp32."""
    from coreai.authoring import AIModelAsset
    module = AIModelAsset.load(str(path)).program._module._mlir_module  # noqa: SLF001
    names, floats = [], set()

    def walk(operations):
        for op in operations:
            name = op.operation.name
            if name not in ("coreai.graph", "coreai.output", "builtin.module"):
                names.append(name[len("coreai."):] if name.startswith("coreai.") else name)
                if name != "coreai.constant":
                    for result in op.operation.results:
                        found = _ELEMENT.search(str(result.type))
                        if found:
                            floats.add(found.group(1))
            for region in op.operation.regions:
                for block in region.blocks:
                    walk(block.operations)
    walk(module.body.operations)
    return names, floats


_ELEMENT = re.compile(r"[<x](bf16|f16|f32|f64)>$")
_MLIR_FLOATS = {"f32": "fp32", "f16": "fp16", "bf16": "bf16", "f64": "fp64"}


def parse_signature(text):
    """``'NDArray (Float32, 1 × 3 × 8 × 8)'`` -> ("Float32", [1, 3, 8, 8]); a dimension that is
    not a number (a flexible one) stays a string."""
    inner = text[text.index("(") + 1:text.rindex(")")] if "(" in text else text
    dtype, _, dims = inner.partition(",")
    shape = []
    for part in dims.replace("\u00d7", "x").split("x"):
        part = part.strip()
        if part:
            shape.append(int(part) if part.isdigit() else part)
    return dtype.strip(), shape


def precision_of(float_types):
    """fp32 / fp16 / mixed from the MLIR float types (f32, f16...) the program's ops compute."""
    words = sorted(set(_MLIR_FLOATS[t] for t in float_types))
    if len(words) == 1:
        return words[0]
    return "mixed" if words else None


def facts(path):
    """Static facts for conversion.json (see the module docstring)."""
    from backends.inspect_spec import path_bytes
    info = summary(path)
    ops, floats = program_ops(path)
    signature = OrderedDict()
    for kind, read in (("inputs", info.function_inputs), ("outputs", info.function_outputs),
                       ("states", info.function_states)):
        features = []
        for name, text in read("main"):
            dtype, shape = parse_signature(text)
            features.append({"name": name, "type": dtype, "shape": shape})
        signature[kind] = features
    storage = OrderedDict((t, int(n)) for t, n in info.storage_types)
    out = {
        "spec_type": "coreai",
        "file_bytes": path_bytes(path),
        "functions": list(info.function_names),
        "op_types": dict(Counter(ops)),
        "op_count": len(ops),
        "runtime_op_types": dict((name, int(n)) for name, n in info.operation_distribution),
        # coreai-core's summary: types after its own expansion of decomposable ops (it
        # lists Float32 for softmax on f16 tensors, which the program types f16).
        "compute_types": list(info.compute_types),
        "storage_types": dict(storage),
        "program_float_types": sorted(floats),
        "program_precision": precision_of(floats),
    }
    out.update(signature)
    if not out["states"]:
        del out["states"]
    return out


# --- running ---------------------------------------------------------------------------------

def run(path, inputs, logger=None):
    """{output name: array}: the asset's ``main`` run by coreai-core on this host (the
    interpreter off macOS). Inputs are cast to the dtypes the function declares (as a Core ML
    runtime converts to a model's feature types); states, if any, start at zero."""
    import asyncio
    return asyncio.run(_run(path, inputs, logger))


async def _run(path, inputs, logger):
    import numpy as np
    from coreai.authoring import AIModelAsset
    from coreai.runtime import NDArray
    asset = AIModelAsset.load(str(path))
    async with asset.executable(specialization_options=None) as model:
        function = (model.load_function("main") if logger is None
                    else model.load_function("main", intermediate_logger=logger))
        desc = function.desc
        missing = [n for n in desc.input_names if n not in inputs]
        if missing:
            raise KeyError("the program's input {!r} was not given (given: {})".format(
                missing[0], ", ".join(inputs) or "none"))
        given = {}
        for name in desc.input_names:
            dtype = np.dtype(desc.input_descriptor(name).dtype)
            given[name] = NDArray(np.ascontiguousarray(np.asarray(inputs[name]).astype(dtype)))
        # State buffers the runtime allocates are not zeroed on Linux: allocate them here.
        state = {}
        for name in desc.state_names:
            d = desc.state_descriptor(name)
            state[name] = NDArray(np.zeros([int(s) for s in d.shape], np.dtype(d.dtype)))
        result = await function(inputs=given, state=state)
        return OrderedDict((name, np.array(result[name].numpy())) for name in desc.output_names)


def run_steps(path, calls):
    """[{output name: array}] for successive calls of ``main`` with one state, zeroed first
    (``state=`` on each call: Core AI updates it in place)."""
    import asyncio
    return asyncio.run(_run_steps(path, calls))


async def _run_steps(path, calls):
    import numpy as np
    from coreai.authoring import AIModelAsset
    from coreai.runtime import NDArray
    asset = AIModelAsset.load(str(path))
    async with asset.executable(specialization_options=None) as model:
        function = model.load_function("main")
        desc = function.desc
        state = {}
        for name in desc.state_names:
            d = desc.state_descriptor(name)
            state[name] = NDArray(np.zeros([int(s) for s in d.shape], np.dtype(d.dtype)))
        results = []
        for inputs in calls:
            given = {}
            for name in desc.input_names:
                dtype = np.dtype(desc.input_descriptor(name).dtype)
                given[name] = NDArray(np.ascontiguousarray(np.asarray(inputs[name]).astype(dtype)))
            result = await function(inputs=given, state=state)
            results.append(OrderedDict((n, np.array(result[n].numpy())) for n in desc.output_names))
        return results


def asset_exists(path):
    return os.path.isdir(path) and os.path.exists(os.path.join(path, "main.mlirb"))
