"""``--model FILE.py`` without ``:FUNCTION``, and a function name the file does not define:
one line listing the file's functions, read with ast (the file is never imported)."""
import subprocess
import sys
from pathlib import Path

import pytest

from coreml_routes.errors import UserError
from coreml_routes.model_file import check_function, top_level

ROOT = Path(__file__).resolve().parents[3]
KWS = '''import torch.nn as nn
raise SystemExit("imported!")   # never runs: the file is read, not imported


def build():
    return nn.Linear(4, 2)


def build_small():
    return nn.Linear(4, 1)


def _helper():
    pass
'''


def cli(*args):
    return subprocess.run([sys.executable, "-m", "coreml_routes.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("spec, words", [
    ("{}", "a model file needs :FUNCTION, the function that returns your nn.Module (e.g. "
           "{}:build); it defines: build, build_small"),
    ("{}:biuld", "{} defines no function biuld; it defines: build, build_small"),
])
def test_a_file_without_function_or_with_a_typo_is_one_line_listing_its_functions(tmp_path, spec, words):
    path = tmp_path / "kws_audio.py"
    path.write_text(KWS)
    done = cli("compare", "--model", spec.format(path), "--input", "x:1x4", "--routes", "v9",
               "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: --model {}: {}".format(spec.format(path),
                                                                       words.format(path))]
    assert "zoo model" not in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kws_audio.py"]


def test_names_bound_otherwise_are_no_typo(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("from torch.nn import Linear as build\nmake = build\nclass Net: pass\n")
    for name in ("build", "make", "Net"):
        check_function(str(path), name, "m.py:" + name)
    with pytest.raises(UserError, match="defines no function bulid; it defines: none"):
        check_function(str(path), "bulid", "m.py:bulid")
    star = tmp_path / "star.py"
    star.write_text("from os.path import *\n")
    check_function(str(star), "anything", "star.py:anything")   # left to the import
    assert top_level(str(tmp_path / "missing.py")) is None
