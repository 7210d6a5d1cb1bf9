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
from backends.torch_common import (declared_input_shapes, register_hooks, tensor_types, trace,
                                   watch_frontend)
from backends.variants import PRECISION_VARIANTS, compress, min_target


class V9(Backend):
    name = "v9"
    order = 30
    env = "v9"
    python = "3.11"
    artifact = "model.mlpackage"
    summary = "torch.jit.trace -> coremltools 9 ct.convert (ML Program, fp16 by default)"
    hook_kind = "TorchScript op -> MIL composite (register_torch_op)"
    variants = ("fp32", "lin8", "lut4", "lut6", "lut4g16", "lut6g16", "prune50")
    takes_states = True    # ct.StateType at an iOS 18 target (fp16 states only)

    def load_toolchain(self):
        import coremltools
        import torch
        return {"coremltools": coremltools.__version__, "torch": torch.__version__}

    def capture(self, job):
        return trace(job)

    def convert(self, job, stages):
        import coremltools as ct
        precision = "fp32" if job.variant == "fp32" else "fp16"
        target = min_target(job.variant, "iOS18" if getattr(job, "states", None) else "iOS16")
        with stages("trace"):
            program = self.capture(job)
        with stages("convert"):
            register_hooks(job.hooks)
            mlmodel = ct.convert(program, inputs=tensor_types(ct, job),
                                 outputs=[ct.TensorType(name=n) for n in job.output_names],
                                 convert_to="mlprogram",
                                 minimum_deployment_target=getattr(ct.target, target),
                                 compute_precision=ct.precision.FLOAT32 if precision == "fp32"
                                 else ct.precision.FLOAT16, **self.state_options(ct, job))
        if job.variant and job.variant not in PRECISION_VARIANTS:
            with stages("compress"):
                mlmodel = compress(job.variant, mlmodel)
        with stages("save"):
            mlmodel.save(os.path.join(job.out_dir, self.artifact))
        return dict(declared_input_shapes(mlmodel.get_spec()), compute_precision=precision,
                    deployment_target=target)

    def state_options(self, ct, job):
        """ct.convert's ``states`` for a stateful job (its target is iOS 18): for a traced
        module, one ct.StateType per mutated buffer, named as the trace names it (float16:
        Core ML states are fp16 only)."""
        if not getattr(job, "states", None):
            return {}
        import numpy as np
        prefix = "inner." if job.scripted is None else ""
        return {"states": [ct.StateType(wrapped_type=ct.TensorType(shape=s["shape"], dtype=np.float16),
                                        name=prefix + s["name"]) for s in job.states]}

    def watch_ops(self):
        return watch_frontend()

    def intermediates(self, job, path):
        from backends.intermediates import save_torchscript
        return save_torchscript(self.capture(job), job, path)


BACKEND = V9()
