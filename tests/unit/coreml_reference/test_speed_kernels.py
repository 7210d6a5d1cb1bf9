"""The evaluator's speed paths compute what the slow ones did: float16 rounding in float32
(bit for bit ``astype(float16).astype(float32)``) and back to float16 by bits, constant and
reflection padding (``np.pad``), products with a per-product BLAS thread count
(``np.matmul``), an fp16-typed program's float16 values held in float32 (trace and outputs
still float16), depthwise convolution over whole rows (explicit loops; the per-channel einsum
bit for bit), columns copied position by position (tap by tap, bit for bit), clip in one pass
and sigmoid with one division (bit for bit the formulas they replace)."""
import itertools
import os

import numpy as np
import pytest

from coreml_reference import blas
from coreml_reference.kernels import pad_constant, round_to_float16


def _slow(x):
    with np.errstate(over="ignore"):
        return x.astype(np.float16).astype(np.float32)


def _same_bits(a, b):
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    return np.array_equal(nan_a, nan_b) and np.array_equal(
        a.view(np.uint32)[~nan_a], b.view(np.uint32)[~nan_b])


def test_round_to_float16_every_half_value_and_every_tie():
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
    finite = np.sort(halves[np.isfinite(halves)])
    ties = ((finite[1:].astype(np.float64) + finite[:-1]) / 2).astype(np.float32)
    up, down = np.float32(np.inf), -np.float32(np.inf)
    x = np.concatenate([halves, ties, np.nextafter(ties, up), np.nextafter(ties, down),
                        np.nextafter(finite, up), np.nextafter(finite, down),
                        np.array([np.inf, -np.inf, np.nan, 65504, 65519.996, 65520, -65520,
                                  1e30, -1e-30, 0.0, -0.0, 1e-45, -1e-45], np.float32)])
    assert _same_bits(round_to_float16(x), _slow(x))


def test_round_to_float16_random_bit_patterns_and_layouts():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 1 << 32, 1 << 20, dtype=np.uint64).astype(np.uint32).view(np.float32)
    assert _same_bits(round_to_float16(x), _slow(x))
    y = rng.standard_normal((64, 96)).astype(np.float32)[:, ::3] * 1e3   # not contiguous
    assert _same_bits(round_to_float16(y), _slow(y))
    assert round_to_float16(np.float32(1 / 3)) == np.float32(np.float16(1 / 3))
    assert round_to_float16(np.array([1 / 3])).dtype == np.float64      # other dtypes: casts


@pytest.mark.parametrize("widths", [[(0, 0), (1, 2)], [(2, 0), (0, 3)], [(0, 0), (0, 0)]])
def test_pad_constant_is_np_pad(widths):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    got = pad_constant(x, widths, np.float32(-1.5))
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, np.pad(x, widths, constant_values=np.float32(-1.5)))


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 4, 2, 2), (3, 4), (1, 1, 6, 1)])
def test_pad_reflect_is_np_pad_for_every_width_it_allows(shape):
    from coreml_reference.kernels import pad_reflect
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    h, w = shape[-2:]
    for top, bottom, left, right in itertools.product(range(h), range(h), range(w), range(w)):
        expected = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)],
                          mode="reflect")
        np.testing.assert_array_equal(pad_reflect(x, top, bottom, left, right), expected)


def test_pad_constant_negative_widths_fail_as_np_pad():
    with pytest.raises(ValueError):
        pad_constant(np.zeros((2, 2), np.float32), [(0, 0), (-1, 0)])


@pytest.mark.parametrize("busy", [False, True])
@pytest.mark.parametrize("shapes", [((5, 7), (7, 3)), ((2, 1, 64, 32), (1, 3, 32, 16)),
                                    ((7,), (7, 4)), ((4, 7), (7,)), ((300, 300), (300, 300))])
def test_blas_matmul_is_np_matmul_and_restores_threads(shapes, busy, monkeypatch):
    # OpenBLAS's last bits depend on its thread count: compare with np.matmul on the count
    # matmul chose, quiet or busy machine alike (the load is pinned, not read).
    monkeypatch.setattr(blas, "_busy", lambda: busy)
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    before = blas.configured_threads()
    got = blas.matmul(a, b)
    assert blas.configured_threads() == before
    lib = blas._library()
    if lib is None:
        np.testing.assert_array_equal(got, np.matmul(a, b))
        return
    lib["set"](blas.threads_for(blas.macs_of(a.shape, b.shape)))
    try:
        expected = np.matmul(a, b)
    finally:
        lib["set"](before)
    np.testing.assert_array_equal(got, expected)


def test_blas_small_products_run_on_one_thread():
    if blas.configured_threads() is None:
        pytest.skip("numpy's BLAS is not OpenBLAS")
    assert blas.threads_for(blas.SMALL_MACS - 1) == 1
    assert blas.macs_of((2, 1, 64, 32), (1, 3, 32, 16)) == 6 * 64 * 32 * 16


