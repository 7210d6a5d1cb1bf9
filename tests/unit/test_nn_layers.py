"""The NeuralNetwork half of the reference evaluator, layer by layer.

Each test builds a tiny spec with coremltools' NeuralNetworkBuilder and compares the
evaluator with an expectation computed here, independently, with numpy or torch.
Tolerances: fp32 — rtol 1e-5, atol 1e-5 (float32 summation-order differences only);
fp16 — atol/rtol 1e-2 of the output's scale (weights, inputs and every layer output are
rounded to float16, whose step is ~1e-3 relative; a few layers compound that).
"""
from __future__ import annotations

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")
torch = pytest.importorskip("torch")
F = torch.nn.functional

from coremltools.models import datatypes  # noqa: E402
from coremltools.models.neural_network import NeuralNetworkBuilder  # noqa: E402

import coreml_reference  # noqa: E402
from coreml_reference import (InputError, LayerError, ModelFileError, ShapeError,  # noqa: E402
                              UnsupportedError)

RNG = np.random.RandomState(0)
FP32 = dict(rtol=1e-5, atol=1e-5)
FP16_REL = 1e-2


def randn(*shape, scale=1.0):
    return (RNG.randn(*shape) * scale).astype(np.float32)


def network(inputs, build, outputs=("out",)):
    """A spec with the given {name: shape} inputs; build(builder) adds the layers."""
    builder = NeuralNetworkBuilder([(n, datatypes.Array(*s)) for n, s in inputs.items()],
                                   [(n, None) for n in outputs], disable_rank5_shape_mapping=True)
    build(builder)
    return builder.spec


def check(spec, feeds, expected, fp16=True, name="out"):
    """fp32 tight; fp16 within 1e-2 of the output's scale."""
    expected = np.asarray(expected, dtype=np.float32)
    got = coreml_reference.predict(spec, feeds)[name]
    assert got.shape == expected.shape, (got.shape, expected.shape)
    np.testing.assert_allclose(got, expected, **FP32)
    if fp16:
        got16 = coreml_reference.predict(spec, feeds, precision="fp16")[name]
        scale = max(1.0, float(np.max(np.abs(expected))))
        np.testing.assert_allclose(got16, expected, rtol=FP16_REL, atol=FP16_REL * scale)
    return got


def t(x):
    return torch.from_numpy(np.ascontiguousarray(x))


def n(x):
    return x.detach().numpy()


# ------------------------------------------------------------------------- convolution

def conv_spec(shape, w, b, stride=(1, 1), dilation=(1, 1), groups=1, pads=(0, 0, 0, 0),
              border="valid", deconv=False, output_shape=None):
    """w in the spec's layout: [C_out, C_in/g, kH, kW] (deconv [C_in, C_out/g, kH, kW])."""
    if deconv:
        kernel_channels, out_channels = w.shape[0], w.shape[1] * groups
        builder_w = w.transpose(2, 3, 0, 1)                       # H W C_in C_out/g
    else:
        out_channels, kernel_channels = w.shape[0], w.shape[1]
        builder_w = w.transpose(2, 3, 1, 0)                       # H W C_in/g C_out
    top, bottom, left, right = pads

    def build(nb):
        nb.add_convolution("conv", kernel_channels, out_channels, w.shape[2], w.shape[3],
                           stride[0], stride[1], border, groups, builder_w, b, b is not None,
                           is_deconv=deconv, output_shape=output_shape, input_name="x",
                           output_name="out", dilation_factors=list(dilation),
                           padding_top=top, padding_bottom=bottom, padding_left=left,
                           padding_right=right)
    return network({"x": shape}, build)


@pytest.mark.parametrize("case", [
    dict(c=3, o=4, k=(3, 3), stride=(1, 1), dilation=(1, 1), groups=1, pads=(1, 1, 1, 1)),
    dict(c=4, o=6, k=(3, 3), stride=(2, 2), dilation=(1, 1), groups=1, pads=(0, 1, 1, 0)),
    dict(c=4, o=4, k=(3, 3), stride=(1, 1), dilation=(2, 2), groups=1, pads=(2, 2, 2, 2)),
    dict(c=4, o=6, k=(3, 2), stride=(1, 2), dilation=(1, 1), groups=2, pads=(0, 0, 0, 0)),
    dict(c=6, o=6, k=(3, 3), stride=(1, 1), dilation=(1, 1), groups=6, pads=(1, 1, 1, 1)),
    dict(c=4, o=8, k=(3, 3), stride=(2, 1), dilation=(1, 2), groups=4, pads=(1, 1, 2, 2)),
    dict(c=1, o=5, k=(1, 16), stride=(1, 4), dilation=(1, 1), groups=1, pads=(0, 0, 0, 0)),
    dict(c=5, o=7, k=(1, 1), stride=(1, 1), dilation=(1, 1), groups=1, pads=(0, 0, 0, 0)),
], ids=["3x3", "stride2-asym-pad", "dilated", "grouped", "depthwise", "depthwise-x2",
        "1d-as-H1", "pointwise"])
