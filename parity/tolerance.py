"""How close a device's output must be to PyTorch's, per output — stated once.

GPU and Neural Engine compute in float16. The reference evaluator emulates that
(``precision="fp16"``) and reports the max abs error against PyTorch: the report's
"fp16 accuracy (emulated GPU/NE)" column. A device differs from the emulation (summation
order, fused ops, intermediate precision), so the test allows FACTOR times that error.
FACTOR = 10 is a choice, not a measurement: one order of magnitude, in place of the seed's
hand-picked 0.1. Only when the emulation is exact (error 0) does one float16 step at the
output's largest magnitude stand in for the error, so no tolerance is zero.
"""
from __future__ import annotations

import numpy as np

FACTOR = 10.0


def fp16_step(golden):
    """The spacing of float16 numbers at the largest |value| of ``golden``."""
    scale = float(np.max(np.abs(golden))) if np.size(golden) else 0.0
    return float(np.spacing(np.float16(min(scale, 65504.0))))


def tolerance(fp16_max_abs_error, golden):
    """FACTOR x the fp16 emulation's max abs error (x one float16 step when that is 0)."""
    error = float(fp16_max_abs_error)
    return FACTOR * (error if error > 0 else fp16_step(golden))