def test_blas_matmul_shape_errors_are_numpy_errors():
    with pytest.raises(ValueError):
        blas.matmul(np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32))


def _fp16_program():
    ct = pytest.importorskip("coremltools")
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.TensorSpec(shape=(4, 300), dtype=types.fp32)],
                opset_version=ct.target.iOS16)
    def prog(x):
        h = mb.cast(x=x, dtype="fp16")
        w = mb.const(val=np.linspace(-2, 2, 300 * 8).reshape(8, 300).astype(np.float16))
        y = mb.linear(x=h, weight=w)
        y = mb.mul(x=y, y=np.float16(10000.0))         # past float16's range: inf
        return mb.cast(x=y, dtype="fp32")
    return ct.convert(prog, convert_to="mlprogram", compute_precision=ct.precision.FLOAT16,
                      minimum_deployment_target=ct.target.iOS16)


def test_fp16_program_values_stay_float16_for_trace_and_match_the_casts(tmp_path):
    import coreml_reference
    model = _fp16_program()
    path = str(tmp_path / "m.mlpackage")
    model.save(path)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 300)).astype(np.float32)
    seen = {}
    out = coreml_reference.predict(path, {"x": x},
                                   trace=lambda name, op, value, layer: seen.update({name: value}))
    assert any(np.asarray(v).dtype == np.float16 for v in seen.values())
    for value in seen.values():        # every traced value of a tensor as declared, not float32
        assert not (isinstance(value, np.ndarray) and value.dtype == np.float32
                    and value.size == 8 * 300)
    h = x.astype(np.float16).astype(np.float32)
    w = np.linspace(-2, 2, 300 * 8).reshape(8, 300).astype(np.float16).astype(np.float32)
    y = _slow(_slow(h @ w.T) * np.float32(10000.0))
    got = next(iter(out.values()))
    assert np.isinf(y).any()
    np.testing.assert_array_equal(got, y)


@pytest.mark.parametrize("runnable, load, busy", [
    (2, 0.5, False),      # this thread and a spinning worker of ours: the cores suffice
    (3, 0.5, True),       # a new load, before the 1-minute average has risen
    (1, 3.0, True),       # a load that has lasted, sampled between its bursts
    (1, 2.9, False)])
def test_busy_reads_the_runnable_threads_now_and_the_load_average(runnable, load, busy,
                                                                  monkeypatch):
    monkeypatch.setattr(blas.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(blas, "_runnable", lambda: runnable)
    monkeypatch.setattr(blas, "_load_average", lambda: load)
    monkeypatch.setitem(blas._state, "checked", -1e9)
    assert blas._busy() is busy
    # read at most every LOAD_CHECK_SECONDS: a change within that keeps the last answer
    monkeypatch.setattr(blas, "_runnable", lambda: 0 if busy else 9)
    assert blas._busy() is busy


def test_runnable_threads_are_read_from_proc_loadavg():
    if not os.path.exists("/proc/loadavg"):
        pytest.skip("no /proc/loadavg")
    assert blas._runnable() >= 1            # this thread is running while it reads


def _depthwise_loops(x, w, strides, pads, dilations):
    """Depthwise cross-correlation by explicit loops over taps, in float64."""
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + list(pads))
    kernel = w.shape[2:]
    outs = [(xp.shape[2 + i] - (kernel[i] - 1) * dilations[i] - 1) // strides[i] + 1
            for i in range(len(kernel))]
    y = np.zeros(x.shape[:2] + tuple(outs))
    for tap in np.ndindex(*kernel):
        index = (slice(None), slice(None)) + tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(tap, dilations, outs, strides))
        y += xp[index] * w[(slice(None), 0) + tap][(slice(None),) + (None,) * len(kernel)]
    return y


