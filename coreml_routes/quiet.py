"""Warnings every coremltools prints on Linux, which mean nothing to our user: hidden unless
``-v`` is given (the README says why they are expected).

- "Failed to load _MLModelProxy: No module named 'coremltools.libcoremlpython'" (and the other
  _ML*Proxy classes): Core ML's runtime exists only on macOS; we never call it on Linux.
- "Torch version 2.13.0+cpu has not been tested with coremltools": our deliberate pin, checked
  against PyTorch by every conversion (README, Requirements).
"""
from __future__ import annotations

import logging
import re

EXPECTED = re.compile(r"Failed to load '?_ML\w*Proxy|version \S+ has not been tested with coremltools")


def _unexpected(record: logging.LogRecord) -> bool:
    return not EXPECTED.search(record.getMessage())


def hide_expected_warnings() -> None:
    """Drop just those messages; coremltools' other warnings still show."""
    logger = logging.getLogger("coremltools")   # the one logger all of coremltools uses
    if _unexpected not in logger.filters:
        logger.addFilter(_unexpected)
