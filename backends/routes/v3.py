"""v3: torch.onnx.export -> onnx-coreml 1.3 -> coremltools 3.3 NeuralNetwork (iOS 13).

Hooks: ONNX op type -> onnx-coreml conversion function ``fn(builder, node, graph, err)``,
passed as ``custom_conversion_functions`` (replaces how every node of that type converts;
onnx-coreml also takes an ONNX node name as the key).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil

from backends.base import Backend, ConversionError, OpsSeen
from backends.shapes import flexible
from backends.sources import ONNX
from backends.variants import compress

OPSET = 9   # torch 1.4's default; the opset onnx-coreml 1.3 covers best


class V3(Backend):
    name = "v3"
    order = 10
    env = "v3"
    python = "3.7"
    artifact = "model.mlmodel"
    summary = "torch.onnx.export -> onnx-coreml 1.3 -> coremltools 3.3 (NeuralNetwork, iOS 13)"
    hook_kind = "ONNX op type -> onnx-coreml custom conversion function"
    variants = ("fp16w", "lin8", "lut4", "lut6")

    def accepts(self, source):
        return None   # every source: modules and archives through torch.onnx.export

    def load_toolchain(self):
        # onnx before torch: with torch first, onnx.shape_inference segfaults.
        import onnx
        import onnx_coreml  # noqa: F401 — imported before torch on purpose
        import coremltools
        import torch
        return {"onnx": onnx.__version__, "onnx-coreml": _dist_version("onnx-coreml"),
                "coremltools": coremltools.__version__, "torch": torch.__version__}

    def convert(self, job, stages):
        import onnx
        import onnx_coreml  # noqa: F401 — imported before torch on purpose
        import coremltools
        import torch

        onnx_path = os.path.join(job.out_dir, "model.onnx")
        fixed = {}
        if job.source is not None and job.source.kind == ONNX:
            with stages("load"):
                shutil.copyfile(job.source.path, onnx_path)
                onnx.checker.check_model(onnx.load(onnx_path))
                fixed = fix_input_shapes(onnx_path, job.inputs)
        else:
            with stages("export"):
                from backends.shapes import onnx_dynamic_axes
                torch.onnx.export(job.module, job.torch_inputs(), onnx_path,
                                  input_names=list(job.inputs),
                                  output_names=list(job.output_names), opset_version=OPSET,
                                  dynamic_axes=onnx_dynamic_axes(job) or None)
                onnx.checker.check_model(onnx.load(onnx_path))
        with stages("convert"):
            try:
                mlmodel = onnx_coreml.convert(onnx_path, minimum_ios_deployment_target="13",
                                              custom_conversion_functions=dict(job.hooks or {}))
            except Exception as e:
                raise ConversionError("convert", "{}: {}".format(type(e).__name__, our_advice(str(e)))) from e
            spec = renamed_outputs(mlmodel.get_spec(), job.output_names)
            facts = flexible_inputs(spec, job) if flexible(job) else {}
            zero = zero_dims(spec)
            if zero:
                error = ConversionError("convert", "the converted model declares a 0-sized "
                                        "dimension: {} (Core ML cannot run it; give every input's "
                                        "shape with --input / --inputs)".format("; ".join(
                                            "{} {!r} {}".format(z["feature"], z["name"], z["shape"])
                                            for z in zero)))
                error.zero_dims = zero     # for the record (the worker copies it when it knows)
                raise error
        if job.variant:
            with stages("compress"):
                spec = compress(job.variant, coremltools.models.MLModel(spec))
        with stages("save"):
            coremltools.utils.save_spec(spec, os.path.join(job.out_dir, self.artifact))
        extra = dict(facts, onnx_opset=opset(onnx_path), onnx_file="model.onnx", zero_dims=[])
        if fixed:
            extra["onnx_input_shapes_fixed"] = fixed
        return extra

    @contextlib.contextmanager
    def watch_ops(self):
        # onnx-coreml checks every node of its (already rewritten) graph before converting
        # any: count them there, so a failing conversion still lists them all.
        import onnx_coreml.converter as converter
        seen, original = OpsSeen(), converter._check_unsupported_ops

        def check(nodes, *args, **kwargs):
            for node in nodes:
                seen.counts[node.op_type] += 1
                if node.name:
                    seen.other_keys.add(node.name)
            return original(nodes, *args, **kwargs)

        converter._check_unsupported_ops = check
        try:
            yield seen
        finally:
            converter._check_unsupported_ops = original

    def intermediates(self, job, path):
        # onnx-coreml names blobs after ONNX values: the ONNX model is the reference.
        from backends.intermediates import save_onnx
        return save_onnx(os.path.join(job.out_dir, "model.onnx"),
                         os.path.splitext(path)[0] + ".onnx")


def fix_input_shapes(onnx_path, inputs):
    """Write the given inputs' shapes into the ONNX graph's inputs where the file leaves a
    dimension symbolic (``N``), unset or 0, so that onnx-coreml converts for those shapes
    (tf2onnx writes a symbolic batch; onnx-coreml 1.3 turns it into a 0-sized dimension).
    A fixed dimension that differs from the given shape is the user's mistake.
    Returns {input name: [dims as the file had them]} for each input changed."""
    import onnx
    from bad_input import BadInput
    model = onnx.load(onnx_path)
    initializers = set(t.name for t in model.graph.initializer)
    fixed, symbols = {}, {}
    for value in model.graph.input:
        if value.name in initializers or value.name not in inputs:
            continue
        shape = list(inputs[value.name].shape)
        dims = value.type.tensor_type.shape.dim
        if len(dims) != len(shape):
            raise BadInput("input {!r}: the ONNX file declares rank {}, the given input has "
                           "shape {}".format(value.name, len(dims), shape))
        before = [d.dim_param or d.dim_value for d in dims]
        for dim, size in zip(dims, shape):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                if dim.dim_value != size:
                    raise BadInput("input {!r}: the ONNX file declares shape {}, the given input "
                                   "has shape {}".format(value.name, before, shape))
                continue
            if dim.dim_param:
                symbols[dim.dim_param] = int(size)
            dim.Clear()
            dim.dim_value = int(size)
        if before != shape:
            fixed[value.name] = before
    if fixed:
        _bind_symbols(model, symbols)
        onnx.checker.check_model(model)
        onnx.save(model, onnx_path)
    return fixed


def _bind_symbols(model, symbols):
    """The same symbol elsewhere (outputs, value_info: tf2onnx writes ``N`` throughout) is the
    same size: onnx-coreml would otherwise turn it into 0 there too."""
    graph = model.graph
    for value in list(graph.output) + list(graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param and dim.dim_param in symbols:
                size = symbols[dim.dim_param]
                dim.Clear()
                dim.dim_value = size


def zero_dims(spec):
    """Inputs and outputs of a converted spec that declare a 0-sized dimension (a list of
    {feature, name, shape}); Core ML cannot run such a model."""
    found = []
    for feature, features in (("input", spec.description.input), ("output", spec.description.output)):
        for f in features:
            if f.type.WhichOneof("Type") != "multiArrayType":
                continue
            shape = [int(d) for d in f.type.multiArrayType.shape]
            if 0 in shape:
                found.append({"feature": feature, "name": f.name, "shape": shape})
    return found


def flexible_inputs(spec, job):
    """onnx-coreml 1.3 writes each input at the ONNX graph's example shape, whatever its
    dynamic axes: declare the flexibility on the spec with coremltools 3.3's
    flexible_shape_utils (N-d ranges / enumerations, Core ML 3). Whether every layer then
    computes at the other shapes is what verification checks. Returns the record's facts."""
    from coremltools.models.neural_network import flexible_shape_utils as fsu
    from backends.shapes import declared_texts
    for name, shape in flexible(job).items():
        feature = [f for f in spec.description.input if f.name == name][0]
        del feature.type.multiArrayType.shape[:]      # the default: the example's shape
        feature.type.multiArrayType.shape.extend(job.inputs[name].shape)
        if shape.kind == "range":
            fsu.set_multiarray_ndshape_range(
                spec, name, lower_bounds=[d if isinstance(d, int) else d[0] for d in shape.dims],
                upper_bounds=[d if isinstance(d, int) else d[1] for d in shape.dims])
        else:
            fsu.add_multiarray_ndshape_enumeration(spec, name, [tuple(s) for s in shape.enumerated()])
    return {"input_shapes": dict(declared_texts(spec)),
            "input_shapes_notes": dict((n, "onnx-coreml 1.3 converts one shape; the flexibility "
                                           "was declared after it with coremltools 3.3 "
                                           "flexible_shape_utils") for n in flexible(job))}


