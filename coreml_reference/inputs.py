"""Input arrays as ``MLModel.predict`` takes them, for both halves of the evaluator.

``MLModel.predict`` hands any real-valued numpy array (bool, int, uint, float of any width) to
Core ML as a multi-array, and Core ML converts it to the type the model declares: float
values given for an int32 input are truncated toward zero, int64 token ids given for an
int32 input are narrowed. Only what it cannot turn into numbers (strings, objects, complex)
is refused.
"""
from __future__ import annotations

import numpy as np

from coreml_reference.errors import InputError, ModelFileError

NUMERIC_KINDS = "biuf"


def as_declared(model_name, input_name, value, want, want_name=None):
    """``value`` as a numpy array of dtype ``want``; InputError naming the input if the
    array is not numeric (``want_name`` is the model's own name for the type)."""
    try:
        array = np.asarray(value)
    except Exception as e:
        raise InputError("{}: input {!r} is not an array: {}".format(model_name, input_name, e))
    want = np.dtype(want)
    if want.kind in NUMERIC_KINDS and array.dtype.kind not in NUMERIC_KINDS:
        raise InputError("{}: input {!r} has dtype {}, the model takes {} (pass a numeric "
                         "array)".format(model_name, input_name, array.dtype,
                                         want_name or want.name))
    if want.kind not in NUMERIC_KINDS and array.dtype.kind not in "OUS":
        raise InputError("{}: input {!r} has dtype {}, the model takes {}".format(
            model_name, input_name, array.dtype, want_name or want.name))
    if array.dtype == want:
        return array
    with np.errstate(invalid="ignore", over="ignore"):
        return array.astype(want)


# --- image inputs ---------------------------------------------------------------------------

# colorSpace -> (name, the PIL mode MLModel.predict requires for it)
COLOR_SPACES = {10: ("GRAYSCALE", "L"), 20: ("RGB", "RGB"), 30: ("BGR", "RGB"),
                40: ("GRAYSCALE_FLOAT16", "F")}


def image_pixels(model_name, input_name, value, image_type):
    """A PIL image for an image input -> float32 [1, C, H, W] of its pixel values (0..255 for
    8-bit images), channels in the declared order (BGR reverses RGB). Any preprocessing
    (scale, bias) is the model's: in-graph in an ML Program, ``preprocessing`` in a
    NeuralNetwork."""
    space, mode = COLOR_SPACES.get(image_type.colorSpace, (None, None))
    if space is None:
        raise ModelFileError("{}: image input {!r} declares color space {}, which Core ML does "
                             "not define".format(model_name, input_name, image_type.colorSpace))
    if not (hasattr(value, "mode") and hasattr(value, "size")):
        raise InputError("{}: input {!r} is an image input ({}): pass a PIL image of mode {!r}, "
                         "not {}".format(model_name, input_name, space, mode,
                                         type(value).__name__))
    if value.mode != mode:
        raise InputError("{}: input {!r} is an image input ({}): it takes PIL mode {!r}, not "
                         "{!r}".format(model_name, input_name, space, mode, value.mode))
    width, height = value.size
    if not _image_size_allowed(image_type, width, height):
        raise InputError("{}: image input {!r} is {}x{} (width x height); the model takes "
                         "{}".format(model_name, input_name, width, height,
                                     _image_sizes_text(image_type)))
    pixels = np.asarray(value, dtype=np.float32)
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    if space == "BGR":
        pixels = pixels[::-1]
    return np.ascontiguousarray(pixels[None])


def _image_size_allowed(image_type, width, height):
    flexibility = image_type.WhichOneof("SizeFlexibility")
    if flexibility == "enumeratedSizes":
        return any((s.width, s.height) == (width, height) for s in image_type.enumeratedSizes.sizes)
    if flexibility == "imageSizeRange":
        ranges = image_type.imageSizeRange
        return _in_range(width, ranges.widthRange) and _in_range(height, ranges.heightRange)
    return (width, height) == (image_type.width, image_type.height)


def _in_range(size, size_range):
    return size >= size_range.lowerBound and (size_range.upperBound < 0
                                              or size <= size_range.upperBound)


def _image_sizes_text(image_type):
    flexibility = image_type.WhichOneof("SizeFlexibility")
    if flexibility == "enumeratedSizes":
        return " or ".join("{}x{}".format(s.width, s.height) for s in image_type.enumeratedSizes.sizes)
    if flexibility == "imageSizeRange":
        ranges = image_type.imageSizeRange
        return "width {}, height {}".format(_range_text(ranges.widthRange),
                                            _range_text(ranges.heightRange))
    return "{}x{}".format(image_type.width, image_type.height)


def _range_text(size_range):
    upper = size_range.upperBound
    return "{}..{}".format(size_range.lowerBound, upper if upper >= 0 else "inf")


# --- flexible multi-array inputs ------------------------------------------------------------

def check_declared_shape(model_name, input_name, shape, array_type):
    """InputError naming the input and the shapes it takes, unless ``shape`` is one the
    description's multiArrayType allows: its enumeratedShapes, its shapeRange (upper bound
    -1: unbounded) or its fixed shape (an ML Program function's input may leave flexible dims
    unknown; the description says what Core ML accepts)."""
    check_allowed_shape(model_name, input_name, shape, allowed_shapes(array_type))


def check_allowed_shape(model_name, input_name, shape, allowed):
    """``check_declared_shape`` with the type's ``allowed_shapes`` worked out already."""
    if allowed and not any(_fits(shape, s) for s in allowed):
        raise InputError("{}: input {!r} has shape {}; the model takes {}".format(
            model_name, input_name, list(shape), " or ".join(_shape_text(s) for s in allowed)))


def allowed_shapes(array_type):
    """Shapes as lists; a dim is an int or a (lower, upper) range (upper -1: unbounded)."""
    which = array_type.WhichOneof("ShapeFlexibility")
    if which == "enumeratedShapes":
        shapes = []
        for s in array_type.enumeratedShapes.shapes:
            if list(s.shape) not in shapes:
                shapes.append(list(s.shape))
        return shapes
    if which == "shapeRange":
        return [[(r.lowerBound, r.upperBound) if r.lowerBound != r.upperBound else r.lowerBound
                 for r in array_type.shapeRange.sizeRanges]]
    return [list(array_type.shape)] if len(array_type.shape) else []


def _fits(given, shape):
    if len(given) != len(shape):
        return False
    for size, dim in zip(given, shape):
        if isinstance(dim, tuple):
            if size < dim[0] or (dim[1] >= 0 and size > dim[1]):
                return False
        elif size != dim:
            return False
    return True


def _shape_text(shape):
    return "[" + ", ".join("{}..{}".format(d[0], d[1] if d[1] >= 0 else "inf") if isinstance(d, tuple)
                           else str(d) for d in shape) + "]"
