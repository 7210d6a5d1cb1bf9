"""compare on a CNN over a variable-length input, ``--input x:1x1..16x1024``: routes v4,
v9 and coreai convert the range flexibly and are verified at its middle and both ends
(golden outputs from PyTorch in each route's env); compare.json says per route how the
input ended up, and the table gives the Neural Engine caveat for a range. Needs the routes'
tox envs (skipped without them)."""
import json
import os

import pytest

from coreml_routes import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROUTES = ("v4", "v9", "coreai")

MODEL = '''
import torch


class Frames(torch.nn.Module):
    """1 x T x 1024 frames, any T: a projection, a conv over time, a mean over time."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(1024, 16)
        self.conv = torch.nn.Conv1d(16, 8, 3, padding=1)

    def forward(self, x):
        y = self.proj(x).transpose(1, 2)
        return torch.relu(self.conv(y)).mean(-1)


def build():
    torch.manual_seed(0)
    return Frames().eval()
'''


@pytest.mark.skipif(not all(os.path.exists(os.path.join(ROOT, ".tox", r, ".coreml-routes-ready"))
                            for r in ROUTES), reason="needs the v4, v9 and coreai tox envs")
def test_compare_converts_a_range_flexibly_and_verifies_every_length(tmp_path, capsys):
    model = tmp_path / "frames.py"
    model.write_text(MODEL)
    out = tmp_path / "build"
    code = cli.main(["compare", "--model", "{}:build".format(model), "--input", "x:1x1..16x1024",
                     "--routes", ",".join(ROUTES), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    doc = json.loads((out / "frames-build" / "compare.json").read_text())
    for route in ROUTES:
        row = doc["routes"][route]
        assert row["status"] == "ok", (route, row.get("reason"))
        assert row["input_shapes"] == {"x": "range 1 x 1..16 x 1024"}, route
        verified = row["verified"]
        assert verified["status"] == "matches", (route, verified["reason"])
        lengths = [c["case"] for c in verified["cases"]]
        assert {"x=1x8x1024", "x=1x1x1024", "x=1x16x1024"} <= set(lengths), lengths
        assert all(c["status"] == "matches" for c in verified["cases"]), route
    assert "Neural Engine only at its default shape" in printed and "724930" in printed
