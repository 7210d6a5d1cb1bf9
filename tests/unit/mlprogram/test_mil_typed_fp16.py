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


# --- exact ops: the runner skips rounding their results (registry ``exact=True``) ------------

def _fp16_values(shape, seed=0):
    """float32 arrays holding float16 values, as float16 variables reach op functions;
    spread over float16's range, subnormals, signed zeros and inf included."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * np.float32(1000.0)
    flat = x.reshape(-1)
    flat[:5] = [6.0e-8, -0.0, 65504.0, -np.inf, 3.1e-5]
    return x.astype(np.float16).astype(np.float32)


# One call per exact op: keyword arguments of float16 values (and int parameters).
EXACT_SAMPLES = {
    "relu": lambda x: dict(x=x),
    "relu6": lambda x: dict(x=x),
    "clip": lambda x: dict(x=x, alpha=np.float32(-2.5), beta=np.float32(7.0)),
    "max_pool": lambda x: dict(x=x, kernel_sizes=np.array([2, 2]), strides=np.array([1, 2]),
                               pad_type="custom", pad=np.array([1, 0, 1, 1])),
    "identity": lambda x: dict(x=x),
    "upsample_nearest_neighbor": lambda x: dict(x=x, scale_factor_height=2,
                                                scale_factor_width=3),
    "reshape": lambda x: dict(x=x, shape=np.array([2, -1])),
    "flatten2d": lambda x: dict(x=x, axis=2),
    "squeeze": lambda x: dict(x=x[:1], axes=np.array([0])),
    "expand_dims": lambda x: dict(x=x, axes=np.array([1])),
    "transpose": lambda x: dict(x=x, perm=np.array([0, 2, 3, 1])),
    "tile": lambda x: dict(x=x, reps=np.array([1, 2, 1, 2])),
    "concat": lambda x: dict(values=[x, x[:, :2]], axis=1),
    "stack": lambda x: dict(values=[x, -x], axis=0),
    "split": lambda x: dict(x=x, axis=1, num_splits=2),
    "slice_by_index": lambda x: dict(x=x, begin=np.array([0, 1, 0, 0]),
                                     end=np.array([1, 4, 6, 8]), stride=np.array([1, 2, 1, 3])),
    "slice_by_size": lambda x: dict(x=x, begin=np.array([0, 0, 1, 1]),
                                    size=np.array([1, 2, 3, -1])),
    "gather": lambda x: dict(x=x, indices=np.array([3, 0, 3]), axis=1),
    "gather_along_axis": lambda x: dict(x=x, indices=np.zeros((2, 4, 6, 8), np.int32) + 1,
                                        axis=1),
    "pad": lambda x: dict(x=x, pad=np.array([1, 2, 0, 3]), mode="constant",
                          constant_val=np.float32(-1.5)),
    "reverse": lambda x: dict(x=x, axes=np.array([1, 3])),
    "space_to_depth": lambda x: dict(x=x, block_size=2),
    "depth_to_space": lambda x: dict(x=x, block_size=2),
    "pixel_shuffle": lambda x: dict(x=x, upscale_factor=2),
}


def _ctx():
    from types import SimpleNamespace
    return SimpleNamespace(shape_error=ValueError, out_shape=lambda i=0: None,
                           out_dtype=lambda i=0: np.float16, op_type="", op_name="")


def test_every_exact_op_returns_float16_values_for_float16_inputs():
    from coreml_reference.mlprogram.registry import OPS
    exact = sorted(name for name, opdef in OPS.items() if opdef.exact)
    assert exact == sorted(EXACT_SAMPLES), "give each exact op a sample call here"
    x = _fp16_values((2, 4, 6, 8))
    for name in exact:
        results = OPS[name].fn(_ctx(), **EXACT_SAMPLES[name](x))
        for result in results if isinstance(results, (list, tuple)) else [results]:
            result = np.asarray(result, dtype=np.float32)
            assert result.size, name
            as16 = result.astype(np.float16).astype(np.float32)
            np.testing.assert_array_equal(result, as16, err_msg=name)


def test_an_arithmetic_op_is_not_exact():
    from coreml_reference.mlprogram.registry import OPS
    assert not OPS["add"].exact and not OPS["avg_pool"].exact and not OPS["conv"].exact


def test_exact_ops_between_fp16_arithmetic_give_numpy_float16s_numbers(tmp_path):
    """relu and reshape on float16 variables (results not rounded again) around a float16
    multiply (rounded): the same numbers as numpy's float16 op by op."""
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.TensorSpec(shape=(64,), dtype=types.fp32)],
                opset_version=ct.target.iOS16)
    def prog(x):
        h = mb.cast(x=x, dtype="fp16")
        r = mb.relu(x=h)
        m = mb.mul(x=r, y=np.float16(1.1))
        t = mb.reshape(x=m, shape=[8, 8])
        return mb.cast(x=mb.relu(x=t), dtype="fp32", name="y")
    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                       pass_pipeline=ct.PassPipeline.EMPTY)
    path = str(tmp_path / "relu16.mlpackage")
    model.save(path)
    x = np.random.default_rng(3).standard_normal(64).astype(np.float32) * 50
    got = coreml_reference.predict(path, {"x": x})["y"]
    h = x.astype(np.float16)
    want = np.maximum(np.maximum(h, np.float16(0)) * np.float16(1.1), np.float16(0))
    np.testing.assert_array_equal(got, want.reshape(8, 8).astype(np.float32))
