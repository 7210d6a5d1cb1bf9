"""predict --steps K: K successive calls of a stateful model with one state, from zeros.
The model (an accumulator: state += x, output = 2 * state) is built with coremltools' MIL
builder; the expected values are numpy's running sum."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")

ROOT = Path(__file__).resolve().parents[3]


def _accumulator(path):
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.TensorSpec((1, 3), dtype=types.fp16),
                             mb.StateTensorSpec((1, 3), dtype=types.fp16)],
                opset_version=ct.target.iOS18)
    def prog(x, acc):
        total = mb.add(x=mb.read_state(input=acc), y=x)
        return mb.mul(x=mb.coreml_update_state(state=acc, value=total), y=np.float16(2.0))

    ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
               skip_model_load=True).save(str(path))


def predict(*args):
    return subprocess.run([sys.executable, "-m", "coreml_routes.cli", "predict", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_steps_run_with_one_state_and_stack_the_outputs(tmp_path):
    _accumulator(tmp_path / "acc.mlpackage")
    calls = np.array([[[1, 2, 3]], [[0.5, -1, 4]], [[10, 0.25, -2]], [[1, 1, 1]]], np.float16)
    np.savez(tmp_path / "calls.npz", x=calls)
    done = predict(str(tmp_path / "acc.mlpackage"), "--input", str(tmp_path / "calls.npz"),
                   "--steps", "4", "--out", str(tmp_path / "out.npz"))
    assert done.returncode == 0, done.stderr
    (name,) = np.load(tmp_path / "out.npz").files
    got = np.load(tmp_path / "out.npz")[name]
    expected = 2 * np.cumsum(calls.astype(np.float32), axis=0)
    assert got.shape == (4, 1, 3)
    np.testing.assert_allclose(got.astype(np.float32), expected, rtol=1e-3)


def test_a_leading_axis_that_is_not_k_long_is_one_error(tmp_path):
    _accumulator(tmp_path / "acc.mlpackage")
    np.savez(tmp_path / "calls.npz", x=np.zeros((3, 1, 3), np.float16))
    done = predict(str(tmp_path / "acc.mlpackage"), "--input", str(tmp_path / "calls.npz"),
                   "--steps", "8")
    errors = [l for l in done.stderr.splitlines() if l.strip()]
    assert done.returncode == 2 and len(errors) == 1
    assert errors[0].startswith("error: ") and "--steps 8" in errors[0] and "x has shape [3, 1, 3]" in errors[0]
