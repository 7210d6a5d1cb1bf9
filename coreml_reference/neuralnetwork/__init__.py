"""Evaluate a NeuralNetwork spec (neuralNetwork / Classifier / Regressor) with numpy.

The loop below knows no layer type: it checks the inputs against the model description,
then runs the layers in spec order (the spec is already topologically sorted), looking each
type up in ``layers.REGISTRY``. A layer function takes ``(ctx, params, inputs)`` and returns
one array or a list of arrays, one per output blob.

Every blob is float32, as in Core ML's NeuralNetwork runtime (even shapes and indices).
``precision="fp16"`` rounds inputs, weights and every layer output through float16.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np

from coreml_reference.dtypes import ARRAY_DTYPES, ARRAY_TYPE_NAMES
from coreml_reference.errors import (EvaluatorError, InputError, InvalidModelError, LayerError,
                                     ModelFileError, UnsupportedError)
from coreml_reference.inputs import as_declared, check_declared_shape, image_pixels
from coreml_reference.neuralnetwork.context import Context, LoopSignal
from coreml_reference.neuralnetwork.layers import REGISTRY

NEURAL_KINDS = ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor")

Trace = Callable[[str, str, np.ndarray, str], None]


def run(loaded, inputs, precision: str = "fp32", trace: Optional[Trace] = None) -> Dict[str, np.ndarray]:
    """{output name: array} for every output in the model description.

    trace(name, type_name, value, layer_name) is called for every blob a layer produces.
    """
    spec = loaded.spec
    kind = spec.WhichOneof("Type")
    if kind not in NEURAL_KINDS:
        raise ModelFileError("{}: model type {!r} is not a neural network".format(loaded.name, kind))
    network = getattr(spec, kind)
    base = Context(precision, loaded.path, spec_version=spec.specificationVersion)
    blobs = read_inputs(spec, network, inputs, base, loaded)
    caches = _weight_caches(loaded, precision, len(network.layers))
    plan = _plan(loaded, spec, network)

    def run_nested(nested):
        """Branch and loop bodies run on the same blobs (their results are visible after)."""
        for layer in nested.layers:
            run_layer(layer, blobs, base, trace)
        return blobs
    base.run_network = run_nested
    # Core ML yields inf / nan silently (log(0), fp16 overflow); so do we.
    with np.errstate(all="ignore"):
        for layer, cache, step in zip(network.layers, caches, plan):
            run_layer(layer, blobs, base, trace, cache, step)
            for name in step.drop:
                blobs.pop(name, None)
    return collect_outputs(spec, network, kind, blobs, loaded)


def _weight_caches(loaded, precision, count):
    """One dict per layer for its decoded weights, kept on the LoadedModel so that running
    the same loaded model again skips decoding (as a runtime keeps a compiled model)."""
    store = getattr(loaded, "_nn_weight_caches", None)
    if store is None:
        store = {}
        try:
            loaded._nn_weight_caches = store
        except AttributeError:       # a frozen object: decode every time
            pass
    if len(store.get(precision, ())) != count:
        store[precision] = [{} for _ in range(count)]
    return store[precision]


class _Step:
    """A top-level layer's facts that no run changes, found once per loaded model: its
    checked type and function (when first run), and the blobs no later layer reads."""
    __slots__ = ("found", "drop")

    def __init__(self, drop):
        self.found = None
        self.drop = drop


def _plan(loaded, spec, network):
    """One _Step per layer of ``network``, kept on the LoadedModel. Each blob is dropped
    after its last reader: a run then reuses the memory of arrays it no longer needs, still
    in cache, instead of growing to hold every blob (fresh pages fault in on each run)."""
    plan = getattr(loaded, "_nn_plan", None)
    if plan is not None and len(plan) == len(network.layers):
        return plan
    keep = {feature.name for feature in spec.description.output}
    keep.add(getattr(network, "labelProbabilityLayerName", ""))
    if network.layers:
        keep.update(network.layers[-1].output)      # a classifier's default probabilities
    last = {}
    for index, layer in enumerate(network.layers):
        for name in _reads(layer):
            last[name] = index
    drops = [[] for _ in network.layers]
    for name, index in last.items():
        if name not in keep:
            drops[index].append(name)
    plan = [_Step(tuple(drop)) for drop in drops]
    try:
        loaded._nn_plan = plan
    except AttributeError:           # a frozen object: plan every time
        pass
    return plan


def _reads(layer):
    """The blob names a layer reads, its nested networks' (branch and loop bodies) included."""
    names = set(layer.input)
    type_name = layer.WhichOneof("layer")
    if type_name is not None:
        for field, value in getattr(layer, type_name).ListFields():
            if field.message_type is not None and field.message_type.name == "NeuralNetwork":
                for nested in value.layers:
                    names |= _reads(nested)
                    names.update(nested.output)  # read back by the loop (conditionVar)
    return names