def opset(onnx_path):
    import onnx
    model = onnx.load(onnx_path)
    return max([o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] or [None])


def renamed_outputs(spec, names):
    """An ONNX file keeps its own output names unless --output renamed them."""
    import coremltools
    current = [o.name for o in spec.description.output]
    if len(current) != len(names):
        raise ValueError("the ONNX graph has {} outputs, --output names {}".format(
            len(current), len(names)))
    for old, new in zip(current, names):
        if old != new:
            coremltools.utils.rename_feature(spec, old, new)
    return spec


# onnx-coreml's own advice names options this tool does not have (a higher iOS target: we
# already use 13, its newest; custom layers: they would not run anywhere we can check).
ONNX_COREML_ADVICE = re.compile(r"\s*Please try converting.*", re.DOTALL)
ADVICE = (" (route v3 already targets iOS 13, the newest onnx-coreml 1.3 knows. Replace how this "
          "op converts with --hooks FILE (HOOKS = {'v3': {op type: function}}, see "
          "examples/hooks_pad.py); `coreml-routes diagnose --route v3 --model MODEL` names the "
          "smallest failing module)")


def our_advice(message):
    return ONNX_COREML_ADVICE.sub("", message).strip() + ADVICE


def _dist_version(name):
    import pkg_resources
    return pkg_resources.get_distribution(name).version


BACKEND = V3()
