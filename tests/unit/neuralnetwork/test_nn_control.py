"""NeuralNetwork evaluator: control flow (coreml_reference/neuralnetwork/layers/control.py).

Expected values come from plain Python loops over numpy, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from nn_helpers import NeuralNetworkBuilder, coreml_reference, ct, network


def _to_nn(body, shape):
    from coremltools.converters.mil import Builder as mb
    prog = mb.program(input_specs=[mb.TensorSpec(shape=shape)])(body)
    return ct.convert(prog, convert_to="neuralnetwork").get_spec()


def _only(outputs):
    assert len(outputs) == 1
    return next(iter(outputs.values()))


def test_while_loop_from_mil():
    from coremltools.converters.mil import Builder as mb

    def body(x):
        return mb.while_loop(_cond=lambda v: mb.less(x=mb.reduce_max(x=v), y=100.0),
                             _body=lambda v: [mb.mul(x=v, y=3.0)], loop_vars=[x])
    spec = _to_nn(body, (2,))
    assert any(layer.WhichOneof("layer") == "loop" for layer in spec.neuralNetwork.layers)
    for start in ([1.0, 2.0], [50.0, 7.0], [200.0, 1.0]):
        v = np.array(start, np.float32)
        while v.max() < 100:
            v = v * 3
        got = _only(coreml_reference.predict(spec, {"x": np.array(start, np.float32)}))
        np.testing.assert_array_equal(got, v)


def test_branch_from_mil():
    from coremltools.converters.mil import Builder as mb

    def body(x):
        return mb.cond(pred=mb.greater(x=mb.reduce_sum(x=x), y=0.0),
                       _true_fn=lambda: mb.mul(x=x, y=2.0), _false_fn=lambda: mb.sub(x=x, y=1.0))
    spec = _to_nn(body, (3,))
    assert any(layer.WhichOneof("layer") == "branch" for layer in spec.neuralNetwork.layers)
    for x in (np.array([1, -0.5, 2], np.float32), np.array([-1, 0.5, -2], np.float32)):
        want = x * 2 if x.sum() > 0 else x - 1
        np.testing.assert_array_equal(_only(coreml_reference.predict(spec, {"x": x})), want)


def _counting_loop(max_iterations, break_at=None, count_input=False):
    """out = x + 1 per iteration of a for loop; optionally loopBreak once out >= break_at."""
    def build(nb):
        nb.add_copy("init", "x", "out")
        if count_input:
            nb.add_load_constant_nd("n", "n", np.array([max_iterations], np.float32), [1])
        layer = nb.add_loop("loop", input_name="n" if count_input else None,
                            max_iterations=None if count_input else max_iterations)
        body = NeuralNetworkBuilder(nn_spec=layer.loop.bodyNetwork, disable_rank5_shape_mapping=True)
        body.add_elementwise("inc", ["out"], "next", "ADD", alpha=1.0)
        body.add_copy("keep", "next", "out")
        if break_at is not None:
            body.add_greater_than("done", ["out"], "stop", use_greater_than_equal=True, alpha=break_at)
            branch = body.add_branch("maybe", "stop")
            inner = NeuralNetworkBuilder(nn_spec=branch.branch.ifBranch, disable_rank5_shape_mapping=True)
            inner.add_loop_break("brk")
    return network({"x": (1,)}, build)


@pytest.mark.parametrize("iterations,break_at,count_input", [(4, None, False), (0, None, False),
                                                             (10, 3.0, False), (5, None, True)])
def test_for_loop_with_break_and_count_input(iterations, break_at, count_input):
    spec = _counting_loop(iterations, break_at, count_input)
    x = np.array([0.0], np.float32)
    want = x.copy()
    for _ in range(iterations):
        want = want + 1
        if break_at is not None and want[0] >= break_at:
            break
    np.testing.assert_array_equal(coreml_reference.predict(spec, {"x": x})["out"], want)


def test_a_blob_read_again_in_a_loop_body_outlives_its_earlier_top_level_reader():
    """The loop drops each blob after its last reader; a nested body's reads count as the
    loop layer's (x here: read by `twice`, then by every iteration of the body)."""
    def build(nb):
        nb.add_elementwise("twice", ["x"], "out", "MULTIPLY", alpha=2.0)
        layer = nb.add_loop("loop", max_iterations=3)
        body = NeuralNetworkBuilder(nn_spec=layer.loop.bodyNetwork, disable_rank5_shape_mapping=True)
        body.add_elementwise("add_x", ["out", "x"], "next", "ADD")
        body.add_copy("keep", "next", "out")
    loaded = coreml_reference.load(network({"x": (2,)}, build))
    x = np.array([1.0, -0.5], np.float32)
    for _ in range(2):                             # the second run reuses the kept plan
        np.testing.assert_array_equal(coreml_reference.predict(loaded, {"x": x})["out"], 5 * x)
