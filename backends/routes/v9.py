"""v9: torch.jit.trace -> coremltools 9 ct.convert -> ML Program (.mlpackage).

The default artifact is what ``ct.convert`` gives users: an fp16-typed ML Program (inputs
and outputs cast at the edges). Variant ``fp32`` converts with
``compute_precision=FLOAT32``; the compression variants compress the default program with
``coremltools.optimize.coreml`` (see ``backends.variants``).

Hooks: TorchScript op name -> function ``fn(context, node)`` building MIL ops
(``register_torch_op(override=True)``), as for v4.
"""
from __future__ import annotations

import os

from backends.base import Backend
from backends.torch_common import register_hooks, tensor_types, trace, watch_frontend
from backends.variants import PRECISION_VARIANTS, compress


class V9(Backend):
    name = "v9"
    order = 30
    env = "v9"
    python = "3.11"
    artifact = "model.mlpackage"
    summary = "torch.jit.trace -> coremltools 9 ct.convert (ML Program, fp16 by default)"
    hook_kind = "TorchScript op -> MIL composite (register_torch_op)"
    variants = ("fp32", "lin8", "lut4", "lut6", "prune50")

    def load_toolchain(self):
        import coremltools
        import torch
        return {"coremltools": coremltools.__version__, "torch": torch.__version__}

    def capture(self, job):
        return trace(job)

    def convert(self, job, stages):
        import coremltools as ct
        precision = "fp32" if job.variant == "fp32" else "fp16"
        with stages("trace"):
            program = self.capture(job)
        with stages("convert"):
            register_hooks(job.hooks)
            mlmodel = ct.convert(program, inputs=tensor_types(ct, job),
                                 outputs=[ct.TensorType(name=n) for n in job.output_names],
                                 convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                                 compute_precision=ct.precision.FLOAT32 if precision == "fp32"
                                 else ct.precision.FLOAT16)
        if job.variant and job.variant not in PRECISION_VARIANTS:
            with stages("compress"):
                mlmodel = compress(job.variant, mlmodel)
        with stages("save"):
            mlmodel.save(os.path.join(job.out_dir, self.artifact))
        return {"compute_precision": precision}

    def watch_ops(self):
        return watch_frontend()

    def intermediates(self, job, path):
        from backends.intermediates import save_torchscript
        return save_torchscript(self.capture(job), job, path)


BACKEND = V9()
