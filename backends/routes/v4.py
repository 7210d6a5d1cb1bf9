"""v4: torch.jit.trace -> coremltools 4.1 unified converter (NeuralNetwork).

Hooks: TorchScript op name -> function ``fn(context, node)`` building MIL ops, registered
with coremltools' ``register_torch_op(override=True)`` before conversion.
"""
from __future__ import annotations

import os

from backends.base import Backend
from backends.torch_common import (declared_input_shapes, register_hooks, tensor_types, trace,
                                   watch_frontend)
from backends.variants import compress


class V4(Backend):
    name = "v4"
    order = 20
    env = "v4"
    python = "3.8"
    artifact = "model.mlmodel"
    summary = "torch.jit.trace -> coremltools 4.1 ct.convert (NeuralNetwork)"
    hook_kind = "TorchScript op -> MIL composite (register_torch_op)"
    variants = ("fp16w", "lin8", "lut4", "lut6")

    def load_toolchain(self):
        import coremltools
        import torch
        return {"coremltools": coremltools.__version__, "torch": torch.__version__}

    def convert(self, job, stages):
        import coremltools as ct
        with stages("trace"):
            traced = trace(job)
        with stages("convert"):
            register_hooks(job.hooks)
            mlmodel = ct.convert(traced, inputs=tensor_types(ct, job))
            spec = renamed_outputs(ct, mlmodel.get_spec(), job.output_names)
            declare_output_shapes(spec, job.output_shapes)
        if job.variant:
            with stages("compress"):
                spec = compress(job.variant, ct.models.MLModel(spec))
        with stages("save"):
            ct.utils.save_spec(spec, os.path.join(job.out_dir, self.artifact))
        return declared_input_shapes(spec)

    def watch_ops(self):
        return watch_frontend()

    def intermediates(self, job, path):
        from backends.intermediates import save_torchscript
        return save_torchscript(trace(job), job, path)


def renamed_outputs(ct, spec, names):
    """ct 4 names outputs after internal vars; give them the PyTorch names, in order."""
    current = [o.name for o in spec.description.output]
    if len(current) != len(names):
        raise ValueError("converted model has {} outputs, the module {}".format(len(current), len(names)))
    for old, new in zip(current, names):
        if old != new:
            ct.utils.rename_feature(spec, old, new)
    return spec


def declare_output_shapes(spec, shapes):
    """ct 4 leaves output shapes empty; declare PyTorch's, which Core ML checks at runtime."""
    for output, shape in zip(spec.description.output, shapes or []):
        array = output.type.multiArrayType
        if not array.shape:
            array.shape.extend(int(d) for d in shape)


BACKEND = V4()
