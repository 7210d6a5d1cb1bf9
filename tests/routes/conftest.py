"""Route tests run inside each route's pinned env (tox -e v3 / v4 / v9), on its own
Python (3.7 for v3): keep this code Python 3.7 compatible."""
from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def pytest_addoption(parser):
    parser.addoption("--route", action="append", default=[],
                     help="route(s) whose conversions to test (the env's own)")


def pytest_generate_tests(metafunc):
    if "route" in metafunc.fixturenames:
        routes = metafunc.config.getoption("route")
        if not routes:
            raise ValueError("give --route (tests run in the route's own env)")
        metafunc.parametrize("route", routes)
    if "model" in metafunc.fixturenames:
        import zoo
        metafunc.parametrize("model", list(zoo.MODELS))


def build_dir():
    return os.environ.get("COREML_ROUTES_BUILD", os.path.join(ROOT, "build"))
