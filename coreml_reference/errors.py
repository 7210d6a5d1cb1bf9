"""Errors of the reference evaluator: each names what went wrong and where."""

from bad_input import BadInput


class EvaluatorError(BadInput):
    """Base class: the model cannot be evaluated as asked."""


class ModelFileError(EvaluatorError):
    """Missing, truncated or corrupt model file, or a spec that is not a neural network."""


class InputError(EvaluatorError):
    """A missing input, or one of the wrong shape or dtype."""


class UnsupportedError(EvaluatorError):
    """A layer / op type the evaluator does not implement, or (``what``) a parameter value
    of a layer / op it does implement."""

    def __init__(self, kind, type_name, layer_name, model_path=None, what=None):
        where = " in {}".format(model_path) if model_path else ""
        if what is None:
            message = "unsupported {} type {!r} (layer {!r}){}".format(kind, type_name, layer_name, where)
        else:
            message = "{} {} {!r}{}: unsupported {}".format(type_name, kind, layer_name, where, what)
        EvaluatorError.__init__(self, message)
        self.type_name = type_name
        self.layer_name = layer_name


class ShapeError(EvaluatorError):
    """Core ML would reject these shapes (it does not broadcast like numpy)."""


class InvalidModelError(ShapeError):
    """Core ML would reject this model: a layer / op reads a blob no input or earlier layer
    produces, kernel or channel counts that do not fit its input, a layer type the model's
    specification version lacks. Names the layer / op (``type_name``, ``layer_name``).

    A ShapeError, so that every caller that reports ShapeError as "Core ML would reject it"
    reports these too; ``UnsupportedError`` stays for what the evaluator itself lacks."""

    def __init__(self, message, type_name=None, layer_name=None, model_path=None, kind="layer"):
        if type_name is not None:
            where = " in {}".format(model_path) if model_path else ""
            message = "{} {} {!r}{}: {}".format(type_name, kind, layer_name, where, message)
        ShapeError.__init__(self, message)
        self.detail = message
        self.type_name = type_name
        self.layer_name = layer_name

    def at(self, type_name, layer_name, model_path=None, kind="layer"):
        """This error, naming the layer / op it happened in (if it does not yet)."""
        if self.layer_name is not None:
            return self
        return InvalidModelError(self.detail, type_name, layer_name, model_path, kind)


class LayerError(EvaluatorError):
    """A layer / op failed; wraps the cause with the layer's type and name."""

    def __init__(self, type_name, layer_name, cause, model_path=None):
        where = " in {}".format(model_path) if model_path else ""
        EvaluatorError.__init__(self, "{} layer {!r}{}: {}".format(type_name, layer_name, where, cause))
        self.type_name = type_name
        self.layer_name = layer_name
        self.cause = cause


class RuntimeCheckError(EvaluatorError):
    """A check the model itself asks for failed on these inputs (scatter's
    ``validate_indices``): Core ML's prediction fails there too."""
