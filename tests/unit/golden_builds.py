"""Shared by the evaluator's whole-model tests: the converted zoo models in the build
directory ($COREML_ROUTES_BUILD, else <repo>/build) with their PyTorch golden outputs."""
import os

import pytest

from backends import builds
from bench import artifacts
from coreml_reference import metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("COREML_ROUTES_BUILD") or os.path.join(ROOT, "build")


def zoo_models():
    import zoo
    return list(zoo.MODELS)


def converted(model, route):
    """(model path, inputs, golden outputs); a skip naming why when the build can't be used
    (not converted here, or a conversion that failed, with its error)."""
    art = artifacts.locate(BUILD, model, route)
    if not art.usable:
        hint = " (set COREML_ROUTES_BUILD or run the route's tox env)" \
            if art.reason.startswith("missing") else ""
        pytest.skip("{}/{}: {}{}".format(model, route, art.reason, hint))
    inputs, golden = builds.read_golden(art.folder)
    return art.model_path, inputs, golden


def report(model, route, precision, name, got, want):
    """Print the measured error (run pytest with -s to see it); return the SNR."""
    error, snr = metrics.max_abs_error(got, want), metrics.snr_db(got, want)
    print("\n{}/{} {} {}: max abs error {:.3e}, SNR {:.1f} dB".format(
        model, route, precision, name, error, snr))
    return snr
