"""backends.artifact_run.EnvRunner: one serving child for many runs (its pid stays), its
outputs those of the artifact, a failure raised in the host as the evaluator's class with the
child still serving, and a child that dies (a crash) failing its call as 'killed by signal'."""
import os
import sys

import numpy as np
import pytest

from backends.artifact_run import ArtifactRunError, EnvRunner
from coreml_reference.errors import InputError

ct = pytest.importorskip("coremltools")


@pytest.fixture(scope="module")
def relu_package(tmp_path_factory):
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3), dtype=types.fp32)],
                opset_version=ct.target.iOS16)
    def prog(x):
        return mb.relu(x=x, name="y")
    path = str(tmp_path_factory.mktemp("relu") / "relu.mlpackage")
    ct.convert(prog, convert_to="mlprogram", compute_precision=ct.precision.FLOAT32,
               minimum_deployment_target=ct.target.iOS16).save(path)
    return path


def test_one_child_serves_every_run(relu_package):
    runner = EnvRunner(sys.executable, "v9")      # v9's run_artifact: coreml_reference
    try:
        pids = []
        for seed in range(3):
            x = np.random.default_rng(seed).standard_normal((2, 3)).astype(np.float32)
            got = runner(relu_package, {"x": x}, "fp32")
            np.testing.assert_array_equal(got["y"], np.maximum(x, 0))
            pids.append(runner.child.pid)
        assert len(set(pids)) == 1
        with pytest.raises(InputError):            # the evaluator's own class, in the host
            runner(relu_package, {"z": np.zeros((2, 3), np.float32)}, "fp32")
        got = runner(relu_package, {"x": -np.ones((2, 3), np.float32)}, "fp32")
        assert runner.child.pid == pids[0] and not got["y"].any()
    finally:
        runner.close()
    assert runner.child is None and not os.path.exists(runner.tmp)


def test_a_child_killed_by_a_signal_fails_its_call(tmp_path, relu_package):
    crashing = tmp_path / "python"
    crashing.write_text("#!/bin/sh\nkill -ABRT $$\n")
    crashing.chmod(0o755)
    runner = EnvRunner(str(crashing), "v9")
    try:
        with pytest.raises(ArtifactRunError, match="killed by signal 6"):
            runner(relu_package, {"x": np.zeros((2, 3), np.float32)}, "fp32")
        runner.python = sys.executable               # the next call starts a new child
        got = runner(relu_package, {"x": np.ones((2, 3), np.float32)}, "fp32")
        np.testing.assert_array_equal(got["y"], np.ones((2, 3), np.float32))
    finally:
        runner.close()


def test_a_hung_child_times_out_and_the_next_call_starts_afresh(tmp_path, relu_package):
    hanging = tmp_path / "python"
    hanging.write_text("#!/bin/sh\nexec sleep 60\n")
    hanging.chmod(0o755)
    runner = EnvRunner(str(hanging), "v9", timeout=1)
    try:
        with pytest.raises(ArtifactRunError, match="timed out after 1 s"):
            runner(relu_package, {"x": np.zeros((2, 3), np.float32)}, "fp32")
        assert runner.child is None                  # stopped, not left running
        runner.python, runner.timeout = sys.executable, 600
        got = runner(relu_package, {"x": np.full((2, 3), 2.0, np.float32)}, "fp32")
        np.testing.assert_array_equal(got["y"], np.full((2, 3), 2.0, np.float32))
        runner.close()                               # and after close, a call works again
        got = runner(relu_package, {"x": np.ones((2, 3), np.float32)}, "fp32")
        np.testing.assert_array_equal(got["y"], np.ones((2, 3), np.float32))
    finally:
        runner.close()
