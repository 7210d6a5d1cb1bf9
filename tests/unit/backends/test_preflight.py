"""The user's own mistakes are found once, in the host, before any route runs: a factory
that raises, returns no module, or a forward that rejects the given input shape is one
``error:`` line with file:line, exit 2, and nothing written (``backends.preflight``)."""
import subprocess
import sys
from pathlib import Path

import pytest

from backends import sources
from backends.preflight import BUILD, FORWARD, mistake

ROOT = Path(__file__).resolve().parents[3]
MODEL = '''import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(40, 8)

    def forward(self, x):
        return self.fc(x).mean(1)


def build():
    return Net()


def broken():
    raise ValueError("no weights here")


def notamodule():
    return 3
'''


def cli(*args):
    return subprocess.run([sys.executable, "-m", "coreml_routes.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("function, shape, words", [
    ("broken", "1x50x40", "{path}:18: broken() raised ValueError: no weights here"),
    ("notamodule", "1x50x40", "{path}:notamodule: notamodule() returned a int, not an nn.Module"),
    ("build", "1x50x41", "{path}:10: the model's forward fails on the inputs given (feats 1x50x41 "
                         "float32): RuntimeError: mat1 and mat2 shapes cannot be multiplied "
                         "(50x41 and 40x8)"),
])
@pytest.mark.parametrize("command", ["compare", "convert"])
def test_a_users_mistake_is_one_line_exit_2_and_nothing_written(tmp_path, function, shape, words,
                                                                  command):
    path = tmp_path / "gru_model.py"
    path.write_text(MODEL)
    out = tmp_path / "out"
    route = ["--routes", "v3,v9"] if command == "compare" else ["--route", "v9"]
    done = cli(command, "--model", "{}:{}".format(path, function), "--input", "feats:" + shape,
               *route, "--out", str(out))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == ["error: " + words.format(path=path)]
    assert done.stdout == "" and not out.exists()


def test_a_toolchains_failure_or_a_missing_package_is_no_mistake_of_the_users():
    source = sources.parse("net.py:build")
    try:
        import not_a_package_anywhere  # noqa: F401
    except ImportError as e:
        assert mistake(source, BUILD, e) is None
    assert mistake(sources.parse("pann_mobilenetv1"), FORWARD, RuntimeError("x"), {}) is None
