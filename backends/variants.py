"""Variants of a route's artifact: another precision or compressed weights.

A variant is part of the artifact's name: ``build/<model>/<route>+<variant>/``; the plain
``build/<model>/<route>/`` is the route's default, as users get it from that toolchain.
Each variant is one small function found by name, applied in the route's own env after the
default conversion (the fp32 precision variant instead changes the conversion itself).

LUT variants palettize as users do: coremltools 9 by k-means (``OpPalettizerConfig(mode=
"kmeans")``, which needs scikit-learn, pinned in the v9 env and pulled into the et env by
executorch); coremltools 3.3 / 4.1 by their ``linear_lut``. ``lut4g16`` / ``lut6g16`` are
coremltools' iOS 18 per-grouped-channel palettes (one palette per 16 output channels), which
exist only at an iOS 18 target (``MIN_TARGETS``). Runs on Python 3.7.
"""
from __future__ import annotations

from collections import OrderedDict

from bad_input import BadInput

# What each variant is, for --help and the tables.
SUMMARIES = OrderedDict([
    ("fp32", "ML Program typed float32 (compute_precision=FLOAT32)"),
    ("fp16", "program typed float16: module and inputs cast to float16 before export (coreai)"),
    ("fp16w", "NeuralNetwork weights stored as float16 (quantize_weights nbits=16)"),
    ("lin8", "8-bit linear weights (per output channel)"),
    ("lut4", "4-bit look-up table (16 palette entries; k-means on coremltools 9, uniform before)"),
    ("lut6", "6-bit look-up table (64 palette entries; k-means on coremltools 9, uniform before)"),
    ("lut4g16", "4-bit k-means palettes per group of 16 output channels (iOS 18 target)"),
    ("lut6g16", "6-bit k-means palettes per group of 16 output channels (iOS 18 target)"),
    ("prune50", "50 % magnitude pruning (sparse weights)"),
])
PRECISION_VARIANTS = ("fp32", "fp16")   # fp16: coreai (v9's default is fp16)
# Variants that need a newer deployment target than the route's default (iOS 16 for ML
# Programs): coremltools refuses per-grouped-channel palettes below iOS 18.
MIN_TARGETS = {"lut4g16": "iOS18", "lut6g16": "iOS18"}


def min_target(variant, default):
    """The deployment target to convert ``variant`` at (a coremltools ``ct.target`` name)."""
    return MIN_TARGETS.get(variant, default)

NEURALNETWORK = OrderedDict()   # variant -> fn(MLModel) -> spec
MLPROGRAM = OrderedDict()       # variant -> fn(MLModel) -> MLModel


class UnknownVariant(BadInput):
    pass


def _register(table, name):
    def wrap(fn):
        if name in table:
            raise ValueError("variant {!r} registered twice".format(name))
        table[name] = fn
        return fn
    return wrap


def check(backend, variant):
    """Raise UnknownVariant with one readable line when ``backend`` cannot build ``variant``."""
    if variant is None:
        return
    if variant not in SUMMARIES:
        raise UnknownVariant("unknown variant {!r}; known variants: {}".format(
            variant, ", ".join(SUMMARIES)))
    if variant not in backend.variants:
        raise UnknownVariant("route {} cannot build variant {!r} ({}); its variants: {}".format(
            backend.name, variant, SUMMARIES[variant], ", ".join(backend.variants) or "none"))


# --- which compute units may run it (Apple, "Typed Execution", coremltools guide) -------------

def compute_units(spec_type, compute_precision):
    """Compute units Core ML may place the model on, from Apple's documented rules: an
    fp32-typed ML Program runs on CPU and GPU only (never the Neural Engine); an fp16 ML
    Program on CPU, GPU and NE; a NeuralNetwork anywhere (GPU / NE then compute in fp16)."""
    if spec_type == "mlProgram" and compute_precision == "fp32":
        return ["CPU", "GPU"]
    return ["CPU", "GPU", "NE"]


def compress(variant, model):
    """Apply a compression variant to a converted model (in the route's env): a NeuralNetwork
    gives its spec back, an ML Program a new MLModel."""
    is_program = model.get_spec().WhichOneof("Type") == "mlProgram"
    return (MLPROGRAM if is_program else NEURALNETWORK)[variant](model)


# --- NeuralNetwork (v3, v4): that env's quantization_utils.quantize_weights -------------------

def _quantize_nn(model, nbits, mode):
    from coremltools.models.neural_network import quantization_utils
    quantized = quantization_utils.quantize_weights(model, nbits, mode)
    # Off macOS, old coremltools return the spec itself rather than an MLModel.
    return quantized.get_spec() if hasattr(quantized, "get_spec") else quantized


@_register(NEURALNETWORK, "fp16w")
def nn_fp16w(model):
    return _quantize_nn(model, 16, "linear")


@_register(NEURALNETWORK, "lin8")
def nn_lin8(model):
    return _quantize_nn(model, 8, "linear")


@_register(NEURALNETWORK, "lut4")
def nn_lut4(model):
    return _quantize_nn(model, 4, "linear_lut")


@_register(NEURALNETWORK, "lut6")
def nn_lut6(model):
    return _quantize_nn(model, 6, "linear_lut")


# --- ML Program (v9, v9-export): coremltools.optimize.coreml ----------------------------------

def _optimize(mlmodel, make_config, apply):
    from coremltools.optimize import coreml as cto
    config = cto.OptimizationConfig(global_config=make_config(cto))
    return getattr(cto, apply)(mlmodel, config=config)


@_register(MLPROGRAM, "lin8")
def ml_lin8(mlmodel):
    return _optimize(mlmodel, lambda cto: cto.OpLinearQuantizerConfig(
        mode="linear_symmetric", dtype="int8", granularity="per_channel"), "linear_quantize_weights")


def _palettize(nbits, **grouping):
    return lambda mlmodel: _optimize(mlmodel, lambda cto: cto.OpPalettizerConfig(
        mode="kmeans", nbits=nbits, **grouping), "palettize_weights")


PER_GROUP_OF_16 = dict(granularity="per_grouped_channel", group_size=16)
_register(MLPROGRAM, "lut4")(_palettize(4))
_register(MLPROGRAM, "lut6")(_palettize(6))
_register(MLPROGRAM, "lut4g16")(_palettize(4, **PER_GROUP_OF_16))
_register(MLPROGRAM, "lut6g16")(_palettize(6, **PER_GROUP_OF_16))


@_register(MLPROGRAM, "prune50")
def ml_prune50(mlmodel):
    return _optimize(mlmodel, lambda cto: cto.OpMagnitudePrunerConfig(target_sparsity=0.5),
                     "prune_weights")
