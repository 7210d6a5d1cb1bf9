"""Run Core ML models with numpy, on any OS: a reference evaluator for NeuralNetwork and
ML Program specs, faithful to Core ML's documented semantics.

    >>> import coreml_reference
    >>> outputs = coreml_reference.predict("model.mlpackage", {"waveform": x})

It is an evaluator of the spec, not the Core ML runtime: ``precision="fp16"`` emulates the
GPU / Neural Engine by rounding weights and every intermediate result to float16.
"""
from __future__ import annotations

from coreml_reference.errors import (EvaluatorError, InputError, InvalidModelError,  # noqa: F401
                                     LayerError, ModelFileError, RuntimeCheckError, ShapeError,
                                     UnsupportedError)
from coreml_reference.loader import load

PRECISIONS = ("fp32", "fp16")


def predict(model, inputs, precision="fp32", trace=None, state=None):
    """Evaluate ``model`` on ``inputs``; return {output name: numpy array} for every output
    (a classifier's label as str / int and its probabilities as {label: float}, as
    ``MLModel.predict`` returns them).

    model: path to .mlmodel / .mlpackage, a ``Model_pb2.Model`` spec, a coremltools MLModel,
        or what ``coreml_reference.load`` returned (parsed once, weights decoded once: the
        way to call ``predict`` repeatedly on one model).
    inputs: {input name: numpy array}, as ``MLModel.predict`` takes them; a PIL image (mode
        "RGB", "L" or "F" per the declared color space) for an image input.
    precision: "fp32" runs the model *as typed* (Core ML on CPU): float32, except that an
        fp16-typed ML Program (coremltools' default) keeps float16 storage and rounds every
        op's result to float16, with the program's casts. "fp16" is an *emulation* of GPU / Neural Engine
        execution: weights and every layer's / op's result are rounded to float16. It shows
        fp16 overflow and rounding loss; it is not the device and not bit-exact.
    trace: optional callable ``trace(name, type_name, value, layer_name)`` called with every
        intermediate blob (NeuralNetwork) / variable (ML Program) as it is computed, with the
        producing layer's / op's type and name (for divergence searches).
    state: for a stateful model (iOS 18 states), what ``new_state(model)`` returned: read and
        updated in place by the call, so successive calls continue from it. None: a fresh
        zeroed state for this one call.
    """
    if precision not in PRECISIONS:
        raise ValueError("precision must be one of {}, not {!r}".format(PRECISIONS, precision))
    loaded = load(model)
    if state is not None or declares_states(loaded):
        from coreml_reference.mlprogram import run as run_program
        if runner_for(loaded) is not run_program:
            raise ModelFileError("{}: only an ML Program has states".format(loaded.name))
        return run_program(loaded, inputs, precision=precision, trace=trace, state=state)
    return runner_for(loaded)(loaded, inputs, precision=precision, trace=trace)


def new_state(model):
    """A zeroed state for a stateful model, as ``MLModel.make_state()``: one buffer per state
    the model declares, stored as declared (float16 for Core ML states). An empty state for a
    model without states."""
    from coreml_reference.states import new_state as make
    return make(load(model))


def declares_states(model):
    """True when the model declares states (Core ML spec 9)."""
    from coreml_reference.states import declared_states
    return bool(declared_states(load(model).spec))


def runner_for(loaded):
    """The ``run`` function of the evaluator half for this spec's kind."""
    kind = loaded.spec.WhichOneof("Type")
    if kind in ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor"):
        from coreml_reference.neuralnetwork import run
    elif kind == "mlProgram":
        from coreml_reference.mlprogram import run
    else:
        raise ModelFileError("{}: model type {!r} is not a neural network or ML Program; "
                             "the reference evaluator runs only those".format(loaded.name, kind))
    return run
