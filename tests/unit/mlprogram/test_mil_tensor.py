"""ML Program evaluator: shape and indexing ops (coreml_reference/mlprogram/ops/tensor.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

import coreml_reference
from coreml_reference import RuntimeCheckError
from mil_helpers import (build, case_list, check_case, F, RNG, mb, randn, t, torch)

CASES, case = case_list()

# shape and indexing
XT = randn(2, 3, 4, 5)
case("reshape", {"x": XT}, lambda x: mb.reshape(x=x, shape=[2, -1, 5]),
     lambda x: x.reshape(2, -1, 5))
case("reshape_zero", {"x": XT}, lambda x: mb.reshape(x=x, shape=[0, 0, -1]),
     # iOS17: each 0 copies the input dim at the same place counted from the right
     lambda x: x.reshape(3, 4, -1), opset="iOS17")
case("flatten2d", {"x": XT}, lambda x: mb.flatten2d(x=x, axis=2), lambda x: x.reshape(6, 20))
case("squeeze", {"x": randn(1, 3, 1, 4)}, lambda x: mb.squeeze(x=x, axes=[0, -2]),
     lambda x: x.reshape(3, 4))
case("squeeze_all", {"x": randn(1, 3, 1, 4)}, lambda x: mb.squeeze(x=x), lambda x: x.reshape(3, 4))
case("expand_dims", {"x": randn(3, 4)}, lambda x: mb.expand_dims(x=x, axes=[0, -1]),
     lambda x: x[None, :, :, None])
case("transpose", {"x": XT}, lambda x: mb.transpose(x=x, perm=[0, 3, 1, 2]),
     lambda x: x.transpose(0, 3, 1, 2))
case("tile", {"x": randn(2, 3)}, lambda x: mb.tile(x=x, reps=[2, 3]), lambda x: np.tile(x, (2, 3)))
case("concat", {"x": randn(2, 3), "y": randn(2, 4)},
     lambda x, y: mb.concat(values=(x, y, x), axis=-1),
     lambda x, y: np.concatenate([x, y, x], -1))
case("concat_interleave", {"x": randn(2, 3), "y": randn(2, 3)},
     lambda x, y: mb.concat(values=(x, y), axis=1, interleave=True),
     lambda x, y: np.stack([x, y], 2).reshape(2, 6))
case("stack", {"x": randn(2, 3), "y": randn(2, 3)}, lambda x, y: mb.stack(values=(x, y), axis=1),
     lambda x, y: np.stack([x, y], 1))
case("split_sizes", {"x": XT},
     lambda x: mb.concat(values=mb.split(x=x, split_sizes=[1, 3, 1], axis=3)[::-1], axis=3),
     lambda x: np.concatenate([x[..., 4:], x[..., 1:4], x[..., :1]], 3))
case("split_num", {"x": XT},
     lambda x: mb.sub(x=mb.split(x=x, num_splits=2, axis=2)[0],
                      y=mb.split(x=x, num_splits=2, axis=2)[1]),
     lambda x: x[:, :, :2] - x[:, :, 2:])
case("slice_by_index", {"x": XT},
     lambda x: mb.slice_by_index(x=x, begin=[0, 1, 0, -1], end=[2, 3, 4, 0], stride=[1, 1, 2, -2],
                                 begin_mask=[False, False, True, False],
                                 end_mask=[True, False, False, True]),
     lambda x: x[:, 1:3, ::2, -1::-2])
case("slice_by_index_squeeze", {"x": XT},
     lambda x: mb.slice_by_index(x=x, begin=[1, 0, 2, 0], end=[2, 3, 3, 5],
                                 squeeze_mask=[True, False, True, False]),
     lambda x: x[1, :, 2, :])
case("slice_by_size", {"x": XT},
     lambda x: mb.slice_by_size(x=x, begin=[0, 1, 1, 2], size=[2, -1, 2, 3]),
     lambda x: x[:, 1:, 1:3, 2:5])
IDX = np.array([[2, 0], [1, 2]], np.int32)
case("gather", {"x": XT}, lambda x: mb.gather(x=x, indices=IDX, axis=1),
     lambda x: np.take(x, IDX, axis=1))
case("gather_negative", {"x": XT},
     lambda x: mb.gather(x=x, indices=np.array([-1, 0], np.int32), axis=-1),
     lambda x: x[..., [4, 0]], opset="iOS17")
case("gather_batch_dims", {"x": randn(2, 3, 4)},
     lambda x: mb.gather(x=x, indices=np.array([[0, 2], [1, 1]], np.int32), axis=1, batch_dims=1),
     lambda x: np.stack([x[0][[0, 2]], x[1][[1, 1]]]), opset="iOS16")
IDX_ALONG = RNG.integers(0, 3, size=(2, 2, 4, 5)).astype(np.int32)
case("gather_along_axis", {"x": XT}, lambda x: mb.gather_along_axis(x=x, indices=IDX_ALONG, axis=1),
     lambda x: np.take_along_axis(x, IDX_ALONG, 1))
case("gather_nd", {"x": XT},
     lambda x: mb.gather_nd(x=x, indices=np.array([[0, 2], [1, 1]], np.int32)),
     lambda x: x[[0, 1], [2, 1]])
for mode, np_mode in [("constant", "constant"), ("reflect", "reflect"), ("replicate", "edge")]:
    case("pad_" + mode, {"x": XT},
         lambda x, m=mode: mb.pad(x=x, pad=[1, 2, 2, 1], mode=m, constant_val=0.5),
         lambda x, m=np_mode: np.pad(x, [(0, 0), (0, 0), (1, 2), (2, 1)], mode=m,
                                     **({"constant_values": 0.5} if m == "constant" else {})))
case("fill_shape_range", {"x": randn(3, 4)},
     lambda x: mb.add(x=x, y=mb.fill(shape=mb.shape(x=x), value=2.5)),
     lambda x: x + 2.5)
case("range_1d", {"x": randn(5)},
     lambda x: mb.add(x=x, y=mb.cast(x=mb.range_1d(start=2, end=12, step=2), dtype="fp32")),
     lambda x: x + np.arange(2, 12, 2))
case("shape", {"x": XT}, lambda x: mb.shape(x=x), lambda x: np.array(x.shape, np.int32))
case("reverse", {"x": XT}, lambda x: mb.reverse(x=x, axes=[1, 3]), lambda x: x[:, ::-1, :, ::-1])
case("band_part", {"x": randn(5, 5)}, lambda x: mb.band_part(x=x, lower=1, upper=0),
     lambda x: np.tril(x) - np.tril(x, -2))
case("cumsum", {"x": XT}, lambda x: mb.cumsum(x=x, axis=2, exclusive=True, reverse=True),
     lambda x: np.flip(np.cumsum(np.flip(x, 2), 2), 2) - x)
case("one_hot", {"i": np.array([0, 3, 1], np.int32)},
     lambda i: mb.one_hot(indices=i, one_hot_vector_size=4, axis=0, on_value=2.0, off_value=-1.0),
     lambda i: np.where(np.arange(4)[:, None] == i[None, :], 2.0, -1.0).astype(np.float32))
case("argsort", {"x": randn(3, 7)}, lambda x: mb.argsort(x=x, axis=1, ascending=True),
     lambda x: np.argsort(x, axis=1, kind="stable").astype(np.int32))
case("topk", {"x": randn(3, 7)}, lambda x: mb.topk(x=x, k=3, axis=-1)[0],
     lambda x: -np.sort(-x, axis=-1)[:, :3])
case("non_zero", {"x": np.array([[0, 1.5, 0], [2, 0, -1]], np.float32)}, lambda x: mb.non_zero(x=x),
     lambda x: torch.nonzero(t(x)).numpy().astype(np.int32))
case("fill_like", {"x": randn(2, 3)}, lambda x: mb.fill_like(ref_tensor=x, value=4.0),
     lambda x: torch.full_like(t(x), 4.0).numpy(), opset="iOS16")
SEQ = randn(3, 5, 2)                         # [batch, time, feature]
case("reverse_sequence", {"x": SEQ},
     lambda x: mb.reverse_sequence(x=x, lengths=np.array([5, 2, 0], np.int32), seq_axis=1,
                                   batch_axis=0),
     lambda x: np.stack([torch.cat([t(x[b, :n]).flip(0), t(x[b, n:])]).numpy()
                         for b, n in enumerate([5, 2, 0])]))
# torch's pixel_unshuffle groups each [2, 2] block into channels; space_to_batch puts the
# block offset into the batch instead: the same cells, moved from channels to batch.
case("space_to_batch", {"x": randn(1, 3, 4, 6)},
     lambda x: mb.space_to_batch(x=x, block_shape=np.array([2, 2], np.int32),
                                 paddings=np.zeros((2, 2), np.int32)),
     lambda x: F.pixel_unshuffle(t(x), 2).numpy().reshape(3, 4, 2, 3).transpose(1, 0, 2, 3))
case("batch_to_space", {"x": randn(4, 3, 2, 3)},
     lambda x: mb.batch_to_space(x=x, block_shape=np.array([2, 2], np.int32),
                                 crops=np.array([[0, 1], [1, 0]], np.int32)),
     lambda x: F.pixel_shuffle(t(x.transpose(1, 0, 2, 3).reshape(1, 12, 2, 3)), 2).numpy()
     [:, :, 0:3, 1:6])
case("pixel_unshuffle", {"x": randn(1, 2, 4, 6)},
     lambda x: mb.pixel_unshuffle(x=x, downscale_factor=np.uint32(2)),
     lambda x: F.pixel_unshuffle(t(x), 2).numpy(), opset="iOS16")
case("reshape_like", {"x": randn(2, 3, 4), "r": randn(6, 5, 2)},
     lambda x, r: mb.reshape_like(x=x, ref_tensors=(r, x), begins=(0, 2), ends=(1, 3),
                                  end_masks=(False, True)),
     lambda x, r: t(x).reshape(6, 4).numpy(), opset="iOS16")


def _slice_update(x, u):
    out = t(x).clone()
    out[1:, ::2] = t(u)
    return out.numpy()


case("slice_update", {"x": randn(3, 5), "u": randn(2, 3)},
     lambda x, u: mb.slice_update(x=x, update=u, begin=[1, 0], end=[3, 5], stride=[1, 2]),
     _slice_update, opset="iOS18")
case("space_to_depth", {"x": randn(1, 2, 4, 6)}, lambda x: mb.space_to_depth(x=x, block_size=2),
     lambda x: x.reshape(1, 2, 2, 2, 3, 2).transpose(0, 3, 5, 1, 2, 4).reshape(1, 8, 2, 3))
case("depth_to_space", {"x": randn(1, 8, 2, 3)}, lambda x: mb.depth_to_space(x=x, block_size=2),
     lambda x: x.reshape(1, 2, 2, 2, 2, 3).transpose(0, 3, 4, 1, 5, 2).reshape(1, 2, 4, 6))
case("pixel_shuffle", {"x": randn(1, 8, 2, 3)}, lambda x: mb.pixel_shuffle(x=x, upscale_factor=2),
     lambda x: F.pixel_shuffle(t(x), 2).numpy())
case("sliding_windows", {"x": randn(2, 10)},
     lambda x: mb.sliding_windows(x=x, axis=1, size=4, stride=3),
     lambda x: np.stack([x[:, i:i + 4] for i in range(0, 7, 3)], 1))


def _scatter_loop(data, indices, updates, axis, combine):
    out = data.copy()
    moved, upd = np.moveaxis(out, axis, 0), np.moveaxis(updates, axis, 0)
    for i, k in enumerate(indices):
        moved[k] = combine(moved[k], upd[i])
    return out


XSC = randn(4, 5)
SC_IDX = np.array([3, 0, 3], np.int32)
SC_UPD = randn(4, 3)
case("scatter_add_axis1", {"x": XSC},
     lambda x: mb.scatter(data=x, indices=SC_IDX[:2] + 1, updates=SC_UPD[:, :2], axis=1, mode="add"),
     lambda x: _scatter_loop(x, SC_IDX[:2] + 1, SC_UPD[:, :2], 1, np.add))
SC_ROWS = randn(3, 5)
case("scatter_max_axis0_repeated", {"x": XSC},
     lambda x: mb.scatter(data=x, indices=SC_IDX, updates=SC_ROWS, axis=0, mode="max"),
     lambda x: _scatter_loop(x, SC_IDX, SC_ROWS, 0, np.maximum))
ND_IDX = np.array([[2, 1], [0, 3]], np.int32)
ND_UPD = randn(2)
case("scatter_nd_update", {"x": XSC},
     lambda x: mb.scatter_nd(data=x, indices=ND_IDX, updates=ND_UPD, mode="update"),
     lambda x: _scatter_loop(x.reshape(-1), ND_IDX[:, 0] * 5 + ND_IDX[:, 1], ND_UPD, 0,
                             lambda a, b: b).reshape(4, 5))

# Negative indices: iOS15 scatter counts them from the end; iOS17 calls them out of range, and
# without validate_indices ("undefined but memory safe") the evaluator drops those updates.
NEG_IDX = np.array([-1, 0], np.int32)
case("scatter_ios15_negative_index_counts_from_end", {"x": XSC},
     lambda x: mb.scatter(data=x, indices=NEG_IDX, updates=SC_ROWS[:2], mode="add"),
     lambda x: _scatter_loop(x, [3, 0], SC_ROWS[:2], 0, np.add), opset="iOS15")
case("scatter_ios17_out_of_range_dropped", {"x": XSC},
     lambda x: mb.scatter(data=x, indices=NEG_IDX, updates=SC_ROWS[:2], mode="add",
                          validate_indices=False),
     lambda x: _scatter_loop(x, [0], SC_ROWS[1:2], 0, np.add), opset="iOS17")
case("scatter_nd_ios17_out_of_range_dropped", {"x": XSC},
     lambda x: mb.scatter_nd(data=x, indices=np.array([[2, 1], [0, 5]], np.int32),
                             updates=ND_UPD, mode="update", validate_indices=False),
     lambda x: _scatter_loop(x.reshape(-1), [11], ND_UPD[:1], 0, lambda a, b: b).reshape(4, 5),
     opset="iOS17")


@pytest.mark.parametrize("inputs,body,expected,opset,fp16", CASES)
def test_op(tmp_path, inputs, body, expected, opset, fp16):
    check_case(tmp_path, inputs, body, expected, opset, fp16)


@pytest.mark.parametrize("op", ["scatter", "scatter_along_axis", "scatter_nd"])
@pytest.mark.parametrize("bad", [-1, 4])
def test_ios17_validate_indices_fails_the_prediction(tmp_path, op, bad):
    """validate_indices=True: an index outside [0, 4) fails the prediction, naming the op."""
    indices = {"scatter": np.array([bad, 0], np.int32),
               "scatter_along_axis": np.array([[bad] * 5, [0] * 5], np.int32),
               "scatter_nd": np.array([[bad, 1], [0, 0]], np.int32)}[op]
    updates = {"scatter": SC_ROWS[:2], "scatter_along_axis": SC_ROWS[:2],
               "scatter_nd": ND_UPD}[op]

    def body(x, i):
        return getattr(mb, op)(data=x, indices=i, updates=updates, mode="update",
                               validate_indices=True)

    path = build(tmp_path, body, {"x": XSC, "i": indices}, opset="iOS17")
    with pytest.raises(RuntimeCheckError, match=r"{} op .*out of range".format(op)):
        coreml_reference.predict(path, {"x": XSC, "i": indices})
    good = np.where(indices == bad, 1, indices).astype(np.int32)
    assert coreml_reference.predict(path, {"x": XSC, "i": good})