def test_convolution_matches_torch(case):
    h, w_ = (1, 64) if case["k"][0] == 1 and case["c"] == 1 else (9, 11)
    x = randn(2, case["c"], h, w_)
    w = randn(case["o"], case["c"] // case["groups"], *case["k"], scale=0.3)
    b = randn(case["o"])
    top, bottom, left, right = case["pads"]
    xp = F.pad(t(x), (left, right, top, bottom))
    expected = F.conv2d(xp, t(w), t(b), stride=case["stride"], dilation=case["dilation"],
                        groups=case["groups"])
    spec = conv_spec(x.shape, w, b, case["stride"], case["dilation"], case["groups"], case["pads"])
    check(spec, {"x": x}, n(expected))


def test_convolution_same_padding_and_rank5():
    x = randn(1, 2, 3, 10, 7)                        # [Seq, B, C, H, W]: leading axes are batch
    w = randn(4, 3, 3, 3, scale=0.3)
    spec = conv_spec(x.shape, w, None, stride=(2, 2), border="same")
    # SAME, BOTTOM_RIGHT_HEAVY: H 10 -> 5 needs 1 row (bottom); W 7 -> 4 needs 2 (1 + 1)
    xp = F.pad(t(x.reshape(2, 3, 10, 7)), (1, 1, 0, 1))
    expected = n(F.conv2d(xp, t(w), stride=2)).reshape(1, 2, 4, 5, 4)
    check(spec, {"x": x}, expected)


def test_convolution_rejects_rank3_and_wrong_channels():
    w = randn(2, 3, 3, 3)
    with pytest.raises(ShapeError, match="rank >= 4"):
        coreml_reference.predict(conv_spec((3, 8, 8), w, None), {"x": randn(3, 8, 8)})
    spec = conv_spec((1, 4, 8, 8), w, None)
    with pytest.raises(ShapeError, match="4 channels.*'conv'|'conv'.*4 channels"):
        coreml_reference.predict(spec, {"x": randn(1, 4, 8, 8)})


@pytest.mark.parametrize("groups,stride,pads", [(1, (2, 2), (0, 0, 0, 0)), (2, (2, 1), (1, 1, 0, 0))])
def test_deconvolution_matches_conv_transpose(groups, stride, pads):
    x = randn(1, 4, 5, 6)
    w = randn(4, 6 // groups, 3, 3, scale=0.3)       # [C_in, C_out/g, kH, kW]
    b = randn(6)
    spec = conv_spec(x.shape, w, b, stride=stride, groups=groups, pads=pads, deconv=True)
    full = F.conv_transpose2d(t(x), t(w), t(b), stride=stride, groups=groups)
    top, bottom, left, right = pads
    expected = n(full)[:, :, top:full.shape[2] - bottom, left:full.shape[3] - right]
    check(spec, {"x": x}, expected)


# ----------------------------------------------------------------------------- pooling

def pool_spec(shape, kind, k, s, padding="VALID", pads=(0, 0, 0, 0), exclude=True, is_global=False):
    def build(nb):
        nb.add_pooling("pool", k[0], k[1], s[0], s[1], kind, padding, "x", "out",
                       exclude_pad_area=exclude, is_global=is_global, padding_top=pads[0],
                       padding_bottom=pads[1], padding_left=pads[2], padding_right=pads[3])
    return network({"x": shape}, build)


@pytest.mark.parametrize("kind,k,s,pads,exclude", [
    ("MAX", (2, 2), (2, 2), (0, 0, 0, 0), True),
    ("AVERAGE", (2, 2), (2, 2), (0, 0, 0, 0), True),
    ("MAX", (3, 3), (2, 1), (1, 1, 1, 1), True),
    ("AVERAGE", (3, 3), (1, 2), (1, 1, 1, 1), False),
    ("AVERAGE", (1, 3), (1, 1), (0, 0, 1, 1), True),
])
def test_pooling_valid_matches_torch(kind, k, s, pads, exclude):
    x = randn(2, 3, 7, 9)
    spec = pool_spec(x.shape, kind, k, s, pads=pads, exclude=exclude)
    if kind == "MAX":
        xp = F.pad(t(x), (pads[2], pads[3], pads[0], pads[1]), value=-np.inf)
        expected = F.max_pool2d(xp, k, s)
    else:
        xp = F.pad(t(x), (pads[2], pads[3], pads[0], pads[1]))
        expected = F.avg_pool2d(xp, k, s)
        if exclude:      # divide by real pixels only
            ones = F.pad(torch.ones(1, 1, 7, 9), (pads[2], pads[3], pads[0], pads[1]))
            expected = expected * (k[0] * k[1]) / (F.avg_pool2d(ones, k, s) * (k[0] * k[1]))
    check(spec, {"x": x}, n(expected))


@pytest.mark.parametrize("kind", ["MAX", "AVERAGE"])
def test_pooling_include_last_pixel_is_ceil_mode(kind):
    x = randn(1, 2, 8, 7)
    spec = pool_spec(x.shape, kind, (3, 3), (2, 2), padding="INCLUDE_LAST_PIXEL",
                     pads=(1, 1, 1, 1), exclude=False)
    if kind == "MAX":
        expected = F.max_pool2d(t(x), 3, 2, padding=1, ceil_mode=True)
    else:
        expected = F.avg_pool2d(t(x), 3, 2, padding=1, ceil_mode=True, count_include_pad=True)
    check(spec, {"x": x}, n(expected))


def test_pooling_same_and_global():
    x = randn(1, 2, 5, 6)
    spec = pool_spec(x.shape, "MAX", (3, 3), (2, 2), padding="SAME")
    # H 5 -> 3 needs 2 (1 + 1); W 6 -> 3 needs 1 (bottom/right heavy: 0 + 1)
    expected = F.max_pool2d(F.pad(t(x), (0, 1, 1, 1), value=-np.inf), 3, 2)
    check(spec, {"x": x}, n(expected))
    spec = pool_spec(x.shape, "AVERAGE", (3, 3), (1, 1), is_global=True)
    check(spec, {"x": x}, x.mean(axis=(2, 3), keepdims=True))


# ---------------------------------------------------------------------- normalisation

def test_batchnorm_and_instance_norm():
    x = randn(2, 3, 4, 5)
    gamma, beta, mean, var = randn(3), randn(3), randn(3), np.abs(randn(3)) + 0.5
    spec = network({"x": x.shape}, lambda nb: nb.add_batchnorm(
        "bn", 3, gamma, beta, mean, var, input_name="x", output_name="out", epsilon=1e-3))
    expected = F.batch_norm(t(x), t(mean), t(var), t(gamma), t(beta), eps=1e-3)
    check(spec, {"x": x}, n(expected))
    spec = network({"x": x.shape}, lambda nb: nb.add_batchnorm(
        "in", 3, gamma, beta, input_name="x", output_name="out", compute_mean_var=True,
        instance_normalization=True, epsilon=1e-5))
    expected = F.instance_norm(t(x), weight=t(gamma), bias=t(beta), eps=1e-5)
    check(spec, {"x": x}, n(expected))


def test_layer_norm_mvn_l2_lrn():
    x = randn(2, 3, 4, 5)
    gamma, beta = randn(4, 5), randn(4, 5)
    spec = network({"x": x.shape}, lambda nb: nb.add_layer_normalization(
        "ln", "x", "out", [4, 5], gamma, beta, eps=1e-5))
    check(spec, {"x": x}, n(F.layer_norm(t(x), [4, 5], t(gamma), t(beta), eps=1e-5)))
    spec = network({"x": x.shape}, lambda nb: nb.add_mvn("mvn", "x", "out", False, True, 1e-6))
    centred = x - x.mean(axis=(2, 3), keepdims=True)
    check(spec, {"x": x}, centred / np.sqrt((centred ** 2).mean(axis=(2, 3), keepdims=True) + 1e-6))
    spec = network({"x": x.shape}, lambda nb: nb.add_l2_normalize("l2", "x", "out", 1e-6))
    check(spec, {"x": x}, x / np.sqrt((x ** 2).sum(axis=(1, 2, 3), keepdims=True) + 1e-6))
    spec = network({"x": x.shape}, lambda nb: nb.add_lrn("lrn", "x", "out", 1e-2, 0.75, 3, 2.0))
    check(spec, {"x": x}, n(F.local_response_norm(t(x), 3, alpha=1e-2, beta=0.75, k=2.0)))


def test_softmax_and_softmax_nd():
    x = randn(2, 3, 4, 5, scale=3)
    spec = network({"x": x.shape}, lambda nb: nb.add_softmax("sm", "x", "out"))
    check(spec, {"x": x}, n(F.softmax(t(x), dim=-3)))
    spec = network({"x": x.shape}, lambda nb: nb.add_softmax_nd("sm", "x", "out", axis=-1))
    check(spec, {"x": x}, n(F.softmax(t(x), dim=-1)))


# ------------------------------------------------------------------------ activations

ACTIVATIONS = [
    ("RELU", None, lambda x: F.relu(x)),
    ("LEAKYRELU", [0.1], lambda x: F.leaky_relu(x, 0.1)),
    ("SIGMOID", None, torch.sigmoid),
    ("TANH", None, torch.tanh),
    ("SCALED_TANH", [1.5, 0.5], lambda x: 1.5 * torch.tanh(0.5 * x)),
    ("SOFTPLUS", None, F.softplus),
    ("SOFTSIGN", None, F.softsign),
    ("LINEAR", [2.0, -0.5], lambda x: 2.0 * x - 0.5),
    ("SIGMOID_HARD", [0.2, 0.5], lambda x: torch.clamp(0.2 * x + 0.5, 0, 1)),
    ("ELU", 0.7, lambda x: F.elu(x, 0.7)),
    ("THRESHOLDEDRELU", 0.3, lambda x: torch.where(x >= 0.3, x, torch.zeros_like(x))),
    ("PRELU", np.array([0.1, 0.2, 0.3], dtype=np.float32),
     lambda x: F.prelu(x, torch.tensor([0.1, 0.2, 0.3]))),
    ("PARAMETRICSOFTPLUS", [np.array([1.0, 2.0, 0.5], dtype=np.float32),
                            np.array([0.5, 1.0, 2.0], dtype=np.float32)],
     lambda x: torch.tensor([1.0, 2.0, 0.5]).reshape(3, 1, 1)
     * F.softplus(torch.tensor([0.5, 1.0, 2.0]).reshape(3, 1, 1) * x)),
]


@pytest.mark.parametrize("kind,params,reference", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation(kind, params, reference):
    x = randn(2, 3, 4, 5, scale=2)
    spec = network({"x": x.shape}, lambda nb: nb.add_activation("act", kind, "x", "out", params))
    check(spec, {"x": x}, n(reference(t(x))))


@pytest.mark.parametrize("mode,approximate", [("EXACT", "none"), ("TANH_APPROXIMATION", "tanh")])
def test_gelu(mode, approximate):
    x = randn(3, 7, scale=2)
    spec = network({"x": x.shape}, lambda nb: nb.add_gelu("g", "x", "out", mode))
    check(spec, {"x": x}, n(F.gelu(t(x), approximate=approximate)))


# ------------------------------------------------------------------- matrix products

@pytest.mark.parametrize("shape,out_shape", [((4, 6), (4, 5)), ((2, 3, 6), (2, 3, 5)),
                                             ((2, 6, 1, 1), (2, 5, 1, 1)),
                                             ((2, 3, 6, 1, 1), (2, 3, 5, 1, 1))])
def test_inner_product_ranks(shape, out_shape):
    x = randn(*shape)
    w, b = randn(5, 6), randn(5)
    spec = network({"x": shape}, lambda nb: nb.add_inner_product(
        "fc", w, b, 6, 5, True, "x", "out"))
    expected = (x.reshape(-1, 6) @ w.T + b).reshape(out_shape)
    check(spec, {"x": x}, expected)


def test_batched_matmul_weights_and_two_inputs():
    x = randn(2, 3, 6)
    w, b = randn(6, 4), randn(4)
    spec = network({"x": x.shape}, lambda nb: nb.add_batched_mat_mul(
        "mm", ["x"], "out", weight_matrix_rows=6, weight_matrix_columns=4, W=w, bias=b))
    check(spec, {"x": x}, x @ w + b)
    a, c = randn(2, 1, 3, 4), randn(5, 6, 4)
    spec = network({"a": a.shape, "c": c.shape}, lambda nb: nb.add_batched_mat_mul(
        "mm", ["a", "c"], "out", transpose_b=True))
    check(spec, {"a": a, "c": c}, np.matmul(a, np.swapaxes(c, -1, -2)))


def test_batched_matmul_rejects_mismatch():
    a, c = randn(3, 4), randn(5, 6)
    spec = network({"a": a.shape, "c": c.shape}, lambda nb: nb.add_batched_mat_mul("mm", ["a", "c"], "out"))
    with pytest.raises(ShapeError, match=r"\[3, 4\] and \[5, 6\]"):
        coreml_reference.predict(spec, {"a": a, "c": c})


# ------------------------------------------------------------------------ elementwise

@pytest.mark.parametrize("mode,reference", [("ADD", np.add), ("MULTIPLY", np.multiply),
                                            ("MAX", np.maximum), ("MIN", np.minimum),
                                            ("AVE", lambda a, b: (a + b) / 2)])
def test_old_elementwise_same_shape(mode, reference):
    a, b = randn(2, 3, 4, 5), randn(2, 3, 4, 5)
    spec = network({"a": a.shape, "b": b.shape},
                   lambda nb: nb.add_elementwise("e", ["a", "b"], "out", mode))
    check(spec, {"a": a, "b": b}, reference(a, b))


@pytest.mark.parametrize("other", [(2, 1, 1, 1), (2, 3, 1, 1), (2, 1, 4, 5)])
def test_old_average_allowed_broadcasts(other):
    a, b = randn(2, 3, 4, 5), randn(*other)
    spec = network({"a": a.shape, "b": b.shape}, lambda nb: nb.add_elementwise("e", ["a", "b"], "out", "AVE"))
    check(spec, {"a": a, "b": b}, (a + b) / 2)


@pytest.mark.parametrize("other", [(2, 3, 4, 1), (2, 3, 1, 5), (1, 3, 4, 5)])
def test_old_average_rejects_other_broadcasts(other):
    a, b = randn(2, 3, 4, 5), randn(*other)
    spec = network({"a": a.shape, "b": b.shape}, lambda nb: nb.add_elementwise("e", ["a", "b"], "out", "AVE"))
    with pytest.raises(ShapeError, match=r"cannot broadcast \[2, 3, 4, 5\] and"):
        coreml_reference.predict(spec, {"a": a, "b": b})


@pytest.mark.parametrize("mode,reference", [("ADD", np.add), ("MULTIPLY", np.multiply)])
@pytest.mark.parametrize("shapes", [((1,), (1, 3, 1)), ((2, 3, 4, 5), (2, 3, 4, 1)),
                                    ((1, 3, 4, 5), (2, 1, 1, 5))])
def test_old_add_and_multiply_broadcast_like_numpy(mode, reference, shapes):
    a, b = randn(*shapes[0]), randn(*shapes[1])
    spec = network({"a": a.shape, "b": b.shape}, lambda nb: nb.add_elementwise("e", ["a", "b"], "out", mode))
    check(spec, {"a": a, "b": b}, reference(a, b))


def test_old_add_rejects_shapes_numpy_rejects():
    a, b = randn(1, 1024, 3), randn(1, 1025, 2)
    spec = network({"a": a.shape, "b": b.shape}, lambda nb: nb.add_elementwise("e", ["a", "b"], "out", "ADD"))
    with pytest.raises(ShapeError, match=r"cannot broadcast \[1, 1024, 3\] and \[1, 1025, 2\]"):
        coreml_reference.predict(spec, {"a": a, "b": b})


def test_old_add_and_multiply_with_alpha():
    x = randn(3, 4)
    spec = network({"x": x.shape}, lambda nb: nb.add_elementwise("e", ["x"], "out", "ADD", alpha=2.5))
    check(spec, {"x": x}, x + 2.5)
    spec = network({"x": x.shape}, lambda nb: nb.add_elementwise("e", ["x"], "out", "MULTIPLY", alpha=-3))
    check(spec, {"x": x}, x * -3)


BROADCASTABLE = [("add", np.add), ("subtract", np.subtract), ("multiply", np.multiply),
                 ("divide", np.divide), ("max", np.maximum), ("min", np.minimum),
                 ("pow", np.power)]


@pytest.mark.parametrize("op,reference", BROADCASTABLE, ids=[o for o, _ in BROADCASTABLE])
def test_broadcastable_binary(op, reference):
    a, b = randn(2, 1, 4), randn(3, 1)
    if op == "pow":
        a = np.abs(a) + 0.5
    elif op == "divide":
        b = np.abs(b) + 0.5
    spec = network({"a": a.shape, "b": b.shape},
                   lambda nb: getattr(nb, "add_{}_broadcastable".format(op))("op", ["a", "b"], "out"))
    check(spec, {"a": a, "b": b}, reference(a, b))


def test_add_broadcastable_rejects_incompatible_shapes():
    a, b = randn(21, 1024), randn(20, 1025)
    spec = network({"a": a.shape, "b": b.shape}, lambda nb: nb.add_add_broadcastable("sum", ["a", "b"], "out"))
    with pytest.raises(ShapeError, match=r"cannot broadcast \[21, 1024\] and \[20, 1025\]") as info:
        coreml_reference.predict(spec, {"a": a, "b": b})
    assert "'sum'" in str(info.value)


def test_scale_and_bias_layers():
    x = randn(2, 3, 4, 5)
    s, b = randn(3), randn(1, 4, 5)
    spec = network({"x": x.shape}, lambda nb: nb.add_scale(
        "s", s, b, True, "x", "out", shape_scale=[3], shape_bias=[1, 4, 5]))
    check(spec, {"x": x}, x * s.reshape(3, 1, 1) + b)


# ----------------------------------------------------------------------- unary, clip

UNARY = [("sqrt", {}, lambda x: np.sqrt(np.abs(x) + 0.1), True),
         ("rsqrt", {"epsilon": 1e-4}, lambda x: 1 / np.sqrt(np.abs(x) + 0.1 + 1e-4), True),
         ("inverse", {"epsilon": 1e-4}, lambda x: 1 / (np.abs(x) + 0.1 + 1e-4), True),
         ("power", {"alpha": 3.0}, lambda x: x ** 3, False),
         ("exp", {}, np.exp, False),
         ("log", {}, lambda x: np.log(np.abs(x) + 0.1), True),
         ("abs", {}, np.abs, False),
         ("threshold", {"alpha": 0.2}, lambda x: np.maximum(x, 0.2), False)]


@pytest.mark.parametrize("mode,kwargs,reference,positive", UNARY, ids=[u[0] for u in UNARY])
def test_unary(mode, kwargs, reference, positive):
    x = randn(3, 4, 5)
    feed = np.abs(x) + np.float32(0.1) if positive else x
    spec = network({"x": x.shape}, lambda nb: nb.add_unary("u", "x", "out", mode, **kwargs))
    check(spec, {"x": feed}, reference(x))


def test_unary_scale_shift_and_clip():
    x = randn(3, 4)
    spec = network({"x": x.shape}, lambda nb: nb.add_unary("u", "x", "out", "abs", shift=1.0, scale=2.0))
    check(spec, {"x": x}, np.abs(2 * x + 1))
    spec = network({"x": x.shape}, lambda nb: nb.add_clip("c", "x", "out", -0.5, 0.25))
    check(spec, {"x": x}, np.clip(x, -0.5, 0.25))


# --------------------------------------------------------------------------- reduce

@pytest.mark.parametrize("name,reference", [
    ("sum", np.sum), ("mean", np.mean), ("max", np.max), ("min", np.min), ("prod", np.prod),
    ("l1", lambda x, axis, keepdims: np.abs(x).sum(axis=axis, keepdims=keepdims)),
    ("l2", lambda x, axis, keepdims: np.sqrt((x ** 2).sum(axis=axis, keepdims=keepdims))),
    ("sumsquare", lambda x, axis, keepdims: (x ** 2).sum(axis=axis, keepdims=keepdims)),
    ("logsumexp", lambda x, axis, keepdims: np.log(np.exp(x).sum(axis=axis, keepdims=keepdims)))])
@pytest.mark.parametrize("axes,keepdims", [([1], True), ([-1, 0], False)])
def test_reduce_nd(name, reference, axes, keepdims):
    x = randn(3, 4, 5)
    spec = network({"x": x.shape}, lambda nb: getattr(nb, "add_reduce_" + name)(
        "r", "x", "out", axes=axes, keepdims=keepdims))
    check(spec, {"x": x}, reference(x, axis=tuple(axes), keepdims=keepdims))


@pytest.mark.parametrize("axis,axes", [("CHW", (-3, -2, -1)), ("HW", (-2, -1)), ("C", (-3,)),
                                       ("H", (-2,)), ("W", (-1,))])
def test_old_reduce_keeps_rank(axis, axes):
    x = randn(2, 3, 4, 5)
    spec = network({"x": x.shape}, lambda nb: nb.add_reduce("r", "x", "out", axis, "avg"))
    check(spec, {"x": x}, x.mean(axis=axes, keepdims=True))
    spec = network({"x": x.shape}, lambda nb: nb.add_reduce("r", "x", "out", axis, "max"))
    check(spec, {"x": x}, x.max(axis=axes, keepdims=True))


# -------------------------------------------------------------------------- padding

@pytest.mark.parametrize("kind,torch_mode", [("constant", "constant"), ("reflection", "reflect"),
                                             ("replication", "replicate")])
def test_padding_last_two_axes(kind, torch_mode):
    x = randn(1, 2, 5, 6)
    spec = network({"x": x.shape}, lambda nb: nb.add_padding(
        "p", left=2, right=1, top=0, bottom=3, value=0.5, input_name="x", output_name="out",
        padding_type=kind))
    kwargs = {"value": 0.5} if kind == "constant" else {}
    check(spec, {"x": x}, n(F.pad(t(x), (2, 1, 0, 3), mode=torch_mode, **kwargs)))


def test_constant_pad_reads_one_pair_per_axis():
    x = randn(1, 4, 3)
    spec = network({"x": x.shape}, lambda nb: nb.add_constant_pad(
        "cp", ["x"], "out", value=-1.0, pad_amounts=[0, 0, 1, 0, 0, 1]))
    # pairs (begin, end) per axis: axis 1 gets 1 before, axis 2 gets 1 after
    check(spec, {"x": x}, np.pad(x, ((0, 0), (1, 0), (0, 1)), constant_values=-1.0))


# ------------------------------------------------------------------- layout / shape

def test_transpose_permute_reshape_flatten():
    x = randn(2, 3, 4, 5)
    spec = network({"x": x.shape}, lambda nb: nb.add_transpose("t", [0, 2, 3, 1], "x", "out"))
    check(spec, {"x": x}, x.transpose(0, 2, 3, 1))
    x5 = randn(2, 1, 3, 4, 5)
    spec = network({"x": x5.shape}, lambda nb: nb.add_permute("p", (0, 3, 1, 2), "x", "out"))
    check(spec, {"x": x5}, x5.transpose(0, 1, 4, 2, 3))   # [Seq, B, W, C, H]
    spec = network({"x": x5.shape}, lambda nb: nb.add_reshape("r", "x", "out", (6, 10, 1), 0))
    check(spec, {"x": x5}, x5.reshape(2, 1, 6, 10, 1))
    spec = network({"x": x5.shape}, lambda nb: nb.add_reshape("r", "x", "out", (6, 2, 5), 1))
    check(spec, {"x": x5}, x5.transpose(0, 1, 3, 4, 2).reshape(2, 1, 2, 5, 6).transpose(0, 1, 4, 2, 3))
    spec = network({"x": x.shape}, lambda nb: nb.add_flatten("f", 1, "x", "out"))
    check(spec, {"x": x}, x.transpose(0, 2, 3, 1).reshape(2, 60, 1, 1))
    spec = network({"x": x.shape}, lambda nb: nb.add_reshape_static("r", "x", "out", [6, -1]))
    check(spec, {"x": x}, x.reshape(6, 20))


def test_reshape_static_rejects_wrong_size():
    x = randn(2, 3)
    spec = network({"x": x.shape}, lambda nb: nb.add_reshape_static("r", "x", "out", [4, 2]))
    with pytest.raises(ShapeError, match=r"cannot reshape \[2, 3\]"):
        coreml_reference.predict(spec, {"x": x})


def test_expand_dims_squeeze():
    x = randn(3, 4)
    spec = network({"x": x.shape}, lambda nb: nb.add_expand_dims("e", "x", "out", [0, -1]))
    check(spec, {"x": x}, x.reshape(1, 3, 4, 1))
    x = randn(1, 3, 1, 4)
    spec = network({"x": x.shape}, lambda nb: nb.add_squeeze("s", "x", "out", axes=[0, 2]))
    check(spec, {"x": x}, x.reshape(3, 4))
    spec = network({"x": x.shape}, lambda nb: nb.add_squeeze("s", "x", "out", axes=[1]))
    with pytest.raises(ShapeError, match="not 1"):
        coreml_reference.predict(spec, {"x": x})


def test_concat_split_slice_tile_gather():
    a, b = randn(2, 3, 4, 5), randn(2, 2, 4, 5)
    spec = network({"a": a.shape, "b": b.shape},
                   lambda nb: nb.add_elementwise("c", ["a", "b"], "out", "CONCAT"))
    check(spec, {"a": a, "b": b}, np.concatenate([a, b], axis=-3))
    spec = network({"a": a.shape, "b": a.shape},
                   lambda nb: nb.add_concat_nd("c", ["a", "b"], "out", axis=-1))
    check(spec, {"a": a, "b": a}, np.concatenate([a, a], axis=-1))
    x = randn(6, 4)
    spec = network({"x": x.shape}, lambda nb: nb.add_split_nd("s", "x", ["o1", "o2"], axis=0,
                                                              split_sizes=[2, 4]), outputs=("o1", "o2"))
    out = coreml_reference.predict(spec, {"x": x})
    np.testing.assert_array_equal(out["o1"], x[:2])
    np.testing.assert_array_equal(out["o2"], x[2:])
    spec = network({"x": x.shape}, lambda nb: nb.add_slice_static(
        "sl", "x", "out", begin_ids=[1, 0], end_ids=[5, 4], strides=[2, 1],
        begin_masks=[False, True], end_masks=[False, True]))
    check(spec, {"x": x}, x[1:5:2, :])
    spec = network({"x": x.shape}, lambda nb: nb.add_tile("t", "x", "out", reps=[2, 1]))
    check(spec, {"x": x}, np.tile(x, (2, 1)))
    idx = np.array([3, 0, -1], dtype=np.float32)
    spec = network({"x": x.shape, "i": (3,)}, lambda nb: nb.add_gather("g", ["x", "i"], "out", axis=0))
    check(spec, {"x": x, "i": idx}, x[[3, 0, 5]])


def test_get_shape_and_load_constant_nd():
    x = randn(2, 3, 4)
    spec = network({"x": x.shape}, lambda nb: nb.add_get_shape("s", "x", "out"))
    check(spec, {"x": x}, np.array([2, 3, 4], dtype=np.float32))
    c = randn(3, 4)

    def build(nb):
        nb.add_load_constant_nd("c", "c", c, c.shape)
        nb.add_add_broadcastable("a", ["x", "c"], "out")
    spec = network({"x": x.shape}, build)
    check(spec, {"x": x}, x + c)


# ------------------------------------------------------------------------- resizing

@pytest.mark.parametrize("mode,torch_kwargs", [
    ("ALIGN_CORNERS_TRUE", dict(mode="bilinear", align_corners=True)),
    ("ALIGN_CORNERS_FALSE", dict(mode="bilinear", align_corners=False))])
def test_upsample_bilinear(mode, torch_kwargs):
    x = randn(1, 2, 3, 4)
    spec = network({"x": x.shape}, lambda nb: nb.add_upsample(
        "u", 2, 3, "x", "out", mode="BILINEAR", linear_upsample_mode=mode))
    check(spec, {"x": x}, n(F.interpolate(t(x), scale_factor=(2, 3), **torch_kwargs)))


def test_upsample_nearest_and_resize_bilinear():
    x = randn(1, 2, 3, 4)
    spec = network({"x": x.shape}, lambda nb: nb.add_upsample("u", 2, 3, "x", "out"))
    check(spec, {"x": x}, x.repeat(2, axis=2).repeat(3, axis=3))
    spec = network({"x": x.shape}, lambda nb: nb.add_resize_bilinear(
        "r", "x", "out", 5, 7, mode="STRICT_ALIGN_ENDPOINTS_MODE"))
    check(spec, {"x": x}, n(F.interpolate(t(x), size=(5, 7), mode="bilinear", align_corners=True)))


# ------------------------------------------------------------------- fp16 emulation

def test_fp16_rounds_weights_and_overflows_to_inf():
    x = np.array([[1.0, 300.0]], dtype=np.float32)
    w = np.array([[1.0001, 0.0], [0.0, 300.0]], dtype=np.float32)
    spec = network({"x": x.shape}, lambda nb: nb.add_inner_product("fc", w, None, 2, 2, False, "x", "out"))
    fp32 = coreml_reference.predict(spec, {"x": x})["out"]
    fp16 = coreml_reference.predict(spec, {"x": x}, precision="fp16")["out"]
    np.testing.assert_allclose(fp32, [[1.0001, 90000.0]], rtol=1e-6)
    assert fp16[0, 0] == np.float32(np.float16(1.0001)) == 1.0     # weight rounded
    assert np.isinf(fp16[0, 1])                                   # 90000 > 65504


# ------------------------------------------------------------------ loop and errors

def test_trace_sees_every_blob_with_layer_name():
    x = randn(2, 3)

    def build(nb):
        nb.add_activation("first", "RELU", "x", "mid")
        nb.add_unary("second", "mid", "out", "abs")
    seen = []
    coreml_reference.predict(network({"x": x.shape}, build), {"x": x},
                             trace=lambda *args: seen.append(args))
    assert [(name, kind, layer) for name, kind, _, layer in seen] == [
        ("mid", "activation", "first"), ("out", "unary", "second")]
    np.testing.assert_array_equal(seen[0][2], np.maximum(x, 0))


def tiny_relu():
    return network({"x": (2, 3)}, lambda nb: nb.add_activation("relu", "RELU", "x", "out"))


def test_missing_input_is_named():
    with pytest.raises(InputError, match="missing input 'x'"):
        coreml_reference.predict(tiny_relu(), {"y": randn(2, 3)})


def test_wrong_input_shape_names_both_shapes():
    with pytest.raises(InputError, match=r"shape \[3, 2\].*expects \[2, 3\]"):
        coreml_reference.predict(tiny_relu(), {"x": randn(3, 2)})


def test_integer_input_for_float_array_is_converted_like_mlmodel_predict():
    # MLModel.predict converts any real array to the declared FLOAT32 multi-array.
    x = np.array([[-2, 0, 3], [4, -5, 6]], dtype=np.int64)
    out = coreml_reference.predict(tiny_relu(), {"x": x})
    np.testing.assert_array_equal(next(iter(out.values())), [[0, 0, 3], [4, 0, 6]])


def test_non_numeric_input_is_rejected():
    with pytest.raises(InputError, match="'x' has dtype <U1"):
        coreml_reference.predict(tiny_relu(), {"x": np.full((2, 3), "a")})


def test_unsupported_layer_names_type_layer_and_file(tmp_path):
    spec = network({"x": (5, 1, 3)}, lambda nb: nb.add_gru(
        "gru", [np.zeros((4, 4))] * 3, [np.zeros((4, 3))] * 3, None, 4, 3, ["x"], ["out"]))
    path = tmp_path / "gru.mlmodel"
    path.write_bytes(spec.SerializeToString())
    with pytest.raises(UnsupportedError) as info:
        coreml_reference.predict(str(path), {"x": randn(5, 1, 3)})
    text = str(info.value)
    assert "gru" in text and "'gru'" in text and str(path) in text


def test_unexpected_exception_is_wrapped_with_layer(monkeypatch):
    from coreml_reference.neuralnetwork import layers

    def broken(p, inputs, ctx):
        raise RuntimeError("boom")
    monkeypatch.setitem(layers.REGISTRY, "activation", broken)
    with pytest.raises(LayerError, match="activation layer 'relu'.*boom"):
        coreml_reference.predict(tiny_relu(), {"x": randn(2, 3)})


def test_corrupt_and_truncated_files(tmp_path):
    garbage = tmp_path / "garbage.mlmodel"
    garbage.write_bytes(b"\xff\xfe this is not a protobuf \x00\x01" * 10)
    with pytest.raises(ModelFileError):
        coreml_reference.predict(str(garbage), {"x": randn(2, 3)})
    truncated = tmp_path / "truncated.mlmodel"
    truncated.write_bytes(tiny_relu().SerializeToString()[:-7])
    with pytest.raises(ModelFileError):
        coreml_reference.predict(str(truncated), {"x": randn(2, 3)})


def test_non_neural_spec_is_rejected():
    from coremltools.proto import Model_pb2
    spec = Model_pb2.Model()
    spec.specificationVersion = 4
    spec.treeEnsembleRegressor.treeEnsemble.numPredictionDimensions = 1
    with pytest.raises(ModelFileError, match="treeEnsembleRegressor"):
        coreml_reference.predict(spec, {})


def test_rank5_mapping_of_legacy_inputs():
    """Specification <= 3 maps a [C] input to the blob [1, 1, C, 1, 1]."""
    w = randn(2, 3)
    builder = NeuralNetworkBuilder([("x", datatypes.Array(3))], [("out", None)])
    builder.add_inner_product("fc", w, None, 3, 2, False, "x", "out")
    x = randn(3)
    got = coreml_reference.predict(builder.spec, {"x": x})["out"]
    np.testing.assert_allclose(got.reshape(-1), w @ x, **FP32)
