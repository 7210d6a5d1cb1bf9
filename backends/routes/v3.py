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
        if job.source is not None and job.source.kind == ONNX:
            with stages("load"):
                shutil.copyfile(job.source.path, onnx_path)
                onnx.checker.check_model(onnx.load(onnx_path))
        else:
            with stages("export"):
                torch.onnx.export(job.module, job.torch_inputs(), onnx_path,
                                  input_names=list(job.inputs),
                                  output_names=list(job.output_names), opset_version=OPSET)
                onnx.checker.check_model(onnx.load(onnx_path))
        with stages("convert"):
            try:
                mlmodel = onnx_coreml.convert(onnx_path, minimum_ios_deployment_target="13",
                                              custom_conversion_functions=dict(job.hooks or {}))
            except Exception as e:
                raise ConversionError("convert", "{}: {}".format(type(e).__name__, our_advice(str(e)))) from e
            spec = renamed_outputs(mlmodel.get_spec(), job.output_names)
        if job.variant:
            with stages("compress"):
                spec = compress(job.variant, coremltools.models.MLModel(spec))
        with stages("save"):
            coremltools.utils.save_spec(spec, os.path.join(job.out_dir, self.artifact))
        return {"onnx_opset": opset(onnx_path), "onnx_file": "model.onnx"}

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
