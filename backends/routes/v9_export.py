"""v9-export: torch.export -> coremltools 9 ct.convert -> ML Program (.mlpackage).

Hooks: ATen op name -> MIL composite, as for v9 (the torch.export frontend shares the
TorchScript op registry).
"""
from __future__ import annotations

from backends.routes.v9 import V9
from backends.sources import TORCHSCRIPT


class V9Export(V9):
    name = "v9-export"
    order = 40
    summary = "torch.export -> coremltools 9 ct.convert (ML Program, fp16 by default)"
    hook_kind = "torch.export (ATen) op -> MIL composite (register_torch_op)"

    def accepts(self, source):
        if source.kind == TORCHSCRIPT:
            return "a TorchScript archive has no Python module for torch.export: use route v9"
        return V9.accepts(self, source)

    def capture(self, job):
        import torch
        from backends.shapes import export_dims
        # Flexible inputs export with torch.export.Dim; ct.convert then takes the RangeDim /
        # EnumeratedShapes of ``tensor_types`` within those bounds.
        program = torch.export.export(job.module, job.torch_inputs(), dynamic_shapes=export_dims(job))
        return program.run_decompositions({})

    def state_options(self, ct, job):
        """coremltools finds a torch.export program's states itself (its graph signature's
        mutated buffers): the iOS 18 target is all it needs."""
        return {}

    def intermediates(self, job, path):
        from backends.intermediates import save_exported
        return save_exported(self.capture(job), job, path)


BACKEND = V9Export()
