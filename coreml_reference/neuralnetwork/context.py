"""What a layer may know about its surroundings: its own name and type, the precision, and
how to read its weights. The loop builds one per layer; layers never see the loop."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from coreml_reference.errors import ShapeError, UnsupportedError


class Context:
    def __init__(self, precision: str, model_path: Optional[str], layer=None,
                 type_name: str = "", spec_version: int = 0, cache: Optional[dict] = None):
        self.precision = precision
        self.model_path = model_path
        self.layer = layer
        self.type_name = type_name
        self.spec_version = spec_version
        # decoded weights of this layer, kept by the loop across runs of the same model
        self.cache = cache if cache is not None else {}

    def for_layer(self, layer, type_name: str, cache: Optional[dict] = None) -> "Context":
        return Context(self.precision, self.model_path, layer, type_name, self.spec_version, cache)

    @property
    def fp16(self) -> bool:
        return self.precision == "fp16"

    @property
    def layer_name(self) -> str:
        return self.layer.name if self.layer is not None else ""

    @property
    def n_outputs(self) -> int:
        return len(self.layer.output) if self.layer is not None else 1

    # --- errors that already carry the layer's name (the loop lets them through) ---

    def shape_error(self, message: str) -> ShapeError:
        return ShapeError("{} layer {!r}{}: {}".format(
            self.type_name, self.layer_name, self._where(), message))

    def unsupported(self, what: str) -> UnsupportedError:
        return UnsupportedError(self.type_name, what, self.layer_name, self.model_path)

    def _where(self) -> str:
        return " in {}".format(self.model_path) if self.model_path else ""

    # --- weights ---

    def weights(self, params, shape: Sequence[int], what: str = "weights") -> np.ndarray:
        """Decode a WeightParams into a float32 array of ``shape`` (row-major, as the spec
        stores it), rounded through float16 when emulating fp16 execution. Decoded once per
        loaded model: decoding is loading, not evaluating."""
        key = (what, tuple(int(d) for d in shape))
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        values = decode_weights(params, self)
        expected = int(np.prod(shape)) if len(shape) else 1
        if values.size != expected:
            raise self.shape_error("{} hold {} values, the layer needs {} for shape {}".format(
                what, values.size, expected, list(shape)))
        array = self.round(values.reshape(key[1]))
        array.setflags(write=False)          # shared between runs: layers must not modify it
        self.cache[key] = array
        return array

    def round(self, value: np.ndarray) -> np.ndarray:
        """float32 -> float16 -> float32 in fp16 mode (overflow becomes inf, as on device)."""
        if self.fp16:
            return value.astype(np.float16).astype(np.float32)
        return value


def decode_weights(params, ctx: Context) -> np.ndarray:
    """The float values of a WeightParams, whichever encoding the converter chose."""
    if len(params.floatValue):
        return np.asarray(params.floatValue, dtype=np.float32)
    if len(params.float16Value):
        return np.frombuffer(params.float16Value, dtype=np.float16).astype(np.float32)
    if len(params.rawValue) or len(params.int8RawValue):
        return _dequantize(params, ctx)
    return np.zeros(0, dtype=np.float32)


def _dequantize(params, ctx: Context) -> np.ndarray:
    """8-bit linear / look-up-table quantized weights (the common cases)."""
    q = params.quantization
    bits = q.numberOfBits
    kind = q.WhichOneof("QuantizationType")
    if bits != 8 or kind is None:
        raise ctx.unsupported("{}-bit {} quantized weights".format(bits, kind or "unknown"))
    signed = len(params.int8RawValue) > 0
    raw = params.int8RawValue if signed else params.rawValue
    codes = np.frombuffer(raw, dtype=np.int8 if signed else np.uint8)
    if kind == "lookupTableQuantization":
        table = np.asarray(q.lookupTableQuantization.floatValue, dtype=np.float32)
        return table[codes.astype(np.int64)]
    scale = np.asarray(q.linearQuantization.scale, dtype=np.float32)
    bias = np.asarray(q.linearQuantization.bias, dtype=np.float32)
    values = codes.astype(np.float32)
    # scale / bias hold one value, or one per output channel (the leading axis).
    if scale.size > 1:
        values = values.reshape(scale.size, -1) * scale[:, None]
        values = values.reshape(-1)
    elif scale.size == 1:
        values = values * scale[0]
    if bias.size > 1:
        values = (values.reshape(bias.size, -1) + bias[:, None]).reshape(-1)
    elif bias.size == 1:
        values = values + bias[0]
    return values
