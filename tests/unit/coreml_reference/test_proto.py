"""Specs are read with coremltools' protobuf modules alone (no torch, no converters), and
still interoperate with a caller's coremltools objects, whichever is imported first. Each
case runs in a fresh interpreter: this one has imported coremltools already."""
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

TINY_RELU = """
import numpy as np
def tiny_relu(ct):
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    builder = NeuralNetworkBuilder([("x", datatypes.Array(2, 3))], [("y", None)],
                                   disable_rank5_shape_mapping=True)
    builder.add_activation("relu", "RELU", "x", "y")
    return builder.spec
x = np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]], np.float32)
want = np.maximum(x, 0)   # ReLU, by numpy
"""


def run(code):
    done = subprocess.run([sys.executable, "-c", TINY_RELU + textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_reading_a_spec_imports_neither_torch_nor_coremltools():
    out = run("""
        import sys
        from coreml_reference import proto
        spec = proto.Model()()
        spec.ParseFromString(proto.Model()(specificationVersion=4).SerializeToString())
        print(spec.specificationVersion, "torch" in sys.modules, "coremltools" in sys.modules,
              "coremltools.converters" in sys.modules)
    """)
    assert out.split() == ["4", "False", "False", "False"]


def test_coremltools_imported_later_shares_the_classes():
    out = run("""
        import coreml_reference
        from coreml_reference import proto
        ours = proto.Model()
        import coremltools as ct
        from coremltools.proto import Model_pb2
        assert Model_pb2.Model is ours and ct.proto.Model_pb2.Model is ours
        spec = tiny_relu(ct)
        for given in (spec, ct.models.MLModel(spec)):
            got = coreml_reference.predict(given, {"x": x})["y"]
            np.testing.assert_array_equal(got, want)
        print("ok")
    """)
    assert out.strip() == "ok"


def test_coremltools_imported_first_is_used_as_is():
    out = run("""
        import coremltools as ct
        import coreml_reference
        from coreml_reference import proto
        assert proto.Model() is ct.proto.Model_pb2.Model
        got = coreml_reference.predict(ct.models.MLModel(tiny_relu(ct)), {"x": x})["y"]
        np.testing.assert_array_equal(got, want)
        print("ok")
    """)
    assert out.strip() == "ok"