@pytest.mark.parametrize("shape, kernel, strides, pads, dilations", [
    ((2, 6, 9, 11), (3, 3), (1, 1), [(1, 1), (1, 1)], (1, 1)),     # a row as one run
    ((1, 5, 9, 11), (3, 3), (2, 1), [(0, 1), (2, 0)], (1, 2)),     # one run, dilated
    ((1, 5, 9, 11), (3, 3), (1, 2), [(1, 1), (1, 1)], (1, 1)),     # stride on the row: per channel
    ((1, 4, 40), (5,), (1,), [(2, 2)], (1,)),                      # 1-d
    ((1, 3, 4, 5, 6), (2, 3, 3), (1, 1, 1), [(0, 1), (1, 1), (1, 1)], (1, 1, 1)),   # 3-d
])
def test_depthwise_runs_and_per_channel_einsum_give_the_same_bits(shape, kernel, strides, pads,
                                                                   dilations, monkeypatch):
    from coreml_reference import kernels
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((shape[1], 1) + kernel).astype(np.float32)
    bias = rng.standard_normal(shape[1]).astype(np.float32)
    plan = kernels.ConvPlan(x.shape, x.dtype, w, bias, strides, pads, dilations, shape[1])
    got = plan(x)
    np.testing.assert_allclose(got, _depthwise_loops(x, w, strides, pads, dilations)
                               + bias[(slice(None),) + (None,) * len(kernel)],
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(plan(x), got)                    # a plan runs again alike
    monkeypatch.setattr(kernels, "TILE_LIMIT", 0)                  # one run per channel row
    assert _same_bits(kernels.conv_nd(x, w, bias, strides, pads, dilations, shape[1]), got)


@pytest.mark.parametrize("shape, kernel, strides, pads, groups", [
    ((1, 1, 2000), (256,), (64,), [(128, 128)], 1),          # an STFT-like 1-d frame product
    ((2, 4, 9, 12), (3, 7), (1, 2), [(1, 1), (0, 3)], 2),     # grouped, taps wider than rows
    ((1, 6, 5, 5), (5, 5), (1, 1), [(0, 0), (0, 0)], 3),      # one output position
])
def test_columns_by_position_are_the_columns_by_tap_bit_for_bit(shape, kernel, strides, pads,
                                                                  groups, monkeypatch):
    from coreml_reference import kernels
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((groups * 2, shape[1] // groups) + kernel).astype(np.float32)
    plan = kernels.ConvPlan(x.shape, x.dtype, w, None, strides, pads, None, groups)
    assert plan.run == plan._im2col and plan.by_position
    got = plan(x)
    conv = getattr(torch.nn.functional, "conv{}d".format(len(kernel)))
    padded = np.pad(x, [(0, 0), (0, 0)] + pads)
    np.testing.assert_allclose(got, conv(torch.from_numpy(padded), torch.from_numpy(w),
                                         stride=strides, groups=groups).numpy(),
                               rtol=1e-4, atol=1e-4)
    monkeypatch.setattr(kernels, "_columns_by_position", lambda *_: False)
    by_tap = kernels.ConvPlan(x.shape, x.dtype, w, None, strides, pads, None, groups)
    assert not by_tap.by_position
    assert _same_bits(by_tap(x), got)


@pytest.mark.parametrize("low, high", [(0.0, 6.0), (0.0, np.inf), (-1.0, 1.0), (0.0, 0.0),
                                       (-0.0, 6.0), (0.0, -1.0), (2.0, 1.0)])
def test_clip_is_max_then_min_bit_for_bit(low, high):
    from coreml_reference.activations import clip
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((2, 48, 10, 9)) * 4).astype(np.float32)
    x.flat[:8] = [np.nan, -0.0, 0.0, 6.0, -1.0, np.inf, -np.inf, 1.0]
    low, high = np.float32(low), np.float32(high)
    # contiguous, a view, and a small one (3 x 2 planes, as PANNs' last layers)
    for layout in (x, x.transpose(0, 2, 3, 1), x[:1, :, :3, :2]):
        assert _same_bits(clip(layout, low, high), np.minimum(np.maximum(layout, low), high))


def test_half_values_to_float16_is_the_cast_for_every_half_value_and_layout():
    from coreml_reference.kernels import half_values_to_float16
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    finite = halves[np.isfinite(halves)].astype(np.float32)              # subnormals, +-0
    got = half_values_to_float16(finite)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got.view(np.uint16), finite.astype(np.float16).view(np.uint16))
    grid = finite[:60000].reshape(3, 100, 200)
    for layout in (grid, grid.transpose(2, 0, 1), grid[:, ::2]):        # not contiguous too
        np.testing.assert_array_equal(half_values_to_float16(layout).view(np.uint16),
                                      layout.astype(np.float16).view(np.uint16))
    special = np.concatenate([finite[:1000], np.array([np.inf, -np.inf, np.nan], np.float32)])
    np.testing.assert_array_equal(half_values_to_float16(special).view(np.uint16),
                                  special.astype(np.float16).view(np.uint16))


def test_blas_names_the_kernels_openblas_runs():
    name = blas.kernels_name()
    if blas.configured_threads() is None:
        pytest.skip("numpy's BLAS is not OpenBLAS here")
    assert name and name.isprintable()
    chosen = os.environ.get("OPENBLAS_CORETYPE")
    if chosen:                                     # this machine's environment sets it
        assert name.lower() == chosen.lower()


def test_sigmoid_divides_as_the_two_sided_formula_bit_for_bit():
    from coreml_reference.activations import sigmoid
    rng = np.random.default_rng(3)
    x = np.concatenate([(rng.standard_normal(5039) * 20).astype(np.float32),
                        np.array([0.0, -0.0, 88.7, -88.7, 104.0, -104.0, np.inf, -np.inf,
                                  np.nan, 1e-45, -1e-45], np.float32)])
    e = np.exp(-np.abs(x))
    expected = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)
    got = sigmoid(x)
    assert got.dtype == np.float32 and _same_bits(got, expected)
    assert _same_bits(sigmoid(x.reshape(50, -1)[:, ::2]), expected.reshape(50, -1)[:, ::2])
