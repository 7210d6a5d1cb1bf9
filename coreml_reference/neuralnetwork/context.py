"""What a layer may know about its surroundings: its own name and type, the precision, and
how to read its weights. The loop builds one per layer; layers never see the loop."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from coreml_reference.errors import InvalidModelError, LayerError, ShapeError, UnsupportedError
from coreml_reference import nn_weights as weights
from coreml_reference.kernels import round_to_float16


class LoopSignal(Exception):
    """loopBreak / loopContinue: unwinds to the enclosing loop layer (not an error)."""


class LoopBreak(LoopSignal):
    pass


class LoopContinue(LoopSignal):
    pass


SHAPES_KEPT = 8     # input shapes a layer keeps prepared work for (a flexible model sees many)


class Context:
    def __init__(self, precision: str, model_path: Optional[str], layer=None,
                 type_name: str = "", spec_version: int = 0, cache: Optional[dict] = None,
                 run_network=None):
        self.precision = precision
        self.model_path = model_path
        self.layer = layer
        self.type_name = type_name
        self.spec_version = spec_version
        # decoded weights of this layer, kept by the loop across runs of the same model
        self.cache = cache if cache is not None else {}
        # run_network(network) -> blobs: run a nested NeuralNetwork (branch / loop bodies)
        # on the same blobs; the loop provides it
        self.run_network = run_network

    def for_layer(self, layer, type_name: str, cache: Optional[dict] = None) -> "Context":
        return Context(self.precision, self.model_path, layer, type_name, self.spec_version, cache,
                       self.run_network)

    @property
    def fp16(self) -> bool:
        return self.precision == "fp16"

    @property
    def layer_name(self) -> str:
        return self.layer.name if self.layer is not None else ""

    @property
    def n_outputs(self) -> int:
        return len(self.layer.output) if self.layer is not None else 1

    def prepared(self, kind: str, key, make):
        """``make()``'s result for ``key`` (an input's shape), made once per loaded model as its
        weights are decoded once: a layer's checks and layouts for that shape. At most
        SHAPES_KEPT keys of each kind are kept."""
        kept = self.cache.get(kind)
        if kept is None:
            kept = self.cache[kind] = {}
        value = kept.get(key)
        if value is None:
            if len(kept) >= SHAPES_KEPT:
                kept.clear()
            value = kept[key] = make()
        return value

    # --- errors that already carry the layer's name (the loop lets them through) ---

    def shape_error(self, message: str) -> ShapeError:
        return InvalidModelError(message, self.type_name, self.layer_name, self.model_path)

    def unsupported(self, what: str) -> UnsupportedError:
        return UnsupportedError("layer", self.type_name, self.layer_name, self.model_path, what)

    def _where(self) -> str:
        return " in {}".format(self.model_path) if self.model_path else ""

    # --- weights ---

    def weights(self, params, shape: Sequence[int], what: str = "weights", axis: int = 0) -> np.ndarray:
        """Decode a WeightParams into a float32 array of ``shape`` (row-major, as the spec
        stores it), rounded through float16 when emulating fp16 execution; quantized weights
        have their channels along ``axis`` (1 for deconvolution). Decoded once per
        loaded model: decoding is loading, not evaluating."""
        key = (what, tuple(int(d) for d in shape))
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        values = decode_weights(params, self, key[1], axis)
        expected = int(np.prod(shape)) if len(shape) else 1
        if values.size != expected:
            raise self.shape_error("{} hold {} values, the layer needs {} for shape {}".format(
                what, values.size, expected, list(shape)))
        array = self.round(values.reshape(key[1]))
        array.setflags(write=False)          # shared between runs: layers must not modify it
        self.cache[key] = array
        return array

    def round(self, value: np.ndarray) -> np.ndarray:
        """float32 -> float16 -> float32 in fp16 mode (overflow becomes inf, as on device),
        by the ML Program half's vectorised rounding: the same bits as the two casts."""
        if self.fp16:
            return round_to_float16(np.asarray(value, dtype=np.float32))
        return value


def decode_weights(params, ctx: Context, shape=None, axis: int = 0) -> np.ndarray:
    """The float values of a WeightParams, whichever encoding the converter chose
    (float32, float16, or 1- to 8-bit linear / look-up-table quantized: ``weights``)."""
    try:
        return weights.decode(params, shape, axis)
    except weights.WeightsError as e:
        raise LayerError(ctx.type_name, ctx.layer_name, "cannot decode weights: {}".format(e),
                         ctx.model_path)
