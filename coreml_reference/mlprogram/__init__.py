"""ML Program (MIL) half of the reference evaluator.

``run(loaded, inputs, precision, trace)`` evaluates ``spec.mlProgram``'s main function and
returns {output name: numpy array}. The op loop is in ``program``; each MIL op is a small
function in ``ops/``, registered by type in ``registry.OPS``.

Precision: "fp32" runs the program *as typed*: an op whose output the program declares
float16 (an fp16 ML Program, after its input ``cast``) stores float16 and rounds its result
to float16 (computed in float32 first: exact IEEE float16 for elementwise ops, a float32
accumulator inside conv / matmul / reductions); float32 ops stay float32. "fp16" emulates GPU / Neural
Engine execution: inputs, const values (weights) and every float op result are rounded to
float16 (computed in float32, then ``astype(np.float16)``; overflow becomes inf as on
device). Not bit-exact with any device: accumulations stay float32 here.
"""
from __future__ import annotations

from coreml_reference.mlprogram import ops  # noqa: F401  (registers every op)
from coreml_reference.mlprogram.program import run
from coreml_reference.mlprogram.registry import OPS, register

__all__ = ["run", "OPS", "register", "supported_ops"]


def supported_ops():
    """Sorted MIL op types the evaluator implements."""
    return sorted(OPS)
