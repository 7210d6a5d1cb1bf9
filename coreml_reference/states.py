"""State that persists between predictions of a stateful model (Core ML spec 9, iOS 18).

    >>> s = coreml_reference.new_state("model.mlpackage")
    >>> for x in frames:
    ...     y = coreml_reference.predict("model.mlpackage", {"x": x}, state=s)

As ``MLModel.make_state()`` gives, a new state holds one zeroed buffer per state the model
declares (``description.state``), stored in the declared type: float16 for Core ML states
(coremltools: "Core ML only supports fp16 states"). The ML Program ops ``read_state`` and
``write_state`` (what coremltools saves for its ``coreml_update_state``) read and write these
buffers through a ``StateRef`` bound to the function's state inputs.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from coreml_reference.dtypes import ARRAY_DTYPES
from coreml_reference.errors import InputError, ModelFileError


class State(object):
    """The buffers of one model's states, by name (numpy arrays in the declared dtype)."""

    def __init__(self, model_name, buffers):
        self.model_name = model_name
        self.buffers = buffers            # OrderedDict name -> np.ndarray

    def __repr__(self):
        return "State({})".format(", ".join("{}: {} {}".format(k, list(v.shape), v.dtype)
                                            for k, v in self.buffers.items()))

    def ref(self, name):
        if name not in self.buffers:
            raise InputError("{}: the state given has no buffer {!r} (it holds {}); make it with "
                             "new_state(model) for this model".format(
                                 self.model_name, name, list(self.buffers) or "none"))
        return StateRef(self, name)


class StateRef(object):
    """What a state input of the program is bound to: a handle, not a value."""

    __slots__ = ("state", "name")

    def __init__(self, state, name):
        self.state = state
        self.name = name

    def read(self):
        return self.state.buffers[self.name].copy()

    def write(self, value):
        buf = self.state.buffers[self.name]
        value = np.asarray(value)
        if value.shape != buf.shape:
            raise ValueError("writes shape {} into state {!r} of shape {}".format(
                list(value.shape), self.name, list(buf.shape)))
        with np.errstate(over="ignore", invalid="ignore"):
            buf[...] = value.astype(buf.dtype)


def declared_states(spec):
    """[(name, shape, numpy dtype)] of the states the model's description declares."""
    found = []
    for feature in getattr(spec.description, "state", []):
        wrapped = feature.type.stateType
        if wrapped.WhichOneof("Type") != "arrayType":
            raise ModelFileError("state {!r} wraps no array type".format(feature.name))
        array = wrapped.arrayType
        dtype = ARRAY_DTYPES.get(array.dataType)
        if dtype is None:
            raise ModelFileError("state {!r} has array data type {}, which no Core ML state "
                                 "takes".format(feature.name, array.dataType))
        found.append((feature.name, tuple(int(d) for d in array.shape), dtype))
    return found


def new_state(loaded):
    """A zeroed State for the model (``coreml_reference.load``'s result)."""
    buffers = OrderedDict((name, np.zeros(shape, dtype))
                          for name, shape, dtype in declared_states(loaded.spec))
    return State(loaded.name, buffers)


def check_state(loaded, state):
    """``state`` when it fits the model; a fresh one when None (one call of a fresh model)."""
    if state is None:
        return new_state(loaded)
    if not isinstance(state, State):
        raise InputError("state must come from coreml_reference.new_state(model), not {}".format(
            type(state).__name__))
    for name, shape, dtype in declared_states(loaded.spec):
        buf = state.buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            raise InputError("{}: the state given does not fit: the model declares {!r} as {} {}"
                             .format(loaded.name, name, list(shape), np.dtype(dtype).name))
    return state
