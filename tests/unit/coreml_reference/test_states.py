"""coreml_reference.states: a stateful ML Program (iOS 18) keeps its state across calls.

The models are built here with coremltools' MIL builder; the expected values are numpy's,
computed independently (an accumulator: state += x, output = state * 2).
"""
from __future__ import annotations

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")

import coreml_reference  # noqa: E402
from coreml_reference.states import State  # noqa: E402


def _accumulator(tmp_path, saved=True):
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.TensorSpec((1, 3), dtype=types.fp16),
                             mb.StateTensorSpec((1, 3), dtype=types.fp16)],
                opset_version=ct.target.iOS18)
    def prog(x, acc):
        total = mb.add(x=mb.read_state(input=acc), y=x)
        updated = mb.coreml_update_state(state=acc, value=total)
        return mb.mul(x=updated, y=np.float16(2.0))

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                       skip_model_load=True)
    if not saved:
        return model
    path = str(tmp_path / "acc.mlpackage")
    model.save(path)
    return path


def test_new_state_is_zeroed_float16_as_declared(tmp_path):
    state = coreml_reference.new_state(_accumulator(tmp_path))
    assert list(state.buffers) == ["acc"]
    assert state.buffers["acc"].dtype == np.float16
    assert state.buffers["acc"].shape == (1, 3)
    assert not state.buffers["acc"].any()


def test_state_carries_across_calls(tmp_path):
    path = _accumulator(tmp_path)
    state = coreml_reference.new_state(path)
    xs = [np.array([[1.0, 2.0, 3.0]], np.float16), np.array([[0.5, -1.0, 4.0]], np.float16),
          np.array([[10.0, 0.25, -2.0]], np.float16)]
    running = np.zeros((1, 3), np.float32)
    for x in xs:
        out = coreml_reference.predict(path, {"x": x}, state=state)
        running = running + x.astype(np.float32)
        (value,) = out.values()
        np.testing.assert_allclose(value, running * 2, rtol=1e-3)
        np.testing.assert_allclose(state.buffers["acc"], running, rtol=1e-3)


def test_saved_program_writes_then_reads_the_state(tmp_path):
    """coremltools saves coreml_update_state as write_state + read_state."""
    from coreml_reference.mlprogram.program import main_block
    loaded = coreml_reference.load(_accumulator(tmp_path))
    _, block = main_block(loaded)
    types_ = [op.type for op in block.operations]
    assert "write_state" in types_ and "read_state" in types_
    assert "coreml_update_state" not in types_


def test_without_a_state_each_call_starts_fresh(tmp_path):
    path = _accumulator(tmp_path)
    x = np.ones((1, 3), np.float16)
    first = coreml_reference.predict(path, {"x": x})
    second = coreml_reference.predict(path, {"x": x})
    for a, b in zip(first.values(), second.values()):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, 2.0)


def test_state_is_stored_in_float16(tmp_path):
    path = _accumulator(tmp_path)
    state = coreml_reference.new_state(path)
    coreml_reference.predict(path, {"x": np.full((1, 3), 1000.0, np.float16)}, state=state)
    coreml_reference.predict(path, {"x": np.full((1, 3), 0.1, np.float16)}, state=state)
    # 1000.1 is not a float16: the state holds the nearest one (1000.0).
    np.testing.assert_array_equal(state.buffers["acc"], np.float16(1000.0))


def test_a_state_of_another_model_is_rejected(tmp_path):
    path = _accumulator(tmp_path)
    wrong = State("other", {"acc": np.zeros((2, 3), np.float16)})
    with pytest.raises(coreml_reference.InputError, match="does not fit"):
        coreml_reference.predict(path, {"x": np.ones((1, 3), np.float16)}, state=wrong)


def test_a_model_without_states_has_an_empty_state(tmp_path):
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec((1, 3))])
    def prog(x):
        return mb.relu(x=x)
    model = ct.convert(prog, convert_to="mlprogram", skip_model_load=True)
    state = coreml_reference.new_state(model)
    assert state.buffers == {}
    out = coreml_reference.predict(model, {"x": -np.ones((1, 3), np.float32)}, state=state)
    assert all(not v.any() for v in out.values())
