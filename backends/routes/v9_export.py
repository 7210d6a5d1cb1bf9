"""v9-export: torch.export -> coremltools 9 ct.convert -> ML Program (.mlpackage).

Hooks: ATen op name -> MIL composite, as for v9 (the torch.export frontend shares the
TorchScript op registry).
"""
from __future__ import annotations

from backends.routes.v9 import V9


class V9Export(V9):
    name = "v9-export"
    summary = "torch.export -> coremltools 9 ct.convert (ML Program)"

    def capture(self, job):
        import torch
        program = torch.export.export(job.module, job.torch_inputs())
        return program.run_decompositions({})


BACKEND = V9Export()
