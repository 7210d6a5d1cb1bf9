"""An fp16-typed ML Program runs *as typed*: float16 storage and a float16 result for every
op, with the casts where the program has them (``precision="fp32"``, the default, honours
the program's types; ``precision="fp16"`` is the device emulation on top). Expected values
come from numpy's float16 arithmetic, op by op, never from the evaluator."""
import numpy as np
import pytest

import coreml_reference

ct = pytest.importorskip("coremltools")


def typed_program(tmp_path):
    """fp32 input -> cast to fp16 -> mul, add, real_div, sub, sqrt in fp16 -> cast to fp32,
    kept exactly as written (no graph passes)."""
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.TensorSpec(shape=(4, 64), dtype=types.fp32)],
                opset_version=ct.target.iOS16)
    def prog(x):
        h = mb.cast(x=x, dtype="fp16")
        a = mb.mul(x=h, y=np.float16(3.3))
        b = mb.add(x=a, y=np.float16(1.1))
        c = mb.real_div(x=b, y=np.float16(0.7))
        d = mb.sub(x=c, y=mb.mul(x=h, y=h))
        e = mb.sqrt(x=mb.mul(x=d, y=d))
        return mb.cast(x=e, dtype="fp32", name="y")
    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                       pass_pipeline=ct.PassPipeline.EMPTY)
    path = str(tmp_path / "typed.mlpackage")
    model.save(path)
    return path


def numpy_fp16(x):
    """The same ops in numpy float16 (each numpy float16 op rounds its result to float16)."""
    h = x.astype(np.float16)
    d = (h * np.float16(3.3) + np.float16(1.1)) / np.float16(0.7) - h * h
    return np.sqrt(d * d).astype(np.float32)


def numpy_fp32(x):
    d = (x * np.float32(3.3) + np.float32(1.1)) / np.float32(0.7) - x * x
    return np.sqrt(d * d)


def test_fp16_program_runs_in_fp16_op_by_op(tmp_path):
    path = typed_program(tmp_path)
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32) * 4
    got = coreml_reference.predict(path, {"x": x})["y"]
    assert got.dtype == np.float32                   # the program's final cast
    np.testing.assert_array_equal(got, numpy_fp16(x))
    # and it is not float32 arithmetic in disguise:
    assert np.max(np.abs(got - numpy_fp32(x))) > 1e-3


def test_intermediates_are_float16(tmp_path):
    path = typed_program(tmp_path)
    x = np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)
    dtypes = {}
    coreml_reference.predict(path, {"x": x},
                             trace=lambda n, t, v, l=None: dtypes.setdefault(t, set()).add(np.asarray(v).dtype))
    for op in ("mul", "add", "real_div", "sub", "sqrt"):
        assert dtypes[op] == {np.dtype(np.float16)}, op


def test_fp16_emulation_of_a_typed_program_changes_nothing_inside(tmp_path):
    """The emulation rounds to float16 what is already float16: same result."""
    path = typed_program(tmp_path)
    x = np.random.default_rng(2).standard_normal((4, 64)).astype(np.float32)
    typed = coreml_reference.predict(path, {"x": x})["y"]
    emulated = coreml_reference.predict(path, {"x": x}, precision="fp16")["y"]
    np.testing.assert_array_equal(typed, emulated)
