"""``compare --out`` naming a file: one error line and exit 2 before any work."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MODEL = "import torch.nn as nn\n\n\ndef build():\n    return nn.Linear(4, 2)\n"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "coreml_routes.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("under, words", [("", "is a file, not a folder (give a folder, new or existing)"),
                                          ("sub", "is a file, so no folder can be made under it")])
def test_compare_out_naming_a_file_is_one_line_exit_2_before_any_work(tmp_path, under, words):
    (tmp_path / "net.py").write_text(MODEL)
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    out = afile / under if under else afile
    before = sorted(p.name for p in tmp_path.iterdir())
    done = cli("compare", "--model", str(tmp_path / "net.py") + ":build", "--input", "x:1x4",
               "--routes", "v9", "--out", str(out))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == ["error: --out {}: {}".format(out, words)
                                        if not under else
                                        "error: --out {}: {} {}".format(out, afile, words)]
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert afile.read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_checked_out_root_accepts_a_new_folder_under_an_existing_one(tmp_path):
    from coreml_routes.out_dir import checked_out_root
    assert checked_out_root(str(tmp_path / "new" / "deeper")) == str(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()
