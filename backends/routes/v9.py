"""v9: torch.jit.trace -> coremltools 9 ct.convert -> ML Program (.mlpackage).

Hooks: TorchScript op name -> function ``fn(context, node)`` building MIL ops
(``register_torch_op(override=True)``), as for v4.
"""
from __future__ import annotations

import os

from backends.base import Backend
from backends.torch_common import register_hooks, tensor_types, trace, watch_frontend


class V9(Backend):
    name = "v9"
    env = "v9"
    python = "3.11"
    artifact = "model.mlpackage"
    summary = "torch.jit.trace -> coremltools 9 ct.convert (ML Program)"
    hook_kind = "TorchScript op -> MIL composite (register_torch_op)"

    def load_toolchain(self):
        import coremltools
        import torch
        return {"coremltools": coremltools.__version__, "torch": torch.__version__}

    def capture(self, job):
        return trace(job)

    def convert(self, job, stages):
        import coremltools as ct
        with stages("trace"):
            program = self.capture(job)
        with stages("convert"):
            register_hooks(job.hooks)
            mlmodel = ct.convert(program, inputs=tensor_types(ct, job),
                                 outputs=[ct.TensorType(name=n) for n in job.output_names],
                                 convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                                 compute_precision=ct.precision.FLOAT32)
        with stages("save"):
            mlmodel.save(os.path.join(job.out_dir, self.artifact))
        # fp32 weights and ops, like the NeuralNetwork routes: fp16 is then a runtime choice
        # (GPU / Neural Engine) that the bench measures, not baked into the file.
        return {"compute_precision": "fp32"}

    def watch_ops(self):
        return watch_frontend()

    def intermediates(self, job, path):
        from backends.intermediates import save_torchscript
        return save_torchscript(self.capture(job), job, path)


BACKEND = V9()
