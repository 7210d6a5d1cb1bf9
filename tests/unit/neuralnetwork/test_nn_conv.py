"""NeuralNetwork evaluator: convolution (coreml_reference/neuralnetwork/layers/conv.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import pytest

from nn_helpers import (F, ShapeError, check, coreml_reference, n, network, randn, t)


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


# ------------------------------------------------------------------------ convolution3d

def conv3d_spec(shape, w, b, stride=(1, 1, 1), dilation=(1, 1, 1), groups=1, padding="valid",
                pads=(0,) * 6, deconv=False, output_shape=None):
    """w in torch's layout: conv [C_out, C_in/g, kD, kH, kW], deconv [C_in, C_out/g, kD, kH, kW]."""
    c_in = shape[1]
    out_channels = w.shape[1] * groups if deconv else w.shape[0]
    builder_w = w.transpose(1, 0, 2, 3, 4) if deconv else w    # the builder's deconv layout

    def build(nb):
        nb.add_convolution3d("conv3d", c_in, out_channels, *w.shape[2:], builder_w, b, b is not None,
                             groups, *stride, dilation_depth=dilation[0],
                             dilation_height=dilation[1], dilation_width=dilation[2],
                             is_deconv=deconv, output_shape=output_shape,
                             padding_mode=padding, padding_front=pads[0], padding_back=pads[1],
                             padding_top=pads[2], padding_bottom=pads[3], padding_left=pads[4],
                             padding_right=pads[5], input_name="x", output_name="out")
    return network({"x": shape}, build)


@pytest.mark.parametrize("case", [
    dict(c=2, o=3, k=(2, 3, 3), stride=(1, 1, 1), dilation=(1, 1, 1), groups=1, pads=(1, 0, 1, 1, 0, 2)),
    dict(c=4, o=6, k=(3, 2, 3), stride=(2, 1, 2), dilation=(1, 2, 1), groups=2, pads=(0,) * 6),
    dict(c=3, o=3, k=(3, 3, 3), stride=(1, 2, 1), dilation=(1, 1, 1), groups=3, pads=(1,) * 6),
], ids=["custom-pad", "grouped-dilated", "depthwise"])
def test_convolution3d_matches_torch(case):
    x = randn(2, case["c"], 5, 6, 7)
    w = randn(case["o"], case["c"] // case["groups"], *case["k"])
    b = randn(case["o"])
    f, bk, tp, bt, lf, rt = case["pads"]
    spec = conv3d_spec(x.shape, w, b, case["stride"], case["dilation"], case["groups"], "custom",
                       case["pads"])
    xp = F.pad(t(x), (lf, rt, tp, bt, f, bk))
    expected = F.conv3d(xp, t(w), t(b), case["stride"], 0, case["dilation"], case["groups"])
    check(spec, {"x": x}, n(expected))


def test_convolution3d_same_padding_puts_the_odd_unit_after():
    x, w = randn(1, 2, 5, 6, 4), randn(3, 2, 2, 3, 2)
    spec = conv3d_spec(x.shape, w, None, stride=(2, 2, 1), padding="same")
    # out = ceil(in / stride); total padding split small before, big after (TensorFlow's SAME)
    xp = F.pad(t(x), (0, 1, 0, 1, 0, 1))
    check(spec, {"x": x}, n(F.conv3d(xp, t(w), None, (2, 2, 1))))


@pytest.mark.parametrize("stride,groups,pads,output_shape", [
    ((1, 1, 1), 1, (0,) * 6, None), ((2, 2, 1), 2, (1, 0, 0, 1, 1, 1), None),
    ((2, 2, 2), 1, (0,) * 6, (7, 10, 7))])
def test_deconvolution3d_matches_conv_transpose3d(stride, groups, pads, output_shape):
    x = randn(1, 4, 3, 4, 3)
    w = randn(4, 6 // groups, 2, 3, 2)
    b = randn(6)
    spec = conv3d_spec(x.shape, w, b, stride, groups=groups, padding="custom", pads=pads,
                       deconv=True, output_shape=output_shape)
    full = F.conv_transpose3d(t(x), t(w), t(b), stride, 0, 0, groups)
    f, bk, tp, bt, lf, rt = pads
    if output_shape is None:
        expected = full[:, :, f:full.shape[2] - bk, tp:full.shape[3] - bt, lf:full.shape[4] - rt]
    else:   # PyTorch's output_padding grows the full result to output_shape
        extra = [o - s for o, s in zip(output_shape, full.shape[2:])]
        expected = F.conv_transpose3d(t(x), t(w), t(b), stride, 0, extra, groups)
    check(spec, {"x": x}, n(expected))