def run_layer(layer, blobs: Dict[str, np.ndarray], base: Context, trace: Optional[Trace],
              cache: Optional[dict] = None, step: Optional[_Step] = None) -> None:
    found = step.found if step is not None else None
    if found is None:
        found = _found(layer, base)
        if step is not None:
            step.found = found
    type_name, function, params, input_names, output_names = found
    try:
        inputs = [blobs[name] for name in input_names]
    except KeyError:
        missing = [name for name in input_names if name not in blobs]
        raise InvalidModelError("reads blob {!r}, which no input or earlier layer produces".format(
            missing[0]), type_name, layer.name, base.model_path) from None
    ctx = base.for_layer(layer, type_name, cache)
    try:
        result = function(ctx, params, inputs)
    except InvalidModelError as e:   # from a shared kernel: name the layer
        raise e.at(type_name, layer.name, base.model_path) from None
    except (EvaluatorError, LoopSignal):
        raise                       # already names the layer / unwinds to its loop
    except Exception as cause:      # a bug or a spec we misread: say where it happened
        raise LayerError(type_name, layer.name, cause, base.model_path) from cause
    values = result if isinstance(result, (list, tuple)) else (result,)
    if len(values) != len(output_names):
        raise LayerError(type_name, layer.name, "produced {} outputs for {} output names".format(
            len(values), len(output_names)), base.model_path)
    fp16 = base.fp16
    for name, value in zip(output_names, values):
        if type(value) is not np.ndarray or value.dtype != np.float32:
            value = np.asarray(value, dtype=np.float32)
        if fp16:
            value = ctx.round(value)
        blobs[name] = value
        if trace is not None:
            trace(name, type_name, value, layer.name)


def _found(layer, base: Context):
    """(type name, function, params, input names, output names) of a layer the evaluator
    can run under the model's specification version; else the error Core ML or we give."""
    type_name = layer.WhichOneof("layer")
    if type_name is None:
        raise InvalidModelError("sets no layer type", "(untyped)", layer.name, base.model_path)
    needed = minimum_spec_version(layer)
    if base.spec_version and base.spec_version < needed:
        raise InvalidModelError(
            "layer type {!r} needs specification version {} ({}), the model declares {}".format(
                type_name, needed, SPEC_VERSION_OS[needed], base.spec_version),
            type_name, layer.name, base.model_path)
    function = REGISTRY.get(type_name)
    if function is None:
        raise UnsupportedError("layer", type_name, layer.name, base.model_path)
    return (type_name, function, getattr(layer, type_name), tuple(layer.input),
            tuple(layer.output))


# --- which specification version brought each layer type ------------------------------------
# NeuralNetwork.proto's layer fields: iOS 11 (version 1) for most below field 600, iOS 12 (3)
# for the resize layers, iOS 13 (4) for the N-d layers from field 600 on, iOS 14 (5) for the
# layers coremltools' builder raises the version to 5 for (add_one_hot, add_cumsum, ...).
SPEC_VERSION_OS = {1: "iOS 11", 2: "iOS 11.2", 3: "iOS 12", 4: "iOS 13", 5: "iOS 14"}
_IOS12_LAYERS = frozenset(["resizeBilinear", "cropResize"])
_IOS14_LAYERS = frozenset(["oneHot", "cumSum", "clampedReLU", "argSort", "pooling3d",
                           "globalPooling3d", "convolution3d"])
_FIRST_IOS13_FIELD = 600   # `copy`; layers such as reshapeStatic and batchedMatmul follow


def minimum_spec_version(layer) -> int:
    """The oldest specification version whose NeuralNetwork has ``layer``'s type."""
    type_name = layer.WhichOneof("layer")
    if type_name in _IOS14_LAYERS:
        return 5
    if type_name in _IOS12_LAYERS:
        return 3
    field = layer.DESCRIPTOR.fields_by_name.get(type_name)
    return 4 if field is not None and field.number >= _FIRST_IOS13_FIELD else 1


# --- inputs ---------------------------------------------------------------------------------


def read_inputs(spec, network, inputs, ctx: Context, loaded) -> Dict[str, np.ndarray]:
    """Check every declared input is given with an allowed shape and dtype; return the blobs."""
    if not hasattr(inputs, "keys"):
        raise InputError("inputs must be a dict {name: array}, not " + type(inputs).__name__)
    rank5 = _rank5_mapping(spec, network)
    blobs: Dict[str, np.ndarray] = {}
    for feature in spec.description.input:
        name = feature.name
        if name not in inputs:
            declared = [f.name for f in spec.description.input]
            raise InputError("missing input {!r}; {} expects inputs {}".format(
                name, loaded.name, declared))
        kind = feature.type.WhichOneof("Type")
        if kind == "imageType":
            blobs[name] = ctx.round(_image_blob(network, feature, inputs[name], loaded))
            continue
        if kind != "multiArrayType":
            raise UnsupportedError("input", kind, name, loaded.path)
        array = _checked_array(loaded.name, name, inputs[name], feature.type.multiArrayType)
        if rank5:
            array = _to_rank5(name, array)
        blobs[name] = ctx.round(array.astype(np.float32))
    return blobs


