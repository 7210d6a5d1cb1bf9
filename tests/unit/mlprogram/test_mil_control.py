"""ML Program evaluator: trace and control flow
(coreml_reference/mlprogram/ops/control.py and the op loop).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np

from mil_helpers import (build, coreml_reference, mb, only_output)


def test_trace_sees_every_op_output(tmp_path):
    path = build(tmp_path, lambda x: mb.relu(x=mb.add(x=x, y=1.0, name="plus"), name="r"),
                 {"x": np.ones(3, np.float32)})
    seen = []
    coreml_reference.predict(path, {"x": -np.ones(3, np.float32) * 3},
                             trace=lambda var, op_type, value, op_name: seen.append(
                                 (op_type, op_name, np.array(value))))
    by_type = {op_type: (name, value) for op_type, name, value in seen}
    assert by_type["add"][0] == "plus" and np.all(by_type["add"][1] == -2)
    assert by_type["relu"][0] == "r" and np.all(by_type["relu"][1] == 0)
    assert "const" in by_type


def test_cond(tmp_path):
    def body(x):
        return mb.cond(pred=mb.greater(x=mb.reduce_sum(x=x), y=0.0),
                       _true_fn=lambda: mb.mul(x=x, y=2.0), _false_fn=lambda: mb.sub(x=x, y=1.0))
    path = build(tmp_path, body, {"x": np.ones(3, np.float32)})
    np.testing.assert_array_equal(
        only_output(coreml_reference.predict(path, {"x": np.ones(3, np.float32)})), [2, 2, 2])
    np.testing.assert_array_equal(
        only_output(coreml_reference.predict(path, {"x": -np.ones(3, np.float32)})), [-2, -2, -2])


def test_while_loop(tmp_path):
    def body(x):
        return mb.while_loop(_cond=lambda v: mb.less(x=mb.reduce_max(x=v), y=100.0),
                             _body=lambda v: [mb.mul(x=v, y=3.0)], loop_vars=[x])
    path = build(tmp_path, body, {"x": np.ones(2, np.float32)})
    out = coreml_reference.predict(path, {"x": np.array([1, 2], np.float32)})
    np.testing.assert_array_equal(only_output(out), [81, 162])


def test_list_ops(tmp_path):
    # A list grows when written past its end; unwritten elements read as zeros.
    def body(x):
        ls = mb.make_list(init_length=2, elem_shape=(2,), dtype="fp32")
        ls = mb.list_write(ls=ls, index=0, value=x)
        ls = mb.list_write(ls=ls, index=3, value=mb.mul(x=x, y=2.0))
        ls = mb.list_scatter(ls=ls, indices=np.array([2], np.int32), value=mb.expand_dims(x=x, axes=[0]))
        gathered = mb.list_gather(ls=ls, indices=np.array([0, 1, 2, 3], np.int32))
        return mb.add(x=gathered, y=mb.cast(x=mb.list_length(ls=ls), dtype="fp32"))
    x = np.array([1.5, -2.0], np.float32)
    path = build(tmp_path, body, {"x": x})
    want = np.stack([x, np.zeros(2, np.float32), x, 2 * x]) + 4
    np.testing.assert_array_equal(only_output(coreml_reference.predict(path, {"x": x})), want)


def test_a_variable_read_again_in_a_loop_body_outlives_its_earlier_top_level_reader(tmp_path):
    """The op loop drops each variable after its last reader; a nested block's reads count as
    its op's (x here: read by `twice`, then by every iteration of the loop's body)."""
    def body(x):
        twice = mb.mul(x=x, y=2.0, name="twice")
        loop = mb.while_loop(_cond=lambda v: mb.less(x=mb.reduce_max(x=v), y=10.0),
                             _body=lambda v: [mb.add(x=v, y=x)], loop_vars=[twice])
        return mb.relu(x=loop[0] if isinstance(loop, (list, tuple)) else loop, name="out")
    path = build(tmp_path, body, {"x": np.ones(2, np.float32)})
    loaded = coreml_reference.load(path)
    x = np.array([1.0, 2.0], np.float32)
    want = 2 * x
    while want.max() < 10:
        want = want + x
    for _ in range(2):                             # the second run reuses the cached plan
        np.testing.assert_array_equal(only_output(coreml_reference.predict(loaded, {"x": x})),
                                      want)
    from coreml_reference.mlprogram.program import compiled
    plan = compiled(loaded)[1]
    names = [op.name for op in plan.ops]
    dropped = {name for drop in plan.drops for name in drop}
    assert "twice" in names and "x" in dropped          # inputs are dropped too, when read last
    assert "x" not in plan.drops[names.index("twice")]  # x is read later, by the loop's body
    assert not dropped & set(plan.outputs)
