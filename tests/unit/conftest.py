"""Host tests mirror the source layout (tests/unit/<package>/test_<module>.py); the helpers
shared across packages (golden_builds) sit here, importable from every folder."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