def _image_blob(network, feature, value, loaded) -> np.ndarray:
    """An image input's blob: its pixels after the network's preprocessing for it, [1, C, H, W]
    (RANK4 image mapping) or [1, 1, C, H, W] (RANK5, the default)."""
    image_type = feature.type.imageType
    pixels = image_pixels(loaded.name, feature.name, value, image_type)
    for step in network.preprocessing:
        if step.featureName not in ("", feature.name):
            continue
        which = step.WhichOneof("preprocessor")
        if which == "scaler":
            pixels = pixels * step.scaler.channelScale + _channel_biases(step.scaler, image_type)
        elif which == "meanImage":
            mean = np.asarray(step.meanImage.meanImage, np.float32)
            if mean.size != pixels.size:
                raise ModelFileError("{}: the mean image of input {!r} has {} values, the image "
                                     "{}".format(loaded.name, feature.name, mean.size, pixels.size))
            pixels = pixels - mean.reshape(pixels.shape)
    return pixels if network.imageInputShapeMapping == 1 else pixels[None]


def _channel_biases(scaler, image_type):
    """The scaler's biases in the image's channel order."""
    biases = {20: [scaler.redBias, scaler.greenBias, scaler.blueBias],
              30: [scaler.blueBias, scaler.greenBias, scaler.redBias]}.get(
        image_type.colorSpace, [scaler.grayBias])
    return np.asarray(biases, np.float32).reshape(-1, 1, 1)


def _checked_array(model_name, name, value, array_type) -> np.ndarray:
    """The input in its declared type (float values for an INT32 input are truncated, as
    Core ML converts them), then float32 as every NeuralNetwork blob is."""
    want = ARRAY_DTYPES.get(array_type.dataType, np.float32)
    array = as_declared(model_name, name, value, want, ARRAY_TYPE_NAMES.get(array_type.dataType))
    check_declared_shape(model_name, name, array.shape, array_type)
    return array


def _rank5_mapping(spec, network) -> bool:
    """Specification <= 3 (or the legacy enum) maps [C] / [C, H, W] inputs to rank 5."""
    return getattr(network, "arrayInputShapeMapping", 0) == 0 and spec.specificationVersion <= 3


def _to_rank5(name, array):
    if array.ndim == 1:
        return array.reshape(1, 1, array.shape[0], 1, 1)
    if array.ndim == 3:
        return array.reshape((1, 1) + array.shape)
    if array.ndim == 5:
        return array
    raise InputError("input {!r}: a rank-5-mapped input must have rank 1, 3 or 5, got shape {}".format(
        name, list(array.shape)))


# --- outputs --------------------------------------------------------------------------------

def collect_outputs(spec, network, kind, blobs, loaded) -> Dict[str, object]:
    if kind == "neuralNetworkClassifier":
        _add_classifier_outputs(spec, network, blobs, loaded)
    rank5 = _rank5_mapping(spec, network)
    outputs: Dict[str, object] = {}
    for feature in spec.description.output:
        if feature.name not in blobs:
            raise ModelFileError("{}: output {!r} is not produced by any layer".format(
                loaded.name, feature.name))
        value = blobs[feature.name]
        if isinstance(value, np.ndarray) and feature.type.WhichOneof("Type") == "multiArrayType":
            value = _shaped_output(value, feature.type.multiArrayType, rank5)
        outputs[feature.name] = value
    return outputs


def _shaped_output(value, array_type, rank5):
    """A rank-5 mapped model reports its [C, H, W]-style declared shape; EXACT mapping keeps
    the blob's own shape. Declared DOUBLE / INT32 outputs come back in that dtype."""
    declared = list(array_type.shape)
    if rank5 and declared and int(np.prod(declared)) == value.size:
        value = value.reshape(declared)
    if ARRAY_TYPE_NAMES.get(array_type.dataType) in ("DOUBLE", "INT32"):
        return value.astype(ARRAY_DTYPES[array_type.dataType])
    return value


def _add_classifier_outputs(spec, network, blobs, loaded):
    """A classifier's label and {label: probability} outputs, from its probability blob."""
    which = network.WhichOneof("ClassLabels")
    labels = list(getattr(network, which).vector) if which else []
    source = network.labelProbabilityLayerName or (network.layers[-1].output[0] if network.layers else "")
    if source not in blobs:
        raise ModelFileError("{}: classifier probability blob {!r} missing".format(loaded.name, source))
    probs = blobs[source].reshape(-1)
    if len(labels) != probs.size:
        raise ModelFileError("{}: {} class labels for {} probabilities".format(
            loaded.name, len(labels), probs.size))
    label_name = spec.description.predictedFeatureName
    prob_name = spec.description.predictedProbabilitiesName
    if label_name:
        blobs[label_name] = labels[int(np.argmax(probs))]
    if prob_name:
        blobs[prob_name] = {label: float(p) for label, p in zip(labels, probs)}
