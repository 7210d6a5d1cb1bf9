"""convert --precision / --compress choose the variant each route builds: coreai's default is
fp32 and --precision fp16 builds its fp16 program; v9 / et default to fp16 and build fp32;
--compress never offers a precision."""
import argparse
import subprocess
import sys
from pathlib import Path

import pytest

import backends
from coreml_routes.commands.convert import variant_of
from coreml_routes.errors import UserError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("route,precision,variant", [
    ("coreai", "fp16", "fp16"), ("coreai", "fp32", None),
    ("v9", "fp32", "fp32"), ("v9", "fp16", None), ("et", "fp32", "fp32"), ("et", "fp16", None)])
def test_precision_is_a_variant_or_the_default(route, precision, variant):
    args = argparse.Namespace(precision=precision, compress=None)
    assert variant_of(args, backends.get(route)) == variant


def test_a_neuralnetwork_route_has_no_precision_and_both_flags_are_refused():
    with pytest.raises(UserError, match="route v3 builds a NeuralNetwork.*--compress fp16w"):
        variant_of(argparse.Namespace(precision="fp16", compress=None), backends.get("v3"))
    with pytest.raises(UserError, match="give --precision or --compress, not both"):
        variant_of(argparse.Namespace(precision="fp32", compress="lin8"), backends.get("v9"))


def test_compress_lists_no_precision_and_help_reads_per_route():
    cli = [sys.executable, "-m", "coreml_routes.cli", "convert"]
    done = subprocess.run(cli + ["--route", "coreai", "--model", "m", "--compress", "fp16"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert "invalid choice: 'fp16' (choose from 'fp16w', 'lin8', 'lut4', 'lut6', 'lut4g16', 'lut6g16', 'prune50')" \
        in done.stderr
    text = subprocess.run(cli + ["--help"], cwd=ROOT, capture_output=True, text=True).stdout
    flat = " ".join(text.split())
    assert "coreai fp32 (default), fp16 into <route>+fp16/" in flat
    assert "et fp16 (default), fp32 into <route>+fp32/" in flat
    assert "et: lin8; coreai: none" in flat
