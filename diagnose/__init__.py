"""Say where a route breaks (``coreml-routes diagnose``).

Three searches, each ending in one place in the model:

- **Conversion fails** (``diagnose.failure``): walk the module tree. Each child of the
  failing module is converted alone, in the route's env, in its own process, fed the inputs
  it really receives (the worker runs the whole model with a forward pre-hook, so nothing is
  pickled across envs). Descend into a failing child (preferring one that fails with the
  same message); stop when no child fails alone. Report that module, its type, the op the
  converter was converting (the worker reads it from the traceback) and the message.
- **Outputs diverge** (``diagnose.divergence``): evaluate the Core ML model with the
  reference evaluator, tracing every blob / var, and hold each against PyTorch's value of the
  same name. The names line up because the converters keep them: v3 blobs are ONNX value
  names (reference: onnxruntime on a copy of model.onnx with every value exposed, written
  by the worker); v4 blobs and v9 vars are the TorchScript debug names of the graph
  coremltools prepares (the worker runs that very graph and saves every tensor; ML Program
  names are sanitised, ``input.3`` -> ``input_3``, ``15`` -> ``var_15``); v9-export vars
  are FX node names; PyTorch's outputs join under the model's output names). Converter-made
  names with no PyTorch twin are skipped, and counted. A value the converter laid out
  differently (coremltools 9 moves a transpose across elementwise ops, so ``pow`` holds
  [1, 1, 513, 101] where PyTorch has [1, 1, 101, 513]) is compared in PyTorch's axis order
  (``compare``); one whose layout cannot be told is counted "layout differs", not compared.
  The first traced value (in evaluation order) that departs — in size or beyond the fp32
  tolerance of ``coreml_reference.metrics`` — is the first divergent layer; if the
  evaluator stops on a layer before any value departs, that layer is the place, with its
  inputs' producers. When every output matches, the verdict is "matches" whatever a
  same-named intermediate does (such a value is shown as a note, not as the fault).
- **fp16** (``--precision fp16``): the same walk, holding the fp16 emulation against the
  fp32 evaluation: the first value that overflows (inf / NaN where fp32 is finite) or whose
  SNR drops below ``FP16_MIN_SNR_DB``.
"""
from diagnose.run import diagnose  # noqa: F401 (public API)
