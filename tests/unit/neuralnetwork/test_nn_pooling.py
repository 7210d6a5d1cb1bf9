"""NeuralNetwork evaluator: pooling (coreml_reference/neuralnetwork/layers/pooling.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from nn_helpers import (F, check, n, network, randn, t, torch)


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


# ------------------------------------------------------------------------------ pooling3d

def pool3d_spec(shape, kind, k, s, padding="valid", pads=(0,) * 6, exclude=False):
    def build(nb):
        nb.add_pooling3d("pool3d", "x", "out", kind, *k, *s, padding_mode=padding,
                         custom_padding_front=pads[0], custom_padding_back=pads[1],
                         custom_padding_top=pads[2], custom_padding_bottom=pads[3],
                         custom_padding_left=pads[4], custom_padding_right=pads[5],
                         average_pooling_count_excludes_padding=exclude)
    return network({"x": shape}, build)


@pytest.mark.parametrize("kind", ["MAX", "AVERAGE"])
@pytest.mark.parametrize("exclude", [False, True])
def test_pooling3d_custom_padding_matches_torch(kind, exclude):
    x = randn(2, 3, 5, 6, 7)
    spec = pool3d_spec(x.shape, kind, (2, 3, 3), (1, 2, 2), "custom", (1, 1, 1, 1, 1, 1), exclude)
    if kind == "MAX":
        expected = F.max_pool3d(t(x), (2, 3, 3), (1, 2, 2), 1)
    else:
        expected = F.avg_pool3d(t(x), (2, 3, 3), (1, 2, 2), 1, count_include_pad=not exclude)
    check(spec, {"x": x}, n(expected))


def test_pooling3d_same_and_global():
    x = randn(1, 2, 5, 4, 6)
    spec = pool3d_spec(x.shape, "MAX", (2, 3, 2), (2, 2, 2), "same")
    xp = F.pad(t(x), (0, 0, 0, 1, 0, 1), value=-np.inf)       # ceil(in / 2) windows
    check(spec, {"x": x}, n(F.max_pool3d(xp, (2, 3, 2), 2)))
    for kind, reduce in (("AVERAGE", np.mean), ("MAX", np.max)):
        spec = network({"x": x.shape}, lambda nb: nb.add_global_pooling3d("g", "x", "out", kind))
        check(spec, {"x": x}, reduce(x, axis=(2, 3, 4), keepdims=True))
