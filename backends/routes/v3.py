"""v3: torch.onnx.export -> onnx-coreml 1.3 -> coremltools 3.3 NeuralNetwork (iOS 13).

Hooks: ONNX op type -> onnx-coreml conversion function ``fn(builder, node, graph, err)``,
passed as ``custom_conversion_functions`` (replaces how every node of that type converts).
"""
from __future__ import annotations

import os

from backends.base import Backend

OPSET = 9   # torch 1.4's default; the opset onnx-coreml 1.3 covers best


class V3(Backend):
    name = "v3"
    env = "v3"
    python = "3.7"
    artifact = "model.mlmodel"
    summary = "torch.onnx.export -> onnx-coreml 1.3 -> coremltools 3.3 (NeuralNetwork, iOS 13)"
    hook_kind = "ONNX op type -> onnx-coreml custom conversion function"

    def load_toolchain(self):
        # onnx before torch: with torch first, onnx.shape_inference segfaults (GUIDE §1).
        import onnx
        import onnx_coreml
        import coremltools
        import torch
        return {"onnx": onnx.__version__, "onnx-coreml": _dist_version("onnx-coreml"),
                "coremltools": coremltools.__version__, "torch": torch.__version__}

    def convert(self, job, stages):
        import onnx
        import onnx_coreml
        import torch

        onnx_path = os.path.join(job.out_dir, "model.onnx")
        with stages("export"):
            torch.onnx.export(job.module, job.torch_inputs(), onnx_path,
                              input_names=list(job.inputs), output_names=list(job.output_names),
                              opset_version=OPSET)
            onnx.checker.check_model(onnx.load(onnx_path))
        with stages("convert"):
            mlmodel = onnx_coreml.convert(onnx_path, minimum_ios_deployment_target="13",
                                          custom_conversion_functions=dict(job.hooks or {}))
        with stages("save"):
            mlmodel.save(os.path.join(job.out_dir, self.artifact))
        return {"onnx_opset": OPSET, "onnx_file": "model.onnx"}


def _dist_version(name):
    import pkg_resources
    return pkg_resources.get_distribution(name).version


BACKEND = V3()
