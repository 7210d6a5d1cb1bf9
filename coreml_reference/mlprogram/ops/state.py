"""MIL state ops (iOS 18): a state input is bound to a ``coreml_reference.states.StateRef``.

``coreml_update_state`` is coremltools' in-memory op; a saved program holds ``write_state``
followed by ``read_state`` in its place. Both forms are evaluated.
"""
from __future__ import annotations

from coreml_reference.mlprogram.registry import register
from coreml_reference.states import StateRef


def _ref(ctx, value, key):
    if not isinstance(value, StateRef):
        raise ctx.shape_error("input {!r} is not a state (got {})".format(key, type(value).__name__))
    return value


@register("read_state")
def read_state(ctx, input):
    return _ref(ctx, input, "input").read()


@register("write_state")
def write_state(ctx, input, data):
    _ref(ctx, input, "input").write(data)
    return ()


@register("coreml_update_state")
def coreml_update_state(ctx, state, value):
    ref = _ref(ctx, state, "state")
    ref.write(value)
    return ref.read()
