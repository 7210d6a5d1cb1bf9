"""A route's failure tells the user what they can do with this tool (Python 3.7 ok)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# In a fresh interpreter: the toolchain must be imported before torch (onnx segfaults else),
# which this pytest session cannot promise.
CONVERT_POOL3D = """
import sys
from collections import OrderedDict
import backends
from backends.base import ConversionError, Job, Stages
backend = backends.get("v3")
backend.load_toolchain()
import numpy as np
import torch

class Pool3d(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.max_pool3d(x, 2)

job = Job(Pool3d().eval(), OrderedDict(x=np.ones((1, 2, 4, 4, 4), np.float32)), ["y"], sys.argv[1])
try:
    backend.convert(job, Stages())
except ConversionError as e:
    print("stage: " + e.stage)
    print("error: " + str(e).replace("\\n", " "))
"""


def test_v3_failure_names_our_remedies_not_onnx_coremls(route, tmp_path):
    """onnx-coreml 1.3 pools in 1-D and 2-D only: its error suggests a higher deployment
    target, an option this tool does not have (it already uses iOS 13); ours names --hooks
    and diagnose."""
    if route != "v3":
        pytest.skip("onnx-coreml's advice exists only in route v3")
    done = subprocess.run([sys.executable, "-c", CONVERT_POOL3D, str(tmp_path)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert done.returncode == 0, done.stderr
    said = dict(line.split(": ", 1) for line in done.stdout.splitlines()
                if line.startswith(("stage: ", "error: ")))
    assert said["stage"] == "convert"
    message = said["error"]
    assert "MaxPool" in message and "provided number axes 5 not supported" in message
    assert "minimum_ios_deployment_target" not in message and "Please try" not in message
    assert "--hooks" in message and "coreml-routes diagnose --route v3" in message
