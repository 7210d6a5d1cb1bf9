"""NeuralNetwork evaluator: layout, shape and indexing
(coreml_reference/neuralnetwork/layers/shape.py and layers/index.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from nn_helpers import (F, ShapeError, check, coreml_reference, n, network, randn, t, torch)


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


def test_slice_dynamic_ignores_default_parameters_past_the_rank():
    # The builder writes 5 default strides / masks whatever the rank; Core ML uses the first.
    x = randn(4, 6)
    spec = network({"x": x.shape, "b": (2,), "e": (2,)}, lambda nb: nb.add_slice_dynamic(
        "s", ["x", "b", "e"], "out"))
    assert len(spec.neuralNetwork.layers[0].sliceDynamic.strides) == 5
    got = coreml_reference.predict(spec, {"x": x, "b": np.array([1, 0], np.float32),
                                          "e": np.array([3, 5], np.float32)})["out"]
    np.testing.assert_array_equal(got, x[1:3, 0:5])


def test_slice_dynamic_refuses_too_few_begin_ids():
    x = randn(4, 6)
    spec = network({"x": x.shape, "b": (1,)}, lambda nb: nb.add_slice_dynamic(
        "s", ["x", "b"], "out", end_ids=[3, 5]))
    with pytest.raises(ShapeError, match="beginIds has 1 values for input rank 2"):
        coreml_reference.predict(spec, {"x": x, "b": np.array([1], np.float32)})


# --------------------------------------------------------------- scatter and band parts

def _loop_scatter(data, indices, updates, axis, combine):
    """Reference: one element at a time, in index order."""
    out = data.copy()
    moved, upd = np.moveaxis(out, axis, 0), np.moveaxis(updates, axis, 0)
    for i, k in enumerate(indices):
        moved[k] = combine(moved[k], upd[i])
    return out


@pytest.mark.parametrize("mode,combine", [("UPDATE", lambda a, b: b), ("ADD", np.add),
                                          ("MUL", np.multiply), ("MAX", np.maximum)])
@pytest.mark.parametrize("axis", [0, 1])
def test_scatter_matches_a_loop(mode, combine, axis):
    data = randn(4, 5)
    indices = np.array([3, 0, 3], np.float32) if mode != "UPDATE" else np.array([3, 0], np.float32)
    updates = randn(len(indices), 5) if axis == 0 else randn(4, len(indices))
    spec = network({"d": data.shape, "i": indices.shape, "u": updates.shape},
                   lambda nb: nb.add_scatter("s", ["d", "i", "u"], "out", axis=axis, mode=mode))
    want = _loop_scatter(data, indices.astype(int), updates, axis, combine)
    np.testing.assert_allclose(coreml_reference.predict(spec, {"d": data, "i": indices, "u": updates})["out"],
                               want, rtol=1e-6)


def test_scatter_along_axis_and_nd_match_loops():
    data, updates = randn(3, 4), randn(3, 2)
    idx = np.array([[0, 3], [1, 1], [2, 0]], np.float32)
    spec = network({"d": data.shape, "i": idx.shape, "u": updates.shape},
                   lambda nb: nb.add_scatter_along_axis("s", ["d", "i", "u"], "out", axis=1, mode="ADD"))
    want = data.copy()
    for r in range(3):
        for c in range(2):
            want[r, int(idx[r, c])] += updates[r, c]
    np.testing.assert_allclose(coreml_reference.predict(spec, {"d": data, "i": idx, "u": updates})["out"],
                               want, rtol=1e-6)
    idx_nd, upd_nd = np.array([[2, 1], [0, 3]], np.float32), randn(2)
    spec = network({"d": data.shape, "i": idx_nd.shape, "u": upd_nd.shape},
                   lambda nb: nb.add_scatter_nd("s", ["d", "i", "u"], "out", mode="UPDATE"))
    want = data.copy()
    want[2, 1], want[0, 3] = upd_nd
    got = coreml_reference.predict(spec, {"d": data, "i": idx_nd, "u": upd_nd})["out"]
    np.testing.assert_array_equal(got, want)


def test_triangular_and_band_part():
    x = randn(2, 4, 5)
    rows, cols = np.indices((4, 5))
    for build, keep in ((lambda nb: nb.add_lower_triangular("t", "x", "out", k=1), cols - rows <= 1),
                        (lambda nb: nb.add_upper_triangular("t", "x", "out", k=-1), cols - rows >= -1),
                        (lambda nb: nb.add_matrix_band_part("t", "x", "out", num_lower=1, num_upper=2),
                         (cols - rows >= -1) & (cols - rows <= 2))):
        spec = network({"x": x.shape}, build)
        np.testing.assert_array_equal(coreml_reference.predict(spec, {"x": x})["out"], np.where(keep, x, 0))


def test_argsort_and_where_non_zero():
    x = randn(3, 5)
    for descending in (False, True):
        spec = network({"x": x.shape}, lambda nb: nb.add_argsort("a", "x", "out", axis=1,
                                                                  descending=descending))
        want = np.argsort(-x if descending else x, axis=1)
        np.testing.assert_array_equal(coreml_reference.predict(spec, {"x": x})["out"], want)
    m = np.array([[0, 2, 0], [1, 0, 3]], np.float32)
    spec = network({"x": m.shape}, lambda nb: nb.add_where_nonzero("w", "x", "out"))
    np.testing.assert_array_equal(coreml_reference.predict(spec, {"x": m})["out"],
                                  [[0, 1], [1, 0], [1, 2]])


def test_split_nd_uneven_gives_the_first_parts_one_more():
    x = randn(2, 11)
    spec = network({"x": x.shape}, lambda nb: nb.add_split_nd("s", "x", ["a", "b", "c"], axis=1,
                                                               num_splits=3), outputs=("a", "b", "c"))
    out = coreml_reference.predict(spec, {"x": x})
    np.testing.assert_array_equal(out["a"], x[:, :4])
    np.testing.assert_array_equal(out["b"], x[:, 4:8])
    np.testing.assert_array_equal(out["c"], x[:, 8:])


def test_cum_sum_one_hot_reverse_seq_match_torch():
    x = randn(2, 5, 3)
    spec = network({"x": x.shape}, lambda nb: nb.add_cumsum("c", ["x"], "out", axis=1,
                                                            reverse=True, exclusive=True))
    want = n(torch.flip(torch.cumsum(torch.flip(t(x), [1]), 1), [1]) - t(x))
    check(spec, {"x": x}, want, fp16=False)

    idx = np.array([[2, 0], [1, 3]], np.float32)
    spec = network({"i": idx.shape}, lambda nb: nb.add_one_hot(
        "h", ["i"], "out", one_hot_vector_size=4, axis=1, on_value=3.0, off_value=-1.0))
    hot = F.one_hot(t(idx).long(), 4).permute(0, 2, 1)     # the new axis at position 1
    check(spec, {"i": idx}, n(hot.float() * 4.0 - 1.0), fp16=False)

    seq = randn(4, 3, 2)                                  # [time, batch, feature]
    lengths = np.array([4, 1, 2], np.float32)
    spec = network({"x": seq.shape, "len": lengths.shape}, lambda nb: nb.add_reverse_sequence(
        "r", ["x", "len"], "out", batch_axis=1, seq_axis=0))
    want = torch.stack([torch.cat([t(seq[:k, b]).flip(0), t(seq[k:, b])])
                        for b, k in enumerate([4, 1, 2])], 1)
    check(spec, {"x": seq, "len": lengths}, n(want), fp16=False)
