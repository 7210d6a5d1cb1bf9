"""compare names the layer where a diverging route departs, not just the output: the v3
LOG story (onnx-coreml 1.3 writes log(x + 1e-6)) on a model of one log of a power."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]

LOG_POWER = '''
import torch
import torch.nn as nn


class LogPower(nn.Module):
    def forward(self, x):
        return torch.log(x * x + 1e-12)


def build():
    return LogPower()
'''


@pytest.mark.slow
def test_stock_v3_names_the_log_layer_on_the_quiet_case(tmp_path):
    (tmp_path / "log_power.py").write_text(LOG_POWER)
    out = tmp_path / "build"
    done = subprocess.run([sys.executable, "-m", "coreml_routes.cli", "compare", "--model",
                           str(tmp_path / "log_power.py") + ":build", "--input", "x:1x64",
                           "--routes", "v3", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 1, done.stdout + done.stderr     # nothing to recommend
    row = json.loads((out / "log_power-build" / "compare.json").read_text())["routes"]["v3"]
    # At 1e-3 of full scale, x*x is about 1e-6: the epsilon doubles it.
    assert row["verified"]["status"] == "diverges" and row["verified"]["worst_case"] == "quiet"
    located = row["first_divergent_layer"]
    assert located.startswith("first divergent layer on case quiet: unary ")
    assert "type: LOG" in located and "epsilon: 1e-06" in located
    assert located in row["why_not"] and "first divergent layer on case quiet" in done.stdout
    stages = row["stage_seconds"]
    assert {"env", "toolchain", "convert", "verify", "fp16"} <= set(stages)
    assert "seconds per stage" in done.stdout
